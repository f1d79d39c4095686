// Hex and URL-safe base64 codecs used for keys, tokens and revocation ids.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace biscuit {

using Bytes = std::vector<uint8_t>;

std::string hex_encode(std::span<const uint8_t> bytes);
// Lower- or upper-case hex, even length; nullopt on anything else.
std::optional<Bytes> hex_decode(std::string_view hex);

// URL-safe alphabet (-, _), padded with '=' on output.
std::string base64url_encode(std::span<const uint8_t> bytes);
// Accepts padded or unpadded URL-safe base64; surrounding ASCII whitespace is ignored.
// Rejects the standard alphabet's '+' and '/', misplaced padding and non-zero trailing bits.
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace biscuit
