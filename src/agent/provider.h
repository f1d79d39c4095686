// Provider: one chat turn against an LLM API. AnthropicProvider speaks the Messages API,
// OpenAiProvider the (OpenAI-compatible) Chat Completions API; both map the neutral
// conversation (conversation.h) and share the retry policy below.
//
// Errors (Error::code):
//   llm.auth         401/403 — bad or missing API key; message carries the API's own text
//   llm.bad_request  400/404/413/422 — the API rejected the request (wrong model, ...)
//   llm.rate_limited 429 after all retries
//   llm.unavailable  5xx / 529 (overloaded) after all retries
//   llm.network      transport failure (refused, DNS, TLS); llm.timeout
//   llm.protocol     a 2xx reply we could not understand
#pragma once

#include "agent/conversation.h"
#include "agent/http.h"
#include "base/result.h"

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

namespace larder::agent {

enum class ProviderKind { Anthropic, OpenAi };

struct RetryPolicy {
  int max_attempts = 5;                        // total tries, including the first
  std::chrono::milliseconds base_delay{500};   // doubles each retry
  std::chrono::milliseconds max_delay{30000};  // cap for one wait (also caps retry-after)
  // How to wait; tests replace it to record the waits instead of sleeping.
  std::function<void(std::chrono::milliseconds)> sleep;
};

struct ProviderConfig {
  ProviderKind kind = ProviderKind::Anthropic;
  std::string base_url;  // "https://api.anthropic.com" / "https://api.openai.com/v1"
  std::string api_key;   // may be empty for local OpenAI-compatible servers
  std::string model;
  int max_tokens = 4096;
  HttpTimeouts timeouts;
  RetryPolicy retry;
};

std::string default_base_url(ProviderKind kind);
std::string default_model(ProviderKind kind);
Result<ProviderKind> parse_provider_kind(const std::string& name);
const char* to_string(ProviderKind kind);

class Provider {
 public:
  virtual ~Provider() = default;
  virtual Result<ChatResponse> complete(const ChatRequest& request) = 0;
  virtual ProviderKind kind() const = 0;
  virtual const std::string& model() const = 0;
};

// `http` defaults to a CurlHttpClient.
Result<std::unique_ptr<Provider>> make_provider(ProviderConfig config,
                                                std::unique_ptr<HttpClient> http = nullptr);

// ---- shared by both providers (exposed for tests) ----

// The wait before retry number `retry` (1-based): min(max_delay, base*2^(retry-1)) with full
// jitter in [50%, 100%], or the server's retry-after (seconds or HTTP date) when present.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, const HttpReply* reply,
                                        std::mt19937_64& rng);
bool is_retryable_status(int status);

// POSTs with retries; returns the first non-retryable reply (2xx or an error status mapped
// to an Error by `describe_error`). `cancel` aborts the request in flight and the wait
// before a retry ("llm.cancelled").
using ErrorDescriber = std::function<std::string(const HttpReply&)>;
Result<HttpReply> post_with_retries(HttpClient& http, const std::string& url, const HeaderList& headers,
                                    const std::string& body, const ProviderConfig& config,
                                    const ErrorDescriber& describe_error, std::mt19937_64& rng,
                                    const CancellationToken* cancel = nullptr);

}  // namespace larder::agent
