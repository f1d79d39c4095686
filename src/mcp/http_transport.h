// Server side of MCP over HTTP, on top of net::Server (which owns TLS/mTLS, parsing and
// limits). One handler serves:
//   - Streamable HTTP on `mcp_path` (POST → JSON or an SSE stream; GET → standalone SSE
//     stream; DELETE → end session), legacy revisions with Mcp-Session-Id sessions
//     (128-bit CSPRNG ids), resumable streams (event ids, Last-Event-ID replay, priming
//     event + retry), and the stateless 2026-07-28 revision (no session; MCP-Protocol-Version,
//     Mcp-Method, Mcp-Name and Mcp-Param-* headers validated against the body);
//   - the deprecated HTTP+SSE transport of 2024-11-05 (`sse_path` + `messages_path`).
// Origin and Host headers are checked on every request (DNS-rebinding protection).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/call_limiter.h"
#include "mcp/server.h"
#include "net/http.h"

namespace larder::mcp {

struct HttpTransportOptions {
  std::string mcp_path = "/mcp";
  std::string sse_path = "/sse";            // legacy HTTP+SSE; empty disables it
  std::string messages_path = "/messages";  // legacy HTTP+SSE POST endpoint
  // Origins allowed in an Origin header ("https://host:port"). Empty: only loopback origins
  // (localhost, 127.0.0.1, [::1], any port). A request without Origin is allowed.
  std::vector<std::string> allowed_origins;
  // Host header values allowed ("host" or "host:port"). Empty: loopback names only.
  std::vector<std::string> allowed_hosts;
  std::chrono::milliseconds session_idle_timeout{std::chrono::minutes(30)};
  std::size_t max_sessions = 10000;
  std::size_t max_streams_per_session = 4;     // concurrent open SSE responses per session
  std::size_t replay_events_per_stream = 512;  // kept for Last-Event-ID replay
  std::chrono::milliseconds retry{1000};       // SSE `retry:` sent in the priming event
  // Open an SSE stream for every request (else JSON unless the handler sends something
  // before its result).
  bool always_stream = false;
  // Per client certificate (PeerIdentity::cert_sha256): every request spends a token of its
  // certificate's bucket and holds a concurrency slot until it is answered (a JSON-RPC call:
  // until its result is sent, streamed or not). A refused request gets 429 with Retry-After
  // and a JSON-RPC error naming the limit ("too many concurrent calls for this client
  // certificate (limit 16)"), at the cost of a hash lookup. No limits by default; requests
  // without a peer (plain HTTP, loopback development) are never limited.
  CallLimiter::Options client_limits;
  // HTTP-level authorization (MCP authorization, 2025-06-18 and later): a handler that
  // rejects the credentials it was given (RequestContext::reject_credentials) has its answer
  // sent as HTTP 401 with `WWW-Authenticate: <challenge>` (when it is still a plain JSON
  // response; the body is the JSON-RPC answer as it would have been).
  // JSON documents served on GET at fixed paths outside MCP, such as RFC 9728 protected
  // resource metadata (/.well-known/oauth-protected-resource): path → body for the request.
  std::map<std::string, std::function<json(const net::HttpRequest& request)>> documents;
};

class HttpTransport {
 public:
  // A request's handler runs on the net worker that holds the request, at most
  // ServerOptions::handler_threads at once (the rest queue and their workers return). Give the
  // net server this many workers more than handler_threads: they serve what must not wait
  // behind handlers (notifications/cancelled, answers to server requests, stream closes).
  static constexpr std::size_t kSpareWorkers = 2;

  HttpTransport(Server& server, HttpTransportOptions options = {});
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // The net::HttpHandler to give net::Server::create. The transport must outlive the server.
  net::HttpHandler handler();
  void handle(const net::HttpRequest& request, std::shared_ptr<net::Responder> responder);

  std::size_t session_count() const;
  // Closes sessions idle for longer than the timeout (also done by a background thread).
  void expire_idle_sessions();
  // Requests admitted and refused by client_limits.
  CallLimiter::Stats client_limit_stats() const;
  // New client_limits from now on (a configuration reload); requests in flight keep their slots.
  void set_client_limits(const CallLimiter::Options& limits);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace larder::mcp
