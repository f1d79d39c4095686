// The token API end to end: build with typed parameters, attenuate, seal, third-party
// blocks, root key ids with a key provider, authorization outcomes, run limits, and
// hostile inputs (truncated, bit-flipped, swapped/removed blocks, wrong keys, oversized,
// deeply nested, fact explosion) — each a clean error.
#include <gtest/gtest.h>

#include "biscuit/biscuit.h"

using namespace biscuit;

namespace {

Biscuit make_token(const KeyPair& root, Algorithm next = Algorithm::Ed25519) {
  BiscuitBuilder b;
  EXPECT_TRUE(b.add_code("user({user}); right({res}, \"read\"); check if time($t), $t <= {exp};",
                         Params().string("user", "alice").string("res", "file1").date("exp", 4102444800))
                  .ok());
  auto t = b.build(root.private_key(), next);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(*t);
}

// Tests never depend on timing: the time limit is far above any run here.
RunLimits generous_limits() {
  RunLimits l;
  l.max_time = std::chrono::seconds(10);
  return l;
}

Result<std::size_t> authorize(const Biscuit& token, const std::string& code, const Params& params = {}) {
  AuthorizerBuilder ab;
  if (auto r = ab.add_code(code, params); !r) return r.take_error();
  ab.set_time(std::chrono::system_clock::now());
  ab.set_limits(generous_limits());
  auto a = ab.build(token);
  if (!a) return a.take_error();
  return a->authorize();
}

const char* kAllowRead =
    "resource(\"file1\"); operation(\"read\"); allow if right($r, \"read\"), resource($r);";

}  // namespace

TEST(Token, BuildAttenuateAuthorize) {
  KeyPair root = KeyPair::generate();
  Biscuit token = make_token(root);
  EXPECT_EQ(
      token.block_source(0),
      "user(\"alice\");\nright(\"file1\", \"read\");\ncheck if time($t), $t <= 2100-01-01T00:00:00Z;\n");
  EXPECT_EQ(token.block(0).version, 3u);
  auto ok = authorize(token, kAllowRead);
  ASSERT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_EQ(*ok, 0u);

  BlockBuilder att;
  ASSERT_TRUE(att.add_code("check if operation(\"write\");").ok());
  auto smaller = token.append(att);
  ASSERT_TRUE(smaller.ok());
  auto parsed = Biscuit::from_base64(smaller->to_base64(), root.public_key());
  ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
  EXPECT_EQ(parsed->block_count(), 2u);
  EXPECT_EQ(parsed->revocation_ids().size(), 2u);
  auto denied = authorize(*parsed, kAllowRead);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, ErrorCode::Unauthorized);
  ASSERT_EQ(denied.error().checks.size(), 1u);
  EXPECT_EQ(denied.error().checks[0].block_id, 1u);
  EXPECT_EQ(denied.error().checks[0].rule, "check if operation(\"write\")");
  EXPECT_EQ(
      denied.error().to_json(),
      "{\"FailedLogic\":{\"Unauthorized\":{\"policy\":{\"Allow\":0},\"checks\":[{\"Block\":{\"block_id\":1,"
      "\"check_id\":0,\"rule\":\"check if operation(\\\"write\\\")\"}}]}}}");

  // A fact added by an attenuation block is invisible to the authorizer's policies.
  BlockBuilder forge;
  ASSERT_TRUE(forge.add_code("right(\"file2\", \"read\");").ok());
  auto forged = token.append(forge);
  ASSERT_TRUE(forged.ok());
  auto r = authorize(*forged, "resource(\"file2\"); allow if right($r, \"read\"), resource($r);");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::NoMatchingPolicy);
}

TEST(Token, TemplatesParsedOnceBindPerUse) {
  // A fact template asserted twice with different values, and a rule template queried with
  // a parameter: the same results as the text API, with no parsing per use.
  KeyPair root = KeyPair::generate();
  Biscuit token = make_token(root);
  auto resource = FactTemplate::parse("resource({r})");
  auto owns = RuleTemplate::parse("owns($u, {r}) <- user($u), resource({r})");
  ASSERT_TRUE(resource.ok() && owns.ok());
  AuthorizerBuilder ab;
  ASSERT_TRUE(ab.add_fact(*resource, Params().string("r", "file1")).ok());
  ASSERT_TRUE(ab.add_fact(*resource, Params().string("r", "x\"); resource(\"file9")).ok());  // one string
  ASSERT_TRUE(ab.add_code("operation(\"read\"); allow if true;").ok());
  ab.set_time(std::chrono::system_clock::now());
  auto a = ab.build(token);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->authorize().ok());
  auto file1 = a->query(*owns, Params().string("r", "file1"));
  ASSERT_TRUE(file1.ok()) << file1.error().message;
  ASSERT_EQ(file1->size(), 1u);
  EXPECT_EQ(file1->at(0).predicate.terms[0].as_string(), "alice");
  auto file9 = a->query(*owns, Params().string("r", "file9"));
  ASSERT_TRUE(file9.ok());
  EXPECT_TRUE(file9->empty());
  // Unbound placeholders and text that does not parse are errors, at use and at parse.
  EXPECT_EQ(ab.add_fact(*resource).error().code, ErrorCode::Language);
  EXPECT_FALSE(a->query(*owns).ok());
  EXPECT_FALSE(FactTemplate::parse("resource(").ok());
  EXPECT_FALSE(RuleTemplate::parse("not a rule").ok());
}

