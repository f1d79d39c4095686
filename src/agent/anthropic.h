// Anthropic Messages API (POST {base}/v1/messages, headers x-api-key and
// anthropic-version: 2023-06-01). Tool calls are `tool_use` content blocks in assistant
// turns; our answers are `tool_result` blocks (same id) in the next user turn.
#pragma once

#include "agent/provider.h"

namespace larder::agent {

inline constexpr const char* kAnthropicVersion = "2023-06-01";

nlohmann::json anthropic_request_body(const ChatRequest& request);
Result<ChatResponse> parse_anthropic_response(const std::string& body);
// "authentication_error: invalid x-api-key" from {"type":"error","error":{...}}, or the body.
std::string anthropic_error_message(const HttpReply& reply);

class AnthropicProvider final : public Provider {
 public:
  AnthropicProvider(ProviderConfig config, std::unique_ptr<HttpClient> http);
  Result<ChatResponse> complete(const ChatRequest& request) override;
  ProviderKind kind() const override { return ProviderKind::Anthropic; }
  const std::string& model() const override { return config_.model; }

 private:
  ProviderConfig config_;
  std::unique_ptr<HttpClient> http_;
  std::mt19937_64 rng_;
};

}  // namespace larder::agent
