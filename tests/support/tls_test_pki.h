// A throwaway PKI in a temporary directory for TLS tests: a CA, a server certificate for
// 127.0.0.1/localhost, and client certificates on demand (valid or deliberately broken).
// Built with larder::net::pki, so the tests also exercise the module `larder certs` uses.
#pragma once

#include <string>

#include "net/pki.h"

namespace larder::testing {

struct CertFiles {
  std::string cert, key;
};

class TlsTestPki {
 public:
  // Creates <tmp>/larder-pki-XXXXXX with a CA and a server certificate; throws on failure.
  explicit TlsTestPki(const std::string& ca_name = "Larder Test CA");
  ~TlsTestPki();  // removes the directory
  TlsTestPki(const TlsTestPki&) = delete;
  TlsTestPki& operator=(const TlsTestPki&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca_cert() const { return store_.ca_cert_path(); }
  CertFiles server() const { return server_; }
  std::string crl() const { return store_.crl_path(); }
  net::pki::CertStore& store() { return store_; }

  // Issues a client certificate `name` (CN = name) with the given tweaks; throws on failure.
  CertFiles client(const std::string& name, net::pki::CertSpec spec = {});
  // Revokes `name` and rewrites the CRL.
  void revoke(const std::string& name);

 private:
  std::string dir_;
  net::pki::CertStore store_;
  CertFiles server_;
};

}  // namespace larder::testing
