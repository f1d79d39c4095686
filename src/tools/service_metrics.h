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

// The names a request may carry that this server serves: metric labels and log fields take a
// tool's or prompt's name only from here ("unknown" otherwise), never a resource URI (its
// parameters may be values).
struct ServedNames {
  std::set<std::string> tools, prompts;
  std::string label(const std::string& method, const std::string& name) const;
};

// The log line of one decision (obs::log_event "call"): ids, names from ServedNames, the
// outcome, the lock and the kind of reason (not its sentence), timings — no token, query,
// parameter or row.
void log_call(const gate::AuditRecord& record, const ServedNames& served);

class ServiceMetrics {
 public:
  // `served`: the names labels may carry (anything else is "unknown"); it must outlive this,
  // and is filled before the first request.
  ServiceMetrics(const std::string& audience, const ServedNames& served);

  obs::Registry& registry() { return registry_; }

  // The hooks.
  void on_audit(const gate::AuditRecord& record, std::size_t bytes);
  void on_request(const mcp::RequestRecord& record);
  void on_handshake(std::string_view outcome, std::chrono::steady_clock::duration took);

 private:
  obs::Registry registry_;
  const ServedNames& served_;
  obs::HistogramFamily& operation_;
  obs::CounterFamily& calls_;
  obs::CounterFamily& refusals_;
  obs::HistogramFamily& stages_;
  obs::CounterFamily& handshakes_;
  obs::CounterFamily& db_errors_;
  obs::CounterFamily& audit_records_;
  obs::CounterFamily& audit_bytes_;
  // The series every call records, resolved once.
  obs::Counter& records_;
  obs::Counter& bytes_;
  obs::Histogram *guard_, *verify_, *ledger_, *authorize_, *database_, *taint_, *handshake_;
};

}  // namespace larder::tools
