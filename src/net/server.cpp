// The HTTPS server: the listener, admission (max_connections, max_handshakes), stop, signals
// and TLS reload. Each connection is a Session (net/session.cpp); the TLS context and its CRLs
// are net/tls_context.cpp and net/crl_watch.cpp; a handler answers through net/responder.cpp.
#include "net/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>

#include <cerrno>

#include "net/server_impl.h"
#include "net/tls_context.h"

namespace larder::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

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
  auto session = make_session(*this, std::move(socket), std::move(remote), tls_listener);
  register_session(session, tls_listener);
  session->start();
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
  auto impl = std::make_unique<Impl>(static_cast<int>(limits.io_threads), config.crl_clock);
  impl->handler = std::move(handler);
  if (!config.plain_http) {
    auto state = load_tls_context(config.tls);
    if (!state) return state.error();
    impl->tls_listener = true;
    impl->crl_watch.use(std::move(*state));
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
  // Open connections: CRLs and allow-list again at their next request.
  im.crl_watch.use(std::move(prepared));
}

void Server::run_until_signal() {
  wait_for_signal();
  stop();
}

}  // namespace larder::net
