// McpToolHost and `larder ask` end to end over real mTLS against a real libmcp server
// (Streamable HTTP) shaped like Larder's: pg_query takes biscuit_token and answers with
// pg_query's structuredContent, a sensitive read hands back an attenuated token in
// _meta["larder/biscuit_token"], and an egress tool refuses the tainted lineage. The LLM is
// the loopback fake server replaying tests/fixtures/llm.
#include "agent/mcp_tool_host.h"
#include "agent/ask.h"
#include "agent/fake_llm_server.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "net/pki.h"
#include "net/server.h"
#include "support/wait.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace larder::agent {
namespace {

namespace fs = std::filesystem;
namespace pki = larder::net::pki;
using nlohmann::json;

const std::string kRoot = "RootBiscuitTokenForMcpHostTest-0123456789";
const std::string kTainted = "TaintedBiscuitTokenForMcpHostTest-9876543210";
const std::string kApiKey = "sk-ant-integration-key-42";

struct Seen {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> calls;  // (tool, "arg=<token>|auth=<token>")
  void add(std::string tool, std::string what) {
    std::lock_guard lock(mu);
    calls.emplace_back(std::move(tool), std::move(what));
  }
  std::atomic<int> slow_started{0};  // slow_query handlers that have started
};

class McpToolHostTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::warn);
    dir_ = new std::string(fs::temp_directory_path() / ("larder-agent-it-" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    auto ca = pki::create_ca("Agent IT CA");
    pki::CertSpec server_spec;
    server_spec.kind = pki::CertKind::kServer;
    server_spec.common_name = "localhost";
    server_spec.sans = {"IP:127.0.0.1", "DNS:localhost"};
    auto server = pki::issue_certificate(*ca, server_spec);
    pki::CertSpec client_spec;
    client_spec.common_name = "claude-client";
    auto client = pki::issue_certificate(*ca, client_spec);
    ASSERT_TRUE(ca.ok() && server.ok() && client.ok());
    ASSERT_TRUE(pki::write_file(file("ca.crt"), ca->cert_pem).ok());
    ASSERT_TRUE(pki::write_file(file("server.crt"), server->cert_pem).ok());
    ASSERT_TRUE(pki::write_file(file("server.key"), server->key_pem, 0600).ok());
    ASSERT_TRUE(pki::write_file(file("client.crt"), client->cert_pem).ok());
    ASSERT_TRUE(pki::write_file(file("client.key"), client->key_pem, 0600).ok());
    seen_ = new Seen;

    mcp::ServerOptions o;
    o.info = {"larder-db-test", "1.0", ""};
    o.instructions = "Read-only healthcare database.";
    mcp_ = new mcp::Server(o);
    json pg_schema = {
        {"type", "object"},
        {"properties", {{"sql", {{"type", "string"}}}, {"biscuit_token", {{"type", "string"}}}}},
        {"required", {"sql", "biscuit_token"}}};
    ASSERT_TRUE(
        mcp_->add_tool(
                mcp::Tool{"pg_query", "", "Run one read-only SELECT", pg_schema, std::nullopt, json(),
                          json()},
                [](mcp::RequestContext& ctx, const json& args) {
                  std::string arg = args.value("biscuit_token", "");
                  std::string auth = ctx.header("Authorization").value_or("");
                  seen_->add("pg_query",
                             "arg=" + arg + "|auth=" + auth + "|cn=" + (ctx.peer() ? ctx.peer()->cn : ""));
                  if (auth != "Bearer " + arg)
                    return mcp::ToolResult::error("biscuit: header and argument tokens differ");
                  json structured = {
                      {"columns",
                       {{{"name", "condition"}, {"type", "text"}}, {{"name", "patients"}, {"type", "int8"}}}},
                      {"rows", {{{"condition", "Diabetes"}, {"patients", 2}}}},
                      {"row_count", 1},
                      {"truncated", false}};
                  mcp::ToolResult r = mcp::ToolResult::text(structured.dump());
                  r.structured_content = structured;
                  r.meta = {{"larder/decision",
                             {{"lock", "biscuit"}, {"decision", "allow"}, {"reason", "read granted"}}}};
                  if (arg == kRoot) r.meta["larder/biscuit_token"] = kTainted;
                  return r;
                })
            .ok());
    json report_schema = {
        {"type", "object"}, {"properties", {{"to", {{"type", "string"}}}}}, {"required", {"to"}}};
    ASSERT_TRUE(
        mcp_->add_tool(
                mcp::Tool{"send_report", "", "Send a report off the machine", report_schema, std::nullopt,
                          json(), json()},
                [](mcp::RequestContext& ctx, const json&) {
                  std::string auth = ctx.header("Authorization").value_or("");
                  seen_->add("send_report", "auth=" + auth);
                  if (auth == "Bearer " + kTainted) {
                    mcp::ToolResult r =
                        mcp::ToolResult::error("taint: this lineage read sensitive data; egress refused");
                    r.meta = {{"larder/decision",
                               {{"lock", "taint"}, {"decision", "deny"}, {"reason", "tainted lineage"}}}};
                    return r;
                  }
                  return mcp::ToolResult::text("sent");
                })
            .ok());
    // A query that takes until the client cancels it (or 20 s): how Ctrl-C reaches a server.
    ASSERT_TRUE(mcp_->add_tool(mcp::Tool{"slow_query", "", "A query that takes a long time",
                                         json{{"type", "object"}}, std::nullopt, json(), json()},
                               [](mcp::RequestContext& ctx, const json&) {
                                 ++seen_->slow_started;
                                 test::wait_until([&] { return ctx.cancelled(); }, std::chrono::seconds(20));
                                 seen_->add("slow_query", ctx.cancelled() ? "cancelled" : "finished");
                                 return mcp::ToolResult::text("slow rows");
                               })
                    .ok());
    ASSERT_TRUE(
        mcp_->add_prompt(
                mcp::Prompt{"generate_sql", "", "SQL for a question", {{"question", "", "", true}}, json()},
                [](mcp::RequestContext&, const std::map<std::string, std::string>& args) -> Result<json> {
                  return json{{"messages",
                               {{{"role", "user"},
                                 {"content",
                                  {{"type", "text"},
                                   {"text", "Table admissions(\"Medical Condition\" text). Question: " +
                                                args.at("question")}}}}}}};
                })
            .ok());
    transport_ = new mcp::HttpTransport(*mcp_);
    net::ServerConfig c;
    c.tls.cert_file = file("server.crt");
    c.tls.key_file = file("server.key");
    c.tls.client_ca_file = file("ca.crt");
    auto s = net::Server::create(c, transport_->handler());
    ASSERT_TRUE(s.ok()) << s.error().message;
    net_ = s->release();
    ASSERT_TRUE(net_->start().ok());
  }

  static void TearDownTestSuite() {
    if (net_) net_->stop();
    delete net_;
    delete transport_;
    delete mcp_;
    delete seen_;
    fs::remove_all(*dir_);
    delete dir_;
  }

  void SetUp() override {
    std::lock_guard lock(seen_->mu);
    seen_->calls.clear();
    for (const char* v : {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "BISCUIT_TOKEN", "PG_MCP_URL",
                          "LARDER_PROVIDER", "LARDER_MODEL", "LARDER_BASE_URL"})
      unsetenv(v);
  }

  static std::string file(const std::string& n) { return *dir_ + "/" + n; }
  static std::string url() { return "https://127.0.0.1:" + std::to_string(net_->port()) + "/mcp"; }

  static McpConfig config(bool with_client_cert = true) {
    McpServerConfig s;
    s.name = "larder-db";
    s.url = url();
    TlsFiles tls;
    tls.ca = file("ca.crt");
    if (with_client_cert) {
      tls.cert = file("client.crt");
      tls.key = file("client.key");
    }
    s.tls = tls;
    return McpConfig{{s}};
  }

  static std::string* dir_;
  static Seen* seen_;
  static mcp::Server* mcp_;
  static mcp::HttpTransport* transport_;
  static net::Server* net_;
};

