// Live reload (docs/operations.md, "Reload") on a whole installation (Testbed: real PostgreSQL,
// real mTLS): each reloadable setting takes effect without a restart — root keys (a rotation
// during which not one call of a configured key is refused), tool classes, the per-client call
// limit, the TLS allow-list and the server certificate — a setting that needs a restart is
// named and kept, an invalid file keeps the configuration in force (whole), a call in flight
// finishes under the configuration that admitted it, and SIGHUP / `larder reload` drive it.
// The revocation list needs no reload (it is asked in PostgreSQL on every call):
// HttpAuthAttack.ARevokedBearerTokenGets401InvalidTokenOnItsNextCall and
// InstancesAttack.ARevokedTokenIsRefusedByTheOtherInstanceInTheNextCall show a revocation
// holding in the very next call, on every instance, without a reload.
#include "base/files.h"
#include "biscuit/crypto/keys.h"
#include "examples/healthcare/demo.h"
#include "mcp/client.h"
#include "net/client.h"
#include "support/cli_run.h"
#include "support/testbed.h"
#include "support/wait.h"
#include "tools/demo_scenarios.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace larder {
namespace {

using nlohmann::json;

constexpr const char* kCount = "SELECT count(*) FROM health_records";

class Reload : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { bed_ = new test::Testbed(test::Testbed::Options{}); }
  static void TearDownTestSuite() {
    delete bed_;
    bed_ = nullptr;
  }

  // A database server of its own (own audit log and anchor), with no call limits unless set.
  static tools::ServeConfig config(const std::string& name) {
    tools::ServeConfig c = bed_->db_config();
    c.port = 0;
    c.audit.path = (bed_->dir() / ("reload-" + name + ".jsonl")).string();
    c.audit.anchor_id = "reload-" + name;
    c.transport.client_limits.rate_per_second = 0;
    c.transport.client_limits.max_concurrent = 0;
    c.pipeline.lineage_limits.rate_per_second = 0;
    c.pipeline.lineage_limits.max_concurrent = 0;
    return c;
  }

  static tools::DemoEnvironment env_for(const tools::LarderService& server) {
    auto env = bed_->environment();
    env.db_url = "https://127.0.0.1:" + std::to_string(server.port()) + "/mcp";
    return env;
  }

  // Erin's token signed by `key` under root key id `id`.
  static std::string erin(const biscuit::KeyPair& key, uint32_t id) {
    auto env = bed_->environment();
    env.root = key.private_key();
    env.root_key_id = id;
    auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
    if (!tokens) throw std::runtime_error(tokens.error().message);
    return tokens->erin;
  }

  static std::unique_ptr<mcp::Client> client(const tools::DemoEnvironment& env,
                                             const tools::ClientCert* cert) {
    auto c = tools::connect(env.db_url, env, cert);
    if (!c) throw std::runtime_error(c.error().message);
    return std::move(*c);
  }

  static test::Testbed* bed_;
};
test::Testbed* Reload::bed_ = nullptr;

