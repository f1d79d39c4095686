#include "tools/service.h"
#include "base/files.h"
#include "base/time.h"

#include "base/json.h"
#include "db/availability.h"
#include "db/cluster.h"
#include "db/config.h"
#include "db/connection.h"
#include "db/database.h"
#include "examples/examples.h"
#include "gate/audit_log.h"
#include "gate/audit_syslog.h"
#include "gate/gate.h"
#include "gate/pipeline.h"
#include "gate/taint_ledger.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "mcp/thread_pool.h"
#include "net/server.h"
#include "policy/apply.h"
#include "tools/admin.h"
#include "tools/compliance_tool.h"
#include "tools/db_registration.h"
#include "tools/http_auth.h"
#include "tools/service_metrics.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace larder::tools {
namespace {

namespace fs = std::filesystem;

bool serves_db_tools(const ServeConfig& c) {
  if (c.tools.empty()) return true;
  for (const auto& t : c.tools) {
    if (t == "pg_query" || t == "pg_explain" || t == "pg_metadata") return true;
  }
  return false;
}

bool serves_compliance(const ServeConfig& c) {
  return std::find(c.tools.begin(), c.tools.end(), "hipaa_compliance_check") != c.tools.end();
}

// The taint ledger's credentials for an embedded cluster: role larder_gate with a password
// generated once and kept next to the cluster state (mode 0600).
Result<db::ConnParams> embedded_ledger(const fs::path& state_dir) {
  auto state = db::ClusterState::load(db::state_file_path(state_dir));
  if (!state) return state.error();
  fs::path secret = state_dir / "gate.json";
  std::string password;
  bool fresh = false;
  if (fs::exists(secret)) {
    auto text = read_file(secret.string());
    auto parsed = parse_json_bounded(text ? *text : std::string());
    const nlohmann::json j = parsed ? std::move(*parsed) : nlohmann::json();
    if (!j.is_object() || !j.contains("ledger_password") || !j["ledger_password"].is_string()) {
      return make_error("config.invalid",
                        secret.string() + " is damaged; delete it to create a new ledger password");
    }
    password = j["ledger_password"].get<std::string>();
  } else {
    auto generated = db::random_hex(24);
    if (!generated) return generated.error();
    password = *generated;
    fresh = true;
  }
  // Idempotent: schema, tables and role; the password is (re)applied so the file and the
  // role always agree.
  if (auto setup = gate::apply_gate_setup(state->admin(), password); !setup) return setup.error();
  if (fresh) {
    std::string tmp = secret.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << nlohmann::json{{"ledger_password", password}}.dump() << "\n";
    }
    ::chmod(tmp.c_str(), 0600);
    fs::rename(tmp, secret);
  }
  db::ConnParams p;
  p.set("host", state->host).set("port", std::to_string(state->port)).set("dbname", state->database);
  p.set("user", gate::kGateRole).set("password", password);
  return p;
}

// The query role's and the context writer's connections (and the replicas'): parsed from
// the URLs, or read from the embedded cluster's state file. Opens no connection.
Result<db::DatabaseConfig> database_connections(const ServeConfig& c) {
  // The pool's options as configured; the connections filled in here.
  db::DatabaseConfig db_config = c.database;
  if (c.database_mode == "url") {
    auto q = db::ConnParams::parse(c.database_url);
    if (!q) return make_error("config.invalid", "database.url: " + q.error().message);
    auto w = db::ConnParams::parse(c.database_writer_url);
    if (!w) return make_error("config.invalid", "database.writer_url: " + w.error().message);
    db_config.query = *q;
    db_config.writer = *w;
    for (const auto& url : c.database_replica_urls) {
      auto r = db::ConnParams::parse(url);
      if (!r) return make_error("config.invalid", "database.replicas: " + r.error().message);
      db_config.replicas.push_back(*r);
    }
  } else {
    auto state = db::ClusterState::load(db::state_file_path(c.database_dir));
    if (!state) {
      return make_error("config.invalid", "database.dir: no embedded cluster state in " + c.database_dir +
                                              " (run `larder db init` first): " + state.error().message);
    }
    db_config.query = state->query();
    db_config.writer = state->writer();
  }
  return db_config;
}

// The HTTPS listener's settings: address, TLS files, limits.
net::ServerConfig listener_config(const ServeConfig& c) {
  net::ServerConfig server_config;
  server_config.host = c.host;
  server_config.port = c.port;
  server_config.plain_http = c.plain_http;
  server_config.tls = c.tls;
  server_config.limits = c.limits;
  // [limits] worker_threads handlers at once (mcp handler_threads), and the spare workers that
  // keep cancellations and answers flowing while every handler slot is taken.
  server_config.limits.worker_threads = c.limits.worker_threads + mcp::HttpTransport::kSpareWorkers;
  return server_config;
}

