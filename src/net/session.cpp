// One Session object per connection (Beast-example style), each on its own strand, with an
// explicit deadline for every read. Handlers run on the server's worker pool and answer through
// a Responder that posts back onto the connection's strand.
#include "net/session.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <cstdio>
#include <deque>

#include "net/openssl_util.h"
#include "net/responder.h"
#include "net/server_impl.h"

namespace larder::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kMaxQueuedStreamBytes = 8u << 20;  // a client that stops reading SSE is dropped
constexpr std::size_t kReadChunk = 8192;
constexpr std::size_t kCoalesceLimit = 64 * 1024;
constexpr auto kLingerLimit = 2s;  // drain after a server-side close

std::string_view reason_phrase(int status) {
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  if (r.empty() || r.front() == '<') return "Status";
  return {r.data(), r.size()};
}

}  // namespace

// ---------------------------------------------------------------------------------------
template <bool kTls>
class Session final : public SessionBase {
  using Stream = std::conditional_t<kTls, ssl::stream<tcp::socket>, tcp::socket>;
  using Clock = std::chrono::steady_clock;
  enum class Phase { kHandshake, kAwait, kReading, kHandling, kWriting, kStreaming, kClosed };

 public:
  Session(Server::Impl& server, tcp::socket socket, std::string remote)
      : server_(server),
        timer_(socket.get_executor()),
        pending_(std::move(socket)),
        remote_(std::move(remote)),
        accepted_at_(Clock::now()) {}

  ~Session() override { finalize(); }

  void start() override {
    if constexpr (kTls) {
      phase_ = Phase::kHandshake;
      set_deadline(server_.config.limits.handshake_timeout);
      beast::error_code ec;
      pending_.non_blocking(true, ec);
      if (ec) {
        handshake_failed(ec.message(), spdlog::level::info, "tls");
        return;
      }
      await_client_hello();
    } else {
      stream_.emplace(std::move(pending_));
      await_request();
    }
  }

  void post_response(HttpResponse response) override {
    asio::post(executor(),
               [self = shared(), r = std::move(response)]() mutable { self->write_response(std::move(r)); });
  }
  void post_stream_start(int status, HeaderList headers, std::shared_ptr<StreamImpl> stream) override {
    asio::post(executor(),
               [self = shared(), status, h = std::move(headers), s = std::move(stream)]() mutable {
                 self->stream_start(status, std::move(h), std::move(s));
               });
  }
  void post_stream_data(std::string data) override {
    asio::post(executor(),
               [self = shared(), d = std::move(data)]() mutable { self->stream_data(std::move(d)); });
  }
  void post_stream_end() override {
    asio::post(executor(), [self = shared()] { self->stream_end(); });
  }
  void begin_shutdown() override {
    asio::post(executor(), [self = shared()] { self->shutdown_now(); });
  }
  void force_close() override {
    asio::post(executor(), [self = shared()] { self->close(); });
  }
  void evict() override {
    asio::post(executor(), [self = shared()] {
      if (self->phase_ != Phase::kHandshake) return;
      spdlog::debug("net: {} closed in its handshake to admit a newer connection (max_handshakes)",
                    self->remote_);
      self->close();
    });
  }

 private:
  std::shared_ptr<Session> shared() { return std::static_pointer_cast<Session>(shared_from_this()); }
  asio::any_io_executor executor() { return timer_.get_executor(); }  // the connection's strand
  tcp::socket& socket() { return stream_ ? beast::get_lowest_layer(*stream_) : pending_; }

