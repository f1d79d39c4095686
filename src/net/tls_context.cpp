#include "net/tls_context.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace larder::net {

namespace ssl = boost::asio::ssl;

namespace {

// Asio keeps its own pointer in the SSL_CTX "app data" slot, so ours lives in an ex_data index.
int server_ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int verify_client_cert(int preverify_ok, X509_STORE_CTX* ctx) {
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

}  // namespace

larder::Result<CrlList> load_crls(const std::string& path) {
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
  CrlList out;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(crl);
  ERR_clear_error();
  if (out.empty()) return make_error("net.config", "CRL file " + path + " holds no PEM CRL");
  return out;
}

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
    state->crls = std::make_shared<const CrlList>(std::move(*crls));
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

}  // namespace larder::net
