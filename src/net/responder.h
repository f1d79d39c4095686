// Internal to larder_net: how a handler answers (net/http.h's Responder and ResponseStream),
// by posting to its connection's strand. User callbacks never run on an I/O thread.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/http.h"

namespace larder::net {

class SessionBase;

class StreamImpl final : public ResponseStream {
 public:
  StreamImpl(std::shared_ptr<SessionBase> session, boost::asio::thread_pool* workers)
      : session_(std::move(session)), workers_(workers) {}
  bool write(std::string data) override;
  void close() override;
  bool is_closed() const override { return closed_.load(std::memory_order_acquire); }
  void on_close(std::function<void()> callback) override;
  // Called once by the session (on its strand) when the stream ends for any reason.
  void mark_closed();

 private:
  mutable std::mutex mu_;
  std::atomic<bool> closed_{false};
  std::shared_ptr<SessionBase> session_;
  boost::asio::thread_pool* workers_;
  std::vector<std::function<void()>> callbacks_;
};

class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<SessionBase> session, boost::asio::thread_pool* workers)
      : session_(std::move(session)), workers_(workers) {}
  ~ResponderImpl() override;
  void respond(HttpResponse response) override;
  std::shared_ptr<ResponseStream> start_stream(int status, HeaderList headers) override;

 private:
  std::shared_ptr<SessionBase> session_;
  boost::asio::thread_pool* workers_;
  std::atomic<bool> answered_{false};
};

}  // namespace larder::net
