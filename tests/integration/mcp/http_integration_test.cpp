// libmcp end to end over real sockets and real TLS.
#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "mcp/client.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "mcp/sse.h"
#include "net/client.h"
#include "net/pki.h"
#include "net/server.h"

namespace larder::mcp {
namespace {

namespace pki = larder::net::pki;
namespace fs = std::filesystem;

pki::CertSpec spec(pki::CertKind kind, std::string cn, std::vector<std::string> sans) {
  pki::CertSpec s;
  s.kind = kind;
  s.common_name = std::move(cn);
  s.sans = std::move(sans);
  return s;
}

struct Pki {
  std::string dir;
  std::string file(const std::string& n) const { return dir + "/" + n; }
};

Pki make_pki() {
  Pki p;
  p.dir = fs::temp_directory_path() / ("larder-mcp-it-" + random_id(6));
  fs::create_directories(p.dir);
  auto ca = pki::create_ca("IT CA");
  auto server = pki::issue_certificate(
      *ca, spec(pki::CertKind::kServer, "localhost", {"IP:127.0.0.1", "DNS:localhost"}));
  auto client = pki::issue_certificate(*ca, spec(pki::CertKind::kClient, "it-client", {}));
  auto rogue_ca = pki::create_ca("Other CA");
  auto rogue = pki::issue_certificate(*rogue_ca, spec(pki::CertKind::kClient, "it-client", {}));
  EXPECT_TRUE(ca.ok() && server.ok() && client.ok() && rogue_ca.ok() && rogue.ok());
  (void)pki::write_file(p.file("ca.crt"), ca->cert_pem);
  (void)pki::write_file(p.file("server.crt"), server->cert_pem);
  (void)pki::write_file(p.file("server.key"), server->key_pem, 0600);
  (void)pki::write_file(p.file("client.crt"), client->cert_pem);
  (void)pki::write_file(p.file("client.key"), client->key_pem, 0600);
  (void)pki::write_file(p.file("rogue.crt"), rogue->cert_pem);
  (void)pki::write_file(p.file("rogue.key"), rogue->key_pem, 0600);
  return p;
}

class McpHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(spdlog::level::warn);
    pki_ = new Pki(make_pki());
    ServerOptions o;
    o.info = {"it-server", "1.0", ""};
    server_ = new Server(o);
    (void)server_->add_tool(
        Tool{"whoami", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
        [](RequestContext& ctx, const json&) {
          ToolResult r = ToolResult::text(ctx.header("Authorization").value_or("none"));
          r.meta = {{"cn", ctx.peer() ? ctx.peer()->cn : ""}, {"transport", ctx.transport()}};
          return r;
        });
    (void)server_->add_tool(
        Tool{"sample", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
        [](RequestContext& ctx, const json&) {
          auto r =
              ctx.request_client("sampling/createMessage", {{"messages", json::array()}, {"maxTokens", 5}});
          return r ? ToolResult::text((*r)["content"]["text"]) : ToolResult::error(r.error().message);
        });
    (void)server_->add_tool(
        Tool{"interrupted", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
        [](RequestContext& ctx, const json&) {
          ctx.log(LogLevel::kInfo, "before");
          ctx.close_stream();
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
          ctx.log(LogLevel::kInfo, "after");
          return ToolResult::text("finished");
        });
    // Answers with structuredContent nested `depth` levels (the result sits 2 levels down);
    // `stream` sends a log first, so the answer travels as an SSE event.
    (void)server_->add_tool(Tool{"deep", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                            [](RequestContext& ctx, const json& args) {
                              if (args.value("stream", false)) ctx.log(LogLevel::kInfo, "streaming");
                              json v = 1;
                              for (int i = 0; i < args.value("depth", 1); ++i)
                                v = json::array({std::move(v)});
                              ToolResult r = ToolResult::text("deep");
                              r.structured_content = json{{"v", std::move(v)}};
                              return r;
                            });
    transport_ = new HttpTransport(*server_);
    net::ServerConfig c;
    c.tls.cert_file = pki_->file("server.crt");
    c.tls.key_file = pki_->file("server.key");
    c.tls.client_ca_file = pki_->file("ca.crt");
    c.limits.max_body_bytes = 64 * 1024;
    auto s = net::Server::create(c, transport_->handler());
    ASSERT_TRUE(s.ok()) << s.error().message;
    net_ = s->release();
    ASSERT_TRUE(net_->start().ok());
  }
  static void TearDownTestSuite() {
    net_->stop();
    delete net_;
    delete transport_;
    delete server_;
    fs::remove_all(pki_->dir);
    delete pki_;
  }

  static std::string base() { return "https://127.0.0.1:" + std::to_string(net_->port()); }
  static net::TlsClientConfig tls(const std::string& who = "client") {
    net::TlsClientConfig t;
    t.ca_file = pki_->file("ca.crt");
    if (!who.empty()) {
      t.cert_file = pki_->file(who + ".crt");
      t.key_file = pki_->file(who + ".key");
    }
    return t;
  }
  static std::unique_ptr<net::HttpClient> raw() {
    auto c = net::HttpClient::create(base(), tls());
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }
  static net::HeaderList post_headers(const std::string& session = "") {
    net::HeaderList h = {{"Content-Type", "application/json"},
                         {"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) h.emplace_back("Mcp-Session-Id", session);
    return h;
  }
  static std::string init_body() {
    return make_request(1, "initialize",
                        {{"protocolVersion", "2025-11-25"},
                         {"capabilities", json::object()},
                         {"clientInfo", {{"name", "raw"}, {"version", "1"}}}})
        .dump();
  }

  static Pki* pki_;
  static Server* server_;
  static HttpTransport* transport_;
  static net::Server* net_;
};
Pki* McpHttpTest::pki_ = nullptr;
Server* McpHttpTest::server_ = nullptr;
HttpTransport* McpHttpTest::transport_ = nullptr;
net::Server* McpHttpTest::net_ = nullptr;

TEST_F(McpHttpTest, ClientOverMutualTlsStreamableHttp) {
  ClientOptions o;
  o.capabilities = {{"sampling", json::object()}};
  o.on_request = [](const std::string& method, const json&) -> larder::Result<json> {
    EXPECT_EQ(method, "sampling/createMessage");
    return json{{"role", "assistant"}, {"model", "m"}, {"content", {{"type", "text"}, {"text", "sampled!"}}}};
  };
  auto c = Client::connect_http(base() + "/mcp", tls(), {{"Authorization", "Bearer abc"}}, o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->transport_name(), "streamable-http");
  EXPECT_EQ((*c)->protocol_version(), "2025-11-25");
  EXPECT_EQ((*c)->server_info()["name"], "it-server");
  auto tools = (*c)->list_tools();
  ASSERT_TRUE(tools.ok());
  EXPECT_EQ(tools->size(), 4u);
  auto who = (*c)->call_tool("whoami");
  ASSERT_TRUE(who.ok()) << who.error().message;
  EXPECT_EQ((*who)["content"][0]["text"], "Bearer abc");
  EXPECT_EQ((*who)["_meta"]["cn"], "it-client");
  auto s = (*c)->call_tool("sample");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["content"][0]["text"], "sampled!");
  auto missing = (*c)->call_tool("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "mcp.rpc.-32602");
  EXPECT_TRUE((*c)->ping().ok());
  const auto before = transport_->session_count();
  (*c)->close();
  EXPECT_EQ(transport_->session_count(), before - 1);  // DELETE ended the session
}

TEST_F(McpHttpTest, ClientFallsBackToLegacyHttpSse) {
  auto c = Client::connect_http(base() + "/sse", tls(), {}, {});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->transport_name(), "sse");
  EXPECT_EQ((*c)->protocol_version(), "2024-11-05");
  auto who = (*c)->call_tool("whoami");
  ASSERT_TRUE(who.ok()) << who.error().message;
  EXPECT_EQ((*who)["_meta"]["transport"], "sse");
}

TEST_F(McpHttpTest, HandshakeRefusesMissingOrForeignCertificates) {
  EXPECT_FALSE(Client::connect_http(base() + "/mcp", tls(""), {}, {}).ok());
  EXPECT_FALSE(Client::connect_http(base() + "/mcp", tls("rogue"), {}, {}).ok());
}

TEST_F(McpHttpTest, HostileInputGetsTheRightErrorAndTheServerKeepsServing) {
  auto h = raw();
  auto r = h->request("POST", "/mcp", post_headers(), "{not json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kParseError);
  r = h->request("POST", "/mcp", post_headers(), R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(r->status, 400);  // no session, not initialize
  r = h->request("POST", "/mcp", {{"Content-Type", "text/plain"}}, init_body());
  EXPECT_EQ(r->status, 415);
  r = h->request("POST", "/mcp", post_headers("0123456789abcdef0123456789abcdef"),
                 R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  EXPECT_EQ(r->status, 404);  // unknown session
  auto evil = post_headers();
  evil.emplace_back("Origin", "https://evil.example.com");
  r = h->request("POST", "/mcp", evil, init_body());
  EXPECT_EQ(r->status, 403);
  r = h->request("POST", "/mcp", post_headers(), std::string(100 * 1024, ' '));
  EXPECT_EQ(r->status, 413);

  h = raw();
  r = h->request("POST", "/mcp", post_headers(), init_body());
  ASSERT_EQ(r->status, 200);
  auto sid = r->header("Mcp-Session-Id");
  ASSERT_TRUE(sid);
  EXPECT_GE(sid->size(), 32u);  // 128 bits, hex
  r = h->request("POST", "/mcp", post_headers(*sid),
                 R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(r->status, 202);
  r = h->request("POST", "/mcp", post_headers(*sid), R"({"jsonrpc":"2.0","id":2,"method":"no/such"})");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kMethodNotFound);
  r = h->request("POST", "/mcp", post_headers(*sid), R"({"jsonrpc":"2.0","id":3,"method":17})");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kInvalidRequest);
  r = h->request("POST", "/mcp", post_headers(*sid),
                 R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":[]}})");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kInvalidParams);
  r = h->request("POST", "/mcp", post_headers(*sid), R"([{"jsonrpc":"2.0","id":5,"method":"ping"}])");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kInvalidRequest);  // no batches in 2025-11-25
  r = h->request("GET", "/mcp", {{"Mcp-Session-Id", *sid}}, "");
  EXPECT_EQ(r->status, 406);
  r = h->request("PUT", "/mcp", {}, "");
  EXPECT_EQ(r->status, 405);
  r = h->request("POST", "/mcp", post_headers(*sid), R"({"jsonrpc":"2.0","id":6,"method":"ping"})");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["result"], json::object());
  r = h->request("DELETE", "/mcp", {{"Mcp-Session-Id", *sid}}, "");
  EXPECT_EQ(r->status, 200);
  r = h->request("POST", "/mcp", post_headers(*sid), R"({"jsonrpc":"2.0","id":7,"method":"ping"})");
  EXPECT_EQ(r->status, 404);
}

// The client bounds what it parses too (base/json.h): a JSON answer nested deeper than its
// limit fails the call with a clear error, an SSE event is dropped (the call times out), and
// the client goes on working.
TEST_F(McpHttpTest, TheClientRefusesAnswersNestedTooDeep) {
  ClientOptions o;
  o.request_timeout = std::chrono::milliseconds(1500);
  auto c = Client::connect_http(base() + "/mcp", tls(), {}, o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  // message(1) → result(2) → structuredContent(3) → v: 61 arrays (levels 4..64).
  auto at = (*c)->call_tool("deep", {{"depth", 61}});
  ASSERT_TRUE(at.ok()) << at.error().message;
  auto over = (*c)->call_tool("deep", {{"depth", 62}});
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.error().message.find("the server answered with JSON nested deeper than 64 levels"),
            std::string::npos)
      << over.error().message;
  auto streamed = (*c)->call_tool("deep", {{"depth", 62}, {"stream", true}});
  ASSERT_FALSE(streamed.ok());
  EXPECT_EQ(streamed.error().code, "mcp.timeout") << streamed.error().message;
  EXPECT_TRUE((*c)->ping().ok());

  o.max_json_depth = 128;
  auto roomy = Client::connect_http(base() + "/mcp", tls(), {}, o);
  ASSERT_TRUE(roomy.ok()) << roomy.error().message;
  EXPECT_TRUE((*roomy)->call_tool("deep", {{"depth", 100}}).ok());
}

TEST_F(McpHttpTest, ResumesAnInterruptedStreamWithLastEventId) {
  auto h = raw();
  auto r = h->request("POST", "/mcp", post_headers(), init_body());
  auto sid = *r->header("Mcp-Session-Id");
  std::vector<SseEvent> events;
  SseParser parser([&](const SseEvent& e) { events.push_back(e); });
  auto status = h->request_stream(
      "POST", "/mcp", post_headers(sid),
      R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"interrupted"}})",
      [](const net::ClientResponse&) {}, [&](std::string_view c) { return parser.feed(c); },
      std::chrono::seconds(10));
  ASSERT_TRUE(status.ok());
  ASSERT_GE(events.size(), 2u);
  EXPECT_TRUE(events[0].data.empty());  // priming event: id and retry, no data
  EXPECT_GE(events[0].retry_ms, 0);
  EXPECT_EQ(json::parse(events[1].data)["params"]["data"], "before");
  std::string last = parser.last_event_id();
  ASSERT_FALSE(last.empty());
  std::vector<json> resumed;
  SseParser p2([&](const SseEvent& e) {
    if (!e.data.empty()) resumed.push_back(json::parse(e.data));
  });
  auto h2 = raw();
  auto st = h2->request_stream(
      "GET", "/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", sid}, {"Last-Event-ID", last}}, "",
      [](const net::ClientResponse& head) { EXPECT_EQ(head.status, 200); },
      [&](std::string_view c) { return p2.feed(c); }, std::chrono::seconds(10));
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_EQ(resumed[0]["params"]["data"], "after");
  EXPECT_EQ(resumed[1]["id"], 9);
  EXPECT_EQ(resumed[1]["result"]["content"][0]["text"], "finished");
}

