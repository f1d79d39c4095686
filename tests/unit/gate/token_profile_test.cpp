// `larder token issue`'s one function: a profile's rights and facts, bound, expiring, with
// the root key id — verified by a real Gate, over the certificate it was bound to.
#include "gate/token_profile.h"
#include "examples/examples.h"
#include "gate/gate.h"
#include "net/peer_identity.h"
#include "net/pki.h"
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace larder::gate {
namespace {

using std::chrono::system_clock;

struct Issuer {
  biscuit::KeyPair root = biscuit::KeyPair::generate();
  std::string cert_pem, other_pem;
  net::PeerIdentity peer, other;
  std::unique_ptr<Gate> gate;

  Issuer() {
    auto ca = net::pki::create_ca("Profile CA");
    net::pki::CertSpec spec;
    spec.common_name = "claude-client";
    cert_pem = net::pki::issue_certificate(*ca, spec)->cert_pem;
    other_pem = net::pki::issue_certificate(*ca, spec)->cert_pem;  // same name, another certificate
    peer = *net::peer_identity_from_pem(cert_pem);
    other = *net::peer_identity_from_pem(other_pem);
    GateOptions o;
    o.root_keys.push_back({7, root.public_key().to_string()});
    o.limits.max_time = std::chrono::seconds(5);  // not the 1 ms default: CI runs these under ASan, loaded
    // The RLS context a policy file with these facts and a masked column makes the gate read.
    o.dimensions = {{"patient_name", {policy::ValueType::kText}}, {"tenant", {policy::ValueType::kUuid}}};
    o.unmask_rights = true;
    auto g = Gate::create(o);
    if (!g) throw std::runtime_error(g.error().message);
    gate = std::move(*g);
  }

  IssueRequest request(const TokenProfile& p, biscuit::Params params = {}) {
    IssueRequest r;
    r.profile = &p;
    r.params = std::move(params);
    r.root = &root.private_key();
    r.root_key_id = 7;
    r.client_cert_pem = cert_pem;
    r.audiences = {"larder-db"};
    return r;
  }

  Decision call(const std::string& token, const std::string& tool, const net::PeerIdentity& who,
                system_clock::time_point at = system_clock::now(), Grant* grant = nullptr) {
    auto v = gate->verify(token);
    if (!v) return Decision{false, Lock::kBiscuit, v.error().message};
    CallFacts facts{"tools/call", tool, DataFlow::kSensitiveRead, {}, {}};
    return gate->authorize(**v, &who, facts, at, grant);
  }
};

TokenProfile profile(const std::string& name) {
  for (auto& p : default_profiles()) {
    if (p.name == name) return p;
  }
  throw std::runtime_error("no profile " + name);
}

TEST(TokenProfile, APatientTokenGrantsItsRightsCarriesItsFactsAndIsBound) {
  Issuer i;
  TokenProfile patient = profile("patient");
  auto issued = issue_token(i.request(patient, biscuit::Params().string("patient_name", "Erin oRTEga")));
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  Grant grant;
  Decision d = i.call(issued->base64, "pg_query", i.peer, system_clock::now(), &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.values("patient_name"), std::vector<std::string>{"Erin oRTEga"});
  EXPECT_TRUE(grant.unmask.empty());
  EXPECT_FALSE(
      i.call(issued->base64, "hipaa_compliance_check", i.peer).allowed);  // not a right of the profile
  EXPECT_FALSE(i.call(issued->base64, "pg_query", i.other).allowed);      // another certificate
  EXPECT_EQ(issued->client_cert_sha256, i.peer.cert_sha256);
  EXPECT_EQ(issued->revocation_id.size(), 128u);
}

TEST(TokenProfile, EveryTokenExpiresAndNamesItsRootKeyId) {
  Issuer i;
  TokenProfile readonly = profile("agent-readonly");
  auto r = i.request(readonly);
  r.ttl = std::chrono::minutes(30);
  auto issued = issue_token(r);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  auto v = i.gate->verify(issued->base64);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->expires_at.has_value());
  EXPECT_NEAR(
      std::chrono::duration_cast<std::chrono::seconds>(*(*v)->expires_at - system_clock::now()).count(), 1800,
      5);
  auto token = biscuit::Biscuit::from_base64(issued->base64, i.root.public_key());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->root_key_id(), std::optional<uint32_t>(7));
  EXPECT_TRUE(i.call(issued->base64, "pg_metadata", i.peer).allowed);
  EXPECT_FALSE(
      i.call(issued->base64, "pg_metadata", i.peer, system_clock::now() + std::chrono::minutes(31)).allowed);
}

