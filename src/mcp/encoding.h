// Small codecs libmcp needs beyond base/encoding.h (hex and Base64: Mcp-Name / Mcp-Param
// sentinel values, cursors): HMAC and random ids from OpenSSL's CSPRNG.
#pragma once

#include "base/encoding.h"

#include <optional>
#include <string>
#include <string_view>

namespace larder::mcp {

// HMAC-SHA256(key, data), raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
// Constant-time equality.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace larder::mcp