// A reload (docs/operations.md, "Reload") takes every setting but these from the new file;
// these keep the values the server started with, and each that differs is named (it takes
// effect at the next restart). `next` comes back with the running values in their place.
std::vector<std::string> keep_restart_only(const ServeConfig& running, ServeConfig& next) {
  std::vector<std::string> differ;
  auto keep = [&](auto& field, const auto& was, const char* key) {
    if (!(field == was)) {
      differ.emplace_back(key);
      field = was;
    }
  };
  keep(next.host, running.host, "server.host");
  keep(next.port, running.port, "server.port");
  keep(next.gate.audience, running.gate.audience, "server.audience");
  keep(next.plain_http, running.plain_http, "server.plain_http");
  keep(next.limits.stop_grace, running.limits.stop_grace, "server.drain_timeout_ms");
  keep(next.database_mode, running.database_mode, "database.mode");
  keep(next.database_dir, running.database_dir, "database.dir");
  keep(next.database_url, running.database_url, "database.url");
  keep(next.database_writer_url, running.database_writer_url, "database.writer_url");
  keep(next.database_ledger_url, running.database_ledger_url, "database.ledger_url");
  keep(next.database_replica_urls, running.database_replica_urls, "database.replicas");
  keep(next.database.max_replica_lag, running.database.max_replica_lag, "database.max_replica_lag_ms");
  keep(next.database.transaction_pooler, running.database.transaction_pooler, "database.transaction_pooler");
  keep(next.database.default_timeout, running.database.default_timeout, "database.statement_timeout_ms");
  keep(next.db_service.max_rows, running.db_service.max_rows, "database.max_rows");
  keep(next.db_service.max_result_bytes, running.db_service.max_result_bytes, "database.max_result_bytes");
  keep(next.database.max_query_cost, running.database.max_query_cost, "database.max_query_cost");
  keep(next.policy_path, running.policy_path, "policy.file");
  keep(next.policy_example, running.policy_example, "policy.example");
  keep(next.allow_drift, running.allow_drift, "policy.allow_drift");
  keep(next.pipeline.taint_enabled, running.pipeline.taint_enabled, "taint.enabled");
  keep(next.audit.path, running.audit.path, "audit.path");
  keep(next.audit.log.sync, running.audit.log.sync, "audit.fsync");
  keep(next.audit.anchor_id, running.audit.anchor_id, "audit.anchor_id");
  keep(next.audit.anchor_max_lag, running.audit.anchor_max_lag, "audit.anchor_max_lag_ms");
  keep(next.audit.anchor_interval, running.audit.anchor_interval, "audit.anchor_interval_ms");
  keep(next.limits.max_body_bytes, running.limits.max_body_bytes, "limits.max_body_bytes");
  keep(next.limits.max_header_bytes, running.limits.max_header_bytes, "limits.max_header_bytes");
  keep(next.limits.request_timeout, running.limits.request_timeout, "limits.request_timeout_ms");
  keep(next.limits.idle_timeout, running.limits.idle_timeout, "limits.idle_timeout_ms");
  keep(next.limits.max_connections, running.limits.max_connections, "limits.max_connections");
  keep(next.limits.worker_threads, running.limits.worker_threads, "limits.worker_threads");
  keep(next.transport.max_streams_per_session, running.transport.max_streams_per_session,
       "limits.max_sse_streams_per_session");
  keep(next.limits.handshake_timeout, running.limits.handshake_timeout, "limits.handshake_timeout_ms");
  keep(next.limits.max_handshakes, running.limits.max_handshakes, "limits.max_handshakes");
  keep(next.mcp.max_json_depth, running.mcp.max_json_depth, "limits.max_json_depth");
  keep(next.mcp.max_batch_size, running.mcp.max_batch_size, "limits.max_batch_size");
  keep(next.compliance.api_url, running.compliance.api_url, "compliance.api_url");
  keep(next.compliance.api_timeout, running.compliance.api_timeout, "compliance.api_timeout_ms");
  keep(next.admin_enabled, running.admin_enabled, "admin.enabled");
  keep(next.admin.listener.host, running.admin.listener.host, "admin.host");
  keep(next.admin.listener.port, running.admin.listener.port, "admin.port");
  keep(next.admin_tls, running.admin_tls, "admin.tls");
  keep(next.admin.listener.tls.allowed_clients, running.admin.listener.tls.allowed_clients,
       "admin.allowed_clients");
  keep(next.metrics_enabled, running.metrics_enabled, "admin.metrics");
  keep(next.admin.readiness_cache, running.admin.readiness_cache, "admin.readiness_cache_ms");
  return differ;
}

// The gate for `c`: its root keys, trusted third-party keys and Datalog policy ([biscuit]
// policy_file, or the built-in one), with the RLS context of `data_policy`. A policy that does
// not parse is named by its file.
Result<std::unique_ptr<gate::Gate>> make_gate(const ServeConfig& c, const policy::Policy* data_policy) {
  auto code = load_policy(c);
  if (!code) return code.error();
  auto gate = gate::Gate::create(gate::gate_options_from(c.gate, *code, data_policy));
  if (!gate && !c.policy_file.empty() && gate.error().message.rfind("policy: ", 0) == 0) {
    return make_error(gate.error().code,
                      "biscuit.policy_file " + c.policy_file + ": " + gate.error().message.substr(8));
  }
  return gate;
}

}  // namespace

Result<void> check_config(const ServeConfig& c) {
  auto data_policy = load_served_policy(c);
  if (!data_policy) return data_policy.error();
  // The root keys, the trusted third-party keys and the Datalog policy, parsed as start() does.
  auto gate = make_gate(c, &*data_policy);
  if (!gate) return gate.error();
  auto connections = database_connections(c);
  if (!connections) return connections.error();
  if (c.database_mode == "url") {
    // Only a URL to parse (embedded: ledger_connection would set up the cluster's role).
    if (auto ledger = ledger_connection(c); !ledger) return ledger.error();
  }
  // The TLS context the listener would use (certificate chain, key and their match, client
  // CA, CRL), built and never bound.
  auto http = net::Server::create(listener_config(c),
                                  [](const net::HttpRequest&, std::shared_ptr<net::Responder>) {});
  if (!http) return http.error();
  return {};
}

Result<db::ConnParams> ledger_connection(const ServeConfig& c) {
  if (c.database_mode == "url") {
    auto l = db::ConnParams::parse(c.database_ledger_url);
    if (!l) return make_error("config.invalid", "database.ledger_url: " + l.error().message);
    return *l;
  }
  return embedded_ledger(c.database_dir);
}

