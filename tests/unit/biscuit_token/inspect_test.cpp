// Reading a token without running it (token/inspect.h): a check's predicates and time
// bounds, a block's expiry, whether a check pins a predicate to constants, and the
// predicates a block asserts. Tokens are made with the builder, attenuated and read back.
#include <gtest/gtest.h>

#include "biscuit/biscuit.h"

using namespace biscuit;

namespace {

constexpr uint64_t k2030 = 1893456000;  // 2030-01-01T00:00:00Z
constexpr uint64_t k2031 = 1924992000;  // 2031-01-01T00:00:00Z
constexpr uint64_t k2020 = 1577836800;  // 2020-01-01T00:00:00Z

std::chrono::sys_seconds at(uint64_t seconds) {
  return std::chrono::sys_seconds(std::chrono::seconds(seconds));
}

Biscuit build(const KeyPair& root, const std::string& code, const Params& params = {}) {
  BiscuitBuilder b;
  EXPECT_TRUE(b.add_code(code, params).ok()) << code;
  auto t = b.build(root.private_key());
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(*t);
}

Biscuit append(const Biscuit& token, const std::string& code, const Params& params = {}) {
  BlockBuilder b;
  EXPECT_TRUE(b.add_code(code, params).ok()) << code;
  auto t = token.append(b);
  EXPECT_TRUE(t.ok()) << t.error().to_string();
  return std::move(*t);
}

// Through the wire, as a server reads it.
Biscuit reparse(const Biscuit& token, const KeyPair& root) {
  auto back = Biscuit::from_bytes(token.to_bytes(), root.public_key());
  EXPECT_TRUE(back.ok()) << back.error().to_string();
  return std::move(*back);
}

}  // namespace

TEST(Inspect, TimeBoundsOfOneCheck) {
  KeyPair root = KeyPair::generate();
  Biscuit token = reparse(build(root,
                                "user(\"alice\");"
                                "check if time($t), $t <= {a};"            // upper
                                "check if time($t), {b} > $t, $t >= {c};"  // both, operands swapped
                                "check if time($t), $t <= {a} or time($t), $t <= {b};"  // the loosest
                                "check if time($t), $t <= {a} or user(\"alice\");"      // one query unbounded
                                "reject if time($t), $t > {b};"  // a reject bounds nothing
                                "check if user($u);",
                                Params().date("a", k2030).date("b", k2031).date("c", k2020)),
                          root);
  auto c0 = describe_check(token, 0, 0);
  ASSERT_TRUE(c0.has_value());
  EXPECT_EQ(c0->kind, CheckKind::One);
  EXPECT_EQ(c0->predicates, std::vector<std::string>{"time"});
  EXPECT_TRUE(c0->time.reads_time);
  EXPECT_EQ(c0->time.not_after, at(k2030));
  EXPECT_FALSE(c0->time.not_before.has_value());

  auto c1 = describe_check(token, 0, 1);
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(c1->time.not_after, at(k2031));
  EXPECT_EQ(c1->time.not_before, at(k2020));

  auto c2 = describe_check(token, 0, 2);
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(c2->time.not_after, at(k2031));

  auto c3 = describe_check(token, 0, 3);
  ASSERT_TRUE(c3.has_value());
  EXPECT_TRUE(c3->time.reads_time);
  EXPECT_FALSE(c3->time.not_after.has_value());
  EXPECT_EQ(c3->predicates, (std::vector<std::string>{"time", "user"}));

  auto c4 = describe_check(token, 0, 4);
  ASSERT_TRUE(c4.has_value());
  EXPECT_EQ(c4->kind, CheckKind::Reject);
  EXPECT_TRUE(c4->time.reads_time);
  EXPECT_FALSE(c4->time.not_after.has_value());
  EXPECT_FALSE(c4->time.not_before.has_value());

  auto c5 = describe_check(token, 0, 5);
  ASSERT_TRUE(c5.has_value());
  EXPECT_FALSE(c5->time.reads_time);
  EXPECT_EQ(c5->predicates, std::vector<std::string>{"user"});

  EXPECT_FALSE(describe_check(token, 0, 6).has_value());
  EXPECT_FALSE(describe_check(token, 1, 0).has_value());
}

