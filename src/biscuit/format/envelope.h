// The signed envelope of a Biscuit token: blocks as opaque bytes, keys, signatures and the
// proof. Knows protobuf and cryptography, nothing about Datalog (see token/ for that; only
// the Datalog size limits ride along in ParseLimits, for the token layer to apply).
//
// Parsing never trusts the input: size is capped, protobuf nesting is capped, every
// required field is checked explicitly, and `verify` checks the whole signature chain
// (payload v0/v1, third-party signatures, proof or seal) before any block is interpreted.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "biscuit/crypto/keys.h"
#include "biscuit/datalog/limits.h"
#include "biscuit/error.h"

namespace biscuit::format {

using ByteView = std::span<const uint8_t>;

// Limits on untrusted input. The envelope applies the first three; the token layer also
// holds every block it decodes (third-party ones included) to `datalog` before any of it is
// used (see datalog/limits.h).
struct ParseLimits {
  std::size_t max_token_bytes = 1 << 20;  // whole serialized token (and third-party block/request)
  int max_nesting = 64;                   // protobuf message nesting depth
  std::size_t max_blocks = 256;
  datalog::SizeLimits datalog;  // expression size/depth, literals, per-block counts
};

struct ExternalSignature {
  Bytes signature;
  PublicKey public_key;
};

struct SignedBlock {
  Bytes block;  // serialized protobuf Block
  PublicKey next_key;
  Bytes signature;
  std::optional<ExternalSignature> external;
  uint32_t payload_version = 0;  // 0 (field absent) or 1
};

class Envelope {
 public:
  static Result<Envelope> parse(ByteView data, const ParseLimits& limits = {});
  Bytes serialize() const;

  // Checks the signature chain from `root`, every external signature, and the proof
  // (for an unsealed token: the secret matches the last next key; sealed: the final
  // signature verifies).
  Result<void> verify(const PublicKey& root) const;

  // A new token: `authority` signed by `root`, next key pair `next`.
  static Result<Envelope> create(const PrivateKey& root, std::optional<uint32_t> root_key_id, Bytes authority,
                                 uint32_t datalog_version, const KeyPair& next);
  // Appends a first-party block signed with the current proof secret.
  Result<Envelope> append(Bytes block, uint32_t datalog_version, const KeyPair& next) const;
  // Appends a third-party block whose external signature was produced by its author.
  Result<Envelope> append_third_party(Bytes block, ExternalSignature external, const KeyPair& next) const;
  // Replaces the proof secret by the final signature: no more blocks can be appended.
  Result<Envelope> seal() const;

  std::optional<uint32_t> root_key_id;
  SignedBlock authority;
  std::vector<SignedBlock> blocks;
  std::optional<PrivateKey> next_secret;  // unsealed
  Bytes final_signature;                  // sealed

  bool sealed() const { return !next_secret.has_value(); }
  std::size_t block_count() const { return 1 + blocks.size(); }
  const SignedBlock& block(std::size_t i) const { return i == 0 ? authority : blocks[i - 1]; }
  const SignedBlock& last() const { return blocks.empty() ? authority : blocks.back(); }
};

// Third-party block exchange (ThirdPartyBlockRequest / ThirdPartyBlockContents).
Bytes serialize_request(ByteView previous_signature);
Result<Bytes> parse_request(ByteView data, const ParseLimits& limits = {});  // -> previous signature
Bytes serialize_third_party_contents(ByteView payload, const ExternalSignature& external);
Result<std::pair<Bytes, ExternalSignature>> parse_third_party_contents(ByteView data,
                                                                       const ParseLimits& limits = {});

// The signature payload version a writer uses for the next block.
uint32_t writer_payload_version(bool third_party, uint32_t datalog_version, Algorithm signing_alg,
                                Algorithm next_alg, bool earlier_v1);

}  // namespace biscuit::format
