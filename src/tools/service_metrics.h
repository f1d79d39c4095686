// ServiceMetrics: what one `larder serve` instance exposes at /metrics (docs/operations.md,
// "Metrics"). The modules report through hooks — the audit log's observer (every decision,
// with its stage timings), libmcp's request record (every request, with its duration and
// protocol revision), net's handshake observer — and through their own statistics, read at
// scrape time (connections, sessions, the query pool, the ledger, the caches).
//
// Names: where OpenTelemetry's MCP semantic conventions name a metric it is used, as
// Prometheus spells it (mcp.server.operation.duration → mcp_server_operation_duration_seconds,
// labelled mcp_method_name, gen_ai_tool_name, error_type, mcp_protocol_version); the rest
// are larder_*. Every label takes values from a closed set (the served tools and prompts, the
// MCP methods and revisions, the locks and refusal kinds): a client cannot add series.
#pragma once

#include "gate/audit_log.h"
#include "mcp/server.h"
#include "obs/metrics.h"

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace larder::tools {

class ServiceMetrics {
 public:
  explicit ServiceMetrics(const std::string& audience);

  obs::Registry& registry() { return registry_; }

  // The names labels may carry; anything else is "unknown".
  void set_served(std::set<std::string> tools, std::set<std::string> prompts);

  // The hooks.
  void on_audit(const gate::AuditRecord& record, std::size_t bytes);
  void on_request(const mcp::RequestRecord& record);
  void on_handshake(std::string_view outcome, std::chrono::steady_clock::duration took);

 private:
  std::string tool_label(const std::string& method, const std::string& name) const;

  obs::Registry registry_;
  std::set<std::string> tools_, prompts_;
  obs::HistogramFamily& operation_;
  obs::CounterFamily& calls_;
  obs::CounterFamily& refusals_;
  obs::HistogramFamily& stages_;
  obs::CounterFamily& handshakes_;
  obs::CounterFamily& db_errors_;
  obs::CounterFamily& audit_records_;
  obs::CounterFamily& audit_bytes_;
};

}  // namespace larder::tools
