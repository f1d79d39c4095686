#include "agent/provider.h"

#include "agent/anthropic.h"
#include "agent/openai.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <thread>

namespace larder::agent {

const char* to_string(StopReason reason) {
  switch (reason) {
    case StopReason::EndTurn:
      return "end_turn";
    case StopReason::ToolUse:
      return "tool_use";
    case StopReason::MaxTokens:
      return "max_tokens";
    case StopReason::Refusal:
      return "refusal";
    case StopReason::Other:
      break;
  }
  return "other";
}

std::string default_base_url(ProviderKind kind) {
  return kind == ProviderKind::Anthropic ? "https://api.anthropic.com" : "https://api.openai.com/v1";
}

std::string default_model(ProviderKind kind) {
  return kind == ProviderKind::Anthropic ? "claude-sonnet-4-5" : "gpt-4o-mini";
}

Result<ProviderKind> parse_provider_kind(const std::string& name) {
  if (name == "anthropic") return ProviderKind::Anthropic;
  if (name == "openai") return ProviderKind::OpenAi;
  return make_error("config.provider", "unknown provider '" + name + "': use 'anthropic' or 'openai'");
}

const char* to_string(ProviderKind kind) {
  return kind == ProviderKind::Anthropic ? "anthropic" : "openai";
}

bool is_retryable_status(int status) {
  return status == 408 || status == 409 || status == 429 || status == 529 || (status >= 500 && status <= 599);
}

namespace {

// retry-after: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
std::optional<std::chrono::milliseconds> parse_retry_after(const HttpReply& reply) {
  if (auto ms = reply.header("retry-after-ms")) {
    try {
      double v = std::stod(*ms);
      if (v >= 0) return std::chrono::milliseconds(static_cast<long long>(v));
    } catch (...) {
    }
  }
  auto value = reply.header("retry-after");
  if (!value || value->empty()) return std::nullopt;
  if (std::all_of(value->begin(), value->end(),
                  [](unsigned char c) { return std::isdigit(c) || c == '.'; })) {
    try {
      return std::chrono::milliseconds(static_cast<long long>(std::stod(*value) * 1000));
    } catch (...) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  if (strptime(value->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto diff = std::chrono::duration_cast<std::chrono::milliseconds>(when - std::chrono::system_clock::now());
  return std::max(diff, std::chrono::milliseconds(0));
}

}  // namespace

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, const HttpReply* reply,
                                        std::mt19937_64& rng) {
  if (reply) {
    if (auto after = parse_retry_after(*reply)) return std::min(*after, policy.max_delay);
  }
  long long base = policy.base_delay.count();
  for (int i = 1; i < retry && base < policy.max_delay.count(); ++i) base *= 2;
  base = std::min<long long>(base, policy.max_delay.count());
  std::uniform_int_distribution<long long> jitter(base / 2, std::max<long long>(base / 2, base));
  return std::chrono::milliseconds(jitter(rng));
}

Result<HttpReply> post_with_retries(HttpClient& http, const std::string& url, const HeaderList& headers,
                                    const std::string& body, const ProviderConfig& config,
                                    const ErrorDescriber& describe_error, std::mt19937_64& rng,
                                    const CancellationToken* cancel) {
  const int attempts = std::max(1, config.retry.max_attempts);
  auto cancelled = [cancel] { return cancel != nullptr && cancel->cancelled(); };
  auto sleep = config.retry.sleep ? config.retry.sleep : [&cancelled](std::chrono::milliseconds d) {
    // In slices, so a cancel does not wait out the backoff.
    const auto until = std::chrono::steady_clock::now() + d;
    while (!cancelled() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  };
  for (int attempt = 1;; ++attempt) {
    if (cancelled()) return make_error("llm.cancelled", "the request to " + url + " was cancelled");
    auto reply = http.post(url, headers, body, config.timeouts, cancel);
    if (!reply.ok() && reply.error().code == "llm.cancelled") return reply.error();
    const bool last = attempt >= attempts;
    if (!reply.ok()) {
      // Connection failures are worth retrying (a restarting local server); timeouts are
      // not: the total timeout already bounded the wait.
      if (last || reply.error().code == "llm.timeout") return reply.error();
      auto wait = backoff_delay(config.retry, attempt, nullptr, rng);
      spdlog::warn("{}; retrying in {} ms (attempt {}/{})", reply.error().message, wait.count(), attempt + 1,
                   attempts);
      sleep(wait);
      continue;
    }
    int status = reply->status;
    if (status >= 200 && status < 300) return reply;
    if (is_retryable_status(status) && !last) {
      auto wait = backoff_delay(config.retry, attempt, &*reply, rng);
      spdlog::warn("{} answered HTTP {}; retrying in {} ms (attempt {}/{})", to_string(config.kind), status,
                   wait.count(), attempt + 1, attempts);
      sleep(wait);
      continue;
    }
    std::string detail = describe_error(*reply);
    std::string api = to_string(config.kind);
    std::string where = " (HTTP " + std::to_string(status) + " from " + url + ")";
    if (status == 401 || status == 403)
      return make_error(
          "llm.auth", api + " rejected the API key: " + detail + where + "; set " +
                          (config.kind == ProviderKind::Anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY") +
                          " to a valid key");
    if (status == 429)
      return make_error("llm.rate_limited", api + " rate limit still exceeded after " +
                                                std::to_string(attempts) + " attempts: " + detail + where);
    if (status >= 500)
      return make_error("llm.unavailable", api + " unavailable after " + std::to_string(attempts) +
                                               " attempts: " + detail + where);
    return make_error("llm.bad_request", api + " rejected the request: " + detail + where);
  }
}

Result<std::unique_ptr<Provider>> make_provider(ProviderConfig config, std::unique_ptr<HttpClient> http) {
  if (config.base_url.empty()) config.base_url = default_base_url(config.kind);
  while (!config.base_url.empty() && config.base_url.back() == '/') config.base_url.pop_back();
  if (config.base_url.rfind("http://", 0) != 0 && config.base_url.rfind("https://", 0) != 0)
    return make_error("config.base_url",
                      "base URL '" + config.base_url + "' must start with http:// or https://");
  if (config.model.empty()) config.model = default_model(config.kind);
  if (config.max_tokens <= 0) return make_error("config.max_tokens", "max_tokens must be positive");
  if (config.kind == ProviderKind::Anthropic && config.api_key.empty())
    return make_error("config.api_key",
                      "no Anthropic API key: set ANTHROPIC_API_KEY in the environment or .env "
                      "(or use --provider openai --base-url for a local model)");
  if (!http) http = std::make_unique<CurlHttpClient>();
  if (config.kind == ProviderKind::Anthropic)
    return std::unique_ptr<Provider>(std::make_unique<AnthropicProvider>(std::move(config), std::move(http)));
  return std::unique_ptr<Provider>(std::make_unique<OpenAiProvider>(std::move(config), std::move(http)));
}

}  // namespace larder::agent
