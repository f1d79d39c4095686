#include "gate/digest.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace larder::gate {

std::string sha256(std::string_view data) {
  // Fetched once: OpenSSL 3 otherwise looks the implementation up on every call.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (md == nullptr || EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr) != 1 || len != 32)
    throw std::runtime_error("SHA-256 is unavailable from OpenSSL");
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string sha256_hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::string raw = sha256(data);
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace larder::gate
