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

#include "base/result.h"
#include "gate/token_profile.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace larder::gate {

// How a tool's output may flow: sensitive reads taint the caller's lineage, egress tools
// refuse tainted lineages, neutral tools neither taint nor egress.
enum class DataFlow { kNeutral, kSensitiveRead, kEgress };
std::string to_string(DataFlow flow);

struct RootKeyConfig {
  std::optional<uint32_t> id;  // Biscuit rootKeyId this key answers to; none = default key
  std::string public_key;      // "ed25519/<hex>", "secp256r1/<hex>" or bare Ed25519 hex
};

struct ServeConfig {
  // [server]
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string audience = "larder-db";  // server_audience fact; tokens bind to it
  bool plain_http = false;             // loopback only, for development
  // SIGTERM: stop accepting, let calls in flight finish for up to this long, then cancel the
  // rest (their statements too), flush the audit log and exit 0.
  std::chrono::milliseconds drain_timeout{30000};

  // [tls]
  std::string tls_cert, tls_key, tls_client_ca, tls_crl;
  std::vector<std::string> allowed_clients;  // "cn:..", "san:..", "sha256:.."

  // [biscuit]
  std::vector<RootKeyConfig> root_keys;
  std::string policy_file;  // datalog policies; empty = built-in default (deny unless granted)
  uint64_t max_facts = 1000;
  uint64_t max_iterations = 100;
  std::chrono::microseconds max_time{5000};
  // Per authorization: facts plus what Datalog expressions create (RunLimits::max_memory_bytes).
  std::size_t max_memory_bytes = 8 << 20;
  std::size_t verify_cache_entries = 4096;
  // Refuse (lock biscuit) a token that carries no client-certificate binding check
  // (`check if client_cert_sha256(hex:…)` and the like, in any block), or whose authority
  // block sets no expiry (`check if time($t), $t <= <date>`). Turning either off needs the
  // acknowledgement "unbound_tokens" / "tokens_without_expiry".
  bool require_binding = true;
  bool require_expiry = true;

  // [database]
  std::string database_mode = "embedded";  // "embedded" | "url"
  std::string database_dir = ".larder";    // embedded: the state directory `larder db init` wrote
  std::string database_url;                // mode = url: role patients (runs the SQL)
  std::string database_writer_url;         // mode = url: role larder_context_writer (RLS context)
  std::string database_ledger_url;         // mode = url: role larder_gate (taint ledger, revocations)
  std::chrono::milliseconds statement_timeout{10000};
  // url (and ledger_url) reach PostgreSQL through a transaction-mode pooler such as PgBouncer:
  // no named prepared statements across transactions, no session settings (docs/scaling.md).
  bool transaction_pooler = false;
  // Hot-standby read replicas (the query role's URL on each); queries go to one that is up
  // and at most max_replica_lag behind, else to url (docs/deployment.md, "Read replicas").
  std::vector<std::string> database_replica_urls;
  std::chrono::milliseconds max_replica_lag{1000};
  int64_t max_rows = 1000;
  int64_t max_result_bytes = 4 << 20;
  bool sql_guard = true;
  // Model-written SQL whose planner cost estimate exceeds this is refused before it runs
  // (EXPLAIN in the same transaction; docs/database.md). 0 = no ceiling.
  double max_query_cost = 1e7;

  // [tools]
  std::vector<std::string> tools;                // enabled tools (names)
  std::map<std::string, DataFlow> tool_classes;  // name -> data-flow class

  // [policy]  what the agent may see (src/policy, docs/policy.md): a policy file, or one of
  // the compiled-in examples; neither = the "healthcare" example.
  std::string policy_path;
  std::string policy_example;
  // Serve even when `larder policy check` finds drift (acknowledged as "policy_drift"; every
  // start logs each difference as a warning).
  bool allow_drift = false;

  // [rls]
  std::vector<std::string> trusted_third_party_keys;  // blocks signed by these also feed RLS context

  // [taint]
  bool taint_enabled = true;  // (revocations are looked up on every call: no cache to configure)

