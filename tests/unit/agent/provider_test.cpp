// Request/response mapping for both APIs, error texts and the retry delay rules.
#include "agent/anthropic.h"
#include "agent/openai.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace larder::agent {
namespace {

using nlohmann::json;

json fixture_reply(const std::string& name, size_t index) {
  std::ifstream in(std::string(LARDER_SOURCE_DIR) + "/tests/fixtures/llm/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str())["responses"][index]["body"];
}

ChatRequest sample_request() {
  ChatRequest r;
  r.model = "m";
  r.system = "be brief";
  r.max_tokens = 100;
  r.tools.push_back(
      {"pg_query", "Run SQL", {{"type", "object"}, {"properties", {{"sql", {{"type", "string"}}}}}}});
  Message q{Role::User, "how many?", {}, {}};
  Message a{Role::Assistant, "Let me check.", {}, {}};
  ToolCall call;
  call.id = "id1";
  call.name = "pg_query";
  call.input = {{"sql", "SELECT 1"}};
  a.tool_calls.push_back(call);
  Message res{Role::User, "", {}, {{"id1", "[{\"n\":1}]", false}}};
  r.messages = {q, a, res};
  return r;
}

TEST(Anthropic, RequestBody) {
  json body = anthropic_request_body(sample_request());
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["max_tokens"], 100);
  EXPECT_EQ(body["system"], "be brief");
  EXPECT_EQ(body["tools"][0]["name"], "pg_query");
  EXPECT_EQ(body["tools"][0]["input_schema"]["type"], "object");
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0]["content"][0], (json{{"type", "text"}, {"text", "how many?"}}));
  EXPECT_EQ(body["messages"][1]["role"], "assistant");
  EXPECT_EQ(body["messages"][1]["content"][1]["type"], "tool_use");
  EXPECT_EQ(body["messages"][1]["content"][1]["input"]["sql"], "SELECT 1");
  EXPECT_EQ(body["messages"][2]["content"][0]["type"], "tool_result");
  EXPECT_EQ(body["messages"][2]["content"][0]["tool_use_id"], "id1");
  EXPECT_FALSE(body["messages"][2]["content"][0].contains("is_error"));
}

TEST(Anthropic, ErrorResultCarriesIsError) {
  ChatRequest r = sample_request();
  r.messages[2].tool_results[0].is_error = true;
  EXPECT_EQ(anthropic_request_body(r)["messages"][2]["content"][0]["is_error"], true);
}

TEST(Anthropic, ParsesToolUseResponse) {
  auto r = parse_anthropic_response(fixture_reply("anthropic_pg_query.json", 0).dump());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->stop_reason, StopReason::ToolUse);
  EXPECT_EQ(r->message.text, "I'll count the patients by condition.");
  ASSERT_EQ(r->message.tool_calls.size(), 1u);
  EXPECT_EQ(r->message.tool_calls[0].id, "toolu_01");
  EXPECT_EQ(r->message.tool_calls[0].name, "pg_query");
  EXPECT_FALSE(r->message.tool_calls[0].input_error);
  EXPECT_EQ(r->usage.input_tokens, 812);
}

TEST(Anthropic, StopReasons) {
  for (auto [raw, want] :
       std::vector<std::pair<std::string, StopReason>>{{"end_turn", StopReason::EndTurn},
                                                       {"stop_sequence", StopReason::EndTurn},
                                                       {"max_tokens", StopReason::MaxTokens},
                                                       {"refusal", StopReason::Refusal},
                                                       {"pause_turn", StopReason::Other}}) {
    auto r = parse_anthropic_response(json{{"content", json::array()}, {"stop_reason", raw}}.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stop_reason, want) << raw;
  }
}

TEST(Anthropic, MalformedInputIsFlaggedNotThrown) {
  auto r = parse_anthropic_response(fixture_reply("anthropic_malformed_input.json", 0).dump());
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->message.tool_calls[0].input_error);
}

TEST(Anthropic, RejectsGarbage) {
  for (const char* body :
       {"", "not json", "[]", "{}", R"({"content":[1]})", R"({"content":[{"type":"tool_use"}]})"}) {
    auto r = parse_anthropic_response(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().code, "llm.protocol");
  }
}

