#include "mcp/http_transport.h"
#include "base/text.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include "mcp/encoding.h"
#include "mcp/sse.h"

namespace larder::mcp {

namespace {

using net::HeaderList;

const HeaderList kSseHeaders = {{"Content-Type", "text/event-stream"},
                                {"Cache-Control", "no-cache, no-transform"},
                                {"X-Accel-Buffering", "no"}};

net::HttpResponse json_response(int status, const json& body, HeaderList extra = {}) {
  net::HttpResponse r;
  r.status = status;
  r.headers = std::move(extra);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

net::HttpResponse rpc_error_response(int status, int code, std::string message, const json& id = nullptr,
                                     std::optional<json> data = std::nullopt) {
  return json_response(status, make_error_response(id, RpcError{code, std::move(message), std::move(data)}));
}

net::HttpResponse empty_response(int status, HeaderList extra = {}) {
  net::HttpResponse r;
  r.status = status;
  r.headers = std::move(extra);
  return r;
}

// host part of "host:port", "[v6]:port", "host".
std::string host_only(std::string_view host_port) {
  if (!host_port.empty() && host_port[0] == '[') {
    auto close = host_port.find(']');
    return ascii_lower(host_port.substr(0, close == std::string_view::npos ? host_port.size() : close + 1));
  }
  auto colon = host_port.rfind(':');
  if (colon != std::string_view::npos && host_port.find(':') == colon)
    return ascii_lower(host_port.substr(0, colon));
  return ascii_lower(host_port);
}

bool loopback_name(const std::string& host) {
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host == "::1";
}

std::string trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return std::string(v);
}

// Canonical, padded, standard-alphabet Base64 only (SEP-2243 rejects anything else).
std::optional<std::string> strict_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' ||
              (c == '=' && i + 2 >= text.size());
    if (!ok) return std::nullopt;
  }
  auto decoded = base64_decode(text);
  if (!decoded || base64_encode(*decoded) != text) return std::nullopt;
  return decoded;
}

// Decodes the `=?base64?...?=` sentinel form of Mcp-Name / Mcp-Param-* values.
std::optional<std::string> decode_header_value(const std::string& raw) {
  const std::string v = trim(raw);
  if (v.size() >= 11 && v.rfind("=?base64?", 0) == 0 && v.compare(v.size() - 2, 2, "?=") == 0) {
    return strict_base64(std::string_view(v).substr(9, v.size() - 11));
  }
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c > 0x7e) return std::nullopt;
  }
  return v;
}

// The "method" of a message, or "" (never throws on a wrongly typed field).
std::string method_of(const json& body) {
  if (!body.is_object()) return {};
  auto it = body.find("method");
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// HTTP status for a stateless-era JSON-RPC answer.
int modern_status(const json& response) {
  if (!response.is_object() || !response.contains("error")) return 200;
  const int code = response["error"].value("code", 0);
  if (code == error_code::kMethodNotFound) return 404;
  if (code == error_code::kHeaderMismatch || code == error_code::kUnsupportedProtocolVersion ||
      code == error_code::kMissingRequiredClientCapability) {
    return 400;
  }
  return 200;
}

}  // namespace

// ================================================================ streams
// One logical SSE stream: the response stream of a POST, or the standalone GET stream. It
// outlives HTTP connections so a client can resume it with Last-Event-ID.
struct EventStream {
  std::string id;
  std::mutex mutex;
  std::deque<std::pair<std::uint64_t, std::string>> log;  // (seq, formatted event)
  std::uint64_t next_seq = 1;
  std::shared_ptr<net::ResponseStream> attached;
  bool finished = false;  // the final response is in the log: close after delivering it
  std::size_t max_log = 512;

  // Appends an event (JSON message or priming) and delivers it if a connection is attached.
  void append(const std::string& data, std::chrono::milliseconds retry, bool priming = false) {
    std::lock_guard lock(mutex);
    std::uint64_t seq = next_seq++;
    std::string event = format_sse_event(id + "_" + std::to_string(seq), priming ? "" : "message", data,
                                         priming ? retry.count() : -1);
    log.emplace_back(seq, event);
    while (log.size() > max_log) log.pop_front();
    if (attached && !attached->write(event)) attached.reset();
  }
  void finish_and_close() {
    std::shared_ptr<net::ResponseStream> s;
    {
      std::lock_guard lock(mutex);
      finished = true;
      s = std::move(attached);
    }
    if (s) s->close();
  }
  void detach() {
    std::shared_ptr<net::ResponseStream> s;
    {
      std::lock_guard lock(mutex);
      s = std::move(attached);
    }
    if (s) s->close();
  }
  // Attaches a new connection, replaying events after `after_seq`.
  bool attach(std::shared_ptr<net::ResponseStream> stream, std::uint64_t after_seq) {
    std::shared_ptr<net::ResponseStream> old;
    bool close_now = false;
    {
      std::lock_guard lock(mutex);
      old = std::move(attached);
      for (const auto& [seq, event] : log) {
        if (seq > after_seq) stream->write(event);
      }
      if (finished) {
        close_now = true;
      } else {
        attached = stream;
      }
    }
    if (old) old->close();
    if (close_now) stream->close();
    return !close_now;
  }
  bool has_connection() {
    std::lock_guard lock(mutex);
    if (attached && attached->is_closed()) attached.reset();
    return attached != nullptr;
  }
};