TEST(Token, ParametersAreTypedAndRequired) {
  BiscuitBuilder b;
  auto missing = b.add_code("user({user});");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::Language);
  // A value full of Datalog syntax stays one string.
  ASSERT_TRUE(b.add_code("user({user});", Params().string("user", "x\"); right(\"all\"); user(\"y")).ok());
  KeyPair root = KeyPair::generate();
  auto t = b.build(root.private_key());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->block(0).facts.size(), 1u);
  auto bad = b.add_code("check if {x};", Params().term("x", datalog::ast::Term::variable("v")));
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(b.add_code("this is not datalog").ok());
}

TEST(Token, SealedTokensVerifyAndRefuseAppend) {
  KeyPair root = KeyPair::generate();
  auto sealed = make_token(root).seal();
  ASSERT_TRUE(sealed.ok());
  auto back = Biscuit::from_bytes(sealed->to_bytes(), root.public_key());
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->sealed());
  EXPECT_TRUE(authorize(*back, kAllowRead).ok());
  BlockBuilder att;
  ASSERT_TRUE(att.add_code("check if true;").ok());
  EXPECT_EQ(back->append(att).error().code, ErrorCode::AppendOnSealed);
  EXPECT_FALSE(back->third_party_request().ok());
}

TEST(Token, ThirdPartyBlocks) {
  for (Algorithm alg : {Algorithm::Ed25519, Algorithm::Secp256r1}) {
    KeyPair root = KeyPair::generate(alg);
    KeyPair issuer = KeyPair::generate(alg);
    BiscuitBuilder b;
    ASSERT_TRUE(b.add_code("right(\"read\"); check if group(\"admin\") trusting {issuer};",
                           Params().public_key("issuer", issuer.public_key()))
                    .ok());
    auto token = b.build(root.private_key(), alg);
    ASSERT_TRUE(token.ok());
    EXPECT_EQ(token->block(0).version, 4u);
    auto req = token->third_party_request();
    ASSERT_TRUE(req.ok());
    auto req2 = ThirdPartyRequest::from_base64(req->to_base64());
    ASSERT_TRUE(req2.ok());
    BlockBuilder tp;
    ASSERT_TRUE(tp.add_code("group(\"admin\"); check if right(\"read\");").ok());
    auto block = req2->create_block(issuer.private_key(), tp);
    ASSERT_TRUE(block.ok());
    auto block2 = ThirdPartyBlock::from_base64(block->to_base64());
    ASSERT_TRUE(block2.ok());
    auto full = token->append_third_party(*block2);
    ASSERT_TRUE(full.ok()) << full.error().to_string();
    auto back = Biscuit::from_bytes(full->to_bytes(), root.public_key());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->block(1).version, 5u);
    EXPECT_EQ(back->block_external_key(1), issuer.public_key());
    EXPECT_EQ(back->block_source(1), "group(\"admin\");\ncheck if right(\"read\");\n");
    auto ok = authorize(*back, "allow if true;");
    EXPECT_TRUE(ok.ok()) << ok.error().to_string();
    // Without the third-party block the authority check fails.
    EXPECT_FALSE(authorize(*token, "allow if true;").ok());
    // A block signed by someone else is not trusted.
    KeyPair mallory = KeyPair::generate();
    auto fake = req2->create_block(mallory.private_key(), tp);
    ASSERT_TRUE(fake.ok());
    auto with_fake = token->append_third_party(*fake);
    ASSERT_TRUE(with_fake.ok());
    EXPECT_FALSE(authorize(*with_fake, "allow if true;").ok());
    // A third-party block made for another token is refused.
    auto other = make_token(root);
    EXPECT_FALSE(other.append_third_party(*block2).ok());
  }
}