  // ---- deadlines: one timer armed lazily. Moving a deadline later only updates deadline_;
  // the timer re-arms itself when it fires early, so a keep-alive request costs no timer
  // syscalls in the common case. A generation number discards superseded waits.
  void set_deadline(std::chrono::milliseconds d) {
    deadline_ = Clock::now() + d;
    if (!timer_armed_ || armed_expiry_ > deadline_) arm_timer();
  }
  void clear_deadline() { deadline_ = Clock::time_point::max(); }
  void arm_timer() {
    armed_expiry_ = deadline_;
    timer_armed_ = true;
    timer_.expires_at(deadline_);
    timer_.async_wait(
        [self = shared(), gen = ++timer_gen_](beast::error_code ec) { self->on_timer(ec, gen); });
  }
  void on_timer(beast::error_code ec, uint64_t gen) {
    if (gen != timer_gen_) return;
    timer_armed_ = false;
    if (ec || finalized_ || deadline_ == Clock::time_point::max()) return;
    if (Clock::now() >= deadline_) {
      on_deadline();
    } else {
      arm_timer();
    }
  }
  void on_deadline() {
    if (phase_ == Phase::kClosed) {
      finalize();  // lingering close ran out of time
      return;
    }
    if (phase_ == Phase::kHandshake) {
      server_.handshake_timeouts.fetch_add(1);
      report_handshake("timeout");
    }
    spdlog::debug("net: {} timed out ({})", remote_, phase_name());
    close();
  }
  const char* phase_name() const {
    switch (phase_) {
      case Phase::kHandshake:
        return "handshake";
      case Phase::kAwait:
        return "idle";
      case Phase::kReading:
        return "reading request";
      case Phase::kHandling:
        return "handling";
      case Phase::kWriting:
        return "writing";
      case Phase::kStreaming:
        return "streaming";
      case Phase::kClosed:
        return "closed";
    }
    return "?";
  }

