#include "tools/serve_config.h"
#include "db/request_context.h"
#include "examples/examples.h"
#include "gate/gate.h"
#include "net/pki.h"
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace larder::tools {
namespace {

using gate::DataFlow;
using gate::gate_options_from;

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("larder-config-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const char* f : {"server.pem", "server.key", "crl.pem", "policy.datalog"}) {
      std::ofstream(dir_ / f) << "x";
    }
    // tls.client_ca is read: a real CA, and a leaf it issued (not a CA).
    auto ca = net::pki::create_ca("Config Test CA");
    ASSERT_TRUE(ca.ok()) << ca.error().message;
    net::pki::CertSpec leaf_spec;
    leaf_spec.common_name = "claude-client";
    auto leaf = net::pki::issue_certificate(*ca, leaf_spec);
    ASSERT_TRUE(leaf.ok()) << leaf.error().message;
    std::ofstream(dir_ / "ca.pem") << ca->cert_pem;
    std::ofstream(dir_ / "leaf.pem") << leaf->cert_pem;
    std::ofstream(dir_ / "bundle.pem") << ca->cert_pem << leaf->cert_pem;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every case is refused, and the message names its key (and `also`, when given).
  struct BadCase {
    std::string toml;
    std::string key;
    bool with_tls = true;
    std::string also = {};
    std::string top = {};
    std::string biscuit = {};
  };
  void expect_refused(const std::vector<BadCase>& cases) {
    for (const auto& bad : cases) {
      auto c = parse(bad.toml, bad.with_tls, bad.top, bad.biscuit);
      ASSERT_FALSE(c.ok()) << bad.top << bad.biscuit << bad.toml;
      EXPECT_NE(c.error().message.find(bad.key), std::string::npos) << bad.toml << " → " << c.error().message;
      if (!bad.also.empty()) {
        EXPECT_NE(c.error().message.find(bad.also), std::string::npos)
            << bad.toml << " → " << c.error().message;
      }
    }
  }

  // `top`: top-level keys (before any table); `biscuit`: more lines of [biscuit].
  Result<ServeConfig> parse(const std::string& extra, bool with_tls = true, const std::string& top = "",
                            const std::string& biscuit = "") {
    std::string text = top + R"([biscuit]
root_keys = [{ id = 1, public_key = "ed25519/1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284" }]
)" + biscuit;
    if (with_tls) text += "[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n";
    return parse_serve_config(text + extra, dir_.string(), "larder.toml");
  }
  fs::path dir_;
};