// Per-session transport state (legacy Streamable HTTP and HTTP+SSE sessions).
struct HttpSession {
  std::shared_ptr<Session> session;
  bool legacy_sse = false;
  std::mutex mutex;
  std::unordered_map<std::string, std::shared_ptr<EventStream>> streams;
  std::shared_ptr<EventStream> standalone;
  std::atomic<int> open_streams{0};
};

// The general channel of a Streamable HTTP session: the standalone GET stream (kept in its
// log while no GET is attached, for replay).
class StandaloneChannel : public Outbound {
 public:
  StandaloneChannel(std::shared_ptr<EventStream> stream, std::chrono::milliseconds retry)
      : stream_(std::move(stream)), retry_(retry) {}
  bool send(const json& message) override {
    stream_->append(message.dump(-1, ' ', false, json::error_handler_t::replace), retry_);
    return true;
  }

 private:
  std::shared_ptr<EventStream> stream_;
  std::chrono::milliseconds retry_;
};

// The channel of a legacy HTTP+SSE session: `event: message` on the one SSE stream.
class LegacySseChannel : public Outbound {
 public:
  explicit LegacySseChannel(std::shared_ptr<net::ResponseStream> stream) : stream_(std::move(stream)) {}
  bool send(const json& message) override {
    return stream_->write(
        format_sse_event("", "message", message.dump(-1, ' ', false, json::error_handler_t::replace)));
  }

 private:
  std::shared_ptr<net::ResponseStream> stream_;
};

// The channel for one POSTed request: answers with JSON unless something has to be sent
// before the final response, in which case it upgrades to an SSE stream.
class RequestChannel : public Outbound {
 public:
  RequestChannel(std::shared_ptr<net::Responder> responder, std::shared_ptr<HttpSession> session,
                 HeaderList extra, const HttpTransportOptions& options, bool resumable, bool priming,
                 CancellationToken cancel_on_close)
      : responder_(std::move(responder)),
        session_(std::move(session)),
        extra_(std::move(extra)),
        retry_(options.retry),
        max_log_(options.replay_events_per_stream),
        max_streams_(options.max_streams_per_session),
        resumable_(resumable),
        priming_(priming),
        cancel_on_close_(std::move(cancel_on_close)) {}

  bool send(const json& message) override {
    std::lock_guard lock(mutex_);
    if (done_) return false;
    upgrade_locked();
    stream_->append(message.dump(-1, ' ', false, json::error_handler_t::replace), retry_);
    return true;
  }

  void start_stream() {
    std::lock_guard lock(mutex_);
    upgrade_locked();
  }

  // Ends the HTTP response now; later messages stay in the log for Last-Event-ID replay.
  void close_connection() {
    std::shared_ptr<EventStream> s;
    {
      std::lock_guard lock(mutex_);
      if (done_) return;
      upgrade_locked();
      s = stream_;
    }
    s->detach();
  }

  // Where the request's handler puts a credentials challenge (Origin::credentials_challenge).
  const std::shared_ptr<std::string>& challenge() const { return challenge_; }

  void finish(const std::optional<json>& response, int status = 200) {
    std::lock_guard lock(mutex_);
    if (done_) return;
    done_ = true;
    if (!stream_) {
      if (response && !challenge_->empty()) {
        HeaderList extra = extra_;
        extra.emplace_back("WWW-Authenticate", *challenge_);
        responder_->respond(json_response(401, *response, std::move(extra)));
      } else if (response) {
        responder_->respond(json_response(status, *response, extra_));
      } else {
        responder_->respond(empty_response(202, extra_));
      }
      return;
    }
    if (response) stream_->append(response->dump(-1, ' ', false, json::error_handler_t::replace), retry_);
    stream_->finish_and_close();
    if (session_ && !resumable_) {
      std::lock_guard l(session_->mutex);
      session_->streams.erase(stream_->id);
    }
  }

 private:
  void upgrade_locked() {
    if (stream_) return;
    stream_ = std::make_shared<EventStream>();
    stream_->id = random_id(8);
    stream_->max_log = max_log_;
    HeaderList headers = kSseHeaders;
    headers.insert(headers.end(), extra_.begin(), extra_.end());
    auto http = responder_->start_stream(200, std::move(headers));
    if (session_) {
      session_->open_streams++;
      std::weak_ptr<HttpSession> weak = session_;
      CancellationToken cancel = cancel_on_close_;
      bool cancel_on_close = !resumable_;
      http->on_close([weak, cancel, cancel_on_close] {
        if (auto s = weak.lock()) s->open_streams--;
        if (cancel_on_close) cancel.cancel();
      });
      if (resumable_) {
        std::lock_guard l(session_->mutex);
        session_->streams[stream_->id] = stream_;
      }
    } else {
      CancellationToken cancel = cancel_on_close_;
      http->on_close([cancel] { cancel.cancel(); });
    }
    stream_->attach(http, 0);
    if (priming_) stream_->append("", retry_, /*priming=*/true);
  }

