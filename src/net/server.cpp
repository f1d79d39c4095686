// The HTTPS server: one Session object per connection (Beast-example style), each on its own
// strand, with an explicit deadline for every read. Handlers run on a worker pool and answer
// through a Responder that posts back onto the connection's strand.
//
// Connection life:  [TLS handshake] -> await bytes (idle_timeout) -> read request
// (request_timeout) -> handler on a worker -> write response -> await bytes ... or, for a
// streamed response, chunked writes until the handler closes the stream or the client leaves.
#include "net/server.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "net/openssl_util.h"

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
class SessionBase;

class StreamImpl final : public ResponseStream {
 public:
  StreamImpl(std::shared_ptr<SessionBase> session, asio::thread_pool* workers)
      : session_(std::move(session)), workers_(workers) {}
  bool write(std::string data) override;
  void close() override;
  bool is_closed() const override { return closed_.load(std::memory_order_acquire); }
  void on_close(std::function<void()> callback) override {
    std::unique_lock lock(mu_);
    if (closed_.load()) {
      lock.unlock();
      if (callback) callback();
      return;
    }
    callbacks_.push_back(std::move(callback));
  }
  // Called once by the session (on its strand) when the stream ends for any reason.
  void mark_closed() {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mu_);
      if (closed_.exchange(true)) return;
      callbacks.swap(callbacks_);
      session_.reset();
    }
    if (callbacks.empty()) return;
    // User code never runs on the I/O thread.
    asio::post(*workers_, [callbacks = std::move(callbacks)] {
      for (const auto& cb : callbacks) {
        try {
          if (cb) cb();
        } catch (const std::exception& e) {
          spdlog::warn("net: stream on_close callback threw: {}", e.what());
        }
      }
    });
  }

 private:
  mutable std::mutex mu_;
  std::atomic<bool> closed_{false};
  std::shared_ptr<SessionBase> session_;
  asio::thread_pool* workers_;
  std::vector<std::function<void()>> callbacks_;
};

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void post_response(HttpResponse response) = 0;
  virtual void post_stream_start(int status, HeaderList headers, std::shared_ptr<StreamImpl> stream) = 0;
  virtual void post_stream_data(std::string data) = 0;
  virtual void post_stream_end() = 0;
  virtual void begin_shutdown() = 0;
  virtual void force_close() = 0;
  virtual void evict() = 0;  // closes the connection if it is still in its handshake

  // Admission state, guarded by Server::Impl::mu: the place in the server's list of
  // handshakes (oldest first) while not yet authenticated, or counted as established.
  std::optional<std::list<SessionBase*>::iterator> handshake_slot;
  bool established = false;
};

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

class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<SessionBase> session, asio::thread_pool* workers)
      : session_(std::move(session)), workers_(workers) {}
  ~ResponderImpl() override {
    if (!answered_.exchange(true)) {
      spdlog::warn("net: handler dropped its Responder without answering; sending 500");
      session_->post_response(
          HttpResponse{500, {{"Content-Type", "text/plain"}}, "internal error: no response\n"});
    }
  }
  void respond(HttpResponse response) override {
    if (answered_.exchange(true)) {
      spdlog::warn("net: Responder::respond called twice; ignored");
      return;
    }
    session_->post_response(std::move(response));
    session_.reset();  // answered: the connection no longer depends on this object
  }
  std::shared_ptr<ResponseStream> start_stream(int status, HeaderList headers) override {
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

 private:
  std::shared_ptr<SessionBase> session_;
  asio::thread_pool* workers_;
  std::atomic<bool> answered_{false};
};

// ---------------------------------------------------------------------------------------
// One TLS configuration in force: the context new connections handshake with (certificate,
// key, client CA, CRLs) and the allow-list. A reload makes a new one; every connection keeps
// the one it was made with (its SSL_CTX points back here through ex_data).
struct TlsContext {
  TlsServerConfig config;
  std::unique_ptr<ssl::context> ctx;
  std::shared_ptr<const std::vector<detail::X509CrlPtr>> crls;  // as loaded with the context
  struct stat crl_stat {};
};