Result<std::string> load_policy(const ServeConfig& config) {
  if (config.policy_file.empty()) return gate::default_policy_code();
  auto text = read_file(config.policy_file);
  if (!text) return make_error("config.invalid", "biscuit.policy_file: " + text.error().message);
  return text;
}

Result<policy::Policy> load_served_policy(const ServeConfig& config) {
  if (!config.policy_path.empty()) return policy::load(config.policy_path);
  auto example = examples::find(config.policy_example.empty() ? "healthcare" : config.policy_example);
  if (!example) return Error{"config.invalid", "policy.example: " + example.error().message, ""};
  return policy::parse((*example)->policy, "<example " + (*example)->name + ">/policy.toml");
}

struct LarderService::Parts {
  ServeConfig config;                           // as started; restart-only settings are read from here
  std::unique_ptr<ServiceMetrics> metrics;      // first in, last out: every hook points here
  ServedNames served;                           // filled once the tools are registered
  std::unique_ptr<policy::Policy> data_policy;  // the policy file: every lock is built from it
  std::unique_ptr<gate::AuditLog> audit;
  std::shared_ptr<gate::TaintLedger> ledger;  // shared with the audit log's anchor thread
  std::unique_ptr<gate::Pipeline> pipeline;
  std::unique_ptr<db::Database> database;
  std::unique_ptr<mcp::Server> mcp;
  std::shared_ptr<DbService> db_service;
  std::unique_ptr<mcp::HttpTransport> transport;
  std::unique_ptr<net::Server> http;
  std::shared_ptr<db::Availability> availability;
  CancellationToken stopping;          // the drain time ran out: statements still running are cancelled
  std::unique_ptr<AdminServer> admin;  // last in, first out: its checks use the parts above

  // Reload: one at a time; `current` is the configuration in force (restart-only settings as
  // started), `policy_text` the [policy] file's bytes at start (a change needs a restart).
  std::mutex reload_mu;
  ServeConfig current;      // guarded by reload_mu
  std::string policy_text;  // guarded by reload_mu
  mutable std::mutex outcome_mu;
  ReloadOutcome last;  // guarded by outcome_mu
  std::atomic<uint64_t> reloads_ok{0}, reloads_failed{0}, generation{1};
  // The verification caches of the gates a reload retired (their counters carry on).
  std::atomic<uint64_t> retired_verify_hits{0}, retired_verify_misses{0};
};

