// Internal to larder_net: the TLS configuration in force and its CRLs, watched for change.
//
// CRLs are checked after every handshake (resumed sessions too) and, when the list changed,
// again on the next request of every open connection. The file is watched (at most one stat()
// a second, on the watcher's clock): a new CRL written by `larder certs revoke` takes effect
// without a restart. A file that cannot be read or parsed keeps the previous list (and is
// logged).
//
// use() swaps the TLS context (and the CRLs with it) and bumps generation(): an open
// connection is checked again (CRLs, allow-list) at its next request.
#pragma once

#include <openssl/ssl.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "base/result.h"
#include "net/peer_identity.h"
#include "net/tls_context.h"

namespace larder::net {

class CrlWatch {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `clock` decides when the file is looked at again; null: std::chrono::steady_clock::now.
  explicit CrlWatch(Clock clock = nullptr);

  // The TLS context new connections use from now on (null on a plain listener), with the CRLs
  // it was loaded with; open connections are checked again at their next request.
  void use(std::shared_ptr<TlsContext> tls);
  std::shared_ptr<TlsContext> current_tls() const;
  std::shared_ptr<const CrlList> current_crls() const;
  // Bumped whenever the CRLs or the TLS context change.
  std::uint64_t generation() const { return generation_.load(); }

  // Looks at the CRL file if a second has passed since the last look, and loads it if it
  // changed (into the context's store too, so the handshake's own check sees it).
  void refresh();

  // Fails closed: expiry, revocation and the allow-list are checked again after every
  // handshake, which also covers resumed sessions (whose certificates were verified earlier).
  larder::Result<std::shared_ptr<const PeerIdentity>> admit_peer(SSL* ssl) const;

 private:
  std::chrono::steady_clock::time_point now() const;

  Clock clock_;
  mutable std::mutex mu_;
  std::shared_ptr<TlsContext> tls_;           // guarded by mu_; null on a plain listener
  std::shared_ptr<const CrlList> crls_;       // guarded by mu_
  struct stat crl_stat_ {};                   // guarded by mu_: what was loaded
  std::atomic<std::uint64_t> generation_{0};  // bumped on every reload
  std::atomic<int64_t> checked_ns_{0};        // the clock at the last stat()
};

}  // namespace larder::net