struct Server::Impl {
  ServerConfig config;  // config.tls: as created; the TLS in force is `tls`
  HttpHandler handler;
  bool tls_listener = false;

  // CRLs, checked after every handshake (resumed sessions too) and, when the list changed,
  // again on the next request of every open connection. The file is watched (at most one
  // stat() a second): a new CRL written by `larder certs revoke` takes effect without a
  // restart. A file that cannot be read or parsed keeps the previous list (and is logged).
  //
  // reload_tls() swaps `tls` (and the CRLs with it) under crl_mu and bumps crl_generation: an
  // open connection is checked again (CRLs, allow-list) at its next request.
  using CrlList = std::vector<detail::X509CrlPtr>;
  mutable std::mutex crl_mu;
  std::shared_ptr<TlsContext> tls;          // guarded by crl_mu; null on a plain listener
  std::shared_ptr<const CrlList> crls;      // guarded by crl_mu
  std::atomic<uint64_t> crl_generation{0};  // bumped on every reload
  std::atomic<int64_t> crl_checked_ns{0};   // steady clock of the last stat()
  struct stat crl_stat {};                  // guarded by crl_mu: what was loaded
  void refresh_crls();
  std::shared_ptr<const CrlList> current_crls() const {
    std::lock_guard lock(crl_mu);
    return crls;
  }
  std::shared_ptr<TlsContext> current_tls() const {
    std::lock_guard lock(crl_mu);
    return tls;
  }

  // Declaration order matters: the io_context is destroyed before the state that sessions
  // still touch while their pending handlers are destroyed (registry, worker pool).
  std::mutex mu;  // guards sessions / running; not on the per-request path
  std::condition_variable cv;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::atomic<std::size_t> open{0};
  // Admission: connections still in the TLS handshake, oldest first (each session holds its
  // iterator), and the number of authenticated ones. A session removes itself under `mu`
  // when it closes, so every pointer here is alive while `mu` is held.
  std::list<SessionBase*> handshaking;
  std::size_t established = 0;
  std::atomic<uint64_t> accepted{0}, handshake_timeouts{0}, handshake_evictions{0}, handshake_failures{0},
      refused_at_capacity{0};
  bool running = false;
  bool stopping = false;
  uint16_t bound_port = 0;
  asio::io_context* signal_waiter = nullptr;  // run_until_signal's, while it waits
  std::unique_ptr<asio::thread_pool> workers;

  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_retry;
  std::vector<std::thread> io_threads;

  explicit Impl(int io_thread_count) : ioc(io_thread_count) {}

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  // A new TLS session joins the end of the handshake list; a plain one is established at once.
  void register_session(const std::shared_ptr<SessionBase>& s, bool handshake) {
    std::lock_guard lock(mu);
    sessions.emplace(s.get(), s);
    if (handshake) {
      s->handshake_slot = handshaking.insert(handshaking.end(), s.get());
    } else {
      s->established = true;
      ++established;
    }
  }
  // Takes the oldest connection still in its handshake off the list (it is closed on its own
  // strand); null if there is none or it is already closing. Caller holds `mu`.
  std::shared_ptr<SessionBase> evict_oldest_handshake_locked() {
    if (handshaking.empty()) return nullptr;
    SessionBase* oldest = handshaking.front();
    handshaking.pop_front();
    oldest->handshake_slot.reset();
    handshake_evictions.fetch_add(1);
    return oldest->weak_from_this().lock();
  }
  enum class Admission { kAdmitted, kEvicted, kFull };
  // A session whose peer was just admitted by the TLS checks leaves the handshake list and
  // counts against max_connections. It lost its place if it was evicted meanwhile.
  Admission promote(SessionBase* s) {
    std::lock_guard lock(mu);
    if (!s->handshake_slot) return Admission::kEvicted;
    handshaking.erase(*s->handshake_slot);
    s->handshake_slot.reset();
    if (established >= config.limits.max_connections) {
      refused_at_capacity.fetch_add(1);
      return Admission::kFull;
    }
    s->established = true;
    ++established;
    return Admission::kAdmitted;
  }
  void session_closed(SessionBase* s) {
    {
      std::lock_guard lock(mu);
      if (s->handshake_slot) {
        handshaking.erase(*s->handshake_slot);
        s->handshake_slot.reset();
      }
      if (s->established) {
        s->established = false;
        --established;
      }
      sessions.erase(s);
      open.fetch_sub(1);
    }
    cv.notify_all();
  }
  // Fails closed: expiry, revocation and the allow-list are checked again after every
  // handshake, which also covers resumed sessions (whose certificates were verified earlier).
  larder::Result<std::shared_ptr<const PeerIdentity>> admit_peer(SSL* ssl) const;
};

