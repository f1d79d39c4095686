// Boundary: configuration reload (docs/operations.md, "Reload"). Whoever can make a server
// reload (write its file, send SIGHUP) must not open anything the file does not say: a reload
// that fails half-way applies nothing (not the keys beside a broken CRL, not a wider
// allow-list), a file that turns off what needs a restart (TLS, the SQL guard, taint, the
// audit log) changes nothing until the operator restarts, and a flood of reloads, concurrent
// with calls, refuses no call and costs a bounded time.
#include "attack_env.h"

#include "biscuit/crypto/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

namespace larder {
namespace {

using attack::bed;
using nlohmann::json;

constexpr const char* kCount = "SELECT count(*) FROM health_records";

tools::ServeConfig own_config(const std::string& name) {
  tools::ServeConfig c = bed().db_config();
  c.port = 0;
  c.audit.path = (bed().dir() / ("reload-attack-" + name + ".jsonl")).string();
  c.audit.anchor_id = "reload-attack-" + name;
  c.transport.client_limits.rate_per_second = 0;
  c.transport.client_limits.max_concurrent = 0;
  c.pipeline.lineage_limits.rate_per_second = 0;
  c.pipeline.lineage_limits.max_concurrent = 0;
  return c;
}

std::string url_of(const tools::LarderService& server) {
  return "https://127.0.0.1:" + std::to_string(server.port()) + "/mcp";
}

json query(mcp::Client& client, const std::string& token, const std::string& sql) {
  return attack::call(client, "pg_query", {{"query", sql}, {"biscuit_token", token}});
}

// A file that swaps in the attacker's root key and drops the allow-list, next to a CRL that
// cannot be read: refused whole. The attacker's token stays refused, the client off the
// allow-list stays refused, the legitimate token keeps working.
TEST(ReloadAttack, AReloadThatFailsHalfWayAppliesNothing) {
  tools::ServeConfig c = own_config("half");
  c.tls.allowed_clients = {"cn:claude-client"};
  auto server = test::Testbed::start(c);
  const std::string url = url_of(*server);
  auto installation = attack::env();
  installation.db_url = url;
  const std::string legit = attack::fresh_patient_token_in(installation, installation.claude);
  const biscuit::KeyPair attacker = biscuit::KeyPair::generate();
  auto forged_env = installation;
  forged_env.root = attacker.private_key();
  const std::string forged = attack::fresh_patient_token_in(forged_env, installation.claude);

  tools::ServeConfig bad = c;
  bad.gate.root_keys = {{1, attacker.public_key().to_string()}};
  bad.tls.allowed_clients = {};
  bad.tool_classes["pg_query"] = gate::DataFlow::kNeutral;  // no more taint from reads
  bad.tls.crl_file = (bed().dir() / "missing-crl.pem").string();
  auto outcome = server->reload(bad);
  ASSERT_FALSE(outcome.ok);
  EXPECT_NE(outcome.error.find("missing-crl.pem"), std::string::npos) << outcome.error;
  EXPECT_EQ(outcome.generation, 1u);

  auto attacker_client = attack::connect(url, forged);  // Authorization: Bearer wins over the argument
  json forged_call = query(*attacker_client, forged, kCount);
  auto client = attack::connect(url, legit);
  EXPECT_EQ(attack::refused_lock(forged_call), "biscuit") << forged_call.dump();
  json legit_call = query(*client, legit, kCount);
  EXPECT_EQ(attack::refused_lock(legit_call), "") << legit_call.dump();
  EXPECT_THROW(attack::connect_with(url, legit, attack::tls_of(installation.other)), std::exception);
}

// A valid file that turns off what only a restart may change: plain HTTP, the SQL guard, taint,
// another audit log. Named as "needs a restart"; none of it takes effect.
TEST(ReloadAttack, SettingsThatNeedARestartDoNotChangeOnReload) {
  tools::ServeConfig c = own_config("restart-only");
  auto server = test::Testbed::start(c);
  const std::string url = url_of(*server);
  auto installation = attack::env();
  installation.db_url = url;
  const std::string token = attack::fresh_patient_token_in(installation, installation.claude);

  tools::ServeConfig weaker = c;
  weaker.plain_http = true;
  weaker.pipeline.taint_enabled = false;
  weaker.audit.path = (bed().dir() / "elsewhere.jsonl").string();
  auto outcome = server->reload(weaker);
  ASSERT_TRUE(outcome.ok) << outcome.error;
  const std::vector<std::string> named = outcome.restart_needed;
  for (const char* key : {"server.plain_http", "taint.enabled", "audit.path"})
    EXPECT_NE(std::find(named.begin(), named.end(), key), named.end()) << key;

  auto client = attack::connect(url, token);  // still mTLS
  json hostile = query(*client, token, "SELECT * FROM pg_shadow");
  EXPECT_EQ(attack::refused_lock(hostile), "sql-guard") << hostile.dump();
  json read = query(*client, token, kCount);
  ASSERT_EQ(attack::refused_lock(read), "") << read.dump();
  // Taint still applies: the lineage that read is refused by an egress tool.
  tools::ServeConfig egress = c;
  egress.tool_classes["pg_explain"] = gate::DataFlow::kEgress;
  ASSERT_TRUE(server->reload(egress).ok);
  json leak = attack::call(*client, "pg_explain", {{"query", kCount}, {"biscuit_token", token}});
  EXPECT_EQ(attack::refused_lock(leak), "taint") << leak.dump();
  EXPECT_FALSE(std::filesystem::exists(weaker.audit.path));
}

// 100 reloads from four threads at once, while a client calls: serialized, every one applied,
// no call refused, bounded time.
TEST(ReloadAttack, AFloodOfReloadsRefusesNoCallAndStaysBounded) {
  tools::ServeConfig c = own_config("flood");
  auto server = test::Testbed::start(c);
  const std::string url = url_of(*server);
  auto installation = attack::env();
  installation.db_url = url;
  const std::string token = attack::fresh_patient_token_in(installation, installation.claude);
  std::atomic<bool> done{false};
  std::atomic<int> calls{0}, refused{0};
  std::thread caller([&] {
    auto client = attack::connect(url, token);
    while (!done) {
      json r = query(*client, token, kCount);
      ++calls;
      if (!attack::refused_lock(r).empty()) ++refused;
    }
  });
  const auto began = std::chrono::steady_clock::now();
  std::vector<std::thread> reloaders;
  std::atomic<int> failed{0};
  for (int t = 0; t < 4; ++t) {
    reloaders.emplace_back([&] {
      for (int i = 0; i < 25; ++i)
        if (!server->reload(c).ok) ++failed;
    });
  }
  for (auto& t : reloaders) t.join();
  const auto took = std::chrono::steady_clock::now() - began;
  done = true;
  caller.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(server->last_reload().generation, 101u);
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(refused.load(), 0);
  EXPECT_LT(took, std::chrono::seconds(60));
}

}  // namespace
}  // namespace larder