// Rotation: add key 2 beside key 1, then retire key 1. A client calling with the key-1 token
// all along is never refused while key 1 is configured; key 2's token works from the first
// reload on; after the second, key 1's is refused (lock biscuit) and key 2's still works.
TEST_F(Reload, RootKeyRotationRefusesNoCallWhileItsKeyIsConfigured) {
  tools::ServeConfig c = config("rotation");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const biscuit::KeyPair key2 = biscuit::KeyPair::generate();
  const std::string token1 = erin(bed_->root(), 1);
  const std::string token2 = erin(key2, 2);
  auto db = client(env, &env.claude);
  ASSERT_FALSE(tools::query(*db, token1, kCount).is_error());
  auto before = tools::query(*db, token2, kCount);
  EXPECT_EQ(before.lock(), "biscuit") << before.text();  // key 2 is not known yet

  std::atomic<bool> done{false};
  std::atomic<int> calls{0}, refused{0};
  std::string first_refusal;
  std::thread caller([&] {
    auto own = client(env, &env.claude);
    while (!done) {
      auto r = tools::query(*own, token1, kCount);
      ++calls;
      if (r.is_error() && refused++ == 0) first_refusal = r.text();
    }
  });
  auto wait_calls = [&](int more) {
    const int target = calls + more;
    EXPECT_TRUE(test::wait_until([&] { return calls >= target; }, std::chrono::seconds(30)))
        << "the caller made " << calls << " of " << target << " calls";
  };
  wait_calls(5);
  c.gate.root_keys = {{1, bed_->root().public_key().to_string()}, {2, key2.public_key().to_string()}};
  auto both = server->reload(c);
  ASSERT_TRUE(both.ok) << both.error;
  EXPECT_EQ(both.generation, 2u);
  EXPECT_TRUE(both.restart_needed.empty());
  wait_calls(5);
  EXPECT_FALSE(tools::query(*db, token2, kCount).is_error());
  EXPECT_FALSE(tools::query(*db, token1, kCount).is_error());
  done = true;
  caller.join();
  EXPECT_GE(calls.load(), 10);
  EXPECT_EQ(refused.load(), 0) << "a key-1 call was refused while key 1 was configured: " << first_refusal;

  c.gate.root_keys = {{2, key2.public_key().to_string()}};
  auto retired = server->reload(c);
  ASSERT_TRUE(retired.ok) << retired.error;
  EXPECT_EQ(retired.generation, 3u);
  auto old = tools::query(*db, token1, kCount);
  EXPECT_TRUE(old.is_error());
  EXPECT_EQ(old.lock(), "biscuit") << old.text();
  EXPECT_FALSE(tools::query(*db, token2, kCount).is_error());
}

// [tools] classes are security settings: a tool newly classed egress is refused to a tainted
// lineage by the very next call.
TEST_F(Reload, ToolClassesApplyToTheNextCall) {
  tools::ServeConfig c = config("classes");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  auto db = client(env, &env.claude);
  ASSERT_FALSE(tools::query(*db, token, kCount).is_error());  // a sensitive read: the lineage is tainted
  json explain = {{"query", kCount}, {"biscuit_token", token}};
  auto neutral = tools::call(*db, "pg_explain", explain);
  EXPECT_FALSE(neutral.is_error()) << neutral.text();

  c.tool_classes["pg_explain"] = gate::DataFlow::kEgress;
  auto outcome = server->reload(c);
  ASSERT_TRUE(outcome.ok) << outcome.error;
  auto egress = tools::call(*db, "pg_explain", explain);
  EXPECT_TRUE(egress.is_error());
  EXPECT_EQ(egress.lock(), "taint") << egress.text();
}

// The per-client call limit reloads; a setting that needs a restart is named and kept.
TEST_F(Reload, ClientRateLimitAppliesAfterReloadAndRestartOnlySettingsAreNamed) {
  tools::ServeConfig c = config("limits");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  auto db = client(env, &env.claude);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(tools::query(*db, token, kCount).is_error());

  tools::ServeConfig next = c;
  next.transport.client_limits.rate_per_second = 1;
  next.transport.client_limits.burst = 1;
  next.port = 1;  // needs a restart
  next.limits.worker_threads = c.limits.worker_threads + 1;
  auto outcome = server->reload(next);
  ASSERT_TRUE(outcome.ok) << outcome.error;
  EXPECT_EQ(outcome.restart_needed, (std::vector<std::string>{"server.port", "limits.worker_threads"}));
  int limited = 0;
  std::string text;
  for (int i = 0; i < 5; ++i) {
    auto r = tools::query(*db, token, kCount);
    if (r.is_error()) {
      ++limited;
      text = r.text();
    }
  }
  EXPECT_GE(limited, 3) << "the lowered per-client rate limit did not apply";
  EXPECT_NE(text.find("too many calls per second"), std::string::npos) << text;
  EXPECT_NE(server->port(), 1);
}

