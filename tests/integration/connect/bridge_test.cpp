// connect::Bridge (what `larder connect` runs) over real mTLS against two real libmcp servers
// shaped like Larder's: pg_query takes biscuit_token and hands back an attenuated token after
// a "sensitive read", an egress tool refuses the tainted lineage, both servers offer a tool, a
// resource and a prompt of the same name. The host side is a pair of pipes: the test writes
// what an MCP host (or a hostile one) would, and keeps every byte the bridge writes, which
// must never contain a token or PEM material.
#include "connect/bridge.h"
#include "connect/host_config.h"
#include "host_pipe.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "net/pki.h"
#include "net/server.h"
#include "support/tls_test_pki.h"
#include "support/wait.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace larder::connect {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using test_host::HostPipe;
using test_host::pem_body_lines;
using test_host::text;

const std::string kRoot = "RootBiscuitTokenForBridgeTest-0123456789abcdef";
const std::string kTainted = "TaintedBiscuitTokenForBridgeTest-9876543210fedcba";

// One upstream: an mcp::Server behind HTTPS with client certificates, restartable on its port.
struct Upstream {
  std::string name;
  std::unique_ptr<mcp::Server> mcp;
  std::unique_ptr<mcp::HttpTransport> transport;
  std::unique_ptr<net::Server> net;
  uint16_t port = 0;
  std::mutex mu;
  std::vector<std::string> seen;  // "<tool> auth=<bearer>|arg=<biscuit_token>"
  std::atomic<bool> cancelled_seen{false};

  void record(const std::string& s) {
    std::lock_guard lock(mu);
    seen.push_back(s);
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mu);
    return seen;
  }
};

class BridgeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    spdlog::set_level(getenv("BRIDGE_DEBUG") ? spdlog::level::debug : spdlog::level::warn);
    dir_ = new fs::path(fs::temp_directory_path() / ("larder-connect-it-" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    // Our CA, a server certificate for 127.0.0.1, and claude-client, under the names below.
    pki_ = new larder::testing::TlsTestPki("Connect IT CA");
    const auto client = pki_->client("claude-client");
    const std::pair<std::string, const char*> files[] = {{pki_->ca_cert(), "ca.crt"},
                                                         {pki_->server().cert, "server.crt"},
                                                         {pki_->server().key, "server.key"},
                                                         {client.cert, "client.crt"},
                                                         {client.key, "client.key"}};
    for (const auto& [from, to] : files) fs::copy_file(from, file(to), fs::copy_options::overwrite_existing);
    a_ = new Upstream;
    a_->name = "db";
    b_ = new Upstream;
    b_->name = "egress";
    start(*a_);
    start(*b_);
  }

  static void TearDownTestSuite() {
    for (Upstream* u : {a_, b_}) {
      if (u->net) u->net->stop();
      delete u;
    }
    fs::remove_all(*dir_);
    delete dir_;
    delete pki_;
  }

  static std::string file(const std::string& n) { return (*dir_ / n).string(); }

  // (Re)starts an upstream on its port (a fresh mcp::Server: every session is forgotten).
  static void start(Upstream& u) {
    if (u.net) u.net->stop();
    u.net.reset();
    u.transport.reset();
    mcp::ServerOptions o;
    o.info = {"upstream-" + u.name, "1.0", ""};
    u.mcp = std::make_unique<mcp::Server>(o);
    Upstream* up = &u;
    json pg_schema = {
        {"type", "object"},
        {"properties", {{"sql", {{"type", "string"}}}, {"biscuit_token", {{"type", "string"}}}}},
        {"required", {"sql", "biscuit_token"}}};
    ASSERT_TRUE(
        u.mcp
            ->add_tool(mcp::Tool{"pg_query", "", "Run one read-only SELECT", pg_schema, std::nullopt, json(),
                                 json()},
                       [up](mcp::RequestContext& ctx, const json& args) {
                         const std::string arg = args.value("biscuit_token", "");
                         const std::string auth = ctx.header("Authorization").value_or("");
                         up->record("pg_query auth=" + auth + "|arg=" + arg +
                                    "|cn=" + (ctx.peer() ? ctx.peer()->cn : ""));
                         mcp::ToolResult r = mcp::ToolResult::text("rows for " + args.value("sql", ""));
                         r.structured_content = json{{"rows", json::array({{{"n", 1}}})}};
                         r.meta = {{"larder/decision", {{"decision", "allow"}, {"lock", "policy"}}},
                                   {"ifc", {{"integrity", "untrusted"}, {"confidentiality", "private"}}}};
                         // A sensitive read: the lineage is tainted from here on.
                         if (arg == kRoot) r.meta["larder/biscuit_token"] = kTainted;
                         return r;
                       })
            .ok());
    ASSERT_TRUE(
        u.mcp
            ->add_tool(
                mcp::Tool{"send_report", "", "Send data off the machine",
                          json{{"type", "object"}, {"properties", {{"text", {{"type", "string"}}}}}},
                          std::nullopt, json(), json()},
                [up](mcp::RequestContext& ctx, const json&) {
                  const std::string auth = ctx.header("Authorization").value_or("");
                  up->record("send_report auth=" + auth);
                  if (auth != "Bearer " + kRoot) {
                    mcp::ToolResult r = mcp::ToolResult::error("refused by lock taint: tainted lineage");
                    r.meta = {{"larder/decision",
                               {{"decision", "deny"}, {"lock", "taint"}, {"reason", "tainted lineage"}}}};
                    return r;
                  }
                  return mcp::ToolResult::text("sent");
                })
            .ok());
    // A careless (or hostile) upstream that echoes the credentials it was sent.
    ASSERT_TRUE(
        u.mcp
            ->add_tool(mcp::Tool{"leak_" + u.name, "", "Echoes the Authorization header and the client key",
                                 json{{"type", "object"}}, std::nullopt, json(), json()},
                       [](mcp::RequestContext& ctx, const json&) {
                         std::ifstream key(file("client.key"));
                         std::string pem((std::istreambuf_iterator<char>(key)), {});
                         // ... and, glued into one run of base64 characters, a key line
                         // and then the token: each must be found inside the run.
                         const std::string auth = ctx.header("Authorization").value_or("");
                         const auto lines = test_host::pem_body_lines(file("client.key"));
                         mcp::ToolResult r =
                             mcp::ToolResult::text("auth=" + auth + " key=" + pem +
                                                   " glued=" + (lines.empty() ? "" : lines.front()) +
                                                   auth.substr(std::min<std::size_t>(auth.size(), 7)));
                         r.meta = {{"note", ctx.header("Authorization").value_or("")}};
                         return r;
                       })
            .ok());
    // The same name on both upstreams: the bridge namespaces it.
    ASSERT_TRUE(
        u.mcp
            ->add_tool(mcp::Tool{"whoami", "", "Which upstream answers", json{{"type", "object"}},
                                 std::nullopt, json(), json()},
                       [up](mcp::RequestContext&, const json&) { return mcp::ToolResult::text(up->name); })
            .ok());
    ASSERT_TRUE(u.mcp
                    ->add_tool(mcp::Tool{"slow_" + u.name, "", "Reports progress and logs, then waits",
                                         json{{"type", "object"}}, std::nullopt, json(), json()},
                               [up](mcp::RequestContext& ctx, const json&) {
                                 ctx.progress(1, 2, "half way");
                                 ctx.log(mcp::LogLevel::kWarning, json("careful"), "planner");
                                 test::wait_until([&] { return ctx.cancelled(); }, 10s, 5ms);
                                 if (ctx.cancelled()) up->cancelled_seen = true;
                                 return mcp::ToolResult::text("done");
                               })
                    .ok());
    ASSERT_TRUE(
        u.mcp
            ->add_resource(
                mcp::Resource{"mem://readme", "readme", "", "", "text/plain", std::nullopt, json(), json()},
                [up](mcp::RequestContext& ctx, const std::string& uri) -> mcp::HandlerResult {
                  if (!ctx.header("Authorization"))
                    return mcp::RpcError{
                        mcp::error_code::kRefused, "refused by lock biscuit",
                        json{{"decision", "deny"}, {"lock", "biscuit"}, {"reason", "no token"}}};
                  if (up->name == "egress")
                    return mcp::RpcError{
                        mcp::error_code::kRefused, "refused by lock taint",
                        json{{"decision", "deny"}, {"lock", "taint"}, {"reason", "tainted lineage"}}};
                  return json::array({{{"uri", uri}, {"text", "hello from " + up->name}}});
                })
            .ok());
    ASSERT_TRUE(
        u.mcp
            ->add_prompt(mcp::Prompt{"greet", "", "Greets", {{"name", "", "", true}}, json()},
                         [up](mcp::RequestContext&,
                              const std::map<std::string, std::string>& args) -> mcp::HandlerResult {
                           return json{
                               {"messages",
                                {{{"role", "user"},
                                  {"content",
                                   {{"type", "text"}, {"text", up->name + " greets " + args.at("name")}}}}}}};
                         })
            .ok());
    u.transport = std::make_unique<mcp::HttpTransport>(*u.mcp);
    net::ServerConfig c;
    c.port = u.port;
    c.tls.cert_file = file("server.crt");
    c.tls.key_file = file("server.key");
    c.tls.client_ca_file = file("ca.crt");
    auto s = net::Server::create(c, u.transport->handler());
    ASSERT_TRUE(s.ok()) << s.error().message;
    u.net = std::move(*s);
    ASSERT_TRUE(u.net->start().ok());
    u.port = u.net->port();
  }

  static agent::McpServerConfig server_config(const Upstream& u) {
    agent::McpServerConfig s;
    s.name = u.name;
    s.url = "https://127.0.0.1:" + std::to_string(u.port) + "/mcp";
    s.tls = agent::TlsFiles{file("ca.crt"), file("client.crt"), file("client.key"), ""};
    return s;
  }

  static BridgeOptions options(const std::string& state) {
    BridgeOptions o;
    o.config.servers = {server_config(*a_), server_config(*b_)};
    o.token = kRoot;
    o.token_state = state;
    o.backoff = 20ms;
    o.max_backoff = 200ms;
    return o;
  }

  static fs::path* dir_;
  static larder::testing::TlsTestPki* pki_;
  static Upstream* a_;
  static Upstream* b_;
};

