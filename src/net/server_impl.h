// Internal to larder_net: the server's state, shared by accept/stop (server.cpp) and the
// connections (session.cpp).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/error.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/crl_watch.h"
#include "net/server.h"
#include "net/session.h"

namespace larder::net {

struct Server::Impl {
  ServerConfig config;  // config.tls: as created; the TLS in force is crl_watch.current_tls()
  HttpHandler handler;
  bool tls_listener = false;

  // The TLS configuration in force (null on a plain listener) and its CRLs, watched for
  // change; reload_tls() swaps it.
  CrlWatch crl_watch;

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
  boost::asio::io_context* signal_waiter = nullptr;  // run_until_signal's, while it waits
  std::unique_ptr<boost::asio::thread_pool> workers;

  boost::asio::io_context ioc;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor;
  std::optional<boost::asio::steady_timer> accept_retry;
  std::vector<std::thread> io_threads;

  Impl(int io_thread_count, CrlWatch::Clock crl_clock)
      : crl_watch(std::move(crl_clock)), ioc(io_thread_count) {}

  void do_accept();
  void on_accept(boost::beast::error_code ec, boost::asio::ip::tcp::socket socket);
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
};

}  // namespace larder::net
