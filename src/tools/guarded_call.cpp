#include "tools/guarded_call.h"

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
  if (arguments.is_object()) {
    auto it = arguments.find("biscuit_token");
    if (it != arguments.end() && it->is_string()) request.argument_token = it->get<std::string>();
  }
  request.facts = std::move(facts);
  return request;
}

mcp::ToolResult refusal_result(const gate::Refusal& refusal) {
  mcp::ToolResult result = mcp::ToolResult::error(refusal.message());
  result.meta = {{"larder/decision", denial(refusal)}};
  return result;
}

mcp::RpcError refusal_error(const gate::Refusal& refusal) {
  return mcp::RpcError{mcp::error_code::kRefused, refusal.message(), denial(refusal)};
}

mcp::ToolResult run_guarded_tool(gate::Pipeline& pipeline, gate::CallRequest request,
                                 const ToolBodyFn& body) {
  auto admitted = pipeline.admit(std::move(request));
  if (auto* refusal = std::get_if<gate::Refusal>(&admitted)) return refusal_result(*refusal);
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
  if (completion->attenuated_token) result.meta["larder/biscuit_token"] = *completion->attenuated_token;
  return result;
}

mcp::HandlerResult run_guarded_read(gate::Pipeline& pipeline, gate::CallRequest request,
                                    const ReadBodyFn& body) {
  auto admitted = pipeline.admit(std::move(request));
  if (auto* refusal = std::get_if<gate::Refusal>(&admitted)) return refusal_error(*refusal);
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
