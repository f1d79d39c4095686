// Operating a server (docs/operations.md): the admin listener's /healthz, /readyz and
// /metrics on a whole installation (Testbed: real PostgreSQL, real mTLS). The scrape is read
// by the Prometheus project's own parser (python3-prometheus-client, parse_metrics.py), not
// by matching strings: the text must be valid exposition format, and the values must count
// what the demo's scenarios did — allowed calls, refusals by every lock, refused handshakes.
#include "base/files.h"
#include "examples/healthcare/demo.h"
#include "gate/audit_log.h"
#include "mcp/client.h"
#include "net/client.h"
#include "obs/log.h"
#include "support/testbed.h"
#include "support/wait.h"
#include "tools/demo_scenarios.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <thread>

namespace larder {
namespace {

using nlohmann::json;

net::ClientResponse get(uint16_t port, const std::string& path, const std::string& method = "GET") {
  auto client = net::HttpClient::create("http://127.0.0.1:" + std::to_string(port), {"", "", "", "", true});
  if (!client) throw std::runtime_error(client.error().message);
  auto r = (*client)->request(method, path, {}, "", std::chrono::seconds(20));
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

// What the Prometheus parser read from one scrape.
struct Scrape {
  json parsed;
  std::string text;
  // The sum of the samples named `name` whose labels include `labels`.
  double value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    double sum = 0;
    for (const auto& s : parsed["samples"]) {
      if (s["name"] != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) match &= s["labels"].value(k, std::string("\x01")) == v;
      if (match && s["value"].is_number()) sum += s["value"].get<double>();
    }
    return sum;
  }
  std::string type(const std::string& family) const { return parsed["families"].value(family, ""); }
};

Scrape scrape(uint16_t admin_port, const std::filesystem::path& dir) {
  auto r = get(admin_port, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
  const auto file = dir / ("scrape-" + std::to_string(admin_port) + ".txt");
  std::ofstream(file) << r.body;
  const std::string cmd = "/usr/bin/python3 " + std::string(LARDER_SOURCE_DIR) +
                          "/tests/e2e/ops/parse_metrics.py " + file.string() + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed");
  char buf[65536];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0) throw std::runtime_error("the Prometheus parser refused the scrape: " + out);
  return Scrape{json::parse(out), r.body};
}

class Ops : public ::testing::Test {
 protected:
  // Every line this suite's servers write goes to one file as JSON at the most verbose level;
  // the last test reads them all.
  static void SetUpTestSuite() {
    log_file_ =
        (std::filesystem::temp_directory_path() / ("larder-e2e-ops-" + std::to_string(::getpid()) + ".log"))
            .string();
    std::filesystem::remove(log_file_);
    if (obs::configure_logging(obs::LogFormat::kJson, spdlog::level::trace, log_file_) != "")
      throw std::runtime_error("cannot log to " + log_file_);
    bed_ = new test::Testbed(test::Testbed::Options{});
    bed_->start_servers();
  }
  static void TearDownTestSuite() {
    delete bed_;
    bed_ = nullptr;
    obs::configure_logging(obs::LogFormat::kText, spdlog::level::info);
    std::filesystem::remove(log_file_);
  }
  static test::Testbed* bed_;
  static std::string log_file_;
};
test::Testbed* Ops::bed_ = nullptr;
std::string Ops::log_file_;

TEST_F(Ops, MetricsCountWhatTheDemoScenariosDidAndParseAsPrometheusText) {
  auto env = bed_->environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto outcomes = examples::healthcare::run_demo_scenarios(env, *tokens, nullptr);
  for (const auto& o : outcomes) ASSERT_TRUE(o.expected) << o.name << ": " << o.outcome;

  const Scrape db = scrape(bed_->db->admin_port(), bed_->dir());
  const Scrape egress = scrape(bed_->compliance->admin_port(), bed_->dir());

  // Types as Prometheus reads them (the parser names counter families without _total).
  EXPECT_EQ(db.type("mcp_server_operation_duration_seconds"), "histogram");
  EXPECT_EQ(db.type("larder_calls"), "counter");
  EXPECT_EQ(db.type("larder_refusals"), "counter");
  EXPECT_EQ(db.type("larder_stage_duration_seconds"), "histogram");
  EXPECT_EQ(db.type("larder_tls_handshakes"), "counter");
  EXPECT_EQ(db.type("larder_connections"), "gauge");
  EXPECT_EQ(db.type("larder_db_pool_sessions"), "gauge");
  EXPECT_EQ(db.type("larder_build_info"), "gauge");
  EXPECT_EQ(db.value("larder_build_info", {{"audience", "larder-db"}}), 1);

  // The OpenTelemetry MCP histogram, with its attributes as labels.
  EXPECT_GT(db.value("mcp_server_operation_duration_seconds_count",
                     {{"mcp_method_name", "tools/call"}, {"gen_ai_tool_name", "pg_query"}}),
            0);
  EXPECT_GT(db.value("mcp_server_operation_duration_seconds_count", {{"mcp_method_name", "initialize"}}), 0);
  EXPECT_GT(db.value("mcp_server_operation_duration_seconds_count",
                     {{"mcp_method_name", "tools/call"}, {"error_type", "tool_error"}}),
            0);
  // Calls and refusals by lock and kind: the scenarios' tampered, expired, foreign-certificate
  // tokens (biscuit), hostile SQL (sql-guard); the tainted token at the egress server (taint).
  EXPECT_GT(db.value("larder_calls_total", {{"tool", "pg_query"}, {"outcome", "allow"}}), 0);
  EXPECT_GT(db.value("larder_refusals_total", {{"lock", "biscuit"}, {"reason", "expired"}}), 0);
  EXPECT_GT(db.value("larder_refusals_total", {{"lock", "biscuit"}, {"reason", "other_certificate"}}), 0);
  EXPECT_GT(db.value("larder_refusals_total", {{"lock", "biscuit"}, {"reason", "revoked"}}), 0);
  EXPECT_GT(db.value("larder_refusals_total", {{"lock", "sql-guard"}}), 0);
  EXPECT_GT(egress.value("larder_refusals_total", {{"lock", "taint"}, {"reason", "tainted"}}), 0);
  EXPECT_EQ(db.value("larder_refusals_total", {{"reason", "other"}}), 0) << "a refusal kind is unclassified";
  // Stages: each has observations; the whole-call histogram is consistent.
  for (const char* stage : {"handshake", "guard", "verify", "ledger", "authorize", "database", "taint"}) {
    EXPECT_GT(db.value("larder_stage_duration_seconds_count", {{"stage", stage}}), 0) << stage;
  }
  EXPECT_EQ(db.value("larder_stage_duration_seconds_count", {{"stage", "verify"}}),
            db.value("larder_stage_duration_seconds_bucket", {{"stage", "verify"}, {"le", "+Inf"}}));
  // Handshakes: the rogue CA's certificate and the client without one were refused.
  EXPECT_GT(db.value("larder_tls_handshakes_total", {{"outcome", "ok"}}), 0);
  EXPECT_GT(db.value("larder_tls_handshakes_total", {{"outcome", "certificate"}}) +
                db.value("larder_tls_handshakes_total", {{"outcome", "no_certificate"}}),
            0);
  // The pool, the ledger, the caches, the audit log.
  EXPECT_GT(db.value("larder_db_pool_sessions", {{"state", "idle"}}), 0);
  EXPECT_GT(db.value("larder_db_sessions_created_total"), 0);
  EXPECT_GT(db.value("larder_taint_ledger_lookups_total"), 0);
  EXPECT_GT(db.value("larder_taint_ledger_marks_total"), 0);
  EXPECT_GT(db.value("larder_revocations"), 0);
  EXPECT_GT(db.value("larder_cache_hits_total", {{"cache", "verify"}}), 0);
  EXPECT_GT(db.value("larder_cache_misses_total", {{"cache", "sql_verdict"}}), 0);
  EXPECT_GT(db.value("larder_audit_records_total"), 0);
  EXPECT_GT(db.value("larder_audit_bytes_total"), db.value("larder_audit_records_total") * 100);
  EXPECT_EQ(db.value("larder_database_up"), 1);

  // Nothing a caller sent or read is in a metric: no token, no SQL, no patient.
  for (const std::string& secret :
       {tokens->erin, tokens->david, std::string("Erin"), std::string("SELECT")}) {
    EXPECT_EQ(db.text.find(secret), std::string::npos) << secret.substr(0, 20);
    EXPECT_EQ(egress.text.find(secret), std::string::npos) << secret.substr(0, 20);
  }
}

TEST_F(Ops, HealthStaysUpAndReadinessFollowsTheDatabase) {
  tools::ServeConfig config = bed_->db_config();
  config.port = 0;
  config.audit.path = (bed_->dir() / "ops-ready-audit.jsonl").string();
  config.audit.anchor_id = "ops-ready";
  config.admin.readiness_cache = std::chrono::milliseconds(0);
  auto server = test::Testbed::start(config);
  const uint16_t admin = server->admin_port();
  ASSERT_NE(admin, 0);
  ASSERT_NE(admin, server->port());

  auto health = get(admin, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");
  auto ready = get(admin, "/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  const json checks = json::parse(ready.body)["checks"];
  for (const char* check : {"root_keys", "ledger", "database", "policy"})
    EXPECT_EQ(checks.value(check, ""), "ok");

  bed_->cluster().stop();
  ready = get(admin, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  const json down = json::parse(ready.body);
  EXPECT_FALSE(down["ready"].get<bool>());
  EXPECT_NE(down["checks"].value("database", "ok"), "ok");
  EXPECT_NE(down["checks"].value("ledger", "ok"), "ok");
  EXPECT_EQ(get(admin, "/healthz").status, 200);  // alive, only not ready
  bed_->cluster().start();
  const bool back = test::wait_until([&] { return get(admin, "/readyz").status == 200; },
                                     std::chrono::seconds(10), std::chrono::milliseconds(100));
  EXPECT_TRUE(back) << "readiness did not return after PostgreSQL came back";

  // Only GET and the three paths.
  EXPECT_EQ(get(admin, "/readyz", "POST").status, 405);
  EXPECT_EQ(get(admin, "/mcp").status, 404);
}

TEST_F(Ops, MetricsOffAnswer404AndAdminOffListensNowhere) {
  tools::ServeConfig config = bed_->db_config();
  config.port = 0;
  config.audit.path = (bed_->dir() / "ops-off-audit.jsonl").string();
  config.audit.anchor_id = "ops-off";
  config.metrics_enabled = false;
  {
    auto server = test::Testbed::start(config);
    EXPECT_EQ(get(server->admin_port(), "/metrics").status, 404);
    EXPECT_EQ(get(server->admin_port(), "/healthz").status, 200);
  }
  config.admin_enabled = false;
  auto server = test::Testbed::start(config);
  EXPECT_EQ(server->admin_port(), 0);
}

// SIGTERM's path (LarderService::stop): readiness turns 503 at once; a call in flight past the
// drain time has its statement cancelled in PostgreSQL, gets a refusal that says why, and
// leaves an audit record saying so; the log is synced and its chain verifies.
TEST_F(Ops, AStopDrainsThenCancelsTheStatementStillRunningAndAuditsIt) {
  tools::ServeConfig config = bed_->db_config();
  config.port = 0;
  config.audit.path = (bed_->dir() / "ops-drain-audit.jsonl").string();
  config.audit.anchor_id = "ops-drain";
  config.limits.stop_grace = std::chrono::milliseconds(700);
  config.database.max_query_cost = 0;  // the slow query below must run, not be refused by its estimate
  config.database.default_timeout = std::chrono::milliseconds(120000);
  config.admin.readiness_cache = std::chrono::milliseconds(0);
  auto server = test::Testbed::start(config);
  const uint16_t admin = server->admin_port();

  auto env = bed_->environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto client = mcp::Client::connect_http("https://127.0.0.1:" + std::to_string(server->port()) + "/mcp", tls,
                                          {{"Authorization", "Bearer " + tokens->erin}});
  ASSERT_TRUE(client.ok()) << client.error().message;
  Result<json> answer = make_error("test.unset", "");
  std::thread call([&] {
    answer = (*client)->call_tool("pg_query",
                                  {{"query", "SELECT count(*) FROM generate_series(1, 4000000000) AS g"}});
  });
  const std::string running_sql =
      "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%generate_series(1, "
      "4000000000)%' "
      "AND pid <> pg_backend_pid()";
  const bool started = test::wait_until([&] { return bed_->cluster().admin_scalar(running_sql) != "0"; },
                                        std::chrono::seconds(5), std::chrono::milliseconds(50));
  if (!started) {
    call.join();
    FAIL() << "the slow statement never ran: "
           << (answer.ok() ? answer->dump().substr(0, 600) : answer.error().message);
  }

  std::atomic<bool> saw_draining{false};
  std::thread stopper([&] { server->stop(); });
  test::wait_until(
      [&] {
        try {
          auto r = get(admin, "/readyz");
          saw_draining = r.status == 503 && json::parse(r.body).value("draining", false);
          return saw_draining.load();
        } catch (const std::exception&) {
          return true;  // the admin listener stopped
        }
      },
      std::chrono::seconds(2), std::chrono::milliseconds(20));
  const auto stop_began = std::chrono::steady_clock::now();
  stopper.join();
  call.join();
  const auto stop_took = std::chrono::steady_clock::now() - stop_began;
  EXPECT_TRUE(saw_draining) << "/readyz did not turn 503 (draining) during the stop";
  EXPECT_LT(stop_took, std::chrono::seconds(8)) << "the stop waited for the statement";
  EXPECT_EQ(bed_->cluster().admin_scalar(running_sql), "0") << "the statement still runs in PostgreSQL";

  // The caller got a refusal naming the stop (not rows, not a hang).
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_TRUE(answer->value("isError", false)) << answer->dump();
  EXPECT_NE(answer->dump().find("server is stopping"), std::string::npos) << answer->dump();

  // The audit record says so, and the log (synced at the stop) verifies.
  server.reset();
  auto log = read_file(config.audit.path);
  ASSERT_TRUE(log.ok());
  bool recorded = false;
  for (std::size_t at = 0; at < log->size();) {
    const auto nl = log->find('\n', at);
    const json r = json::parse(log->substr(at, nl - at));
    if (r.value("lock", "") == "database" &&
        r.value("reason", "").find("server is stopping") != std::string::npos)
      recorded = r.value("decision", "") == "deny";
    at = nl == std::string::npos ? log->size() : nl + 1;
  }
  EXPECT_TRUE(recorded) << "no audit record of the call cancelled at the stop";
  EXPECT_TRUE(gate::verify_audit_log(config.audit.path).ok);
}

// Structured logs: with [log] format = "json" at the most verbose level, every line the
// servers write while the demo's scenarios run is one JSON object; every decision is a "call"
// event whose request_id is the audit record's and the result's _meta["larder/request_id"],
// with the caller's W3C trace id; and no line carries a token, a query, a row, a key or a PEM.
// (Declared last: it reads every line the tests above made the servers write, the demo's
// scenarios included.)
TEST_F(Ops, JsonLogsCorrelateWithTheAuditAndTheResultAndCarryNoSecret) {
  auto env = bed_->environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;

  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto client = mcp::Client::connect_http(
      env.db_url, tls,
      {{"Authorization", "Bearer " + tokens->erin}, {"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}});
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto answer = (*client)->call_tool(
      "pg_query",
      {{"query", "SELECT \"Patient Name\" FROM health_records WHERE 'zq-marker' <> 'x' LIMIT 1"}});
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  const std::string request_id = (*answer)["_meta"].value("larder/request_id", "");
  ASSERT_EQ(request_id.size(), 16u) << answer->dump().substr(0, 300);
  spdlog::default_logger()->flush();

  // The audit record of that call carries the same ids.
  auto audit = read_file(env.audit_log);
  ASSERT_TRUE(audit.ok());
  EXPECT_NE(audit->find("\"request_id\":\"" + request_id + "\""), std::string::npos);
  EXPECT_NE(audit->find("\"trace_id\":\"" + trace + "\""), std::string::npos);

  auto text = read_file(log_file_);
  ASSERT_TRUE(text.ok());
  std::size_t lines = 0, calls = 0;
  bool correlated = false;
  for (std::size_t at = 0; at < text->size();) {
    const auto nl = text->find('\n', at);
    const std::string line = text->substr(at, nl - at);
    at = nl == std::string::npos ? text->size() : nl + 1;
    if (line.empty()) continue;
    ++lines;
    const json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line.substr(0, 200);
    EXPECT_TRUE(j.contains("time") && j.contains("level")) << line.substr(0, 200);
    if (j.value("event", "") == "call") {
      ++calls;
      EXPECT_EQ(j.value("request_id", "").size(), 16u) << line;
      if (j.value("request_id", "") == request_id) {
        correlated = j.value("trace_id", "") == trace && j.value("tool", "") == "pg_query";
      }
    }
    for (const std::string& secret :
         {tokens->erin, tokens->david, tokens->nurse, tokens->erin.substr(0, 48), std::string("zq-marker"),
          std::string("Patient Name"), std::string("oRTEga"), std::string("AndErSON"),
          std::string("-----BEGIN"), std::string("SELECT "), std::string("DROP "), std::string("Bearer ")}) {
      EXPECT_EQ(line.find(secret), std::string::npos)
          << "a log line carries " << secret.substr(0, 24) << ": " << line.substr(0, 300);
    }
  }
  EXPECT_GT(lines, 50u);
  EXPECT_GT(calls, 20u);
  EXPECT_TRUE(correlated) << "no call event with the result's request_id and the caller's trace id";
}

}  // namespace
}  // namespace larder
