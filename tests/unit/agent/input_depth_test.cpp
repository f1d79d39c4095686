// Finding 3 on the agent's side: LLM API replies, tool arguments sent as text and the
// mcpServers file are refused unparsed when nested deeper than 64 levels (base/json.h).
#include "agent/anthropic.h"
#include "agent/config.h"
#include "agent/openai.h"

#include <gtest/gtest.h>

#include <string>

namespace larder::agent {
namespace {

using nlohmann::json;

std::string deep(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(AgentInputDepth, AnthropicReplyNestedTooDeepIsAProtocolError) {
  // content(2) → block(3) → input(4) → "x": 61 more levels = 65.
  const std::string over =
      R"({"content":[{"type":"tool_use","id":"t","name":"f","input":{"x":)" + deep(61) + "}}]}";
  auto r = parse_anthropic_response(over);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "llm.protocol");
  EXPECT_NE(r.error().message.find("JSON nested deeper than 64 levels"), std::string::npos)
      << r.error().message;
  const std::string at =
      R"({"content":[{"type":"tool_use","id":"t","name":"f","input":{"x":)" + deep(60) + "}}]}";
  ASSERT_TRUE(parse_anthropic_response(at).ok());
  EXPECT_FALSE(parse_anthropic_response(std::string(150000, '[')).ok());
  // The error-body reader gives the raw snippet instead.
  EXPECT_FALSE(anthropic_error_message(HttpReply{500, {}, deep(150000)}).empty());
}

TEST(AgentInputDepth, OpenAiReplyAndArgumentsNestedTooDeep) {
  auto r = parse_openai_response(R"({"choices":[{"message":{"content":)" + deep(100) + "}}]}");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("JSON nested deeper than 64 levels"), std::string::npos)
      << r.error().message;

  // Arguments arrive as a JSON string: a deep document inside it is parsed on its own, bounded.
  auto with_arguments = [](const std::string& arguments) {
    json body{{"choices",
               {{{"finish_reason", "tool_calls"},
                 {"message",
                  {{"role", "assistant"},
                   {"tool_calls",
                    {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", arguments}}}}}}}}}}}};
    auto reply = parse_openai_response(body.dump());
    EXPECT_TRUE(reply.ok());
    return reply->message.tool_calls.at(0);
  };
  auto call = with_arguments(R"({"x":)" + deep(150000) + "}");
  ASSERT_TRUE(call.input_error);
  EXPECT_NE(call.input_error->find("JSON nested deeper than 64 levels"), std::string::npos)
      << *call.input_error;
  EXPECT_FALSE(with_arguments(R"({"x":)" + deep(63) + "}").input_error);
  EXPECT_TRUE(with_arguments(R"({"x":)" + deep(64) + "}").input_error);
}

TEST(AgentInputDepth, McpServersFileNestedTooDeep) {
  auto r = parse_mcp_config(R"({"mcpServers":{"a":{"url":"https://x","headers":)" + deep(150000) + "}}}",
                            "mcp.json", "", Environment{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "mcp.json: JSON nested deeper than 64 levels");
}

}  // namespace
}  // namespace larder::agent
