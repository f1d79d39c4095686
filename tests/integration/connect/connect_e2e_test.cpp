// `larder connect` against the REAL Larder servers: a throwaway PostgreSQL with the healthcare
// data, our PKI, the database server and the compliance server (egress) sharing the taint
// ledger, and the stand-in compliance API that records what reaches it. The host side is a
// pair of pipes. Erin's token goes in; the host sees her rows with their labels, never the
// token; the prompt-injected egress call is refused by lock taint and nothing reaches the
// receiver; the database server restarted on its port mid-session answers the next call with
// the same (tainted) lineage.
#include "connect/bridge.h"
#include "examples/healthcare/demo.h"
#include "host_pipe.h"
#include "support/testbed.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

namespace larder::connect {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test_host::HostPipe;
using test_host::pem_body_lines;
using test_host::text;

class ConnectE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::warn);
    try {
      bed_ = new test::Testbed(test::Testbed::Options{});
      bed_->start_servers();
    } catch (const std::exception& e) {
      std::cerr << "testbed: " << e.what() << "\n";
    }
  }
  static void TearDownTestSuite() {
    delete bed_;
    bed_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(bed_ && bed_->db && bed_->compliance) << "the servers did not start"; }

  static BridgeOptions options(const std::string& token) {
    tools::DemoEnvironment env = bed_->environment();
    auto server = [&](const std::string& name, const std::string& url) {
      agent::McpServerConfig s;
      s.name = name;
      s.url = url;
      s.tls = agent::TlsFiles{env.ca_file, env.claude.cert, env.claude.key, ""};
      return s;
    };
    BridgeOptions o;
    o.config.servers = {server("larder-db", bed_->db_url()),
                        server("larder-compliance", bed_->compliance_url())};
    o.token = token;
    o.token_state = (bed_->dir() / "connect-state" / "lineage.token").string();
    return o;
  }

  static test::Testbed* bed_;
};

test::Testbed* ConnectE2E::bed_ = nullptr;

TEST_F(ConnectE2E, ErinsRowsWithLabelsTheInjectedEgressRefusedAndARestartedServerKeepsTheLineage) {
  tools::DemoEnvironment env = bed_->environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto bridge = Bridge::start(options(tokens->erin));
  ASSERT_TRUE(bridge.ok()) << bridge.error().message;
  HostPipe host(**bridge);
  host.initialize("2025-11-25");

  const json tools = host.request(1, "tools/list")["result"]["tools"];
  bool has_query = false, has_egress = false;
  for (const auto& t : tools) {
    has_query |= t["name"] == "pg_query";
    has_egress |= t["name"] == "hipaa_compliance_check";
    EXPECT_EQ(t["inputSchema"].dump().find("biscuit_token"), std::string::npos) << t["name"];
  }
  EXPECT_TRUE(has_query && has_egress) << tools.dump().substr(0, 300);

  // A read: Erin's rows only, labelled, and the token it tainted stays in the bridge.
  json read = host.request(
      2, "tools/call", {{"name", "pg_query"}, {"arguments", {{"query", "SELECT * FROM health_records"}}}});
  ASSERT_TRUE(read.contains("result")) << read.dump().substr(0, 300);
  ASSERT_FALSE(read["result"].value("isError", false)) << text(read["result"]);
  const json rows = read["result"]["structuredContent"]["rows"];
  ASSERT_FALSE(rows.empty());
  for (const auto& row : rows) EXPECT_EQ(row["Patient Name"], "Erin oRTEga");
  const json ifc = read["result"]["_meta"]["ifc"];
  EXPECT_EQ(ifc["integrity"], "untrusted");
  EXPECT_EQ(ifc["confidentiality"], "private");
  EXPECT_EQ(ifc["metadata"]["relations"], json::array({"health_records"}));
  EXPECT_FALSE(read["result"]["_meta"].contains("larder/biscuit_token"));
  EXPECT_NE((*bridge)->current_token(), tokens->erin) << "the bridge switched to the attenuated token";

  // The record's injected instruction, obeyed by a scripted model: refused, nothing sent.
  const auto received_before = bed_->received().size();
  json egress = host.request(3, "tools/call",
                             {{"name", "hipaa_compliance_check"}, {"arguments", {{"text", rows.dump()}}}});
  ASSERT_TRUE(egress.contains("result"));
  EXPECT_TRUE(egress["result"].value("isError", false));
  EXPECT_EQ(egress["result"]["_meta"]["larder/decision"]["lock"], "taint");
  EXPECT_EQ(text(egress["result"]).rfind("Larder refused this call: the taint lock said: ", 0), 0u)
      << text(egress["result"]);
  EXPECT_EQ(bed_->received().size(), received_before) << "nothing reached the external receiver";
  EXPECT_EQ(egress["result"]["_meta"]["ifc"], json({{"integrity", "trusted"}, {"confidentiality", "public"}}))
      << "a refusal carries no data";

  // The database server restarts on its port: every session is gone.
  const uint16_t port = bed_->db->port();
  tools::ServeConfig c = bed_->db_config();
  c.port = port;
  bed_->db.reset();
  bed_->db = test::Testbed::start(c);
  json again =
      host.request(4, "tools/call",
                   {{"name", "pg_query"}, {"arguments", {{"query", "SELECT count(*) FROM health_records"}}}});
  ASSERT_TRUE(again.contains("result")) << again.dump().substr(0, 300);
  EXPECT_FALSE(again["result"].value("isError", false)) << text(again["result"]);
  EXPECT_GE((*bridge)->reconnects(), 1);
  json still =
      host.request(5, "tools/call", {{"name", "hipaa_compliance_check"}, {"arguments", {{"text", "x"}}}});
  EXPECT_EQ(still["result"]["_meta"]["larder/decision"]["lock"], "taint")
      << "the same lineage after the restart";

  host.close();
  EXPECT_TRUE(host.wait_eof(std::chrono::seconds(15)));
  const std::string bytes = host.bytes();
  for (const auto& t : {tokens->erin, (*bridge)->current_token()})
    EXPECT_EQ(bytes.find(t), std::string::npos);
  EXPECT_EQ(bytes.find("larder/biscuit_token"), std::string::npos);
  for (const auto& line : pem_body_lines(env.claude.key)) EXPECT_EQ(bytes.find(line), std::string::npos);
  EXPECT_FALSE(host.not_json());
}

}  // namespace
}  // namespace larder::connect
