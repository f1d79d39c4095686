// The PKI module: EC P-256 CA, leaf certificates, CRLs, and the on-disk store used by
// `larder certs`. OpenSSL C API only.
#include "net/pki.h"

#include "base/encoding.h"
#include "base/files.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "net/openssl_util.h"

namespace larder::net::pki {

using namespace larder::net::detail;
namespace fs = std::filesystem;

namespace {

Error ssl_error(std::string what) {
  return make_error("pki.openssl", what + ": " + openssl_errors());
}

larder::Result<EvpPkeyPtr> generate_p256_key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return ssl_error("cannot generate an EC P-256 key");
  return key;
}

larder::Result<EvpPkeyPtr> load_key(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return ssl_error("cannot read the private key PEM");
  return key;
}

larder::Result<X509Ptr> load_cert(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return ssl_error("cannot read the certificate PEM");
  return cert;
}

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

larder::Result<std::string> cert_to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return ssl_error("cannot encode the certificate");
  return bio_string(bio.get());
}

larder::Result<std::string> key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ssl_error("cannot encode the private key");
  }
  return bio_string(bio.get());
}

larder::Result<void> set_random_serial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return ssl_error("no randomness for the serial number");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x40;  // and always 16 bytes long
  BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return ssl_error("cannot set the serial number");
  }
  return {};
}

larder::Result<void> add_ext(X509* issuer, X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr)
    return ssl_error(std::string("cannot build extension ") + OBJ_nid2sn(nid) + "=" + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return ssl_error("cannot add an extension");
  return {};
}

larder::Result<void> set_validity(X509* cert, TimePoint nb, TimePoint na) {
  if (na <= nb) return make_error("pki.validity", "not_after must be later than not_before");
  if (ASN1_TIME_set(X509_getm_notBefore(cert), std::chrono::system_clock::to_time_t(nb)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), std::chrono::system_clock::to_time_t(na)) == nullptr) {
    return ssl_error("cannot set the validity window");
  }
  return {};
}

larder::Result<void> set_cn(X509_NAME* name, std::string_view cn) {
  if (cn.empty() || cn.size() > 64) return make_error("pki.name", "the common name must be 1..64 characters");
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1) {
    return ssl_error("cannot set the common name");
  }
  return {};
}

bool is_ip(std::string_view s) {
  std::string z(s);
  unsigned char buf[16];
  return inet_pton(AF_INET, z.c_str(), buf) == 1 || inet_pton(AF_INET6, z.c_str(), buf) == 1;
}

// "DNS:a,IP:1.2.3.4" for X509V3_EXT_conf; refuses values that would change the list's meaning.
larder::Result<std::string> san_config(const std::vector<std::string>& sans) {
  std::string out;
  for (const auto& raw : sans) {
    std::string_view s(raw);
    std::string type, value;
    auto colon = s.find(':');
    std::string_view prefix = colon == std::string_view::npos ? std::string_view{} : s.substr(0, colon);
    if (prefix == "DNS" || prefix == "IP" || prefix == "URI" || prefix == "email") {
      type = std::string(prefix);
      value = std::string(s.substr(colon + 1));
    } else {
      value = raw;
      type = is_ip(value) ? "IP" : "DNS";
    }
    if (value.empty()) return make_error("pki.san", "empty subjectAltName in '" + raw + "'");
    for (char c : value) {
      if (c == ',' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) {
        return make_error("pki.san",
                          "subjectAltName '" + raw + "' contains a comma, space or control character");
      }
    }
    if (type == "IP" && !is_ip(value)) return make_error("pki.san", "'" + value + "' is not an IP address");
    if (!out.empty()) out += ",";
    out += type + ":" + value;
  }
  return out;
}

}  // namespace

std::string_view kind_name(CertKind kind) {
  return kind == CertKind::kServer ? "server" : "client";
}

