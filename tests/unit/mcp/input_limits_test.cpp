// Finding 3 and the batch part of finding 9, in-process: JSON nested deeper than the limit is
// refused unparsed by every server transport (Streamable HTTP, legacy HTTP+SSE, stdio) with
// -32700 and the server keeps serving; JSON-RPC batches are bounded.
#include "mcp/http_transport.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "mcp/stdio.h"
#include "support/fake_responder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace larder::mcp {
namespace {

using namespace std::chrono_literals;

std::string deep_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// A ping whose params nest `depth` levels in total (params is level 2).
std::string ping_with_depth(std::size_t depth, const std::string& id = "1") {
  return R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"ping","params":{"a":)" + deep_arrays(depth - 2) +
         "}}";
}

std::string initialize_body(const std::string& version) {
  return R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":")" + version +
         R"(","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";
}

// ---------------------------------------------------------------- jsonrpc
TEST(InputLimits, ParseJsonRefusesDeepTextWithMinus32700) {
  auto at = parse_json(ping_with_depth(64));
  EXPECT_TRUE(std::holds_alternative<json>(at));
  auto over = parse_json(ping_with_depth(65));
  ASSERT_TRUE(std::holds_alternative<RpcError>(over));
  EXPECT_EQ(std::get<RpcError>(over).code, error_code::kParseError);
  EXPECT_EQ(std::get<RpcError>(over).message, "Parse error: JSON nested deeper than 64 levels");
  auto finding = parse_json(ping_with_depth(150000));
  ASSERT_TRUE(std::holds_alternative<RpcError>(finding));
  EXPECT_EQ(std::get<RpcError>(finding).code, error_code::kParseError);
  // A deep structure inside a string is a string.
  auto quoted = parse_json(
      json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}, {"params", {{"s", deep_arrays(10000)}}}}
          .dump());
  EXPECT_TRUE(std::holds_alternative<json>(quoted));
  // Another limit.
  auto small = parse_json(ping_with_depth(5), 4);
  ASSERT_TRUE(std::holds_alternative<RpcError>(small));
  EXPECT_EQ(std::get<RpcError>(small).message, "Parse error: JSON nested deeper than 4 levels");
}

// ---------------------------------------------------------------- server: batches
class BatchTest : public ::testing::Test {
 protected:
  void start(ServerOptions o = {}) {
    server_ = std::make_unique<Server>(o);
    session_ = server_->create_session(nullptr);
    auto r = server_->handle(session_, json::parse(initialize_body("2025-03-26")), origin_);
    ASSERT_TRUE(r && r->contains("result"));
    server_->handle(session_, make_notification("notifications/initialized", nullptr), origin_);
  }
  json batch_of_pings(std::size_t n) {
    json b = json::array();
    for (std::size_t i = 0; i < n; ++i) b.push_back(make_request(static_cast<int>(i + 1), "ping", nullptr));
    return b;
  }
  std::unique_ptr<Server> server_;
  std::shared_ptr<Session> session_;
  Origin origin_;
};

TEST_F(BatchTest, UpToTheLimitIsServed) {
  start();
  EXPECT_EQ(server_->options().max_batch_size, 32u);
  auto r = server_->handle(session_, batch_of_pings(32), origin_);
  ASSERT_TRUE(r && r->is_array());
  EXPECT_EQ(r->size(), 32u);
  EXPECT_FALSE(server_->refuse_batch(session_, batch_of_pings(32), origin_));
}

TEST_F(BatchTest, OneMoreIsRefusedWhole) {
  start();
  for (std::size_t n : {33u, 2000u}) {
    auto r = server_->handle(session_, batch_of_pings(n), origin_);
    ASSERT_TRUE(r && r->is_object()) << n;
    EXPECT_EQ((*r)["error"]["code"], error_code::kInvalidRequest);
    EXPECT_TRUE((*r)["id"].is_null());
    EXPECT_EQ((*r)["error"]["message"],
              "Invalid Request: a batch of " + std::to_string(n) + " messages exceeds the limit of 32");
  }
}

TEST_F(BatchTest, EmptyBatchIsRefused) {
  start();
  auto r = server_->handle(session_, json::array(), origin_);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["error"]["code"], error_code::kInvalidRequest);
  EXPECT_EQ((*r)["error"]["message"], "Invalid Request: empty batch");
}

