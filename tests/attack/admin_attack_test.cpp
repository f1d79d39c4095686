// Boundary: the admin listener (/healthz, /readyz, /metrics; docs/operations.md). A client with
// our certificate and a patient's token tries to reach it over mTLS when it is not an
// operator, to grow the metrics without bound by inventing tool, prompt and method names, to
// read a token, a query or a row back out of a scrape, and to send it what a browser or a
// scanner would. Each is refused or bounded; nothing a caller sent or read is ever exported.
#include "attack_env.h"

#include "net/client.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace larder::attack {
namespace {

using nlohmann::json;

net::ClientResponse admin_get(uint16_t port, const std::string& path, const std::string& method = "GET",
                              const std::string& body = "") {
  auto client = net::HttpClient::create("http://127.0.0.1:" + std::to_string(port), {"", "", "", "", true});
  if (!client) throw std::runtime_error(client.error().message);
  auto r = (*client)->request(method, path, {}, body, std::chrono::seconds(20));
  if (!r) throw std::runtime_error(r.error().message);
  return *r;
}

std::string scrape() {
  auto r = admin_get(bed().db->admin_port(), "/metrics");
  if (r.status != 200) throw std::runtime_error("scrape answered " + std::to_string(r.status));
  return r.body;
}

std::size_t series_of(const std::string& text, const std::string& sample) {
  std::size_t n = 0;
  for (std::size_t at = text.find("\n" + sample + "{"); at != std::string::npos;
       at = text.find("\n" + sample + "{", at + 1))
    ++n;
  return n;
}

TEST(AdminAttack, AnMcpClientCertificateIsRefusedByAnMtlsAdminListener) {
  tools::ServeConfig config = bed().db_config();
  config.port = 0;
  config.audit.path = (bed().dir() / "admin-mtls-audit.jsonl").string();
  config.audit.anchor_id = "admin-mtls";
  config.admin_tls = true;
  config.admin.listener.tls.allowed_clients = {"cn:other-client"};  // the operator's certificate
  auto server = test::Testbed::start(config);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->admin_port());

  // claude-client is a valid certificate of our CA — an MCP client, not an operator.
  auto as_agent = net::HttpClient::create(url, tls_of(env().claude));
  ASSERT_TRUE(as_agent.ok());
  auto refused = (*as_agent)->request("GET", "/metrics", {}, "", std::chrono::seconds(10));
  EXPECT_FALSE(refused.ok()) << "an MCP client's certificate read the metrics: " << refused->status;
  // No certificate at all, and plain HTTP, are refused as well.
  auto anonymous = net::HttpClient::create(url, {env().ca_file, "", "", "", false});
  ASSERT_TRUE(anonymous.ok());
  EXPECT_FALSE((*anonymous)->request("GET", "/healthz", {}, "", std::chrono::seconds(10)).ok());
  auto plain = net::HttpClient::create("http://127.0.0.1:" + std::to_string(server->admin_port()),
                                       {"", "", "", "", true});
  ASSERT_TRUE(plain.ok());
  auto plain_r = (*plain)->request("GET", "/healthz", {}, "", std::chrono::seconds(10));
  EXPECT_TRUE(!plain_r.ok() || plain_r->status != 200);
  // The operator's certificate is served.
  auto as_operator = net::HttpClient::create(url, tls_of(env().other));
  ASSERT_TRUE(as_operator.ok());
  auto served = (*as_operator)->request("GET", "/metrics", {}, "", std::chrono::seconds(10));
  ASSERT_TRUE(served.ok()) << served.error().message;
  EXPECT_EQ(served->status, 200);
}

TEST(AdminAttack, InventedToolPromptAndMethodNamesDoNotGrowTheMetrics) {
  const std::string token = fresh_patient_token();
  const std::string sid = raw_session(env().db_url, token);
  // 40 names of each kind: past every bound that would matter, and within claude-client's call
  // burst (the suite's other tests share that certificate's budget).
  for (int i = 0; i < 40; ++i) {
    const std::string n = std::to_string(i);
    raw_post(
        env().db_url,
        json{{"jsonrpc", "2.0"}, {"id", i}, {"method", "tools/call"}, {"params", {{"name", "zz-tool-" + n}}}}
            .dump(),
        token, sid);
    raw_post(env().db_url,
             json{{"jsonrpc", "2.0"},
                  {"id", i},
                  {"method", "prompts/get"},
                  {"params", {{"name", "zz-prompt-" + n}}}}
                 .dump(),
             token, sid);
    raw_post(env().db_url, json{{"jsonrpc", "2.0"}, {"id", i}, {"method", "zz/method-" + n}}.dump(), token,
             sid);
    raw_post(env().db_url,
             json{{"jsonrpc", "2.0"},
                  {"id", i},
                  {"method", "resources/read"},
                  {"params", {{"uri", "postgres://zz-resource-" + n}}}}
                 .dump(),
             token, sid);
  }
  // A sleep on purpose: the certificate's call budget refills by the wall clock.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string text = scrape();
  EXPECT_EQ(text.find("zz-"), std::string::npos) << "an invented name became a label";
  EXPECT_LT(series_of(text, "larder_calls_total"), 60u);
  EXPECT_LT(series_of(text, "mcp_server_operation_duration_seconds_count"), 80u);
  EXPECT_NE(text.find("gen_ai_tool_name=\"unknown\""), std::string::npos);
  EXPECT_NE(text.find("mcp_method_name=\"other\""), std::string::npos);
}

TEST(AdminAttack, NoTokenQueryOrRowIsExportedByAScrape) {
  const std::string token = fresh_patient_token();
  auto client = connect(env().db_url, token);
  auto allowed = call(*client, "pg_query",
                      {{"query",
                        "SELECT \"Patient Name\", \"Medical Condition\" FROM health_records "
                        "WHERE 'marker-7f3a' = 'marker-7f3a'"}});
  ASSERT_EQ(refused_lock(allowed), "") << text_of(allowed);
  auto guarded = call(*client, "pg_query", {{"query", "DELETE FROM health_records -- marker-9c1e"}});
  ASSERT_EQ(refused_lock(guarded), "sql-guard");
  const std::string text = scrape();
  for (const std::string& secret :
       {token, token.substr(0, 40), std::string("marker-7f3a"), std::string("marker-9c1e"),
        std::string("oRTEga"), std::string("Medical Condition"), std::string("BEGIN"), env().claude.cert}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << "the scrape carries " << secret.substr(0, 30);
  }
}

TEST(AdminAttack, WhatABrowserOrAScannerSendsIsRefusedCheaply) {
  const uint16_t port = bed().db->admin_port();
  EXPECT_EQ(admin_get(port, "/metrics", "POST", "x").status, 405);
  EXPECT_EQ(admin_get(port, "/readyz", "DELETE").status, 405);
  EXPECT_EQ(admin_get(port, "/metrics/../mcp").status, 404);
  EXPECT_EQ(admin_get(port, "/mcp").status, 404);
  EXPECT_EQ(admin_get(port, "/.well-known/oauth-protected-resource").status, 404);
  // A body larger than the admin listener's 1 KiB bound is refused before a handler runs.
  EXPECT_EQ(admin_get(port, "/healthz", "POST", std::string(64 * 1024, 'a')).status, 413);
  // And the MCP listener does not serve the admin paths.
  auto r = raw_post(env().db_url.substr(0, env().db_url.size() - 4) + "/metrics", "{}");
  EXPECT_NE(r.status, 200);
  EXPECT_EQ(r.body.find("larder_calls_total"), std::string::npos);
}

}  // namespace
}  // namespace larder::attack