namespace {

// Module statistics read at scrape time: connections, sessions, the query pool, the ledger,
// the caches, the per-client and per-lineage limits.
void add_collectors(LarderService::Parts& p) {
  obs::Registry& reg = p.metrics->registry();
  auto& connections = reg.gauge("larder_connections", "Connections open now, by state.", {"state"});
  auto& accepted = reg.counter("larder_connections_accepted_total", "Connections accepted.");
  auto& at_capacity = reg.counter("larder_connections_refused_total",
                                  "Connections closed because max_connections were open.");
  auto& sessions =
      reg.gauge("larder_mcp_sessions", "MCP sessions (Streamable HTTP and legacy SSE) open now.");
  reg.on_collect([&, http = p.http.get(), transport = p.transport.get()] {
    const auto s = http->stats();
    connections.with({"handshaking"}).set(static_cast<double>(s.handshaking));
    connections.with({"established"}).set(static_cast<double>(s.established));
    accepted.with({}).mirror(static_cast<double>(s.accepted));
    at_capacity.with({}).mirror(static_cast<double>(s.refused_at_capacity));
    sessions.with({}).set(static_cast<double>(transport->session_count()));
  });
  auto& limits = reg.counter("larder_limit_refusals_total",
                             "Calls refused by a call limit, by subject (client: per certificate, HTTP 429; "
                             "lineage: per token lineage, lock limits) and kind.",
                             {"subject", "kind"});
  reg.on_collect([&, transport = p.transport.get(), pipeline = p.pipeline.get()] {
    const auto c = transport->client_limit_stats();
    limits.with({"client", "concurrency"}).mirror(static_cast<double>(c.refused_concurrency));
    limits.with({"client", "rate"}).mirror(static_cast<double>(c.refused_rate));
    const auto l = pipeline->lineage_limit_stats();
    limits.with({"lineage", "concurrency"}).mirror(static_cast<double>(l.refused_concurrency));
    limits.with({"lineage", "rate"}).mirror(static_cast<double>(l.refused_rate));
  });
  auto& reloads = reg.counter("larder_config_reloads_total",
                              "Configuration reloads (SIGHUP, `larder reload`), by outcome (ok: applied; "
                              "error: refused, the configuration in force kept serving).",
                              {"outcome"});
  auto& generation =
      reg.gauge("larder_config_generation", "The configuration in force: 1 at start, +1 per applied reload.");
  reg.on_collect([&, parts = &p] {
    reloads.with({"ok"}).mirror(static_cast<double>(parts->reloads_ok.load()));
    reloads.with({"error"}).mirror(static_cast<double>(parts->reloads_failed.load()));
    generation.with({}).set(static_cast<double>(parts->generation.load()));
  });
  auto& cache_hits = reg.counter("larder_cache_hits_total",
                                 "Cache hits, by cache (verify: verified tokens; "
                                 "sql_verdict: SQL guard verdicts).",
                                 {"cache"});
  auto& cache_misses = reg.counter("larder_cache_misses_total", "Cache misses, by cache.", {"cache"});
  auto& cache_entries = reg.gauge("larder_cache_entries", "Entries held now, by cache.", {"cache"});
  reg.on_collect([&, parts = &p, database = p.database.get()] {
    const auto v = parts->pipeline->gate()->cache_stats();
    cache_hits.with({"verify"}).mirror(static_cast<double>(v.hits + parts->retired_verify_hits.load()));
    cache_misses.with({"verify"}).mirror(static_cast<double>(v.misses + parts->retired_verify_misses.load()));
    cache_entries.with({"verify"}).set(static_cast<double>(v.entries));
    if (database) {
      const auto g = database->guard().cache_stats();
      cache_hits.with({"sql_verdict"}).mirror(static_cast<double>(g.hits));
      cache_misses.with({"sql_verdict"}).mirror(static_cast<double>(g.misses));
      cache_entries.with({"sql_verdict"}).set(static_cast<double>(g.entries));
    }
  });
  if (p.database) {
    auto& pool =
        reg.gauge("larder_db_pool_sessions", "Query-pool sessions now, by state (in_use, idle).", {"state"});
    auto& waiting = reg.gauge("larder_db_pool_waiting", "Requests waiting for a query-pool session now.");
    auto& wait_timeouts = reg.counter("larder_db_pool_wait_timeouts_total",
                                      "Requests refused after waiting for a session until their deadline.");
    auto& created = reg.counter("larder_db_sessions_created_total", "Query-pool sessions opened.");
    auto& discarded = reg.counter("larder_db_sessions_discarded_total",
                                  "Query-pool sessions closed (broken, stale, evicted).");
    auto& watchdog = reg.counter("larder_db_watchdog_cancels_total",
                                 "Statements cancelled at their deadline by the watchdog.");
    auto& replica = reg.counter("larder_db_replica_calls_total", "Requests served by a read replica.");
    reg.on_collect([&, database = p.database.get()] {
      const auto s = database->stats();
      pool.with({"in_use"})
          .set(static_cast<double>(s.open_sessions - std::min(s.open_sessions, s.idle_sessions)));
      pool.with({"idle"}).set(static_cast<double>(s.idle_sessions));
      waiting.with({}).set(static_cast<double>(s.waiting));
      wait_timeouts.with({}).mirror(static_cast<double>(s.wait_timeouts));
      created.with({}).mirror(static_cast<double>(s.sessions_created));
      discarded.with({}).mirror(static_cast<double>(s.sessions_discarded));
      watchdog.with({}).mirror(static_cast<double>(s.watchdog_cancels));
      replica.with({}).mirror(static_cast<double>(s.replica_calls));
    });
  }
  auto& lookups =
      reg.counter("larder_taint_ledger_lookups_total",
                  "Revocation and taint lookups, by how they were answered (database: one round "
                  "trip; known_taint: the taint from this instance's memory, revocations still asked).",
                  {"answered"});
  auto& marks =
      reg.counter("larder_taint_ledger_marks_total", "Lineages recorded as tainted by this instance.");
  auto& ledger_failures = reg.counter("larder_taint_ledger_failures_total",
                                      "Ledger statements that failed (unreachable or an error).");
  auto& entries = reg.gauge("larder_taint_ledger_entries",
                            "Unexpired taint entries in the ledger (all instances), read at most every 5 s.");
  auto& revocations = reg.gauge(
      "larder_revocations", "Revocation ids on the revocation list (all instances), read at most every 5 s.");
  auto& up = reg.gauge("larder_database_up", "1 while PostgreSQL answers this instance, 0 during an outage.");
  auto last_count = std::make_shared<std::chrono::steady_clock::time_point>();
  reg.on_collect([&, ledger = p.ledger, availability = p.availability, last_count] {
    const auto s = ledger->stats();
    lookups.with({"known_taint"}).mirror(static_cast<double>(s.known_taint));
    lookups.with({"database"}).mirror(static_cast<double>(s.lookups - std::min(s.lookups, s.known_taint)));
    marks.with({}).mirror(static_cast<double>(s.marks));
    ledger_failures.with({}).mirror(static_cast<double>(s.failures));
    up.with({}).set(availability->down() ? 0 : 1);
    const auto now = std::chrono::steady_clock::now();
    if (availability->down() || now - *last_count < std::chrono::seconds(5)) return;
    *last_count = now;
    if (auto c = ledger->counts()) {
      entries.with({}).set(static_cast<double>(c->tainted_lineages));
      revocations.with({}).set(static_cast<double>(c->revocations));
    }
  });
}

// The admin listener with its readiness checks: the database (a query-pool session, and the
// database matching the policy file), the ledger, the root keys.
Result<std::unique_ptr<AdminServer>> start_admin(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  AdminOptions options = c.admin;
  // Plain HTTP unless admin.tls; with it, [tls]'s certificate, key, CA and CRL (the allow-list
  // is the admin listener's own).
  options.listener.plain_http = !c.admin_tls;
  if (c.admin_tls) {
    auto allowed = std::move(options.listener.tls.allowed_clients);
    options.listener.tls = c.tls;
    options.listener.tls.allowed_clients = std::move(allowed);
  } else {
    options.listener.tls.allowed_clients.clear();
  }
  options.reload_status = [parts = &p] {
    std::lock_guard lock(parts->outcome_mu);
    return parts->last.to_json();
  };
  std::vector<ReadinessCheck> checks;
  checks.push_back({"root_keys", [pipeline = p.pipeline.get()]() -> Result<void> {
                      if (pipeline->gate()->options().root_keys.empty())  // reload may change them
                        return make_error("admin.not_ready",
                                          "no root key is configured ([biscuit] root_keys)");
                      return {};
                    }});
  checks.push_back({"ledger", [ledger = p.ledger]() -> Result<void> {
                      auto c = ledger->counts();
                      if (!c) return c.error();
                      return {};
                    }});
  if (p.database) {
    checks.push_back({"database", [database = p.database.get()]() -> Result<void> {
                        return database->ping(std::chrono::steady_clock::now() + std::chrono::seconds(2));
                      }});
    checks.push_back(
        {"policy", [database = p.database.get(), policy = p.data_policy.get()]() -> Result<void> {
           const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
           auto conn = database->config().writer.connect(deadline);
           if (!conn) return conn.error();
           auto drift = policy::check(*policy, conn->get(), deadline);
           if (!drift) return drift.error();
           if (drift->empty()) return {};
           return make_error("policy.drift", "the database differs from the policy file " + policy->file +
                                                 " (" + std::to_string(drift->size()) +
                                                 " difference(s), first: " + drift->front() +
                                                 "); `larder policy check` lists them");
         }});
  }
  return AdminServer::start(std::move(options), p.metrics ? &p.metrics->registry() : nullptr,
                            std::move(checks));
}

}  // namespace

