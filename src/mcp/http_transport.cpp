// The HTTP transport's public class, its router and the idle-session reaper. The endpoints
// live one per file (see http_internal.h).
#include "mcp/http_transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "mcp/http_internal.h"

namespace larder::mcp {

namespace {

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

void HttpTransport::Impl::handle(const net::HttpRequest& req, std::shared_ptr<net::Responder> responder) {
  try {
    route(req, responder);
  } catch (const std::exception& e) {
    // Never let hostile input take the handler down; answer once (later calls are ignored).
    spdlog::warn("mcp: {} {} failed: {}", req.method, req.path, e.what());
    responder->respond(
        rpc_error_response(400, error_code::kInvalidRequest, std::string("Bad Request: ") + e.what()));
  }
}

void HttpTransport::Impl::route(const net::HttpRequest& req,
                                const std::shared_ptr<net::Responder>& plain_responder) {
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