fs::path* BridgeTest::dir_ = nullptr;
larder::testing::TlsTestPki* BridgeTest::pki_ = nullptr;
Upstream* BridgeTest::a_ = nullptr;
Upstream* BridgeTest::b_ = nullptr;

// Nothing the bridge holds may reach the host.
void expect_no_secret(const std::string& bytes, const std::string& dir) {
  EXPECT_EQ(bytes.find(kRoot), std::string::npos);
  EXPECT_EQ(bytes.find(kTainted), std::string::npos);
  EXPECT_EQ(bytes.find("larder/biscuit_token"), std::string::npos);
  EXPECT_EQ(bytes.find("-----BEGIN"), std::string::npos);
  for (const auto& f : {"client.key", "client.crt"})
    for (const auto& line : pem_body_lines(dir + "/" + f))
      EXPECT_EQ(bytes.find(line), std::string::npos) << f;
}

TEST_F(BridgeTest, OneServerFromBothUpstreamsWithCollidingNamesNamespacedAndNoTokenArgument) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok()) << bridge.error().message;
  HostPipe host(**bridge);
  host.initialize();
  json tools = host.request(1, "tools/list")["result"]["tools"];
  std::set<std::string> names;
  for (const auto& t : tools) {
    names.insert(t["name"].get<std::string>());
    EXPECT_EQ(t["inputSchema"].dump().find("biscuit_token"), std::string::npos) << t.dump();
  }
  EXPECT_EQ(names, (std::set<std::string>{"db__pg_query", "egress__pg_query", "db__send_report",
                                          "egress__send_report", "db__whoami", "egress__whoami", "slow_db",
                                          "slow_egress", "leak_db", "leak_egress"}));
  EXPECT_EQ(text(host.request(2, "tools/call",
                              {{"name", "egress__whoami"}, {"arguments", json::object()}})["result"]),
            "egress");
  json resources = host.request(3, "resources/list")["result"]["resources"];
  std::set<std::string> uris;
  for (const auto& r : resources) uris.insert(r["uri"].get<std::string>());
  EXPECT_EQ(uris, (std::set<std::string>{"db+mem://readme", "egress+mem://readme"}));
  json read = host.request(4, "resources/read", {{"uri", "db+mem://readme"}});
  EXPECT_EQ(read["result"]["contents"][0]["text"], "hello from db") << read.dump();
  json prompt = host.request(5, "prompts/get", {{"name", "egress__greet"}, {"arguments", {{"name", "Ada"}}}});
  EXPECT_EQ(prompt["result"]["messages"][0]["content"]["text"], "egress greets Ada") << prompt.dump();
  // Pagination: the host pages through what the bridge serves.
  host.close();
  EXPECT_TRUE(host.wait_eof(15s)) << "the bridge ends when the host closes its input";
  EXPECT_FALSE(host.not_json());
  expect_no_secret(host.bytes(), dir_->string());
}

