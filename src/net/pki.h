// A small PKI for Larder's mTLS lock: an EC P-256 certificate authority, server and client
// certificates, revocation and CRLs, and a directory-backed store used by `larder certs`.
// Everything goes through the OpenSSL C API (no shelling out). Keys are written 0600.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace larder::net::pki {

using TimePoint = std::chrono::system_clock::time_point;

// A certificate and its private key, both PEM.
struct KeyedCertificate {
  std::string cert_pem;
  std::string key_pem;
};

enum class CertKind { kServer, kClient };

struct CertSpec {
  CertKind kind = CertKind::kClient;
  std::string common_name;
  // SANs: "DNS:name", "IP:1.2.3.4", "URI:...", "email:..."; a bare value is taken as IP if it
  // parses as an IPv4/IPv6 address, else DNS.
  std::vector<std::string> sans;
  std::optional<TimePoint> not_before;  // default: now - 5 minutes
  std::optional<TimePoint> not_after;   // default: not_before + validity_days
  int validity_days = 825;
  bool omit_extended_key_usage_for_role =
      false;  // tests: a client cert without clientAuth (server cert without serverAuth)
};

// Self-signed CA: basicConstraints critical CA:true, keyUsage critical keyCertSign+cRLSign.
larder::Result<KeyedCertificate> create_ca(std::string_view common_name, int validity_days = 3650,
                                           std::optional<TimePoint> not_before = std::nullopt,
                                           std::optional<TimePoint> not_after = std::nullopt);

// A leaf certificate signed by `ca`: EC P-256 key, CA:false, keyUsage digitalSignature,
// EKU serverAuth (server) or clientAuth (client), random 128-bit serial.
larder::Result<KeyedCertificate> issue_certificate(const KeyedCertificate& ca, const CertSpec& spec);

struct RevokedEntry {
  std::string serial;  // hex, as in CertificateInfo::serial
  TimePoint revoked_at;
};
// A CRL (PEM) signed by the CA, valid from now for `validity_days`.
larder::Result<std::string> create_crl(const KeyedCertificate& ca, const std::vector<RevokedEntry>& revoked,
                                       int validity_days = 30);

struct CertificateInfo {
  std::string subject_cn;
  std::string issuer;  // RFC 2253
  std::string serial;  // uppercase hex
  std::vector<std::string> sans;
  bool is_ca = false;
  bool has_extended_key_usage = false;
  bool server_auth = false;    // EKU serverAuth
  bool client_auth = false;    // EKU clientAuth
  bool key_cert_sign = false;  // keyUsage keyCertSign
  bool crl_sign = false;       // keyUsage cRLSign
  std::string key_type;        // e.g. "EC prime256v1"
  TimePoint not_before, not_after;
  std::string sha256;  // lowercase hex of DER
};
larder::Result<CertificateInfo> inspect_certificate(std::string_view pem);

struct CrlInfo {
  std::string issuer;
  std::vector<std::string> revoked_serials;  // uppercase hex
  TimePoint last_update, next_update;
};
larder::Result<CrlInfo> inspect_crl(std::string_view pem);
// True if the CRL's signature verifies with the CA certificate's key.
larder::Result<bool> crl_signed_by(std::string_view crl_pem, std::string_view ca_cert_pem);

// DER bytes of the first certificate in `pem`.
larder::Result<std::string> certificate_der(std::string_view pem);

larder::Result<void> write_file(const std::string& path, std::string_view content, unsigned mode = 0644);

// A PKI directory (default `.larder/certs`):
//   ca.crt ca.key  crl.pem  index.tsv
//   server/<name>.crt server/<name>.key   client/<name>.crt client/<name>.key
// index.tsv: kind<TAB>name<TAB>serial<TAB>not_after(unix)<TAB>revoked_at(unix or -)
class CertStore {
 public:
  explicit CertStore(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  larder::Result<void> init(std::string_view ca_common_name = "Larder CA");  // fails if a CA exists
  bool has_ca() const;
  larder::Result<KeyedCertificate> load_ca() const;

  struct Entry {
    CertKind kind;
    std::string name;
    std::string serial;
    TimePoint not_after;
    std::optional<TimePoint> revoked_at;
  };
  // Issues and saves `<kind>/<name>.crt/.key`; the name must be [A-Za-z0-9._-]+, unused.
  larder::Result<Entry> issue(CertSpec spec, std::string_view name);
  // Marks every unrevoked certificate called `name` as revoked and rewrites crl.pem.
  larder::Result<std::vector<Entry>> revoke(std::string_view name);
  larder::Result<std::vector<Entry>> list() const;
  larder::Result<void> write_crl();  // crl.pem from index.tsv

  std::string ca_cert_path() const { return dir_ + "/ca.crt"; }
  std::string ca_key_path() const { return dir_ + "/ca.key"; }
  std::string crl_path() const { return dir_ + "/crl.pem"; }
  std::string cert_path(CertKind kind, std::string_view name) const;
  std::string key_path(CertKind kind, std::string_view name) const;

 private:
  larder::Result<void> save_index(const std::vector<Entry>& entries) const;
  std::string dir_;
};

std::string_view kind_name(CertKind kind);  // "server" / "client"

}  // namespace larder::net::pki
