// Signing keys for Biscuit tokens: Ed25519 (libsodium) and ECDSA P-256 / secp256r1 with
// SHA-256 (OpenSSL 3).
//
// Wire forms (what the Biscuit protobuf carries):
//   Ed25519   public key: 32 bytes; private key: the 32-byte seed; signature: 64 bytes.
//   P-256     public key: 33-byte compressed SEC1 point (02/03 || x); private key: the 32-byte
//             big-endian scalar; signature: DER-encoded ECDSA-Sig-Value.
// Text forms: "ed25519/<hex>", "secp256r1/<hex>" for public keys and
// "ed25519-private/<hex>", "secp256r1-private/<hex>" for private keys; bare hex is accepted
// with an explicit algorithm.
//
// Verification is strict: Ed25519 rejects non-canonical S (S >= L), non-canonical or
// small-order public keys and small-order R (libsodium's default verifier); P-256 rejects
// non-DER or non-minimal signatures, r or s outside [1, n-1] and points off the curve.
// P-256 signing uses OpenSSL 3.0's ECDSA with a random nonce from the OpenSSL CSPRNG
// (3.0 has no RFC 6979 mode); signatures are therefore not reproducible byte-for-byte.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "biscuit/crypto/encoding.h"
#include "biscuit/error.h"

namespace biscuit {

// Numbers match the protobuf enum PublicKey.Algorithm and the `alg` field of signed payloads.
enum class Algorithm : int32_t { Ed25519 = 0, Secp256r1 = 1 };

const char* algorithm_name(Algorithm alg);  // "ed25519" / "secp256r1"
std::optional<Algorithm> algorithm_from_name(std::string_view name);

class PublicKey {
 public:
  PublicKey() = default;  // an empty Ed25519 key that verifies nothing

  static Result<PublicKey> from_bytes(Algorithm alg, std::span<const uint8_t> bytes);
  // "ed25519/<hex>", "secp256r1/<hex>", or bare hex read as `bare_alg`.
  static Result<PublicKey> from_string(std::string_view text, Algorithm bare_alg = Algorithm::Ed25519);

  Algorithm algorithm() const { return alg_; }
  const Bytes& bytes() const { return bytes_; }
  std::string to_hex() const { return hex_encode(bytes_); }
  std::string to_string() const;  // "ed25519/<hex>"

  // True iff `signature` is a valid signature of `message` under this key.
  bool verify(std::span<const uint8_t> message, std::span<const uint8_t> signature) const;

  bool operator==(const PublicKey& o) const { return alg_ == o.alg_ && bytes_ == o.bytes_; }
  std::strong_ordering operator<=>(const PublicKey& o) const {
    if (auto c = alg_ <=> o.alg_; c != 0) return c;
    return bytes_ <=> o.bytes_;
  }

 private:
  Algorithm alg_ = Algorithm::Ed25519;
  Bytes bytes_;
  std::shared_ptr<void> evp_;  // P-256: parsed EVP_PKEY, shared between copies
};

class PrivateKey {
 public:
  PrivateKey() = default;
  PrivateKey(const PrivateKey&) = default;
  PrivateKey& operator=(const PrivateKey&) = default;
  PrivateKey(PrivateKey&&) noexcept = default;
  PrivateKey& operator=(PrivateKey&&) noexcept = default;

  static Result<PrivateKey> from_bytes(Algorithm alg, std::span<const uint8_t> bytes);
  // "ed25519-private/<hex>", "secp256r1-private/<hex>", "ed25519/<hex>", "secp256r1/<hex>",
  // or bare hex read as `bare_alg`.
  static Result<PrivateKey> from_string(std::string_view text, Algorithm bare_alg = Algorithm::Ed25519);

  Algorithm algorithm() const;
  Bytes bytes() const;  // the 32-byte seed / scalar
  std::string to_hex() const;
  std::string to_string() const;  // "ed25519-private/<hex>"
  const PublicKey& public_key() const;

  Result<Bytes> sign(std::span<const uint8_t> message) const;
  bool valid() const { return static_cast<bool>(impl_); }

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // immutable; secret material wiped on destruction
};

class KeyPair {
 public:
  KeyPair() = default;
  explicit KeyPair(PrivateKey key) : private_(std::move(key)) {}
  static KeyPair generate(Algorithm alg = Algorithm::Ed25519);

  Algorithm algorithm() const { return private_.algorithm(); }
  const PrivateKey& private_key() const { return private_; }
  const PublicKey& public_key() const { return private_.public_key(); }
  Result<Bytes> sign(std::span<const uint8_t> message) const { return private_.sign(message); }

 private:
  PrivateKey private_;
};

}  // namespace biscuit
