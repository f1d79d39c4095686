// Bounded authorization at the token level (finding 4): every parse path holds each block to
// ParseLimits (envelope and Datalog size limits) before anything runs; builders refuse to
// sign what readers refuse; authorization stops at RunLimits::max_memory_bytes and at
// max_time inside a long expression; and Biscuit::checks() lists checks in a simple form.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "biscuit/biscuit.h"

using namespace biscuit;

namespace {

// `check if (s + s + ... n times).length() > 0` with `s` a typed parameter, the finding's block.
std::string concat_code(int n) {
  std::string code = "check if (";
  for (int i = 0; i < n; ++i) code += i ? " + {s}" : "{s}";
  return code + ").length() > 0;";
}

Biscuit authority(const KeyPair& root) {
  BiscuitBuilder b;
  EXPECT_TRUE(b.add_code("right(\"read\");").ok());
  auto t = b.build(root.private_key());
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(*t);
}

// The finding's token: a 4,000-character string concatenated 500 times (built by a writer
// that lifted its own limits, as an attacker's would be).
Biscuit finding_token(const KeyPair& root) {
  BlockBuilder attack;
  attack.set_limits(datalog::SizeLimits::unlimited());
  EXPECT_TRUE(attack.add_code(concat_code(500), Params().string("s", std::string(4000, 'a'))).ok());
  auto t = authority(root).append(attack);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(*t);
}

ParseLimits unlimited_datalog() {
  ParseLimits l;
  l.datalog = datalog::SizeLimits::unlimited();
  return l;
}

void expect_refused_block(const Result<Biscuit>& r, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what;
  EXPECT_EQ(r.error().code, ErrorCode::BlockDeserialization) << what << ": " << r.error().to_string();
  EXPECT_STREQ(r.error().category(), "Format");
  EXPECT_NE(r.error().message.find("block 1: check 0: expression 0: 1003 operations, above the limit of 512"),
            std::string::npos)
      << what << ": " << r.error().message;
}

Result<std::size_t> authorize(const Biscuit& token, const RunLimits& limits) {
  AuthorizerBuilder ab;
  if (auto r = ab.add_code("allow if true;"); !r) return r.take_error();
  ab.set_limits(limits);
  auto a = ab.build(token);
  if (!a) return a.take_error();
  return a->authorize();
}

TEST(TokenLimits, TheFindingsTokenIsRefusedOnEveryParsePath) {
  KeyPair root = KeyPair::generate();
  const Biscuit token = finding_token(root);
  const Bytes bytes = token.to_bytes();
  EXPECT_LT(bytes.size(), 16u * 1024);  // small on the wire: the amplification is the danger
  const std::string b64 = token.to_base64();
  expect_refused_block(Biscuit::from_bytes(bytes, root.public_key()), "from_bytes");
  expect_refused_block(Biscuit::from_base64(b64, root.public_key()), "from_base64");
  Biscuit::KeyProvider provider = [&](std::optional<uint32_t>) -> Result<PublicKey> {
    return root.public_key();
  };
  expect_refused_block(Biscuit::from_bytes(bytes, provider), "from_bytes (key provider)");
  expect_refused_block(Biscuit::from_base64(b64, provider), "from_base64 (key provider)");
  expect_refused_block(Biscuit::from_bytes_unverified(bytes), "from_bytes_unverified");
  // A reader that lifts the limits reads it.
  EXPECT_TRUE(Biscuit::from_bytes(bytes, root.public_key(), unlimited_datalog()).ok());
}

TEST(TokenLimits, WritersRefuseWhatReadersRefuse) {
  KeyPair root = KeyPair::generate();
  // Typed text: refused when parsed.
  BlockBuilder typed;
  std::string code = "check if (";
  for (int i = 0; i < 500; ++i) code += i ? " + \"s\"" : "\"s\"";
  code += ").length() > 0;";
  auto parsed = typed.add_code(code);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::Language);
  EXPECT_NE(parsed.error().message.find("1003 operations, above the limit of 512"), std::string::npos)
      << parsed.error().message;
  // Parameters too large: refused when the block is built (after they are bound).
  BlockBuilder params;
  ASSERT_TRUE(
      params.add_code("check if {s}.length() > 0;", Params().string("s", std::string(20000, 'a'))).ok());
  auto built = authority(root).append(params);
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.error().code, ErrorCode::Language);
  EXPECT_NE(built.error().message.find("string of 20000 bytes, above the limit of 16384"), std::string::npos)
      << built.error().message;
  BiscuitBuilder big_authority;
  std::string facts;
  for (int i = 0; i < 1025; ++i) facts += "f(" + std::to_string(i) + ");";
  ASSERT_FALSE(big_authority.add_code(facts).ok());
  big_authority.set_limits(datalog::SizeLimits::unlimited());
  ASSERT_TRUE(big_authority.add_code(facts).ok());
  auto t = big_authority.build(root.private_key());
  ASSERT_TRUE(t.ok());
  auto back = Biscuit::from_bytes(t->to_bytes(), root.public_key());
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("block 0: 1025 facts, above the limit of 1024"), std::string::npos)
      << back.error().message;
}