// Issue #16 item 4: each setting has one default, in the module whose option struct holds
// it. A file that sets nothing but what is required yields exactly the modules' defaults; the
// only differences are the served ones serve_config.h names (served_*_options). A default
// written in the configuration, or a parser that writes a key the file does not set, fails
// here.
TEST_F(ConfigTest, EmptyFileGivesTheModulesDefaults) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;

  const net::ServerLimits limits;  // [limits] (connections, sizes, timeouts), server.drain_timeout_ms
  EXPECT_EQ(c->limits.max_body_bytes, limits.max_body_bytes);
  EXPECT_EQ(c->limits.max_header_bytes, limits.max_header_bytes);
  EXPECT_EQ(c->limits.request_timeout, limits.request_timeout);
  EXPECT_EQ(c->limits.handshake_timeout, limits.handshake_timeout);
  EXPECT_EQ(c->limits.idle_timeout, limits.idle_timeout);
  EXPECT_EQ(c->limits.max_connections, limits.max_connections);
  EXPECT_EQ(c->limits.max_handshakes, limits.max_handshakes);
  EXPECT_EQ(c->limits.worker_threads, limits.worker_threads);
  EXPECT_EQ(c->limits.io_threads, limits.io_threads);
  EXPECT_EQ(c->limits.stop_grace, limits.stop_grace);
  EXPECT_TRUE(c->tls.crl_file.empty());
  EXPECT_TRUE(c->tls.allowed_clients.empty());

  // [biscuit], server.audience, [rls]: the gate's, but for the two requirements.
  const gate::GateOptions library;
  const gate::GateOptions served = served_gate_options();
  EXPECT_FALSE(library.require_binding);
  EXPECT_FALSE(library.require_expiry);
  EXPECT_TRUE(served.require_binding);
  EXPECT_TRUE(served.require_expiry);
  for (const gate::GateOptions* g : {&library, &served}) {
    EXPECT_EQ(c->gate.audience, g->audience);
    EXPECT_EQ(c->gate.limits.max_facts, g->limits.max_facts);
    EXPECT_EQ(c->gate.limits.max_iterations, g->limits.max_iterations);
    EXPECT_EQ(c->gate.limits.max_time, g->limits.max_time);
    EXPECT_EQ(c->gate.limits.max_memory_bytes, g->limits.max_memory_bytes);
    EXPECT_EQ(c->gate.verify_cache_entries, g->verify_cache_entries);
    EXPECT_EQ(c->gate.max_token_bytes, g->max_token_bytes);
    EXPECT_EQ(c->gate.trusted_third_party_keys, g->trusted_third_party_keys);
  }
  EXPECT_EQ(c->gate.require_binding, served.require_binding);
  EXPECT_EQ(c->gate.require_expiry, served.require_expiry);
  EXPECT_TRUE(c->gate.policy_code.empty());  // filled at start

  const db::DatabaseConfig database;  // [database] statement timeout, pooler, cost, replica lag
  EXPECT_EQ(c->database.default_timeout, database.default_timeout);
  EXPECT_EQ(c->database.transaction_pooler, database.transaction_pooler);
  EXPECT_EQ(c->database.max_query_cost, database.max_query_cost);
  EXPECT_EQ(c->database.max_replica_lag, database.max_replica_lag);
  EXPECT_EQ(c->database.pool_size, database.pool_size);
  const db::RequestContext request;  // [database] max_rows, max_result_bytes: the database's
  EXPECT_EQ(c->db_service.max_rows, request.max_rows);
  EXPECT_EQ(c->db_service.max_result_bytes, request.max_bytes);

  // [taint], [limits] per lineage: the pipeline's, but for the served call limits.
  const gate::PipelineOptions pipeline;
  EXPECT_EQ(c->pipeline.taint_enabled, pipeline.taint_enabled);
  EXPECT_EQ(c->pipeline.require_peer, pipeline.require_peer);
  EXPECT_EQ(served_pipeline_options().taint_enabled, pipeline.taint_enabled);
  // [limits] per client and per session: the transport's, but for the served call limits.
  const mcp::HttpTransportOptions transport;
  EXPECT_EQ(c->transport.max_streams_per_session, transport.max_streams_per_session);
  EXPECT_EQ(c->transport.max_sessions, transport.max_sessions);
  EXPECT_EQ(served_transport_options().max_streams_per_session, transport.max_streams_per_session);
  EXPECT_EQ(transport.client_limits.max_concurrent, 0u);  // libmcp: no limit unless asked
  for (const CallLimiter::Options* l : {&c->transport.client_limits, &c->pipeline.lineage_limits}) {
    EXPECT_EQ(l->max_concurrent, kServedCallLimits.max_concurrent);
    EXPECT_EQ(l->rate_per_second, kServedCallLimits.rate_per_second);
    EXPECT_EQ(l->burst, kServedCallLimits.burst);
    EXPECT_EQ(l->max_keys, CallLimiter::Options{}.max_keys);
  }
  const mcp::ServerOptions mcp;  // [limits] max_json_depth, max_batch_size
  EXPECT_EQ(c->mcp.max_json_depth, mcp.max_json_depth);
  EXPECT_EQ(c->mcp.max_batch_size, mcp.max_batch_size);
  EXPECT_EQ(c->mcp.handler_threads, mcp.handler_threads);

  const gate::AuditOptions audit;                                             // [audit]
  EXPECT_EQ(c->audit.path, (dir_ / audit.path).lexically_normal().string());  // relative to the file
  EXPECT_EQ(c->audit.log.sync, audit.log.sync);
  EXPECT_EQ(c->audit.log.rotate_bytes, audit.log.rotate_bytes);
  EXPECT_EQ(c->audit.log.rotate_interval, audit.log.rotate_interval);
  EXPECT_EQ(c->audit.log.keep_files, audit.log.keep_files);
  EXPECT_EQ(c->audit.log.keep_age, audit.log.keep_age);
  EXPECT_EQ(c->audit.anchor_id, audit.anchor_id);
  EXPECT_EQ(c->audit.anchor_max_lag, audit.anchor_max_lag);
  EXPECT_EQ(c->audit.anchor_interval, audit.anchor_interval);
  EXPECT_EQ(c->audit.syslog, audit.syslog);
  EXPECT_EQ(c->audit.syslog_socket, audit.syslog_socket);

  const ComplianceOptions compliance;  // [compliance]
  EXPECT_EQ(c->compliance.api_url, compliance.api_url);
  EXPECT_EQ(c->compliance.api_timeout, compliance.api_timeout);
  const AdminOptions admin;  // [admin] host, port, allowed_clients, readiness_cache_ms
  EXPECT_EQ(c->admin.listener.host, admin.listener.host);
  EXPECT_EQ(c->admin.listener.port, admin.listener.port);
  EXPECT_EQ(c->admin.listener.tls.allowed_clients, admin.listener.tls.allowed_clients);
  EXPECT_EQ(c->admin.readiness_cache, admin.readiness_cache);
  const obs::LogOptions log;  // [log]
  EXPECT_EQ(c->log.format, log.format);
  EXPECT_EQ(c->log.level, log.level);

  // The values docs/configuration.md documents for the settings whose two defaults differed
  // before the modules owned them (4 vs 8 streams, 4 MiB vs 1 MiB, 5 ms vs 1 ms).
  EXPECT_EQ(c->transport.max_streams_per_session, 4u);
  EXPECT_EQ(c->db_service.max_result_bytes, std::size_t{4} << 20);
  EXPECT_EQ(c->gate.limits.max_time, std::chrono::microseconds(5000));
}

