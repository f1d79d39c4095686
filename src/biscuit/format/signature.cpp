#include "biscuit/format/signature.h"

#include <string_view>

namespace biscuit::format {
namespace {

void put(Bytes& out, ByteView bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// A tag is an ASCII word between NUL bytes, e.g. "\0BLOCK\0".
void tag(Bytes& out, std::string_view word) {
  out.push_back(0);
  out.insert(out.end(), word.begin(), word.end());
  out.push_back(0);
}

void le32(Bytes& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
}

}  // namespace

Bytes block_payload_v0(ByteView block, std::optional<ByteView> external_signature, Algorithm next_alg,
                       ByteView next_key) {
  Bytes out;
  out.reserve(block.size() + next_key.size() + 4 + (external_signature ? external_signature->size() : 0));
  put(out, block);
  if (external_signature) put(out, *external_signature);
  le32(out, static_cast<uint32_t>(next_alg));
  put(out, next_key);
  return out;
}

Bytes block_payload_v1(ByteView block, Algorithm next_alg, ByteView next_key,
                       std::optional<ByteView> previous_signature,
                       std::optional<ByteView> external_signature) {
  Bytes out;
  out.reserve(block.size() + next_key.size() + 200);
  tag(out, "BLOCK");
  tag(out, "VERSION");
  le32(out, 1);
  tag(out, "PAYLOAD");
  put(out, block);
  tag(out, "ALGORITHM");
  le32(out, static_cast<uint32_t>(next_alg));
  tag(out, "NEXTKEY");
  put(out, next_key);
  if (previous_signature) {
    tag(out, "PREVSIG");
    put(out, *previous_signature);
  }
  if (external_signature) {
    tag(out, "EXTERNALSIG");
    put(out, *external_signature);
  }
  return out;
}

Bytes external_payload(ByteView block, ByteView previous_signature) {
  Bytes out;
  out.reserve(block.size() + previous_signature.size() + 64);
  tag(out, "EXTERNAL");
  tag(out, "VERSION");
  le32(out, 1);
  tag(out, "PAYLOAD");
  put(out, block);
  tag(out, "PREVSIG");
  put(out, previous_signature);
  return out;
}

Bytes seal_payload(ByteView block, Algorithm next_alg, ByteView next_key, ByteView signature) {
  Bytes out;
  out.reserve(block.size() + next_key.size() + signature.size() + 4);
  put(out, block);
  le32(out, static_cast<uint32_t>(next_alg));
  put(out, next_key);
  put(out, signature);
  return out;
}

}  // namespace biscuit::format
