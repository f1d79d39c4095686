// larder::net::Server — an HTTP/1.1 server over TLS with mandatory client certificates
// (lock 1). The handshake itself refuses clients without a certificate from the configured
// CA, with an expired / not-yet-valid / revoked certificate, without the clientAuth extended
// key usage, or (if an allow-list is set) not on it. Plain HTTP exists only for loopback
// development and must be asked for explicitly.
#pragma once

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "net/http.h"

namespace larder::net {

struct TlsServerConfig {
  std::string cert_file, key_file;           // server cert (+chain in the same PEM) and key
  std::string client_ca_file;                // CA bundle for client certificates (mandatory unless plain)
  std::string crl_file;                      // optional PEM CRL(s); when set, every client cert is checked
  std::vector<std::string> allowed_clients;  // optional allow-list: "cn:<CN>", "san:<SAN>", "sha256:<hex>"
};

struct ServerLimits {                                 // safe defaults
  std::size_t max_body_bytes = 1 << 20;               // larger bodies get 413
  std::size_t max_header_bytes = 16 * 1024;           // larger header blocks get 431
  std::chrono::milliseconds request_timeout{30000};   // a whole request must arrive within this
  std::chrono::milliseconds handshake_timeout{5000};  // TLS handshake, from accept to an admitted peer
  std::chrono::milliseconds idle_timeout{60000};      // keep-alive idle; also the write stall limit
  // Authenticated connections (plain HTTP: every connection). While this many are open, new
  // connections are accepted and closed at once; a handshake that completes then is closed.
  std::size_t max_connections = 1024;
  // Connections still in the TLS handshake. A new connection beyond this closes the oldest of
  // them (never an authenticated one), so sockets that never finish cannot lock clients out.
  std::size_t max_handshakes = 512;
  std::size_t worker_threads = 8;  // handler pool
  std::size_t io_threads = 1;
  // stop(): how long requests in flight may take to answer before on_stop_deadline runs (and,
  // 5 s after it, the connections still open are closed).
  std::chrono::milliseconds stop_grace{30000};
};

// What the server has seen, for tests and metrics. Gauges are a snapshot.
struct ServerStats {
  std::size_t open = 0;                   // sockets held, in any state (as connection_count())
  std::size_t handshaking = 0;            // accepted, not yet authenticated (at most max_handshakes)
  std::size_t established = 0;            // authenticated (at most max_connections)
  std::uint64_t accepted = 0;             // connections admitted since start
  std::uint64_t handshake_timeouts = 0;   // closed because handshake_timeout passed
  std::uint64_t handshake_evictions = 0;  // closed, oldest first, to admit a newer connection
  std::uint64_t handshake_failures = 0;   // not TLS, refused certificate, broken or cut short
  std::uint64_t refused_at_capacity = 0;  // closed because max_connections were established
};

// How a TLS handshake ended: "ok" (an admitted peer), or why not — "timeout", "evicted" (to
// admit a newer connection), "closed" (before its ClientHello), "not_tls", "no_certificate",
// "certificate" (not from the CA, or failed verification), "expired", "revoked",
// "not_allowed" (not on the allow-list), "capacity" (max_connections were established),
// "tls" (any other TLS failure). A closed set: metrics label by it.
using HandshakeObserver = std::function<void(std::string_view outcome, std::chrono::steady_clock::duration)>;

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;        // 0 = pick a free port; see Server::port()
  bool plain_http = false;  // allowed only if host is a loopback address; start() fails otherwise
  TlsServerConfig tls;
  ServerLimits limits;
  // Called once per TLS connection when its handshake ends, with the time since accept, on a
  // network thread (keep it short). Not called on plain-HTTP listeners.
  HandshakeObserver on_handshake;
  // Called by stop() when requests are still in flight after limits.stop_grace: the moment to
  // cancel their work (a server stopping cancels its statements), so they answer at once.
  std::function<void()> on_stop_deadline;
  // Tests: the steady clock the CRL watcher reads to look at tls.crl_file again (at most once
  // a second). Null: std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> crl_clock;
};

struct TlsContext;  // a loaded TLS configuration (net/tls_context.h)

class Server {
 public:
  // Validates the configuration and loads certificates, keys and CRLs (errors name the file).
  static larder::Result<std::unique_ptr<Server>> create(ServerConfig config, HttpHandler handler);
  ~Server();  // stop()s if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  larder::Result<void> start();  // binds + listens; returns when accepting
  uint16_t port() const;
  // Graceful: stop accepting, close idle connections and streams, let in-flight handlers
  // answer (with Connection: close; up to limits.stop_grace, then on_stop_deadline, then up to
  // 5 s more, then force-close), join all threads.
  // Idempotent. Must not be called from a handler (it joins the handler pool).
  void stop();
  // Blocks until SIGTERM/SIGINT (or until stop() is called from another thread), then stop().
  void run_until_signal();
  // Blocks until one of `signals` arrives (returned) or stop() is called from another thread
  // (0); does not stop. The signals are taken from the process only while it waits.
  int wait_for_signal(const std::vector<int>& signals = {SIGINT, SIGTERM});

  // The same, handing each of `signals` to on_signal as it arrives (on this thread), until
  // on_signal returns false (that signal is returned) or stop() is called (0). The signals stay
  // taken from the process for the whole call: one arriving while on_signal runs is queued
  // (asio counts them), never the default action.
  int serve_signals(const std::vector<int>& signals, const std::function<bool(int)>& on_signal);

  // Reload (SIGHUP): the certificate chain, key, client CA, CRL file and allow-list for NEW
  // connections; an open connection keeps its context and is checked against the new CRLs and
  // allow-list at its next request. All or nothing: on an error nothing changes. Limits,
  // address and threads are fixed at create(). Refused on a plain-HTTP listener.
  larder::Result<void> reload_tls(const TlsServerConfig& tls);
  // The same in two steps, for a caller that must check more before anything changes:
  // prepare_tls() loads and checks the files (changes nothing), use_tls() cannot fail.
  larder::Result<std::shared_ptr<TlsContext>> prepare_tls(const TlsServerConfig& tls) const;
  void use_tls(std::shared_ptr<TlsContext> prepared);

  // Connections currently open (for tests and metrics).
  std::size_t connection_count() const;
  ServerStats stats() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace larder::net
