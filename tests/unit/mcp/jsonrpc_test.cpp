#include "mcp/jsonrpc.h"

#include <gtest/gtest.h>

namespace larder::mcp {
namespace {

Message ok(const json& j) {
  auto r = classify(j);
  EXPECT_TRUE(std::holds_alternative<Message>(r)) << j.dump();
  return std::get<Message>(r);
}

ClassifyFailure bad(const json& j) {
  auto r = classify(j);
  EXPECT_TRUE(std::holds_alternative<ClassifyFailure>(r)) << j.dump();
  return std::holds_alternative<ClassifyFailure>(r) ? std::get<ClassifyFailure>(r) : ClassifyFailure{};
}

TEST(JsonRpc, ClassifiesRequestsNotificationsAndResponses) {
  auto m = ok(json::parse(R"({"jsonrpc":"2.0","id":7,"method":"ping"})"));
  EXPECT_TRUE(m.is_request());
  EXPECT_EQ(m.id, 7);
  m = ok(json::parse(R"({"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"x"}})"));
  EXPECT_EQ(m.id, "abc");
  EXPECT_EQ(m.params["name"], "x");
  m = ok(json::parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"));
  EXPECT_TRUE(m.is_notification());
  m = ok(json::parse(R"({"jsonrpc":"2.0","id":1,"result":{}})"));
  EXPECT_EQ(m.kind, MessageKind::kResult);
  m = ok(json::parse(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}})"));
  EXPECT_EQ(m.kind, MessageKind::kError);
  EXPECT_EQ(m.error.code, -32601);
}

TEST(JsonRpc, RejectsWrongShapesWithInvalidRequest) {
  for (const char* text :
       {R"([])", R"(42)", R"("x")", R"({"id":1,"method":"ping"})",
        R"({"jsonrpc":"1.0","id":1,"method":"ping"})", R"({"jsonrpc":"2.0","id":1,"method":5})",
        R"({"jsonrpc":"2.0","id":null,"method":"ping"})", R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
        R"({"jsonrpc":"2.0","id":{},"method":"ping"})",
        R"({"jsonrpc":"2.0","id":1,"method":"ping","params":"x"})", R"({"jsonrpc":"2.0","id":1})",
        R"({"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}})", R"({"jsonrpc":"2.0","result":1})",
        R"({"jsonrpc":"2.0","id":1,"error":"bad"})"}) {
    auto f = bad(json::parse(text));
    EXPECT_EQ(f.error.code, error_code::kInvalidRequest) << text;
  }
}

TEST(JsonRpc, RecoversTheIdOfAnInvalidRequest) {
  auto f = bad(json::parse(R"({"jsonrpc":"2.0","id":"k","method":3})"));
  EXPECT_EQ(f.recovered_id, "k");
  f = bad(json::parse(R"({"jsonrpc":"2.0","method":3})"));
  EXPECT_TRUE(f.recovered_id.is_null());
}

TEST(JsonRpc, ParseErrorsAreMinus32700) {
  for (const char* text : {"", "{", "{\"a\":}", "nul", "\xff\xfe"}) {
    auto r = parse_json(text);
    ASSERT_TRUE(std::holds_alternative<RpcError>(r)) << text;
    EXPECT_EQ(std::get<RpcError>(r).code, error_code::kParseError);
  }
}

TEST(JsonRpc, BuildersProduceWellFormedMessages) {
  EXPECT_EQ(make_request(1, "ping", nullptr).dump(), R"({"id":1,"jsonrpc":"2.0","method":"ping"})");
  EXPECT_EQ(make_notification("n", json::object())["params"], json::object());
  EXPECT_EQ(make_result("a", json::object())["id"], "a");
  auto e = make_error_response(nullptr, RpcError::method_not_found("x/y"));
  EXPECT_TRUE(e["id"].is_null());
  EXPECT_EQ(e["error"]["code"], -32601);
  EXPECT_NE(id_key(json(1)), id_key(json("1")));
}

}  // namespace
}  // namespace larder::mcp
