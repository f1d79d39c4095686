// The deprecated HTTP+SSE transport of 2024-11-05: GET `sse_path` opens the session and its
// one SSE stream (whose first event names the POST endpoint); POST `messages_path`?sessionId=
// carries the client's messages, answered 202, with the answers on the stream.
#include "base/text.h"
#include "mcp/encoding.h"
#include "mcp/http_internal.h"
#include "mcp/http_streams.h"

namespace larder::mcp {

void HttpTransport::Impl::legacy_sse_open(const net::HttpRequest& req,
                                          std::shared_ptr<net::Responder> responder) {
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

void HttpTransport::Impl::legacy_sse_post(const net::HttpRequest& req,
                                          std::shared_ptr<net::Responder> responder, const Call& call) {
  std::string sid;
  for (std::size_t start = 0; start <= req.query.size();) {
    auto amp = req.query.find('&', start);
    std::string_view kv =
        std::string_view(req.query).substr(start, amp == std::string::npos ? std::string::npos : amp - start);
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
  // The answer goes out on the session's SSE stream. Notifications and responses run here at
  // once; a request runs here too (one hop), or queued behind the handlers already running
  // when all of ServerOptions::handler_threads are.
  json body = std::move(std::get<json>(parsed));
  Origin origin = make_origin(req, general, "sse");
  const bool has_request =
      body.is_array() || (body.is_object() && body.contains("method") && body.contains("id"));
  if (!has_request) {
    if (auto r = server.handle(hs->session, body, origin)) general->send(*r);
    return;
  }
  handlers.run(
      [self = shared_from_this(), hs, general, body = std::move(body), origin = std::move(origin), call] {
        auto r = self->server.handle(hs->session, body, origin);
        if (call) call->release();
        if (r) general->send(*r);
      });
}

}  // namespace larder::mcp
