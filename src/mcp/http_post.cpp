// Streamable HTTP POST: the content checks every POST passes, the choice of era (the stateless
// revision goes on to http_post_modern.cpp), and calls inside an Mcp-Session-Id session
// (initialize creates one). The handler runs here, on the net worker holding the request.
#include <algorithm>

#include "base/text.h"
#include "mcp/http_internal.h"
#include "mcp/http_streams.h"

namespace larder::mcp {

void HttpTransport::Impl::post(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder,
                               const Call& call) {
  auto ct = req.header("Content-Type");
  if (!ct || ascii_lower(*ct).find("application/json") == std::string::npos) {
    return responder->respond(rpc_error_response(
        415, error_code::kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json"));
  }
  if (auto accept = req.header("Accept")) {
    std::string a = ascii_lower(*accept);
    if (a.find("application/json") == std::string::npos && a.find("text/event-stream") == std::string::npos &&
        a.find("*/*") == std::string::npos) {
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

// The session a session-era POST belongs to: a new one for initialize (with the standalone
// stream a GET attaches to), else the one its Mcp-Session-Id names; or the answer refusing it.
std::variant<std::shared_ptr<HttpSession>, net::HttpResponse> HttpTransport::Impl::session_of_post(
    const net::HttpRequest& req, const json& body, bool is_initialize) {
  auto sid = req.header("Mcp-Session-Id");
  if (is_initialize && !sid) {
    if (at_capacity()) {
      expire();
      if (at_capacity())
        return rpc_error_response(503, error_code::kConnectionClosed,
                                  "Service Unavailable: too many sessions");
    }
    auto hs = create(req.peer, false);
    auto standalone = std::make_shared<EventStream>();
    standalone->id = random_id(8);
    standalone->max_log = options.replay_events_per_stream;
    {
      std::lock_guard lock(hs->mutex);
      hs->standalone = standalone;
      hs->streams[standalone->id] = standalone;
    }
    hs->session->set_general(std::make_shared<StandaloneChannel>(standalone, options.retry));
    return hs;
  }
  if (!sid) {
    json id = body.is_object() && body.contains("id") ? body["id"] : json();
    return rpc_error_response(400, error_code::kConnectionClosed,
                              "Bad Request: Mcp-Session-Id header is required (send initialize first, "
                              "or use the stateless revision's _meta)",
                              id);
  }
  auto hs = find(*sid);
  if (!hs || hs->legacy_sse) return rpc_error_response(404, error_code::kRequestTimeout, "Session not found");
  if (is_initialize)
    return rpc_error_response(400, error_code::kInvalidRequest,
                              "Bad Request: the session is already initialized");
  return hs;
}

void HttpTransport::Impl::post_legacy(const net::HttpRequest& req, json body,
                                      std::shared_ptr<net::Responder> responder, const Call& call) {
  if (auto pv = req.header("MCP-Protocol-Version");
      pv && !is_legacy_version(*pv) && !is_modern_version(*pv)) {
    return responder->respond(rpc_error_response(
        400, error_code::kInvalidRequest, "Bad Request: unsupported MCP-Protocol-Version '" + *pv + "'"));
  }
  const bool is_initialize = body.is_object() && method_of(body) == "initialize" && body.contains("id");
  auto found = session_of_post(req, body, is_initialize);
  if (auto* refused = std::get_if<net::HttpResponse>(&found)) return responder->respond(std::move(*refused));
  const std::shared_ptr<HttpSession> hs = std::get<std::shared_ptr<HttpSession>>(std::move(found));
  HeaderList extra;
  if (is_initialize) extra.emplace_back("Mcp-Session-Id", hs->session->id());
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
  auto channel = std::make_shared<RequestChannel>(responder, hs, extra, options, /*resumable=*/true, priming,
                                                  CancellationToken());
  if (options.always_stream && !body.is_array()) channel->start_stream();
  Origin origin = make_origin(req, channel, "streamable-http");
  origin.credentials_challenge = channel->challenge();
  std::weak_ptr<RequestChannel> weak = channel;
  origin.close_stream = [weak] {
    if (auto c = weak.lock()) c->close_connection();
  };
  // The handler runs here, on the net worker that holds the request (one hop), or queued
  // behind the handlers already running when all of ServerOptions::handler_threads are.
  handlers.run([self = shared_from_this(), hs, body = std::move(body), origin = std::move(origin), channel,
                is_initialize, call] {
    auto r = self->server.handle(hs->session, body, origin);
    if (is_initialize && (!r || !r->contains("result"))) self->drop(hs->session->id());
    if (call) call->release();
    channel->finish(r);
  });
}

}  // namespace larder::mcp
