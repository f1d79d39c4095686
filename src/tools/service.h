// LarderService: one `larder serve` instance assembled from its configuration —
// audit log, Biscuit gate, taint ledger, database (when it serves DB tools), the MCP server
// with Larder's tools, and the mTLS HTTPS listener (Streamable HTTP on /mcp, legacy SSE on
// /sse + /messages). Start fails with one clear error before anything listens.
#pragma once

#include "base/call_limiter.h"
#include "base/result.h"
#include "db/connection.h"
#include "db/database.h"
#include "gate/config.h"
#include "net/server.h"
#include "policy/policy.h"

#include <cstdint>
#include <memory>

namespace larder::tools {

class LarderService {
 public:
  static Result<std::unique_ptr<LarderService>> start(const gate::ServeConfig& config);
  ~LarderService();
  LarderService(const LarderService&) = delete;
  LarderService& operator=(const LarderService&) = delete;

  uint16_t port() const;
  uint16_t admin_port() const;                    // the admin listener's (0 when [admin] enabled = false)
  net::ServerStats connection_stats() const;      // handshakes timed out / evicted, refusals, ...
  CallLimiter::Stats client_limit_stats() const;  // per-client-certificate admissions and refusals
  db::PoolStats database_stats() const;           // the query pool: sessions, replica calls, ...
  void stop();
  void run_until_signal();  // blocks until SIGTERM/SIGINT, then stops gracefully

  struct Parts;

 private:
  explicit LarderService(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// The taint ledger's connection for this configuration (embedded: role larder_gate with a
// password kept in <database.dir>/gate.json, created and applied on first use).
Result<db::ConnParams> ledger_connection(const gate::ServeConfig& config);

// `larder serve --check-config`: everything start() reads from files, read and parsed the
// same way — the policy file, the Biscuit policy and root keys, the TLS certificate, key (and
// that they match), client CA and CRL, the database URLs or the embedded cluster's state —
// without opening the audit log, listening, or connecting to PostgreSQL. The first problem,
// in start()'s words.
Result<void> check_config(const gate::ServeConfig& config);

// Reads the policy file named in the config, or the built-in default policy.
Result<std::string> load_policy(const gate::ServeConfig& config);

// The policy file this configuration serves: [policy] file, or the compiled-in example
// [policy] example names ("healthcare" when neither is set).
Result<policy::Policy> load_served_policy(const gate::ServeConfig& config);

}  // namespace larder::tools
