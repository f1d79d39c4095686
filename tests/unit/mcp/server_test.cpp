#include "mcp/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include "support/wait.h"

namespace larder::mcp {
namespace {

// Collects what the server sends on a channel.
class Collector : public Outbound {
 public:
  bool send(const json& message) override {
    std::lock_guard lock(mutex_);
    messages_.push_back(message);
    cv_.notify_all();
    return true;
  }
  std::vector<json> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  json wait_for(const std::function<bool(const json&)>& pred) {
    std::unique_lock lock(mutex_);
    json found;
    cv_.wait_for(lock, std::chrono::seconds(5), [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<json> messages_;
};

json modern_meta(const char* version = "2026-07-28") {
  return json{{"io.modelcontextprotocol/protocolVersion", version},
              {"io.modelcontextprotocol/clientInfo", {{"name", "t"}, {"version", "1"}}},
              {"io.modelcontextprotocol/clientCapabilities", {{"elicitation", json::object()}}}};
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.info = {"test-server", "1.2.3", "Test"};
    o.page_size = 2;
    server_ = std::make_unique<Server>(o);
    Tool echo{"echo",
              "Echo",
              "Echoes text",
              json::parse(R"({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]})"),
              std::nullopt,
              json(),
              json()};
    ASSERT_TRUE(server_
                    ->add_tool(echo,
                               [](RequestContext& ctx, const json& args) {
                                 ctx.progress(1, 2, "half");
                                 ctx.log(LogLevel::kInfo, "echoing");
                                 ToolResult r = ToolResult::text(args["text"].get<std::string>());
                                 r.meta = {{"larder/biscuit_token", "tok"}};
                                 return r;
                               })
                    .ok());
    Tool structured{
        "sum",
        "",
        "",
        json::parse(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}}})"),
        json::parse(R"({"type":"object","properties":{"sum":{"type":"integer"}},"required":["sum"]})"),
        json(),
        json()};
    ASSERT_TRUE(server_
                    ->add_tool(structured,
                               [](RequestContext&, const json& a) {
                                 ToolResult r = ToolResult::text("ok");
                                 r.structured_content = json{{"sum", a.value("a", 0) + a.value("b", 0)}};
                                 if (a.value("a", 0) < 0)
                                   r.structured_content = json{{"sum", "not a number"}};
                                 return r;
                               })
                    .ok());
    ASSERT_TRUE(
        server_
            ->add_tool(Tool{"boom", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                       [](RequestContext&, const json&) -> ToolResult { throw std::runtime_error("kaboom"); })
            .ok());
    ASSERT_TRUE(
        server_
            ->add_tool(Tool{"ask", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                       [](RequestContext& ctx, const json&) {
                         auto a = ctx.request_client("elicitation/create", json{{"message", "name?"}});
                         if (!a) return ToolResult::error(a.error().message);
                         auto b = ctx.request_client("elicitation/create", json{{"message", "age?"}});
                         if (!b) return ToolResult::error(b.error().message);
                         return ToolResult::text((*a)["content"]["v"].get<std::string>() + "/" +
                                                 (*b)["content"]["v"].get<std::string>());
                       })
            .ok());
    ASSERT_TRUE(server_
                    ->add_tool(Tool{"wait", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                               [this](RequestContext& ctx, const json&) {
                                 started_ = true;
                                 while (!ctx.cancelled())
                                   std::this_thread::sleep_for(std::chrono::milliseconds(2));
                                 saw_cancel_ = true;
                                 return ToolResult::text("late");
                               })
                    .ok());
    ASSERT_TRUE(
        server_
            ->add_resource(Resource{"test://a", "a", "", "", "text/plain", std::nullopt, json(), json()},
                           [](RequestContext&, const std::string& uri) -> larder::Result<json> {
                             return json::array({{{"uri", uri}, {"mimeType", "text/plain"}, {"text", "A"}}});
                           })
            .ok());
    ASSERT_TRUE(
        server_
            ->add_resource_template(
                ResourceTemplate{"test://t/{id}/data", "t", "", "", "application/json", json(), json()},
                [](RequestContext&, const std::string& uri,
                   const std::map<std::string, std::string>& v) -> larder::Result<json> {
                  return json::array({{{"uri", uri}, {"text", "id=" + v.at("id")}}});
                })
            .ok());
    // A reader and a prompt that refuse with a JSON-RPC error of their own (HandlerResult).
    ASSERT_TRUE(server_
                    ->add_resource(
                        Resource{"test://refused", "r", "", "", "text/plain", std::nullopt, json(), json()},
                        [](RequestContext&, const std::string&) -> HandlerResult {
                          return RpcError{error_code::kRefused, "refused by lock x: no", json{{"lock", "x"}}};
                        })
                    .ok());
    ASSERT_TRUE(
        server_
            ->add_prompt(
                Prompt{"greet", "", "", {{"name", "", "", true}}, json()},
                [](RequestContext&, const std::map<std::string, std::string>& a) -> larder::Result<json> {
                  return json{{"messages", json::array({{{"role", "user"},
                                                         {"content", text_content("hi " + a.at("name"))}}})}};
                })
            .ok());
    ASSERT_TRUE(server_
                    ->add_prompt(
                        Prompt{"refused", "", "", {}, json()},
                        [](RequestContext&, const std::map<std::string, std::string>&) -> HandlerResult {
                          return RpcError{error_code::kRefused, "refused by lock y: no", json{{"lock", "y"}}};
                        })
                    .ok());
    server_->set_completion_handler([](RequestContext&, const json&, const json& arg, const json&) {
      std::vector<std::string> out;
      for (std::string v : {"alpha", "alps", "beta"}) {
        if (v.rfind(arg.value("value", ""), 0) == 0) out.push_back(v);
      }
      return out;
    });
    session_ = server_->create_session(nullptr);
    general_ = std::make_shared<Collector>();
    related_ = std::make_shared<Collector>();
    session_->set_general(general_);
    origin_.related = related_;
  }

  json call(const json& message) {
    auto r = server_->handle(session_, message, origin_);
    return r ? *r : json();
  }
  json request(const std::string& method, json params = json::object()) {
    return call(make_request(++next_id_, method, params));
  }
  void initialize(const char* version = "2025-11-25") {
    auto r = request("initialize", {{"protocolVersion", version},
                                    {"capabilities", {{"sampling", json::object()}}},
                                    {"clientInfo", {{"name", "c"}, {"version", "1"}}}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    call(make_notification("notifications/initialized", nullptr));
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<Session> session_;
  std::shared_ptr<Collector> general_, related_;
  Origin origin_;
  int next_id_ = 0;
  std::atomic<bool> started_{false}, saw_cancel_{false};
};

TEST_F(ServerTest, NegotiatesEveryLegacyVersionAndFallsBackToTheNewest) {
  for (const char* v : {"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}) {
    auto s = server_->create_session(nullptr);
    auto r = server_->handle(s,
                             make_request(1, "initialize",
                                          {{"protocolVersion", v},
                                           {"capabilities", json::object()},
                                           {"clientInfo", {{"name", "c"}, {"version", "1"}}}}),
                             origin_);
    ASSERT_TRUE(r && r->contains("result"));
    EXPECT_EQ((*r)["result"]["protocolVersion"], v);
    EXPECT_EQ((*r)["result"]["serverInfo"]["name"], "test-server");
    EXPECT_TRUE((*r)["result"]["capabilities"].contains("tools"));
  }
  auto r = request("initialize", {{"protocolVersion", "1999-01-01"},
                                  {"capabilities", json::object()},
                                  {"clientInfo", {{"name", "c"}, {"version", "1"}}}});
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25");
  // A second initialize on the same session is refused.
  r = request("initialize", {{"protocolVersion", "2025-11-25"}});
  EXPECT_EQ(r["error"]["code"], error_code::kInvalidRequest);
}

TEST_F(ServerTest, RequiresInitializeButAnswersPing) {
  EXPECT_EQ(request("tools/list")["error"]["code"], error_code::kInvalidRequest);
  EXPECT_EQ(request("ping")["result"], json::object());
  EXPECT_EQ(request("initialize", {{"capabilities", json::object()}})["error"]["code"],
            error_code::kInvalidParams);
}

TEST_F(ServerTest, ErrorCodes) {
  initialize();
  EXPECT_EQ(request("no/such/method")["error"]["code"], error_code::kMethodNotFound);
  EXPECT_EQ(request("tools/call", {{"name", 5}})["error"]["code"], error_code::kInvalidParams);
  EXPECT_EQ(request("tools/call", {{"name", "nope"}})["error"]["code"], error_code::kInvalidParams);
  EXPECT_EQ(call(json::parse(R"({"jsonrpc":"2.0","id":3,"method":7})"))["error"]["code"],
            error_code::kInvalidRequest);
  EXPECT_EQ(call(json::parse(R"({"jsonrpc":"2.0","id":4,"method":"x"})"))["id"], 4);
  EXPECT_EQ(request("resources/read", {{"uri", "test://missing"}})["error"]["code"],
            error_code::kResourceNotFound);
  EXPECT_EQ(request("logging/setLevel", {{"level", "loud"}})["error"]["code"], error_code::kInvalidParams);
  // Notifications never get an answer, even unknown ones.
  EXPECT_TRUE(call(make_notification("notifications/whatever", nullptr)).is_null());
}

TEST_F(ServerTest, ListsToolsWithPagination) {
  initialize();
  std::vector<std::string> names;
  json params = json::object();
  for (int page = 0; page < 10; ++page) {
    auto r = request("tools/list", params)["result"];
    for (auto& t : r["tools"]) names.push_back(t["name"]);
    if (!r.contains("nextCursor")) break;
    params = {{"cursor", r["nextCursor"]}};
  }
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "sum", "boom", "ask", "wait"}));
  EXPECT_EQ(request("tools/list", {{"cursor", "garbage!"}})["error"]["code"], error_code::kInvalidParams);
  auto first = request("tools/list")["result"]["tools"][0];
  EXPECT_EQ(first["title"], "Echo");
  EXPECT_EQ(first["inputSchema"]["required"][0], "text");
}

TEST_F(ServerTest, CallsToolsWithProgressLogsAndMeta) {
  initialize();
  auto r =
      request("tools/call",
              {{"name", "echo"}, {"arguments", {{"text", "hello"}}}, {"_meta", {{"progressToken", "p1"}}}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_EQ(r["result"]["content"][0]["text"], "hello");
  EXPECT_EQ(r["result"]["_meta"]["larder/biscuit_token"], "tok");
  auto msgs = related_->messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0]["method"], "notifications/progress");
  EXPECT_EQ(msgs[0]["params"]["progressToken"], "p1");
  EXPECT_EQ(msgs[0]["params"]["total"], 2);
  EXPECT_EQ(msgs[1]["method"], "notifications/message");
  EXPECT_EQ(msgs[1]["params"]["level"], "info");
  // Raising the level filters the info log.
  EXPECT_EQ(request("logging/setLevel", {{"level", "error"}})["result"], json::object());
  request("tools/call", {{"name", "echo"}, {"arguments", {{"text", "x"}}}});
  EXPECT_EQ(related_->messages().size(), 2u);
}

TEST_F(ServerTest, InvalidArgumentsAreToolErrorsIn2025_11_25AndProtocolErrorsBefore) {
  initialize("2025-11-25");
  auto r = request("tools/call", {{"name", "echo"}, {"arguments", {{"text", 5}}}});
  EXPECT_EQ(r["result"]["isError"], true);
  EXPECT_NE(r["result"]["content"][0]["text"].get<std::string>().find("Invalid arguments"),
            std::string::npos);
  auto s = server_->create_session(nullptr);
  server_->handle(s,
                  make_request(1, "initialize",
                               {{"protocolVersion", "2025-06-18"},
                                {"capabilities", json::object()},
                                {"clientInfo", {{"name", "c"}, {"version", "1"}}}}),
                  origin_);
  auto e = server_->handle(
      s, make_request(2, "tools/call", {{"name", "echo"}, {"arguments", json::object()}}), origin_);
  EXPECT_EQ((*e)["error"]["code"], error_code::kInvalidParams);
  auto a =
      server_->handle(s, make_request(3, "tools/call", {{"name", "echo"}, {"arguments", "str"}}), origin_);
  EXPECT_EQ((*a)["error"]["code"], error_code::kInvalidParams);
}

TEST_F(ServerTest, StructuredOutputIsValidatedAndExceptionsBecomeIsError) {
  initialize();
  auto r = request("tools/call", {{"name", "sum"}, {"arguments", {{"a", 2}, {"b", 3}}}});
  EXPECT_EQ(r["result"]["structuredContent"]["sum"], 5);
  r = request("tools/call", {{"name", "sum"}, {"arguments", {{"a", -1}}}});
  EXPECT_EQ(r["error"]["code"], error_code::kInternalError);
  r = request("tools/call", {{"name", "boom"}});
  EXPECT_EQ(r["result"]["isError"], true);
  EXPECT_EQ(r["result"]["content"][0]["text"], "kaboom");
}

TEST_F(ServerTest, ResourcesTemplatesPromptsAndCompletion) {
  initialize();
  EXPECT_EQ(request("resources/list")["result"]["resources"][0]["uri"], "test://a");
  EXPECT_EQ(request("resources/templates/list")["result"]["resourceTemplates"][0]["uriTemplate"],
            "test://t/{id}/data");
  EXPECT_EQ(request("resources/read", {{"uri", "test://a"}})["result"]["contents"][0]["text"], "A");
  EXPECT_EQ(request("resources/read", {{"uri", "test://t/42/data"}})["result"]["contents"][0]["text"],
            "id=42");
  EXPECT_EQ(request("prompts/list")["result"]["prompts"][0]["arguments"][0]["required"], true);
  EXPECT_EQ(
      request("prompts/get", {{"name", "greet"},
                              {"arguments", {{"name", "Ann"}}}})["result"]["messages"][0]["content"]["text"],
      "hi Ann");
  EXPECT_EQ(request("prompts/get", {{"name", "greet"}})["error"]["code"], error_code::kInvalidParams);
  EXPECT_EQ(request("prompts/get", {{"name", "nope"}})["error"]["code"], error_code::kInvalidParams);
  auto c = request("completion/complete", {{"ref", {{"type", "ref/prompt"}, {"name", "greet"}}},
                                           {"argument", {{"name", "name"}, {"value", "al"}}}});
  EXPECT_EQ(c["result"]["completion"]["values"], json::array({"alpha", "alps"}));
  EXPECT_EQ(c["result"]["completion"]["hasMore"], false);
}

TEST_F(ServerTest, AHandlersOwnRpcErrorReachesTheClientAsItIsWithItsData) {
  initialize();
  auto r = request("resources/read", {{"uri", "test://refused"}});
  EXPECT_EQ(r["error"]["code"], error_code::kRefused) << r.dump();
  EXPECT_EQ(r["error"]["message"], "refused by lock x: no");
  EXPECT_EQ(r["error"]["data"], json({{"lock", "x"}}));
  EXPECT_FALSE(r.contains("result"));
  auto p = request("prompts/get", {{"name", "refused"}});
  EXPECT_EQ(p["error"]["code"], error_code::kRefused) << p.dump();
  EXPECT_EQ(p["error"]["data"]["lock"], "y");
}

TEST_F(ServerTest, SubscriptionsDeliverResourceUpdatesOnTheGeneralChannel) {
  initialize();
  EXPECT_EQ(request("resources/subscribe", {{"uri", "test://a"}})["result"], json::object());
  server_->notify_resource_updated("test://a");
  server_->notify_resource_updated("test://other");
  auto msgs = general_->messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["params"]["uri"], "test://a");
  request("resources/unsubscribe", {{"uri", "test://a"}});
  server_->notify_resource_updated("test://a");
  EXPECT_EQ(general_->messages().size(), 1u);
  // Registry changes announce list_changed.
  ASSERT_TRUE(server_->remove_tool("boom"));
  EXPECT_EQ(general_->messages().back()["method"], "notifications/tools/list_changed");
}

TEST_F(ServerTest, ServerToClientRequestsAwaitTheClientsResponse) {
  initialize();
  // The client declared sampling but not elicitation.
  auto r = request("tools/call", {{"name", "ask"}});
  EXPECT_EQ(r["result"]["isError"], true);
  EXPECT_NE(r["result"]["content"][0]["text"].get<std::string>().find("elicitation"), std::string::npos);

  auto s = server_->create_session(nullptr);
  auto rel = std::make_shared<Collector>();
  Origin o;
  o.related = rel;
  server_->handle(s,
                  make_request(1, "initialize",
                               {{"protocolVersion", "2025-06-18"},
                                {"capabilities", {{"elicitation", json::object()}}},
                                {"clientInfo", {{"name", "c"}, {"version", "1"}}}}),
                  o);
  std::thread answerer([&] {
    for (int round = 0; round < 2; ++round) {
      json req = rel->wait_for([&](const json& m) {
        return m.value("method", "") == "elicitation/create" && m["id"] == round + 1;
      });
      ASSERT_FALSE(req.is_null());
      server_->handle(
          s, make_result(req["id"], {{"action", "accept"}, {"content", {{"v", round == 0 ? "Ann" : "33"}}}}),
          o);
    }
  });
  auto done = server_->handle(s, make_request(2, "tools/call", {{"name", "ask"}}), o);
  answerer.join();
  EXPECT_EQ((*done)["result"]["content"][0]["text"], "Ann/33");
}

TEST_F(ServerTest, CancellationStopsTheHandlerAndSuppressesTheResponse) {
  initialize();
  std::optional<json> result = json("unset");
  std::thread t([&] {
    result = server_->handle(session_, make_request(99, "tools/call", {{"name", "wait"}}), origin_);
  });
  // Not ASSERT: the thread must still be joined.
  EXPECT_TRUE(test::wait_until([&] { return started_.load(); }, std::chrono::seconds(10)))
      << "the tool never started";
  call(make_notification("notifications/cancelled", {{"requestId", 99}, {"reason", "user"}}));
  t.join();
  EXPECT_TRUE(saw_cancel_);
  EXPECT_FALSE(result.has_value());
}

TEST_F(ServerTest, BatchesOnlyIn2025_03_26) {
  initialize("2025-06-18");
  auto r = call(json::array({make_request(1, "ping", nullptr)}));
  EXPECT_EQ(r["error"]["code"], error_code::kInvalidRequest);
  auto s = server_->create_session(nullptr);
  server_->handle(s,
                  make_request(1, "initialize",
                               {{"protocolVersion", "2025-03-26"},
                                {"capabilities", json::object()},
                                {"clientInfo", {{"name", "c"}, {"version", "1"}}}}),
                  origin_);
  auto b = server_->handle(
      s,
      json::array({make_request(2, "ping", nullptr), make_notification("notifications/initialized", nullptr),
                   make_request(3, "tools/list", nullptr), json(5)}),
      origin_);
  ASSERT_TRUE(b && b->is_array());
  ASSERT_EQ(b->size(), 3u);
  EXPECT_EQ((*b)[0]["id"], 2);
  EXPECT_EQ((*b)[1]["id"], 3);
  EXPECT_EQ((*b)[2]["error"]["code"], error_code::kInvalidRequest);
  EXPECT_EQ(server_->handle(s, json::array(), origin_).value()["error"]["code"], error_code::kInvalidRequest);
}

TEST_F(ServerTest, ModernRequestsAreStatelessAndVersionChecked) {
  auto d = server_->handle(nullptr, make_request(1, "server/discover", {{"_meta", modern_meta()}}), origin_);
  ASSERT_TRUE(d && d->contains("result")) << d->dump();
  EXPECT_EQ((*d)["result"]["resultType"], "complete");
  EXPECT_EQ((*d)["result"]["supportedVersions"][0], "2026-07-28");
  EXPECT_EQ((*d)["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "test-server");
  auto bad = server_->handle(nullptr, make_request(2, "tools/list", {{"_meta", modern_meta("1900-01-01")}}),
                             origin_);
  EXPECT_EQ((*bad)["error"]["code"], error_code::kUnsupportedProtocolVersion);
  EXPECT_EQ((*bad)["error"]["data"]["requested"], "1900-01-01");
  auto list = server_->handle(nullptr, make_request(3, "tools/list", {{"_meta", modern_meta()}}), origin_);
  EXPECT_EQ((*list)["result"]["resultType"], "complete");
  EXPECT_TRUE((*list)["result"].contains("ttlMs"));
  // Legacy-only methods are gone in the modern revision.
  auto ping = server_->handle(nullptr, make_request(4, "ping", {{"_meta", modern_meta()}}), origin_);
  EXPECT_EQ((*ping)["error"]["code"], error_code::kMethodNotFound);
  auto missing = server_->handle(
      nullptr, make_request(5, "resources/read", {{"uri", "x://no"}, {"_meta", modern_meta()}}), origin_);
  EXPECT_EQ((*missing)["error"]["code"], error_code::kInvalidParams);
}

TEST_F(ServerTest, ModernClientRequestsBecomeMultiRoundTrips) {
  json params = {{"name", "ask"}, {"_meta", modern_meta()}};
  auto r1 = server_->handle(nullptr, make_request(1, "tools/call", params), origin_)->at("result");
  ASSERT_EQ(r1["resultType"], "input_required") << r1.dump();
  ASSERT_EQ(r1["inputRequests"].size(), 1u);
  std::string k1 = r1["inputRequests"].begin().key();
  EXPECT_EQ(r1["inputRequests"][k1]["method"], "elicitation/create");
  params["inputResponses"] = {{k1, {{"action", "accept"}, {"content", {{"v", "Ann"}}}}}};
  if (r1.contains("requestState")) params["requestState"] = r1["requestState"];
  auto r2 = server_->handle(nullptr, make_request(2, "tools/call", params), origin_)->at("result");
  ASSERT_EQ(r2["resultType"], "input_required") << r2.dump();
  std::string k2 = r2["inputRequests"].begin().key();
  EXPECT_NE(k1, k2);
  params["inputResponses"] = {{k2, {{"action", "accept"}, {"content", {{"v", "33"}}}}}};
  params["requestState"] = r2["requestState"];
  auto r3 = server_->handle(nullptr, make_request(3, "tools/call", params), origin_)->at("result");
  EXPECT_EQ(r3["resultType"], "complete");
  EXPECT_EQ(r3["content"][0]["text"], "Ann/33");
  // A tampered requestState is refused.
  std::string state = r2["requestState"];
  state[2] = state[2] == 'A' ? 'B' : 'A';
  params["requestState"] = state;
  auto bad = server_->handle(nullptr, make_request(4, "tools/call", params), origin_);
  EXPECT_EQ((*bad)["error"]["code"], error_code::kInvalidParams);
}

}  // namespace
}  // namespace larder::mcp
