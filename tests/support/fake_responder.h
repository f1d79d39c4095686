// An in-process net::Responder (test plumbing, header-only): records what a net::HttpHandler
// answers, so unit tests and the request-path fuzzer drive mcp::HttpTransport::handle with a
// net::HttpRequest and no socket. One Exchange per request: a plain response, or a stream
// (SSE) with everything written to it, or "dropped" when the handler let the responder go
// without answering (net::Server would answer 500 then).
#pragma once

#include "net/http.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::test {

struct Exchange {
  std::mutex mutex;
  std::condition_variable cv;
  bool responded = false;  // respond() was called
  bool streamed = false;   // start_stream() was called
  bool closed = false;     // the stream ended
  bool dropped = false;    // the responder was destroyed unanswered
  net::HttpResponse response;
  int stream_status = 0;
  net::HeaderList stream_headers;
  std::string stream_data;

  // Waits until the exchange is over: answered, its stream closed, or dropped.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [this] { return responded || (streamed && closed) || dropped; });
  }
  // Waits until the stream carries `needle` (or ends).
  bool wait_for_data(const std::string& needle, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] {
      return stream_data.find(needle) != std::string::npos || closed;
    }) && stream_data.find(needle) != std::string::npos;
  }
  int status() {
    std::lock_guard lock(mutex);
    return responded ? response.status : streamed ? stream_status : 0;
  }
  std::string body() {
    std::lock_guard lock(mutex);
    return responded ? response.body : stream_data;
  }
  std::optional<std::string> header(std::string_view name) {
    std::lock_guard lock(mutex);
    return net::find_header(responded ? response.headers : stream_headers, name);
  }
  // The JSON of a plain response, or of every SSE `data:` line in the stream.
  std::vector<nlohmann::json> messages() {
    std::lock_guard lock(mutex);
    std::vector<nlohmann::json> out;
    if (responded) {
      auto j = nlohmann::json::parse(response.body, nullptr, false);
      if (!j.is_discarded()) out.push_back(std::move(j));
      return out;
    }
    std::size_t start = 0;
    while (start < stream_data.size()) {
      std::size_t end = stream_data.find('\n', start);
      if (end == std::string::npos) end = stream_data.size();
      std::string_view line(stream_data.data() + start, end - start);
      if (line.rfind("data: ", 0) == 0) {
        auto j = nlohmann::json::parse(line.substr(6), nullptr, false);
        if (!j.is_discarded()) out.push_back(std::move(j));
      }
      start = end + 1;
    }
    return out;
  }
};

class FakeStream : public net::ResponseStream {
 public:
  explicit FakeStream(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  bool write(std::string data) override {
    std::lock_guard lock(exchange_->mutex);
    if (exchange_->closed) return false;
    exchange_->stream_data += data;
    exchange_->cv.notify_all();
    return true;
  }
  void close() override {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(exchange_->mutex);
      if (exchange_->closed) return;
      exchange_->closed = true;
      exchange_->cv.notify_all();
      std::lock_guard l(callbacks_mutex_);
      callbacks.swap(callbacks_);
    }
    for (auto& callback : callbacks) callback();  // unlocked: they may close other streams
  }
  bool is_closed() const override {
    std::lock_guard lock(exchange_->mutex);
    return exchange_->closed;
  }
  void on_close(std::function<void()> callback) override {
    {
      std::lock_guard lock(exchange_->mutex);
      if (!exchange_->closed) {
        std::lock_guard l(callbacks_mutex_);
        callbacks_.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

 private:
  std::shared_ptr<Exchange> exchange_;
  std::mutex callbacks_mutex_;
  std::vector<std::function<void()>> callbacks_;
};

class FakeResponder : public net::Responder {
 public:
  explicit FakeResponder(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
  ~FakeResponder() override {
    std::lock_guard lock(exchange_->mutex);
    if (!exchange_->responded && !exchange_->streamed) {
      exchange_->dropped = true;
      exchange_->cv.notify_all();
    }
  }
  void respond(net::HttpResponse response) override {
    std::lock_guard lock(exchange_->mutex);
    if (exchange_->responded || exchange_->streamed) return;  // a second answer is ignored
    exchange_->responded = true;
    exchange_->response = std::move(response);
    exchange_->cv.notify_all();
  }
  std::shared_ptr<net::ResponseStream> start_stream(int status, net::HeaderList headers) override {
    std::lock_guard lock(exchange_->mutex);
    if (exchange_->responded || exchange_->streamed) {
      auto dead = std::make_shared<Exchange>();
      dead->closed = true;
      return std::make_shared<FakeStream>(dead);
    }
    exchange_->streamed = true;
    exchange_->stream_status = status;
    exchange_->stream_headers = std::move(headers);
    stream_ = std::make_shared<FakeStream>(exchange_);
    exchange_->cv.notify_all();
    return stream_;
  }
  std::shared_ptr<FakeStream> stream() const { return stream_; }

 private:
  std::shared_ptr<Exchange> exchange_;
  std::shared_ptr<FakeStream> stream_;
};

// Builds a request the way net::Server hands it over ("/mcp?x=1" → path "/mcp", query "x=1").
inline net::HttpRequest make_http_request(std::string method, std::string target, net::HeaderList headers,
                                          std::string body) {
  net::HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  auto q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.remote_address = "127.0.0.1:40000";
  return r;
}

}  // namespace larder::test