std::string* McpToolHostTest::dir_ = nullptr;
Seen* McpToolHostTest::seen_ = nullptr;
mcp::Server* McpToolHostTest::mcp_ = nullptr;
mcp::HttpTransport* McpToolHostTest::transport_ = nullptr;
net::Server* McpToolHostTest::net_ = nullptr;

TEST_F(McpToolHostTest, ListsToolsAndSchemaOverMtls) {
  auto host = McpToolHost::connect(config(), std::make_shared<TokenStore>(kRoot));
  ASSERT_TRUE(host.ok()) << host.error().message;
  auto tools = (*host)->list_tools();
  ASSERT_TRUE(tools.ok()) << tools.error().message;
  ASSERT_EQ(tools->size(), 3u);
  EXPECT_EQ((*tools)[0].server, "larder-db");
  EXPECT_TRUE(
      (*tools)[0].input_schema["properties"].contains("biscuit_token"));  // the agent strips it, not the host
  auto schema = (*host)->schema_context();
  ASSERT_TRUE(schema.ok()) << schema.error().message;
  EXPECT_NE(schema->find("Medical Condition"), std::string::npos) << *schema;
  EXPECT_NE(schema->find("Read-only healthcare database."), std::string::npos) << *schema;
}

TEST_F(McpToolHostTest, CallCarriesTokenInHeaderAndReconnectsOnSwitch) {
  auto tokens = std::make_shared<TokenStore>(kRoot);
  auto host = McpToolHost::connect(config(), tokens);
  ASSERT_TRUE(host.ok()) << host.error().message;
  auto r = (*host)->call_tool("larder-db", "pg_query", {{"sql", "SELECT 1"}, {"biscuit_token", kRoot}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->is_error);
  EXPECT_EQ(r->structured["row_count"], 1);
  EXPECT_EQ(r->meta["larder/biscuit_token"], kTainted);
  tokens->replace(kTainted);
  auto egress = (*host)->call_tool("larder-db", "send_report", {{"to", "x"}});
  ASSERT_TRUE(egress.ok()) << egress.error().message;
  EXPECT_TRUE(egress->is_error);
  EXPECT_EQ((*host)->reconnects(), 1);
  std::lock_guard lock(seen_->mu);
  ASSERT_EQ(seen_->calls.size(), 2u);
  EXPECT_EQ(seen_->calls[0].second, "arg=" + kRoot + "|auth=Bearer " + kRoot + "|cn=claude-client");
  EXPECT_EQ(seen_->calls[1].second, "auth=Bearer " + kTainted);
}

// Ctrl-C while a tool runs: the call returns at once, the server is sent
// notifications/cancelled for that request (its handler sees the cancellation), and the
// host goes on working.
TEST_F(McpToolHostTest, CancellingACallSendsNotificationsCancelled) {
  auto host = McpToolHost::connect(config(), std::make_shared<TokenStore>(kRoot));
  ASSERT_TRUE(host.ok()) << host.error().message;
  CancellationToken cancel;
  const int started_before = seen_->slow_started;
  std::thread ctrl_c([&] {
    // Ctrl-C once the server runs the call (it is in flight), not after a guessed delay.
    EXPECT_TRUE(
        test::wait_until([&] { return seen_->slow_started > started_before; }, std::chrono::seconds(10)))
        << "slow_query never started";
    cancel.cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  auto r = (*host)->call_tool_cancellable("larder-db", "slow_query", json::object(), cancel);
  const auto took = std::chrono::steady_clock::now() - start;
  ctrl_c.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "mcp.cancelled") << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_TRUE(test::wait_until(
      [&] {
        std::lock_guard lock(seen_->mu);
        for (const auto& [tool, what] : seen_->calls)
          if (tool == "slow_query" && what == "cancelled") return true;
        return false;
      },
      std::chrono::seconds(5)))
      << "the server's handler was not cancelled";
  auto after = (*host)->call_tool("larder-db", "pg_query", {{"sql", "SELECT 1"}, {"biscuit_token", kRoot}});
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_FALSE(after->is_error);
}

TEST_F(McpToolHostTest, WithoutClientCertificateTheConnectionFails) {
  auto host = McpToolHost::connect(config(false), std::make_shared<TokenStore>(kRoot));
  ASSERT_FALSE(host.ok());
  EXPECT_EQ(host.error().code, "mcp.connect");
  EXPECT_NE(host.error().message.find("larder-db"), std::string::npos) << host.error().message;
}

class AskEndToEnd : public McpToolHostTest {
 protected:
  void SetUp() override {
    McpToolHostTest::SetUp();
    work = *dir_ + "/ask-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(work);
    json cfg = {
        {"mcpServers",
         {{"larder-db",
           {{"url", url()},
            {"tls", {{"ca", file("ca.crt")}, {"cert", file("client.crt")}, {"key", file("client.key")}}}}}}}};
    std::ofstream(work + "/mcp.json") << cfg.dump(2);
    std::ofstream(work + "/.env") << "ANTHROPIC_API_KEY=" << kApiKey << "\nBISCUIT_TOKEN=" << kRoot << "\n";
    opts.config_path = work + "/mcp.json";
    opts.dotenv_path = work + "/.env";
    opts.history_path = work + "/history";
  }
  std::string work;
  AskOptions opts;
};

TEST_F(AskEndToEnd, TokenSwitchesAndNothingSecretReachesTheModel) {
  larder::testing::FakeLlmServer llm(larder::testing::FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(llm.start());
  std::string err;
  ASSERT_TRUE(llm.load_script(
      std::string(LARDER_SOURCE_DIR) + "/tests/fixtures/llm/anthropic_two_queries.json", &err))
      << err;
  llm.set_expected_api_key(kApiKey);
  opts.base_url = llm.base_url();
  opts.question = "names, count, then report";
  opts.verbose = true;
  opts.show_sql = true;
  std::istringstream in;
  std::ostringstream out, errs;
  int status = run_ask(opts, default_tool_host_factory(), in, out, errs);
  EXPECT_EQ(status, kExitToolError) << out.str() << errs.str();  // the last call (egress) was refused
  EXPECT_NE(out.str().find("lock taint: deny"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("Diabetes"), std::string::npos);
  EXPECT_TRUE(llm.violations().empty()) << llm.violations().front();
  {
    std::lock_guard lock(seen_->mu);
    ASSERT_EQ(seen_->calls.size(), 3u);
    EXPECT_NE(seen_->calls[0].second.find("arg=" + kRoot), std::string::npos);
    EXPECT_NE(seen_->calls[1].second.find("arg=" + kTainted + "|auth=Bearer " + kTainted), std::string::npos)
        << seen_->calls[1].second;
    EXPECT_EQ(seen_->calls[2].second, "auth=Bearer " + kTainted);
  }
  std::string key_pem;
  {
    std::ifstream k(file("client.key"));
    std::stringstream ss;
    ss << k.rdbuf();
    key_pem = ss.str();
  }
  std::string key_body = key_pem.substr(key_pem.find('\n') + 1, 40);
  for (const auto& r : llm.requests()) {
    EXPECT_EQ(r.body.find(kRoot), std::string::npos);
    EXPECT_EQ(r.body.find(kTainted), std::string::npos);
    EXPECT_EQ(r.body.find(key_body), std::string::npos);
    EXPECT_EQ(r.body.find("BEGIN"), std::string::npos);
    EXPECT_EQ(r.body.find(kApiKey), std::string::npos);
  }
}

TEST_F(AskEndToEnd, UntrustedServerExitsWith5) {
  // A CA that did not issue the server certificate: the TLS handshake must fail.
  auto other = pki::create_ca("Someone else");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(pki::write_file(work + "/other-ca.crt", other->cert_pem).ok());
  json cfg = {
      {"mcpServers",
       {{"larder-db",
         {{"url", url()},
          {"tls",
           {{"ca", work + "/other-ca.crt"}, {"cert", file("client.crt")}, {"key", file("client.key")}}}}}}}};
  std::ofstream(work + "/mcp.json") << cfg.dump(2);
  opts.question = "q";
  opts.base_url = "http://127.0.0.1:1";
  std::istringstream in;
  std::ostringstream out, errs;
  EXPECT_EQ(run_ask(opts, default_tool_host_factory(), in, out, errs), kExitMcp) << errs.str();
  EXPECT_NE(errs.str().find("larder-db"), std::string::npos) << errs.str();
}

}  // namespace
}  // namespace larder::agent