larder::Result<KeyedCertificate> create_ca(std::string_view common_name, int validity_days,
                                           std::optional<TimePoint> not_before,
                                           std::optional<TimePoint> not_after) {
  auto key = generate_p256_key();
  if (!key) return key.error();
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return ssl_error("cannot allocate a certificate");
  if (auto r = set_random_serial(cert.get()); !r) return r.error();
  TimePoint nb = not_before.value_or(std::chrono::system_clock::now() - std::chrono::minutes(5));
  TimePoint na = not_after.value_or(nb + std::chrono::hours(24) * validity_days);
  if (auto r = set_validity(cert.get(), nb, na); !r) return r.error();
  if (auto r = set_cn(X509_get_subject_name(cert.get()), common_name); !r) return r.error();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1) {
    return ssl_error("cannot set the CA name or key");
  }
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"},
                            std::pair{NID_authority_key_identifier, "keyid:always"}}) {
    if (auto r = add_ext(cert.get(), cert.get(), nid, value); !r) return r.error();
  }
  if (X509_sign(cert.get(), key->get(), EVP_sha256()) <= 0)
    return ssl_error("cannot sign the CA certificate");
  auto cert_pem = cert_to_pem(cert.get());
  if (!cert_pem) return cert_pem.error();
  auto key_pem = key_to_pem(key->get());
  if (!key_pem) return key_pem.error();
  return KeyedCertificate{std::move(*cert_pem), std::move(*key_pem)};
}

larder::Result<KeyedCertificate> issue_certificate(const KeyedCertificate& ca, const CertSpec& spec) {
  auto ca_cert = load_cert(ca.cert_pem);
  if (!ca_cert) return ca_cert.error();
  auto ca_key = load_key(ca.key_pem);
  if (!ca_key) return ca_key.error();
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    return make_error("pki.ca_mismatch",
                      "the CA key does not belong to the CA certificate: " + openssl_errors());
  }
  auto key = generate_p256_key();
  if (!key) return key.error();
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return ssl_error("cannot allocate a certificate");
  if (auto r = set_random_serial(cert.get()); !r) return r.error();
  TimePoint nb = spec.not_before.value_or(std::chrono::system_clock::now() - std::chrono::minutes(5));
  TimePoint na = spec.not_after.value_or(nb + std::chrono::hours(24) * spec.validity_days);
  if (auto r = set_validity(cert.get(), nb, na); !r) return r.error();
  if (auto r = set_cn(X509_get_subject_name(cert.get()), spec.common_name); !r) return r.error();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert->get())) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1) {
    return ssl_error("cannot set the issuer or key");
  }
  std::vector<std::pair<int, std::string>> exts = {{NID_basic_constraints, "critical,CA:FALSE"},
                                                   {NID_key_usage, "critical,digitalSignature"},
                                                   {NID_subject_key_identifier, "hash"},
                                                   {NID_authority_key_identifier, "keyid:always"}};
  if (spec.omit_extended_key_usage_for_role) {
    // For tests: the EKU names only the *other* role, so the purpose check must refuse it.
    exts.emplace_back(NID_ext_key_usage, spec.kind == CertKind::kClient ? "serverAuth" : "clientAuth");
  } else {
    exts.emplace_back(NID_ext_key_usage, spec.kind == CertKind::kClient ? "clientAuth" : "serverAuth");
  }
  if (!spec.sans.empty()) {
    auto sans = san_config(spec.sans);
    if (!sans) return sans.error();
    exts.emplace_back(NID_subject_alt_name, *sans);
  }
  for (const auto& [nid, value] : exts) {
    if (auto r = add_ext(ca_cert->get(), cert.get(), nid, value); !r) return r.error();
  }
  if (X509_sign(cert.get(), ca_key->get(), EVP_sha256()) <= 0)
    return ssl_error("cannot sign the certificate");
  auto cert_pem = cert_to_pem(cert.get());
  if (!cert_pem) return cert_pem.error();
  auto key_pem = key_to_pem(key->get());
  if (!key_pem) return key_pem.error();
  return KeyedCertificate{std::move(*cert_pem), std::move(*key_pem)};
}

