// PeerIdentity extraction and the allow-list check, plus the OpenSSL helpers shared by net/.
#include "net/peer_identity.h"

#include "base/encoding.h"

#include <openssl/pem.h>
#include <openssl/sha.h>

#include <arpa/inet.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "net/http.h"
#include "net/openssl_util.h"

namespace larder::net {
namespace detail {

std::string openssl_errors(std::string_view fallback) {
  std::string out;
  unsigned long code;
  char buf[256];
  while ((code = ERR_get_error()) != 0) {
    ERR_error_string_n(code, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string(fallback) : out;
}

larder::Error file_load_error(std::string_view what, const std::string& path, std::string_view kind) {
  std::string chain = openssl_errors("");
  const std::string named = std::string(what) + " " + path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_error("file.not_found", named + ": file not found; check the path", chain);
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return make_error("file.unreadable", named + ": cannot read it (" + std::strerror(errno) + ")", chain);
  }
  return make_error("file.invalid", named + " is not a valid " + std::string(kind), chain);
}

std::chrono::system_clock::time_point asn1_time_to_time_point(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string serial_hex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return {};
  std::string out(hex);
  OPENSSL_free(hex);
  return out;
}

std::string name_rfc2253(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string subject_cn(const X509* cert) {
  const X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

namespace {
std::string asn1_string(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}
}  // namespace

std::vector<std::string> subject_alt_names(const X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    switch (gn->type) {
      case GEN_DNS:
        out.push_back("DNS:" + asn1_string(gn->d.dNSName));
        break;
      case GEN_URI:
        out.push_back("URI:" + asn1_string(gn->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        out.push_back("email:" + asn1_string(gn->d.rfc822Name));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char buf[INET6_ADDRSTRLEN] = {};
        int len = ASN1_STRING_length(ip);
        const unsigned char* bytes = ASN1_STRING_get0_data(ip);
        if (len == 4 && inet_ntop(AF_INET, bytes, buf, sizeof buf) != nullptr) {
          out.push_back(std::string("IP:") + buf);
        } else if (len == 16 && inet_ntop(AF_INET6, bytes, buf, sizeof buf) != nullptr) {
          out.push_back(std::string("IP:") + buf);
        }
        break;
      }
      default:
        break;  // otherName, dirName, ...: not part of the identity vocabulary
    }
  }
  return out;
}

larder::Result<PeerIdentity> peer_identity_from_x509(X509* cert) {
  if (cert == nullptr) return make_error("tls.no_peer_cert", "no peer certificate");
  PeerIdentity id;
  id.cn = subject_cn(cert);
  id.sans = subject_alt_names(cert);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1) {
    return make_error("tls.identity", "cannot hash the peer certificate: " + openssl_errors());
  }
  id.cert_sha256 = hex_encode(md, md_len);
  // The SPKI hash covers the whole DER SubjectPublicKeyInfo (as HPKP pins do), not only the
  // key bits that X509_pubkey_digest hashes.
  unsigned char* spki = nullptr;
  int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
  if (spki_len <= 0)
    return make_error("tls.identity", "cannot encode the peer public key: " + openssl_errors());
  SHA256(spki, static_cast<std::size_t>(spki_len), md);
  OPENSSL_free(spki);
  id.spki_sha256 = hex_encode(md, SHA256_DIGEST_LENGTH);
  id.issuer = name_rfc2253(X509_get_issuer_name(cert));
  id.serial = serial_hex(X509_get0_serialNumber(cert));
  id.not_after = asn1_time_to_time_point(X509_get0_notAfter(cert));
  return id;
}

}  // namespace detail

larder::Result<PeerIdentity> peer_identity_from_pem(std::string_view pem) {
  detail::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  detail::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return peer_identity_from_der(pem);
  }
  return detail::peer_identity_from_x509(cert.get());
}

larder::Result<PeerIdentity> peer_identity_from_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  detail::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    return make_error("tls.bad_certificate", "not a valid certificate (neither PEM nor DER)",
                      detail::openssl_errors());
  }
  return detail::peer_identity_from_x509(cert.get());
}

bool peer_allowed(const PeerIdentity& peer, const std::vector<std::string>& allow_list) {
  if (allow_list.empty()) return true;
  for (const auto& entry : allow_list) {
    std::string_view e(entry);
    if (e.starts_with("cn:")) {
      if (!peer.cn.empty() && peer.cn == e.substr(3)) return true;
    } else if (e.starts_with("san:")) {
      auto want = e.substr(4);
      for (const auto& san : peer.sans) {
        if (san == want) return true;
      }
    } else if (e.starts_with("sha256:")) {
      auto want = e.substr(7);
      std::string hex;
      for (char c : want) {
        if (c != ':') hex.push_back(c);  // accept "AB:CD:..." fingerprints too
      }
      if (iequals(hex, peer.cert_sha256)) return true;
    }
  }
  return false;
}

}  // namespace larder::net
