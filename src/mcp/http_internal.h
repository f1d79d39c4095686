// libmcp internal: what the HTTP transport's files share (http_transport.h is its public
// face). One file per endpoint, each readable alone:
//   http_transport.cpp    the public class, the router and the idle-session reaper
//   http_shared.cpp       answers, the Origin/Host check, the per-certificate call limits
//   http_sessions.cpp     session lookup, creation and expiry; DELETE (session end)
//   http_post.cpp         Streamable HTTP POST: content checks, choosing the era, session-era calls
//   http_post_modern.cpp  Streamable HTTP POST in the stateless revision: header checks, listen
//   http_get.cpp          Streamable HTTP GET: the standalone stream, Last-Event-ID resumption
//   http_legacy_sse.cpp   the HTTP+SSE transport of 2024-11-05: GET /sse, POST /messages
//   http_streams.h        resumable SSE streams and the Outbound channels over HTTP
// A handler runs on the net worker that holds its request (no hand-off to another pool), at
// most ServerOptions::handler_threads of them at once (HandlerSlots; the rest queue).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>

#include "mcp/handler_slots.h"
#include "mcp/http_transport.h"

namespace larder::mcp {

using net::HeaderList;

extern const HeaderList kSseHeaders;

net::HttpResponse json_response(int status, const json& body, HeaderList extra = {});
net::HttpResponse rpc_error_response(int status, int code, std::string message, const json& id = nullptr,
                                     std::optional<json> data = std::nullopt);
net::HttpResponse empty_response(int status, HeaderList extra = {});
// `v` without leading and trailing spaces and tabs (HTTP optional whitespace).
std::string trim(std::string_view v);
// The "method" of a message, or "" (never throws on a wrongly typed field).
std::string method_of(const json& body);

// One admitted request's hold on its client certificate's concurrency slot, given back once:
// when the call's handler returned or its answer is sent, whichever comes first (or when the
// last reference goes).
struct CallSlot {
  explicit CallSlot(CallLimiter::Permit p) : permit(std::move(p)) {}
  void release() {
    std::call_once(once, [this] { permit.release(); });
  }
  CallLimiter::Permit permit;
  std::once_flag once;
};
using Call = std::shared_ptr<CallSlot>;  // null: no limit applies

struct EventStream;

// Per-session transport state (legacy Streamable HTTP and HTTP+SSE sessions).
struct HttpSession {
  std::shared_ptr<Session> session;
  bool legacy_sse = false;
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<EventStream>> streams;
  std::shared_ptr<EventStream> standalone;
  std::atomic<int> open_streams{0};
};

// ================================================================ transport
struct HttpTransport::Impl : std::enable_shared_from_this<HttpTransport::Impl> {
  Server& server;
  HttpTransportOptions options;
  mutable std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<HttpSession>> sessions;
  std::thread reaper;
  std::mutex reaper_mutex;
  std::condition_variable reaper_cv;
  bool stopping = false;

  CallLimiter client_limiter;  // per client certificate (PeerIdentity::cert_sha256)
  HandlerSlots handlers;       // handlers running at once: ServerOptions::handler_threads

  Impl(Server& s, HttpTransportOptions o)
      : server(s),
        options(std::move(o)),
        client_limiter(options.client_limits),
        handlers(s.options().handler_threads) {}

  // ---- every request (http_transport.cpp, http_shared.cpp)
  void handle(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder);
  void route(const net::HttpRequest& req, const std::shared_ptr<net::Responder>& plain_responder);
  std::optional<net::HttpResponse> check_origin_and_host(const net::HttpRequest& req);
  std::variant<Call, net::HttpResponse> admit_call(const net::HttpRequest& req);
  Origin make_origin(const net::HttpRequest& req, std::shared_ptr<Outbound> related, const char* transport);

  // ---- sessions (http_sessions.cpp)
  std::shared_ptr<HttpSession> find(const std::string& id);
  std::shared_ptr<HttpSession> streamable_session(const net::HttpRequest& req, net::Responder& responder);
  std::shared_ptr<HttpSession> create(const std::shared_ptr<const net::PeerIdentity>& peer, bool legacy_sse);
  void drop(const std::string& id);
  bool at_capacity();
  void expire();
  void del(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder);

  // ---- Streamable HTTP POST (http_post.cpp, http_post_modern.cpp)
  void post(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder, const Call& call);
  void post_legacy(const net::HttpRequest& req, json body, std::shared_ptr<net::Responder> responder,
                   const Call& call);
  std::variant<std::shared_ptr<HttpSession>, net::HttpResponse> session_of_post(const net::HttpRequest& req,
                                                                                const json& body,
                                                                                bool is_initialize);
  void post_modern(const net::HttpRequest& req, const Message& m, std::shared_ptr<net::Responder> responder,
                   const Call& call);
  void listen(const net::HttpRequest& req, const Message& m, std::shared_ptr<net::Responder> responder);
  std::optional<std::string> check_param_headers(const net::HttpRequest& req, const Message& m);

  // ---- Streamable HTTP GET (http_get.cpp)
  void get(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder);

  // ---- HTTP+SSE, 2024-11-05 (http_legacy_sse.cpp)
  void legacy_sse_open(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder);
  void legacy_sse_post(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder,
                       const Call& call);
};

}  // namespace larder::mcp
