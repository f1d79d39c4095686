// The signed envelope without Datalog: chains, sealing, third-party signatures, payload
// versions, tampering, and the shared sample tokens' signature chains.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "biscuit/format/envelope.h"
#include "biscuit/format/signature.h"

using namespace biscuit;
using format::Envelope;

namespace {
Bytes read_sample(const std::string& name) {
  std::ifstream in(std::string(LARDER_BISCUIT_SAMPLES_DIR) + "/" + name, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}
const char* kRootPublic = "1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284";
Bytes b(std::string_view s) {
  return Bytes(s.begin(), s.end());
}
}  // namespace

TEST(Envelope, SamplesVerifyOrFailAsExpected) {
  auto root = PublicKey::from_string(kRootPublic);
  ASSERT_TRUE(root.ok());
  auto env = Envelope::parse(read_sample("test001_basic.bc"));
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_TRUE(env->verify(*root).ok());
  EXPECT_EQ(env->block_count(), 2u);

  auto different = Envelope::parse(read_sample("test002_different_root_key.bc"));
  ASSERT_TRUE(different.ok());
  EXPECT_EQ(different->verify(*root).error().code, ErrorCode::InvalidSignature);

  auto bad_format = Envelope::parse(read_sample("test003_invalid_signature_format.bc"));
  if (bad_format.ok()) {
    auto r = bad_format->verify(*root);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::BlockSignatureDeserialization);
  } else {
    EXPECT_EQ(bad_format.error().code, ErrorCode::BlockSignatureDeserialization);
  }
  for (const char* name :
       {"test004_random_block.bc", "test005_invalid_signature.bc", "test006_reordered_blocks.bc"}) {
    auto e = Envelope::parse(read_sample(name));
    ASSERT_TRUE(e.ok()) << name;
    auto r = e->verify(*root);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidSignature) << name;
  }
  for (const char* name : {"test020_sealed.bc", "test024_third_party.bc", "test036_secp256r1.bc",
                           "test037_secp256r1_third_party.bc", "test035_ffi.bc"}) {
    auto e = Envelope::parse(read_sample(name));
    ASSERT_TRUE(e.ok()) << name << ": " << e.error().message;
    auto r = e->verify(*root);
    EXPECT_TRUE(r.ok()) << name << ": " << r.error().message;
    // Re-serializing a parsed token reproduces it byte for byte.
    EXPECT_EQ(e->serialize(), read_sample(name)) << name;
  }
}

class EnvelopeChain : public ::testing::TestWithParam<Algorithm> {};

TEST_P(EnvelopeChain, CreateAppendSealThirdParty) {
  KeyPair root = KeyPair::generate(GetParam());
  auto env = Envelope::create(root.private_key(), 7, b("authority"), 3, KeyPair::generate(GetParam()));
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->authority.payload_version, GetParam() == Algorithm::Ed25519 ? 0u : 1u);
  auto two = env->append(b("block1"), 3, KeyPair::generate());
  ASSERT_TRUE(two.ok());
  // Third party signs the block bound to the previous signature.
  KeyPair third = KeyPair::generate(Algorithm::Secp256r1);
  Bytes request = format::serialize_request(two->last().signature);
  auto prev = format::parse_request(request);
  ASSERT_TRUE(prev.ok());
  Bytes payload = b("third-party block");
  auto ext_sig = third.sign(format::external_payload(payload, *prev));
  ASSERT_TRUE(ext_sig.ok());
  Bytes contents = format::serialize_third_party_contents(payload, {*ext_sig, third.public_key()});
  auto parsed = format::parse_third_party_contents(contents);
  ASSERT_TRUE(parsed.ok());
  auto three = two->append_third_party(parsed->first, parsed->second, KeyPair::generate());
  ASSERT_TRUE(three.ok()) << three.error().message;
  EXPECT_EQ(three->blocks.back().payload_version, 1u);
  auto bytes = three->serialize();
  auto back = Envelope::parse(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->root_key_id, std::optional<uint32_t>(7));
  EXPECT_TRUE(back->verify(root.public_key()).ok());
  EXPECT_FALSE(back->verify(KeyPair::generate(GetParam()).public_key()).ok());

  // The same third-party block cannot be attached to another token.
  EXPECT_FALSE(env->append_third_party(parsed->first, parsed->second, KeyPair::generate()).ok());

  auto sealed = back->seal();
  ASSERT_TRUE(sealed.ok());
  auto sealed_back = Envelope::parse(sealed->serialize());
  ASSERT_TRUE(sealed_back.ok());
  EXPECT_TRUE(sealed_back->sealed());
  EXPECT_TRUE(sealed_back->verify(root.public_key()).ok());
  EXPECT_EQ(sealed_back->append(b("x"), 3, KeyPair::generate()).error().code, ErrorCode::AppendOnSealed);
  EXPECT_EQ(sealed_back->seal().error().code, ErrorCode::AlreadySealed);

  // Tampering: every single-bit flip in the serialized token is refused (parse or verify).
  // The first two bytes are the root key id (a hint that is not signed by design: a
  // different id only selects a different root key), so flips start after it.
  Bytes good = three->serialize();
  ASSERT_EQ(good[0], 0x08);
  for (std::size_t i = 2; i < good.size(); i += 3) {
    Bytes bad = good;
    bad[i] ^= 0x10;
    auto e = Envelope::parse(bad);
    if (!e.ok()) continue;
    EXPECT_FALSE(e->verify(root.public_key()).ok()) << "flip at byte " << i;
  }
  // Removing the last block, or swapping blocks, breaks the chain.
  Envelope removed = *three;
  removed.blocks.pop_back();
  EXPECT_FALSE(removed.verify(root.public_key()).ok());
  Envelope swapped = *three;
  std::swap(swapped.blocks[0], swapped.blocks[1]);
  EXPECT_FALSE(swapped.verify(root.public_key()).ok());
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EnvelopeChain,
                         ::testing::Values(Algorithm::Ed25519, Algorithm::Secp256r1));

TEST(Envelope, HostileBytes) {
  EXPECT_FALSE(Envelope::parse(Bytes{}).ok());
  EXPECT_FALSE(Envelope::parse(b("not a token")).ok());
  format::ParseLimits small;
  small.max_token_bytes = 16;
  EXPECT_EQ(Envelope::parse(read_sample("test001_basic.bc"), small).error().code, ErrorCode::Deserialization);
  Bytes full = read_sample("test001_basic.bc");
  for (std::size_t n = 0; n < full.size(); n += 7) {
    auto e = Envelope::parse(Bytes(full.begin(), full.begin() + static_cast<long>(n)));
    EXPECT_FALSE(e.ok() && e->verify(*PublicKey::from_string(kRootPublic)).ok()) << "truncated to " << n;
  }
  // Deep nesting: 10,000 nested unknown groups (field 5, wire types 3/4) must hit the
  // recursion limit, not the stack.
  Bytes deep(10000, 0x2b);
  deep.insert(deep.end(), 10000, 0x2c);
  EXPECT_FALSE(Envelope::parse(deep).ok());
}
