// Internal to larder_net: one TLS configuration of the server (the context new connections
// handshake with, and what is checked after each handshake), and loading it from files.
#pragma once

#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/openssl_util.h"
#include "net/server.h"

namespace larder::net {

using CrlList = std::vector<detail::X509CrlPtr>;

// One TLS configuration in force: the context new connections handshake with (certificate,
// key, client CA, CRLs) and the allow-list. A reload makes a new one; every connection keeps
// the one it was made with (its SSL_CTX points back here through ex_data).
struct TlsContext {
  TlsServerConfig config;
  std::unique_ptr<boost::asio::ssl::context> ctx;
  std::shared_ptr<const CrlList> crls;  // as loaded with the context
  struct stat crl_stat {};
};

// The TLS context for `t`: certificate chain and key (and that they match), client CA, CRLs,
// the allow-list; errors name the file. Used by create() and reload_tls().
larder::Result<std::shared_ptr<TlsContext>> load_tls_context(const TlsServerConfig& t);

// The PEM CRLs in `path` (at least one).
larder::Result<CrlList> load_crls(const std::string& path);

}  // namespace larder::net
