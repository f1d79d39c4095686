// Internal to net/: RAII owners and small helpers over the OpenSSL C API.
#pragma once

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "net/peer_identity.h"

namespace larder::net::detail {

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
inline void bio_free(BIO* b) {
  BIO_free_all(b);
}
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, bio_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using X509CrlPtr = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER, ASN1_INTEGER_free>>;
using Asn1TimePtr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME, ASN1_TIME_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
inline void gens_free(GENERAL_NAMES* g) {
  GENERAL_NAMES_free(g);
}
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, gens_free>>;

// The OpenSSL error queue as one line (and clears it); `fallback` if the queue is empty.
std::string openssl_errors(std::string_view fallback = "unknown OpenSSL error");

// Loading `path` (`what`: "client key", "CA bundle", ...) failed: why, in the user's words —
// file.not_found, file.unreadable, or file.invalid ("is not a valid <kind>") — with
// OpenSSL's error chain (the queue, cleared) as the Error's detail, never its message.
larder::Error file_load_error(std::string_view what, const std::string& path, std::string_view kind);

std::chrono::system_clock::time_point asn1_time_to_time_point(const ASN1_TIME* t);
std::string serial_hex(const ASN1_INTEGER* serial);  // uppercase, no leading zeros ("0" for zero)
std::string name_rfc2253(const X509_NAME* name);
std::string subject_cn(const X509* cert);
std::vector<std::string> subject_alt_names(const X509* cert);  // "DNS:x", "IP:1.2.3.4", ...

// Every field of PeerIdentity from a certificate. Fails only on allocation / encoding errors.
larder::Result<PeerIdentity> peer_identity_from_x509(X509* cert);

}  // namespace larder::net::detail