TEST(Token, RootKeyIdAndKeyProvider) {
  KeyPair old_key = KeyPair::generate();
  KeyPair new_key = KeyPair::generate(Algorithm::Secp256r1);
  BiscuitBuilder b;
  ASSERT_TRUE(b.add_code("user(\"bob\");").ok());
  b.set_root_key_id(2);
  auto token = b.build(new_key.private_key());
  ASSERT_TRUE(token.ok());
  Biscuit::KeyProvider provider = [&](std::optional<uint32_t> id) -> Result<PublicKey> {
    if (id == 1u) return old_key.public_key();
    if (id == 2u) return new_key.public_key();
    return make_error(ErrorCode::UnknownPublicKey, "unknown root key id");
  };
  auto back = Biscuit::from_base64(token->to_base64(), provider);
  ASSERT_TRUE(back.ok()) << back.error().to_string();
  EXPECT_EQ(back->root_key_id(), std::optional<uint32_t>(2));
  BiscuitBuilder nob;
  ASSERT_TRUE(nob.add_code("user(\"bob\");").ok());
  auto no_id = nob.build(old_key.private_key());
  EXPECT_EQ(Biscuit::from_bytes(no_id->to_bytes(), provider).error().code, ErrorCode::UnknownPublicKey);
}

TEST(Token, QueryAndWorldDump) {
  KeyPair root = KeyPair::generate();
  Biscuit token = make_token(root);
  AuthorizerBuilder ab;
  ASSERT_TRUE(ab.add_code(kAllowRead).ok());
  ab.set_time(std::chrono::system_clock::now());
  ab.set_limits(generous_limits());
  auto a = ab.build(token);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->authorize().ok());
  auto users = a->query("u($u) <- user($u)");
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ(users->at(0).predicate.terms[0].as_string(), "alice");
  std::string json = world_dump_json(a->dump());
  EXPECT_NE(json.find("\"user(\\\"alice\\\")\""), std::string::npos) << json;
}

TEST(Token, ExternFunctionsAndExecutionErrors) {
  KeyPair root = KeyPair::generate();
  BiscuitBuilder b;
  ASSERT_TRUE(b.add_code("check if 1.extern::double() == 2;").ok());
  auto token = b.build(root.private_key());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->block(0).version, 6u);
  EXPECT_EQ(token->envelope().authority.payload_version, 1u);
  AuthorizerBuilder ab;
  ASSERT_TRUE(ab.add_code("allow if true;").ok());
  ab.set_limits(generous_limits());
  {
    auto a = ab.build(*token);
    auto r = a->authorize();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::Execution);  // undefined extern aborts
  }
  ab.register_extern(
      "double",
      [](const datalog::ast::Term& l,
         const std::optional<datalog::ast::Term>&) -> datalog::Expected<datalog::ast::Term, std::string> {
        if (!l.is(datalog::ast::TermKind::Integer)) return std::string("not an integer");
        return datalog::ast::Term::integer(l.as_integer() * 2);
      });
  auto a = ab.build(*token);
  EXPECT_TRUE(a->authorize().ok());
  auto overflow = authorize(*token, "check if 9223372036854775807 + 1 > 0; allow if true;");
  ASSERT_FALSE(overflow.ok());
}

TEST(Hostile, TruncatedFlippedSwappedRemoved) {
  KeyPair root = KeyPair::generate();
  BlockBuilder att;
  ASSERT_TRUE(att.add_code("check if operation(\"read\");").ok());
  auto token = make_token(root).append(att);
  ASSERT_TRUE(token.ok());
  Bytes good = token->to_bytes();
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(
        Biscuit::from_bytes(Bytes(good.begin(), good.begin() + static_cast<long>(n)), root.public_key())
            .ok());
  }
  int refused = 0, total = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      Bytes bad = good;
      bad[i] ^= static_cast<uint8_t>(1 << bit);
      ++total;
      auto t = Biscuit::from_bytes(bad, root.public_key());
      if (!t.ok()) {
        ++refused;
        continue;
      }
      // Flips that survive may only touch unsigned envelope bytes and leave the same token.
      EXPECT_EQ(t->revocation_ids(), token->revocation_ids()) << "flip at " << i;
    }
  }
  EXPECT_GT(refused, total * 9 / 10);
  // Removed and swapped blocks.
  format::Envelope env = token->envelope();
  env.blocks.clear();
  EXPECT_FALSE(Biscuit::from_bytes(env.serialize(), root.public_key()).ok());
  BlockBuilder att2;
  ASSERT_TRUE(att2.add_code("check if true;").ok());
  auto three = token->append(att2);
  format::Envelope swapped = three->envelope();
  std::swap(swapped.blocks[0], swapped.blocks[1]);
  EXPECT_EQ(Biscuit::from_bytes(swapped.serialize(), root.public_key()).error().code,
            ErrorCode::InvalidSignature);
  // Wrong root key, wrong algorithm.
  EXPECT_EQ(Biscuit::from_bytes(good, KeyPair::generate().public_key()).error().code,
            ErrorCode::InvalidSignature);
  auto p256 = Biscuit::from_bytes(good, KeyPair::generate(Algorithm::Secp256r1).public_key());
  ASSERT_FALSE(p256.ok());
  // Not base64, oversized.
  EXPECT_FALSE(Biscuit::from_base64("!!!", root.public_key()).ok());
  ParseLimits small;
  small.max_token_bytes = 64;
  EXPECT_EQ(Biscuit::from_bytes(good, root.public_key(), small).error().code, ErrorCode::Deserialization);
  // Unverified tokens cannot be authorized.
  auto unverified = Biscuit::from_bytes_unverified(good);
  ASSERT_TRUE(unverified.ok());
  EXPECT_FALSE(AuthorizerBuilder().build(*unverified).ok());
}

