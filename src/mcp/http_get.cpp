// Streamable HTTP GET: the session's standalone SSE stream, or the resumption of any of its
// streams after Last-Event-ID (the events after it are replayed from the stream's log).
#include "base/text.h"
#include "mcp/http_internal.h"
#include "mcp/http_streams.h"

namespace larder::mcp {

void HttpTransport::Impl::get(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
  auto accept = req.header("Accept");
  if (!accept || ascii_lower(*accept).find("text/event-stream") == std::string::npos) {
    return responder->respond(rpc_error_response(406, error_code::kInvalidRequest,
                                                 "Not Acceptable: GET needs Accept: text/event-stream"));
  }
  auto hs = streamable_session(req, *responder);
  if (!hs) return;
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

}  // namespace larder::mcp
