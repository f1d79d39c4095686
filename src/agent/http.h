// The one HTTP operation providers need: POST a JSON body, get status/headers/body back.
// CurlHttpClient is the real one (libcurl: honours HTTPS_PROXY / NO_PROXY from the
// environment, connect and total timeouts). The interface exists so the retry logic can be
// exercised against the loopback fake LLM server and nothing else.
#pragma once

#include "base/cancellation.h"
#include "base/result.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::agent {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  HeaderList headers;  // names lower-cased
  std::string body;
  std::optional<std::string> header(std::string_view name) const;  // case-insensitive
};

struct HttpTimeouts {
  std::chrono::milliseconds connect{10000};
  std::chrono::milliseconds total{120000};
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Transport failures (DNS, refused, TLS, timeout) are errors with code "llm.network";
  // any HTTP status, including 4xx/5xx, is a reply. When `cancel` fires the request is
  // aborted (error "llm.cancelled").
  virtual Result<HttpReply> post(const std::string& url, const HeaderList& headers, const std::string& body,
                                 const HttpTimeouts& timeouts, const CancellationToken* cancel = nullptr) = 0;
};

class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient();
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;
  Result<HttpReply> post(const std::string& url, const HeaderList& headers, const std::string& body,
                         const HttpTimeouts& timeouts, const CancellationToken* cancel = nullptr) override;

 private:
  void* handle_;  // CURL*; reused so keep-alive connections survive between turns
};

}  // namespace larder::agent