TEST(TokenLimits, EnvelopeLimitsOnEveryPath) {
  KeyPair root = KeyPair::generate();
  Biscuit t = authority(root);
  for (int i = 0; i < 2; ++i) {
    BlockBuilder b;
    ASSERT_TRUE(b.add_code("check if right(\"read\");").ok());
    auto next = t.append(b);
    ASSERT_TRUE(next.ok());
    t = std::move(*next);
  }
  const Bytes bytes = t.to_bytes();
  const std::string b64 = t.to_base64();
  ParseLimits two;
  two.max_blocks = 2;
  EXPECT_EQ(Biscuit::from_bytes(bytes, root.public_key(), two).error().code, ErrorCode::Deserialization);
  EXPECT_EQ(Biscuit::from_base64(b64, root.public_key(), two).error().code, ErrorCode::Deserialization);
  EXPECT_EQ(Biscuit::from_bytes_unverified(bytes, two).error().code, ErrorCode::Deserialization);
  ParseLimits small;
  small.max_token_bytes = 64;
  EXPECT_EQ(Biscuit::from_bytes(bytes, root.public_key(), small).error().code, ErrorCode::Deserialization);
  EXPECT_EQ(Biscuit::from_bytes_unverified(bytes, small).error().code, ErrorCode::Deserialization);
  // Base64 text that cannot fit is refused before it is decoded.
  auto long_text = Biscuit::from_base64(b64, root.public_key(), small);
  ASSERT_FALSE(long_text.ok());
  EXPECT_NE(long_text.error().message.find("characters of base64"), std::string::npos)
      << long_text.error().message;
  const std::string huge(3 << 20, 'A');
  auto h = Biscuit::from_base64(huge, root.public_key());
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("characters of base64"), std::string::npos) << h.error().message;
  // Within the limits: fine.
  EXPECT_TRUE(Biscuit::from_base64(b64, root.public_key()).ok());
}

TEST(TokenLimits, ThirdPartyBlocksAreHeldToTheLimits) {
  KeyPair root = KeyPair::generate();
  KeyPair issuer = KeyPair::generate();
  const Biscuit token = authority(root);
  auto req = token.third_party_request();
  ASSERT_TRUE(req.ok());
  ParseLimits tiny;
  tiny.max_token_bytes = 8;
  EXPECT_FALSE(ThirdPartyRequest::from_base64(req->to_base64(), tiny).ok());
  EXPECT_FALSE(ThirdPartyRequest::from_bytes(req->to_bytes(), tiny).ok());

  BlockBuilder attack;
  attack.set_limits(datalog::SizeLimits::unlimited());
  ASSERT_TRUE(attack.add_code(concat_code(500), Params().string("s", std::string(4000, 'a'))).ok());
  auto block = req->create_block(issuer.private_key(), attack);
  ASSERT_TRUE(block.ok());
  // Refused when it is read...
  auto read = ThirdPartyBlock::from_base64(block->to_base64());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code, ErrorCode::BlockDeserialization);
  EXPECT_NE(read.error().message.find("third-party block: check 0: expression 0: 1003 operations"),
            std::string::npos)
      << read.error().message;
  EXPECT_FALSE(ThirdPartyBlock::from_bytes(block->to_bytes()).ok());
  EXPECT_FALSE(ThirdPartyBlock::from_bytes(block->to_bytes(), tiny).ok());
  auto lifted = ThirdPartyBlock::from_base64(block->to_base64(), unlimited_datalog());
  ASSERT_TRUE(lifted.ok());
  // ...when it is appended...
  auto appended = token.append_third_party(*lifted);
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.error().code, ErrorCode::BlockDeserialization);
  auto forced = token.append_third_party(*lifted, Algorithm::Ed25519, unlimited_datalog());
  ASSERT_TRUE(forced.ok());
  // ...and when the token carrying it is parsed.
  auto back = Biscuit::from_bytes(forced->to_bytes(), root.public_key());
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("block 1: check 0: expression 0: 1003 operations"), std::string::npos)
      << back.error().message;
  // The third party's own builder refuses to sign it with its default limits.
  BlockBuilder honest;
  ASSERT_TRUE(
      honest.add_code("check if {s}.length() > 0;", Params().string("s", std::string(20000, 'a'))).ok());
  EXPECT_EQ(req->create_block(issuer.private_key(), honest).error().code, ErrorCode::Language);
}

// A block within every parse limit whose evaluation would still be costly: 100 concatenations
// of a 4,000-character string (~20 MB of strings if nothing bounded it).
Biscuit costly_token(const KeyPair& root) {
  BlockBuilder b;
  EXPECT_TRUE(b.add_code(concat_code(100), Params().string("s", std::string(4000, 'a'))).ok());
  auto t = authority(root).append(b);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  auto back = Biscuit::from_bytes(t->to_bytes(), root.public_key());  // within the default limits
  EXPECT_TRUE(back.ok()) << back.error().to_string();
  return std::move(*back);
}