TEST_F(BridgeTest, EveryProtocolRevisionAHostAsksForIsServed) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  for (const std::string version : {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}) {
    HostPipe host(**bridge);
    json r = host.request(0, "initialize",
                          {{"protocolVersion", version},
                           {"capabilities", json::object()},
                           {"clientInfo", {{"name", "old-host"}, {"version", "1"}}}});
    ASSERT_TRUE(r.contains("result")) << version << ": " << r.dump();
    EXPECT_EQ(r["result"]["protocolVersion"], version);
    host.send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
    EXPECT_EQ(text(host.request(1, "tools/call",
                                {{"name", "db__whoami"}, {"arguments", json::object()}})["result"]),
              "db")
        << version;
  }
}

TEST_F(BridgeTest, ListsArePagedForTheHost) {
  auto o = options("");
  o.page_size = 3;
  auto bridge = Bridge::start(o);
  ASSERT_TRUE(bridge.ok()) << bridge.error().message;
  HostPipe host(**bridge);
  host.initialize();
  std::set<std::string> names;
  json cursor;
  int pages = 0;
  do {
    json params = json::object();
    if (!cursor.is_null()) params["cursor"] = cursor;
    json r = host.request(100 + pages, "tools/list", params)["result"];
    EXPECT_LE(r["tools"].size(), 3u);
    for (const auto& t : r["tools"]) names.insert(t["name"].get<std::string>());
    cursor = r.contains("nextCursor") ? r["nextCursor"] : json();
    ++pages;
  } while (!cursor.is_null() && pages < 10);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(names.size(), 10u);
}