namespace {

// The steps of LarderService::start, in order; each fills in its part of `p`.

// The audit log first (nothing is decided that cannot be recorded), the metrics, and the
// observer that turns every decision into one log line and the metrics.
Result<void> open_audit_log(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  std::error_code ec;
  fs::create_directories(fs::path(c.audit.path).parent_path(), ec);
  gate::AuditLogOptions audit_options = c.audit.log;
  if (c.audit.syslog) {
    auto syslog = std::make_shared<gate::AuditSyslog>(c.audit.syslog_socket);
    audit_options.on_record = [syslog](const std::string& line) { (void)syslog->send(line); };
  }
  auto audit = gate::AuditLog::open(c.audit.path, std::move(audit_options));
  if (!audit) return audit.error();
  p.audit = std::move(*audit);
  if (c.admin_enabled && c.metrics_enabled) p.metrics = std::make_unique<ServiceMetrics>(audience, p.served);
  // Every decision: one log line, and the metrics.
  p.audit->set_observer(
      [m = p.metrics.get(), served = &p.served](const gate::AuditRecord& r, std::size_t bytes) {
        if (m) m->on_audit(r, bytes);
        log_call(r, *served);
      });
  return {};
}

// The policy file the database serves, and the gate built from the configuration and it.
Result<std::unique_ptr<gate::Gate>> load_policy_and_gate(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  auto data_policy = load_served_policy(c);
  if (!data_policy) return data_policy.error();
  p.data_policy = std::make_unique<policy::Policy>(std::move(*data_policy));
  auto gate = make_gate(c, p.data_policy.get());
  if (!gate) return gate.error();
  if (!c.policy_path.empty()) {
    auto text = read_file(c.policy_path);
    if (text) p.policy_text = std::move(*text);
  }
  return std::move(*gate);
}

// The query pool's connections (query role + context writer), and the one view of
// PostgreSQL's reachability every part of this server shares.
Result<db::DatabaseConfig> query_database_config(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  auto connections = database_connections(c);
  if (!connections) return connections.error();
  db::DatabaseConfig db_config = std::move(*connections);
  db_config.guard_policy = policy::guard_policy(*p.data_policy);
  // Derived: a session for every worker that may run a query at once (at least 4).
  db_config.pool_size = std::max<std::size_t>(4, c.limits.worker_threads);

  // One view of PostgreSQL's reachability for everything of this server that talks to it (the
  // ledger, the revocation list, the audit anchor, the query pool): an outage is logged once.
  auto availability = std::make_shared<db::Availability>(audience);
  p.availability = availability;
  db_config.availability = availability;
  return db_config;
}

// The taint ledger (revocations, taint, audit anchors), as many connections as the pool.
Result<void> open_ledger(LarderService::Parts& p, const db::DatabaseConfig& db_config) {
  auto ledger = ledger_connection(p.config);
  if (!ledger) return ledger.error();
  gate::TaintLedger::Options ledger_options;
  ledger_options.availability = p.availability;
  // Every worker may ask the ledger at once (revocations + taint on every call, the taint
  // write after a read): keep as many connections as the query pool, or each call beyond
  // the idle count would open (and close) a connection of its own.
  ledger_options.max_connections = db_config.pool_size;
  p.ledger = std::make_shared<gate::TaintLedger>(*ledger, ledger_options);
  // Fail at start, not at the first call, when the ledger is unreachable.
  if (auto probe = p.ledger->is_tainted("startup-probe"); !probe) return probe.error();
  return {};
}

// The audit log's head anchored in PostgreSQL under this instance's id (refused at start when
// the anchor belongs to another log), then kept up to date.
Result<void> anchor_audit_log(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  // The audit log's head, anchored where the log's writer cannot rewrite it — under an id of
  // its own: several instances share the database, and two logs under one id would make both
  // fail verification. An anchor ahead of this log (or holding another record at its end) is
  // another instance's log under the same id, or this log cut: refused at start. The anchor
  // is read before the head, so a process sharing this file cannot have anchored beyond it.
  const std::string anchor_id =
      c.audit.anchor_id.empty() ? gate::default_audit_anchor_id(audience, c.audit.path) : c.audit.anchor_id;
  {
    auto anchored = p.ledger->audit_anchor(anchor_id);
    if (!anchored) return anchored.error();
    auto head = p.audit->current_head();
    if (!head) return head.error();
    if (*anchored && ((*anchored)->seq > head->seq ||
                      ((*anchored)->seq == head->seq && (*anchored)->hash != head->hash))) {
      return make_error(
          "audit.anchor_taken",
          "audit.anchor_id: the anchor \"" + anchor_id + "\" in PostgreSQL holds record " +
              std::to_string((*anchored)->seq) + " of a log, but " + c.audit.path +
              ((*anchored)->seq > head->seq ? " ends at record " + std::to_string(head->seq)
                                            : " holds another record " + std::to_string(head->seq)) +
              ": another instance anchors its own log under this id, or this log was cut. Give every "
              "instance its own [audit] anchor_id (or leave it unset: the default <audience>@<host>:<log "
              "path> differs per host and path); a log moved aside on purpose needs a new anchor_id too. "
              "`larder audit verify --config` checks a log against its anchor");
    }
  }
  p.audit->set_anchor(
      anchor_id,
      [ledger = p.ledger](const std::string& id, uint64_t seq, const std::string& hash) {
        return ledger->anchor_audit(id, seq, hash);
      },
      c.audit.anchor_max_lag, c.audit.anchor_interval);
  return {};
}

// The MCP server, and the audit record of every request the pipeline does not decide.
std::unique_ptr<mcp::Server> make_mcp_server(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  auto availability = p.availability;
  mcp::ServerOptions mcp_options = c.mcp;
  mcp_options.info = {"larder", LARDER_VERSION, "Larder"};
  mcp_options.instructions =
      "Larder serves a PostgreSQL database behind four locks (mTLS, Biscuit, database privileges, row-level "
      "security). Every call needs a Biscuit token (Authorization: Bearer, or the biscuit_token argument).";
  mcp_options.handler_threads = c.limits.worker_threads;  // derived: handlers at once, on the net workers
  mcp_options.correlation_meta_key = "larder/request_id";
  // Every request leaves an audit record: tool calls, reads and prompts through the pipeline
  // (which records its decision), everything else — lists, initialize, argument-schema
  // failures, unknown methods, messages refused before dispatch — here.
  mcp_options.on_request = [audit = p.audit.get(), audience, availability,
                            metrics = p.metrics.get()](const mcp::RequestRecord& r) {
    if (metrics) metrics->on_request(r);
    if (r.recorded_by_handler) return true;  // the pipeline wrote the decision
    gate::AuditRecord record;
    if (r.peer) {
      record.client_cert_sha256 = r.peer->cert_sha256;
      record.client_cert_cn = r.peer->cn;
    }
    record.server_audience = audience;
    record.method = r.method;
    record.tool = r.name;
    record.request_id = r.correlation_id;
    record.trace_id = mcp::trace_id_of(r.traceparent);
    if (r.error_code) {
      record.decision = "error";
      record.reason = "JSON-RPC error " + std::to_string(*r.error_code) + ": " + r.error_message;
    } else if (r.error_result) {
      record.decision = "error";
      record.reason = r.error_message;
    } else {
      record.decision = r.error_message.empty() ? "answered" : "cancelled";
      record.reason =
          r.error_message.empty() ? "protocol request; no token needed, no data read" : r.error_message;
    }
    record.taint = "unknown";
    auto written = audit->append(std::move(record));
    // An anchor that cannot be written while PostgreSQL is down is the outage, logged once.
    if (!written && !(written.error().code == "audit.anchor" && availability->down())) {
      spdlog::error("audit log append failed: {}", written.error().message);
    }
    return written.ok();
  };
  return std::make_unique<mcp::Server>(mcp_options);
}

// The database must match the policy file (`larder policy check`): a drifted one is not
// served unless the file acknowledges it, and every difference is logged either way.
Result<void> check_policy_drift(LarderService::Parts& p, const db::DatabaseConfig& db_config) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto conn = db_config.writer.connect(deadline);
  if (!conn) return conn.error();
  auto drift = policy::check(*p.data_policy, conn->get(), deadline);
  if (!drift) return drift.error();
  for (const auto& d : *drift) spdlog::warn("{}: policy drift: {}", audience, d);
  if (!drift->empty() && !c.allow_drift) {
    return make_error("policy.drift",
                      "the database does not match the policy file " + p.data_policy->file + " (" +
                          std::to_string(drift->size()) + " difference(s), first: " + drift->front() +
                          "); run `larder policy check` to list them and `larder policy apply` to fix them");
  }
  return {};
}

