#include "net/responder.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "net/session.h"

namespace larder::net {

void StreamImpl::on_close(std::function<void()> callback) {
  std::unique_lock lock(mu_);
  if (closed_.load()) {
    lock.unlock();
    if (callback) callback();
    return;
  }
  callbacks_.push_back(std::move(callback));
}

void StreamImpl::mark_closed() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (closed_.exchange(true)) return;
    callbacks.swap(callbacks_);
    session_.reset();
  }
  if (callbacks.empty()) return;
  // User code never runs on the I/O thread.
  boost::asio::post(*workers_, [callbacks = std::move(callbacks)] {
    for (const auto& cb : callbacks) {
      try {
        if (cb) cb();
      } catch (const std::exception& e) {
        spdlog::warn("net: stream on_close callback threw: {}", e.what());
      }
    }
  });
}

bool StreamImpl::write(std::string data) {
  std::shared_ptr<SessionBase> s;
  {
    std::lock_guard lock(mu_);
    if (closed_.load()) return false;
    s = session_;
  }
  if (!s) return false;
  if (!data.empty()) s->post_stream_data(std::move(data));
  return true;
}

void StreamImpl::close() {
  std::shared_ptr<SessionBase> s;
  {
    std::lock_guard lock(mu_);
    if (closed_.load()) return;
    s = session_;
  }
  if (s) s->post_stream_end();
}

ResponderImpl::~ResponderImpl() {
  if (!answered_.exchange(true)) {
    spdlog::warn("net: handler dropped its Responder without answering; sending 500");
    session_->post_response(
        HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error: no response\n"});
  }
}

void ResponderImpl::respond(HttpResponse response) {
  if (answered_.exchange(true)) {
    spdlog::warn("net: Responder::respond called twice; ignored");
    return;
  }
  session_->post_response(std::move(response));
  session_.reset();  // answered: the connection no longer depends on this object
}

std::shared_ptr<ResponseStream> ResponderImpl::start_stream(int status, HeaderList headers) {
  if (answered_.exchange(true)) {
    spdlog::warn("net: Responder answered twice; start_stream returns a closed stream");
    auto dead = std::make_shared<StreamImpl>(nullptr, workers_);
    dead->mark_closed();
    return dead;
  }
  auto stream = std::make_shared<StreamImpl>(session_, workers_);
  session_->post_stream_start(status, std::move(headers), stream);
  session_.reset();
  return stream;
}

}  // namespace larder::net