larder::Result<std::string> create_crl(const KeyedCertificate& ca, const std::vector<RevokedEntry>& revoked,
                                       int validity_days) {
  auto ca_cert = load_cert(ca.cert_pem);
  if (!ca_cert) return ca_cert.error();
  auto ca_key = load_key(ca.key_pem);
  if (!ca_key) return ca_key.error();
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert->get())) != 1) {
    return ssl_error("cannot allocate a CRL");
  }
  auto now = std::chrono::system_clock::now();
  Asn1TimePtr last(
      ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(now - std::chrono::minutes(5))));
  Asn1TimePtr next(ASN1_TIME_set(
      nullptr, std::chrono::system_clock::to_time_t(now + std::chrono::hours(24) * validity_days)));
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return ssl_error("cannot set the CRL dates");
  }
  for (const auto& entry : revoked) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, entry.serial.c_str()) == 0 || raw == nullptr) {
      return make_error("pki.crl", "bad serial number '" + entry.serial + "' (expected hex)");
    }
    BignumPtr bn(raw);
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    Asn1TimePtr when(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(entry.revoked_at)));
    X509_REVOKED* rev = X509_REVOKED_new();
    if (!serial || !when || rev == nullptr || X509_REVOKED_set_serialNumber(rev, serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(rev, when.get()) != 1 || X509_CRL_add0_revoked(crl.get(), rev) != 1) {
      X509_REVOKED_free(rev);
      return ssl_error("cannot add a revoked entry");
    }
  }
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_int64(number.get(), std::chrono::system_clock::to_time_t(now)) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return ssl_error("cannot set the CRL number");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca_key->get(), EVP_sha256()) <= 0) {
    return ssl_error("cannot sign the CRL");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return ssl_error("cannot encode the CRL");
  return bio_string(bio.get());
}

larder::Result<CertificateInfo> inspect_certificate(std::string_view pem) {
  auto cert = load_cert(pem);
  if (!cert) return cert.error();
  X509* x = cert->get();
  CertificateInfo info;
  info.subject_cn = subject_cn(x);
  info.issuer = name_rfc2253(X509_get_issuer_name(x));
  info.serial = serial_hex(X509_get0_serialNumber(x));
  info.sans = subject_alt_names(x);
  uint32_t flags = X509_get_extension_flags(x);  // also caches the extensions
  info.is_ca = X509_check_ca(x) != 0 && (flags & EXFLAG_CA) != 0;
  info.has_extended_key_usage = (flags & EXFLAG_XKUSAGE) != 0;
  uint32_t xku = X509_get_extended_key_usage(x);
  info.server_auth = info.has_extended_key_usage && (xku & XKU_SSL_SERVER) != 0;
  info.client_auth = info.has_extended_key_usage && (xku & XKU_SSL_CLIENT) != 0;
  uint32_t ku = X509_get_key_usage(x);
  info.key_cert_sign = (flags & EXFLAG_KUSAGE) != 0 && (ku & KU_KEY_CERT_SIGN) != 0;
  info.crl_sign = (flags & EXFLAG_KUSAGE) != 0 && (ku & KU_CRL_SIGN) != 0;
  if (EVP_PKEY* pub = X509_get0_pubkey(x)) {
    char group[80] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(pub, group, sizeof group, &len) == 1) {
      info.key_type = std::string(EVP_PKEY_get0_type_name(pub)) + " " + group;
    } else {
      info.key_type = EVP_PKEY_get0_type_name(pub);
    }
  }
  info.not_before = asn1_time_to_time_point(X509_get0_notBefore(x));
  info.not_after = asn1_time_to_time_point(X509_get0_notAfter(x));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(x, EVP_sha256(), md, &md_len) != 1) return ssl_error("cannot hash the certificate");
  info.sha256 = hex_encode(md, md_len);
  return info;
}