// [tls]: a client taken off the allow-list is refused at its next connection (and at the next
// request of a connection already open); a new certificate and key are what new connections
// see, while a connection already open keeps working.
TEST_F(Reload, AllowListAndServerCertificateApplyToNewConnections) {
  tools::ServeConfig c = config("tls");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  auto subject = [&] {
    const std::string cmd = "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(server->port()) +
                            " -cert " + test::shell_quote(env.claude.cert) + " -key " +
                            test::shell_quote(env.claude.key) +
                            " 2>/dev/null | openssl x509 -noout -subject 2>/dev/null";
    return test::run_shell(cmd).out;
  };
  EXPECT_NE(subject().find("larder-db"), std::string::npos) << subject();
  ASSERT_NO_THROW(client(env, &env.other));
  auto open_other = client(env, &env.other);
  auto open_claude = client(env, &env.claude);
  ASSERT_FALSE(tools::query(*open_claude, token, kCount).is_error());

  c.tls.allowed_clients = {"cn:claude-client"};
  c.tls.cert_file = bed_->certs() + "/server/larder-compliance.crt";
  c.tls.key_file = bed_->certs() + "/server/larder-compliance.key";
  auto outcome = server->reload(c);
  ASSERT_TRUE(outcome.ok) << outcome.error;
  EXPECT_NE(subject().find("larder-compliance"), std::string::npos) << subject();
  EXPECT_THROW(client(env, &env.other), std::runtime_error);
  auto db = client(env, &env.claude);
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error());
  // Open connections: checked against the new allow-list at their next request.
  auto refused = tools::query(*open_other, token, kCount);
  EXPECT_TRUE(refused.is_error());
  EXPECT_EQ(refused.lock(), "mtls") << refused.text();
  EXPECT_FALSE(tools::query(*open_claude, token, kCount).is_error());
}

// An invalid file is refused whole: nothing of it applies (not the keys beside the missing
// certificate), the outcome says why, the configuration in force keeps serving.
TEST_F(Reload, AnInvalidConfigurationKeepsTheOneInForce) {
  tools::ServeConfig c = config("invalid");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  const biscuit::KeyPair key2 = biscuit::KeyPair::generate();
  tools::ServeConfig bad = c;
  bad.gate.root_keys = {{2, key2.public_key().to_string()}};  // would retire key 1
  bad.tls.cert_file = (bed_->dir() / "no-such-cert.pem").string();
  auto outcome = server->reload(bad);
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.generation, 1u);
  EXPECT_NE(outcome.error.find("no-such-cert.pem"), std::string::npos) << outcome.error;
  EXPECT_EQ(server->last_reload().error, outcome.error);
  {  // the admin listener's /reloadz says the same
    auto admin = net::HttpClient::create("http://127.0.0.1:" + std::to_string(server->admin_port()),
                                         {"", "", "", "", true});
    ASSERT_TRUE(admin.ok()) << admin.error().message;
    auto r = (*admin)->request("GET", "/reloadz", {}, "", std::chrono::seconds(10));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
    const json status = json::parse(r->body);
    EXPECT_EQ(status.value("ok", true), false) << r->body;
    EXPECT_EQ(status.value("generation", 0), 1) << r->body;
    EXPECT_EQ(status.value("error", ""), outcome.error) << r->body;
  }
  auto db = client(env, &env.claude);
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error()) << "key 1 was retired by a refused reload";

  bad = c;
  bad.policy_file = (bed_->dir() / "broken.datalog").string();
  std::ofstream(bad.policy_file) << "allow if right(;\n";
  outcome = server->reload(bad);
  EXPECT_FALSE(outcome.ok);
  EXPECT_NE(outcome.error.find("broken.datalog"), std::string::npos) << outcome.error;
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error());

  // A file that cannot be read at all (the loader's error) is reported the same way.
  outcome = server->reload_from([]() -> Result<tools::ServeConfig> {
    return make_error("config.invalid", "larder.toml: line 3: expected a value");
  });
  EXPECT_FALSE(outcome.ok);
  EXPECT_EQ(outcome.attempt, 3u);
  EXPECT_NE(outcome.error.find("line 3"), std::string::npos);
}