TEST(TokenProfile, MissingUnknownAndOverlongAreRefusedInPlainWords) {
  Issuer i;
  TokenProfile patient = profile("patient");
  auto missing = issue_token(i.request(patient));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("--param patient_name=<value>"), std::string::npos)
      << missing.error().message;

  auto typo = issue_token(
      i.request(patient, biscuit::Params().string("patient_name", "x").string("patient_nmae", "y")));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("takes no parameter patient_nmae"), std::string::npos)
      << typo.error().message;

  auto r = i.request(patient, biscuit::Params().string("patient_name", "x"));
  r.ttl = std::chrono::hours(24 * 365);
  auto overlong = issue_token(r);
  ASSERT_FALSE(overlong.ok());
  EXPECT_NE(overlong.error().message.find("max_ttl"), std::string::npos);

  auto unbound = i.request(profile("agent-readonly"));
  unbound.client_cert_pem.clear();
  EXPECT_FALSE(issue_token(unbound).ok());  // every token is bound
}

// A value from the command line is a typed parameter: Datalog in it stays a string.
TEST(TokenProfile, AParameterCannotInjectDatalog) {
  Issuer i;
  TokenProfile patient = profile("patient");
  auto issued = issue_token(i.request(
      patient,
      biscuit::Params().string("patient_name", "x\"); right(\"hipaa_compliance_check\"); patient_name(\"y")));
  ASSERT_TRUE(issued.ok());
  EXPECT_FALSE(i.call(issued->base64, "hipaa_compliance_check", i.peer).allowed);
}

// "unmask:<table>.<column>" in rights grants right("unmask", "<table>.<column>"): the gate
// reads it as a column the token reads in clear. It grants no tool, and its value is a typed
// parameter like any other.
TEST(TokenProfile, AnUnmaskRightGrantsReadingThatColumnInClear) {
  Issuer i;
  TokenProfile support;
  support.name = "support-engineer";
  support.rights = {"pg_query", "unmask:customers.email"};
  support.facts = {"tenant({tenant})"};
  ASSERT_TRUE(validate_profile(support).ok());
  EXPECT_EQ(support.params, std::vector<std::string>{"tenant"});
  const std::string acme = "6c09ed4c-60a4-46d7-88e4-1a8e1862e5e0";
  auto issued = issue_token(i.request(support, biscuit::Params().string("tenant", acme)));
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  Grant grant;
  Decision d = i.call(issued->base64, "pg_query", i.peer, system_clock::now(), &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.unmask, std::vector<std::string>{"customers.email"});
  EXPECT_EQ(grant.values("tenant"), std::vector<std::string>{acme});
  EXPECT_FALSE(i.call(issued->base64, "pg_explain", i.peer).allowed);  // not a right of the profile

  EXPECT_EQ(right_fact("pg_query").code, "right({r})");
  EXPECT_EQ(right_fact("unmask:customers.email").code, "right(\"unmask\", {c})");

  // Without the unmask right, nothing is unmasked.
  TokenProfile plain = support;
  plain.rights = {"pg_query"};
  ASSERT_TRUE(validate_profile(plain).ok());
  auto without = issue_token(i.request(plain, biscuit::Params().string("tenant", acme)));
  ASSERT_TRUE(without.ok()) << without.error().message;
  Grant none;
  ASSERT_TRUE(i.call(without->base64, "pg_query", i.peer, system_clock::now(), &none).allowed);
  EXPECT_TRUE(none.unmask.empty());

  // The column is a parameter: Datalog in it stays a string.
  TokenProfile sneaky = support;
  sneaky.rights = {"pg_query", "unmask:x\"); right(\"hipaa_compliance_check\"); right(\"unmask\", \"y"};
  ASSERT_TRUE(validate_profile(sneaky).ok());
  auto injected = issue_token(i.request(sneaky, biscuit::Params().string("tenant", acme)));
  ASSERT_TRUE(injected.ok()) << injected.error().message;
  Grant odd;
  ASSERT_TRUE(i.call(injected->base64, "pg_query", i.peer, system_clock::now(), &odd).allowed);
  EXPECT_EQ(odd.unmask.size(), 1u);
  EXPECT_FALSE(i.call(injected->base64, "hipaa_compliance_check", i.peer).allowed);

  // An unmask right must name what it unmasks.
  TokenProfile empty = support;
  empty.rights = {"pg_query", "unmask:"};
  auto refused = validate_profile(empty);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("names nothing to unmask"), std::string::npos)
      << refused.error().message;
}

}  // namespace
}  // namespace larder::gate
