#include "tools/service_metrics.h"

#include "gate/reasons.h"
#include "mcp/protocol.h"
#include "obs/log.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>

namespace larder::tools {
namespace {

// The methods a Larder server answers; anything else a client sends is "other".
constexpr std::array<std::string_view, 15> kMethods = {"initialize",
                                                       "ping",
                                                       "tools/list",
                                                       "tools/call",
                                                       "resources/list",
                                                       "resources/read",
                                                       "resources/templates/list",
                                                       "resources/subscribe",
                                                       "resources/unsubscribe",
                                                       "prompts/list",
                                                       "prompts/get",
                                                       "completion/complete",
                                                       "logging/setLevel",
                                                       "notifications/initialized",
                                                       "notifications/cancelled"};

std::string method_label(const std::string& method) {
  if (method.empty()) return "unparsed";  // refused before the message could be read
  return std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end() ? method : "other";
}

std::string version_label(const std::string& version) {
  if (version.empty()) return "";
  const auto& known = mcp::supported_versions();
  return std::find(known.begin(), known.end(), version) != known.end() ? version : "other";
}

std::string outcome_label(const std::string& decision) {
  for (std::string_view known : {"allow", "deny", "error", "answered", "cancelled"}) {
    if (decision == known) return decision;
  }
  return "other";
}

std::string lock_label(const std::string& lock) {
  for (std::string_view known : {"mtls", "biscuit", "policy", "sql-guard", "taint", "database", "limits"}) {
    if (lock == known) return lock;
  }
  return "other";
}

double seconds(int64_t micros) {
  return static_cast<double>(micros) / 1e6;
}

}  // namespace

ServiceMetrics::ServiceMetrics(const std::string& audience, const ServedNames& served)
    : served_(served),
      operation_(registry_.histogram(
          "mcp_server_operation_duration_seconds",
          "MCP request duration as observed on the server, from receipt to the answer (OpenTelemetry "
          "mcp.server.operation.duration).",
          {"mcp_method_name", "gen_ai_tool_name", "error_type", "mcp_protocol_version"})),
      calls_(
          registry_.counter("larder_calls_total",
                            "Requests decided, by method, tool or prompt, and outcome (allow, deny, error, "
                            "answered: a protocol request, cancelled).",
                            {"method", "tool", "outcome"})),
      refusals_(registry_.counter("larder_refusals_total",
                                  "Calls refused, by the lock that refused and the kind of reason.",
                                  {"lock", "reason"})),
      stages_(registry_.histogram("larder_stage_duration_seconds",
                                  "Server-side time of each stage of a call: handshake (TLS, per "
                                  "connection), guard, verify, ledger, authorize, database (the tool "
                                  "body), taint.",
                                  {"stage"})),
      handshakes_(registry_.counter("larder_tls_handshakes_total",
                                    "TLS handshakes by outcome: ok, or why the connection was refused.",
                                    {"outcome"})),
      db_errors_(registry_.counter("larder_database_errors_total",
                                   "Calls refused by lock database, by kind (unavailable, timeout, "
                                   "too_costly, cancelled, statement).",
                                   {"kind"})),
      audit_records_(registry_.counter("larder_audit_records_total", "Audit records written.")),
      audit_bytes_(registry_.counter("larder_audit_bytes_total", "Bytes of audit records written.")),
      records_(audit_records_.with({})),
      bytes_(audit_bytes_.with({})),
      guard_(&stages_.with({"guard"})),
      verify_(&stages_.with({"verify"})),
      ledger_(&stages_.with({"ledger"})),
      authorize_(&stages_.with({"authorize"})),
      database_(&stages_.with({"database"})),
      taint_(&stages_.with({"taint"})),
      handshake_(&stages_.with({"handshake"})) {
  registry_
      .gauge("larder_build_info", "Larder's version and the audience this server answers to; always 1.",
             {"version", "audience"})
      .with({LARDER_VERSION, audience})
      .set(1);
}

std::string ServedNames::label(const std::string& method, const std::string& name) const {
  if (method == "tools/call") return tools.count(name) ? name : "unknown";
  if (method == "prompts/get") return prompts.count(name) ? name : "unknown";
  return "";  // resource URIs and the like are not labels
}

void log_call(const gate::AuditRecord& r, const ServedNames& served) {
  const auto level = r.decision == "error" ? spdlog::level::warn : spdlog::level::info;
  if (!spdlog::default_logger_raw()->should_log(level)) return;
  nlohmann::json f = {{"audience", r.server_audience},
                      {"method", method_label(r.method)},
                      {"decision", outcome_label(r.decision)}};
  if (!r.request_id.empty()) f["request_id"] = r.request_id;
  if (!r.trace_id.empty()) f["trace_id"] = r.trace_id;
  if (auto tool = served.label(r.method, r.tool); !tool.empty()) f["tool"] = tool;
  if (r.decision == "deny") {
    const std::string lock = lock_label(r.lock);
    f["lock"] = lock;
    f["reason"] = gate::refusal_kind(lock, r.reason);
  }
  if (!r.taint.empty() && r.taint != "unknown") f["taint"] = r.taint;
  if (!r.client_cert_cn.empty()) f["client"] = r.client_cert_cn;
  if (!r.lineage.empty()) f["lineage"] = r.lineage;
  if (r.rows) f["rows"] = *r.rows;
  nlohmann::json us = nlohmann::json::object();
  const auto& t = r.timings;
  for (const auto& [stage, v] : {std::pair<const char*, int64_t>{"guard", t.guard_us},
                                 {"verify", t.verify_us},
                                 {"ledger", t.ledger_us},
                                 {"authorize", t.authorize_us},
                                 {"database", t.tool_us},
                                 {"taint", t.taint_us}}) {
    if (v >= 0) us[stage] = v;
  }
  if (!us.empty()) f["us"] = std::move(us);
  obs::log_event(level, "call", f);
}

void ServiceMetrics::on_audit(const gate::AuditRecord& r, std::size_t bytes) {
  records_.inc();
  bytes_.inc(static_cast<double>(bytes));
  calls_.with({method_label(r.method), served_.label(r.method, r.tool), outcome_label(r.decision)}).inc();
  if (r.decision == "deny") {
    const std::string lock = lock_label(r.lock);
    const char* kind = gate::refusal_kind(lock, r.reason);
    refusals_.with({lock, kind}).inc();
    if (lock == "database") db_errors_.with({kind}).inc();
  }
  const auto& t = r.timings;
  const std::pair<obs::Histogram*, int64_t> stages[] = {{guard_, t.guard_us},   {verify_, t.verify_us},
                                                        {ledger_, t.ledger_us}, {authorize_, t.authorize_us},
                                                        {database_, t.tool_us}, {taint_, t.taint_us}};
  for (const auto& [histogram, us] : stages) {
    if (us >= 0) histogram->observe(seconds(us));
  }
}

void ServiceMetrics::on_request(const mcp::RequestRecord& r) {
  std::string error_type;
  if (r.error_code) {
    error_type = std::to_string(*r.error_code);
  } else if (r.error_result) {
    error_type = "tool_error";
  } else if (!r.error_message.empty()) {
    error_type = "cancelled";
  }
  // JSON-RPC codes are a small set in practice, but a label must not take any integer.
  if (r.error_code && (*r.error_code < -32768 || *r.error_code > -32000)) error_type = "other";
  operation_
      .with({method_label(r.method), served_.label(r.method, r.name), error_type,
             version_label(r.protocol_version)})
      .observe(std::chrono::duration<double>(r.duration).count());
}

void ServiceMetrics::on_handshake(std::string_view outcome, std::chrono::steady_clock::duration took) {
  handshakes_.with({outcome}).inc();
  if (outcome == "ok") handshake_->observe(std::chrono::duration<double>(took).count());
}

}  // namespace larder::tools
