#include "agent/redaction.h"
#include "agent/agent.h"

#include <gtest/gtest.h>

namespace larder::agent {
namespace {

using nlohmann::json;

TEST(Redactor, LiteralSecrets) {
  Redactor r;
  r.add_secret("short");  // too short to be a secret: ignored (it would shred ordinary text)
  r.add_secret("s3cr3t-value-xyz");
  EXPECT_EQ(r.redact("a s3cr3t-value-xyz b s3cr3t-value-xyz"), "a [redacted] b [redacted]");
  EXPECT_EQ(r.redact("short words stay"), "short words stay");
  EXPECT_TRUE(r.contains_known_secret("..s3cr3t-value-xyz.."));
  EXPECT_FALSE(r.contains_known_secret("nothing here"));
}

TEST(Redactor, LongestSecretFirst) {
  Redactor r;
  r.add_secret("abcdefgh");
  r.add_secret("abcdefgh-longer-one");
  EXPECT_EQ(r.redact("x abcdefgh-longer-one y"), "x [redacted] y");
}

TEST(Redactor, PemBlocks) {
  Redactor r;
  std::string text = "before -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE----- after";
  EXPECT_EQ(r.redact(text), "before [redacted] after");
  EXPECT_EQ(r.redact("x -----BEGIN PRIVATE KEY-----\nMC4C"), "x [redacted]");  // unterminated
  EXPECT_TRUE(r.contains_secret(text));
}

TEST(Redactor, TokenShapedRuns) {
  Redactor r;
  std::string token(120, 'A');
  for (size_t i = 0; i < token.size(); i += 3) token[i] = 'z';
  token[5] = '7';
  EXPECT_EQ(r.redact("token: " + token + "."), "token: [redacted].");
  // Long but not token-like: one case, no digits (e.g. a long word or hex without letters case mix).
  std::string word(120, 'a');
  EXPECT_EQ(r.redact(word), word);
  std::string sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";  // 64 chars: kept
  EXPECT_EQ(r.redact(sha), sha);
}

TEST(Redactor, JsonDropsMetaEverywhere) {
  Redactor r;
  r.add_secret("tok-1234567890");
  json in = {{"rows", {{{"a", "tok-1234567890"}, {"_meta", {{"x", 1}}}}}},
             {"_meta", {{"larder/biscuit_token", "tok-1234567890"}}},
             {"tok-1234567890", 1},
             {"n", 5}};
  json out = r.redact_json(in);
  EXPECT_FALSE(out.contains("_meta"));
  EXPECT_FALSE(out["rows"][0].contains("_meta"));
  EXPECT_EQ(out["rows"][0]["a"], "[redacted]");
  EXPECT_TRUE(out.contains("[redacted]"));
  EXPECT_EQ(out["n"], 5);
}

TEST(TokenStore, SwitchesAndRemembers) {
  TokenStore s("root-token-0001");
  EXPECT_FALSE(s.replace(""));
  EXPECT_FALSE(s.replace("root-token-0001"));
  EXPECT_TRUE(s.replace("tainted-token-0002"));
  EXPECT_EQ(s.current(), "tainted-token-0002");
  EXPECT_EQ(s.known().size(), 2u);
  EXPECT_EQ(s.switches(), 1);
  TokenStore none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.known().empty());
}

TEST(Schema, StripsTheTokenArgument) {
  json schema = {{"type", "object"},
                 {"properties", {{"sql", {{"type", "string"}}}, {"biscuit_token", {{"type", "string"}}}}},
                 {"required", {"sql", "biscuit_token"}}};
  bool had = false;
  json out = strip_token_from_schema(schema, &had);
  EXPECT_TRUE(had);
  EXPECT_FALSE(out["properties"].contains("biscuit_token"));
  EXPECT_EQ(out["required"], json::array({"sql"}));
  json plain = {{"type", "object"}, {"properties", {{"to", {{"type", "string"}}}}}};
  EXPECT_EQ(strip_token_from_schema(plain, &had), plain);
  EXPECT_FALSE(had);
  EXPECT_EQ(strip_token_from_schema(json("nonsense"))["type"], "object");
}

TEST(Decisions, FromMeta) {
  EXPECT_TRUE(decisions_from_meta(json()).empty());
  auto one = decisions_from_meta(
      {{"larder/decision", {{"lock", "biscuit"}, {"decision", "deny"}, {"reason", "expired"}}}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].lock, "biscuit");
  EXPECT_EQ(one[0].reason, "expired");
  auto many = decisions_from_meta(
      {{"larder/decision",
        {{{"lock", "mtls"}, {"decision", "allow"}}, 3, {{"lock", "rls"}, {"decision", true}}}}});
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(many[1].decision, "true");
}

}  // namespace
}  // namespace larder::agent