TEST(Anthropic, ErrorMessage) {
  HttpReply reply{529, {}, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"};
  EXPECT_EQ(anthropic_error_message(reply), "overloaded_error: Overloaded");
  EXPECT_EQ(anthropic_error_message(HttpReply{502, {}, "<html>bad gateway</html>"}),
            "<html>bad gateway</html>");
  EXPECT_EQ(anthropic_error_message(HttpReply{502, {}, ""}), "(empty body)");
}

TEST(OpenAi, RequestBody) {
  ChatRequest r = sample_request();
  r.messages[2].tool_results[0].is_error = true;
  json body = openai_request_body(r);
  ASSERT_EQ(body["messages"].size(), 4u);
  EXPECT_EQ(body["messages"][0], (json{{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"sql\":\"SELECT 1\"}");
  EXPECT_EQ(body["messages"][2]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(body["messages"][3]["role"], "tool");
  EXPECT_EQ(body["messages"][3]["tool_call_id"], "id1");
  EXPECT_EQ(body["messages"][3]["content"].get<std::string>().rfind("ERROR: ", 0), 0u);
  EXPECT_EQ(body["tools"][0]["type"], "function");
  EXPECT_EQ(body["tools"][0]["function"]["parameters"]["type"], "object");
}

TEST(OpenAi, ParsesToolCalls) {
  auto r = parse_openai_response(fixture_reply("openai_pg_query.json", 0).dump());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->stop_reason, StopReason::ToolUse);
  ASSERT_EQ(r->message.tool_calls.size(), 1u);
  EXPECT_EQ(r->message.tool_calls[0].id, "call_abc");
  EXPECT_NE(r->message.tool_calls[0].input["sql"].get<std::string>().find("GROUP BY"), std::string::npos);
  EXPECT_EQ(r->usage.output_tokens, 40);
}

TEST(OpenAi, ArgumentsEdgeCases) {
  auto parse = [](json arguments) {
    json body{{"choices",
               {{{"finish_reason", "tool_calls"},
                 {"message",
                  {{"role", "assistant"},
                   {"tool_calls",
                    {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", arguments}}}}}}}}}}}};
    auto r = parse_openai_response(body.dump());
    EXPECT_TRUE(r.ok());
    return r->message.tool_calls.at(0);
  };
  EXPECT_TRUE(parse("{bad").input_error);
  EXPECT_TRUE(parse("[1,2]").input_error);
  EXPECT_FALSE(parse("").input_error);             // no arguments = {}
  EXPECT_EQ(parse(json{{"a", 1}}).input["a"], 1);  // some servers send an object
  EXPECT_EQ(parse("{}").id, "call_1");             // missing id gets one
}

TEST(OpenAi, FinishReasons) {
  auto with = [](const char* finish) {
    json body{
        {"choices", {{{"finish_reason", finish}, {"message", {{"role", "assistant"}, {"content", "x"}}}}}}};
    return parse_openai_response(body.dump())->stop_reason;
  };
  EXPECT_EQ(with("stop"), StopReason::EndTurn);
  EXPECT_EQ(with("length"), StopReason::MaxTokens);
  EXPECT_EQ(with("content_filter"), StopReason::Refusal);
}

TEST(OpenAi, ErrorMessage) {
  EXPECT_EQ(
      openai_error_message(HttpReply{
          401, {}, R"({"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}})"}),
      "invalid_request_error: Incorrect API key provided");
  EXPECT_EQ(openai_error_message(HttpReply{500, {}, R"({"error":"model not loaded"})"}), "model not loaded");
  EXPECT_FALSE(parse_openai_response(R"({"choices":[]})").ok());
}

TEST(Retry, DelaysGrowAndRespectRetryAfter) {
  RetryPolicy p;
  p.base_delay = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 50; ++i) {
    auto d1 = backoff_delay(p, 1, nullptr, rng), d3 = backoff_delay(p, 3, nullptr, rng),
         d9 = backoff_delay(p, 9, nullptr, rng);
    EXPECT_GE(d1.count(), 50);
    EXPECT_LE(d1.count(), 100);
    EXPECT_GE(d3.count(), 200);
    EXPECT_LE(d3.count(), 400);
    EXPECT_GE(d9.count(), 500);
    EXPECT_LE(d9.count(), 1000);
  }
  HttpReply r{429, {{"retry-after", "0.5"}}, ""};
  EXPECT_EQ(backoff_delay(p, 1, &r, rng).count(), 500);
  HttpReply big{429, {{"retry-after", "3600"}}, ""};
  EXPECT_EQ(backoff_delay(p, 1, &big, rng).count(), 1000);  // capped
  HttpReply past{503, {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}, ""};
  EXPECT_EQ(backoff_delay(p, 1, &past, rng).count(), 0);
  HttpReply junk{503, {{"retry-after", "soon"}}, ""};
  EXPECT_GE(backoff_delay(p, 1, &junk, rng).count(), 50);
}

TEST(Retry, RetryableStatuses) {
  for (int s : {408, 429, 500, 502, 503, 504, 529}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {400, 401, 403, 404, 413, 422}) EXPECT_FALSE(is_retryable_status(s)) << s;
}

TEST(Providers, Factory) {
  ProviderConfig c;
  c.kind = ProviderKind::Anthropic;
  auto missing_key = make_provider(c);
  ASSERT_FALSE(missing_key.ok());
  EXPECT_NE(missing_key.error().message.find("ANTHROPIC_API_KEY"), std::string::npos);
  c.api_key = "k";
  c.base_url = "ftp://x";
  EXPECT_FALSE(make_provider(c).ok());
  ProviderConfig local;
  local.kind = ProviderKind::OpenAi;
  local.base_url = "http://127.0.0.1:8080/v1/";
  auto p = make_provider(local);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->model(), default_model(ProviderKind::OpenAi));
  EXPECT_FALSE(parse_provider_kind("gemini").ok());
}

TEST(Providers, ConnectionRefusedIsANetworkError) {
  ProviderConfig c;
  c.kind = ProviderKind::OpenAi;
  c.base_url = "http://127.0.0.1:1";  // nothing listens on port 1
  c.retry.max_attempts = 2;
  c.retry.sleep = [](std::chrono::milliseconds) {};
  auto p = make_provider(c);
  ASSERT_TRUE(p.ok());
  ChatRequest req;
  req.messages.push_back({Role::User, "hi", {}, {}});
  auto r = (*p)->complete(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "llm.network");
  EXPECT_NE(r.error().message.find("127.0.0.1:1"), std::string::npos);
}

}  // namespace
}  // namespace larder::agent
