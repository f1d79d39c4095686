// The one place where an MCP call meets the four-lock pipeline: every Larder tool, resource
// read and prompt runs its body through run_guarded_*(), which admits the call (locks 1-2,
// taint rule), runs the body with the proven RLS context, completes it (taint + audit), and
// turns any refusal into an error that names the lock — never a row.
//
// Results carry two _meta entries clients do not show to a model:
//   "larder/decision":      {"decision": "allow"|"deny", "lock": ..., "reason": ..., "taint": ...}
//   "ifc":                  information-flow labels as FIDES-style agent frameworks read them
//                           (docs/security-model.md "Labels"): {"integrity": "untrusted",
//                           "confidentiality": "private"|"public", "metadata": {source,
//                           data_flow, relations}}; a refusal is {"trusted", "public"}
//   "larder/biscuit_token": the attenuated token, when this call tainted the caller's token
//                           (not when it already carries the taint block: gate::Pipeline::complete
//                           appends it once, so a client that always switches never sees it grow).
#pragma once

#include "base/result.h"
#include "gate/pipeline.h"
#include "mcp/server.h"

#include <functional>
#include <optional>
#include <string>
#include <variant>

namespace larder::tools {

// What a tool body produces when it succeeds.
struct ToolBody {
  mcp::ToolResult result;
  std::optional<int64_t> rows;  // rows returned, for the audit record
};

// How a body fails: the lock it names, the reason the client reads, and how far the call
// got — which decides whether the refusal taints and what the client may hear.
struct BodyFailure {
  enum class Reach {
    kNothingSent,  // refused before anything of the call reached the data
    kDataReached,  // the statement was sent and ran against the data before it failed: the
                   // call taints like a successful sensitive read
    kUnavailable,  // the database could not be reached (nothing was sent): the client hears
                   // db::kUnavailableReason only, whatever `reason` says (it is logged)
  };
  gate::Lock lock = gate::Lock::kDatabase;
  Reach reach = Reach::kNothingSent;
  std::string reason;
};
template <class T>
using BodyResult = std::variant<T, BodyFailure>;

using ToolBodyFn = std::function<BodyResult<ToolBody>(const gate::Admission&)>;
// A resource read's or a prompt's body; `rows` counts rows shown (table samples).
using ReadBodyFn =
    std::function<BodyResult<nlohmann::json>(const gate::Admission&, std::optional<int64_t>& rows)>;

// The parts of a call the gate needs, read from the MCP request.
gate::CallRequest call_request(mcp::RequestContext& ctx, const nlohmann::json& arguments,
                               gate::CallFacts facts);

// Runs a tool call through the pipeline.
// Lock biscuit refusing a missing token, or one that came in the Authorization header alone
// (invalid, revoked, expired, bound elsewhere), also answers the HTTP request 401
// (tools/http_auth.h).
mcp::ToolResult run_guarded_tool(mcp::RequestContext& ctx, gate::Pipeline& pipeline,
                                 gate::CallRequest request, const ToolBodyFn& body);

// The isError result for a refusal of a tool call: the message names the lock, and
// _meta["larder/decision"] carries {decision: "deny", lock, reason, taint: ""}.
mcp::ToolResult refusal_result(const gate::Refusal& refusal);

// The "ifc" labels of an allowed call's result, from what it read (ifc above).
nlohmann::json ifc_labels(const gate::CallFacts& facts);

// The JSON-RPC error for a refusal of a resource read or a prompt (their results have no
// isError): code mcp::error_code::kRefused (-32003), the message naming the lock, and the
// same decision object as a tool's _meta["larder/decision"] as `data`.
mcp::RpcError refusal_error(const gate::Refusal& refusal);

// For resource reads and prompts: runs `body` after admission; a refusal by any lock is
// refusal_error(), never a row.
mcp::HandlerResult run_guarded_read(mcp::RequestContext& ctx, gate::Pipeline& pipeline,
                                    gate::CallRequest request, const ReadBodyFn& body);

// Removes `biscuit_token` from a tool's arguments (it never reaches a handler's logic).
nlohmann::json without_token(const nlohmann::json& arguments);

// The schema property every Larder tool accepts for seed-compatible clients.
nlohmann::json biscuit_token_property();

}  // namespace larder::tools