  // ---- handshake, part 1: until the first TLS record (the ClientHello) is complete the
  // connection is a socket and the bytes received so far — no TLS state, no buffers beyond
  // what the client actually sent — so a silent or trickling socket costs little. Anything
  // that is not a TLS handshake record is refused at its first five bytes.
  static constexpr std::size_t kRecordHeader = 5;
  static constexpr std::size_t kMaxRecord = 16384;  // TLSPlaintext.length limit (RFC 8446, 5.1)
  std::size_t hello_record_length() const {
    return (std::size_t{static_cast<unsigned char>(hello_[3])} << 8) | static_cast<unsigned char>(hello_[4]);
  }
  std::size_t hello_missing() const {  // bytes still missing from the first record
    if (hello_.size() < kRecordHeader) return kRecordHeader - hello_.size();
    return kRecordHeader + hello_record_length() - hello_.size();
  }
  bool hello_is_handshake_record() const {  // content type 22 (handshake), protocol major version 3
    const std::size_t length = hello_record_length();
    return static_cast<unsigned char>(hello_[0]) == 22 && static_cast<unsigned char>(hello_[1]) == 3 &&
           length > 0 && length <= kMaxRecord;
  }
  void await_client_hello() {
    pending_.async_wait(tcp::socket::wait_read,
                        [self = shared()](beast::error_code ec) { self->on_client_hello_bytes(ec); });
  }
  void on_client_hello_bytes(beast::error_code ec) {
    if (phase_ != Phase::kHandshake || finalized_) return;  // timed out, evicted or stopped meanwhile
    if (ec) {
      handshake_failed(ec.message(), spdlog::level::debug, "closed");
      return;
    }
    for (std::size_t missing = hello_missing(); missing > 0; missing = hello_missing()) {
      const std::size_t available = pending_.available(ec);
      const std::size_t want = std::min(missing, std::max<std::size_t>(ec ? 1 : available, 1));
      const std::size_t old = hello_.size();
      hello_.resize(old + want);
      const std::size_t n = pending_.read_some(asio::buffer(hello_.data() + old, want), ec);
      hello_.resize(old + n);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        await_client_hello();
        return;
      }
      if (ec) {
        handshake_failed(ec == asio::error::eof ? "closed before its ClientHello was complete" : ec.message(),
                         spdlog::level::debug, "closed");
        return;
      }
      if (hello_.size() == kRecordHeader && !hello_is_handshake_record()) {
        handshake_failed("not a TLS handshake", spdlog::level::debug, "not_tls");
        return;
      }
    }
    start_tls();
  }

  // ---- handshake, part 2: OpenSSL, starting from the record already read.
  void start_tls() {
    if constexpr (kTls) {
      beast::error_code ec;
      pending_.non_blocking(false, ec);
      tls_ = server_.crl_watch.current_tls();  // this connection's for its whole life
      stream_.emplace(std::move(pending_), *tls_->ctx);
      stream_->async_handshake(ssl::stream_base::server, asio::buffer(hello_),
                               [self = shared()](beast::error_code hec, std::size_t) {
                                 std::string().swap(self->hello_);
                                 self->on_handshake(hec);
                               });
    }
  }
  void on_handshake(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      handshake_failed(ec.message(), spdlog::level::info, tls_failure_outcome(ec));
      return;
    }
    if constexpr (kTls) {
      server_.crl_watch.refresh();
      crl_generation_ = server_.crl_watch.generation();
      auto peer = server_.crl_watch.admit_peer(stream_->native_handle());
      if (!peer) {
        handshake_failed("refused after the handshake: " + peer.error().message, spdlog::level::info,
                         peer_refusal_outcome(peer.error().code));
        return;
      }
      peer_ = std::move(*peer);
      switch (server_.promote(this)) {
        case Server::Impl::Admission::kAdmitted:
          report_handshake("ok");
          break;
        case Server::Impl::Admission::kEvicted:  // counted when it was evicted
          spdlog::debug("net: {} was closed in its handshake to admit a newer connection", remote_);
          report_handshake("evicted");
          close();
          return;
        case Server::Impl::Admission::kFull:
          spdlog::warn("net: refusing {}: max_connections ({}) authenticated connections are open", remote_,
                       server_.config.limits.max_connections);
          report_handshake("capacity");
          close();
          return;
      }
    }
    await_request();
  }
  void handshake_failed(const std::string& why, spdlog::level::level_enum level, std::string_view outcome) {
    server_.handshake_failures.fetch_add(1);
    spdlog::log(level, "net: TLS handshake with {} refused: {}", remote_, why);
    report_handshake(outcome);
    close();
  }
  // Once per connection, for the HandshakeObserver (net/server.h).
  void report_handshake(std::string_view outcome) {
    if (handshake_reported_) return;
    handshake_reported_ = true;
    if (server_.config.on_handshake) server_.config.on_handshake(outcome, Clock::now() - accepted_at_);
  }
  static std::string_view tls_failure_outcome(const beast::error_code& ec) {
    if (ec.category() != asio::error::get_ssl_category()) return "closed";
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return "certificate";
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return "no_certificate";
      default:
        return "tls";
    }
  }
  static std::string_view peer_refusal_outcome(const std::string& code) {
    if (code == "tls.no_peer_cert") return "no_certificate";
    if (code == "tls.expired" || code == "tls.not_yet_valid") return "expired";
    if (code == "tls.revoked") return "revoked";
    if (code == "tls.not_allowed") return "not_allowed";
    return "certificate";
  }

  // ---- reading requests: one async_read_some loop feeding Beast's parser ----
  void await_request() {
    phase_ = Phase::kAwait;
    if (shutting_down_) {
      lingering_close();
      return;
    }
    if (buffer_.size() > 0 && !read_pending_) {  // pipelined bytes are already here
      begin_request();
      parse();
      return;
    }
    set_deadline(server_.config.limits.idle_timeout);
    if (!read_pending_) start_read();
  }
  void begin_request() {
    phase_ = Phase::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(server_.config.limits.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(server_.config.limits.max_body_bytes);
    continue_checked_ = false;
    set_deadline(server_.config.limits.request_timeout);  // from the first byte of the request
  }

  // The only read: while idle it waits for the next request (idle_timeout), while reading it
  // feeds the parser (request_timeout), and during a streamed response it is how a departed
  // client is noticed.
  void start_read() {
    read_pending_ = true;
    stream_->async_read_some(
        buffer_.prepare(kReadChunk),
        [self = shared()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  }
  void on_read(beast::error_code ec, std::size_t n) {
    read_pending_ = false;
    buffer_.commit(n);
    if (phase_ == Phase::kClosed) {
      finalize();
      return;
    }
    if (ec) {
      close();  // EOF, reset, TLS error (a request cut short gets no answer)
      return;
    }
    switch (phase_) {
      case Phase::kStreaming:
        // The client sent something (its next request) while we stream: keep it for later.
        if (buffer_.size() < server_.config.limits.max_header_bytes) start_read();
        return;
      case Phase::kAwait:
        begin_request();
        parse();
        return;
      case Phase::kReading:
        parse();
        return;
      default:
        return;
    }
  }
  void parse() {
    while (!parser_->is_done()) {
      if (buffer_.size() == 0) {
        start_read();
        return;
      }
      beast::error_code ec;
      std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        start_read();
        return;
      }
      if (ec) {
        on_read_error(ec);
        return;
      }
      if (parser_->is_header_done() && !continue_checked_) {
        continue_checked_ = true;
        auto expect = parser_->get()[http::field::expect];
        if (!parser_->is_done() && iequals({expect.data(), expect.size()}, "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          asio::async_write(*stream_, asio::buffer(kContinue.data(), kContinue.size()),
                            [self = shared()](beast::error_code wec, std::size_t) {
                              if (self->phase_ == Phase::kClosed) return;
                              if (wec) {
                                self->close();
                                return;
                              }
                              self->parse();
                            });
          return;
        }
      }
      if (used == 0) {
        start_read();
        return;
      }
    }
    on_request();
  }
  void on_read_error(beast::error_code ec) {
    clear_deadline();
    if (ec == http::error::body_limit) {
      error_response(413, "request body too large\n");
    } else if (ec == http::error::header_limit) {
      error_response(431, "request header fields too large\n");
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      error_response(400, "malformed HTTP request\n");
    } else {
      close();  // EOF, reset, timeout, TLS error
    }
  }
  void error_response(int status, std::string body) {
    keep_alive_ = false;
    is_head_ = false;
    write_response(HttpResponse{status, {{"Content-Type", "text/plain"}}, std::move(body)});
  }

  void on_request() {
    clear_deadline();
    if constexpr (kTls) {
      // A CRL reloaded since this connection was admitted applies to it from now on.
      server_.crl_watch.refresh();
      if (uint64_t generation = server_.crl_watch.generation(); generation != crl_generation_) {
        crl_generation_ = generation;
        if (auto peer = server_.crl_watch.admit_peer(stream_->native_handle()); !peer) {
          spdlog::info("net: client {} refused on an open connection: {}", remote_, peer.error().message);
          parser_.reset();
          error_response(403, "client certificate refused: " + peer.error().message + "\n");
          return;
        }
      }
    }
    auto& msg = parser_->get();
    keep_alive_ = msg.keep_alive() && !shutting_down_;
    HttpRequest req;
    auto method = msg.method_string();
    req.method.assign(method.data(), method.size());
    is_head_ = msg.method() == http::verb::head;
    auto target = msg.target();
    req.target.assign(target.data(), target.size());
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.reserve(16);
    for (const auto& field : msg) {
      auto name = field.name_string();
      auto value = field.value();
      req.headers.emplace_back(std::string(name.data(), name.size()),
                               std::string(value.data(), value.size()));
    }
    req.body = std::move(msg.body());
    req.remote_address = remote_;
    req.peer = peer_;
    req.tls = kTls;
    parser_.reset();
    phase_ = Phase::kHandling;
    auto responder = std::make_shared<ResponderImpl>(shared_from_this(), server_.workers.get());
    asio::post(*server_.workers, [server = &server_, req = std::move(req),
                                  responder = std::move(responder)]() mutable {
      try {
        server->handler(req, responder);
      } catch (const std::exception& e) {
        spdlog::error("net: handler for {} {} threw: {}", req.method, req.path, e.what());
        responder->respond(HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error\n"});
      } catch (...) {
        spdlog::error("net: handler for {} {} threw a non-exception", req.method, req.path);
        responder->respond(HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error\n"});
      }
    });
  }

  // ---- writing ----
  // Appends the status line and headers; returns false if a handler header is invalid.
  bool serialize_head(int status, const HeaderList& headers, std::string& out, bool chunked,
                      std::size_t length) {
    if (status < 100 || status > 599) return false;
    out.clear();
    out.reserve(128 + headers.size() * 48);
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\n";
    for (const auto& [name, value] : headers) {
      if (!valid_header_field(name, value)) return false;
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
      if (iequals(name, "connection")) {
        if (iequals(value, "close")) keep_alive_ = false;
        continue;
      }
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    }
    if (chunked) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (status != 204 && status != 304 && status >= 200) {
      out += "Content-Length: ";
      out += std::to_string(length);
      out += "\r\n";
    }
    if (!keep_alive_) out += "Connection: close\r\n";
    out += "\r\n";
    return true;
  }

  void write_response(HttpResponse response) {
    if (phase_ != Phase::kHandling && phase_ != Phase::kReading) return;  // closed meanwhile
    if (shutting_down_) keep_alive_ = false;
    if (!serialize_head(response.status, response.headers, head_, false, response.body.size())) {
      spdlog::error("net: handler produced an invalid status or header; sending 500");
      response = HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error: invalid response\n"};
      serialize_head(500, response.headers, head_, false, response.body.size());
    }
    bool send_body = !is_head_ && response.status != 204 && response.status != 304;
    // Small bodies travel in the same buffer as the head: one TLS record, one syscall.
    if (send_body && response.body.size() <= kCoalesceLimit) {
      head_ += response.body;
      send_body = false;
    } else {
      body_ = std::move(response.body);
    }
    phase_ = Phase::kWriting;
    set_deadline(server_.config.limits.idle_timeout);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head_),
                                           send_body ? asio::buffer(body_) : asio::const_buffer()};
    asio::async_write(*stream_, bufs,
                      [self = shared()](beast::error_code ec, std::size_t) { self->on_written(ec); });
  }
  void on_written(beast::error_code ec) {
    if (phase_ == Phase::kClosed) return;
    clear_deadline();
    if (ec) {
      close();
      return;
    }
    if (body_.capacity() > kCoalesceLimit) std::string().swap(body_);
    body_.clear();
    if (head_.capacity() > 2 * kCoalesceLimit) std::string().swap(head_);
    if (!keep_alive_) {
      lingering_close();
      return;
    }
    await_request();
  }

  // ---- streaming (chunked) ----
  void stream_start(int status, HeaderList headers, std::shared_ptr<StreamImpl> stream) {
    if (phase_ != Phase::kHandling) {
      stream->mark_closed();
      return;
    }
    if (shutting_down_) keep_alive_ = false;
    std::string head;
    if (!serialize_head(status, headers, head, true, 0)) {
      spdlog::error("net: handler started a stream with an invalid status or header; sending 500");
      stream->mark_closed();
      write_response(
          HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error: invalid response\n"});
      return;
    }
    phase_ = Phase::kStreaming;
    stream_obj_ = std::move(stream);
    enqueue(std::move(head));
    if (shutting_down_) {
      stream_end();
      return;
    }
    if (!read_pending_ && buffer_.size() < server_.config.limits.max_header_bytes) start_read();
  }
  void stream_data(std::string data) {
    if (phase_ != Phase::kStreaming || stream_ending_) return;
    char size_line[24];
    int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", data.size());
    std::string chunk;
    chunk.reserve(static_cast<std::size_t>(n) + data.size() + 2);
    chunk.append(size_line, static_cast<std::size_t>(n));
    chunk += data;
    chunk += "\r\n";
    enqueue(std::move(chunk));
    if (queued_bytes_ > kMaxQueuedStreamBytes) {
      spdlog::warn("net: {} does not read its stream ({} bytes queued); closing", remote_, queued_bytes_);
      close();
    }
  }
  void stream_end() {
    if (phase_ != Phase::kStreaming || stream_ending_) return;
    stream_ending_ = true;
    enqueue("0\r\n\r\n");
  }
  void enqueue(std::string bytes) {
    queued_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
    if (!writing_) write_next();
  }
  void write_next() {
    writing_ = true;
    set_deadline(server_.config.limits.idle_timeout);  // a stalled reader is dropped
    asio::async_write(*stream_, asio::buffer(out_.front()),
                      [self = shared()](beast::error_code ec, std::size_t) { self->on_queue_written(ec); });
  }
  void on_queue_written(beast::error_code ec) {
    writing_ = false;
    if (phase_ == Phase::kClosed) return;
    if (ec) {
      close();
      return;
    }
    queued_bytes_ -= out_.front().size();
    out_.pop_front();
    if (!out_.empty()) {
      write_next();
      return;
    }
    clear_deadline();
    if (stream_ending_) {
      stream_ending_ = false;
      if (auto s = std::move(stream_obj_)) s->mark_closed();
      if (keep_alive_ && !shutting_down_) {
        await_request();
      } else {
        lingering_close();
      }
    }
  }

  // ---- shutdown and close ----
  void shutdown_now() {
    shutting_down_ = true;
    keep_alive_ = false;
    switch (phase_) {
      case Phase::kHandshake:
      case Phase::kAwait:
      case Phase::kReading:
        close();
        break;
      case Phase::kStreaming:
        stream_end();
        break;
      case Phase::kHandling:
      case Phase::kWriting:
      case Phase::kClosed:
        break;  // the response in flight ends with Connection: close
    }
  }

  // Half-closes and drains what the client still sends (e.g. the rest of a refused body) so
  // that it reads our final response instead of a reset.
  void lingering_close() {
    if (phase_ == Phase::kClosed) return;
    phase_ = Phase::kClosed;
    if (auto s = std::move(stream_obj_)) s->mark_closed();
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      finalize();
      return;
    }
    set_deadline(std::min<std::chrono::milliseconds>(
        server_.config.limits.request_timeout,
        std::chrono::duration_cast<std::chrono::milliseconds>(kLingerLimit)));
    if (!read_pending_) drain();  // else the pending read finalizes when it completes
  }
  void drain() {
    if (!drain_buf_) drain_buf_ = std::make_unique<std::array<char, 4096>>();
    socket().async_read_some(asio::buffer(*drain_buf_), [self = shared()](beast::error_code ec, std::size_t) {
      if (ec || self->finalized_) {
        self->finalize();
        return;
      }
      self->drain();
    });
  }
  void close() {
    if (phase_ == Phase::kClosed && finalized_) return;
    // Closed in its handshake by the server: to admit a newer connection, or at stop.
    if constexpr (kTls) {
      if (phase_ == Phase::kHandshake) report_handshake("evicted");
    }
    phase_ = Phase::kClosed;
    if (auto s = std::move(stream_obj_)) s->mark_closed();
    finalize();
  }
  void finalize() {
    if (finalized_) return;
    finalized_ = true;
    phase_ = Phase::kClosed;
    beast::error_code ec;
    ++timer_gen_;
    timer_.cancel();
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
    if (auto s = std::move(stream_obj_)) s->mark_closed();
    server_.session_closed(this);
  }

  Server::Impl& server_;
  asio::steady_timer timer_;
  tcp::socket pending_;              // the connection until stream_ exists (TLS: until the ClientHello)
  std::shared_ptr<TlsContext> tls_;  // TLS: the context stream_ was made with (outlives it)
  std::optional<Stream> stream_;     // TLS: made once the first record is here
  std::string hello_;                // TLS: the first record, as far as it arrived
  std::string remote_;
  Clock::time_point accepted_at_;
  bool handshake_reported_ = false;
  std::shared_ptr<const PeerIdentity> peer_;
  uint64_t crl_generation_ = 0;  // the server's CRL generation this connection was checked against
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Phase phase_ = Phase::kAwait;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_expiry_{};
  uint64_t timer_gen_ = 0;
  bool timer_armed_ = false;
  bool continue_checked_ = false;
  bool read_pending_ = false;
  bool keep_alive_ = true;
  bool is_head_ = false;
  bool shutting_down_ = false;
  bool finalized_ = false;
  std::string head_, body_;
  // streaming
  std::shared_ptr<StreamImpl> stream_obj_;
  std::deque<std::string> out_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool stream_ending_ = false;
  std::unique_ptr<std::array<char, 4096>> drain_buf_;  // only while lingering
};

std::shared_ptr<SessionBase> make_session(Server::Impl& server, tcp::socket socket, std::string remote,
                                          bool tls) {
  if (tls) return std::make_shared<Session<true>>(server, std::move(socket), std::move(remote));
  return std::make_shared<Session<false>>(server, std::move(socket), std::move(remote));
}

}  // namespace larder::net