TEST_F(ConfigTest, MinimalConfigHasSafeDefaults) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->gate.audience, "larder-db");
  EXPECT_FALSE(c->plain_http);
  EXPECT_TRUE(c->pipeline.taint_enabled);
  EXPECT_EQ(c->tls.cert_file, (dir_ / "server.pem").string());  // relative to the config file
  ASSERT_EQ(c->gate.root_keys.size(), 1u);
  EXPECT_EQ(*c->gate.root_keys[0].id, 1u);
  EXPECT_EQ(c->data_flow("never-configured"), DataFlow::kEgress);  // fail closed
  EXPECT_FALSE(c->database.transaction_pooler);
  EXPECT_EQ(c->mcp.max_json_depth, 64u);
  EXPECT_EQ(c->mcp.max_batch_size, 32u);
  EXPECT_EQ(c->database.max_query_cost, 1e7);
}

TEST_F(ConfigTest, MaxQueryCost) {
  auto f = parse("[database]\nmax_query_cost = 2.5e9\n");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->database.max_query_cost, 2.5e9);
  auto i = parse("[database]\nmax_query_cost = 500000\n");
  ASSERT_TRUE(i.ok()) << i.error().message;
  EXPECT_EQ(i->database.max_query_cost, 500000.0);
  auto off = parse("[database]\nmax_query_cost = 0\n");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ(off->database.max_query_cost, 0.0);
}

TEST_F(ConfigTest, FullConfig) {
  auto c = parse(R"(
[server]
host = "127.0.0.1"
port = 9443
audience = "larder-compliance"
[tools]
enabled = ["hipaa_compliance_check"]
classes = { hipaa_compliance_check = "egress", pg_query = "sensitive-read", pg_explain = "neutral" }
[policy]
example = "saas"
[database]
transaction_pooler = true
[taint]
[audit]
path = "audit/log.jsonl"
fsync = true
[limits]
max_body_bytes = 65536
max_json_depth = 32
max_batch_size = 4
[compliance]
api_url = "http://127.0.0.1:9999/check"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->port, 9443);
  EXPECT_EQ(c->gate.audience, "larder-compliance");
  EXPECT_EQ(c->data_flow("pg_query"), DataFlow::kSensitiveRead);
  EXPECT_EQ(c->data_flow("hipaa_compliance_check"), DataFlow::kEgress);
  EXPECT_EQ(c->data_flow("pg_explain"), DataFlow::kNeutral);
  EXPECT_EQ(c->policy_example, "saas");
  EXPECT_EQ(c->policy_path, "");
  EXPECT_FALSE(c->allow_drift);
  EXPECT_TRUE(c->database.transaction_pooler);
  EXPECT_TRUE(c->audit.log.sync);
  EXPECT_EQ(c->limits.max_body_bytes, 65536u);
  EXPECT_EQ(c->mcp.max_json_depth, 32u);
  EXPECT_EQ(c->mcp.max_batch_size, 4u);
  EXPECT_EQ(c->compliance.api_url, "http://127.0.0.1:9999/check");
}

TEST_F(ConfigTest, ErrorsNameTheKey) {
  const std::vector<BadCase> cases = {
      {"[server]\nprot = 1\n", "server.prot"},
      // A taint entry that outlived no token could be the taint bypass of finding 2: gone.
      {"[taint]\ndefault_ttl_s = 3600\n", "taint.default_ttl_s"},
      // Revocations are looked up on every call now (so they hold on every instance at once).
      {"[taint]\nrevocation_cache_ttl_s = 5\n", "taint.revocation_cache_ttl_s"},
      {"[server]\nport = 70000\n", "server.port"},
      {"[server]\nport = \"8443\"\n", "server.port"},
      {"[server]\nhost = \"0.0.0.0\"\nplain_http = true\n", "server.plain_http"},
      {"[server]\naudience = \"\"\n", "server.audience"},
      {"[tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n", "tls.cert", false},
      {"[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n", "tls.client_ca", false},
      {"[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\nallowed_clients = "
       "[\"bob\"]\n",
       "tls.allowed_clients[0]", false},
      {"[tools]\nclasses = { pg_query = \"secret\" }\n", "tools.classes.pg_query"},
      {"[database]\nmode = \"cloud\"\n", "database.mode"},
      {"[database]\nmode = \"url\"\n", "database.url"},
      // The context row and its lease are gone (the sealed context): the old key says so.
      {"[database]\ncontext_lease_ms = 0\n", "database.context_lease_ms"},
      {"[database]\ntransaction_pooler = \"yes\"\n", "database.transaction_pooler"},
      {"[database]\nmax_query_cost = -1\n", "database.max_query_cost"},
      {"[database]\nmax_query_cost = nan\n", "database.max_query_cost"},
      {"[database]\nmax_query_cost = inf\n", "database.max_query_cost"},
      {"[database]\nmax_query_cost = \"1e7\"\n", "database.max_query_cost"},
      {"[audit]\npath = \"\"\n", "audit.path"},
      {"[biscuit]\npolicy_file = \"nope.datalog\"\n", "biscuit"},  // duplicate table is a syntax error
      {"[compliance]\napi_url = \"ftp://x\"\n", "compliance.api_url"},
      {"[limits]\nworker_threads = 0\n", "limits.worker_threads"},
      {"[limits]\nmax_json_depth = 100000\n", "limits.max_json_depth"},
      {"[limits]\nmax_json_depth = 0\n", "limits.max_json_depth"},
      {"[limits]\nmax_batch_size = 0\n", "limits.max_batch_size"},
      {"[mystery]\nx = 1\n", "mystery"},
      // The RLS context comes from the policy file now: the old [rls] predicate names are gone.
      {"[rls]\npatient_name = \"patient\"\n", "rls.patient_name"},
      {"[rls]\nrole = \"role\"\n", "rls.role"},
      {"[rls]\nhospital = \"hospital\"\n", "rls.hospital"},
      {"[policy]\nfile = \"policy.toml\"\nexample = \"saas\"\n", "policy.example"},
      {"[policy]\nfile = 3\n", "policy.file"},
      {"[policy]\nexample = [\"saas\"]\n", "policy.example"},
      {"[policy]\nallow_drift = \"yes\"\n", "policy.allow_drift"},
      {"[policy]\nrules = []\n", "policy.rules"},
  };
  expect_refused(cases);
}