// Asio keeps its own pointer in the SSL_CTX "app data" slot, so ours lives in an ex_data index.
static int server_ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

static int verify_client_cert(int preverify_ok, X509_STORE_CTX* ctx) {
  if (preverify_ok != 1) return 0;
  if (X509_STORE_CTX_get_error_depth(ctx) != 0) return 1;
  X509* cert = X509_STORE_CTX_get_current_cert(ctx);
  uint32_t flags = X509_get_extension_flags(cert);
  // The purpose check accepts certificates without any EKU; lock 1 demands clientAuth explicitly.
  if ((flags & EXFLAG_XKUSAGE) == 0 || (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0) {
    X509_STORE_CTX_set_error(ctx, X509_V_ERR_INVALID_PURPOSE);
    return 0;
  }
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state =
      ssl ? static_cast<TlsContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_ex_index())) : nullptr;
  if (state == nullptr) {
    X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  const auto& allow = state->config.allowed_clients;
  if (!allow.empty()) {
    auto id = detail::peer_identity_from_x509(cert);
    if (!id || !peer_allowed(*id, allow)) {
      X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
      return 0;
    }
  }
  return 1;
}

larder::Result<std::shared_ptr<const PeerIdentity>> Server::Impl::admit_peer(SSL* ssl) const {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return make_error("tls.no_peer_cert", "client presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK)
    return make_error("tls.verify", "client certificate not verified");
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
    return make_error("tls.expired", "client certificate expired");
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
    return make_error("tls.not_yet_valid", "client certificate not yet valid");
  }
  static const CrlList kNone;
  auto list = current_crls();
  for (const auto& crl : list ? *list : kNone) {
    X509_REVOKED* revoked = nullptr;
    if (X509_CRL_get0_by_cert(crl.get(), &revoked, cert) == 1) {
      return make_error("tls.revoked", "client certificate revoked");
    }
  }
  auto id = detail::peer_identity_from_x509(cert);
  if (!id) return id.error();
  // The allow-list in force now (an open connection is checked again after a reload).
  auto state = current_tls();
  if (!state || !peer_allowed(*id, state->config.allowed_clients)) {
    return make_error("tls.not_allowed", "client certificate not on the allow-list");
  }
  return std::make_shared<const PeerIdentity>(std::move(*id));
}

namespace {
larder::Result<std::vector<detail::X509CrlPtr>> load_crls(const std::string& path);
}  // namespace