TEST_F(BatchTest, TheLimitIsConfigurable) {
  ServerOptions o;
  o.max_batch_size = 2;
  start(o);
  EXPECT_TRUE(server_->handle(session_, batch_of_pings(2), origin_)->is_array());
  EXPECT_EQ(server_->handle(session_, batch_of_pings(3), origin_).value()["error"]["code"],
            error_code::kInvalidRequest);
}

TEST_F(BatchTest, OnlyIn2025_03_26) {
  server_ = std::make_unique<Server>();
  auto s = server_->create_session(nullptr);
  server_->handle(s, json::parse(initialize_body("2025-06-18")), origin_);
  auto r = server_->refuse_batch(s, batch_of_pings(1), origin_);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["error"]["code"], error_code::kInvalidRequest);
  EXPECT_FALSE(server_->refuse_batch(s, json::object(), origin_));  // not a batch
  EXPECT_TRUE(server_->refuse_batch(nullptr, batch_of_pings(1), origin_));
}

// ---------------------------------------------------------------- Streamable HTTP + legacy SSE
class HttpInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.on_request = [this](const RequestRecord& r) {
      std::lock_guard lock(records_mutex_);
      records_.push_back(r);
      return true;
    };
    server_ = std::make_unique<Server>(o);
    Tool echo{"echo",       "",     "",    json::parse(R"({"type":"object","properties":{"v":{}}})"),
              std::nullopt, json(), json()};
    ASSERT_TRUE(server_
                    ->add_tool(echo,
                               [](RequestContext&, const json& args) {
                                 return ToolResult::text(args.contains("v") ? args["v"].dump() : "none");
                               })
                    .ok());
    transport_ = std::make_unique<HttpTransport>(*server_);
  }

  std::shared_ptr<test::Exchange> send(const std::string& method, const std::string& target,
                                       net::HeaderList headers, std::string body = "") {
    headers.emplace_back("Host", "localhost:8443");
    auto exchange = std::make_shared<test::Exchange>();
    transport_->handle(test::make_http_request(method, target, std::move(headers), std::move(body)),
                       std::make_shared<test::FakeResponder>(exchange));
    return exchange;
  }
  std::shared_ptr<test::Exchange> post(std::string body, const std::string& session = "") {
    net::HeaderList h = {{"Content-Type", "application/json"},
                         {"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) h.emplace_back("Mcp-Session-Id", session);
    auto e = send("POST", "/mcp", h, std::move(body));
    EXPECT_TRUE(e->wait(10s));
    return e;
  }
  std::string open_session(const std::string& version) {
    auto e = post(initialize_body(version));
    auto sid = e->header("Mcp-Session-Id");
    EXPECT_TRUE(sid) << e->body();
    post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", *sid);
    return sid.value_or("");
  }

  std::vector<RequestRecord> refusals(int code) {
    std::lock_guard lock(records_mutex_);
    std::vector<RequestRecord> out;
    for (const auto& r : records_) {
      if (r.error_code == code) out.push_back(r);
    }
    return out;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<HttpTransport> transport_;
  std::mutex records_mutex_;
  std::vector<RequestRecord> records_;
};

TEST_F(HttpInputTest, RefusalsAreToldToOnRequestOnce) {
  post(ping_with_depth(150000));
  auto deep = refusals(error_code::kParseError);
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_EQ(deep[0].error_message, "Parse error: JSON nested deeper than 64 levels");
  EXPECT_EQ(deep[0].method, "");
  EXPECT_EQ(deep[0].transport, "streamable-http");
  const std::string sid = open_session("2025-03-26");
  json batch = json::array();
  for (int i = 0; i < 2000; ++i) batch.push_back(make_request(i, "ping", nullptr));
  post(batch.dump(), sid);
  auto refused = refusals(error_code::kInvalidRequest);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].error_message, "Invalid Request: a batch of 2000 messages exceeds the limit of 32");
}

TEST_F(HttpInputTest, TheFindingsBodyGetsMinus32700AndTheServerKeepsServing) {
  for (const std::string& session : {std::string(), open_session("2025-06-18")}) {
    auto e = post(ping_with_depth(150000), session);
    EXPECT_EQ(e->status(), 400);
    auto m = e->messages();
    ASSERT_EQ(m.size(), 1u) << e->body();
    EXPECT_EQ(m[0]["error"]["code"], error_code::kParseError);
    EXPECT_EQ(m[0]["error"]["message"], "Parse error: JSON nested deeper than 64 levels");
    EXPECT_TRUE(m[0]["id"].is_null());
  }
  // Deep objects too.
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100000, '}');
  EXPECT_EQ(post(objects)->messages()[0]["error"]["code"], error_code::kParseError);

  const std::string sid = open_session("2025-06-18");
  auto ok = post(R"({"jsonrpc":"2.0","id":9,"method":"ping"})", sid);
  EXPECT_EQ(ok->status(), 200);
  EXPECT_EQ(ok->messages().at(0)["result"], json::object());
}