TEST_F(ConfigTest, PolicySection) {
  auto none = parse("");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->policy_path, "");  // neither: the healthcare example
  EXPECT_EQ(none->policy_example, "");
  EXPECT_FALSE(none->allow_drift);
  auto file = parse("[policy]\nfile = \"policies/mine.toml\"\n");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->policy_path, (dir_ / "policies/mine.toml").string());  // relative to the config file
  auto absolute = parse("[policy]\nfile = \"/etc/larder/policy.toml\"\n");
  ASSERT_TRUE(absolute.ok()) << absolute.error().message;
  EXPECT_EQ(absolute->policy_path, "/etc/larder/policy.toml");
  // [rls] keeps only the trusted third-party keys.
  auto rls = parse("[rls]\ntrusted_third_party_keys = []\n");
  ASSERT_TRUE(rls.ok()) << rls.error().message;
}

// The gate's RLS context comes from the policy file: its facts are the dimensions, and a file
// that masks a column makes the gate read the unmask rights.
TEST_F(ConfigTest, GateOptionsFromThePolicyFile) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(gate_options_from(c->gate, "").dimensions.empty());  // no policy file: no context
  EXPECT_FALSE(gate_options_from(c->gate, "").unmask_rights);
  for (const auto& e : examples::all()) {
    auto pol = policy::parse(e.policy, "<example " + e.name + ">/policy.toml");
    ASSERT_TRUE(pol.ok()) << pol.error().message;
    auto o = gate_options_from(c->gate, "", &*pol);
    std::set<std::string> facts;
    for (const auto& d : o.dimensions) facts.insert(d.fact);
    const auto declared = pol->dimensions();
    EXPECT_EQ(facts, std::set<std::string>(declared.begin(), declared.end())) << e.name;
    bool masked = false;
    for (const auto& r : pol->relations) masked |= r.masked();
    EXPECT_EQ(o.unmask_rights, masked) << e.name;
    if (e.name == "healthcare") {
      EXPECT_EQ(facts, (std::set<std::string>{"patient_name", "role", "hospital"}));
      EXPECT_FALSE(o.unmask_rights);
    }
    if (e.name == "saas") {
      EXPECT_TRUE(o.unmask_rights);
    }
  }
}