// The Datalog policy file reloads: a policy that allows nothing refuses the next call.
TEST_F(Reload, DatalogPolicyFileApplies) {
  tools::ServeConfig c = config("datalog");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  auto db = client(env, &env.claude);
  ASSERT_FALSE(tools::query(*db, token, kCount).is_error());
  c.policy_file = (bed_->dir() / "deny-all.datalog").string();
  std::ofstream(c.policy_file) << "deny if true;\n";
  auto outcome = server->reload(c);
  ASSERT_TRUE(outcome.ok) << outcome.error;
  auto refused = tools::query(*db, token, kCount);
  EXPECT_TRUE(refused.is_error());
  EXPECT_EQ(refused.lock(), "policy") << refused.text();
}

// A call in flight finishes under the configuration that admitted it: its key retired while
// its statement runs, it still answers (and is tainted, by the gate that admitted it); the
// next call with that key is refused.
TEST_F(Reload, ACallInFlightFinishesUnderTheConfigurationThatAdmittedIt) {
  tools::ServeConfig c = config("inflight");
  c.database.max_query_cost = 0;
  c.database.default_timeout = std::chrono::milliseconds(120000);  // a loaded machine: slow, never cut
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  const biscuit::KeyPair key2 = biscuit::KeyPair::generate();
  auto db = client(env, &env.claude);
  tools::Call slow;
  // A sensitive read (it reads health_records): the gate that admitted it attenuates its token.
  std::thread call([&] {
    slow = tools::query(*db, token,
                        "SELECT count(*) FROM generate_series(1, 40000000) AS g "
                        "WHERE g > (SELECT count(*) FROM health_records)");
  });
  const std::string running_sql =
      "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%generate_series(1, "
      "40000000)%' AND pid <> pg_backend_pid()";
  const bool started = test::wait_until([&] { return bed_->cluster().admin_scalar(running_sql) != "0"; },
                                        std::chrono::seconds(2));
  c.gate.root_keys = {{2, key2.public_key().to_string()}};
  auto outcome = server->reload(c);
  call.join();
  ASSERT_TRUE(outcome.ok) << outcome.error;
  if (!started) GTEST_SKIP() << "the statement finished before the reload; nothing was in flight";
  EXPECT_FALSE(slow.is_error()) << slow.text();
  EXPECT_TRUE(slow.attenuated().has_value());
  auto db2 = client(env, &env.claude);
  EXPECT_EQ(tools::query(*db2, token, kCount).lock(), "biscuit");
}

// SIGHUP (run_until_signal): the outcome is written beside the pid file (applied, or refused
// with the cause), and a flood of SIGHUPs coalesces (bounded reloads) and leaves the server
// serving.
TEST_F(Reload, SighupReloadsWritesTheOutcomeAndCoalescesAFlood) {
  tools::ServeConfig c = config("sighup");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  const std::string pid_file = (bed_->dir() / "reload-sighup.pid").string();
  std::ofstream(pid_file) << ::getpid() << "\n";
  std::signal(SIGHUP, SIG_IGN);  // until the server takes it (and after): never the default action
  std::atomic<bool> broken{false};
  auto next = std::make_shared<tools::ServeConfig>(c);
  std::mutex next_mu;
  tools::ReloadSource source;
  source.load_config = [&]() -> Result<tools::ServeConfig> {
    std::lock_guard lock(next_mu);
    if (broken) return make_error("config.invalid", "tls.cert: file not found: /nowhere.pem");
    return *next;
  };
  source.status_file = pid_file + ".reload";
  std::thread runner([&] { server->run_until_signal(source); });
  // The first reload: until the server's signal handler is in place, SIGHUP is ignored.
  test::wait_until(
      [&] {
        if (server->last_reload().attempt != 0) return true;
        ::kill(::getpid(), SIGHUP);
        return false;
      },
      std::chrono::seconds(5), std::chrono::milliseconds(25));
  ASSERT_GE(server->last_reload().attempt, 1u);
  EXPECT_TRUE(
      test::wait_until([&] { return std::filesystem::exists(source.status_file); }, std::chrono::seconds(2)))
      << source.status_file;

  // One SIGHUP, and the outcome the server wrote beside the pid file (what `larder reload`
  // reads; Reload.ALarderServeProcessReloadsOnLarderReload runs the command).
  auto hup = [&] {
    const uint64_t before = server->last_reload().attempt;
    ::kill(::getpid(), SIGHUP);
    json status;
    const bool written = test::wait_until(
        [&] {
          auto text = read_file(source.status_file);
          if (!text) return false;
          status = json::parse(*text, nullptr, false);
          return status.is_object() && status.value("attempt", uint64_t{0}) > before;
        },
        std::chrono::seconds(4));
    return written ? status : json();
  };
  const json ok = hup();
  EXPECT_TRUE(ok.value("ok", false)) << ok.dump();
  EXPECT_GE(ok.value("generation", 0), 2) << ok.dump();

  broken = true;
  const json refused = hup();
  EXPECT_FALSE(refused.value("ok", true)) << refused.dump();
  EXPECT_NE(refused.value("error", "").find("/nowhere.pem"), std::string::npos) << refused.dump();
  EXPECT_EQ(refused.value("generation", 0), ok.value("generation", 0)) << refused.dump();
  broken = false;

  // 100 SIGHUPs: they coalesce (far fewer reloads than signals), and calls keep working.
  const uint64_t attempts = server->last_reload().attempt;
  for (int i = 0; i < 100; ++i) ::kill(::getpid(), SIGHUP);
  auto db = client(env, &env.claude);
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error());
  EXPECT_TRUE(
      test::wait_until([&] { return server->last_reload().attempt > attempts; }, std::chrono::seconds(10)))
      << "no reload after 100 SIGHUPs";
  EXPECT_TRUE(server->last_reload().ok) << server->last_reload().error;
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error());

  ::kill(::getpid(), SIGTERM);  // taken by the server while run_until_signal runs: a graceful stop
  runner.join();
  // Counted once the server has stopped, so every reload the signals caused is in.
  EXPECT_LT(server->last_reload().attempt - attempts, 100u);
}

