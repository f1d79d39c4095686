// Attacks on what the servers demand of every token (issue #13 item 5): biscuit.require_binding
// and biscuit.require_expiry, on by default. A token minted without a client-certificate
// binding works from any certificate our CA issued if it leaks; one without an expiry works
// until someone revokes it. Both are refused at lock biscuit, on the database server and on
// the egress server, whatever the token grants, and so are the near misses: a "binding" that
// names no certificate, an expiry only an attenuation block sets.
#include "attack_env.h"
#include "base/files.h"

#include "biscuit/biscuit.h"
#include "gate/attestation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace larder::attack {
namespace {

constexpr const char* kRights =
    R"(right("pg_query"); right("pg_explain"); right("pg_metadata"); right("resources/read"); right("prompts/get"); right("hipaa_compliance_check");)";

// Erin's rights from the root key: `expiring` adds `check if time($t), $t <= <tomorrow>` to
// the authority block, `bound` appends claude-client's attestation (certificate + audiences).
std::string mint(bool expiring, bool bound) {
  biscuit::BiscuitBuilder builder;
  builder.set_root_key_id(env().root_key_id);
  std::string code = std::string("patient_name(\"Erin oRTEga\");\n") + kRights;
  biscuit::Params params;
  if (expiring) {
    auto tomorrow = std::chrono::system_clock::now() + std::chrono::hours(24);
    params.date("expiry",
                static_cast<uint64_t>(
                    std::chrono::duration_cast<std::chrono::seconds>(tomorrow.time_since_epoch()).count()));
    code += "\ncheck if time($time), $time <= {expiry};";
  }
  auto added = builder.add_code(code, params);
  if (!added) throw std::runtime_error("mint: " + added.error().message);
  auto token = builder.build(env().root);
  if (!token) throw std::runtime_error("mint: " + token.error().message);
  if (!bound) return token->to_base64();
  auto attested = gate::attest(*token, file_text(env().claude.cert), {"larder-db", "larder-compliance"});
  if (!attested) throw std::runtime_error("mint: " + attested.error().message);
  return *attested;
}

std::string append(const std::string& token, const std::string& code, const biscuit::Params& params = {}) {
  auto parsed = biscuit::Biscuit::from_base64(token, env().root.public_key());
  if (!parsed) throw std::runtime_error("append: " + parsed.error().message);
  biscuit::BlockBuilder block;
  auto added = block.add_code(code, params);
  if (!added) throw std::runtime_error("append: " + added.error().message);
  auto attenuated = parsed->append(block);
  if (!attenuated) throw std::runtime_error("append: " + attenuated.error().message);
  return attenuated->to_base64();
}

// pg_query on the database server and hipaa_compliance_check on the egress server with
// `token`: both must be refused at lock biscuit with `words` in the reason.
void expect_refused_everywhere(const std::string& token, const std::string& words) {
  auto db = connect(bed().db_url(), token);
  auto r = call(*db, "pg_query", {{"query", "SELECT count(*) FROM health_records"}});
  EXPECT_EQ(refused_lock(r), "biscuit") << r.dump();
  EXPECT_NE(text_of(r).find(words), std::string::npos) << text_of(r);
  EXPECT_FALSE(r.contains("structuredContent")) << r.dump();
  auto egress = connect(bed().compliance_url(), token);
  auto e = call(*egress, "hipaa_compliance_check", {{"text", "nothing sensitive"}});
  EXPECT_EQ(refused_lock(e), "biscuit") << e.dump();
  EXPECT_NE(text_of(e).find(words), std::string::npos) << text_of(e);
}

TEST(TokenRequirementsAttack, TheServersRequireBindingAndExpiry) {
  EXPECT_TRUE(bed().db_config().gate.require_binding);
  EXPECT_TRUE(bed().db_config().gate.require_expiry);
  EXPECT_TRUE(bed().compliance_config().gate.require_binding);
  EXPECT_TRUE(bed().compliance_config().gate.require_expiry);
  // The control: the same rights, bound and expiring, are served.
  auto db = connect(bed().db_url(), mint(true, true));
  auto r = call(*db, "pg_query", {{"query", "SELECT count(*) FROM health_records"}});
  EXPECT_EQ(refused_lock(r), "") << r.dump();
}

TEST(TokenRequirementsAttack, AnUnboundTokenIsRefused) {
  expect_refused_everywhere(mint(true, false), "not bound to a client certificate");
}

TEST(TokenRequirementsAttack, ABindingThatNamesNoCertificateIsRefused) {
  const std::string unbound = mint(true, false);
  expect_refused_everywhere(append(unbound, "check if client_cert_sha256($any);"),
                            "not bound to a client certificate");
  expect_refused_everywhere(
      append(unbound, "check if server_audience(\"larder-db\") or server_audience(\"larder-compliance\");"),
      "not bound to a client certificate");
  expect_refused_everywhere(append(unbound, "check if client_cert_cn(\"claude-client\") or time($t);"),
                            "not bound to a client certificate");
}

TEST(TokenRequirementsAttack, ATokenWithoutExpiryIsRefused) {
  expect_refused_everywhere(mint(false, true), "sets no expiry");
}

TEST(TokenRequirementsAttack, AnExpiryAppendedByTheHolderIsNoExpiry) {
  // Anyone holding the token can append a block; the copy without it never expires.
  expect_refused_everywhere(append(mint(false, true), "check if time($t), $t <= 2100-01-01T00:00:00Z;"),
                            "sets no expiry");
}

}  // namespace
}  // namespace larder::attack
