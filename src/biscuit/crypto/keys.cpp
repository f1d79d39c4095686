#include "biscuit/crypto/keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <cstdlib>
#include <cstring>

namespace biscuit {
namespace {

void ensure_sodium() {
  static const bool ok = [] { return sodium_init() >= 0; }();
  if (!ok) std::abort();  // libsodium cannot run without a working RNG: fail closed
}

struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
struct BnCtxFree {
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};
struct PointFree {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct GroupFree {
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};

const EC_GROUP* p256_group() {
  static EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  return group;
}

// Builds an EVP_PKEY for P-256 from a compressed public point and optionally a private scalar.
EVP_PKEY* p256_pkey(std::span<const uint8_t> pub, const BIGNUM* priv) {
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0))
    return nullptr;
  if (!OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()))
    return nullptr;
  if (priv && !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv)) return nullptr;
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return nullptr;
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0) return nullptr;
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &pkey, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return nullptr;
  }
  return pkey;
}

// Decodes a compressed SEC1 point and checks that it lies on P-256 (not infinity).
bool p256_point_valid(std::span<const uint8_t> pub) {
  if (pub.size() != 33 || (pub[0] != 0x02 && pub[0] != 0x03)) return false;
  std::unique_ptr<EC_POINT, PointFree> point(EC_POINT_new(p256_group()));
  std::unique_ptr<BN_CTX, BnCtxFree> ctx(BN_CTX_new());
  if (!point || !ctx) return false;
  if (EC_POINT_oct2point(p256_group(), point.get(), pub.data(), pub.size(), ctx.get()) != 1) return false;
  if (EC_POINT_is_at_infinity(p256_group(), point.get())) return false;
  return EC_POINT_is_on_curve(p256_group(), point.get(), ctx.get()) == 1;
}

Result<Bytes> parse_hex_key(std::string_view hex, const char* what) {
  auto bytes = hex_decode(hex);
  if (!bytes) return make_error(ErrorCode::InvalidArgument, std::string(what) + ": not valid hex");
  return std::move(*bytes);
}

}  // namespace

const char* algorithm_name(Algorithm alg) {
  return alg == Algorithm::Secp256r1 ? "secp256r1" : "ed25519";
}

std::optional<Algorithm> algorithm_from_name(std::string_view name) {
  if (name == "ed25519") return Algorithm::Ed25519;
  if (name == "secp256r1" || name == "p256" || name == "P-256") return Algorithm::Secp256r1;
  return std::nullopt;
}

// ---------------------------------------------------------------- PublicKey

Result<PublicKey> PublicKey::from_bytes(Algorithm alg, std::span<const uint8_t> bytes) {
  PublicKey key;
  key.alg_ = alg;
  if (alg == Algorithm::Ed25519) {
    if (bytes.size() != crypto_sign_PUBLICKEYBYTES) {
      return make_error(ErrorCode::InvalidKeySize,
                        "Ed25519 public key must be 32 bytes, got " + std::to_string(bytes.size()));
    }
  } else if (alg == Algorithm::Secp256r1) {
    if (bytes.size() != 33) {
      return make_error(
          ErrorCode::InvalidKeySize,
          "P-256 public key must be a 33-byte compressed point, got " + std::to_string(bytes.size()));
    }
    if (!p256_point_valid(bytes)) {
      return make_error(ErrorCode::InvalidKey,
                        "P-256 public key is not a valid compressed point on the curve");
    }
    EVP_PKEY* pkey = p256_pkey(bytes, nullptr);
    if (!pkey) return make_error(ErrorCode::InvalidKey, "P-256 public key rejected by OpenSSL");
    key.evp_ = std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  } else {
    return make_error(ErrorCode::InvalidKey, "unknown key algorithm");
  }
  key.bytes_.assign(bytes.begin(), bytes.end());
  return key;
}

Result<PublicKey> PublicKey::from_string(std::string_view text, Algorithm bare_alg) {
  Algorithm alg = bare_alg;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto named = algorithm_from_name(text.substr(0, slash));
    if (!named) {
      return make_error(ErrorCode::InvalidArgument, "unknown public key algorithm '" +
                                                        std::string(text.substr(0, slash)) +
                                                        "' (expected ed25519/ or secp256r1/)");
    }
    alg = *named;
    text.remove_prefix(slash + 1);
  }
  auto bytes = parse_hex_key(text, "public key");
  if (!bytes) return bytes.take_error();
  return from_bytes(alg, *bytes);
}

std::string PublicKey::to_string() const {
  return std::string(algorithm_name(alg_)) + "/" + to_hex();
}

bool PublicKey::verify(std::span<const uint8_t> message, std::span<const uint8_t> signature) const {
  if (alg_ == Algorithm::Ed25519) {
    ensure_sodium();
    if (bytes_.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) return false;
    return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), bytes_.data()) == 0;
  }
  if (!evp_) return false;
  // Reject anything that is not a strict DER ECDSA-Sig-Value before handing it to OpenSSL.
  const unsigned char* p = signature.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(signature.size()));
  if (!sig) return false;
  bool exact = (p == signature.data() + signature.size());
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  bool canonical = exact && der_len == static_cast<int>(signature.size()) &&
                   std::memcmp(der, signature.data(), signature.size()) == 0;
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  if (!canonical) return false;
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(evp_.get())) !=
      1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(), message.size()) == 1;
}

// ---------------------------------------------------------------- PrivateKey