// A `larder serve` process: `larder reload --pid-file` reaches it through SIGHUP and reports
// what it wrote beside the pid file — applied, applied with a setting that needs a restart,
// refused with the cause (exit 1) — and the process stops gracefully on SIGTERM after.
TEST_F(Reload, ALarderServeProcessReloadsOnLarderReload) {
  auto toml = [](const std::string& text) {
    std::string out = "\"";
    for (char ch : text) {
      if (ch == '"' || ch == '\\') out.push_back('\\');
      out.push_back(ch);
    }
    return out + "\"";
  };
  const std::filesystem::path dir = bed_->dir() / "reload-process";
  std::filesystem::create_directories(dir);
  const std::string certs = bed_->certs();
  auto write_config = [&](const std::string& extra_server, const std::string& extra_biscuit) {
    std::ofstream(dir / "larder.toml")
        << "[server]\nhost = \"127.0.0.1\"\nport = 0\naudience = \"larder-db\"\n"
        << extra_server << "[tls]\ncert = " << toml(certs + "/server/larder-db.crt")
        << "\nkey = " << toml(certs + "/server/larder-db.key") << "\nclient_ca = " << toml(certs + "/ca.crt")
        << "\ncrl = " << toml(certs + "/crl.pem")
        << "\n[biscuit]\nroot_keys = [{ id = 1, public_key = " << toml(bed_->root().public_key().to_string())
        << " }]\n"
        << extra_biscuit << "[database]\nmode = \"url\"\nurl = " << toml(bed_->cluster().query_url())
        << "\nwriter_url = " << toml(bed_->cluster().writer_url())
        << "\nledger_url = " << toml(bed_->ledger().to_uri())
        << "\n[tools]\nenabled = [\"pg_query\"]\nclasses = { pg_query = \"sensitive-read\" }\n"
        << "[audit]\npath = " << toml((dir / "audit.jsonl").string()) << "\n[limits]\nworker_threads = 2\n";
  };
  write_config("", "");
  const std::string larder = std::string(LARDER_BINARY_DIR) + "/larder";
  const std::string pid_file = (dir / "larder.pid").string();
  auto started =
      test::run_shell(larder + " serve --background -c " + test::shell_quote((dir / "larder.toml").string()) +
                      " --pid-file " + test::shell_quote(pid_file) + " --log-file " +
                      test::shell_quote((dir / "larder.log").string()) + " 2>&1");
  ASSERT_EQ(started.status, 0) << started.out;
  auto pid_text = read_file(pid_file);
  ASSERT_TRUE(pid_text.ok());
  const pid_t pid = static_cast<pid_t>(std::stol(*pid_text));
  auto reload = [&] {
    return test::run_shell(larder + " reload --pid-file " + test::shell_quote(pid_file) + " 2>&1");
  };

  auto ok = reload();
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("reloaded (generation 2)"), std::string::npos) << ok.out;

  write_config("drain_timeout_ms = 1000\n", "");
  auto restart = reload();
  EXPECT_EQ(restart.status, 0) << restart.out;
  EXPECT_NE(restart.out.find("server.drain_timeout_ms changed; it takes effect at the next restart"),
            std::string::npos)
      << restart.out;

  write_config("", "policy_file = \"missing.datalog\"\n");
  auto refused = reload();
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("missing.datalog"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("generation 3) keeps serving"), std::string::npos) << refused.out;

  // A stale pid file naming some other process: not signalled.
  const std::string stale = (dir / "stale.pid").string();
  std::ofstream(stale) << ::getpid() << "\n";  // this test binary, not a larder server
  auto other = test::run_shell(larder + " reload --pid-file " + test::shell_quote(stale) + " 2>&1");
  EXPECT_EQ(other.status, 1) << other.out;
  EXPECT_NE(other.out.find("not a larder process"), std::string::npos) << other.out;

  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  const bool gone = test::wait_until([&] { return ::kill(pid, 0) != 0; }, std::chrono::seconds(15),
                                     std::chrono::milliseconds(50));
  EXPECT_TRUE(gone) << "larder serve did not stop on SIGTERM";
  auto log = read_file((dir / "larder.log").string());
  EXPECT_NE(log.ok() ? log->find("larder serve: stopped") : std::string::npos, std::string::npos);
}

