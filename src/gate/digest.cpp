#include "gate/digest.h"

#include "biscuit/crypto/encoding.h"

#include <openssl/evp.h>

#include <cstdint>
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
  const std::string raw = sha256(data);
  return biscuit::hex_encode({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()});
}

}  // namespace larder::gate
