// The stateless 2026-07-28 revision and hostile parameter types at the dispatch level.
#include <gtest/gtest.h>

#include "mcp/server.h"

namespace larder::mcp {
namespace {

json meta(json caps = json::object()) {
  return json{{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
              {"io.modelcontextprotocol/clientCapabilities", std::move(caps)}};
}

class ModernTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)server_.add_tool(
        Tool{"needs_sampling", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
        [](RequestContext& ctx, const json&) {
          auto r = ctx.request_client("sampling/createMessage", json{{"messages", json::array()}});
          return r ? ToolResult::text("sampled") : ToolResult::error(r.error().message);
        });
    (void)server_.add_tool(Tool{"log", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                           [](RequestContext& ctx, const json&) {
                             ctx.log(LogLevel::kWarning, "careful");
                             return ToolResult::text("ok");
                           });
  }
  json call(json params, const char* method = "tools/call") {
    auto r = server_.handle(nullptr, make_request(1, method, params), origin_);
    return r ? *r : json();
  }
  Server server_;
  Origin origin_;
};

TEST_F(ModernTest, UndeclaredCapabilityIsMissingRequiredClientCapability) {
  auto r = call({{"name", "needs_sampling"}, {"_meta", meta()}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], error_code::kMissingRequiredClientCapability);
  EXPECT_TRUE(r["error"]["data"]["requiredCapabilities"]["sampling"].is_object());
  auto ok = call({{"name", "needs_sampling"}, {"_meta", meta({{"sampling", json::object()}})}});
  EXPECT_EQ(ok["result"]["resultType"], "input_required");
}

TEST_F(ModernTest, ClientCapabilitiesAreRequired) {
  json m = meta();
  m.erase("io.modelcontextprotocol/clientCapabilities");
  EXPECT_EQ(call({{"_meta", m}}, "server/discover")["error"]["code"], error_code::kInvalidParams);
}

TEST_F(ModernTest, LogsOnlyWhenTheRequestAsksForThem) {
  struct Sink : Outbound {
    std::vector<json> got;
    bool send(const json& m) override {
      got.push_back(m);
      return true;
    }
  };
  auto sink = std::make_shared<Sink>();
  origin_.related = sink;
  call({{"name", "log"}, {"_meta", meta()}});
  EXPECT_TRUE(sink->got.empty());
  json m = meta();
  m["io.modelcontextprotocol/logLevel"] = "error";
  call({{"name", "log"}, {"_meta", m}});
  EXPECT_TRUE(sink->got.empty());  // warning < error
  m["io.modelcontextprotocol/logLevel"] = "info";
  call({{"name", "log"}, {"_meta", m}});
  ASSERT_EQ(sink->got.size(), 1u);
  EXPECT_EQ(sink->got[0]["params"]["level"], "warning");
}

TEST_F(ModernTest, WronglyTypedParametersAreInvalidParams) {
  auto r =
      call({{"ref", {{"type", 5}}}, {"argument", json::object()}, {"_meta", meta()}}, "completion/complete");
  EXPECT_EQ(r["error"]["code"], error_code::kInvalidParams);
  r = call(
      {{"name", "needs_sampling"}, {"requestState", 12}, {"_meta", meta({{"sampling", json::object()}})}});
  EXPECT_EQ(r["error"]["code"], error_code::kInvalidParams);
}

TEST_F(ModernTest, ChangeListenersSeeRegistryChanges) {
  std::vector<std::string> seen;
  auto id =
      server_.add_change_listener([&](std::string_view method, const json&) { seen.emplace_back(method); });
  (void)server_.add_prompt(
      Prompt{"p", "", "", {}, json()},
      [](RequestContext&, const std::map<std::string, std::string>&) -> larder::Result<json> {
        return json{{"messages", json::array()}};
      });
  server_.notify_resource_updated("x://y");
  server_.remove_change_listener(id);
  server_.remove_tool("log");
  EXPECT_EQ(seen, (std::vector<std::string>{"notifications/prompts/list_changed",
                                            "notifications/resources/updated"}));
}

}  // namespace
}  // namespace larder::mcp