  std::mutex mutex_;
  std::shared_ptr<net::Responder> responder_;
  std::shared_ptr<HttpSession> session_;
  HeaderList extra_;
  std::chrono::milliseconds retry_;
  std::size_t max_log_;
  std::size_t max_streams_;
  bool resumable_;
  bool priming_;
  CancellationToken cancel_on_close_;
  std::shared_ptr<std::string> challenge_ = std::make_shared<std::string>();
  std::shared_ptr<EventStream> stream_;
  bool done_ = false;
};

namespace {

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

// Gives the slot back before the answer leaves, so a client that sends its next request as
// soon as it reads this one is not refused for the call it just finished.
class ReleasingResponder final : public net::Responder {
 public:
  ReleasingResponder(std::shared_ptr<net::Responder> inner, Call call)
      : inner_(std::move(inner)), call_(std::move(call)) {}
  void respond(net::HttpResponse response) override {
    call_->release();
    inner_->respond(std::move(response));
  }
  std::shared_ptr<net::ResponseStream> start_stream(int status, HeaderList headers) override {
    return inner_->start_stream(status, std::move(headers));
  }

 private:
  std::shared_ptr<net::Responder> inner_;
  Call call_;
};

}  // namespace

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

  Impl(Server& s, HttpTransportOptions o)
      : server(s), options(std::move(o)), client_limiter(options.client_limits) {}

  std::shared_ptr<HttpSession> find(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : it->second;
  }

  void drop(const std::string& id) {
    std::shared_ptr<HttpSession> hs;
    {
      std::lock_guard lock(mutex);
      auto it = sessions.find(id);
      if (it == sessions.end()) return;
      hs = it->second;
      sessions.erase(it);
    }
    server.remove_session(id);
    std::vector<std::shared_ptr<EventStream>> streams;
    {
      std::lock_guard lock(hs->mutex);
      for (auto& [k, s] : hs->streams) streams.push_back(s);
      if (hs->standalone) streams.push_back(hs->standalone);
      hs->streams.clear();
    }
    for (auto& s : streams) s->finish_and_close();
  }

  std::shared_ptr<HttpSession> create(const std::shared_ptr<const net::PeerIdentity>& peer, bool legacy_sse) {
    auto hs = std::make_shared<HttpSession>();
    hs->legacy_sse = legacy_sse;
    hs->session = server.create_session(peer);
    std::lock_guard lock(mutex);
    sessions[hs->session->id()] = hs;
    return hs;
  }

  bool at_capacity() {
    std::lock_guard lock(mutex);
    return sessions.size() >= options.max_sessions;
  }

  void expire() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> idle;
    {
      std::lock_guard lock(mutex);
      for (auto& [id, hs] : sessions) {
        if (hs->open_streams.load() > 0) continue;
        if (now - hs->session->last_activity() > options.session_idle_timeout) idle.push_back(id);
      }
    }
    for (auto& id : idle) {
      spdlog::info("mcp: session {}… expired after {} ms idle", id.substr(0, 8),
                   options.session_idle_timeout.count());
      drop(id);
    }
  }

  // ---- request checks shared by every endpoint
  std::optional<net::HttpResponse> check_origin_and_host(const net::HttpRequest& req) {
    if (auto origin = req.header("Origin")) {
      bool ok = false;
      if (!options.allowed_origins.empty()) {
        ok = std::find(options.allowed_origins.begin(), options.allowed_origins.end(), *origin) !=
             options.allowed_origins.end();
      } else {
        std::string o = ascii_lower(*origin);
        for (const char* scheme : {"http://", "https://"}) {
          if (o.rfind(scheme, 0) == 0)
            ok = ok || loopback_name(host_only(o.substr(std::string_view(scheme).size())));
        }
      }
      if (!ok)
        return rpc_error_response(403, error_code::kConnectionClosed,
                                  "Forbidden: Origin '" + *origin + "' is not allowed");
    }
    auto host = req.header("Host");
    if (!host)
      return rpc_error_response(400, error_code::kConnectionClosed, "Bad Request: missing Host header");
    bool ok = false;
    if (!options.allowed_hosts.empty()) {
      std::string h = ascii_lower(*host);
      for (const auto& allowed : options.allowed_hosts) {
        std::string a = ascii_lower(allowed);
        ok = ok || a == h || a == host_only(h);
      }
    } else {
      ok = loopback_name(host_only(*host));
    }
    if (!ok)
      return rpc_error_response(403, error_code::kConnectionClosed,
                                "Forbidden: Host '" + *host + "' is not allowed");
    return std::nullopt;
  }

  // The per-client-certificate limits, before anything else is looked at: every request
  // spends a token of its certificate's bucket and holds one of its concurrency slots until
  // it is answered (a JSON-RPC call: until its result is sent). A refusal costs the worker
  // a hash lookup: 429, Retry-After, and a JSON-RPC error naming the limit. Requests without
  // a peer (plain HTTP on loopback) are not limited.
  std::variant<Call, net::HttpResponse> admit_call(const net::HttpRequest& req) {
    if (!client_limiter.enabled() || !req.peer) return Call();
    auto permit = client_limiter.try_acquire(req.peer->cert_sha256);
    if (permit) return std::make_shared<CallSlot>(std::move(permit));
    const auto retry_s = std::max<int64_t>(1, (permit.retry_after().count() + 999) / 1000);
    const bool concurrency = permit.refused_by() == CallLimiter::Limit::kConcurrency;
    spdlog::debug("mcp: refused a request of client certificate {}…: {}", req.peer->cert_sha256.substr(0, 16),
                  client_limiter.describe(permit, "it"));
    auto r = rpc_error_response(
        429, error_code::kConnectionClosed,
        "Too Many Requests: " + client_limiter.describe(permit, "this client certificate"), nullptr,
        json{{"limit", concurrency ? "concurrent_calls_per_client" : "calls_per_second_per_client"},
             {"retryAfterSeconds", retry_s}});
    r.headers.emplace_back("Retry-After", std::to_string(retry_s));
    return r;
  }

  Origin make_origin(const net::HttpRequest& req, std::shared_ptr<Outbound> related, const char* transport) {
    Origin o;
    o.peer = req.peer;
    o.headers = req.headers;
    o.related = std::move(related);
    o.transport = transport;
    return o;
  }

  void handle(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
    try {
      route(req, responder);
    } catch (const std::exception& e) {
      // Never let hostile input take the handler down; answer once (later calls are ignored).
      spdlog::warn("mcp: {} {} failed: {}", req.method, req.path, e.what());
      responder->respond(
          rpc_error_response(400, error_code::kInvalidRequest, std::string("Bad Request: ") + e.what()));
    }
  }

  void route(const net::HttpRequest& req, const std::shared_ptr<net::Responder>& plain_responder) {
    auto admitted = admit_call(req);
    if (auto* refused = std::get_if<net::HttpResponse>(&admitted)) {
      return plain_responder->respond(std::move(*refused));
    }
    // The slot is given back before the answer is sent (a call's, once its handler returned).
    const Call call = std::get<Call>(std::move(admitted));
    const std::shared_ptr<net::Responder> responder =
        call ? std::make_shared<ReleasingResponder>(plain_responder, call) : plain_responder;
    if (auto refused = check_origin_and_host(req)) return responder->respond(std::move(*refused));
    if (auto doc = options.documents.find(req.path); doc != options.documents.end()) {
      if (req.method != "GET") return responder->respond(empty_response(405, {{"Allow", "GET"}}));
      return responder->respond(json_response(200, doc->second(req), {{"Cache-Control", "no-store"}}));
    }
    if (req.path == options.mcp_path) {
      if (req.method == "POST") return post(req, std::move(responder), call);
      if (req.method == "GET") return get(req, std::move(responder));
      if (req.method == "DELETE") return del(req, std::move(responder));
      return responder->respond(empty_response(405, {{"Allow", "GET, POST, DELETE"}}));
    }
    if (!options.sse_path.empty() && req.path == options.sse_path) {
      if (req.method != "GET") return responder->respond(empty_response(405, {{"Allow", "GET"}}));
      return legacy_sse_open(req, std::move(responder));
    }
    if (!options.sse_path.empty() && req.path == options.messages_path) {
      if (req.method != "POST") return responder->respond(empty_response(405, {{"Allow", "POST"}}));
      return legacy_sse_post(req, std::move(responder), call);
    }
    net::HttpResponse r;
    r.status = 404;
    r.headers = {{"Content-Type", "text/plain"}};
    r.body = "not found\n";
    responder->respond(std::move(r));
  }

  // ---- Streamable HTTP: POST
  void post(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder, const Call& call) {
    auto ct = req.header("Content-Type");
    if (!ct || ascii_lower(*ct).find("application/json") == std::string::npos) {
      return responder->respond(rpc_error_response(
          415, error_code::kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json"));
    }
    if (auto accept = req.header("Accept")) {
      std::string a = ascii_lower(*accept);
      if (a.find("application/json") == std::string::npos &&
          a.find("text/event-stream") == std::string::npos && a.find("*/*") == std::string::npos) {
        return responder->respond(
            rpc_error_response(406, error_code::kInvalidRequest,
                               "Not Acceptable: Accept must list application/json and text/event-stream"));
      }
    }
    auto parsed = parse_json(req.body, server.options().max_json_depth);
    if (auto* err = std::get_if<RpcError>(&parsed)) {
      server.report_refused(make_origin(req, nullptr, "streamable-http"), *err);
      return responder->respond(json_response(400, make_error_response(nullptr, *err)));
    }
    json body = std::move(std::get<json>(parsed));

    // Modern (stateless) era: the MCP-Protocol-Version header names a modern revision, or
    // the request carries a protocol version in _meta.
    auto pv = req.header("MCP-Protocol-Version");
    const bool modern_header = pv && !is_legacy_version(trim(*pv));
    bool modern_body = false;
    if (body.is_object()) {
      auto classified = classify(body);
      if (auto* m = std::get_if<Message>(&classified)) {
        modern_body = m->is_request() && Server::is_modern_request(*m);
        if (modern_header || modern_body) {
          if (!m->is_request()) return responder->respond(empty_response(m->is_notification() ? 202 : 400));
          return post_modern(req, *m, std::move(responder), call);
        }
      }
    }
    if (modern_header && !req.header("Mcp-Session-Id")) {
      // A modern header on something that is not a single valid request.
      json id = body.is_object() && body.contains("id") ? body["id"] : json();
      return responder->respond(rpc_error_response(400, error_code::kInvalidRequest,
                                                   "Invalid Request: expected one JSON-RPC request", id));
    }
    post_legacy(req, std::move(body), std::move(responder), call);
  }

  void post_modern(const net::HttpRequest& req, const Message& m, std::shared_ptr<net::Responder> responder,
                   const Call& call) {
    auto mismatch = [&](std::string why) {
      responder->respond(
          rpc_error_response(400, error_code::kHeaderMismatch, "Header mismatch: " + why, m.id));
    };
    auto invalid_meta = [&](std::string why) {
      responder->respond(rpc_error_response(400, error_code::kInvalidParams, "Invalid params: " + why, m.id));
    };
    const json* meta = nullptr;
    if (m.params.is_object()) {
      if (auto it = m.params.find("_meta"); it != m.params.end() && it->is_object()) meta = &*it;
    }
    if (!meta) return invalid_meta("params._meta is required in protocol revision 2026-07-28");
    auto mv = meta->find(meta_key::kProtocolVersion);
    if (mv == meta->end() || !mv->is_string())
      return invalid_meta("_meta[\"" + std::string(meta_key::kProtocolVersion) + "\"] is required");
    auto mc = meta->find(meta_key::kClientCapabilities);
    if (mc == meta->end() || !mc->is_object()) {
      return invalid_meta("_meta[\"" + std::string(meta_key::kClientCapabilities) +
                          "\"] is required (an object)");
    }
    const std::string version = mv->get<std::string>();
    auto pv = req.header("MCP-Protocol-Version");
    if (!pv) return mismatch("the MCP-Protocol-Version header is required");
    if (trim(*pv) != version)
      return mismatch("MCP-Protocol-Version header '" + trim(*pv) + "' does not match _meta version '" +
                      version + "'");
    if (!server.version_enabled(version) || !is_modern_version(version)) {
      return responder->respond(
          rpc_error_response(400, error_code::kUnsupportedProtocolVersion, "Unsupported protocol version",
                             m.id, json{{"supported", server.enabled_versions()}, {"requested", version}}));
    }
    auto method = req.header("Mcp-Method");
    if (!method) return mismatch("the Mcp-Method header is required");
    if (trim(*method) != m.method)
      return mismatch("Mcp-Method header '" + trim(*method) + "' does not match body method '" + m.method +
                      "'");
    if (m.method == "tools/call" || m.method == "resources/read" || m.method == "prompts/get") {
      const char* field = m.method == "resources/read" ? "uri" : "name";
      auto name = req.header("Mcp-Name");
      if (!name) return mismatch("the Mcp-Name header is required for " + m.method);
      auto decoded = decode_header_value(*name);
      if (!decoded) return mismatch("the Mcp-Name header value is malformed");
      const json* body_value = m.params.is_object() && m.params.contains(field) ? &m.params[field] : nullptr;
      if (!body_value || !body_value->is_string() || body_value->get<std::string>() != *decoded) {
        return mismatch("Mcp-Name header value '" + *decoded + "' does not match body " + field);
      }
      if (m.method == "tools/call") {
        if (auto why = check_param_headers(req, m)) return mismatch(*why);
      }
    }
    if (m.method == "subscriptions/listen") return listen(req, m, std::move(responder));
    if (!server.knows_modern_method(m.method)) {
      return responder->respond(
          rpc_error_response(404, error_code::kMethodNotFound, "Method not found: " + m.method, m.id));
    }
    CancellationToken cancel;
    const bool stream = options.always_stream;
    auto channel =
        std::make_shared<RequestChannel>(responder, nullptr, HeaderList{}, options, /*resumable=*/false,
                                         /*priming=*/false, cancel);
    if (stream) channel->start_stream();
    Origin origin = make_origin(req, channel, "streamable-http");
    origin.cancellation = cancel;
    origin.credentials_challenge = channel->challenge();
    // The handler runs here, on the net worker that holds the request (one hop).
    json r = server.handle_request(nullptr, m, origin);
    if (call) call->release();
    const int status = modern_status(r);
    channel->finish(r.is_null() ? std::nullopt : std::optional<json>(std::move(r)), status);
  }

  // subscriptions/listen (2026-07-28): a long-lived SSE response carrying the change
  // notifications the client opted in to, each tagged with the subscription id.
  void listen(const net::HttpRequest&, const Message& m, std::shared_ptr<net::Responder> responder) {
    json filter = m.params.value("notifications", json());
    if (!filter.is_object()) {
      return responder->respond(
          rpc_error_response(400, error_code::kInvalidParams,
                             "Invalid params: params.notifications (an object) is required", m.id));
    }
    json caps = server.capabilities();
    json honored = json::object();
    for (const char* k : {"toolsListChanged", "promptsListChanged", "resourcesListChanged"}) {
      const char* cap = k[0] == 't' ? "tools" : k[0] == 'p' ? "prompts" : "resources";
      if (filter.contains(k) && filter[k].is_boolean() && filter[k].get<bool>() && caps.contains(cap))
        honored[k] = true;
    }
    std::vector<std::string> uris;
    if (auto r = filter.find("resourceSubscriptions");
        r != filter.end() && r->is_array() && caps.contains("resources")) {
      for (const auto& u : *r) {
        if (u.is_string()) uris.push_back(u.get<std::string>());
      }
      honored["resourceSubscriptions"] = uris;
    }
    auto stream = responder->start_stream(200, kSseHeaders);
    const json subscription_id = m.id;
    auto tagged = [subscription_id](std::string_view method, json params) {
      if (!params.is_object()) params = json::object();
      params["_meta"][std::string(meta_key::kSubscriptionId)] = subscription_id;
      return format_sse_event(
          "", "message",
          make_notification(method, params).dump(-1, ' ', false, json::error_handler_t::replace));
    };
    stream->write(tagged("notifications/subscriptions/acknowledged", json{{"notifications", honored}}));
    auto id = server.add_change_listener([stream, honored, uris, tagged](std::string_view method,
                                                                         const json& params) {
      bool wanted =
          (method == "notifications/tools/list_changed" && honored.value("toolsListChanged", false)) ||
          (method == "notifications/prompts/list_changed" && honored.value("promptsListChanged", false)) ||
          (method == "notifications/resources/list_changed" && honored.value("resourcesListChanged", false));
      if (method == "notifications/resources/updated") {
        const std::string uri = params.value("uri", "");
        wanted = std::find(uris.begin(), uris.end(), uri) != uris.end();
      }
      if (wanted) stream->write(tagged(method, params));
    });
    std::weak_ptr<Impl> weak = shared_from_this();
    stream->on_close([weak, id] {
      if (auto self = weak.lock()) self->server.remove_change_listener(id);
    });
  }

  // Mcp-Param-{Name} headers must match the arguments a tool's schema marks x-mcp-header.
  std::optional<std::string> check_param_headers(const net::HttpRequest& req, const Message& m) {
    const std::string tool_name =
        m.params.contains("name") && m.params["name"].is_string() ? m.params["name"].get<std::string>() : "";
    json schema;
    for (const auto& t : server.tools()) {
      if (t.name == tool_name) schema = t.input_schema;
    }
    if (!schema.is_object()) return std::nullopt;
    json args = m.params.contains("arguments") && m.params["arguments"].is_object() ? m.params["arguments"]
                                                                                    : json::object();
    // Walk properties chains only (x-mcp-header is valid only there).
    std::vector<std::pair<std::vector<std::string>, const json*>> stack{{{}, &schema}};
    while (!stack.empty()) {
      auto [path, node] = stack.back();
      stack.pop_back();
      auto props = node->find("properties");
      if (props == node->end() || !props->is_object()) continue;
      for (auto& [key, sub] : props->items()) {
        if (!sub.is_object()) continue;
        std::vector<std::string> sub_path = path;
        sub_path.push_back(key);
        if (auto h = sub.find("x-mcp-header"); h != sub.end() && h->is_string()) {
          const json* value = &args;
          for (const auto& p : sub_path) {
            if (!value->is_object() || !value->contains(p)) {
              value = nullptr;
              break;
            }
            value = &(*value)[p];
          }
          const std::string header_name = "Mcp-Param-" + h->get<std::string>();
          auto header = req.header(header_name);
          if (!value || value->is_null()) {
            continue;  // the header is not expected; a stray one is ignored
          }
          if (!header) return header_name + " header is required (the argument is present in the body)";
          auto decoded = decode_header_value(*header);
          if (!decoded) return header_name + " header value contains invalid characters";
          std::string expected;
          if (value->is_string()) {
            expected = value->get<std::string>();
          } else if (value->is_boolean()) {
            expected = value->get<bool>() ? "true" : "false";
          } else if (value->is_number()) {
            // Compare numerically: "42" and 42.0 are equal.
            char* end = nullptr;
            double h_num = std::strtod(decoded->c_str(), &end);
            if (end == decoded->c_str() || *end != '\0' || h_num != value->get<double>()) {
              return header_name + " header value '" + *decoded + "' does not match the body";
            }
            continue;
          } else {
            return header_name + " designates a non-primitive argument";
          }
          if (*decoded != expected)
            return header_name + " header value '" + *decoded + "' does not match the body";
        }
        stack.push_back({sub_path, &sub});
      }
    }
    return std::nullopt;
  }

  void post_legacy(const net::HttpRequest& req, json body, std::shared_ptr<net::Responder> responder,
                   const Call& call) {
    if (auto pv = req.header("MCP-Protocol-Version");
        pv && !is_legacy_version(*pv) && !is_modern_version(*pv)) {
      return responder->respond(rpc_error_response(
          400, error_code::kInvalidRequest, "Bad Request: unsupported MCP-Protocol-Version '" + *pv + "'"));
    }
    auto sid = req.header("Mcp-Session-Id");
    const bool is_initialize = body.is_object() && method_of(body) == "initialize" && body.contains("id");
    std::shared_ptr<HttpSession> hs;
    HeaderList extra;
    if (is_initialize && !sid) {
      if (at_capacity()) {
        expire();
        if (at_capacity())
          return responder->respond(rpc_error_response(503, error_code::kConnectionClosed,
                                                       "Service Unavailable: too many sessions"));
      }
      hs = create(req.peer, false);
      auto standalone = std::make_shared<EventStream>();
      standalone->id = random_id(8);
      standalone->max_log = options.replay_events_per_stream;
      {
        std::lock_guard lock(hs->mutex);
        hs->standalone = standalone;
        hs->streams[standalone->id] = standalone;
      }
      hs->session->set_general(std::make_shared<StandaloneChannel>(standalone, options.retry));
      extra.emplace_back("Mcp-Session-Id", hs->session->id());
    } else {
      if (!sid) {
        json id = body.is_object() && body.contains("id") ? body["id"] : json();
        return responder->respond(
            rpc_error_response(400, error_code::kConnectionClosed,
                               "Bad Request: Mcp-Session-Id header is required (send initialize first, "
                               "or use the stateless revision's _meta)",
                               id));
      }
      hs = find(*sid);
      if (!hs || hs->legacy_sse)
        return responder->respond(rpc_error_response(404, error_code::kRequestTimeout, "Session not found"));
      if (is_initialize) {
        return responder->respond(rpc_error_response(400, error_code::kInvalidRequest,
                                                     "Bad Request: the session is already initialized"));
      }
    }
    hs->session->touch();
    // A batch the session may not send, or too large a one: refused before any work is queued.
    if (auto refused = server.refuse_batch(hs->session, body, make_origin(req, nullptr, "streamable-http"))) {
      return responder->respond(json_response(400, *refused, extra));
    }

    const bool has_request =
        body.is_array() ? std::any_of(body.begin(), body.end(),
                                      [](const json& j) {
                                        return j.is_object() && j.contains("method") && j.contains("id");
                                      })
                        : (body.is_object() && body.contains("method") && body.contains("id"));

    if (!has_request) {
      // Notifications and responses: handled here, answered 202.
      auto r = server.handle(hs->session, body, make_origin(req, nullptr, "streamable-http"));
      if (r) {
        // Only malformed input produces an answer here.
        return responder->respond(json_response(400, *r, extra));
      }
      return responder->respond(empty_response(202, extra));
    }

    const std::string version =
        hs->session->initialized() ? hs->session->protocol_version() : std::string(kVersion2025_11_25);
    const bool priming = version >= kVersion2025_11_25;
    auto channel = std::make_shared<RequestChannel>(responder, hs, extra, options, /*resumable=*/true,
                                                    priming, CancellationToken());
    if (options.always_stream && !body.is_array()) channel->start_stream();
    Origin origin = make_origin(req, channel, "streamable-http");
    origin.credentials_challenge = channel->challenge();
    std::weak_ptr<RequestChannel> weak = channel;
    origin.close_stream = [weak] {
      if (auto c = weak.lock()) c->close_connection();
    };
    // The handler runs here, on the net worker that holds the request (one hop).
    auto r = server.handle(hs->session, body, origin);
    if (is_initialize && (!r || !r->contains("result"))) drop(hs->session->id());
    if (call) call->release();
    channel->finish(r);
  }

  // ---- Streamable HTTP: GET (standalone stream, or resume with Last-Event-ID)
  void get(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
    auto accept = req.header("Accept");
    if (!accept || ascii_lower(*accept).find("text/event-stream") == std::string::npos) {
      return responder->respond(rpc_error_response(406, error_code::kInvalidRequest,
                                                   "Not Acceptable: GET needs Accept: text/event-stream"));
    }
    auto sid = req.header("Mcp-Session-Id");
    if (!sid)
      return responder->respond(rpc_error_response(400, error_code::kConnectionClosed,
                                                   "Bad Request: Mcp-Session-Id header is required"));
    auto hs = find(*sid);
    if (!hs || hs->legacy_sse)
      return responder->respond(rpc_error_response(404, error_code::kRequestTimeout, "Session not found"));
    hs->session->touch();
    if (static_cast<std::size_t>(hs->open_streams.load()) >= options.max_streams_per_session) {
      return responder->respond(rpc_error_response(
          429, error_code::kConnectionClosed, "Too Many Requests: too many open streams for this session"));
    }
    std::shared_ptr<EventStream> target;
    std::uint64_t after = 0;
    if (auto last = req.header("Last-Event-ID")) {
      auto underscore = last->rfind('_');
      if (underscore != std::string::npos) {
        std::lock_guard lock(hs->mutex);
        auto it = hs->streams.find(last->substr(0, underscore));
        if (it != hs->streams.end()) {
          target = it->second;
          try {
            after = std::stoull(last->substr(underscore + 1));
          } catch (const std::exception&) {
            target = nullptr;
          }
        }
      }
      if (!target)
        return responder->respond(
            rpc_error_response(404, error_code::kInvalidRequest, "Unknown Last-Event-ID"));
    } else {
      std::lock_guard lock(hs->mutex);
      target = hs->standalone;
      if (target && target->has_connection()) {
        return responder->respond(
            rpc_error_response(409, error_code::kConnectionClosed,
                               "Conflict: a standalone SSE stream is already open for this session"));
      }
    }
    if (!target)
      return responder->respond(rpc_error_response(404, error_code::kInvalidRequest, "Stream not found"));
    auto stream = responder->start_stream(200, kSseHeaders);
    hs->open_streams++;
    std::weak_ptr<HttpSession> weak = hs;
    stream->on_close([weak] {
      if (auto s = weak.lock()) s->open_streams--;
    });
    const bool fresh = after == 0 && target == hs->standalone;
    if (target->attach(stream, after) && fresh && hs->session->protocol_version() >= kVersion2025_11_25) {
      target->append("", options.retry, /*priming=*/true);
    }
  }

  void del(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
    auto sid = req.header("Mcp-Session-Id");
    if (!sid)
      return responder->respond(rpc_error_response(400, error_code::kConnectionClosed,
                                                   "Bad Request: Mcp-Session-Id header is required"));
    auto hs = find(*sid);
    if (!hs || hs->legacy_sse)
      return responder->respond(rpc_error_response(404, error_code::kRequestTimeout, "Session not found"));
    drop(*sid);
    responder->respond(empty_response(200));
  }

  // ---- HTTP+SSE (2024-11-05)
  void legacy_sse_open(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
    if (at_capacity()) {
      expire();
      if (at_capacity())
        return responder->respond(
            rpc_error_response(503, error_code::kConnectionClosed, "Service Unavailable: too many sessions"));
    }
    auto hs = create(req.peer, true);
    auto stream = responder->start_stream(200, kSseHeaders);
    hs->open_streams++;
    hs->session->set_general(std::make_shared<LegacySseChannel>(stream));
    const std::string id = hs->session->id();
    std::weak_ptr<Impl> weak = shared_from_this();
    stream->on_close([weak, id] {
      if (auto self = weak.lock()) self->drop(id);
    });
    stream->write(format_sse_event("", "endpoint", options.messages_path + "?sessionId=" + id));
  }

  void legacy_sse_post(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder,
                       const Call& call) {
    std::string sid;
    for (std::size_t start = 0; start <= req.query.size();) {
      auto amp = req.query.find('&', start);
      std::string_view kv = std::string_view(req.query).substr(
          start, amp == std::string::npos ? std::string::npos : amp - start);
      if (kv.rfind("sessionId=", 0) == 0) sid = percent_decode(kv.substr(10));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
    if (sid.empty())
      return responder->respond(rpc_error_response(400, error_code::kInvalidRequest,
                                                   "Bad Request: sessionId query parameter is required"));
    auto hs = find(sid);
    if (!hs || !hs->legacy_sse)
      return responder->respond(rpc_error_response(404, error_code::kRequestTimeout, "Session not found"));
    auto ct = req.header("Content-Type");
    if (!ct || ascii_lower(*ct).find("application/json") == std::string::npos) {
      return responder->respond(rpc_error_response(
          415, error_code::kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json"));
    }
    auto parsed = parse_json(req.body, server.options().max_json_depth);
    if (auto* err = std::get_if<RpcError>(&parsed)) {
      server.report_refused(make_origin(req, nullptr, "sse"), *err);
      return responder->respond(json_response(400, make_error_response(nullptr, *err)));
    }
    hs->session->touch();
    if (auto refused =
            server.refuse_batch(hs->session, std::get<json>(parsed), make_origin(req, nullptr, "sse"))) {
      return responder->respond(json_response(400, *refused));
    }
    responder->respond(empty_response(202));
    auto general = hs->session->general();
    if (!general) return;
    // Requests and notifications alike run here, on the net worker that holds the POST (one
    // hop); the answer goes out on the session's SSE stream.
    auto r = server.handle(hs->session, std::get<json>(parsed), make_origin(req, general, "sse"));
    if (call) call->release();
    if (r) general->send(*r);
  }
};

HttpTransport::HttpTransport(Server& server, HttpTransportOptions options)
    : impl_(std::make_shared<Impl>(server, std::move(options))) {
  auto period = std::clamp(impl_->options.session_idle_timeout / 4, std::chrono::milliseconds(50),
                           std::chrono::milliseconds(10000));
  std::weak_ptr<Impl> weak = impl_;
  Impl* raw = impl_.get();
  impl_->reaper = std::thread([weak, raw, period] {
    std::unique_lock lock(raw->reaper_mutex);
    while (!raw->stopping) {
      raw->reaper_cv.wait_for(lock, period);
      if (raw->stopping) break;
      lock.unlock();
      if (auto self = weak.lock()) self->expire();
      lock.lock();
    }
  });
}

HttpTransport::~HttpTransport() {
  {
    std::lock_guard lock(impl_->reaper_mutex);
    impl_->stopping = true;
  }
  impl_->reaper_cv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
  std::vector<std::string> ids;
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& [id, hs] : impl_->sessions) ids.push_back(id);
  }
  for (auto& id : ids) impl_->drop(id);
}

net::HttpHandler HttpTransport::handler() {
  std::shared_ptr<Impl> impl = impl_;
  return [impl](const net::HttpRequest& request, std::shared_ptr<net::Responder> responder) {
    impl->handle(request, std::move(responder));
  };
}

void HttpTransport::handle(const net::HttpRequest& request, std::shared_ptr<net::Responder> responder) {
  impl_->handle(request, std::move(responder));
}

std::size_t HttpTransport::session_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->sessions.size();
}

void HttpTransport::expire_idle_sessions() {
  impl_->expire();
}

void HttpTransport::set_client_limits(const CallLimiter::Options& limits) {
  impl_->client_limiter.reconfigure(limits);
}

CallLimiter::Stats HttpTransport::client_limit_stats() const {
  return impl_->client_limiter.stats();
}

}  // namespace larder::mcp
