#include "tools/guarded_call.h"

#include "tools/http_auth.h"

#include "db/availability.h"

#include <chrono>

namespace larder::tools {
namespace {

nlohmann::json decision_meta(const std::string& decision, const std::string& lock, const std::string& reason,
                             const std::string& taint) {
  return {{"decision", decision}, {"lock", lock}, {"reason", reason}, {"taint", taint}};
}

// What the client hears: the body's sentence, except for an unreachable database, which is
// one fixed sentence (the details — host, port, role, libpq's message — are logged once per
// outage by db::Availability, never sent).
std::string client_reason(const BodyFailure& f) {
  if (f.reach == BodyFailure::Reach::kUnavailable) return db::kUnavailableReason;
  return f.reason;
}

// The pipeline's refusal for a body that failed (audited; taints when the data was reached).
gate::Refusal refuse(gate::Pipeline& pipeline, gate::Admission& admission, const BodyFailure& f) {
  return pipeline.refuse(admission, f.lock, client_reason(f), f.reach == BodyFailure::Reach::kDataReached);
}

// The decision object of a refusal: a tool result's _meta["larder/decision"], a refused
// read's or prompt's error data.
nlohmann::json denial(const gate::Refusal& refusal) {
  return decision_meta("deny", gate::lock_name(refusal.lock), refusal.reason, "");
}

}  // namespace

gate::CallRequest call_request(mcp::RequestContext& ctx, const nlohmann::json& arguments,
                               gate::CallFacts facts) {
  ctx.mark_recorded();  // the pipeline audits this call's decision
  gate::CallRequest request;
  request.peer = ctx.peer();
  request.authorization = ctx.header("authorization");
  request.request_id = ctx.correlation_id();
  request.trace_id = mcp::trace_id_of(ctx.traceparent());
  if (arguments.is_object()) {
    auto it = arguments.find("biscuit_token");
    if (it != arguments.end() && it->is_string()) request.argument_token = it->get<std::string>();
  }
  request.facts = std::move(facts);
  return request;
}

mcp::ToolResult refusal_result(const gate::Refusal& refusal) {
  mcp::ToolResult result = mcp::ToolResult::error(refusal.message());
  // A refusal carries no data, only Larder's own words.
  result.meta = {{"larder/decision", denial(refusal)},
                 {"ifc", {{"integrity", "trusted"}, {"confidentiality", "public"}}}};
  return result;
}

nlohmann::json ifc_labels(const gate::CallFacts& facts) {
  nlohmann::json relations = nlohmann::json::array();
  for (const auto& t : facts.tables) relations.push_back(t);
  // Rows were written by the database's users (and an egress tool's answer by a third
  // party): untrusted, whoever may read them. Private when the call read sensitive data.
  return {{"integrity", "untrusted"},
          {"confidentiality", facts.flow == gate::DataFlow::kSensitiveRead ? "private" : "public"},
          {"metadata",
           {{"source", "larder"}, {"data_flow", gate::to_string(facts.flow)}, {"relations", relations}}}};
}

mcp::RpcError refusal_error(const gate::Refusal& refusal) {
  return mcp::RpcError{mcp::error_code::kRefused, refusal.message(), denial(refusal)};
}

mcp::ToolResult run_guarded_tool(mcp::RequestContext& ctx, gate::Pipeline& pipeline,
                                 gate::CallRequest request, const ToolBodyFn& body) {
  const TokenSource source = token_source(request);
  auto admitted = pipeline.admit(std::move(request));
  if (auto* refusal = std::get_if<gate::Refusal>(&admitted)) {
    challenge_refused_credentials(ctx, source, *refusal);
    return refusal_result(*refusal);
  }
  auto& admission = std::get<gate::Admission>(admitted);

  auto started = std::chrono::steady_clock::now();
  auto produced = body(admission);
  admission.request.timings.tool_us = gate::micros_since(started);
  if (auto* failed = std::get_if<BodyFailure>(&produced))
    return refusal_result(refuse(pipeline, admission, *failed));
  ToolBody& made = std::get<ToolBody>(produced);
  auto completed = pipeline.complete(admission, made.rows);
  // The result is withheld when its taint could not be recorded or it could not be audited.
  if (auto* refusal = std::get_if<gate::Refusal>(&completed)) return refusal_result(*refusal);
  auto* completion = &std::get<gate::Completion>(completed);
  mcp::ToolResult result = std::move(made.result);
  if (!result.meta.is_object()) result.meta = nlohmann::json::object();
  result.meta["larder/decision"] =
      decision_meta("allow", "policy", "allowed by policy #" + std::to_string(admission.grant.policy_index),
                    completion->taint_state);
  result.meta["ifc"] = ifc_labels(admission.request.facts);
  if (completion->attenuated_token) result.meta["larder/biscuit_token"] = *completion->attenuated_token;
  return result;
}

mcp::HandlerResult run_guarded_read(mcp::RequestContext& ctx, gate::Pipeline& pipeline,
                                    gate::CallRequest request, const ReadBodyFn& body) {
  const TokenSource source = token_source(request);
  auto admitted = pipeline.admit(std::move(request));
  if (auto* refusal = std::get_if<gate::Refusal>(&admitted)) {
    challenge_refused_credentials(ctx, source, *refusal);
    return refusal_error(*refusal);
  }
  auto& admission = std::get<gate::Admission>(admitted);
  std::optional<int64_t> rows;
  auto started = std::chrono::steady_clock::now();
  auto produced = body(admission, rows);
  admission.request.timings.tool_us = gate::micros_since(started);
  if (auto* failed = std::get_if<BodyFailure>(&produced))
    return refusal_error(refuse(pipeline, admission, *failed));
  auto completed = pipeline.complete(admission, rows);
  if (auto* refusal = std::get_if<gate::Refusal>(&completed)) return refusal_error(*refusal);
  // Resource contents and prompt messages have no place for _meta the agent would switch
  // to, so sensitive reads there are covered by the lineage ledger alone.
  return std::move(std::get<nlohmann::json>(produced));
}

nlohmann::json without_token(const nlohmann::json& arguments) {
  if (!arguments.is_object()) return arguments;
  nlohmann::json copy = arguments;
  copy.erase("biscuit_token");
  return copy;
}

nlohmann::json biscuit_token_property() {
  return {{"type", "string"},
          {"description",
           "Biscuit authorization token (base64url). Filled in by the client, never by a model; "
           "`Authorization: Bearer` works too."}};
}

}  // namespace larder::tools