TEST(Inspect, BlockExpiryIsTheEarliestUpperBoundOfThatBlock) {
  KeyPair root = KeyPair::generate();
  Biscuit token = build(root, "check if time($t), $t <= {b}; check if time($t), $t < {a};",
                        Params().date("a", k2030).date("b", k2031));
  EXPECT_EQ(block_expiry(token, 0), at(k2030));
  // A block appended later has its own expiry; the authority block's does not change.
  Biscuit shorter = reparse(append(token, "check if time($t), $t <= {c};", Params().date("c", k2020)), root);
  EXPECT_EQ(block_expiry(shorter, 0), at(k2030));
  EXPECT_EQ(block_expiry(shorter, 1), at(k2020));
  EXPECT_FALSE(block_expiry(shorter, 2).has_value());
  // An `expiry($e)` fact compared with $t, or a lower bound only, sets no expiry.
  Biscuit indirect =
      build(root, "expiry({a}); check if time($t), expiry($e), $t <= $e; check if time($t), $t >= {c};",
            Params().date("a", k2030).date("c", k2020));
  EXPECT_FALSE(block_expiry(indirect, 0).has_value());
}

TEST(Inspect, SomeCheckPinsAPredicateToConstants) {
  KeyPair root = KeyPair::generate();
  static constexpr std::string_view kCert[] = {"client_cert_sha256", "mtls_client"};
  Biscuit plain = build(root, "user(\"alice\"); check if user($u);");
  EXPECT_FALSE(some_check_pins(plain, kCert));
  // A variable binds nothing; neither does a `reject if`, nor an alternative without it.
  EXPECT_FALSE(some_check_pins(append(plain, "check if client_cert_sha256($x);"), kCert));
  EXPECT_FALSE(some_check_pins(append(plain, "reject if mtls_client(\"bob\");"), kCert));
  EXPECT_FALSE(some_check_pins(append(plain, "check if mtls_client(\"bob\") or user(\"alice\");"), kCert));
  // Constant terms in every alternative bind, in any block.
  Biscuit bound = reparse(append(plain, "check if client_cert_sha256({h}) or mtls_client(\"bob\");",
                                 Params().bytes("h", Bytes(32, 0xab))),
                          root);
  EXPECT_TRUE(some_check_pins(bound, kCert));
  static constexpr std::string_view kAudience[] = {"server_audience"};
  EXPECT_FALSE(some_check_pins(bound, kAudience));
  EXPECT_TRUE(some_check_pins(append(plain, "check if server_audience(\"db\");"), kAudience));
}

TEST(Inspect, BlockAssertionsListFactsAndRuleHeads) {
  KeyPair root = KeyPair::generate();
  Biscuit token = build(root,
                        "user(\"alice\"); right(\"read\"); user(\"bob\");"
                        "allowed($u) <- user($u); tool($t) <- right($t);"
                        "check if time($t);");
  token = reparse(append(token, "sensitive_data(true); check if tool_egress(false);"), root);
  auto b0 = block_assertions(token, 0);
  EXPECT_EQ(b0.facts, (std::vector<std::string>{"user", "right"}));
  EXPECT_EQ(b0.rule_heads, (std::vector<std::string>{"allowed", "tool"}));
  auto b1 = block_assertions(token, 1);
  EXPECT_EQ(b1.facts, std::vector<std::string>{"sensitive_data"});
  EXPECT_TRUE(b1.rule_heads.empty());
  auto none = block_assertions(token, 2);
  EXPECT_TRUE(none.facts.empty() && none.rule_heads.empty());
}

TEST(Inspect, ThirdPartyBlocksAreReadThroughTheirOwnSymbols) {
  KeyPair root = KeyPair::generate();
  KeyPair issuer = KeyPair::generate();
  Biscuit token = build(root, "user(\"alice\");");
  auto req = token.third_party_request();
  ASSERT_TRUE(req.ok());
  BlockBuilder tp;
  ASSERT_TRUE(tp.add_code("group(\"admin\"); check if time($t), $t <= {a}, mtls_client(\"bob\");",
                          Params().date("a", k2030))
                  .ok());
  auto block = req->create_block(issuer.private_key(), tp);
  ASSERT_TRUE(block.ok());
  auto full = token.append_third_party(*block);
  ASSERT_TRUE(full.ok()) << full.error().to_string();
  Biscuit back = reparse(*full, root);
  EXPECT_EQ(block_assertions(back, 1).facts, std::vector<std::string>{"group"});
  auto check = describe_check(back, 1, 0);
  ASSERT_TRUE(check.has_value());
  EXPECT_EQ(check->predicates, (std::vector<std::string>{"mtls_client", "time"}));
  EXPECT_EQ(check->time.not_after, at(k2030));
  EXPECT_EQ(block_expiry(back, 1), at(k2030));
  static constexpr std::string_view kCert[] = {"mtls_client"};
  EXPECT_TRUE(some_check_pins(back, kCert));
}