// Every signature is checked before any block's protobuf is decoded: garbage in place of a
// block (first-party or third-party) is an invalid signature, not a deserialization error;
// only a block whose signatures verify reaches the decoder.
TEST(Hostile, SignaturesAreVerifiedBeforeBlocksAreDecoded) {
  KeyPair root = KeyPair::generate();
  KeyPair issuer = KeyPair::generate();
  Biscuit token = make_token(root);
  auto req = token.third_party_request();
  ASSERT_TRUE(req.ok());
  BlockBuilder tp;
  ASSERT_TRUE(tp.add_code("group(\"admin\");").ok());
  auto block = req->create_block(issuer.private_key(), tp);
  ASSERT_TRUE(block.ok());
  auto third = token.append_third_party(*block);
  ASSERT_TRUE(third.ok()) << third.error().to_string();
  BlockBuilder att;
  ASSERT_TRUE(att.add_code("check if operation(\"read\");").ok());
  auto full = third->append(att);
  ASSERT_TRUE(full.ok());
  const Bytes garbage = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};  // not a protobuf Block
  for (std::size_t i = 0; i < full->envelope().block_count(); ++i) {
    format::Envelope env = full->envelope();
    (i == 0 ? env.authority : env.blocks[i - 1]).block = garbage;
    auto t = Biscuit::from_bytes(env.serialize(), root.public_key());
    ASSERT_FALSE(t.ok()) << "block " << i;
    EXPECT_EQ(t.error().code, ErrorCode::InvalidSignature) << "block " << i << ": " << t.error().message;
    EXPECT_EQ(t.error().block, std::optional<uint32_t>(static_cast<uint32_t>(i)));
    EXPECT_EQ(t.error().to_json(),
              "{\"Format\":{\"Signature\":{\"InvalidSignature\":"
              "\"signature error: Verification equation was not satisfied\"}}}");
  }
  // The same garbage, properly signed, passes the signatures and is refused by the decoder.
  auto signed_garbage = full->envelope().append(garbage, 3, KeyPair::generate());
  ASSERT_TRUE(signed_garbage.ok());
  auto decoded = Biscuit::from_bytes(signed_garbage->serialize(), root.public_key());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::BlockDeserialization) << decoded.error().message;
}

TEST(Hostile, DeepNestingAndFactExplosion) {
  // Deeply nested expression text: refused by the parser's depth limit.
  std::string deep = "check if ";
  for (int i = 0; i < 5000; ++i) deep += "(";
  deep += "true";
  for (int i = 0; i < 5000; ++i) deep += ")";
  BiscuitBuilder b;
  EXPECT_FALSE(b.add_code(deep).ok());

  // A rule set that doubles facts each iteration hits the fact limit, cleanly.
  KeyPair root = KeyPair::generate();
  BiscuitBuilder eb;
  ASSERT_TRUE(eb.add_code("n(0); n(1); n(2); n(3); n(4); n(5); n(6); n(7); n(8); n(9);"
                          "p($a, $b) <- n($a), n($b); t($a, $b, $c) <- p($a, $b), n($c);")
                  .ok());
  auto token = eb.build(root.private_key());
  ASSERT_TRUE(token.ok()) << token.error().to_string();
  AuthorizerBuilder ab;
  ASSERT_TRUE(ab.add_code("allow if true;").ok());
  RunLimits limits;
  limits.max_facts = 500;
  limits.max_time = std::chrono::seconds(5);
  ab.set_limits(limits);
  auto a = ab.build(*token);
  ASSERT_TRUE(a.ok());
  auto r = a->authorize();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == ErrorCode::TooManyFacts || r.error().code == ErrorCode::TooManyIterations)
      << r.error().to_string();
  EXPECT_EQ(std::string(r.error().category()), "RunLimit");
}
