// The one place where an MCP call meets the four-lock pipeline: every Larder tool, resource
// read and prompt runs its body through run_guarded_*(), which admits the call (locks 1-2,
// taint rule), runs the body with the proven RLS context, completes it (taint + audit), and
// turns any refusal into an error that names the lock — never a row.
//
// Results carry two _meta entries clients do not show to a model:
//   "larder/decision":      {"decision": "allow"|"deny", "lock": ..., "reason": ..., "taint": ...}
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

namespace larder::tools {

// What a tool body produces when it succeeds.
struct ToolBody {
  mcp::ToolResult result;
  std::optional<int64_t> rows;  // rows returned, for the audit record
};

// A body may refuse with a later lock (SQL guard, database) by returning this error code
// prefix: "lock:sql-guard", "lock:database"; any other error is a tool error (database lock).
// kDataReached is the database lock too, for a statement that was sent to the database and
// ran against the data before it failed: the call taints like a successful sensitive read.
inline constexpr const char* kDataReached = "lock:database-read";
// kUnavailable is the database lock for a database that could not be reached (nothing was
// sent): the client hears db::kUnavailableReason only, whatever the error's message says.
inline constexpr const char* kUnavailable = "lock:database-unavailable";
using ToolBodyFn = std::function<Result<ToolBody>(const gate::Admission&)>;

// The parts of a call the gate needs, read from the MCP request.
gate::CallRequest call_request(mcp::RequestContext& ctx, const nlohmann::json& arguments, gate::CallFacts facts);

// Runs a tool call through the pipeline.
mcp::ToolResult run_guarded_tool(gate::Pipeline& pipeline, gate::CallRequest request, const ToolBodyFn& body);

// The isError result for a refusal.
mcp::ToolResult refusal_result(const gate::Refusal& refusal);

// For resource reads and prompts: runs `body` after admission; refusals become errors
// whose message names the lock. `rows` counts rows shown (table samples).
Result<nlohmann::json> run_guarded_read(gate::Pipeline& pipeline, gate::CallRequest request,
                                        const std::function<Result<nlohmann::json>(const gate::Admission&,
                                                                                   std::optional<int64_t>& rows)>& body);

// Removes `biscuit_token` from a tool's arguments (it never reaches a handler's logic).
nlohmann::json without_token(const nlohmann::json& arguments);

// The schema property every Larder tool accepts for seed-compatible clients.
nlohmann::json biscuit_token_property();

}  // namespace larder::tools
