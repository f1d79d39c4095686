#include "agent/anthropic.h"

#include "base/json.h"

namespace larder::agent {

using nlohmann::json;

namespace {

json schema_object(const json& schema) {
  // The Messages API requires input_schema to be an object schema.
  if (!schema.is_object()) return json{{"type", "object"}, {"properties", json::object()}};
  json out = schema;
  if (!out.contains("type")) out["type"] = "object";
  return out;
}

std::string snippet(const std::string& body) {
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

}  // namespace

json anthropic_request_body(const ChatRequest& request) {
  json body{{"model", request.model}, {"max_tokens", request.max_tokens}};
  if (!request.system.empty()) body["system"] = request.system;
  if (!request.tools.empty()) {
    json tools = json::array();
    for (const auto& t : request.tools)
      tools.push_back({{"name", t.name},
                       {"description", t.description},
                       {"input_schema", schema_object(t.input_schema)}});
    body["tools"] = std::move(tools);
  }
  json messages = json::array();
  for (const auto& m : request.messages) {
    json content = json::array();
    if (m.role == Role::User) {
      // tool_result blocks must come first in the user turn that follows a tool_use turn.
      for (const auto& r : m.tool_results) {
        json block{{"type", "tool_result"}, {"tool_use_id", r.tool_call_id}, {"content", r.content}};
        if (r.is_error) block["is_error"] = true;
        content.push_back(std::move(block));
      }
      if (!m.text.empty()) content.push_back({{"type", "text"}, {"text", m.text}});
    } else {
      if (!m.text.empty()) content.push_back({{"type", "text"}, {"text", m.text}});
      for (const auto& c : m.tool_calls)
        content.push_back({{"type", "tool_use"},
                           {"id", c.id},
                           {"name", c.name},
                           {"input", c.input.is_object() ? c.input : json::object()}});
    }
    messages.push_back(
        {{"role", m.role == Role::User ? "user" : "assistant"}, {"content", std::move(content)}});
  }
  body["messages"] = std::move(messages);
  return body;
}

Result<ChatResponse> parse_anthropic_response(const std::string& body) {
  auto parsed = parse_json_bounded(body);
  if (!parsed && parsed.error().code == "json.too_deep")
    return make_error("llm.protocol", "Anthropic reply refused: " + parsed.error().message);
  if (!parsed || !parsed->is_object())
    return make_error("llm.protocol", "Anthropic reply is not a JSON object: " + snippet(body));
  const json doc = std::move(*parsed);
  if (!doc.contains("content") || !doc["content"].is_array())
    return make_error("llm.protocol", "Anthropic reply has no 'content' array: " + snippet(body));
  ChatResponse out;
  out.message.role = Role::Assistant;
  out.model = doc.value("model", "");
  for (const auto& block : doc["content"]) {
    if (!block.is_object()) return make_error("llm.protocol", "Anthropic content block is not an object");
    std::string type = block.value("type", "");
    if (type == "text") {
      if (!block.contains("text") || !block["text"].is_string())
        return make_error("llm.protocol", "Anthropic text block without a 'text' string");
      if (!out.message.text.empty()) out.message.text += "\n";
      out.message.text += block["text"].get<std::string>();
    } else if (type == "tool_use") {
      if (!block.contains("id") || !block["id"].is_string() || !block.contains("name") ||
          !block["name"].is_string())
        return make_error("llm.protocol", "Anthropic tool_use block without string 'id' and 'name'");
      ToolCall call;
      call.id = block["id"].get<std::string>();
      call.name = block["name"].get<std::string>();
      json input = block.contains("input") ? block["input"] : json();
      if (input.is_object()) {
        call.input = std::move(input);
      } else {
        call.input_error = "tool input must be a JSON object, got " + std::string(input.type_name());
      }
      call.raw_arguments = block.contains("input") ? block["input"].dump() : "";
      out.message.tool_calls.push_back(std::move(call));
    }
    // thinking / other block types carry nothing the loop needs.
  }
  std::string stop = doc.contains("stop_reason") && doc["stop_reason"].is_string()
                         ? doc["stop_reason"].get<std::string>()
                         : "";
  out.raw_stop_reason = stop;
  if (stop == "end_turn" || stop == "stop_sequence")
    out.stop_reason = StopReason::EndTurn;
  else if (stop == "tool_use")
    out.stop_reason = StopReason::ToolUse;
  else if (stop == "max_tokens")
    out.stop_reason = StopReason::MaxTokens;
  else if (stop == "refusal")
    out.stop_reason = StopReason::Refusal;
  else
    out.stop_reason = StopReason::Other;
  if (doc.contains("usage") && doc["usage"].is_object()) {
    const auto& u = doc["usage"];
    if (u.contains("input_tokens") && u["input_tokens"].is_number_integer())
      out.usage.input_tokens = u["input_tokens"].get<long>();
    if (u.contains("output_tokens") && u["output_tokens"].is_number_integer())
      out.usage.output_tokens = u["output_tokens"].get<long>();
  }
  return out;
}

std::string anthropic_error_message(const HttpReply& reply) {
  auto parsed = parse_json_bounded(reply.body);
  const json doc = parsed ? std::move(*parsed) : json();
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
    const auto& e = doc["error"];
    std::string type = e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : "error";
    std::string message =
        e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    return message.empty() ? type : type + ": " + message;
  }
  return reply.body.empty() ? "(empty body)" : snippet(reply.body);
}

AnthropicProvider::AnthropicProvider(ProviderConfig config, std::unique_ptr<HttpClient> http)
    : config_(std::move(config)), http_(std::move(http)), rng_(std::random_device{}()) {}

Result<ChatResponse> AnthropicProvider::complete(const ChatRequest& request) {
  ChatRequest req = request;
  if (req.model.empty()) req.model = config_.model;
  if (req.max_tokens <= 0) req.max_tokens = config_.max_tokens;
  HeaderList headers{{"content-type", "application/json"},
                     {"accept", "application/json"},
                     {"anthropic-version", kAnthropicVersion},
                     {"x-api-key", config_.api_key}};
  auto reply = post_with_retries(
      *http_, config_.base_url + "/v1/messages", headers,
      anthropic_request_body(req).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), config_,
      anthropic_error_message, rng_, &req.cancel);
  if (!reply.ok()) return reply.error();
  return parse_anthropic_response(reply->body);
}

}  // namespace larder::agent