  // [audit]
  std::string audit_path = ".larder/audit.jsonl";
  bool audit_fsync = false;
  // The log's head is anchored in PostgreSQL (larder_gate.audit_anchors) under this id;
  // empty = "<audience>@<host>:<absolute path>". When the anchor cannot be written for
  // longer than anchor_max_lag, calls are refused (fail closed).
  std::string audit_anchor_id;
  std::chrono::milliseconds audit_anchor_max_lag{5000};
  // At most one anchor write per interval (records appended meanwhile share it).
  std::chrono::milliseconds audit_anchor_interval{100};
  // Rotation (0 = off) and retention (0 = keep all), see docs/operations.md "Audit log
  // rotation": rotate_bytes, rotate_interval_s, keep_files, keep_days.
  uint64_t audit_rotate_bytes = 0;
  std::chrono::seconds audit_rotate_interval{0};
  uint64_t audit_keep_files = 0;
  int64_t audit_keep_days = 0;
  // Each record also to the syslog daemon's socket, facility authpriv (AuditSyslog).
  bool audit_syslog = false;
  std::string audit_syslog_socket = "/dev/log";

  // [limits]
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t max_connections = 1024;
  std::size_t worker_threads = 8;
  std::size_t max_sse_streams_per_session = 4;
  // Connections that have not finished the TLS handshake: each must finish within
  // handshake_timeout; beyond max_handshakes of them the oldest is closed to admit a new one.
  std::chrono::milliseconds handshake_timeout{5000};
  std::size_t max_handshakes = 512;
  // Per client certificate (its SHA-256): MCP calls in flight, and calls per second with a
  // burst (token bucket). 0 = no limit. Refused with 429 + Retry-After.
  std::size_t max_concurrent_calls_per_client = 16;
  std::size_t max_calls_per_second_per_client = 100;
  std::size_t call_burst_per_client = 200;
  // Per token lineage (every token derived from one authority block, across certificates and
  // connections): tool calls, reads and prompts in flight, and per second with a burst.
  // 0 = no limit. Refused as lock "limits" before any ledger lookup or Datalog.
  std::size_t max_concurrent_calls_per_lineage = 16;
  std::size_t max_calls_per_second_per_lineage = 100;
  std::size_t call_burst_per_lineage = 200;
  std::size_t max_json_depth = 64;  // JSON nested deeper is refused unparsed (-32700)
  std::size_t max_batch_size = 32;  // messages in a JSON-RPC batch (2025-03-26 sessions; -32600)

  // [profiles.<name>]  what `larder token issue --profile <name>` grants (gate/token_profile.h)
  std::vector<TokenProfile> profiles;
  const TokenProfile* profile(const std::string& name) const;

  // [compliance]  (egress server only)
  std::string compliance_api_url;  // when set, hipaa_compliance_check also POSTs the text here
  std::chrono::milliseconds compliance_api_timeout{10000};

  // [admin]  health, readiness and metrics (docs/operations.md) on a listener of their own:
  // plain HTTP on a loopback address by default; with tls, [tls]'s certificate, and only the
  // client certificates admin_allowed_clients names ("cn:..", "san:..", "sha256:..").
  bool admin_enabled = true;
  std::string admin_host = "127.0.0.1";
  uint16_t admin_port = 0;  // 0 = any free port (`larder serve --admin-port-file` says which)
  bool admin_tls = false;
  std::vector<std::string> admin_allowed_clients;
  bool metrics_enabled = true;
  // /readyz asks PostgreSQL (the query pool, the ledger, the policy check) at most this often.
  std::chrono::milliseconds readiness_cache{1000};

  // [log]  the process's log lines: "text" (for a person) or "json" (one object per line), and
  // the least severe level written (trace, debug, info, warn, error, critical, off).
  std::string log_format = "text";
  std::string log_level = "info";

  // i_understand_this_is_insecure (top level): the insecure settings the file acknowledges.
  std::vector<std::string> insecure_acknowledged;

  DataFlow data_flow(const std::string& tool) const;
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

}  // namespace larder::gate
