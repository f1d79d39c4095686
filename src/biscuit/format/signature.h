// The exact byte strings that Biscuit signs. See the Biscuit specification and
// docs/biscuit.md; integers are 4-byte little-endian.
//
//  v0 block:     block ‖ [external_signature] ‖ le32(alg) ‖ next_key
//  v1 block:     "\0BLOCK\0" "\0VERSION\0" le32(1) "\0PAYLOAD\0" block "\0ALGORITHM\0" le32(alg)
//                "\0NEXTKEY\0" next_key ["\0PREVSIG\0" previous_signature]
//                ["\0EXTERNALSIG\0" external_signature]
//  external:     "\0EXTERNAL\0" "\0VERSION\0" le32(1) "\0PAYLOAD\0" block "\0PREVSIG\0" previous_signature
//  seal:         block ‖ le32(alg) ‖ next_key ‖ signature   (of the last block)
#pragma once

#include <optional>
#include <span>

#include "biscuit/crypto/encoding.h"
#include "biscuit/crypto/keys.h"

namespace biscuit::format {

using ByteView = std::span<const uint8_t>;

Bytes block_payload_v0(ByteView block, std::optional<ByteView> external_signature, Algorithm next_alg,
                       ByteView next_key);
Bytes block_payload_v1(ByteView block, Algorithm next_alg, ByteView next_key,
                       std::optional<ByteView> previous_signature,
                       std::optional<ByteView> external_signature);
Bytes external_payload(ByteView block, ByteView previous_signature);
Bytes seal_payload(ByteView block, Algorithm next_alg, ByteView next_key, ByteView signature);

}  // namespace biscuit::format