struct PrivateKey::Impl {
  Algorithm alg = Algorithm::Ed25519;
  uint8_t secret[32] = {};                         // seed / big-endian scalar
  uint8_t ed_sk[crypto_sign_SECRETKEYBYTES] = {};  // Ed25519 expanded secret key
  PublicKey pub;
  std::shared_ptr<void> evp;  // P-256 keypair
  ~Impl() {
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(ed_sk, sizeof ed_sk);
  }
};

Result<PrivateKey> PrivateKey::from_bytes(Algorithm alg, std::span<const uint8_t> bytes) {
  ensure_sodium();
  if (bytes.size() != 32) {
    return make_error(ErrorCode::InvalidKeySize, std::string(algorithm_name(alg)) +
                                                     " private key must be 32 bytes, got " +
                                                     std::to_string(bytes.size()));
  }
  auto impl = std::make_shared<Impl>();
  impl->alg = alg;
  std::memcpy(impl->secret, bytes.data(), 32);
  if (alg == Algorithm::Ed25519) {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    crypto_sign_seed_keypair(pk, impl->ed_sk, impl->secret);
    auto pub = PublicKey::from_bytes(alg, pk);
    if (!pub) return pub.take_error();
    impl->pub = std::move(*pub);
  } else {
    std::unique_ptr<BIGNUM, BnFree> d(BN_bin2bn(bytes.data(), 32, nullptr));
    std::unique_ptr<BN_CTX, BnCtxFree> ctx(BN_CTX_new());
    if (!d || !ctx) return make_error(ErrorCode::Internal, "out of memory");
    const BIGNUM* n = EC_GROUP_get0_order(p256_group());
    if (BN_is_zero(d.get()) || BN_cmp(d.get(), n) >= 0) {
      return make_error(ErrorCode::InvalidKey, "P-256 private key scalar must be in [1, n-1]");
    }
    std::unique_ptr<EC_POINT, PointFree> q(EC_POINT_new(p256_group()));
    if (!q || EC_POINT_mul(p256_group(), q.get(), d.get(), nullptr, nullptr, ctx.get()) != 1) {
      return make_error(ErrorCode::Internal, "P-256 public key derivation failed");
    }
    uint8_t pk[33];
    if (EC_POINT_point2oct(p256_group(), q.get(), POINT_CONVERSION_COMPRESSED, pk, sizeof pk, ctx.get()) !=
        33) {
      return make_error(ErrorCode::Internal, "P-256 public key encoding failed");
    }
    auto pub = PublicKey::from_bytes(alg, pk);
    if (!pub) return pub.take_error();
    impl->pub = std::move(*pub);
    EVP_PKEY* pkey = p256_pkey(pk, d.get());
    if (!pkey) return make_error(ErrorCode::InvalidKey, "P-256 private key rejected by OpenSSL");
    impl->evp = std::shared_ptr<void>(pkey, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  }
  PrivateKey key;
  key.impl_ = std::move(impl);
  return key;
}

Result<PrivateKey> PrivateKey::from_string(std::string_view text, Algorithm bare_alg) {
  Algorithm alg = bare_alg;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view name = text.substr(0, slash);
    constexpr std::string_view suffix = "-private";
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      name.remove_suffix(suffix.size());
    }
    auto named = algorithm_from_name(name);
    if (!named) {
      return make_error(ErrorCode::InvalidArgument,
                        "unknown private key algorithm '" + std::string(text.substr(0, slash)) +
                            "' (expected ed25519-private/ or secp256r1-private/)");
    }
    alg = *named;
    text.remove_prefix(slash + 1);
  }
  auto bytes = parse_hex_key(text, "private key");
  if (!bytes) return bytes.take_error();
  auto key = from_bytes(alg, *bytes);
  sodium_memzero(bytes->data(), bytes->size());
  return key;
}

Algorithm PrivateKey::algorithm() const {
  return impl_ ? impl_->alg : Algorithm::Ed25519;
}

Bytes PrivateKey::bytes() const {
  if (!impl_) return {};
  return Bytes(impl_->secret, impl_->secret + 32);
}

std::string PrivateKey::to_hex() const {
  if (!impl_) return {};
  return hex_encode(std::span<const uint8_t>(impl_->secret, 32));
}

std::string PrivateKey::to_string() const {
  return std::string(algorithm_name(algorithm())) + "-private/" + to_hex();
}

const PublicKey& PrivateKey::public_key() const {
  static const PublicKey empty;
  return impl_ ? impl_->pub : empty;
}

Result<Bytes> PrivateKey::sign(std::span<const uint8_t> message) const {
  if (!impl_) return make_error(ErrorCode::InvalidKey, "signing with an empty private key");
  if (impl_->alg == Algorithm::Ed25519) {
    Bytes sig(crypto_sign_BYTES);
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), impl_->ed_sk);
    return sig;
  }
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                 static_cast<EVP_PKEY*>(impl_->evp.get())) != 1) {
    return make_error(ErrorCode::Internal, "P-256 signing setup failed");
  }
  std::size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
    return make_error(ErrorCode::Internal, "P-256 signing failed");
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
    return make_error(ErrorCode::Internal, "P-256 signing failed");
  }
  sig.resize(len);
  return sig;
}

// ---------------------------------------------------------------- KeyPair

KeyPair KeyPair::generate(Algorithm alg) {
  ensure_sodium();
  for (;;) {
    uint8_t secret[32];
    randombytes_buf(secret, sizeof secret);
    auto key = PrivateKey::from_bytes(alg, secret);
    sodium_memzero(secret, sizeof secret);
    if (key) return KeyPair(std::move(*key));
    // P-256: the scalar was 0 or >= n (probability ~2^-32); draw again.
  }
}

}  // namespace biscuit
