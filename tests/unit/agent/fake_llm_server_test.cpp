// The fake LLM server is only useful if it rejects what the real APIs reject.
#include "agent/fake_llm_server.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace larder::testing {
namespace {

using nlohmann::json;

FakeLlmRequest anthropic(json body, bool good_headers = true) {
  FakeLlmRequest r{"POST", "/v1/messages", {{"content-type", "application/json"}}, body.dump(), {}};
  if (good_headers) {
    r.headers.emplace_back("x-api-key", "k");
    r.headers.emplace_back("anthropic-version", "2023-06-01");
  }
  return r;
}

json valid_anthropic() {
  return {{"model", "m"},
          {"max_tokens", 10},
          {"tools", {{{"name", "pg_query"}, {"description", "d"}, {"input_schema", {{"type", "object"}}}}}},
          {"messages",
           {{{"role", "user"}, {"content", "q"}},
            {{"role", "assistant"},
             {"content",
              {{{"type", "tool_use"}, {"id", "t1"}, {"name", "pg_query"}, {"input", json::object()}}}}},
            {{"role", "user"},
             {"content", {{{"type", "tool_result"}, {"tool_use_id", "t1"}, {"content", "r"}}}}}}}};
}

bool mentions(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

TEST(FakeLlmValidation, AnthropicAcceptsValid) {
  auto v = FakeLlmServer::validate_anthropic(anthropic(valid_anthropic()));
  EXPECT_TRUE(v.empty()) << v.front();
}

TEST(FakeLlmValidation, AnthropicRejects) {
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(valid_anthropic(), false)), "x-api-key"));
  json b = valid_anthropic();
  b["messages"][2]["content"][0]["tool_use_id"] = "t2";
  auto v = FakeLlmServer::validate_anthropic(anthropic(b));
  EXPECT_TRUE(mentions(v, "does not match a tool_use id"));
  EXPECT_TRUE(mentions(v, "does not answer tool_use id 't1'"));
  b = valid_anthropic();
  b["messages"].erase(1);
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(b)), "roles alternate"));
  b = valid_anthropic();
  b["tools"][0]["name"] = "larder-db/pg_query";
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(b)), "must match"));
  b = valid_anthropic();
  b["tools"][0]["input_schema"] = {{"type", "string"}};
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(b)), "input_schema.type"));
  b = valid_anthropic();
  b.erase("max_tokens");
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(b)), "max_tokens"));
  b = valid_anthropic();
  b["messages"][0]["content"] = json::array({{{"type", "text"}, {"text", ""}}});
  EXPECT_TRUE(mentions(FakeLlmServer::validate_anthropic(anthropic(b)), "must not be empty"));
}

TEST(FakeLlmValidation, OpenAi) {
  json good = {
      {"model", "m"},
      {"messages",
       {{{"role", "system"}, {"content", "s"}},
        {{"role", "user"}, {"content", "q"}},
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls",
          {{{"id", "c1"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}}}}},
        {{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "r"}}}},
      {"tools",
       {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}}}}};
  FakeLlmRequest r{"POST", "/v1/chat/completions", {{"content-type", "application/json"}}, good.dump(), {}};
  auto v = FakeLlmServer::validate_openai(r);
  EXPECT_TRUE(v.empty()) << v.front();
  json bad = good;
  bad["messages"][3]["tool_call_id"] = "c9";
  r.body = bad.dump();
  EXPECT_TRUE(mentions(FakeLlmServer::validate_openai(r), "does not answer a pending tool call"));
  bad = good;
  bad["messages"][2]["tool_calls"][0]["function"]["arguments"] = json::object();
  r.body = bad.dump();
  EXPECT_TRUE(mentions(FakeLlmServer::validate_openai(r), "arguments as a JSON string"));
}

}  // namespace
}  // namespace larder::testing