TEST_F(McpHttpTest, StatelessRevisionValidatesHeadersAgainstTheBody) {
  auto h = raw();
  json meta = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientCapabilities", json::object()}};
  std::string body = make_request(1, "tools/call", {{"name", "whoami"}, {"_meta", meta}}).dump();
  net::HeaderList hdr = post_headers();
  hdr.emplace_back("MCP-Protocol-Version", "2026-07-28");
  hdr.emplace_back("Mcp-Method", "tools/call");
  auto ok_headers = hdr;
  ok_headers.emplace_back("Mcp-Name", "whoami");
  auto r = h->request("POST", "/mcp", ok_headers, body);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["result"]["resultType"], "complete");
  EXPECT_FALSE(r->header("Mcp-Session-Id"));  // no sessions in the stateless revision
  auto b64 = hdr;
  b64.emplace_back("Mcp-Name", "=?base64?d2hvYW1p?=");
  EXPECT_EQ(h->request("POST", "/mcp", b64, body)->status, 200);
  auto wrong = hdr;
  wrong.emplace_back("Mcp-Name", "other");
  r = h->request("POST", "/mcp", wrong, body);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], error_code::kHeaderMismatch);
  EXPECT_EQ(h->request("POST", "/mcp", hdr, body)->status, 400);  // Mcp-Name missing
}

