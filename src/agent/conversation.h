// The provider-neutral conversation: what the agent loop reads and writes. Each provider
// (Anthropic Messages, OpenAI Chat Completions) maps it to and from its own wire format, so
// the loop never sees a wire shape.
//
// Invariant: nothing in a Conversation is secret. The agent removes tokens, certificates and
// keys before a tool result becomes a ToolResult here (see redaction.h).
#pragma once

#include "base/cancellation.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace larder::agent {

// A tool as the model sees it. `name` is the model-facing name (unique per conversation);
// the agent maps it back to (server, tool).
struct ToolDefinition {
  std::string name;
  std::string description;
  nlohmann::json input_schema;  // a JSON Schema object
};

// The model asks for a tool. `input` is whatever the model sent; `input_error` is set when
// it was not a JSON object (e.g. OpenAI arguments that are not valid JSON) — the agent then
// answers with an error result instead of calling anything.
struct ToolCall {
  std::string id;
  std::string name;
  nlohmann::json input = nlohmann::json::object();
  std::string raw_arguments;  // OpenAI: the exact JSON string the model produced
  std::optional<std::string> input_error;
};

// Our answer to one ToolCall.
struct ToolResult {
  std::string tool_call_id;
  std::string content;  // text for the model
  bool is_error = false;
};

enum class Role { User, Assistant };

// One turn. A user turn carries text and/or tool results; an assistant turn carries text
// and/or tool calls.
struct Message {
  Role role = Role::User;
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::vector<ToolResult> tool_results;
};

enum class StopReason { EndTurn, ToolUse, MaxTokens, Refusal, Other };

struct ChatRequest {
  std::string model;
  std::string system;
  std::vector<Message> messages;
  std::vector<ToolDefinition> tools;
  int max_tokens = 4096;
  CancellationToken cancel;  // not sent: when it fires, the request and its retries stop ("llm.cancelled")
};

struct Usage {
  long input_tokens = 0;
  long output_tokens = 0;
};

struct ChatResponse {
  Message message;  // role == Assistant
  StopReason stop_reason = StopReason::Other;
  std::string raw_stop_reason;  // as the API spelled it ("end_turn", "tool_calls", ...)
  std::string model;
  Usage usage;
};

const char* to_string(StopReason reason);

}  // namespace larder::agent