// The database tools (after the connectivity and drift checks), the compliance tool, and
// the check that every enabled tool is served.
Result<void> register_tools(LarderService::Parts& p, const db::DatabaseConfig& db_config) {
  const ServeConfig& c = p.config;
  if (serves_db_tools(c)) {
    p.database = std::make_unique<db::Database>(db_config);
    if (auto ok = p.database->check_connectivity(std::chrono::steady_clock::now() + std::chrono::seconds(10));
        !ok) {
      return ok.error();
    }
    if (auto matches = check_policy_drift(p, db_config); !matches) return matches.error();
    DbServiceOptions options = c.db_service;
    options.stopping = p.stopping;
    const auto dbname = db_config.query.get("dbname");
    auto service = register_db_service(*p.mcp, *p.pipeline, c, *p.database, *p.data_policy,
                                       dbname ? std::string(*dbname) : std::string("database"), options);
    if (!service) return service.error();
    p.db_service = *service;
  }
  if (serves_compliance(c)) {
    if (auto ok = register_compliance_tool(*p.mcp, *p.pipeline, c.compliance); !ok) return ok.error();
  }

  // The configuration accepts the names known_tools() lists; each must be served here.
  const auto served = p.mcp->tools();
  for (const auto& name : c.tools) {
    // Free-form SQL the policy file turned off ([options] pg_query = false) is not served.
    if ((name == "pg_query" || name == "pg_explain") && p.data_policy && !p.data_policy->pg_query) continue;
    if (std::none_of(served.begin(), served.end(), [&](const mcp::Tool& t) { return t.name == name; })) {
      return make_error("config.invalid",
                        "tools.enabled: \"" + name +
                            "\" is accepted by the configuration but not served by this build "
                            "(known_tools() and src/tools disagree; a bug, please report it)");
    }
  }
  return {};
}

