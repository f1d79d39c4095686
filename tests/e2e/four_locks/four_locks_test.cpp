// The four locks end to end, in-process: a real PostgreSQL (throwaway cluster), a real PKI,
// the database server and the compliance server (two LarderService instances sharing the
// taint ledger), our MCP client over mTLS — and every scenario of the demo.
#include "examples/healthcare/demo.h"
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
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_.busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto outcomes = examples::healthcare::run_demo_scenarios(env, *tokens, nullptr);
  ASSERT_GE(outcomes.size(), 20u);
  for (const auto& o : outcomes) {
    EXPECT_TRUE(o.expected) << o.name << "\n  request: " << o.request << "\n  outcome: " << o.outcome
                            << "\n  lock: " << o.lock;
  }
}

TEST_F(FourLocks, TaintSurvivesARestartOfTheEgressServer) {
  auto env = bed_.environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_.busiest_hospital());
  ASSERT_TRUE(tokens.ok());
  auto outcomes = examples::healthcare::run_demo_scenarios(env, *tokens, nullptr);  // taints Erin's lineage
  bed_.compliance.reset();
  bed_.compliance = test::Testbed::start(bed_.compliance_config());
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto client =
      mcp::Client::connect_http("https://127.0.0.1:" + std::to_string(bed_.compliance->port()) + "/mcp", tls);
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto r =
      (*client)->call_tool("hipaa_compliance_check", {{"text", "hello"}, {"biscuit_token", tokens->erin}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->value("isError", false));
  EXPECT_EQ((*r)["_meta"]["larder/decision"]["lock"], "taint");
}

// A table sample is a sensitive read too: the resource has no place for an attenuated token,
// so the lineage ledger alone carries the taint — and it does, across servers.
TEST_F(FourLocks, ATableSampleShowsEntitledRowsOnlyAndTaintsTheLineage) {
  auto env = bed_.environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_.busiest_hospital());
  ASSERT_TRUE(tokens.ok());
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto db = mcp::Client::connect_http(env.db_url, tls, {{"Authorization", "Bearer " + tokens->erin}});
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto sample = (*db)->read_resource("pgmcp://healthcare/schemas/public/tables/health_records/sample");
  ASSERT_TRUE(sample.ok()) << sample.error().message;
  auto content = nlohmann::json::parse((*sample)["contents"][0].value("text", "{}"));
  ASSERT_GT(content["rows"].size(), 0u) << content.dump();
  for (const auto& row : content["rows"]) EXPECT_EQ(row["Patient Name"], "Erin oRTEga");

  auto egress =
      mcp::Client::connect_http(env.compliance_url, tls, {{"Authorization", "Bearer " + tokens->erin}});
  ASSERT_TRUE(egress.ok()) << egress.error().message;
  auto r = (*egress)->call_tool("hipaa_compliance_check", {{"text", "hello"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->value("isError", false));
  EXPECT_EQ((*r)["_meta"]["larder/decision"]["lock"], "taint");
  EXPECT_TRUE(bed_.received().empty());

  // Without a token, the resource is refused and names the lock.
  auto anonymous = mcp::Client::connect_http(env.db_url, tls);
  ASSERT_TRUE(anonymous.ok());
  auto refused =
      (*anonymous)->read_resource("pgmcp://healthcare/schemas/public/tables/health_records/sample");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("biscuit"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace larder
