// Encodings and digests shared by Larder's modules (not by libbiscuit, which keeps its own):
// hex and Base64 from libsodium (constant-time codecs), SHA-256 from OpenSSL (its
// hardware-accelerated implementation: the audit chain and the token cache hash every call).
#pragma once

#include <openssl/evp.h>
#include <sodium.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace larder {

// Lowercase hex of `n` bytes.
inline std::string hex_encode(const unsigned char* data, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, n);
  out.pop_back();  // the terminating NUL
  return out;
}
inline std::string hex_encode(std::string_view bytes) {
  return hex_encode(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}
// Upper or lower case hex digits, an even number of them; nullopt otherwise.
inline std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(), hex.size(),
                     nullptr, &written, &end) != 0 ||
      end != hex.data() + hex.size() || written != out.size()) {
    return std::nullopt;
  }
  return out;
}

// Standard Base64 with padding (RFC 4648 section 4).
inline std::string base64_encode(std::string_view bytes) {
  constexpr int variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.pop_back();  // the terminating NUL
  return out;
}
// Standard or URL-safe Base64 (not both in one text), with or without padding; nullopt when
// malformed (another character, a wrong length, bits left over).
inline std::optional<std::string> base64_decode(std::string_view text) {
  const bool url = text.find_first_of("-_") != std::string_view::npos;
  const bool padded = !text.empty() && text.back() == '=';
  const int variant =
      url ? (padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING)
          : (padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t written = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                        nullptr, &written, &end, variant) != 0 ||
      end != text.data() + text.size()) {
    return std::nullopt;
  }
  out.resize(written);
  return out;
}

// The 32-byte SHA-256 digest of `data`.
inline std::string sha256(std::string_view data) {
  // Fetched once: OpenSSL 3 otherwise looks the implementation up on every call.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr) != 1 || len != 32)
    throw std::runtime_error("SHA-256 is unavailable from OpenSSL");
  return std::string(reinterpret_cast<const char*>(digest), len);
}
// The same, as 64 lowercase hex digits.
inline std::string sha256_hex(std::string_view data) {
  return hex_encode(sha256(data));
}

}  // namespace larder
