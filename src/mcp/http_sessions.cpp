// The Mcp-Session-Id sessions of the HTTP transport (legacy Streamable HTTP and HTTP+SSE):
// lookup, creation, the idle expiry, and their end (DELETE, or the reaper).
#include <spdlog/spdlog.h>

#include <vector>

#include "mcp/http_internal.h"
#include "mcp/http_streams.h"

namespace larder::mcp {

std::shared_ptr<HttpSession> HttpTransport::Impl::find(const std::string& id) {
  std::lock_guard lock(mutex);
  auto it = sessions.find(id);
  return it == sessions.end() ? nullptr : it->second;
}

std::shared_ptr<HttpSession> HttpTransport::Impl::create(const std::shared_ptr<const net::PeerIdentity>& peer,
                                                         bool legacy_sse) {
  auto hs = std::make_shared<HttpSession>();
  hs->legacy_sse = legacy_sse;
  hs->session = server.create_session(peer);
  std::lock_guard lock(mutex);
  sessions[hs->session->id()] = hs;
  return hs;
}

void HttpTransport::Impl::drop(const std::string& id) {
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

bool HttpTransport::Impl::at_capacity() {
  std::lock_guard lock(mutex);
  return sessions.size() >= options.max_sessions;
}

void HttpTransport::Impl::expire() {
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

// The Streamable HTTP session a GET or DELETE names in Mcp-Session-Id; null once `responder`
// has been answered 400 (no header) or 404 (no such session, or an HTTP+SSE one).
std::shared_ptr<HttpSession> HttpTransport::Impl::streamable_session(const net::HttpRequest& req,
                                                                     net::Responder& responder) {
  auto sid = req.header("Mcp-Session-Id");
  if (!sid) {
    responder.respond(rpc_error_response(400, error_code::kConnectionClosed,
                                         "Bad Request: Mcp-Session-Id header is required"));
    return nullptr;
  }
  auto hs = find(*sid);
  if (!hs || hs->legacy_sse) {
    responder.respond(rpc_error_response(404, error_code::kRequestTimeout, "Session not found"));
    return nullptr;
  }
  return hs;
}

// ---- Streamable HTTP: DELETE ends the session
void HttpTransport::Impl::del(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
  auto hs = streamable_session(req, *responder);
  if (!hs) return;
  drop(hs->session->id());
  responder->respond(empty_response(200));
}

}  // namespace larder::mcp
