// libmcp internal (see http_internal.h): the SSE streams of the HTTP transport, which outlive
// their connections so a client can resume them, and the Outbound channels a handler's
// messages take over HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "mcp/http_internal.h"
#include "mcp/sse.h"

namespace larder::mcp {

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

}  // namespace larder::mcp
