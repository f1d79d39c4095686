#include "agent/openai.h"

#include "base/json.h"

namespace larder::agent {

using nlohmann::json;

namespace {

std::string snippet(const std::string& body) {
  return body.size() > 300 ? body.substr(0, 300) + "..." : body;
}

}  // namespace

json openai_request_body(const ChatRequest& request) {
  json body{{"model", request.model}, {"max_tokens", request.max_tokens}};
  json messages = json::array();
  if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
  for (const auto& m : request.messages) {
    if (m.role == Role::User) {
      // Chat Completions has no is_error flag: the text says so instead.
      for (const auto& r : m.tool_results)
        messages.push_back({{"role", "tool"},
                            {"tool_call_id", r.tool_call_id},
                            {"content", r.is_error ? "ERROR: " + r.content : r.content}});
      if (!m.text.empty()) messages.push_back({{"role", "user"}, {"content", m.text}});
    } else {
      json msg{{"role", "assistant"}, {"content", m.text.empty() ? json(nullptr) : json(m.text)}};
      if (!m.tool_calls.empty()) {
        json calls = json::array();
        for (const auto& c : m.tool_calls) {
          std::string args =
              !c.raw_arguments.empty() ? c.raw_arguments : (c.input.is_object() ? c.input.dump() : "{}");
          calls.push_back(
              {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", args}}}});
        }
        msg["tool_calls"] = std::move(calls);
      }
      messages.push_back(std::move(msg));
    }
  }
  body["messages"] = std::move(messages);
  if (!request.tools.empty()) {
    json tools = json::array();
    for (const auto& t : request.tools) {
      json params = t.input_schema.is_object() ? t.input_schema
                                               : json{{"type", "object"}, {"properties", json::object()}};
      tools.push_back(
          {{"type", "function"},
           {"function", {{"name", t.name}, {"description", t.description}, {"parameters", params}}}});
    }
    body["tools"] = std::move(tools);
  }
  return body;
}

Result<ChatResponse> parse_openai_response(const std::string& body) {
  auto parsed_doc = parse_json_bounded(body);
  if (!parsed_doc && parsed_doc.error().code == "json.too_deep")
    return make_error("llm.protocol", "chat completions reply refused: " + parsed_doc.error().message);
  if (!parsed_doc || !parsed_doc->is_object())
    return make_error("llm.protocol", "chat completions reply is not a JSON object: " + snippet(body));
  const json doc = std::move(*parsed_doc);
  if (!doc.contains("choices") || !doc["choices"].is_array() || doc["choices"].empty() ||
      !doc["choices"][0].is_object())
    return make_error("llm.protocol", "chat completions reply has no 'choices': " + snippet(body));
  const json& choice = doc["choices"][0];
  if (!choice.contains("message") || !choice["message"].is_object())
    return make_error("llm.protocol", "chat completions choice has no 'message' object");
  const json& msg = choice["message"];
  ChatResponse out;
  out.message.role = Role::Assistant;
  out.model = doc.contains("model") && doc["model"].is_string() ? doc["model"].get<std::string>() : "";
  if (msg.contains("content") && msg["content"].is_string())
    out.message.text = msg["content"].get<std::string>();
  if (msg.contains("tool_calls") && msg["tool_calls"].is_array()) {
    int n = 0;
    for (const auto& tc : msg["tool_calls"]) {
      ++n;
      if (!tc.is_object() || !tc.contains("function") || !tc["function"].is_object())
        return make_error("llm.protocol", "chat completions tool_call without a 'function' object");
      const json& fn = tc["function"];
      if (!fn.contains("name") || !fn["name"].is_string())
        return make_error("llm.protocol", "chat completions tool_call without a function name");
      ToolCall call;
      // Some local servers omit ids; the conversation still needs one to pair the result.
      call.id = tc.contains("id") && tc["id"].is_string() && !tc["id"].get<std::string>().empty()
                    ? tc["id"].get<std::string>()
                    : "call_" + std::to_string(n);
      call.name = fn["name"].get<std::string>();
      json parsed;
      if (fn.contains("arguments") && fn["arguments"].is_string()) {
        call.raw_arguments = fn["arguments"].get<std::string>();
        auto arguments = call.raw_arguments.empty() ? Result<json>(json::object())
                                                    : parse_json_bounded(call.raw_arguments);
        if (arguments) {
          parsed = std::move(*arguments);
        } else if (arguments.error().code == "json.too_deep") {
          call.input_error = "tool arguments refused: " + arguments.error().message;
        } else {
          call.input_error = "tool arguments are not valid JSON: " + snippet(call.raw_arguments);
        }
      } else if (fn.contains("arguments")) {
        parsed = fn["arguments"];
        call.raw_arguments = parsed.dump();
      } else {
        parsed = json::object();
      }
      if (!call.input_error) {
        if (parsed.is_object())
          call.input = std::move(parsed);
        else
          call.input_error = "tool arguments must be a JSON object, got " + std::string(parsed.type_name());
      }
      out.message.tool_calls.push_back(std::move(call));
    }
  }
  std::string finish = choice.contains("finish_reason") && choice["finish_reason"].is_string()
                           ? choice["finish_reason"].get<std::string>()
                           : "";
  out.raw_stop_reason = finish;
  if (!out.message.tool_calls.empty() &&
      (finish == "tool_calls" || finish == "function_call" || finish == "stop" || finish.empty()))
    out.stop_reason = StopReason::ToolUse;
  else if (finish == "stop")
    out.stop_reason = StopReason::EndTurn;
  else if (finish == "length")
    out.stop_reason = StopReason::MaxTokens;
  else if (finish == "content_filter")
    out.stop_reason = StopReason::Refusal;
  else
    out.stop_reason = StopReason::Other;
  if (doc.contains("usage") && doc["usage"].is_object()) {
    const auto& u = doc["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
      out.usage.input_tokens = u["prompt_tokens"].get<long>();
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
      out.usage.output_tokens = u["completion_tokens"].get<long>();
  }
  return out;
}

std::string openai_error_message(const HttpReply& reply) {
  auto parsed = parse_json_bounded(reply.body);
  const json doc = parsed ? std::move(*parsed) : json();
  if (doc.is_object() && doc.contains("error")) {
    const auto& e = doc["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object()) {
      std::string message =
          e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
      std::string type = e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : "";
      if (!type.empty() && !message.empty()) return type + ": " + message;
      if (!message.empty()) return message;
      if (!type.empty()) return type;
    }
  }
  return reply.body.empty() ? "(empty body)" : snippet(reply.body);
}

OpenAiProvider::OpenAiProvider(ProviderConfig config, std::unique_ptr<HttpClient> http)
    : config_(std::move(config)), http_(std::move(http)), rng_(std::random_device{}()) {}

Result<ChatResponse> OpenAiProvider::complete(const ChatRequest& request) {
  ChatRequest req = request;
  if (req.model.empty()) req.model = config_.model;
  if (req.max_tokens <= 0) req.max_tokens = config_.max_tokens;
  HeaderList headers{{"content-type", "application/json"}, {"accept", "application/json"}};
  if (!config_.api_key.empty()) headers.emplace_back("authorization", "Bearer " + config_.api_key);
  auto reply =
      post_with_retries(*http_, config_.base_url + "/chat/completions", headers,
                        openai_request_body(req).dump(-1, ' ', false, json::error_handler_t::replace),
                        config_, openai_error_message, rng_, &req.cancel);
  if (!reply.ok()) return reply.error();
  return parse_openai_response(reply->body);
}

}  // namespace larder::agent
