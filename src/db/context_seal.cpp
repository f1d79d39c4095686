#include "db/context_seal.h"

#include "db/connection.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

namespace larder::db {

Result<ContextKey> parse_context_key(std::string_view id, std::string_view hex) {
  ContextKey key;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), key.id);
  if (ec != std::errc() || end != id.data() + id.size() || key.id <= 0 || hex.size() != 64)
    return make_error("db.no_context_key", "the request-context key is malformed");
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    unsigned value = 0;
    auto [e, err] = std::from_chars(hex.data() + i, hex.data() + i + 2, value, 16);
    if (err != std::errc() || e != hex.data() + i + 2)
      return make_error("db.no_context_key", "the request-context key is malformed");
    key.bytes.push_back(static_cast<unsigned char>(value));
  }
  return key;
}

std::string seal_context(const ContextKey& key, const TransactionBinding& binding, long long until_us,
                         std::string_view facts) {
  std::string msg = "larder-ctx-v1." + std::to_string(key.id) + ".{\"b\":[" + binding.pid + "," +
                    binding.xact_us + "],\"e\":" + std::to_string(until_us) + ",\"f\":";
  msg.append(facts);
  msg += "}";
  unsigned char tag[EVP_MAX_MD_SIZE];
  unsigned int tag_len = 0;
  HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), tag, &tag_len);
  return hex_encode(std::string_view(reinterpret_cast<const char*>(tag), tag_len)) + "." + msg;
}

}  // namespace larder::db
