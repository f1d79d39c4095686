// The four locks end to end, in-process: a real PostgreSQL (throwaway cluster), a real PKI,
// the database server and the compliance server (two LarderService instances sharing the
// taint ledger), our MCP client over mTLS — and every scenario of the demo.
#include "mcp/client.h"
#include "support/testbed.h"
#include "tools/demo_scenarios.h"

#include <gtest/gtest.h>

namespace larder {
namespace {

class FourLocks : public ::testing::Test {
 protected:
  void SetUp() override { bed_.start_servers(); }
  test::Testbed bed_{test::Testbed::Options{}};
};

TEST_F(FourLocks, EveryDemoScenarioBehavesAsRequired) {
  auto env = bed_.environment();
  auto tokens = tools::mint_demo_tokens(env, bed_.busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto outcomes = tools::run_demo_scenarios(env, *tokens, nullptr);
  ASSERT_GE(outcomes.size(), 20u);
  for (const auto& o : outcomes) {
    EXPECT_TRUE(o.expected) << o.name << "\n  request: " << o.request << "\n  outcome: " << o.outcome
                            << "\n  lock: " << o.lock;
  }
}

TEST_F(FourLocks, TaintSurvivesARestartOfTheEgressServer) {
  auto env = bed_.environment();
  auto tokens = tools::mint_demo_tokens(env, bed_.busiest_hospital());
  ASSERT_TRUE(tokens.ok());
  auto outcomes = tools::run_demo_scenarios(env, *tokens, nullptr);  // taints Erin's lineage
  bed_.compliance.reset();
  bed_.compliance = test::Testbed::start(bed_.compliance_config());
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto client = mcp::Client::connect_http("https://127.0.0.1:" + std::to_string(bed_.compliance->port()) + "/mcp", tls);
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto r = (*client)->call_tool("hipaa_compliance_check", {{"text", "hello"}, {"biscuit_token", tokens->erin}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->value("isError", false));
  EXPECT_EQ((*r)["_meta"]["larder/decision"]["lock"], "taint");
}

}  // namespace
}  // namespace larder
