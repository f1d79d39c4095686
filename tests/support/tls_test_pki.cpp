#include "tls_test_pki.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace larder::testing {

namespace {
std::string make_temp_dir() {
  std::string base = (std::filesystem::temp_directory_path() / "larder-pki-XXXXXX").string();
  std::vector<char> buf(base.begin(), base.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + base);
  return std::string(buf.data());
}
}  // namespace

TlsTestPki::TlsTestPki(const std::string& ca_name) : dir_(make_temp_dir()), store_(dir_ + "/certs") {
  if (auto r = store_.init(ca_name); !r) throw std::runtime_error("pki init: " + r.error().message);
  net::pki::CertSpec spec;
  spec.kind = net::pki::CertKind::kServer;
  spec.common_name = "larder-test-server";
  spec.sans = {"127.0.0.1", "localhost", "::1"};
  if (auto r = store_.issue(spec, "server"); !r) throw std::runtime_error("pki server: " + r.error().message);
  server_ = {store_.cert_path(net::pki::CertKind::kServer, "server"),
             store_.key_path(net::pki::CertKind::kServer, "server")};
}

TlsTestPki::~TlsTestPki() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

CertFiles TlsTestPki::client(const std::string& name, net::pki::CertSpec spec) {
  spec.kind = net::pki::CertKind::kClient;
  if (spec.common_name.empty()) spec.common_name = name;
  if (auto r = store_.issue(spec, name); !r)
    throw std::runtime_error("pki client " + name + ": " + r.error().message);
  return {store_.cert_path(net::pki::CertKind::kClient, name),
          store_.key_path(net::pki::CertKind::kClient, name)};
}

void TlsTestPki::revoke(const std::string& name) {
  if (auto r = store_.revoke(name); !r)
    throw std::runtime_error("pki revoke " + name + ": " + r.error().message);
}

}  // namespace larder::testing
