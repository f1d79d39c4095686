// LarderService: one `larder serve` instance assembled from its configuration —
// audit log, Biscuit gate, taint ledger, database (when it serves DB tools), the MCP server
// with Larder's tools, and the mTLS HTTPS listener (Streamable HTTP on /mcp, legacy SSE on
// /sse + /messages). Start fails with one clear error before anything listens.
#pragma once

#include "base/call_limiter.h"
#include "base/result.h"
#include "db/connection.h"
#include "db/database.h"
#include "net/server.h"
#include "policy/policy.h"
#include "tools/serve_config.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace larder::tools {

// The outcome of a configuration reload (docs/operations.md, "Reload").
struct ReloadOutcome {
  uint64_t attempt = 0;     // reloads tried since start (0: none yet)
  uint64_t generation = 1;  // the configuration in force: 1 at start, +1 per applied reload
  bool ok = true;
  std::string error;  // why the reload was refused (the configuration in force kept serving)
  // Settings that changed in the file but take effect only at a restart (as "table.key").
  std::vector<std::string> restart_needed;
  std::chrono::system_clock::time_point at{};
  std::string to_json() const;  // {"attempt","generation","ok","at","restart_needed"[,"error"]}
};

// Where run_until_signal's SIGHUP reads the new configuration, and where it writes each
// reload's outcome (JSON, as ReloadOutcome::to_json; `larder reload` reads it).
struct ReloadSource {
  std::function<Result<ServeConfig>()> load_config;  // none: SIGHUP is not taken
  std::string status_file;                           // empty: not written
};

class LarderService {
 public:
  static Result<std::unique_ptr<LarderService>> start(const ServeConfig& config);
  ~LarderService();
  LarderService(const LarderService&) = delete;
  LarderService& operator=(const LarderService&) = delete;

  uint16_t port() const;
  uint16_t admin_port() const;                    // the admin listener's (0 when [admin] enabled = false)
  net::ServerStats connection_stats() const;      // handshakes timed out / evicted, refusals, ...
  CallLimiter::Stats client_limit_stats() const;  // per-client-certificate admissions and refusals
  db::PoolStats database_stats() const;           // the query pool: sessions, replica calls, ...
  void stop();
  // Blocks until SIGTERM/SIGINT, then stops gracefully. With a source, SIGHUP reloads the
  // configuration meanwhile (signals arriving during a reload coalesce into one more).
  void run_until_signal(ReloadSource source = {});

  // Reload: the settings that can change while serving are taken from `next` — [tls] cert,
  // key, client_ca, crl, allowed_clients (new connections; open ones are checked against the
  // new CRL and allow-list at their next request); [biscuit] root keys, policy_file, run
  // limits, require_*; [rls] trusted keys; [tools] classes, and enabled for the database tools;
  // the per-client and per-lineage call limits. The rest needs a restart: a difference is named in
  // restart_needed (and logged) and the running value kept. All or nothing: anything invalid refuses the
  // whole reload, the configuration in force keeps serving, and the outcome says why. Calls in flight finish
  // under the configuration that admitted them. One reload at a time.
  ReloadOutcome reload(const ServeConfig& next);
  ReloadOutcome reload_from(const std::function<Result<ServeConfig>()>& load);
  ReloadOutcome last_reload() const;

  struct Parts;

 private:
  explicit LarderService(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// The taint ledger's connection for this configuration (embedded: role larder_gate with a
// password kept in <database.dir>/gate.json, created and applied on first use).
Result<db::ConnParams> ledger_connection(const ServeConfig& config);

// `larder serve --check-config`: everything start() reads from files, read and parsed the
// same way — the policy file, the Biscuit policy and root keys, the TLS certificate, key (and
// that they match), client CA and CRL, the database URLs or the embedded cluster's state —
// without opening the audit log, listening, or connecting to PostgreSQL. The first problem,
// in start()'s words.
Result<void> check_config(const ServeConfig& config);

// Reads the policy file named in the config, or the built-in default policy.
Result<std::string> load_policy(const ServeConfig& config);

// The policy file this configuration serves: [policy] file, or the compiled-in example
// [policy] example names ("healthcare" when neither is set).
Result<policy::Policy> load_served_policy(const ServeConfig& config);

}  // namespace larder::tools