TEST_F(HttpInputTest, DepthExactlyAtTheLimitIsServed) {
  const std::string sid = open_session("2025-06-18");
  auto at = post(ping_with_depth(64, "2"), sid);
  EXPECT_EQ(at->messages().at(0)["result"], json::object()) << at->body();
  auto over = post(ping_with_depth(65, "3"), sid);
  EXPECT_EQ(over->messages().at(0)["error"]["code"], error_code::kParseError);
}

TEST_F(HttpInputTest, DeepToolArgumentsAreRefusedAndDeepStringsPass) {
  const std::string sid = open_session("2025-06-18");
  // message(1) → params(2) → arguments(3) → v: 62 more levels = 65 in all.
  auto deep =
      post(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"v":)" +
               deep_arrays(62) + "}}}",
           sid);
  EXPECT_EQ(deep->messages().at(0)["error"]["code"], error_code::kParseError);
  auto at =
      post(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"v":)" +
               deep_arrays(61) + "}}}",
           sid);
  EXPECT_EQ(at->messages().at(0)["result"]["content"][0]["text"], deep_arrays(61));
  auto text = post(json{{"jsonrpc", "2.0"},
                        {"id", 6},
                        {"method", "tools/call"},
                        {"params", {{"name", "echo"}, {"arguments", {{"v", deep_arrays(150000)}}}}}}
                       .dump(),
                   sid);
  EXPECT_FALSE(text->messages().at(0)["result"].value("isError", false)) << text->body().substr(0, 200);
}

TEST_F(HttpInputTest, BatchesOverTheLimitAreRefusedWith400) {
  const std::string sid = open_session("2025-03-26");
  auto batch = [](std::size_t n) {
    json b = json::array();
    for (std::size_t i = 0; i < n; ++i) {
      b.push_back(
          make_request(static_cast<int>(i + 1), "tools/call", {{"name", "echo"}, {"arguments", {{"v", 1}}}}));
    }
    return b.dump();
  };
  auto big = post(batch(2000), sid);
  EXPECT_EQ(big->status(), 400);
  EXPECT_EQ(big->messages().at(0)["error"]["message"],
            "Invalid Request: a batch of 2000 messages exceeds the limit of 32");
  auto empty = post("[]", sid);
  EXPECT_EQ(empty->status(), 400);
  EXPECT_EQ(empty->messages().at(0)["error"]["message"], "Invalid Request: empty batch");
  auto fine = post(batch(32), sid);
  EXPECT_EQ(fine->status(), 200);
  ASSERT_EQ(fine->messages().size(), 1u);
  EXPECT_EQ(fine->messages()[0].size(), 32u);
  // Not in later revisions at all.
  const std::string modern = open_session("2025-06-18");
  auto refused = post(batch(1), modern);
  EXPECT_EQ(refused->status(), 400);
  EXPECT_EQ(refused->messages().at(0)["error"]["code"], error_code::kInvalidRequest);
}

TEST_F(HttpInputTest, LegacySseMessagesEndpointRefusesDeepBodies) {
  auto stream = send("GET", "/sse", {{"Accept", "text/event-stream"}});
  ASSERT_TRUE(stream->wait_for_data("sessionId=", 5s));
  const std::string data = stream->body();
  auto at = data.find("/messages?sessionId=");
  ASSERT_NE(at, std::string::npos);
  const std::string endpoint = data.substr(at, data.find('\n', at) - at);
  net::HeaderList h = {{"Content-Type", "application/json"}};
  auto deep = send("POST", endpoint, h, ping_with_depth(150000));
  ASSERT_TRUE(deep->wait(5s));
  EXPECT_EQ(deep->status(), 400);
  EXPECT_EQ(deep->messages().at(0)["error"]["message"], "Parse error: JSON nested deeper than 64 levels");
  // The session still works: initialize over the stream.
  auto init = send("POST", endpoint, h, initialize_body("2024-11-05"));
  ASSERT_TRUE(init->wait(5s));
  EXPECT_EQ(init->status(), 202);
  EXPECT_TRUE(stream->wait_for_data("\"protocolVersion\":\"2024-11-05\"", 5s)) << stream->body();
}

