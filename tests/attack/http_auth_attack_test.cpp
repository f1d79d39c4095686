// Boundary: HTTP authorization (MCP 2025-06-18 / 2025-11-25, RFC 6750, RFC 9728). A client with
// our certificate calls without a token, with garbage, a tampered, a revoked or a foreign
// bearer token, and tries to make the metadata name another host. Each refusal by lock
// biscuit of a missing or bearer-only token is HTTP 401 with the challenge; the body is the
// refusal it always was and carries no row; the seed-style argument keeps its answer.
#include "attack_env.h"

#include "biscuit/token/token.h"
#include "net/client.h"

#include <gtest/gtest.h>

namespace larder::attack {
namespace {

using nlohmann::json;

std::string call_body(const std::string& tool, const json& arguments, int id = 5) {
  return json{{"jsonrpc", "2.0"},
              {"id", id},
              {"method", "tools/call"},
              {"params", {{"name", tool}, {"arguments", arguments}}}}
      .dump();
}

// A session opened without any token: initialize is open to every certificate of our CA.
std::string open_session() {
  return raw_session(env().db_url);
}

void expect_challenge(const RawResponse& r, bool invalid_token) {
  ASSERT_EQ(r.status, 401) << r.body.substr(0, 300);
  auto www = r.header("WWW-Authenticate");
  ASSERT_TRUE(www) << "a 401 names how to authenticate";
  EXPECT_EQ(www->rfind("Bearer resource_metadata=\"https://", 0), 0u) << *www;
  EXPECT_NE(www->find("/.well-known/oauth-protected-resource/mcp\""), std::string::npos) << *www;
  EXPECT_EQ(www->find("error=\"invalid_token\"") != std::string::npos, invalid_token) << *www;
  if (invalid_token) {
    EXPECT_NE(www->find("error_description=\""), std::string::npos) << *www;
  }
}

// The body of a refused call: the JSON-RPC answer with lock biscuit, and no row.
void expect_refusal_body(const RawResponse& r) {
  auto body = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << r.body.substr(0, 300);
  EXPECT_EQ(body["id"], 5);
  ASSERT_TRUE(body.contains("result")) << r.body.substr(0, 300);
  EXPECT_TRUE(body["result"].value("isError", false));
  EXPECT_EQ(body["result"]["_meta"]["larder/decision"]["lock"], "biscuit");
  EXPECT_FALSE(body["result"].contains("structuredContent"));
  EXPECT_EQ(r.body.find("oRTEga"), std::string::npos) << "no row in a refusal";
}

TEST(HttpAuthAttack, ACallWithoutAnyTokenGets401WithTheResourceMetadataChallenge) {
  const std::string sid = open_session();
  auto r =
      raw_post(env().db_url, call_body("pg_query", {{"query", "SELECT * FROM health_records"}}), "", sid);
  expect_challenge(r, /*invalid_token=*/false);
  expect_refusal_body(r);
}

TEST(HttpAuthAttack, GarbageTamperedAndForeignBearerTokensGet401InvalidToken) {
  const std::string sid = open_session();
  std::string tampered = fresh_patient_token();
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  for (const std::string& token :
       {std::string("not-a-token"), tampered, fresh_patient_token_for(env().other)}) {
    auto r = raw_post(env().db_url, call_body("pg_query", {{"query", "SELECT 1"}}), token, sid);
    expect_challenge(r, /*invalid_token=*/true);
    expect_refusal_body(r);
  }
}

TEST(HttpAuthAttack, ARevokedBearerTokenGets401InvalidTokenOnItsNextCall) {
  const std::string token = fresh_patient_token();
  const std::string sid = raw_session(env().db_url, token);
  auto before = raw_post(env().db_url, call_body("pg_query", {{"query", "SELECT 1"}}), token, sid);
  EXPECT_EQ(before.status, 200) << before.body.substr(0, 300);
  auto parsed = biscuit::Biscuit::from_base64(token, env().root.public_key());
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(env().revoke(biscuit::hex_encode(parsed->revocation_ids().front())).ok());
  auto after = raw_post(env().db_url, call_body("pg_query", {{"query", "SELECT 1"}}), token, sid);
  expect_challenge(after, /*invalid_token=*/true);
  EXPECT_NE(after.header("WWW-Authenticate")->find("revoked"), std::string::npos);
  expect_refusal_body(after);
}

TEST(HttpAuthAttack, ASeedStyleArgumentTokenKeepsItsAnswerAndAValidBearerPasses) {
  const std::string sid = open_session();
  auto seed = raw_post(env().db_url,
                       call_body("pg_query", {{"query", "SELECT 1"}, {"biscuit_token", "garbage"}}), "", sid);
  EXPECT_EQ(seed.status, 200) << "the argument's refusal stays a tool result";
  expect_refusal_body(seed);
  auto ok =
      raw_post(env().db_url, call_body("pg_query", {{"query", "SELECT 1"}}), fresh_patient_token(), sid);
  EXPECT_EQ(ok.status, 200) << ok.body.substr(0, 300);
  EXPECT_FALSE(ok.header("WWW-Authenticate"));
}

TEST(HttpAuthAttack, AResourceReadWithoutATokenGets401AndTheRefusalError) {
  const std::string sid = open_session();
  auto r = raw_post(env().db_url,
                    json{{"jsonrpc", "2.0"},
                         {"id", 5},
                         {"method", "resources/read"},
                         {"params", {{"uri", "pgmcp://healthcare/schemas"}}}}
                        .dump(),
                    "", sid);
  expect_challenge(r, /*invalid_token=*/false);
  auto body = json::parse(r.body, nullptr, false);
  EXPECT_EQ(body["error"]["code"], -32003) << r.body;
  EXPECT_EQ(body["error"]["data"]["lock"], "biscuit");
}

// RFC 9728 metadata: served to our certificates, naming the resource and its audience; the
// Host it is built from is the one the DNS-rebinding check admitted, never an attacker's.
TEST(HttpAuthAttack, TheResourceMetadataNamesThisServerAndNoHostAnAttackerSends) {
  const auto slash = env().db_url.find('/', 8);
  const std::string base = env().db_url.substr(0, slash);
  auto client = net::HttpClient::create(base, claude_tls());
  ASSERT_TRUE(client.ok());
  for (const char* path :
       {"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}) {
    auto r = (*client)->request("GET", path, {}, "", std::chrono::seconds(10));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, 200) << path << ": " << r->body;
    auto doc = json::parse(r->body);
    EXPECT_EQ(doc["resource"].get<std::string>().rfind("https://", 0), 0u);
    EXPECT_NE(doc["resource"].get<std::string>().find("/mcp"), std::string::npos);
    EXPECT_EQ(doc["larder_audience"], "larder-db");
    EXPECT_EQ(doc["tls_client_certificate_bound_access_tokens"], true);
    EXPECT_EQ(doc["bearer_methods_supported"], json::array({"header"}));
  }
  auto evil = (*client)->request("GET", "/.well-known/oauth-protected-resource", {{"Host", "evil.example"}},
                                 "", std::chrono::seconds(10));
  ASSERT_TRUE(evil.ok());
  EXPECT_EQ(evil->status, 403) << evil->body;
  EXPECT_EQ(evil->body.find("\"resource\""), std::string::npos) << "no metadata naming the attacker's host";
}

}  // namespace
}  // namespace larder::attack