// Idle sessions expire; a session has a bounded number of open SSE streams.
TEST(McpHttpLimits, IdleSessionsExpireAndStreamsAreBounded) {
  Server server;
  HttpTransportOptions options;
  options.session_idle_timeout = std::chrono::milliseconds(300);
  options.max_streams_per_session = 1;
  HttpTransport transport(server, options);
  net::ServerConfig c;
  c.plain_http = true;
  auto s = net::Server::create(c, transport.handler());
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE((*s)->start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string((*s)->port());
  net::TlsClientConfig plain;
  plain.insecure_plain = true;
  auto h = net::HttpClient::create(base, plain);
  ASSERT_TRUE(h.ok());
  net::HeaderList hdr = {{"Content-Type", "application/json"},
                         {"Accept", "application/json, text/event-stream"}};
  std::string init = make_request(1, "initialize",
                                  {{"protocolVersion", "2025-06-18"},
                                   {"capabilities", json::object()},
                                   {"clientInfo", {{"name", "x"}, {"version", "1"}}}})
                         .dump();
  auto r = (*h)->request("POST", "/mcp", hdr, init);
  ASSERT_EQ(r->status, 200);
  const std::string sid = *r->header("Mcp-Session-Id");
  EXPECT_EQ(transport.session_count(), 1u);

  // One standalone GET stream is allowed, a second one concurrently is refused.
  std::atomic<int> first_status{0};
  std::thread holder([&] {
    auto g = net::HttpClient::create(base, plain);
    (void)(*g)->request_stream(
        "GET", "/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", sid}}, "",
        [&](const net::ClientResponse& head) { first_status = head.status; },
        [](std::string_view) { return true; }, std::chrono::milliseconds(600));
  });
  for (int i = 0; i < 200 && first_status == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(first_status, 200);
  auto second = (*h)->request("GET", "/mcp", {{"Accept", "text/event-stream"}, {"Mcp-Session-Id", sid}}, "");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->status == 429 || second->status == 409) << second->status;
  holder.join();

  // Nothing open, nothing sent: the session expires.
  for (int i = 0; i < 100 && transport.session_count() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(transport.session_count(), 0u);
  r = (*h)->request(
      "POST", "/mcp",
      [&] {
        auto x = hdr;
        x.emplace_back("Mcp-Session-Id", sid);
        return x;
      }(),
      R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_EQ(r->status, 404);
  (*s)->stop();
}

TEST(McpStdio, ClientSpawnsAStdioServer) {
  ClientOptions o;
  o.capabilities = {{"sampling", json::object()}};
  o.on_request = [](const std::string&, const json& params) -> larder::Result<json> {
    return json{
        {"role", "assistant"},
        {"model", "m"},
        {"content",
         {{"type", "text"}, {"text", "re:" + params["messages"][0]["content"]["text"].get<std::string>()}}}};
  };
  auto c = Client::connect_stdio({MCP_FIXTURE_SERVER, "--stdio"}, o);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->transport_name(), "stdio");
  auto tools = (*c)->list_tools();
  ASSERT_TRUE(tools.ok());
  EXPECT_GE(tools->size(), 10u);
  auto t = (*c)->call_tool("test_simple_text");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)["content"][0]["text"], "This is a simple text response for testing.");
  auto s = (*c)->call_tool("test_sampling", {{"prompt", "hi"}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)["content"][0]["text"], "LLM response: re:hi");
  auto res = (*c)->read_resource("test://template/7/data");
  ASSERT_TRUE(res.ok());
  EXPECT_NE((*res)["contents"][0]["text"].get<std::string>().find("\"7\""), std::string::npos);
  (*c)->close();
}

