// libFuzzer target for libbiscuit's token layer. Arbitrary bytes are read as:
//  - a serialized token (verified with a fixed root key, and unverified): either a clean
//    error, or a token whose blocks print and whose re-serialization parses back to the
//    same revocation ids;
//  - a Block protobuf: decode -> encode -> decode must be stable; a decodable block is then
//    signed into a fresh token and authorized under tight run limits (every Datalog path
//    reachable from the wire, without crashes or hangs);
//  - a third-party request / third-party block.
#include <chrono>
#include <cstdint>
#include <cstdlib>

#include "biscuit/biscuit.h"
#include "biscuit/format/block_codec.h"
#include "biscuit/format/envelope.h"

using namespace biscuit;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

const KeyPair& root() {
  static const KeyPair kp(*PrivateKey::from_bytes(Algorithm::Ed25519, Bytes(32, 42)));
  return kp;
}

void check_token(std::span<const uint8_t> data) {
  auto verified = Biscuit::from_bytes(data, root().public_key());
  (void)verified;
  auto token = Biscuit::from_bytes_unverified(data);
  if (!token) return;
  for (std::size_t i = 0; i < token->block_count(); ++i) (void)token->block_source(i);
  auto again = Biscuit::from_bytes_unverified(token->to_bytes());
  require(again.ok());
  require(again->revocation_ids() == token->revocation_ids());
}

void check_block(std::span<const uint8_t> data) {
  auto block = format::decode_block(data);
  if (!block) return;
  Bytes encoded = format::encode_block(*block);
  auto again = format::decode_block(encoded);
  require(again.ok());
  require(format::encode_block(*again) == encoded);
  // Sign it into a token and authorize it: the block is now trusted input to the engine.
  auto env = format::Envelope::create(root().private_key(), std::nullopt, encoded, again->version,
                                      KeyPair(*PrivateKey::from_bytes(Algorithm::Ed25519, Bytes(32, 7))));
  require(env.ok());
  auto token = Biscuit::from_bytes(env->serialize(), root().public_key());
  if (!token) return;  // e.g. unknown symbols or a feature newer than the declared version
  (void)token->block_source(0);
  AuthorizerBuilder ab;
  require(ab.add_code("resource(\"file1\"); operation(\"read\"); allow if true;").ok());
  RunLimits limits;
  limits.max_facts = 200;
  limits.max_iterations = 20;
  limits.max_time = std::chrono::milliseconds(20);
  ab.set_limits(limits);
  auto a = ab.build(*token);
  if (!a) return;
  (void)a->authorize();
  (void)a->dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  check_token(bytes);
  check_block(bytes);
  (void)ThirdPartyRequest::from_bytes(bytes);
  (void)ThirdPartyBlock::from_bytes(bytes);
  return 0;
}