// The MCP listener (transport, TLS, the served names the metrics label by) and the admin
// listener, started.
Result<void> start_listeners(LarderService::Parts& p) {
  const ServeConfig& c = p.config;
  const std::string& audience = c.gate.audience;
  mcp::HttpTransportOptions transport_options = c.transport;
  // Loopback listeners accept loopback Host names (the transport's default); a listener on
  // another address also accepts its own host name. Anything else is DNS rebinding.
  const bool loopback = c.host == "localhost" || c.host == "::1" || c.host.rfind("127.", 0) == 0;
  if (!loopback) {
    transport_options.allowed_hosts = {c.host, c.host + ":" + std::to_string(c.port)};
  }
  add_resource_metadata(transport_options, audience);
  p.transport = std::make_unique<mcp::HttpTransport>(*p.mcp, transport_options);

  net::ServerConfig server_config = listener_config(c);
  server_config.on_stop_deadline = [stopping = p.stopping] { stopping.cancel(); };
  for (const auto& t : p.mcp->tools()) p.served.tools.insert(t.name);
  if (p.db_service)  // a reload may switch them on: their own labels from the start
    for (const auto& name : switchable_tools(*p.db_service)) p.served.tools.insert(name);
  for (const auto& prompt : p.mcp->prompts()) p.served.prompts.insert(prompt.name);
  if (p.metrics) {
    server_config.on_handshake = [m = p.metrics.get()](std::string_view outcome,
                                                       std::chrono::steady_clock::duration took) {
      m->on_handshake(outcome, took);
    };
  }
  auto http = net::Server::create(server_config, p.transport->handler());
  if (!http) return http.error();
  p.http = std::move(*http);
  if (p.metrics) add_collectors(p);
  if (c.admin_enabled) {
    auto admin = start_admin(p);
    if (!admin) return admin.error();
    p.admin = std::move(*admin);
  }
  if (auto started = p.http->start(); !started) return started.error();
  spdlog::info("larder serving {} on {}://{}:{}/mcp", audience, c.plain_http ? "http" : "https", c.host,
               p.http->port());
  if (p.admin) {
    spdlog::info("larder admin for {} on {}://{}:{} (/healthz, /readyz, /reloadz{})", audience,
                 c.admin_tls ? "https" : "http", c.admin.listener.host, p.admin->port(),
                 p.metrics ? ", /metrics" : "");
  }
  return {};
}

}  // namespace

LarderService::LarderService(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
LarderService::~LarderService() {
  stop();
}

Result<std::unique_ptr<LarderService>> LarderService::start(const ServeConfig& config) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;
  parts->current = config;  // what a reload compares against
  Parts& p = *parts;
  // Every start says which protections this configuration turns off (acknowledged in the
  // file's i_understand_this_is_insecure, or set in code by a test).
  for (const auto& warning : insecure_warnings(config))
    spdlog::warn("{}: INSECURE: {}", config.gate.audience, warning);
  if (auto ok = open_audit_log(p); !ok) return ok.error();
  auto gate = load_policy_and_gate(p);
  if (!gate) return gate.error();
  auto db_config = query_database_config(p);
  if (!db_config) return db_config.error();
  if (auto ok = open_ledger(p, *db_config); !ok) return ok.error();
  if (auto ok = anchor_audit_log(p); !ok) return ok.error();
  gate::PipelineOptions pipeline_options = config.pipeline;
  pipeline_options.require_peer = !config.plain_http;  // derived: a plain-HTTP listener has no peer
  p.pipeline = std::make_unique<gate::Pipeline>(std::shared_ptr<gate::Gate>(std::move(*gate)), p.ledger.get(),
                                                *p.audit, pipeline_options);
  p.mcp = make_mcp_server(p);
  if (auto ok = register_tools(p, *db_config); !ok) return ok.error();
  if (auto ok = start_listeners(p); !ok) return ok.error();
  return std::unique_ptr<LarderService>(new LarderService(std::move(parts)));
}

uint16_t LarderService::admin_port() const {
  return parts_->admin ? parts_->admin->port() : 0;
}

uint16_t LarderService::port() const {
  return parts_->http ? parts_->http->port() : 0;
}

net::ServerStats LarderService::connection_stats() const {
  return parts_->http ? parts_->http->stats() : net::ServerStats{};
}

db::PoolStats LarderService::database_stats() const {
  return parts_->database ? parts_->database->stats() : db::PoolStats{};
}

CallLimiter::Stats LarderService::client_limit_stats() const {
  return parts_->transport ? parts_->transport->client_limit_stats() : CallLimiter::Stats{};
}

// The graceful stop (docs/operations.md, "Stopping"): readiness turns 503 at once, so a
// balancer stops sending; the MCP listener stops accepting and lets calls in flight answer
// for up to [server] drain_timeout_ms, then cancels the statements still running (their calls
// are refused and audited as cancelled at shutdown); the handlers finish, the audit log is
// synced to disk and its head anchored; the admin listener goes last.
void LarderService::stop() {
  if (!parts_) return;
  if (parts_->admin) parts_->admin->set_draining();
  if (parts_->http) parts_->http->stop();
  // The handlers ran on the net workers, which http->stop() has joined: they finished and
  // audited (libmcp's own pool serves stdio only and was never started here).
  if (parts_->audit) {
    if (auto synced = parts_->audit->sync(); !synced)
      spdlog::error("{}: audit log: {}", parts_->config.gate.audience, synced.error().message);
    parts_->audit->flush_anchor(std::chrono::seconds(2));
  }
  if (parts_->admin) parts_->admin->stop();
}