// Our client against the official TypeScript SDK server (bench/mcp_ts_server.mjs) over mTLS.
TEST(McpTypeScriptPeer, ClientAgainstTheTypeScriptSdkServer) {
  if (access(MCP_NODE22, X_OK) != 0) GTEST_SKIP() << "Node 22 not installed at " << MCP_NODE22;
  Pki p = make_pki();
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    std::string modules = std::string(LARDER_SOURCE_DIR) + "/tests/interop/node_modules";
    std::string script = std::string(LARDER_SOURCE_DIR) + "/bench/mcp_ts_server.mjs";
    execl(MCP_NODE22, MCP_NODE22, script.c_str(), "--ca", p.file("ca.crt").c_str(), "--cert",
          p.file("server.crt").c_str(), "--key", p.file("server.key").c_str(), "--modules", modules.c_str(),
          (char*)nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ASSERT_EQ(line.rfind("READY ", 0), 0u) << line;
  const std::string url = "https://127.0.0.1:" + line.substr(6) + "/mcp";
  net::TlsClientConfig t;
  t.ca_file = p.file("ca.crt");
  t.cert_file = p.file("client.crt");
  t.key_file = p.file("client.key");
  {
    auto c = Client::connect_http(url, t, {}, {});
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ((*c)->server_info()["name"], "ts-reference");
    auto tools = (*c)->list_tools();
    ASSERT_TRUE(tools.ok());
    EXPECT_EQ(tools->size(), 3u);
    auto e = (*c)->call_tool("echo", {{"text", "from c++"}});
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ((*e)["content"][0]["text"], "from c++");
    auto a = (*c)->call_tool("add", {{"a", 20}, {"b", 22}});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ((*a)["structuredContent"]["sum"], 42);
    (*c)->close();
  }
  EXPECT_FALSE(
      Client::connect_http(url, net::TlsClientConfig{p.file("ca.crt"), "", "", "", false}, {}, {}).ok());
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  close(out[0]);
  fs::remove_all(p.dir);
}

}  // namespace
}  // namespace larder::mcp