TEST(TokenLimits, AuthorizationStopsAtTheMemoryBudget) {
  KeyPair root = KeyPair::generate();
  const Biscuit token = costly_token(root);
  RunLimits limits;
  limits.max_time = std::chrono::seconds(60);
  limits.max_memory_bytes = 1 << 20;
  auto r = authorize(token, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::TooMuchMemory) << r.error().to_string();
  EXPECT_STREQ(r.error().category(), "RunLimit");
  EXPECT_EQ(r.error().to_json(), "{\"RunLimit\":\"TooMuchMemory\"}");
  EXPECT_NE(r.error().message.find("memory budget of 1048576 bytes"), std::string::npos) << r.error().message;
  // The default budget is 8 MiB: the same token is refused with the default limits too.
  RunLimits defaults;
  defaults.max_time = std::chrono::seconds(60);
  EXPECT_EQ(authorize(token, defaults).error().code, ErrorCode::TooMuchMemory);
  // With room enough it runs to the end (the check holds).
  limits.max_memory_bytes = std::size_t{64} << 20;
  auto ok = authorize(token, limits);
  EXPECT_TRUE(ok.ok()) << ok.error().to_string();
}

TEST(TokenLimits, TheDeadlineIsCheckedInsideALongExpression) {
  KeyPair root = KeyPair::generate();
  const Biscuit token = costly_token(root);
  RunLimits limits;
  limits.max_memory_bytes = std::size_t{64} << 20;
  limits.max_time = std::chrono::nanoseconds(0);  // already past when the checks run
  auto r = authorize(token, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Timeout) << r.error().to_string();
  EXPECT_EQ(r.error().to_json(), "{\"RunLimit\":\"Timeout\"}");
}

TEST(TokenLimits, ChecksInSimpleForm) {
  KeyPair root = KeyPair::generate();
  KeyPair issuer = KeyPair::generate();
  BiscuitBuilder b;
  ASSERT_TRUE(b.add_code("right(\"read\"); check if time($t), $t <= 2100-01-01T00:00:00Z;").ok());
  auto token = b.build(root.private_key());
  ASSERT_TRUE(token.ok());
  BlockBuilder binding;
  ASSERT_TRUE(binding
                  .add_code(R"(check if client_cert_sha256({sha});
                               check if server_audience("larder-db");
                               reject if mtls_client("mallory");
                               check all operation("read");
                               check if f(1) or g(2);
                               check if column("t", $c);
                               check if right("read") trusting authority;)",
                            Params().bytes("sha", Bytes{0xaa, 0xbb}))
                  .ok());
  auto bound = token->append(binding);
  ASSERT_TRUE(bound.ok());
  auto req = bound->third_party_request();
  ASSERT_TRUE(req.ok());
  BlockBuilder claim;
  ASSERT_TRUE(claim.add_code("check if group(\"admin\");").ok());
  auto tp = req->create_block(issuer.private_key(), claim);
  ASSERT_TRUE(tp.ok());
  auto full = bound->append_third_party(*tp);
  ASSERT_TRUE(full.ok());

  const auto checks = full->checks();
  ASSERT_EQ(checks.size(), 9u);
  EXPECT_EQ(checks[0].block, 0u);
  EXPECT_FALSE(checks[0].fact.has_value());  // a variable and an expression
  auto fact = [&](std::size_t i) {
    return checks[i].fact ? datalog::print(*checks[i].fact) : std::string("-");
  };
  EXPECT_EQ(checks[1].block, 1u);
  EXPECT_EQ(checks[1].index, 0u);
  EXPECT_EQ(fact(1), "client_cert_sha256(hex:aabb)");
  EXPECT_EQ(fact(2), "server_audience(\"larder-db\")");
  EXPECT_EQ(checks[3].kind, datalog::CheckKind::Reject);
  EXPECT_EQ(fact(3), "mtls_client(\"mallory\")");
  EXPECT_EQ(checks[4].kind, datalog::CheckKind::All);
  EXPECT_EQ(fact(4), "operation(\"read\")");
  EXPECT_EQ(fact(5), "-");                // two queries
  EXPECT_EQ(fact(6), "-");                // a variable
  EXPECT_EQ(fact(7), "right(\"read\")");  // scopes do not matter for the authorizer's facts
  EXPECT_EQ(checks[8].block, 2u);         // the third-party block, read through its own symbols
  EXPECT_EQ(fact(8), "group(\"admin\")");

  // check_source prints a check exactly as a failed check reports it.
  AuthorizerBuilder ab;
  ASSERT_TRUE(ab.add_code("allow if true;").ok());
  RunLimits generous;
  generous.max_time = std::chrono::seconds(10);
  ab.set_limits(generous);
  auto a = ab.build(*full);
  ASSERT_TRUE(a.ok());
  auto r = a->authorize();
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.error().checks.empty());
  for (const auto& failed : r.error().checks) {
    EXPECT_EQ(full->check_source(failed.block_id, failed.check_id), failed.rule);
  }
  EXPECT_EQ(full->check_source(1, 0), "check if client_cert_sha256(hex:aabb)");
  EXPECT_EQ(full->check_source(2, 0), "check if group(\"admin\")");
}

}  // namespace