// Finding 5: the handshake deadline and cap, and the per-client-certificate call limits.
TEST_F(ConfigTest, ConnectionAndPerClientLimits) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->limits.handshake_timeout.count(), 5000);
  EXPECT_EQ(defaults->limits.max_handshakes, 512u);
  EXPECT_EQ(defaults->transport.client_limits.max_concurrent, 16u);
  EXPECT_EQ(defaults->transport.client_limits.rate_per_second, 100u);
  EXPECT_EQ(defaults->transport.client_limits.burst, 200u);

  auto set = parse(R"([limits]
handshake_timeout_ms = 2000
max_handshakes = 64
max_concurrent_calls_per_client = 4
max_calls_per_second_per_client = 0
call_burst_per_client = 1
)");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->limits.handshake_timeout.count(), 2000);
  EXPECT_EQ(set->limits.max_handshakes, 64u);
  EXPECT_EQ(set->transport.client_limits.max_concurrent, 4u);
  EXPECT_EQ(set->transport.client_limits.rate_per_second, 0u);  // 0 = no limit
  EXPECT_EQ(set->transport.client_limits.burst, 1u);

  const std::vector<BadCase> bad = {
      {"[limits]\nhandshake_timeout_ms = 0\n", "limits.handshake_timeout_ms"},
      {"[limits]\nhandshake_timeout_ms = 600001\n", "limits.handshake_timeout_ms"},
      {"[limits]\nhandshake_timeout_ms = \"5s\"\n", "limits.handshake_timeout_ms"},
      {"[limits]\nmax_handshakes = 0\n", "limits.max_handshakes"},
      {"[limits]\nmax_handshakes = 1000001\n", "limits.max_handshakes"},
      {"[limits]\nmax_concurrent_calls_per_client = -1\n", "limits.max_concurrent_calls_per_client"},
      {"[limits]\nmax_concurrent_calls_per_client = 1.5\n", "limits.max_concurrent_calls_per_client"},
      {"[limits]\nmax_calls_per_second_per_client = -1\n", "limits.max_calls_per_second_per_client"},
      {"[limits]\nmax_calls_per_second_per_client = 1000001\n", "limits.max_calls_per_second_per_client"},
      {"[limits]\ncall_burst_per_client = 0\n", "limits.call_burst_per_client"},
      {"[limits]\ncall_burst_per_client = true\n", "limits.call_burst_per_client"},
      {"[limits]\nmax_calls_per_client = 1\n", "limits.max_calls_per_client"},  // misspelt: unknown key
  };
  expect_refused(bad);
}

// Finding 5, per token lineage; finding 9, the audit anchor.
TEST_F(ConfigTest, PerLineageLimitsAndTheAuditAnchor) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->pipeline.lineage_limits.max_concurrent, 16u);
  EXPECT_EQ(defaults->pipeline.lineage_limits.rate_per_second, 100u);
  EXPECT_EQ(defaults->pipeline.lineage_limits.burst, 200u);
  EXPECT_EQ(defaults->audit.anchor_id, "");
  EXPECT_EQ(defaults->audit.anchor_max_lag.count(), 5000);
  auto set = parse(R"([limits]
max_concurrent_calls_per_lineage = 2
max_calls_per_second_per_lineage = 0
call_burst_per_lineage = 3
[audit]
anchor_id = "db-1"
anchor_max_lag_ms = 250
)");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->pipeline.lineage_limits.max_concurrent, 2u);
  EXPECT_EQ(set->pipeline.lineage_limits.rate_per_second, 0u);
  EXPECT_EQ(set->pipeline.lineage_limits.burst, 3u);
  EXPECT_EQ(set->audit.anchor_id, "db-1");
  EXPECT_EQ(set->audit.anchor_max_lag.count(), 250);
  const std::vector<BadCase> bad = {
      {"[limits]\nmax_concurrent_calls_per_lineage = -1\n", "limits.max_concurrent_calls_per_lineage"},
      {"[limits]\nmax_calls_per_second_per_lineage = 1000001\n", "limits.max_calls_per_second_per_lineage"},
      {"[limits]\ncall_burst_per_lineage = 0\n", "limits.call_burst_per_lineage"},
      {"[audit]\nanchor_max_lag_ms = 10\n", "audit.anchor_max_lag_ms"},
      {"[audit]\nanchor_id = 5\n", "audit.anchor_id"},
  };
  expect_refused(bad);
}

// Issue #17 item 5: audit log rotation and retention.
TEST_F(ConfigTest, AuditRotationAndRetention) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->audit.log.rotate_bytes, 0u);
  EXPECT_EQ(defaults->audit.log.rotate_interval.count(), 0);
  EXPECT_EQ(defaults->audit.log.keep_files, 0u);
  EXPECT_EQ(defaults->audit.log.keep_age, std::chrono::days(0));
  auto set = parse(R"([audit]
rotate_bytes = 104857600
rotate_interval_s = 86400
keep_files = 30
keep_days = 90
syslog = true
)");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->audit.log.rotate_bytes, 104857600u);
  EXPECT_EQ(set->audit.log.rotate_interval.count(), 86400);
  EXPECT_EQ(set->audit.log.keep_files, 30u);
  EXPECT_EQ(set->audit.log.keep_age, std::chrono::days(90));
  EXPECT_TRUE(set->audit.syslog);
  EXPECT_EQ(set->audit.syslog_socket, "/dev/log");
  EXPECT_FALSE(defaults->audit.syslog);
  const std::vector<BadCase> bad = {
      {"[audit]\nrotate_bytes = 100\n", "audit.rotate_bytes", true, "at least 4096"},
      {"[audit]\nrotate_bytes = \"100MB\"\n", "audit.rotate_bytes", true, "integer"},
      {"[audit]\nrotate_bytes = -1\n", "audit.rotate_bytes"},
      {"[audit]\nrotate_interval_s = 5\n", "audit.rotate_interval_s", true, "at least 60"},
      {"[audit]\nkeep_files = -2\nrotate_bytes = 4096\n", "audit.keep_files"},
      {"[audit]\nkeep_files = 3\n", "audit.keep_files", true, "rotate_bytes"},
      {"[audit]\nkeep_days = 3\n", "audit.keep_days", true, "never rotated"},
      {"[audit]\nsyslog = \"yes\"\n", "audit.syslog", true, "true or false"},
      {"[audit]\nsyslog_socket = \"\"\n", "audit.syslog_socket", true, "/dev/log"},
  };
  expect_refused(bad);
}