void Server::Impl::refresh_crls() {
  auto state = current_tls();
  if (!state) return;
  const std::string& path = state->config.crl_file;
  if (path.empty()) return;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = crl_checked_ns.load(std::memory_order_relaxed);
  if (now - last < 1'000'000'000 || !crl_checked_ns.compare_exchange_strong(last, now)) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    spdlog::error("net: CRL file {} is gone ({}); keeping the CRLs loaded before", path,
                  std::strerror(errno));
    return;
  }
  {
    std::lock_guard lock(crl_mu);
    if (st.st_ino == crl_stat.st_ino && st.st_size == crl_stat.st_size &&
        st.st_mtim.tv_sec == crl_stat.st_mtim.tv_sec && st.st_mtim.tv_nsec == crl_stat.st_mtim.tv_nsec) {
      return;
    }
  }
  auto loaded = load_crls(path);
  if (!loaded) {
    spdlog::error("net: CRL file {} changed but cannot be used ({}); keeping the CRLs loaded before", path,
                  loaded.error().message);
    return;
  }
  // The handshake's own check sees the new CRLs too (OpenSSL prefers the newest CRL of an issuer).
  X509_STORE* store = SSL_CTX_get_cert_store(state->ctx->native_handle());
  for (auto& crl : *loaded) X509_STORE_add_crl(store, crl.get());
  auto list = std::make_shared<const CrlList>(std::move(*loaded));
  {
    std::lock_guard lock(crl_mu);
    if (tls != state) return;  // reloaded meanwhile: the new context loaded the file itself
    crls = std::move(list);
    crl_stat = st;
  }
  crl_generation.fetch_add(1);
  spdlog::info("net: reloaded the CRLs from {}", path);
}

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

  void start() {
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
      tls_ = server_.current_tls();  // this connection's for its whole life
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
      server_.refresh_crls();
      crl_generation_ = server_.crl_generation.load();
      auto peer = server_.admit_peer(stream_->native_handle());
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
      server_.refresh_crls();
      if (uint64_t generation = server_.crl_generation.load(); generation != crl_generation_) {
        crl_generation_ = generation;
        if (auto peer = server_.admit_peer(stream_->native_handle()); !peer) {
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

// ---------------------------------------------------------------------------------------
void Server::Impl::do_accept() {
  acceptor->async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (!acceptor->is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    // Out of descriptors: one held by a connection still in its handshake is given back,
    // so sockets that never finish cannot keep clients out even when they exhaust the
    // process's limit. Otherwise back off briefly rather than spinning.
    std::shared_ptr<SessionBase> victim;
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE) {
      std::lock_guard lock(mu);
      victim = evict_oldest_handshake_locked();
    }
    if (victim) {
      victim->evict();
    } else {
      spdlog::warn("net: accept failed: {}", ec.message());
    }
    accept_retry->expires_after(victim ? 1ms : 50ms);
    accept_retry->async_wait([this](beast::error_code wec) {
      if (!wec && acceptor->is_open()) do_accept();
    });
    return;
  }
  beast::error_code opt_ec;
  auto endpoint = socket.remote_endpoint(opt_ec);
  if (opt_ec) {
    do_accept();
    return;
  }
  {
    std::shared_ptr<SessionBase> victim;
    {
      std::lock_guard lock(mu);
      if (stopping || established >= config.limits.max_connections) {
        if (!stopping) refused_at_capacity.fetch_add(1);
        spdlog::debug("net: refusing connection from {}: {} authenticated connections open",
                      endpoint.address().to_string(), established);
        socket.close(opt_ec);
        do_accept();
        return;
      }
      // Only this strand adds to the handshake list, so making room here holds until the
      // new session is registered below.
      if (tls_listener && handshaking.size() >= config.limits.max_handshakes)
        victim = evict_oldest_handshake_locked();
      open.fetch_add(1);
      accepted.fetch_add(1);
    }
    if (victim) victim->evict();
  }
  socket.set_option(tcp::no_delay(true), opt_ec);
  std::string remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  if (endpoint.address().is_v6())
    remote = "[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port());
  std::shared_ptr<SessionBase> session;
  if (tls_listener) {
    auto s = std::make_shared<Session<true>>(*this, std::move(socket), std::move(remote));
    register_session(s, true);
    s->start();
  } else {
    auto s = std::make_shared<Session<false>>(*this, std::move(socket), std::move(remote));
    register_session(s, false);
    s->start();
  }
  do_accept();
}

// ---------------------------------------------------------------------------------------
namespace {

larder::Result<asio::ip::address> parse_host(const std::string& host) {
  if (host == "localhost") return asio::ip::make_address("127.0.0.1");
  beast::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return make_error("net.config", "host '" + host + "' is not an IP address (or 'localhost')");
  return addr;
}

larder::Result<std::vector<detail::X509CrlPtr>> load_crls(const std::string& path) {
  auto text = [&]() -> larder::Result<std::string> {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr)
      return make_error("net.config", "cannot read CRL file " + path + ": " + std::strerror(errno));
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }();
  if (!text) return text.error();
  detail::BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  std::vector<detail::X509CrlPtr> out;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(crl);
  ERR_clear_error();
  if (out.empty()) return make_error("net.config", "CRL file " + path + " holds no PEM CRL");
  return out;
}

// The TLS context for `t`: certificate chain and key (and that they match), client CA, CRLs,
// the allow-list; errors name the file. Used by create() and reload_tls().
larder::Result<std::shared_ptr<TlsContext>> load_tls_context(const TlsServerConfig& t) {
  if (t.cert_file.empty() || t.key_file.empty()) {
    return make_error("net.config", "TLS needs cert_file and key_file (the server certificate and its key)");
  }
  if (t.client_ca_file.empty()) {
    return make_error("net.config", "TLS needs client_ca_file: client certificates are mandatory (lock 1)");
  }
  auto state = std::make_shared<TlsContext>();
  state->config = t;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // TLS 1.2 suites: forward-secret AEAD only.
  SSL_CTX_set_cipher_list(c, "ECDHE+AESGCM:ECDHE+CHACHA20");
  // The key before the certificate: OpenSSL refuses a key that does not match a loaded
  // certificate as if it could not read it, but drops a mismatched key when the certificate
  // comes second, and the check below then names the mismatch.
  if (SSL_CTX_use_PrivateKey_file(c, t.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return detail::file_load_error("server key", t.key_file, "PEM private key");
  }
  if (SSL_CTX_use_certificate_chain_file(c, t.cert_file.c_str()) != 1) {
    return detail::file_load_error("server certificate", t.cert_file, "PEM certificate (chain)");
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return make_error("file.invalid",
                      "server key " + t.key_file + " does not belong to the certificate " + t.cert_file,
                      detail::openssl_errors(""));
  }
  if (SSL_CTX_load_verify_locations(c, t.client_ca_file.c_str(), nullptr) != 1) {
    return detail::file_load_error("client CA bundle", t.client_ca_file, "PEM certificate bundle");
  }
  STACK_OF(X509_NAME)* ca_names = SSL_load_client_CA_file(t.client_ca_file.c_str());
  if (ca_names == nullptr) {
    return make_error("net.config", "client CA bundle " + t.client_ca_file + " holds no certificate");
  }
  SSL_CTX_set_client_CA_list(c, ca_names);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(c);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  if (!t.crl_file.empty()) {
    auto crls = load_crls(t.crl_file);
    if (!crls) return crls.error();
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    for (auto& crl : *crls) {
      if (X509_STORE_add_crl(store, crl.get()) != 1) {
        return make_error("net.config",
                          "cannot use CRL from " + t.crl_file + ": " + detail::openssl_errors());
      }
      if (X509_cmp_current_time(X509_CRL_get0_nextUpdate(crl.get())) < 0) {
        spdlog::warn(
            "net: CRL in {} is past its nextUpdate: every client will be refused until it is renewed",
            t.crl_file);
      }
    }
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);
    state->crls = std::make_shared<const std::vector<detail::X509CrlPtr>>(std::move(*crls));
    ::stat(t.crl_file.c_str(), &state->crl_stat);
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_client_cert);
  SSL_CTX_set_verify_depth(c, 8);
  // Resumption: stateless tickets (TLS 1.3 and 1.2) plus the server-side cache. The
  // context id is required once client certificates are verified.
  static const unsigned char kSessionContext[] = "larder-mtls";
  SSL_CTX_set_session_id_context(c, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_timeout(c, 3600);
  SSL_CTX_set_ex_data(c, server_ex_index(), state.get());
  state->ctx = std::move(ctx);
  return state;
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() {
  stop();
}

larder::Result<std::unique_ptr<Server>> Server::create(ServerConfig config, HttpHandler handler) {
  if (!handler) return make_error("net.config", "no request handler");
  auto& limits = config.limits;
  if (limits.worker_threads == 0 || limits.io_threads == 0 || limits.max_connections == 0 ||
      limits.max_handshakes == 0) {
    return make_error("net.config",
                      "worker_threads, io_threads, max_connections and max_handshakes must be positive");
  }
  if (limits.request_timeout.count() <= 0 || limits.idle_timeout.count() <= 0 ||
      limits.handshake_timeout.count() <= 0) {
    return make_error("net.config", "request_timeout, handshake_timeout and idle_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>(static_cast<int>(limits.io_threads));
  impl->handler = std::move(handler);
  if (!config.plain_http) {
    auto state = load_tls_context(config.tls);
    if (!state) return state.error();
    impl->tls_listener = true;
    impl->crls = (*state)->crls;
    impl->crl_stat = (*state)->crl_stat;
    impl->tls = std::move(*state);
  }
  impl->config = std::move(config);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

larder::Result<void> Server::start() {
  auto& im = *impl_;
  std::lock_guard lock(im.mu);
  if (im.running) return make_error("net.state", "server already started");
  if (im.stopping) return make_error("net.state", "a stopped server cannot be restarted; create a new one");
  auto addr = parse_host(im.config.host);
  if (!addr) return addr.error();
  if (im.config.plain_http && !addr->is_loopback()) {
    return make_error("net.plain_not_loopback", "plain HTTP is only allowed on a loopback address, not on '" +
                                                    im.config.host + "'; configure TLS certificates instead");
  }
  beast::error_code ec;
  tcp::endpoint ep(*addr, im.config.port);
  im.acceptor.emplace(asio::make_strand(im.ioc));
  im.acceptor->open(ep.protocol(), ec);
  if (!ec) im.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor->bind(ep, ec);
  if (!ec) im.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    im.acceptor.reset();
    return make_error("net.listen", "cannot listen on " + im.config.host + ":" +
                                        std::to_string(im.config.port) + ": " + ec.message());
  }
  im.bound_port = im.acceptor->local_endpoint(ec).port();
  im.accept_retry.emplace(im.acceptor->get_executor());
  im.workers = std::make_unique<asio::thread_pool>(im.config.limits.worker_threads);
  im.work.emplace(im.ioc.get_executor());
  im.do_accept();
  for (std::size_t i = 0; i < im.config.limits.io_threads; ++i) {
    im.io_threads.emplace_back([&im] {
      for (;;) {
        try {
          im.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("net: I/O thread caught: {}", e.what());
        }
      }
    });
  }
  im.running = true;
  spdlog::info(
      "net: listening on {}:{} ({})", im.config.host, im.bound_port,
      im.config.plain_http ? "plain HTTP, loopback only" : "HTTPS with mandatory client certificates");
  return {};
}

uint16_t Server::port() const {
  return impl_->bound_port;
}

std::size_t Server::connection_count() const {
  return impl_->open.load();
}

ServerStats Server::stats() const {
  auto& im = *impl_;
  ServerStats s;
  {
    std::lock_guard lock(im.mu);
    s.open = im.open.load();
    s.handshaking = im.handshaking.size();
    s.established = im.established;
  }
  s.accepted = im.accepted.load();
  s.handshake_timeouts = im.handshake_timeouts.load();
  s.handshake_evictions = im.handshake_evictions.load();
  s.handshake_failures = im.handshake_failures.load();
  s.refused_at_capacity = im.refused_at_capacity.load();
  return s;
}

void Server::stop() {
  auto& im = *impl_;
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(im.mu);
    if (!im.running) return;
    im.running = false;
    im.stopping = true;
    if (im.signal_waiter != nullptr) im.signal_waiter->stop();
    for (auto& [raw, weak] : im.sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  asio::post(im.acceptor->get_executor(), [&im] {
    beast::error_code ec;
    im.acceptor->close(ec);
    im.accept_retry->cancel();
  });
  for (auto& s : live) s->begin_shutdown();
  live.clear();
  {
    std::unique_lock lock(im.mu);
    const auto grace = im.config.limits.stop_grace;
    if (!im.cv.wait_for(lock, grace, [&] { return im.open.load() == 0; })) {
      if (im.config.on_stop_deadline) {
        spdlog::warn("net: {} connections still busy after {} ms; cancelling their work", im.open.load(),
                     grace.count());
        lock.unlock();
        im.config.on_stop_deadline();
        lock.lock();
      }
      if (!im.cv.wait_for(lock, im.config.on_stop_deadline ? 5s : 0s, [&] { return im.open.load() == 0; })) {
        spdlog::warn("net: {} connections still busy; closing them", im.open.load());
        for (auto& [raw, weak] : im.sessions) {
          if (auto s = weak.lock()) live.push_back(std::move(s));
        }
      }
    }
  }
  if (!live.empty()) {
    for (auto& s : live) s->force_close();
    live.clear();
    std::unique_lock lock(im.mu);
    im.cv.wait_for(lock, 5s, [&] { return im.open.load() == 0; });
  }
  im.workers->join();  // handlers still running finish (their answers go nowhere once closed)
  im.work.reset();
  im.ioc.stop();
  for (auto& t : im.io_threads) t.join();
  im.io_threads.clear();
  spdlog::info("net: server on port {} stopped", im.bound_port);
}

int Server::wait_for_signal(const std::vector<int>& which) {
  return serve_signals(which, [](int) { return false; });
}

int Server::serve_signals(const std::vector<int>& which, const std::function<bool(int)>& on_signal) {
  auto& im = *impl_;
  asio::io_context signals_ioc;
  asio::signal_set signals(signals_ioc);
  for (int signo : which) signals.add(signo);
  int received = 0;
  std::function<void(beast::error_code, int)> handle = [&](beast::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("net: signal {} received", signo);
    if (on_signal(signo)) {
      signals.async_wait(handle);  // the next one (queued ones are delivered at once)
    } else {
      received = signo;
    }
  };
  signals.async_wait(handle);
  {
    std::lock_guard lock(im.mu);
    if (!im.running) return 0;
    im.signal_waiter = &signals_ioc;  // stop() from another thread ends the wait too
  }
  signals_ioc.run();
  {
    std::lock_guard lock(im.mu);
    im.signal_waiter = nullptr;
  }
  return received;
}

larder::Result<void> Server::reload_tls(const TlsServerConfig& tls) {
  auto prepared = prepare_tls(tls);
  if (!prepared) return prepared.error();
  use_tls(*prepared);
  return {};
}

larder::Result<std::shared_ptr<TlsContext>> Server::prepare_tls(const TlsServerConfig& tls) const {
  if (!impl_->tls_listener) return make_error("net.config", "a plain-HTTP listener has no TLS to reload");
  return load_tls_context(tls);
}

void Server::use_tls(std::shared_ptr<TlsContext> prepared) {
  auto& im = *impl_;
  if (!prepared || !im.tls_listener) return;
  {
    std::lock_guard lock(im.crl_mu);
    im.crls = prepared->crls;
    im.crl_stat = prepared->crl_stat;
    im.crl_checked_ns.store(0);
    im.tls = std::move(prepared);
  }
  im.crl_generation.fetch_add(1);  // open connections: CRLs and allow-list again at their next request
}

void Server::run_until_signal() {
  wait_for_signal();
  stop();
}

}  // namespace larder::net