TEST_F(BridgeTest, TheTokenTravelsInHeaderAndArgumentAndTheHostCannotChooseIt) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok()) << bridge.error().message;
  HostPipe host(**bridge);
  host.initialize();
  a_->seen.clear();
  // A hostile host (or a prompt-injected model) supplies its own token: ignored.
  json r = host.request(
      1, "tools/call",
      {{"name", "db__pg_query"}, {"arguments", {{"sql", "SELECT 1"}, {"biscuit_token", "forged-token"}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  auto calls = a_->calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back(), "pg_query auth=Bearer " + kRoot + "|arg=" + kRoot + "|cn=claude-client");
  expect_no_secret(host.bytes(), dir_->string());
}

TEST_F(BridgeTest, AnUpstreamEchoingTheTokenOrTheKeyReachesTheHostWithThemWithheld) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  json r = host.request(1, "tools/call", {{"name", "leak_db"}, {"arguments", json::object()}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  const std::string t = text(r["result"]);
  EXPECT_NE(t.find("auth=Bearer [withheld by larder connect]"), std::string::npos) << t.substr(0, 200);
  EXPECT_EQ(r["result"]["_meta"]["note"], "Bearer [withheld by larder connect]");
  EXPECT_NE(t.find("key=-----BEGIN"), std::string::npos) << "the PEM armour is not a secret, its body is";
  expect_no_secret(host.bytes().substr(0, host.bytes().find("key=-----BEGIN")), dir_->string());
  for (const auto& line : pem_body_lines(file("client.key")))
    EXPECT_EQ(host.bytes().find(line), std::string::npos);
  EXPECT_EQ(host.bytes().find(kRoot), std::string::npos);
}

TEST_F(BridgeTest, OneLineageAcrossUpstreamsKeptAcrossRestarts) {
  const std::string state = (*dir_ / "state" / "lineage.token").string();
  {
    auto bridge = Bridge::start(options(state));
    ASSERT_TRUE(bridge.ok()) << bridge.error().message;
    HostPipe host(**bridge);
    host.initialize();
    json before =
        host.request(1, "tools/call", {{"name", "egress__send_report"}, {"arguments", {{"text", "x"}}}});
    EXPECT_FALSE(before["result"].value("isError", false)) << "a clean lineage may send";
    // The sensitive read on one upstream hands back the attenuated token...
    json read =
        host.request(2, "tools/call", {{"name", "db__pg_query"}, {"arguments", {{"sql", "SELECT *"}}}});
    ASSERT_TRUE(read.contains("result"));
    EXPECT_FALSE(read["result"]["_meta"].contains("larder/biscuit_token")) << "the host never sees it";
    EXPECT_EQ(read["result"]["_meta"]["ifc"]["confidentiality"], "private") << "the labels reach the host";
    EXPECT_EQ((*bridge)->current_token(), kTainted);
    // ...and every later call to every upstream carries it.
    b_->seen.clear();
    json after =
        host.request(3, "tools/call", {{"name", "egress__send_report"}, {"arguments", {{"text", "x"}}}});
    EXPECT_TRUE(after["result"].value("isError", false));
    EXPECT_EQ(text(after["result"]), "Larder refused this call: the taint lock said: tainted lineage.");
    EXPECT_EQ(after["result"]["_meta"]["larder/decision"]["lock"], "taint");
    ASSERT_FALSE(b_->calls().empty());
    EXPECT_EQ(b_->calls().back(), "send_report auth=Bearer " + kTainted);
    host.close();
    expect_no_secret(host.bytes(), dir_->string());
  }
  struct stat st {};
  ASSERT_EQ(::stat(state.c_str(), &st), 0) << "the current token is kept on disk";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The host restarts the bridge with the same (pre-taint) token: the kept one is used.
  auto again = Bridge::start(options(state));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->current_token(), kTainted);
  HostPipe host(**again);
  host.initialize();
  json r = host.request(1, "tools/call", {{"name", "egress__send_report"}, {"arguments", {{"text", "x"}}}});
  EXPECT_TRUE(r["result"].value("isError", false)) << r.dump();
}

TEST_F(BridgeTest, RefusedReadsAndPromptsReachTheHostAsRefusalsWithTheDecision) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  json r = host.request(1, "resources/read", {{"uri", "egress+mem://readme"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], mcp::error_code::kRefused);
  EXPECT_EQ(r["error"]["message"], "Larder refused this request: the taint lock said: tainted lineage.");
  EXPECT_EQ(r["error"]["data"]["lock"], "taint");
  json missing = host.request(2, "resources/read", {{"uri", "nowhere+mem://readme"}});
  EXPECT_TRUE(missing.contains("error"));
}

TEST_F(BridgeTest, ProgressLoggingAndCancellationPassThrough) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  a_->cancelled_seen = false;
  host.send(
      {{"jsonrpc", "2.0"},
       {"id", 7},
       {"method", "tools/call"},
       {"params",
        {{"name", "slow_db"}, {"arguments", json::object()}, {"_meta", {{"progressToken", "host-p1"}}}}}});
  json progress =
      host.wait_for([](const json& m) { return m.value("method", "") == "notifications/progress"; });
  ASSERT_FALSE(progress.is_null()) << "progress reaches the host";
  EXPECT_EQ(progress["params"]["progressToken"], "host-p1") << "with the host's own token";
  EXPECT_EQ(progress["params"]["message"], "half way");
  json log = host.wait_for([](const json& m) { return m.value("method", "") == "notifications/message"; });
  ASSERT_FALSE(log.is_null()) << "log messages reach the host";
  EXPECT_EQ(log["params"]["logger"], "db/planner");
  host.send({{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 7}}}});
  EXPECT_TRUE(test::wait_until([&] { return a_->cancelled_seen.load(); }, 10s))
      << "the host's cancel reaches the upstream handler";
  // The bridge is still serving.
  EXPECT_EQ(
      text(host.request(8, "tools/call", {{"name", "db__whoami"}, {"arguments", json::object()}})["result"]),
      "db");
}

