// ServeConfig: everything `larder serve --config larder.toml` reads, validated up front.
// Invalid configuration yields one error naming the offending key (e.g. "tls.client_ca:
// file not found: ..."), before any socket is opened or any database touched.
// Relative paths in the file are resolved against the file's directory.
//
// Strict by design: unknown keys, tool names and data-flow classes are refused with the
// valid choices listed; tls.client_ca must be a CA certificate. A setting that turns a
// protection off is refused unless the file names it in the top-level acknowledgement list
//
//   i_understand_this_is_insecure = ["plain_http", "unbound_tokens", "tokens_without_expiry"]
//
// and every start of a server with such a setting logs a warning for it (insecure_warnings).
// An acknowledgement for a setting that is not in effect is refused too (it would hide the
// day the setting comes back).
#pragma once

#include "base/call_limiter.h"
#include "base/result.h"
#include "db/database.h"
#include "gate/audit_log.h"
#include "gate/gate.h"
#include "gate/pipeline.h"
#include "gate/token_profile.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "net/server.h"
#include "obs/log.h"
#include "tools/admin.h"
#include "tools/compliance_tool.h"
#include "tools/db_registration.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace larder::tools {

// Larder's call limits per client certificate and per token lineage ([limits]
// max_concurrent_calls_per_*, max_calls_per_second_per_*, call_burst_per_*). The libraries'
// own default is no limit (CallLimiter::Options{}: libmcp's and the pipeline's callers decide);
// a served configuration starts from these.
inline constexpr CallLimiter::Options kServedCallLimits{
    .max_concurrent = 16, .rate_per_second = 100, .burst = 200};

// A served configuration's starting points where they differ from a library's own default
// (tests/unit/tools/serve_config_test.cpp lists exactly these differences): the gate's
// require_binding and require_expiry on (the library leaves them to its callers), and
// kServedCallLimits per client certificate and per token lineage.
gate::GateOptions served_gate_options();
gate::PipelineOptions served_pipeline_options();
mcp::HttpTransportOptions served_transport_options();

// The configuration is assembled from the modules' own option structs: the parser writes each
// larder.toml key straight into the member of the module that uses it, and each setting's
// default is that member's default (one place; tests/unit/tools/serve_config_test.cpp,
// "EmptyFileGivesTheModulesDefaults", fails when they drift). What is not a module's option
// (where the database is, which tools and policy file, the listener's address) is Larder's own.
struct ServeConfig {
  // [server] host, port, plain_http. The library listener's port defaults to 0 (any free
  // port, for its tests and `larder demo`); a served one to 8443.
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  bool plain_http = false;  // loopback only, for development

  // [tls] cert, key, client_ca, crl, allowed_clients ("cn:..", "san:..", "sha256:..").
  net::TlsServerConfig tls;
  // [limits] body and header sizes, timeouts, connections, handshakes, worker_threads; and
  // [server] drain_timeout_ms as stop_grace (SIGTERM: stop accepting, let calls in flight finish
  // for up to this long, then cancel the rest, flush the audit log and exit 0).
  net::ServerLimits limits;

  // [biscuit] root keys, run limits (max_facts, max_iterations, max_time_us, max_memory_bytes),
  // verify_cache_entries, require_binding, require_expiry; [server] audience; [rls]
  // trusted_third_party_keys. policy_code, dimensions and unmask_rights are filled at start
  // (gate_options_from: from biscuit.policy_file and the [policy] file).
  // require_binding and require_expiry are on (turning either off needs an acknowledgement).
  gate::GateOptions gate = served_gate_options();
  std::string policy_file;  // [biscuit] policy_file: datalog policies; empty = built-in default