// The largest depth [limits] max_json_depth accepts (256) is still safe for every recursive
// walk: a recursive schema validates each level, the result echoes the value back (dump).
TEST(InputLimits, TheLargestConfigurableDepthIsServedWithoutTrouble) {
  ServerOptions o;
  o.max_json_depth = 256;
  Server server(o);
  Tool nested{
      "nested",
      "",
      "",
      json::parse(R"({"type":"object","properties":{"v":{"$ref":"#/definitions/node"}},)"
                  R"("definitions":{"node":{"type":"array","items":{"$ref":"#/definitions/node"}}}})"),
      std::nullopt,
      json(),
      json()};
  ASSERT_TRUE(server
                  .add_tool(nested,
                            [](RequestContext&, const json& args) {
                              ToolResult r = ToolResult::text("ok");
                              r.structured_content = args;
                              return r;
                            })
                  .ok());
  HttpTransport transport(server);
  auto post = [&](const std::string& body, const std::string& sid) {
    auto exchange = std::make_shared<test::Exchange>();
    net::HeaderList h = {{"Host", "localhost"},
                         {"Content-Type", "application/json"},
                         {"Accept", "application/json, text/event-stream"}};
    if (!sid.empty()) h.emplace_back("Mcp-Session-Id", sid);
    transport.handle(test::make_http_request("POST", "/mcp", h, body),
                     std::make_shared<test::FakeResponder>(exchange));
    EXPECT_TRUE(exchange->wait(10s));
    return exchange;
  };
  const std::string sid = post(initialize_body("2025-06-18"), "")->header("Mcp-Session-Id").value_or("");
  ASSERT_FALSE(sid.empty());
  // message(1) → params(2) → arguments(3) → v: 253 arrays = 256 levels.
  auto at =
      post(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nested","arguments":{"v":)" +
               deep_arrays(253) + "}}}",
           sid);
  auto m = at->messages();
  ASSERT_EQ(m.size(), 1u) << at->body().substr(0, 300);
  EXPECT_FALSE(m[0]["result"].value("isError", false)) << at->body().substr(0, 300);
  auto over =
      post(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nested","arguments":{"v":)" +
               deep_arrays(254) + "}}}",
           sid);
  EXPECT_EQ(over->messages().at(0)["error"]["message"], "Parse error: JSON nested deeper than 256 levels");
}

// ---------------------------------------------------------------- stdio
TEST(StdioInputLimits, ADeepLineGetsMinus32700AndTheServerKeepsServing) {
  int to_server[2], from_server[2];
  ASSERT_EQ(pipe(to_server), 0);
  ASSERT_EQ(pipe(from_server), 0);
  Server server;
  StdioServerTransport transport(server, to_server[0], from_server[1]);
  std::thread runner([&] { (void)transport.run(); });
  LineReader reader(from_server[0]);
  auto send_line = [&](const std::string& line) {
    std::string l = line + "\n";
    std::size_t off = 0;
    while (off < l.size()) {
      ssize_t n = write(to_server[1], l.data() + off, l.size() - off);
      ASSERT_GT(n, 0);
      off += static_cast<std::size_t>(n);
    }
  };
  auto receive = [&] {
    std::string line;
    EXPECT_EQ(reader.next(&line), LineReader::Status::kLine);
    return json::parse(line);
  };
  send_line(ping_with_depth(150000, "1"));
  json r = receive();
  EXPECT_EQ(r["error"]["code"], error_code::kParseError);
  EXPECT_EQ(r["error"]["message"], "Parse error: JSON nested deeper than 64 levels");
  send_line(ping_with_depth(65, "2"));
  EXPECT_EQ(receive()["error"]["code"], error_code::kParseError);
  send_line(initialize_body("2025-06-18"));
  EXPECT_EQ(receive()["result"]["protocolVersion"], "2025-06-18");
  send_line(ping_with_depth(64, "3"));
  r = receive();
  EXPECT_EQ(r["id"], 3);
  EXPECT_EQ(r["result"], json::object());
  close(to_server[1]);
  runner.join();
  close(to_server[0]);
  close(from_server[0]);
  close(from_server[1]);
}

}  // namespace
}  // namespace larder::mcp
