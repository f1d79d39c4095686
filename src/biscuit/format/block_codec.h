// Block contents <-> protobuf bytes (schema.proto's Block), at the interned level.
// Decoding checks structure only (required fields, known enum values, ffi names present,
// version within 3..6); symbol resolution and feature/version agreement are checked by the
// token layer against the right symbol table (datalog::validate_block / check_version).
#pragma once

#include <span>

#include "biscuit/crypto/encoding.h"
#include "biscuit/datalog/types.h"
#include "biscuit/error.h"

namespace biscuit::format {

struct BlockLimits {
  std::size_t max_block_bytes = 1 << 20;
  int max_nesting = 64;
};

Result<datalog::Block> decode_block(std::span<const uint8_t> bytes, const BlockLimits& limits = {});
Bytes encode_block(const datalog::Block& block);

}  // namespace biscuit::format