larder::Result<CrlInfo> inspect_crl(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) return ssl_error("cannot read the CRL PEM");
  CrlInfo info;
  info.issuer = name_rfc2253(X509_CRL_get_issuer(crl.get()));
  info.last_update = asn1_time_to_time_point(X509_CRL_get0_lastUpdate(crl.get()));
  info.next_update = asn1_time_to_time_point(X509_CRL_get0_nextUpdate(crl.get()));
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    info.revoked_serials.push_back(
        serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
  }
  return info;
}

larder::Result<bool> crl_signed_by(std::string_view crl_pem, std::string_view ca_cert_pem) {
  BioPtr bio(BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size())));
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) return ssl_error("cannot read the CRL PEM");
  auto ca = load_cert(ca_cert_pem);
  if (!ca) return ca.error();
  int ok = X509_CRL_verify(crl.get(), X509_get0_pubkey(ca->get()));
  ERR_clear_error();
  return ok == 1;
}

larder::Result<std::string> certificate_der(std::string_view pem) {
  auto cert = load_cert(pem);
  if (!cert) return cert.error();
  unsigned char* der = nullptr;
  int len = i2d_X509(cert->get(), &der);
  if (len <= 0) return ssl_error("cannot encode the certificate as DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

larder::Result<void> write_file(const std::string& path, std::string_view content, unsigned mode) {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec)
    return make_error("pki.io", "cannot create directory " + p.parent_path().string() + ": " + ec.message());
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return make_error("pki.io", "cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, static_cast<mode_t>(mode)) == 0;  // umask must not widen or narrow it
  std::size_t done = 0;
  while (ok && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  int saved = errno;
  if (::close(fd) != 0) ok = false;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return make_error("pki.io", "cannot write " + path + ": " + std::strerror(saved ? saved : errno));
  }
  return {};
}

// ---- CertStore ----

namespace {
bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.' || name.front() == '-') return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}
int64_t to_unix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
TimePoint from_unix(int64_t s) {
  return TimePoint(std::chrono::seconds(s));
}
}  // namespace

std::string CertStore::cert_path(CertKind kind, std::string_view name) const {
  return dir_ + "/" + std::string(kind_name(kind)) + "/" + std::string(name) + ".crt";
}
std::string CertStore::key_path(CertKind kind, std::string_view name) const {
  return dir_ + "/" + std::string(kind_name(kind)) + "/" + std::string(name) + ".key";
}

bool CertStore::has_ca() const {
  std::error_code ec;
  return fs::exists(ca_cert_path(), ec) || fs::exists(ca_key_path(), ec);
}

larder::Result<void> CertStore::init(std::string_view ca_common_name) {
  if (has_ca()) {
    return make_error("pki.exists",
                      "a CA already exists in " + dir_ + " (remove the directory to start over)");
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return make_error("pki.io", "cannot create " + dir_ + ": " + ec.message());
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  auto ca = create_ca(ca_common_name);
  if (!ca) return ca.error();
  if (auto r = write_file(ca_key_path(), ca->key_pem, 0600); !r) return r;
  if (auto r = write_file(ca_cert_path(), ca->cert_pem, 0644); !r) return r;
  if (auto r = save_index({}); !r) return r;
  return write_crl();
}

larder::Result<KeyedCertificate> CertStore::load_ca() const {
  auto cert = read_file(ca_cert_path());
  if (!cert)
    return make_error("pki.no_ca",
                      "no CA in " + dir_ + " (run `larder certs init` first): " + cert.error().message);
  auto key = read_file(ca_key_path());
  if (!key) return key.error();
  return KeyedCertificate{std::move(*cert), std::move(*key)};
}

larder::Result<std::vector<CertStore::Entry>> CertStore::list() const {
  std::vector<Entry> out;
  std::string path = dir_ + "/index.tsv";
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;
  auto text = read_file(path);
  if (!text) return text.error();
  std::istringstream in(*text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::size_t start = 0;
    for (;;) {
      auto tab = line.find('\t', start);
      f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    auto bad = [&] {
      return make_error("pki.index", path + ":" + std::to_string(lineno) + ": malformed line");
    };
    if (f.size() != 5 || (f[0] != "server" && f[0] != "client") || !valid_name(f[1])) return bad();
    Entry e;
    e.kind = f[0] == "server" ? CertKind::kServer : CertKind::kClient;
    e.name = f[1];
    e.serial = f[2];
    try {
      e.not_after = from_unix(std::stoll(f[3]));
      if (f[4] != "-") e.revoked_at = from_unix(std::stoll(f[4]));
    } catch (const std::exception&) {
      return bad();
    }
    out.push_back(std::move(e));
  }
  return out;
}

larder::Result<void> CertStore::save_index(const std::vector<Entry>& entries) const {
  std::string out;
  for (const auto& e : entries) {
    out += std::string(kind_name(e.kind)) + "\t" + e.name + "\t" + e.serial + "\t" +
           std::to_string(to_unix(e.not_after)) + "\t" +
           (e.revoked_at ? std::to_string(to_unix(*e.revoked_at)) : "-") + "\n";
  }
  return write_file(dir_ + "/index.tsv", out, 0644);
}

larder::Result<CertStore::Entry> CertStore::issue(CertSpec spec, std::string_view name) {
  if (!valid_name(name)) {
    return make_error("pki.name",
                      "invalid name '" + std::string(name) + "': use letters, digits, '.', '_' and '-'");
  }
  auto ca = load_ca();
  if (!ca) return ca.error();
  auto entries = list();
  if (!entries) return entries.error();
  for (const auto& e : *entries) {
    if (e.kind == spec.kind && e.name == name && !e.revoked_at) {
      return make_error("pki.exists", std::string(kind_name(spec.kind)) + " certificate '" +
                                          std::string(name) +
                                          "' already exists (revoke it first to re-issue)");
    }
  }
  if (spec.common_name.empty()) spec.common_name = std::string(name);
  auto issued = issue_certificate(*ca, spec);
  if (!issued) return issued.error();
  auto info = inspect_certificate(issued->cert_pem);
  if (!info) return info.error();
  if (auto r = write_file(key_path(spec.kind, name), issued->key_pem, 0600); !r) return r.error();
  if (auto r = write_file(cert_path(spec.kind, name), issued->cert_pem, 0644); !r) return r.error();
  Entry entry{spec.kind, std::string(name), info->serial, info->not_after, std::nullopt};
  entries->push_back(entry);
  if (auto r = save_index(*entries); !r) return r.error();
  return entry;
}

larder::Result<std::vector<CertStore::Entry>> CertStore::revoke(std::string_view name) {
  auto entries = list();
  if (!entries) return entries.error();
  std::vector<Entry> revoked;
  auto now = std::chrono::system_clock::now();
  for (auto& e : *entries) {
    if (e.name == name && !e.revoked_at) {
      e.revoked_at = now;
      revoked.push_back(e);
    }
  }
  if (revoked.empty()) {
    return make_error("pki.not_found",
                      "no unrevoked certificate called '" + std::string(name) + "' in " + dir_);
  }
  if (auto r = save_index(*entries); !r) return r.error();
  if (auto r = write_crl(); !r) return r.error();
  return revoked;
}

larder::Result<void> CertStore::write_crl() {
  auto ca = load_ca();
  if (!ca) return ca.error();
  auto entries = list();
  if (!entries) return entries.error();
  std::vector<RevokedEntry> revoked;
  for (const auto& e : *entries) {
    if (e.revoked_at) revoked.push_back({e.serial, *e.revoked_at});
  }
  auto crl = create_crl(*ca, revoked);
  if (!crl) return crl.error();
  return write_file(crl_path(), *crl, 0644);
}

}  // namespace larder::net::pki
