// larder::net::HttpClient — a small synchronous HTTPS (mTLS) client: one persistent
// connection, reconnecting on demand, with TLS session resumption across reconnects.
// Used by mcp::Client and by tests. Plain http:// is accepted only for loopback hosts.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "net/http.h"

namespace larder::net {

struct TlsClientConfig {
  std::string ca_file;              // CA bundle that must have issued the server certificate
  std::string cert_file, key_file;  // our client certificate and key (mTLS); may be empty
  std::string server_name;          // name/IP checked against the server cert (default: URL host)
  bool insecure_plain = false;      // must be true to use http:// (loopback only)
};

struct ClientResponse {
  int status = 0;
  HeaderList headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const;  // case-insensitive, first match
};

// Not thread-safe: one per thread/session.
class HttpClient {
 public:
  static larder::Result<std::unique_ptr<HttpClient>> create(std::string base_url /* https://host:port */,
                                                            TlsClientConfig tls);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  larder::Result<ClientResponse> request(std::string method, std::string target, HeaderList headers,
                                         std::string body,
                                         std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Streaming: calls on_headers once, then on_data for each body chunk as it arrives, until the
  // server ends the response, on_data returns false, or timeout. Used for SSE. Returns the
  // status in all three cases (a timeout after the headers arrived is a normal end: long-poll
  // style readers simply call again); an error only if the exchange failed or timed out
  // before the headers. After on_data returns false or a timeout the connection is dropped.
  larder::Result<int> request_stream(std::string method, std::string target, HeaderList headers,
                                     std::string body,
                                     std::function<void(const ClientResponse& head)> on_headers,
                                     std::function<bool(std::string_view chunk)> on_data,
                                     std::chrono::milliseconds timeout);
  // While set, every wait of an exchange (connect, send, headers, body) asks `check` every
  // 50 ms and, when it answers true, drops the connection and fails with "net.cancelled".
  // Runs on the calling thread; `check` must be cheap (an atomic load). Empty: no checks.
  void set_interrupt(std::function<bool()> check);
  bool session_resumed() const;  // TLS session resumption happened on the last connect
  void disconnect();             // drops the connection (the TLS session is kept for resumption)
  int connect_count() const;     // connections opened so far (for tests: keep-alive reuse)

  struct Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace larder::net
