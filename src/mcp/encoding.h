// Small codecs libmcp needs: Base64 (Mcp-Name / Mcp-Param sentinel values, cursors) and
// random ids from OpenSSL's CSPRNG.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace larder::mcp {

std::string base64_encode(std::string_view bytes);
// Accepts standard and URL-safe alphabets, with or without padding; nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view text);
std::string hex_encode(std::string_view bytes);
// HMAC-SHA256(key, data), raw bytes.
std::string hmac_sha256(std::string_view key, std::string_view data);
// Constant-time equality.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace larder::mcp