namespace {

// Everything that can fail first, changing nothing; then the swaps, none of which can fail:
// a reload is applied whole or not at all.
Result<void> apply_reload(LarderService::Parts& p, const ServeConfig& requested,
                          std::vector<std::string>& restart_needed) {
  ServeConfig next = requested;
  restart_needed = keep_restart_only(p.current, next);
  // [tools] enabled: the database tools switch on and off on a server that serves the database
  // (an explicit list both before and after); any other change needs a restart.
  if (next.tools != p.current.tools) {
    auto others = [](const std::vector<std::string>& list) {
      std::set<std::string> out;
      for (const auto& t : list)
        if (t != "pg_query" && t != "pg_explain" && t != "pg_metadata") out.insert(t);
      return out;
    };
    const bool switchable = p.db_service && !next.tools.empty() && !p.current.tools.empty() &&
                            others(next.tools) == others(p.current.tools);
    if (!switchable) {
      restart_needed.emplace_back("tools.enabled");
      next.tools = p.current.tools;
    }
  }
  if (!next.policy_path.empty()) {
    // The policy file is the database's shape (roles, RLS, masks: `larder policy check`):
    // its contents are read at start only.
    auto text = read_file(next.policy_path);
    if (!text) return make_error("config.invalid", "policy.file: " + text.error().message);
    if (*text != p.policy_text) restart_needed.emplace_back("policy.file (its contents)");
  }
  // Root keys, Datalog policy, trusted keys, token requirements, run limits; the RLS context
  // dimensions of the policy file in force.
  auto gate = make_gate(next, p.data_policy.get());
  if (!gate) return gate.error();
  std::shared_ptr<net::TlsContext> tls;
  if (!next.plain_http) {
    auto prepared = p.http->prepare_tls(listener_config(next).tls);
    if (!prepared) return prepared.error();
    tls = std::move(*prepared);
  }

  for (const auto& warning : insecure_warnings(next))
    spdlog::warn("{}: INSECURE: {}", next.gate.audience, warning);
  auto retired = p.pipeline->gate();
  p.pipeline->set_gate(std::shared_ptr<gate::Gate>(std::move(*gate)));
  const auto stats = retired->cache_stats();
  p.retired_verify_hits += stats.hits;
  p.retired_verify_misses += stats.misses;
  p.pipeline->set_lineage_limits(next.pipeline.lineage_limits);
  p.transport->set_client_limits(next.transport.client_limits);
  if (p.db_service) reload_db_service(*p.db_service, next);
  if (tls) p.http->use_tls(std::move(tls));
  p.current = std::move(next);
  return {};
}

void write_status(const std::string& file, const ReloadOutcome& outcome) {
  if (file.empty()) return;
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << outcome.to_json() << "\n";
    if (!out) {
      spdlog::error("reload: cannot write the reload status to {}", tmp);
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) spdlog::error("reload: cannot write the reload status to {}: {}", file, ec.message());
}

}  // namespace

std::string ReloadOutcome::to_json() const {
  nlohmann::json j = {{"attempt", attempt},
                      {"generation", generation},
                      {"ok", ok},
                      {"at", rfc3339_utc(at)},
                      {"restart_needed", restart_needed}};
  if (!ok) j["error"] = error;
  return j.dump();
}

ReloadOutcome LarderService::reload(const ServeConfig& next) {
  return reload_from([&]() -> Result<ServeConfig> { return next; });
}

ReloadOutcome LarderService::reload_from(const std::function<Result<ServeConfig>()>& load) {
  Parts& p = *parts_;
  std::lock_guard lock(p.reload_mu);
  ReloadOutcome outcome = last_reload();
  outcome.attempt += 1;
  outcome.at = std::chrono::system_clock::now();
  outcome.restart_needed.clear();
  outcome.error.clear();
  Result<void> applied = [&]() -> Result<void> {
    auto config = load();
    if (!config) return config.error();
    return apply_reload(p, *config, outcome.restart_needed);
  }();
  const std::string& audience = p.config.gate.audience;
  if (applied) {
    outcome.ok = true;
    outcome.generation = p.generation.fetch_add(1) + 1;
    p.reloads_ok.fetch_add(1);
    spdlog::info("{}: configuration reloaded (generation {})", audience, outcome.generation);
    for (const auto& key : outcome.restart_needed)
      spdlog::warn("{}: reload: {} changed; it takes effect at the next restart", audience, key);
  } else {
    outcome.ok = false;
    outcome.error = applied.error().message;
    p.reloads_failed.fetch_add(1);
    spdlog::error("{}: reload refused, the configuration in force (generation {}) keeps serving: {}",
                  audience, outcome.generation, outcome.error);
  }
  {
    std::lock_guard l(p.outcome_mu);
    p.last = outcome;
  }
  return outcome;
}

ReloadOutcome LarderService::last_reload() const {
  std::lock_guard lock(parts_->outcome_mu);
  return parts_->last;
}

void LarderService::run_until_signal(ReloadSource source) {
  if (!parts_ || !parts_->http) return stop();
  if (!source.load_config) {
    parts_->http->wait_for_signal();
    return stop();
  }
  // SIGHUP → reload, on a thread of its own so that signals arriving meanwhile coalesce: a
  // flood of them costs at most one reload after the one running (each reload starts after
  // the signals it answers, so it reads the files as they were when the last one came).
  std::mutex mu;
  std::condition_variable cv;
  bool pending = false, quit = false;
  std::thread reloader([&] {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return pending || quit; });
      if (quit) return;
      pending = false;
      lock.unlock();
      write_status(source.status_file, reload_from(source.load_config));
      lock.lock();
    }
  });
  parts_->http->serve_signals({SIGINT, SIGTERM, SIGHUP}, [&](int signo) {
    if (signo != SIGHUP) return false;
    {
      std::lock_guard lock(mu);
      pending = true;
    }
    cv.notify_one();
    return true;
  });
  // The signal set is gone (SIGHUP's default action would end the process): a SIGHUP during
  // the drain is ignored, so the stop still syncs the audit log.
  std::signal(SIGHUP, SIG_IGN);
  {
    std::lock_guard lock(mu);
    quit = true;
  }
  cv.notify_one();
  reloader.join();
  stop();
}

}  // namespace larder::tools
