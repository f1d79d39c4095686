// SHA-256 for the gate: the verified-token cache key and the audit log's hash chain.
#pragma once

#include <string>
#include <string_view>

namespace larder::gate {

// The 32-byte digest of `data`.
std::string sha256(std::string_view data);
// The same, as 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace larder::gate