TEST_F(ConfigTest, BiscuitMemoryBudget) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->gate.limits.max_memory_bytes, std::size_t{8} << 20);
  EXPECT_EQ(gate_options_from(defaults->gate, "").limits.max_memory_bytes, std::size_t{8} << 20);
  const std::string keys =
      "root_keys = [{ id = 1, public_key = "
      "\"ed25519/1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284\" }]\n";
  auto set = parse_serve_config(
      "i_understand_this_is_insecure = [\"plain_http\"]\n[server]\nplain_http = true\n[biscuit]\n" + keys +
          "max_memory_bytes = 1048576\n",
      dir_.string());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->gate.limits.max_memory_bytes, std::size_t{1} << 20);
  EXPECT_EQ(gate_options_from(set->gate, "").limits.max_memory_bytes, std::size_t{1} << 20);
  for (const char* bad :
       {"max_memory_bytes = 100\n", "max_memory_bytes = \"8MB\"\n", "max_memory_bytes = -1\n"}) {
    auto c = parse_serve_config(
        "i_understand_this_is_insecure = [\"plain_http\"]\n[server]\nplain_http = true\n[biscuit]\n" + keys +
            bad,
        dir_.string());
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.error().message.find("biscuit.max_memory_bytes"), std::string::npos) << c.error().message;
  }
}

TEST_F(ConfigTest, RootKeysAreRequiredAndUnique) {
  auto none = parse_serve_config(
      "i_understand_this_is_insecure = [\"plain_http\"]\n[server]\nplain_http = true\n", dir_.string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("biscuit.root_keys"), std::string::npos);
  auto dup = parse_serve_config(R"(i_understand_this_is_insecure = ["plain_http"]
[server]
plain_http = true
[biscuit]
root_keys = [{ id = 1, public_key = "ed25519/aa" }, { id = 1, public_key = "ed25519/bb" }]
)",
                                dir_.string());
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("biscuit.root_keys[1].id"), std::string::npos) << dup.error().message;
}

// Issue #13 item 5: a typo in a tool name or class is refused, naming the valid ones.
TEST_F(ConfigTest, UnknownToolsAndClassesAreRefused) {
  const std::string tools = "pg_query, pg_explain, pg_metadata, hipaa_compliance_check";
  expect_refused({
      {"[tools]\nenabled = [\"pg_query\", \"pg_qurey\"]\n", "tools.enabled[1]", true,
       "unknown tool \"pg_qurey\""},
      {"[tools]\nenabled = [\"pg_qurey\"]\n", "tools.enabled[0]", true, tools},
      {"[tools]\nclasses = { pg_qurey = \"neutral\" }\n", "tools.classes.pg_qurey", true, tools},
      {"[tools]\nclasses = { pg_query = \"secret\" }\n", "tools.classes.pg_query", true,
       "neutral, sensitive-read, egress (got \"secret\")"},
  });
  auto every = parse(
      "[tools]\nenabled = [\"pg_query\", \"pg_explain\", \"pg_metadata\", \"hipaa_compliance_check\"]\n");
  ASSERT_TRUE(every.ok()) << every.error().message;
  EXPECT_EQ(every->tools, known_tools());
}

// Issue #13 item 5: tls.client_ca must hold CA certificates (basicConstraints CA:TRUE).
TEST_F(ConfigTest, ClientCaMustBeACaCertificate) {
  const std::string tls = "[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = ";
  expect_refused({
      {tls + "\"leaf.pem\"\n", "tls.client_ca", false,
       (dir_ / "leaf.pem").string() + " is not a CA certificate"},
      {tls + "\"leaf.pem\"\n", "tls.client_ca", false,
       "CN \"claude-client\") lacks basicConstraints CA:TRUE"},
      {tls + "\"leaf.pem\"\n", "tls.client_ca", false, "larder certs init"},
      {tls + "\"bundle.pem\"\n", "tls.client_ca", false, "certificate 2"},
      {tls + "\"crl.pem\"\n", "tls.client_ca", false, "holds no PEM certificate"},
  });
  auto ok = parse("");  // ca.pem: a CA
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}