// [tools] enabled switches the database tools: a disabled tool leaves tools/list and is
// refused as unknown, enabled again it serves; a tool this server was not started with (the
// compliance tool) needs a restart.
TEST_F(Reload, DatabaseToolsSwitchOnAndOff) {
  tools::ServeConfig c = config("tools");
  auto server = test::Testbed::start(c);
  auto env = env_for(*server);
  const std::string token = erin(bed_->root(), 1);
  auto db = client(env, &env.claude);
  auto listed = [&] {
    std::set<std::string> names;
    auto tools = db->list_tools();
    if (tools)
      for (const auto& t : *tools) names.insert(t.value("name", ""));
    return names;
  };
  const json explain = {{"query", kCount}, {"biscuit_token", token}};
  ASSERT_EQ(listed().count("pg_explain"), 1u);

  tools::ServeConfig fewer = c;
  fewer.tools = {"pg_query", "pg_metadata"};
  auto off = server->reload(fewer);
  ASSERT_TRUE(off.ok) << off.error;
  EXPECT_TRUE(off.restart_needed.empty());
  EXPECT_EQ(listed().count("pg_explain"), 0u);
  auto refused = tools::call(*db, "pg_explain", explain);
  EXPECT_TRUE(refused.is_error());
  EXPECT_NE(refused.text().find("Unknown tool"), std::string::npos) << refused.text();
  EXPECT_FALSE(tools::query(*db, token, kCount).is_error());

  auto on = server->reload(c);
  ASSERT_TRUE(on.ok) << on.error;
  EXPECT_EQ(listed().count("pg_explain"), 1u);
  EXPECT_FALSE(tools::call(*db, "pg_explain", explain).is_error());

  tools::ServeConfig more = c;
  more.tools.push_back("hipaa_compliance_check");
  more.tool_classes["hipaa_compliance_check"] = gate::DataFlow::kEgress;
  auto restart = server->reload(more);
  ASSERT_TRUE(restart.ok) << restart.error;
  EXPECT_EQ(restart.restart_needed, std::vector<std::string>{"tools.enabled"});
  EXPECT_EQ(listed().count("hipaa_compliance_check"), 0u);
}

}  // namespace
}  // namespace larder