TEST_F(BridgeTest, AnUpstreamToolAddedLaterReachesTheHostWithListChanged) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  host.request(1, "tools/list");
  ASSERT_TRUE(b_->mcp
                  ->add_tool(mcp::Tool{"late_tool", "", "Added while the host is connected",
                                       json{{"type", "object"}}, std::nullopt, json(), json()},
                             [](mcp::RequestContext&, const json&) { return mcp::ToolResult::text("late"); })
                  .ok());
  json changed = host.wait_for(
      [](const json& m) { return m.value("method", "") == "notifications/tools/list_changed"; });
  ASSERT_FALSE(changed.is_null()) << "list_changed reaches the host";
  int id = 100;
  EXPECT_TRUE(test::wait_until(
      [&] {
        const json tools = host.request(id++, "tools/list")["result"]["tools"];
        for (const auto& t : tools)
          if (t["name"] == "late_tool") return true;
        return false;
      },
      10s, 20ms))
      << "late_tool never listed";
  EXPECT_EQ(
      text(host.request(2, "tools/call", {{"name", "late_tool"}, {"arguments", json::object()}})["result"]),
      "late");
  b_->mcp->remove_tool("late_tool");
}

TEST_F(BridgeTest, AnUpstreamRestartedMidSessionAnswersTheNextCallWithTheSameLineage) {
  auto bridge = Bridge::start(options(""));
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  ASSERT_TRUE(host.request(1, "tools/call", {{"name", "db__pg_query"}, {"arguments", {{"sql", "SELECT 1"}}}})
                  .contains("result"));
  EXPECT_EQ((*bridge)->current_token(), kTainted);
  start(*a_);  // same port, every session forgotten
  a_->seen.clear();
  json r = host.request(2, "tools/call", {{"name", "db__pg_query"}, {"arguments", {{"sql", "SELECT 2"}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_FALSE(r["result"].value("isError", false)) << r.dump();
  ASSERT_FALSE(a_->calls().empty());
  EXPECT_EQ(a_->calls().back(),
            "pg_query auth=Bearer " + kTainted + "|arg=" + kTainted + "|cn=claude-client");
  EXPECT_GE((*bridge)->reconnects(), 1);
}

TEST_F(BridgeTest, AnUpstreamThatIsDownGivesAClearErrorNotAHang) {
  auto o = options("");
  o.config.servers[1].url = "https://127.0.0.1:1/mcp";
  o.reconnect_attempts = 2;
  auto bridge = Bridge::start(o);
  ASSERT_FALSE(bridge.ok());
  EXPECT_NE(bridge.error().message.find("egress"), std::string::npos) << bridge.error().message;
}

TEST_F(BridgeTest, HostileInputGetsJsonRpcErrorsAndBoundedWork) {
  auto o = options("");
  o.max_in_flight = 4;
  o.max_message = 64 * 1024;
  auto bridge = Bridge::start(o);
  ASSERT_TRUE(bridge.ok());
  HostPipe host(**bridge);
  host.initialize();
  host.write("this is not json\n");
  host.write("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"\n");  // truncated
  host.write(std::string(100 * 1024, 'x') + "\n");                          // oversized
  host.write(std::string(5000, '[') + "\n");                                // too deep
  host.write(
      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/"
      "call\",\"params\":{\"name\":\"db__pg_query\",\"arguments\":{\"sql\":7}}}\n");
  json bad = host.wait_response(2);
  EXPECT_TRUE(bad.contains("error") || bad["result"].value("isError", false)) << bad.dump();
  EXPECT_GE(host.count([](const json& m) { return m.contains("error") && m["id"].is_null(); }), 4u)
      << "garbage, truncated, oversized and deep messages each get an error";
  // A flood of slow calls: at most max_in_flight run; the rest are answered busy at once.
  const int kFlood = 200;
  std::string flood;
  for (int i = 0; i < kFlood; ++i)
    flood += json{{"jsonrpc", "2.0"},
                  {"id", 1000 + i},
                  {"method", "tools/call"},
                  {"params", {{"name", "db__whoami"}, {"arguments", json::object()}}}}
                 .dump() +
             "\n";
  host.write(flood);
  for (int i = 0; i < kFlood; ++i)
    ASSERT_FALSE(host.wait_response(1000 + i, 30s).is_null()) << "request " << i;
  const auto busy = host.count(
      [](const json& m) { return m.contains("error") && m["error"]["code"] == mcp::error_code::kBusy; });
  const auto answered = host.count([](const json& m) {
    return m.contains("result") && m["id"].is_number() && m["id"].get<int>() >= 1000;
  });
  EXPECT_EQ(busy + answered, static_cast<std::size_t>(kFlood));
  // Still alive and serving.
  EXPECT_EQ(
      text(host.request(5, "tools/call", {{"name", "db__whoami"}, {"arguments", json::object()}})["result"]),
      "db");
  host.close();
  EXPECT_TRUE(host.wait_eof(15s));
  EXPECT_FALSE(host.not_json()) << "only JSON-RPC is written";
  expect_no_secret(host.bytes(), dir_->string());
}

TEST(HostConfig, SnippetsForEveryHostNameTheBridgeWithAbsolutePathsAndNoToken) {
  auto command = connect_command("/opt/larder/bin/larder", "/etc/larder/mcp.json", "/home/me/token file.b64");
  EXPECT_EQ(command.args, (std::vector<std::string>{"connect", "--config", "/etc/larder/mcp.json", "--token",
                                                    "@/home/me/token file.b64"}));
  json desktop = json::parse(host_snippet(connect::Host::kClaudeDesktop, command));
  EXPECT_EQ(desktop["mcpServers"]["larder"]["command"], "/opt/larder/bin/larder");
  EXPECT_EQ(desktop["mcpServers"]["larder"]["args"][4], "@/home/me/token file.b64");
  json cursor = json::parse(host_snippet(connect::Host::kCursor, command));
  EXPECT_EQ(cursor, desktop);
  json vscode = json::parse(host_snippet(connect::Host::kVsCode, command));
  EXPECT_EQ(vscode["servers"]["larder"]["type"], "stdio");
  EXPECT_EQ(vscode["servers"]["larder"]["args"], desktop["mcpServers"]["larder"]["args"]);
  EXPECT_EQ(host_snippet(connect::Host::kClaudeCode, command),
            "claude mcp add --transport stdio larder -- /opt/larder/bin/larder connect --config "
            "/etc/larder/mcp.json --token '@/home/me/token file.b64'\n");
  EXPECT_FALSE(parse_host("emacs").ok());
  for (const auto& name : host_names()) EXPECT_TRUE(parse_host(name).ok()) << name;
}

}  // namespace
}  // namespace larder::connect