// Issue #13 item 5: settings that turn a protection off need the acknowledgement, and a
// stale or unknown acknowledgement is refused.
TEST_F(ConfigTest, InsecureSettingsNeedTheAcknowledgement) {
  const std::string how = "i_understand_this_is_insecure = [\"";
  expect_refused({
      {"[server]\nplain_http = true\n", "server.plain_http", true, how + "plain_http\"]"},
      {"", "biscuit.require_binding", true, how + "unbound_tokens\"]", "", "require_binding = false\n"},
      {"", "biscuit.require_expiry", true, how + "tokens_without_expiry\"]", "", "require_expiry = false\n"},
      // One acknowledgement does not cover another setting.
      {"", "biscuit.require_expiry", true, "tokens_without_expiry",
       "i_understand_this_is_insecure = [\"unbound_tokens\"]\n",
       "require_binding = false\nrequire_expiry = false\n"},
      {"", "i_understand_this_is_insecure[0]", true, "plain_http, unbound_tokens, tokens_without_expiry",
       "i_understand_this_is_insecure = [\"sql_guard_off\"]\n"},
      {"", "i_understand_this_is_insecure", true, "does not set server.plain_http = true",
       "i_understand_this_is_insecure = [\"plain_http\"]\n"},
      {"", "i_understand_this_is_insecure", true, "must be an array of strings",
       "i_understand_this_is_insecure = true\n"},
      {"[database]\nsql_guard = false\n", "database.sql_guard", true, "cannot be turned off"},
      {"[policy]\nallow_drift = true\n", "policy.allow_drift", true, how + "policy_drift\"]"},
      {"", "i_understand_this_is_insecure", true, "does not set policy.allow_drift = true",
       "i_understand_this_is_insecure = [\"policy_drift\"]\n"},
      {"", "i_understand_this_is_insecure[0]", true, "policy_drift",
       "i_understand_this_is_insecure = [\"drift\"]\n"},
  });
  auto drift =
      parse("[policy]\nallow_drift = true\n", true, "i_understand_this_is_insecure = [\"policy_drift\"]\n");
  ASSERT_TRUE(drift.ok()) << drift.error().message;
  EXPECT_TRUE(drift->allow_drift);
  auto drift_warnings = insecure_warnings(*drift);
  ASSERT_EQ(drift_warnings.size(), 1u);
  EXPECT_NE(drift_warnings[0].find("policy.allow_drift = true"), std::string::npos) << drift_warnings[0];
  auto acknowledged = parse(
      "[server]\nplain_http = true\n", false,
      "i_understand_this_is_insecure = [\"plain_http\", \"unbound_tokens\", \"tokens_without_expiry\"]\n",
      "require_binding = false\nrequire_expiry = false\n");
  ASSERT_TRUE(acknowledged.ok()) << acknowledged.error().message;
  EXPECT_TRUE(acknowledged->plain_http);
  EXPECT_FALSE(acknowledged->gate.require_binding);
  EXPECT_FALSE(acknowledged->gate.require_expiry);
  auto warnings = insecure_warnings(*acknowledged);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[0].find("server.plain_http = true"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("biscuit.require_binding = false"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[2].find("biscuit.require_expiry = false"), std::string::npos) << warnings[2];
  EXPECT_FALSE(gate_options_from(acknowledged->gate, "").require_binding);
  EXPECT_FALSE(gate_options_from(acknowledged->gate, "").require_expiry);
}

TEST_F(ConfigTest, TokensMustBeBoundAndExpireByDefault) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->gate.require_binding);
  EXPECT_TRUE(c->gate.require_expiry);
  EXPECT_TRUE(c->insecure_acknowledged.empty());
  EXPECT_TRUE(insecure_warnings(*c).empty());
  EXPECT_TRUE(gate_options_from(c->gate, "").require_binding);
  EXPECT_TRUE(gate_options_from(c->gate, "").require_expiry);
  auto explicit_on = parse("", true, "", "require_binding = true\nrequire_expiry = true\n");
  ASSERT_TRUE(explicit_on.ok()) << explicit_on.error().message;
  expect_refused({{"", "biscuit.require_binding", true, "true or false", "", "require_binding = \"yes\"\n"}});
}

TEST_F(ConfigTest, SyntaxErrorsCarryThePosition) {
  auto c = parse_serve_config("[server\nport = 1\n", dir_.string(), "larder.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "config.syntax");
  EXPECT_NE(c.error().message.find("larder.toml:1:"), std::string::npos) << c.error().message;
}

TEST_F(ConfigTest, MissingFile) {
  auto c = load_serve_config((dir_ / "absent.toml").string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("absent.toml"), std::string::npos);
}

}  // namespace
}  // namespace larder::tools

