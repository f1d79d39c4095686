// OpenAI-compatible Chat Completions (POST {base}/chat/completions, optional
// Authorization: Bearer). Works with OpenAI and local servers (llama.cpp, Ollama, vLLM).
// Tools are `functions`; tool calls arrive in message.tool_calls with arguments as a JSON
// *string*; our answers are role "tool" messages carrying tool_call_id.
#pragma once

#include "agent/provider.h"

namespace larder::agent {

nlohmann::json openai_request_body(const ChatRequest& request);
Result<ChatResponse> parse_openai_response(const std::string& body);
std::string openai_error_message(const HttpReply& reply);

class OpenAiProvider final : public Provider {
 public:
  OpenAiProvider(ProviderConfig config, std::unique_ptr<HttpClient> http);
  Result<ChatResponse> complete(const ChatRequest& request) override;
  ProviderKind kind() const override { return ProviderKind::OpenAi; }
  const std::string& model() const override { return config_.model; }

 private:
  ProviderConfig config_;
  std::unique_ptr<HttpClient> http_;
  std::mt19937_64 rng_;
};

}  // namespace larder::agent