  // [database] where it is: "embedded" (the state directory `larder db init` wrote) or "url"
  // (role patients runs the SQL, larder_context_writer reads the RLS context key,
  // larder_gate keeps the taint ledger and revocations), and hot-standby read replicas (the
  // query role's URL on each; docs/deployment.md, "Read replicas").
  std::string database_mode = "embedded";
  std::string database_dir = ".larder";
  std::string database_url, database_writer_url, database_ledger_url;
  std::vector<std::string> database_replica_urls;
  // [database] statement_timeout_ms (default_timeout), transaction_pooler, max_query_cost,
  // max_replica_lag_ms: the pool's own options. The connections are filled at start from the
  // URLs or the embedded cluster's state, and pool_size from limits.worker_threads.
  db::DatabaseConfig database;
  // [database] max_rows, max_result_bytes: each pg_query answer's (database.sql_guard is
  // always true: it is not stored).
  DbServiceOptions db_service;

  // [tools]
  std::vector<std::string> tools;                      // enabled tools (names)
  std::map<std::string, gate::DataFlow> tool_classes;  // name -> data-flow class

  // [policy]  what the agent may see (src/policy, docs/policy.md): a policy file, or one of
  // the compiled-in examples; neither = the "healthcare" example.
  std::string policy_path;
  std::string policy_example;
  // Serve even when `larder policy check` finds drift (acknowledged as "policy_drift"; every
  // start logs each difference as a warning).
  bool allow_drift = false;

  // [taint] enabled; [limits] *_per_lineage. require_peer follows server.plain_http at start.
  gate::PipelineOptions pipeline = served_pipeline_options();

  // [audit] path, fsync, anchor (id, max lag, interval), rotation and retention, syslog.
  gate::AuditOptions audit;

  // [limits] max_sse_streams_per_session, *_per_client (refused with 429 + Retry-After).
  mcp::HttpTransportOptions transport = served_transport_options();
  // [limits] max_json_depth, max_batch_size (and the handler pool, from worker_threads).
  mcp::ServerOptions mcp;

  // [profiles.<name>]  what `larder token issue --profile <name>` grants (gate/token_profile.h)
  std::vector<gate::TokenProfile> profiles;
  const gate::TokenProfile* profile(const std::string& name) const;

  // [compliance] api_url, api_timeout_ms (egress server only).
  ComplianceOptions compliance;

  // [admin]  health, readiness and metrics (docs/operations.md) on a listener of their own:
  // plain HTTP on a loopback address by default; with tls, [tls]'s certificate, and only the
  // client certificates admin.allowed_clients names (admin.listener.tls.allowed_clients).
  // admin.listener holds host, port (0 = any free port: `larder serve --admin-port-file` says
  // which) and the allow-list; its plain_http and TLS files follow admin_tls at start.
  bool admin_enabled = true;
  bool admin_tls = false;
  bool metrics_enabled = true;
  AdminOptions admin;

  // [log] format, level.
  obs::LogOptions log;

  // i_understand_this_is_insecure (top level): the insecure settings the file acknowledges.
  std::vector<std::string> insecure_acknowledged;

  gate::DataFlow data_flow(const std::string& tool) const;
};

// Every key the parser accepts, as "table.key" ("biscuit.root_keys[].id",
// "profiles.<name>.rights"): what docs/configuration.md must document.
std::vector<std::string> config_keys();

// The tools a Larder server can serve (tools/ registers exactly these), in the order
// messages list them.
const std::vector<std::string>& known_tools();

// The acknowledgements i_understand_this_is_insecure accepts, each with the setting it
// allows: "plain_http" (server.plain_http = true), "unbound_tokens" (biscuit.require_binding
// = false), "tokens_without_expiry" (biscuit.require_expiry = false).
const std::vector<std::string>& insecure_acknowledgements();

// One sentence per protection `config` turns off (empty when none): what is off and what it
// exposes. Servers log each as a warning at every start.
std::vector<std::string> insecure_warnings(const ServeConfig& config);

// Parses and validates; `path` is used for error messages and relative paths.
Result<ServeConfig> load_serve_config(const std::string& path);
Result<ServeConfig> parse_serve_config(std::string_view toml_text, const std::string& base_dir,
                                       const std::string& source_name = "config");

}  // namespace larder::tools