namespace larder::tools {
namespace {

using gate::DataFlow;
using gate::gate_options_from;

// [admin]: on by default, loopback plain HTTP; elsewhere only over mTLS with an operator
// allow-list (every certificate of the CA is an MCP client, not an operator).
TEST_F(ConfigTest, TheAdminListenerIsLoopbackUnlessMtlsWithAnAllowList) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_TRUE(defaults->admin_enabled);
  EXPECT_EQ(defaults->admin.listener.host, "127.0.0.1");
  EXPECT_EQ(defaults->admin.listener.port, 0);
  EXPECT_FALSE(defaults->admin_tls);
  EXPECT_TRUE(defaults->metrics_enabled);
  EXPECT_EQ(defaults->limits.stop_grace.count(), 30000);
  auto set = parse(R"([server]
drain_timeout_ms = 5000
[admin]
host = "0.0.0.0"
port = 9464
tls = true
allowed_clients = ["cn:ops", "sha256:ab"]
metrics = false
readiness_cache_ms = 0
)");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->admin.listener.port, 9464);
  EXPECT_TRUE(set->admin_tls);
  EXPECT_EQ(set->admin.listener.tls.allowed_clients.size(), 2u);
  EXPECT_FALSE(set->metrics_enabled);
  EXPECT_EQ(set->admin.readiness_cache.count(), 0);
  EXPECT_EQ(set->limits.stop_grace.count(), 5000);
  auto off = parse("[admin]\nenabled = false\nhost = \"0.0.0.0\"\n");
  ASSERT_TRUE(off.ok()) << off.error().message;  // nothing listens, so nothing to refuse
  const std::vector<BadCase> bad = {
      {"[admin]\nhost = \"0.0.0.0\"\n", "admin.host", true, "admin.tls"},
      {"[admin]\nhost = \"10.1.2.3\"\n", "admin.host"},
      {"[admin]\ntls = true\n", "admin.allowed_clients"},
      {"[admin]\ntls = true\nallowed_clients = [\"ops\"]\n", "admin.allowed_clients[0]"},
      {"[admin]\nport = 70000\n", "admin.port"},
      {"[admin]\nlisten = \"x\"\n", "admin.listen"},
      {"[server]\ndrain_timeout_ms = -1\n", "server.drain_timeout_ms"},
  };
  expect_refused(bad);
}

// The [profiles.<name>] tables are validated as token profiles (gate/token_profile.h).
TEST(ServeConfigProfiles, ConfigurationProfilesAreValidated) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("larder-profiles-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto ca = net::pki::create_ca("Profile CA");
  ASSERT_TRUE(ca.ok());
  net::pki::CertSpec spec;
  spec.kind = net::pki::CertKind::kServer;
  spec.common_name = "larder-db";
  auto server = net::pki::issue_certificate(*ca, spec);
  ASSERT_TRUE(server.ok());
  std::ofstream(dir / "ca.crt") << ca->cert_pem;
  std::ofstream(dir / "server.crt") << server->cert_pem;
  std::ofstream(dir / "server.key") << server->key_pem;
  const std::string base = std::string(R"(
[biscuit]
root_keys = [{ id = 1, public_key = "ed25519/)") +
                           biscuit::KeyPair::generate().public_key().to_hex() + R"(" }]
[tls]
cert = "server.crt"
key = "server.key"
client_ca = "ca.crt"
)";
  auto parse = [&](const std::string& extra) { return parse_serve_config(base + extra, dir.string()); };
  struct Case {
    const char* toml;
    const char* says;
  };
  const Case cases[] = {
      {"[profiles.p]\nfacts = ['a(1)']\n", "grants no right"},
      {"[profiles.p]\nrights = ['pg_query']\nfacts = ['time(1)']\n", "asserted by the server only"},
      {"[profiles.p]\nrights = ['pg_query']\nfacts = ['right(\"pg_query\")']\n", "belongs in rights"},
      {"[profiles.p]\nrights = ['pg_query']\nfacts = ['a($x) <- b($x)']\n", "exactly one fact"},
      {"[profiles.p]\nrights = ['pg_query']\nttl_s = 100\nmax_ttl_s = 10\n", "above max_ttl"},
      {"[profiles.p]\nrights = ['pg_query']\nttll_s = 100\n", "unknown key"},
      {"[profiles.p]\nrights = ['pg_query', 'unmask:']\n", "names nothing to unmask"},
  };
  for (const auto& c : cases) {
    auto parsed = parse(c.toml);
    ASSERT_FALSE(parsed.ok()) << c.toml;
    EXPECT_NE(parsed.error().message.find(c.says), std::string::npos)
        << c.toml << " → " << parsed.error().message;
  }
  auto good = parse(
      "[profiles.nurse]\nrights = ['pg_query']\nfacts = ['role(\"nurse\")', 'hospital({hospital})']\nttl_s = "
      "3600\n");
  ASSERT_TRUE(good.ok()) << good.error().message;
  ASSERT_NE(good->profile("nurse"), nullptr);
  EXPECT_EQ(good->profile("nurse")->params, std::vector<std::string>{"hospital"});
  EXPECT_EQ(good->profile("nurse")->ttl, std::chrono::seconds(3600));
  auto support = parse(
      "[profiles.support]\nrights = ['pg_query', 'unmask:customers.email']\nfacts = ['tenant({tenant})']\n");
  ASSERT_TRUE(support.ok()) << support.error().message;
  ASSERT_NE(support->profile("support"), nullptr);
  EXPECT_EQ(support->profile("support")->rights,
            (std::vector<std::string>{"pg_query", "unmask:customers.email"}));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace larder::tools
