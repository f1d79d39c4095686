#include "net/crl_watch.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace larder::net {

CrlWatch::CrlWatch(Clock clock) : clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point CrlWatch::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void CrlWatch::use(std::shared_ptr<TlsContext> tls) {
  static const struct stat kNoFile {};
  {
    std::lock_guard lock(mu_);
    crls_ = tls ? tls->crls : nullptr;
    crl_stat_ = tls ? tls->crl_stat : kNoFile;
    checked_ns_.store(0);
    tls_ = std::move(tls);
  }
  generation_.fetch_add(1);
}

std::shared_ptr<TlsContext> CrlWatch::current_tls() const {
  std::lock_guard lock(mu_);
  return tls_;
}

std::shared_ptr<const CrlList> CrlWatch::current_crls() const {
  std::lock_guard lock(mu_);
  return crls_;
}

larder::Result<std::shared_ptr<const PeerIdentity>> CrlWatch::admit_peer(SSL* ssl) const {
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

void CrlWatch::refresh() {
  auto state = current_tls();
  if (!state) return;
  const std::string& path = state->config.crl_file;
  if (path.empty()) return;
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
  int64_t last = checked_ns_.load(std::memory_order_relaxed);
  if (now_ns - last < 1'000'000'000 || !checked_ns_.compare_exchange_strong(last, now_ns)) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    spdlog::error("net: CRL file {} is gone ({}); keeping the CRLs loaded before", path,
                  std::strerror(errno));
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (st.st_ino == crl_stat_.st_ino && st.st_size == crl_stat_.st_size &&
        st.st_mtim.tv_sec == crl_stat_.st_mtim.tv_sec && st.st_mtim.tv_nsec == crl_stat_.st_mtim.tv_nsec) {
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
    std::lock_guard lock(mu_);
    if (tls_ != state) return;  // reloaded meanwhile: the new context loaded the file itself
    crls_ = std::move(list);
    crl_stat_ = st;
  }
  generation_.fetch_add(1);
  spdlog::info("net: reloaded the CRLs from {}", path);
}

}  // namespace larder::net
