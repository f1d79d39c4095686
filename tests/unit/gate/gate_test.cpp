// Lock 2 against real tokens: every token here is built and signed by libbiscuit.
#include "gate/gate.h"
#include "db/database.h"
#include "examples/examples.h"
#include "gate/attestation.h"
#include "gate/reasons.h"
#include "net/pki.h"
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <fstream>

namespace larder::gate {
namespace {

using std::chrono::system_clock;

// The RLS context of the healthcare example's policy file: patient_name, role, hospital
// (one text argument each).
std::vector<ContextDimension> healthcare_dimensions() {
  auto e = examples::find("healthcare");
  if (!e) throw std::runtime_error(e.error().message);
  auto p = policy::parse((*e)->policy, "<example healthcare>/policy.toml");
  if (!p) throw std::runtime_error(p.error().message);
  return context_dimensions(*p);
}

struct Fixture {
  biscuit::KeyPair root = biscuit::KeyPair::generate();
  std::unique_ptr<Gate> gate;
  net::PeerIdentity claude;
  net::PeerIdentity other;

  // Without dimensions of its own, a fixture reads the healthcare example's RLS context.
  explicit Fixture(GateOptions options = {}, bool default_dimensions = true) {
    if (options.root_keys.empty()) options.root_keys.push_back({1, root.public_key().to_string()});
    // Authorization's 1 ms default deadline is for a quiet server: under AddressSanitizer on a
    // loaded 2-core CI machine one authorization took longer and was refused (Timeout). The
    // deadline has its own tests (libbiscuit's limits, and the memory budget test below).
    if (options.limits.max_time == biscuit::RunLimits{}.max_time)
      options.limits.max_time = std::chrono::seconds(5);
    if (default_dimensions && options.dimensions.empty()) options.dimensions = healthcare_dimensions();
    auto g = Gate::create(std::move(options));
    if (!g) throw std::runtime_error(g.error().message);
    gate = std::move(*g);
    claude.cn = "claude-client";
    claude.cert_sha256 = std::string(64, 'a');
    claude.spki_sha256 = std::string(64, 'b');
    claude.issuer = "CN=Larder CA";
    other = claude;
    other.cn = "other-client";
    other.cert_sha256 = std::string(64, 'c');
  }

  std::string mint(const std::string& code, const biscuit::Params& params = {},
                   std::optional<uint32_t> id = 1, const biscuit::KeyPair* key = nullptr) {
    biscuit::BiscuitBuilder b;
    auto added = b.add_code(code, params);
    if (!added) throw std::runtime_error(added.error().message);
    if (id) b.set_root_key_id(*id);
    auto t = b.build((key ? *key : root).private_key());
    if (!t) throw std::runtime_error(t.error().message);
    return t->to_base64();
  }

  std::string attenuate(const std::string& token, const std::string& code,
                        const biscuit::Params& params = {}) {
    auto t = biscuit::Biscuit::from_base64(token, root.public_key());
    if (!t) throw std::runtime_error(t.error().message);
    biscuit::BlockBuilder block;
    auto added = block.add_code(code, params);
    if (!added) throw std::runtime_error(added.error().message);
    auto a = t->append(block);
    if (!a) throw std::runtime_error(a.error().message);
    return a->to_base64();
  }

  Decision call(const std::string& token, const std::string& tool, const net::PeerIdentity* peer,
                Grant* grant = nullptr, DataFlow flow = DataFlow::kSensitiveRead,
                std::set<std::string> tables = {}) {
    auto v = gate->verify(token);
    if (!v) return Decision{false, Lock::kBiscuit, v.error().message};
    CallFacts facts{"tools/call", tool, flow, std::move(tables), {}};
    return gate->authorize(**v, peer, facts, system_clock::now(), grant);
  }
};

const char* kErin = R"(patient_name("Erin oRTEga"); right("pg_query"); right("hipaa_compliance_check");)";

TEST(Gate, GrantsTheToolAndReadsTheRlsContext) {
  Fixture f;
  auto token = f.mint(kErin);
  Grant grant;
  auto d = f.call(token, "pg_query", &f.claude, &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.values("patient_name"), std::vector<std::string>{"Erin oRTEga"});
  EXPECT_TRUE(grant.values("role").empty());
  EXPECT_TRUE(grant.values("hospital").empty());
  EXPECT_EQ(grant.facts["patient_name"], (std::vector<std::vector<std::string>>{{"Erin oRTEga"}}));
  EXPECT_TRUE(grant.unmask.empty());
}

TEST(Gate, TheHealthcareDimensionsAreItsThreeTextFacts) {
  auto dims = healthcare_dimensions();
  ASSERT_EQ(dims.size(), 3u);
  std::set<std::string> names;
  for (const auto& d : dims) {
    names.insert(d.fact);
    EXPECT_EQ(d.types, std::vector<policy::ValueType>{policy::ValueType::kText}) << d.fact;
  }
  EXPECT_EQ(names, (std::set<std::string>{"patient_name", "role", "hospital"}));
}

TEST(Gate, WithoutDimensionsTheGrantCarriesNoContext) {
  // DatabaseConfig and GateOptions default to nothing: no policy file, no RLS context.
  Fixture f(GateOptions{}, /*default_dimensions=*/false);
  Grant grant;
  auto d = f.call(f.mint(std::string(kErin) + R"(role("nurse"); hospital("Cook PLC");)"), "pg_query",
                  &f.claude, &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_TRUE(grant.facts.empty());
  EXPECT_TRUE(grant.values("patient_name").empty());
}

TEST(Gate, TypedDimensionsAndUnmaskRights) {
  GateOptions o;
  o.dimensions = {{"tenant", {policy::ValueType::kUuid}},
                  {"seat", {policy::ValueType::kText, policy::ValueType::kInteger}}};
  o.unmask_rights = true;
  Fixture f(o);
  const std::string uuid = "0b6c4f5e-3f1a-4c2b-9d7e-1a2b3c4d5e6f";
  auto token = f.mint("tenant(\"" + uuid +
                      "\"); seat(\"a\", 2); seat(\"b\", 3); right(\"pg_query\"); "
                      "right(\"unmask\", \"customers.email\");");
  Grant grant;
  auto d = f.call(token, "pg_query", &f.claude, &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.values("tenant"), std::vector<std::string>{uuid});
  EXPECT_EQ(grant.facts["seat"], (std::vector<std::vector<std::string>>{{"a", "2"}, {"b", "3"}}));
  EXPECT_EQ(grant.values("seat"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(grant.unmask, std::vector<std::string>{"customers.email"});
  // A value that is not of the declared type is refused, not silently dropped.
  auto typo = f.mint(R"(tenant("not-a-uuid"); right("pg_query");)");
  Grant typo_grant;
  auto refused = f.call(typo, "pg_query", &f.claude, &typo_grant);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.lock, Lock::kBiscuit);
  EXPECT_NE(refused.reason.find("tenant"), std::string::npos) << refused.reason;
  // Attenuation blocks add neither context nor unmask rights.
  auto widened =
      f.attenuate(f.mint("tenant(\"" + uuid + "\"); right(\"pg_query\");"),
                  R"(tenant("11111111-1111-1111-1111-111111111111"); right("unmask", "customers.email");)");
  Grant narrow;
  ASSERT_TRUE(f.call(widened, "pg_query", &f.claude, &narrow).allowed);
  EXPECT_EQ(narrow.values("tenant"), std::vector<std::string>{uuid});
  EXPECT_TRUE(narrow.unmask.empty());
}

TEST(Gate, DeniesUngrantedToolsByDefault) {
  Fixture f;
  auto token = f.mint(kErin);
  auto d = f.call(token, "pg_explain", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kPolicy);
  EXPECT_NE(d.reason.find("pg_explain"), std::string::npos) << d.reason;
}

TEST(Gate, AttenuationBlocksCannotGrantOrWidenRlsContext) {
  Fixture f;
  auto token = f.mint(R"(patient_name("Erin oRTEga"); right("pg_query");)");
  // A holder appends facts: another patient and another right. Neither may count.
  auto widened = f.attenuate(token, R"(patient_name("DAvID AndErSON"); right("pg_explain"); role("nurse");)");
  Grant grant;
  auto d = f.call(widened, "pg_query", &f.claude, &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.values("patient_name"), std::vector<std::string>{"Erin oRTEga"});
  EXPECT_TRUE(grant.values("role").empty());
  EXPECT_FALSE(f.call(widened, "pg_explain", &f.claude).allowed);
}

TEST(Gate, ReservedPredicatesAreRefusedInAnyBlock) {
  Fixture f;
  // The original demo's hole: the token asserts the very fact its check looks for.
  auto self_attested =
      f.mint(R"(right("pg_query"); mtls_client("claude-client"); check if mtls_client("claude-client");)");
  auto d = f.call(self_attested, "pg_query", &f.other);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("mtls_client"), std::string::npos) << d.reason;

  for (const char* fact : {"tool(\"pg_query\")", "tool_egress(false)", "server_audience(\"larder-db\")",
                           "time(2020-01-01T00:00:00Z)", "table(\"health_records\")",
                           "client_cert_sha256(hex:00)", "client_cert_anything(\"x\")"}) {
    auto asserting = f.mint(std::string("right(\"pg_query\"); ") + fact + ";");
    EXPECT_FALSE(f.call(asserting, "pg_query", &f.claude).allowed) << fact;
    auto attenuated = f.attenuate(f.mint(kErin), std::string(fact) + ";");
    EXPECT_FALSE(f.call(attenuated, "pg_query", &f.claude).allowed) << fact;
  }
  // As a rule head too.
  auto rule = f.attenuate(f.mint(kErin), "tool_egress(false) <- right($x);");
  EXPECT_FALSE(f.call(rule, "pg_query", &f.claude).allowed);
}

TEST(Gate, CertificateBindingUsesTheConnectionsCertificate) {
  Fixture f;
  auto bound = f.attenuate(f.mint(kErin),
                           "check if client_cert_sha256({sha}); check if server_audience(\"larder-db\");",
                           biscuit::Params().bytes("sha", biscuit::Bytes(32, 0xaa)));
  EXPECT_TRUE(f.call(bound, "pg_query", &f.claude).allowed);
  auto d = f.call(bound, "pg_query", &f.other);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("client_cert_sha256"), std::string::npos) << d.reason;
  EXPECT_FALSE(f.call(bound, "pg_query", nullptr).allowed);  // no certificate at all
}

TEST(Gate, AudienceBinding) {
  GateOptions compliance;
  compliance.audience = "larder-compliance";
  Fixture f;
  auto bound = f.attenuate(f.mint(kErin), "check if server_audience(\"larder-db\");");
  EXPECT_TRUE(f.call(bound, "pg_query", &f.claude).allowed);
  compliance.root_keys.push_back({1, f.root.public_key().to_string()});
  auto other_server = Gate::create(compliance);
  ASSERT_TRUE(other_server.ok());
  auto v = (*other_server)->verify(bound);
  ASSERT_TRUE(v.ok());
  auto d =
      (*other_server)
          ->authorize(**v, &f.claude, {"tools/call", "hipaa_compliance_check", DataFlow::kEgress, {}, {}},
                      system_clock::now(), nullptr);
  EXPECT_FALSE(d.allowed);
}

TEST(Gate, TaintBlockRefusesEgressOnly) {
  Fixture f;
  auto token = f.mint(kErin);
  auto v = f.gate->verify(token);
  ASSERT_TRUE(v.ok());
  auto tainted = f.gate->attenuate_tainted(**v);
  ASSERT_TRUE(tainted.ok()) << tainted.error().message;
  EXPECT_TRUE(f.call(*tainted, "pg_query", &f.claude, nullptr, DataFlow::kSensitiveRead).allowed);
  auto d = f.call(*tainted, "hipaa_compliance_check", &f.claude, nullptr, DataFlow::kEgress);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kTaint);
  // Same lineage: the taint block does not change the authority block's revocation id.
  auto tv = f.gate->verify(*tainted);
  ASSERT_TRUE(tv.ok());
  EXPECT_EQ((*tv)->lineage, (*v)->lineage);
  EXPECT_EQ((*tv)->revocation_ids.size(), 2u);
}

TEST(Gate, RecognisesItsOwnTaintBlockOnly) {
  Fixture f;
  auto token = f.mint(kErin);
  auto v = f.gate->verify(token);
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE((*v)->carries_taint_block);
  auto tainted = f.gate->attenuate_tainted(**v);
  ASSERT_TRUE(tainted.ok());
  auto tv = f.gate->verify(*tainted);
  ASSERT_TRUE(tv.ok());
  EXPECT_TRUE((*tv)->carries_taint_block);
  // Further attenuation keeps it recognised; a look-alike block that is not exactly the
  // taint block (here: without the egress check) is not taken for one.
  auto narrowed = f.attenuate(*tainted, "check if tool(\"pg_query\");");
  EXPECT_TRUE((*f.gate->verify(narrowed))->carries_taint_block);
  auto lookalike = f.attenuate(token, "sensitive_data(true);");
  EXPECT_FALSE((*f.gate->verify(lookalike))->carries_taint_block);
  // The authority block saying the same words is not an attenuation block.
  auto authority = f.mint("sensitive_data(true); check if tool_egress(false);");
  EXPECT_FALSE((*f.gate->verify(authority))->carries_taint_block);
}

TEST(Gate, ExpiryIsEnforcedAndRecorded) {
  Fixture f;
  auto past = f.mint(std::string(kErin) + " check if time($t), $t <= 2020-01-01T00:00:00Z;");
  auto d = f.call(past, "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  auto future = f.mint(std::string(kErin) + " check if time($t), $t <= {exp};",
                       biscuit::Params().date("exp", 4102444800));  // 2100-01-01
  EXPECT_TRUE(f.call(future, "pg_query", &f.claude).allowed);
  auto v = f.gate->verify(future);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->expires_at.has_value());
  EXPECT_EQ(system_clock::to_time_t(*(*v)->expires_at), 4102444800);
}

// The ledger's memory comes from the authority block alone (finding 2: a holder appended
// `check if time($t), $t > 1970-01-01T00:00:00Z` so the taint entry expired in 1970).
TEST(Gate, OnlyTheAuthorityBlockDecidesHowLongTheLineageIsRemembered) {
  Fixture f;
  auto token = f.mint(std::string(kErin) + " check if time($t), $t <= {exp};",
                      biscuit::Params().date("exp", 4102444800));
  for (const char* appended :
       {"check if time($t), $t > 1970-01-01T00:00:00Z;", "check if time($t), $t <= 1971-01-01T00:00:00Z;",
        "check if time($t), 1971-01-01T00:00:00Z >= $t;"}) {
    auto v = f.gate->verify(f.attenuate(token, appended));
    ASSERT_TRUE(v.ok()) << v.error().message;
    ASSERT_TRUE((*v)->expires_at.has_value()) << appended;
    EXPECT_EQ(system_clock::to_time_t(*(*v)->expires_at), 4102444800) << appended;
  }
}

TEST(Gate, ANotBeforeLimitIsNoExpiry) {
  Fixture f;
  // A not-before limit in the past with an expiry far ahead: the expiry counts, not the
  // earliest date written.
  auto both = f.mint(
      std::string(kErin) + " check if time($t), $t >= 2001-01-01T00:00:00Z; check if time($t), $t < {exp};",
      biscuit::Params().date("exp", 4102444800));
  auto v = f.gate->verify(both);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE((*v)->expires_at.has_value());
  EXPECT_EQ(system_clock::to_time_t(*(*v)->expires_at), 4102444800);
  // Only a not-before limit, or an expiry in a shape the gate does not read: never expires.
  for (const std::string& code :
       {std::string(kErin) + " check if time($t), $t >= 2001-01-01T00:00:00Z;",
        std::string(kErin) + " expiry(2001-01-01T00:00:00Z); check if time($t), expiry($e), $t <= $e;",
        std::string(kErin) +
            " check if time($t), $t <= 2100-01-01T00:00:00Z or time($t), $t >= 2001-01-01T00:00:00Z;"}) {
    auto w = f.gate->verify(f.mint(code));
    ASSERT_TRUE(w.ok()) << w.error().message;
    EXPECT_FALSE((*w)->expires_at.has_value()) << code;
  }
}

// Issue #13 item 5: what the server demands of every token (biscuit.require_binding,
// biscuit.require_expiry), refused as lock biscuit in words that name the requirement.
TEST(Gate, RequiredBindingAndExpiry) {
  GateOptions o;
  o.require_binding = true;
  o.require_expiry = true;
  Fixture f(o);
  const std::string expiring = std::string(kErin) + " check if time($t), $t <= 2100-01-01T00:00:00Z;";
  const auto sha = biscuit::Params().bytes("sha", biscuit::Bytes(32, 0xaa));
  auto bound = f.attenuate(f.mint(expiring), "check if client_cert_sha256({sha});", sha);
  EXPECT_TRUE(f.call(bound, "pg_query", &f.claude).allowed);

  auto unbound = f.mint(expiring);
  auto d = f.call(unbound, "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("not bound to a client certificate"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("larder biscuit attest"), std::string::npos) << d.reason;

  auto forever = f.attenuate(f.mint(kErin), "check if client_cert_sha256({sha});", sha);
  d = f.call(forever, "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("sets no expiry"), std::string::npos) << d.reason;
  // An expiry only an attenuation block sets is no expiry of the lineage.
  auto late = f.attenuate(forever, "check if time($t), $t <= 2100-01-01T00:00:00Z;");
  EXPECT_FALSE(f.call(late, "pg_query", &f.claude).allowed);

  // What counts as a binding: a constant certificate predicate in every alternative.
  for (const char* binding :
       {"check if mtls_client(\"claude-client\");", "check if client_cert_cn(\"claude-client\");",
        "check if client_cert_spki_sha256({sha});"}) {
    auto v = f.gate->verify(f.attenuate(f.mint(expiring), binding, sha));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_TRUE((*v)->binds_certificate) << binding;
  }
  for (const char* loose :
       {"check if client_cert_sha256($any);", "check if server_audience(\"larder-db\");",
        "check if client_cert_sha256({sha}) or server_audience(\"larder-db\");",
        "reject if client_cert_sha256({sha});", "check if client_cert_issuer(\"CN=Larder CA\");"}) {
    auto v = f.gate->verify(f.attenuate(f.mint(expiring), loose, sha));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_FALSE((*v)->binds_certificate) << loose;
    EXPECT_FALSE(f.call(f.attenuate(f.mint(expiring), loose, sha), "pg_query", &f.claude).allowed) << loose;
  }

  // Off (the library default): the same tokens pass.
  Fixture lax;
  EXPECT_TRUE(lax.call(lax.mint(kErin), "pg_query", &lax.claude).allowed);
}

// Refusals in the user's words (issue #13): what failed, when, and what to do — never the
// implementation's ("check failed in block 0: check if time($time) …").
TEST(GateWording, AnExpiredTokenSaysWhenInUtcAndHowLongAgo) {
  Fixture f;
  const auto now = system_clock::now();
  const auto expired_at = std::chrono::time_point_cast<std::chrono::seconds>(now - std::chrono::hours(2));
  auto token =
      f.mint(std::string(kErin) + " check if time($t), $t <= {exp};",
             biscuit::Params().date("exp", static_cast<uint64_t>(system_clock::to_time_t(expired_at))));
  auto d = f.call(token, "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_EQ(d.reason.rfind("token expired at " + describe_utc(expired_at) + " (2 h ago)", 0), 0u) << d.reason;
  EXPECT_NE(d.reason.find("UTC"), std::string::npos) << d.reason;
  EXPECT_EQ(d.reason.find("check if"), std::string::npos) << d.reason;
  // An expiry the holder appended speaks the same way, with its own date.
  auto narrowed = f.attenuate(f.mint(kErin), "check if time($t), $t < 2020-01-01T00:00:00Z;");
  auto n = f.call(narrowed, "pg_query", &f.claude);
  EXPECT_EQ(n.reason.rfind("token expired at 2020-01-01 00:00:00 UTC (", 0), 0u) << n.reason;
  EXPECT_NE(n.reason.find(" days "), std::string::npos) << n.reason;
}

TEST(GateWording, ATokenNotYetValidSaysFromWhen) {
  Fixture f;
  const auto from =
      std::chrono::time_point_cast<std::chrono::seconds>(system_clock::now() + std::chrono::hours(3));
  auto token = f.mint(std::string(kErin) + " check if time($t), $t >= {from};",
                      biscuit::Params().date("from", static_cast<uint64_t>(system_clock::to_time_t(from))));
  auto d = f.call(token, "pg_query", &f.claude);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_EQ(d.reason.rfind(
                "token is not valid yet: it is valid from " + describe_utc(from) + " (in 2 h 59 min)", 0),
            0u)
      << d.reason;
}

TEST(GateWording, AnUnknownOrRetiredRootKeyIsNamedByItsId) {
  biscuit::KeyPair current = biscuit::KeyPair::generate();
  biscuit::KeyPair retired = biscuit::KeyPair::generate();
  GateOptions o;
  o.root_keys = {{1, current.public_key().to_string()},
                 {2, biscuit::KeyPair::generate().public_key().to_string()}};
  Fixture f(o);
  auto unknown = f.call(f.mint(kErin, {}, 7, &retired), "pg_query", &f.claude);
  EXPECT_EQ(unknown.lock, Lock::kBiscuit);
  EXPECT_EQ(unknown.reason, unknown_root_key_reason(7, true));
  EXPECT_NE(unknown.reason.find("unknown or retired root key (key id 7)"), std::string::npos);
  // Signed by a retired key under a current key's id: the signature does not verify.
  auto wrong = f.call(f.mint(kErin, {}, 1, &retired), "pg_query", &f.claude);
  EXPECT_EQ(wrong.reason, bad_signature_reason(1));
  EXPECT_NE(wrong.reason.find("unknown or retired root key"), std::string::npos) << wrong.reason;
  EXPECT_EQ(wrong.reason.find("Verification equation"), std::string::npos) << wrong.reason;
  auto unnamed = f.call(f.mint(kErin, {}, std::nullopt, &retired), "pg_query", &f.claude);
  EXPECT_EQ(unnamed.reason, unknown_root_key_reason(std::nullopt, true));
}

TEST(GateWording, AnotherCertificateAndAnotherAudienceSaySo) {
  Fixture f;
  const biscuit::Params sha = biscuit::Params().bytes("sha", biscuit::Bytes(32, 0xaa));
  auto bound = f.attenuate(f.mint(kErin), "check if client_cert_sha256({sha});", sha);
  auto d = f.call(bound, "pg_query", &f.other);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_EQ(d.reason.rfind(
                "token is bound to another client certificate than this connection's (CN=other-client)", 0),
            0u)
      << d.reason;
  auto none = f.call(bound, "pg_query", nullptr);
  EXPECT_EQ(none.reason.rfind("token is bound to a client certificate and this connection presents none", 0),
            0u)
      << none.reason;

  auto for_db = f.attenuate(f.mint(kErin), "check if server_audience(\"larder-db\");");
  GateOptions compliance;
  compliance.audience = "larder-compliance";
  compliance.root_keys.push_back({1, f.root.public_key().to_string()});
  auto other_server = Gate::create(compliance);
  ASSERT_TRUE(other_server.ok());
  auto v = (*other_server)->verify(for_db);
  ASSERT_TRUE(v.ok());
  auto a = (*other_server)
               ->authorize(**v, &f.claude, {"tools/call", "pg_query", DataFlow::kSensitiveRead, {}, {}},
                           system_clock::now(), nullptr);
  EXPECT_EQ(a.lock, Lock::kBiscuit);
  EXPECT_EQ(
      a.reason.rfind("token is meant for another server, not this one (audience \"larder-compliance\")", 0),
      0u)
      << a.reason;
}

TEST(GateWording, TaintedAndRevokedSaySo) {
  Fixture f;
  auto v = f.gate->verify(f.mint(kErin));
  ASSERT_TRUE(v.ok());
  auto tainted = f.gate->attenuate_tainted(**v);
  ASSERT_TRUE(tainted.ok());
  auto d = f.call(*tainted, "hipaa_compliance_check", &f.claude, nullptr, DataFlow::kEgress);
  EXPECT_EQ(d.lock, Lock::kTaint);
  EXPECT_EQ(d.reason, tainted_token_reason("hipaa_compliance_check"));
  EXPECT_EQ(d.reason.rfind("token is tainted: it has read sensitive data", 0), 0u) << d.reason;
  EXPECT_EQ(tainted_lineage_reason("hipaa_compliance_check").rfind("token is tainted: ", 0), 0u);
  const std::string id = (*v)->lineage;
  EXPECT_EQ(revoked_reason(id),
            "token has been revoked (revocation id " + id + "); ask its issuer for a new token");
}

TEST(GateWording, SpansAndInstants) {
  using namespace std::chrono;
  EXPECT_EQ(describe_span(seconds(42)), "42 s");
  EXPECT_EQ(describe_span(minutes(5) + seconds(3)), "5 min");
  EXPECT_EQ(describe_span(hours(2) + minutes(5)), "2 h 5 min");
  EXPECT_EQ(describe_span(hours(2)), "2 h");
  EXPECT_EQ(describe_span(hours(76)), "3 days 4 h");
  EXPECT_EQ(describe_span(-hours(24)), "1 day");
  EXPECT_EQ(describe_utc(system_clock::time_point(seconds(4102444800))), "2100-01-01 00:00:00 UTC");
}

TEST(Gate, TableRestrictionFromTheToken) {
  Fixture f;
  auto token = f.attenuate(f.mint(kErin), R"(check all table($t), ["health_records"].contains($t);)");
  EXPECT_TRUE(
      f.call(token, "pg_query", &f.claude, nullptr, DataFlow::kSensitiveRead, {"health_records"}).allowed);
  EXPECT_FALSE(
      f.call(token, "pg_query", &f.claude, nullptr, DataFlow::kSensitiveRead, {"health_records", "secrets"})
          .allowed);
}

TEST(Gate, RootKeySelectionAndRotation) {
  biscuit::KeyPair old_key = biscuit::KeyPair::generate();
  biscuit::KeyPair new_key = biscuit::KeyPair::generate();
  GateOptions o;
  o.root_keys = {{1, old_key.public_key().to_string()}, {2, new_key.public_key().to_string()}};
  Fixture f(o);
  EXPECT_TRUE(f.call(f.mint(kErin, {}, 1, &old_key), "pg_query", &f.claude).allowed);
  EXPECT_TRUE(f.call(f.mint(kErin, {}, 2, &new_key), "pg_query", &f.claude).allowed);
  // Signed by the new key but claiming the old id: signature check fails.
  EXPECT_FALSE(f.call(f.mint(kErin, {}, 1, &new_key), "pg_query", &f.claude).allowed);
  EXPECT_FALSE(f.call(f.mint(kErin, {}, 7, &new_key), "pg_query", &f.claude).allowed);
  biscuit::KeyPair stranger = biscuit::KeyPair::generate();
  EXPECT_FALSE(f.call(f.mint(kErin, {}, 1, &stranger), "pg_query", &f.claude).allowed);
}

// A rotation adds a key: tokens minted before key ids were used (none named) keep working
// under whichever trusted key signed them; one that no trusted key signed is refused.
TEST(Gate, ATokenWithoutAKeyIdVerifiesUnderAnyTrustedKey) {
  biscuit::KeyPair old_key = biscuit::KeyPair::generate();
  biscuit::KeyPair new_key = biscuit::KeyPair::generate();
  GateOptions o;
  o.root_keys = {{1, old_key.public_key().to_string()}, {2, new_key.public_key().to_string()}};
  Fixture f(o);
  EXPECT_TRUE(f.call(f.mint(kErin, {}, std::nullopt, &old_key), "pg_query", &f.claude).allowed);
  EXPECT_TRUE(f.call(f.mint(kErin, {}, std::nullopt, &new_key), "pg_query", &f.claude).allowed);
  biscuit::KeyPair stranger = biscuit::KeyPair::generate();
  Decision d = f.call(f.mint(kErin, {}, std::nullopt, &stranger), "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("none of the root keys this server trusts signed it"), std::string::npos)
      << d.reason;
}

TEST(Gate, MalformedTokensAreCleanErrors) {
  Fixture f;
  auto good = f.mint(kErin);
  for (std::string bad : {std::string(""), std::string("   "), std::string("not base64 !!"),
                          good.substr(0, good.size() / 2), std::string(200000, 'A')}) {
    auto v = f.gate->verify(bad);
    EXPECT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, "biscuit");
  }
  std::string flipped = good;
  flipped[flipped.size() / 2] = flipped[flipped.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(f.gate->verify(flipped).ok());
}

TEST(Gate, VerificationIsCached) {
  Fixture f;
  auto token = f.mint(kErin);
  ASSERT_TRUE(f.gate->verify(token).ok());
  ASSERT_TRUE(f.gate->verify(token).ok());
  ASSERT_TRUE(f.gate->verify(" " + token + "\n").ok());
  auto stats = f.gate->cache_stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.entries, 1u);
}

TEST(Gate, ClinicianContext) {
  Fixture f;
  auto nurse = f.mint(R"(role("nurse"); hospital("Sullivan-Johnson"); right("pg_query");)");
  Grant grant;
  ASSERT_TRUE(f.call(nurse, "pg_query", &f.claude, &grant).allowed);
  EXPECT_EQ(grant.values("role"), std::vector<std::string>{"nurse"});
  EXPECT_EQ(grant.values("hospital"), std::vector<std::string>{"Sullivan-Johnson"});
  EXPECT_TRUE(grant.values("patient_name").empty());
}

TEST(Gate, PolicyMustParse) {
  GateOptions o;
  o.root_keys.push_back({std::nullopt, biscuit::KeyPair::generate().public_key().to_string()});
  o.policy_code = "allow if ((";
  EXPECT_FALSE(Gate::create(o).ok());
  o.policy_code = "right(\"x\");";  // no policy at all
  EXPECT_FALSE(Gate::create(o).ok());
}

// Finding 4: a token check on the server's facts alone (`check if client_cert_sha256(hex:…)`)
// is decided before the authorizer runs any other check of the token.
std::string concat_code(int n) {
  std::string code = "check if (";
  for (int i = 0; i < n; ++i) code += i ? " + {s}" : "{s}";
  return code + ").length() > 0;";
}

TEST(Gate, ABindingThatFailsRefusesBeforeAnyOtherCheckRuns) {
  GateOptions o;
  o.limits.max_time = std::chrono::seconds(60);  // the memory budget, not the clock, stops it here
  o.limits.max_memory_bytes = 1 << 20;
  Fixture f(o);
  const biscuit::Params sha = biscuit::Params().bytes("sha", biscuit::Bytes(32, 0xaa));
  auto bound = f.attenuate(
      f.mint(kErin), "check if client_cert_sha256({sha}); check if server_audience(\"larder-db\");", sha);
  // The holder appends a costly check: 100 concatenations of a 4,000-character string.
  auto costly = f.attenuate(bound, concat_code(100), biscuit::Params().string("s", std::string(4000, 'a')));
  // From the bound certificate every check runs, and the costly one stops at the memory budget.
  auto d = f.call(costly, "pg_query", &f.claude);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.lock, Lock::kBiscuit);
  EXPECT_NE(d.reason.find("authorization error: run limit"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("memory budget of 1048576 bytes"), std::string::npos) << d.reason;
  // From another certificate, or none, the binding alone refuses it: the costly check never runs.
  const std::string check = "check if client_cert_sha256(hex:" + std::string(64, 'a') + ")";
  for (const net::PeerIdentity* peer : std::vector<const net::PeerIdentity*>{&f.other, nullptr}) {
    auto early = f.call(costly, "pg_query", peer);
    EXPECT_FALSE(early.allowed);
    EXPECT_EQ(early.lock, Lock::kBiscuit);
    EXPECT_EQ(early.reason, other_certificate_reason(peer, check));
  }
  EXPECT_TRUE(f.call(bound, "pg_query", &f.claude).allowed);
}

TEST(Gate, TheEarlyRefusalSaysWhatTheFullAuthorizationSays) {
  Fixture f;
  const biscuit::Params sha = biscuit::Params().bytes("sha", biscuit::Bytes(32, 0xaa));
  const std::string hex = "hex:" + std::string(64, 'a');
  // `, true` makes a check that only the authorizer decides; its printed form differs by that.
  struct Case {
    std::string code;
    const net::PeerIdentity* peer;
    DataFlow flow;
    std::string expected;  // for the ground form, with {T} where `, true` goes
  };
  const std::vector<Case> cases = {
      {"check if client_cert_sha256({sha}){T};", &f.other, DataFlow::kSensitiveRead,
       other_certificate_reason(&f.other, "check if client_cert_sha256(" + hex + "){T}")},
      {"check if client_cert_sha256({sha}){T}; check if server_audience(\"larder-compliance\"){T};", &f.other,
       DataFlow::kSensitiveRead,
       other_certificate_reason(&f.other, "check if client_cert_sha256(" + hex + "){T}") +
           " (and 1 more of its checks failed)"},
      {"check if mtls_client(\"claude-client\"){T};", &f.other, DataFlow::kSensitiveRead,
       other_certificate_reason(&f.other, "check if mtls_client(\"claude-client\"){T}")},
      {"reject if mtls_client(\"other-client\"){T};", &f.other, DataFlow::kSensitiveRead,
       other_certificate_reason(&f.other, "reject if mtls_client(\"other-client\"){T}")},
      {"check all operation(\"write\"){T};", &f.claude, DataFlow::kSensitiveRead,
       failed_check_reason(1, "check all operation(\"write\"){T}")},
      {"check if tool(\"pg_explain\"){T};", &f.claude, DataFlow::kSensitiveRead,
       failed_check_reason(1, "check if tool(\"pg_explain\"){T}")},
      {"check if table(\"secrets\"){T};", &f.claude, DataFlow::kSensitiveRead,
       failed_check_reason(1, "check if table(\"secrets\"){T}")},
      {"check if tool_egress(false){T};", &f.claude, DataFlow::kEgress, tainted_token_reason("pg_query")},
  };
  auto fill = [](std::string text, const std::string& with) {
    for (auto at = text.find("{T}"); at != std::string::npos; at = text.find("{T}"))
      text.replace(at, 3, with);
    return text;
  };
  for (const auto& c : cases) {
    auto ground =
        f.call(f.attenuate(f.mint(kErin), fill(c.code, ""), sha), "pg_query", c.peer, nullptr, c.flow);
    auto full =
        f.call(f.attenuate(f.mint(kErin), fill(c.code, ", true"), sha), "pg_query", c.peer, nullptr, c.flow);
    EXPECT_FALSE(ground.allowed) << c.code;
    EXPECT_EQ(ground.reason, fill(c.expected, "")) << c.code;
    EXPECT_EQ(full.reason, fill(c.expected, ", true")) << c.code;
    EXPECT_EQ(ground.lock, full.lock) << c.code;
    EXPECT_EQ(ground.lock, c.flow == DataFlow::kEgress ? Lock::kTaint : Lock::kBiscuit) << c.code;
  }
  // And what holds passes: the call's own facts.
  auto ok =
      f.attenuate(f.mint(kErin), R"(check if client_cert_sha256({sha}); check if mtls_client("claude-client");
      check if client_cert_cn("claude-client"); check if client_cert_issuer("CN=Larder CA");
      check if server_audience("larder-db"); check if tool("pg_query"); check if operation("read");
      check if tool_egress(false); check if table("health_records"); reject if mtls_client("other-client");
      check all table("health_records");)",
                  sha);
  auto d = f.call(ok, "pg_query", &f.claude, nullptr, DataFlow::kSensitiveRead, {"health_records"});
  EXPECT_TRUE(d.allowed) << d.reason;
}

TEST(Gate, PredicatesThePolicyAssertsAreLeftToTheAuthorizer) {
  GateOptions o;
  o.policy_code = default_policy_code() + "mtls_client(\"robot\");\n";
  Fixture f(o);
  auto t = f.attenuate(f.mint(kErin), "check if mtls_client(\"robot\");");
  auto d = f.call(t, "pg_query", &f.claude);
  EXPECT_TRUE(d.allowed) << d.reason;
}

TEST(Gate, OversizedBlocksAreRefusedWhenTheTokenIsVerified) {
  Fixture f;
  auto token = biscuit::Biscuit::from_base64(f.mint(kErin), f.root.public_key());
  ASSERT_TRUE(token.ok());
  biscuit::BlockBuilder attack;
  attack.set_limits(biscuit::datalog::SizeLimits::unlimited());
  ASSERT_TRUE(attack.add_code(concat_code(500), biscuit::Params().string("s", std::string(4000, 'a'))).ok());
  auto attacked = token->append(attack);
  ASSERT_TRUE(attacked.ok());
  auto v = f.gate->verify(attacked->to_base64());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "biscuit");
  EXPECT_NE(v.error().message.find("1003 operations, above the limit of 512"), std::string::npos)
      << v.error().message;
}

TEST(Gate, BearerHeader) {
  EXPECT_EQ(bearer_token(std::string("Bearer abc")), "abc");
  EXPECT_EQ(bearer_token(std::string("bearer   abc  ")), "abc");
  EXPECT_FALSE(bearer_token(std::string("Basic abc")).has_value());
  EXPECT_FALSE(bearer_token(std::string("Bearer ")).has_value());
  EXPECT_FALSE(bearer_token(std::nullopt).has_value());
}

}  // namespace
}  // namespace larder::gate

namespace larder::gate {
namespace {

TEST(Attestation, BindsToTheCertificateAndAudiences) {
  auto ca = net::pki::create_ca("Attest CA");
  ASSERT_TRUE(ca.ok());
  net::pki::CertSpec spec;
  spec.common_name = "claude-client";
  auto cert = net::pki::issue_certificate(*ca, spec);
  ASSERT_TRUE(cert.ok());
  auto identity = net::peer_identity_from_pem(cert->cert_pem);
  ASSERT_TRUE(identity.ok());

  Fixture f;
  auto token = biscuit::Biscuit::from_base64(f.mint(kErin), f.root.public_key());
  ASSERT_TRUE(token.ok());
  auto bound = attest(*token, cert->cert_pem, {"larder-db", "larder-compliance"});
  ASSERT_TRUE(bound.ok()) << bound.error().message;
  auto d = f.call(*bound, "pg_query", &*identity);
  EXPECT_TRUE(d.allowed) << d.reason;
  EXPECT_FALSE(f.call(*bound, "pg_query", &f.claude).allowed);  // same CN, other certificate

  auto by_cn = attest(*token, cert->cert_pem, {"larder-db"}, /*cn_only=*/true);
  ASSERT_TRUE(by_cn.ok());
  EXPECT_TRUE(f.call(*by_cn, "pg_query", &f.claude).allowed);  // the weaker form: any cert with that CN
  EXPECT_FALSE(f.call(*by_cn, "pg_query", &f.other).allowed);

  EXPECT_FALSE(attest(*token, "not a certificate", {"larder-db"}).ok());
}

}  // namespace
}  // namespace larder::gate

namespace larder::gate {
namespace {

// Every reason sentence a lock makes falls in its kind (the refusals' metric label): a new
// sentence that no longer matches shows up here, not as "other" in production.
TEST(RefusalKind, EveryReasonSentenceHasItsKind) {
  const auto now = std::chrono::system_clock::now();
  const std::vector<std::tuple<const char*, std::string, const char*>> cases = {
      {"biscuit", expired_reason(now - std::chrono::hours(1), now), "expired"},
      {"biscuit", not_yet_valid_reason(now + std::chrono::hours(1), now), "not_yet_valid"},
      {"biscuit", outside_validity_reason("check if time($t), $t < 2020-01-01T00:00:00Z"), "validity"},
      {"biscuit", other_certificate_reason(nullptr, "check if client_cert_sha256(\"ab\")"),
       "other_certificate"},
      {"biscuit", other_audience_reason("larder-db", "check if server_audience(\"x\")"), "other_audience"},
      {"biscuit", failed_check_reason(1, "check if right(\"pg_query\")"), "failed_check"},
      {"biscuit", unknown_root_key_reason(7, true), "unknown_root_key"},
      {"biscuit", unknown_root_key_reason(std::nullopt, false), "unknown_root_key"},
      {"biscuit", bad_signature_reason(1), "bad_signature"},
      {"biscuit", altered_token_reason(2), "altered"},
      {"biscuit", altered_token_reason(std::nullopt), "altered"},
      {"biscuit", revoked_reason("abcd"), "revoked"},
      {"biscuit", "no Biscuit token: send `Authorization: Bearer <token>` or the biscuit_token argument",
       "missing"},
      {"biscuit", "the Authorization header is not a Bearer token", "not_bearer"},
      {"biscuit", "token refused: mtls_client (only the server may assert it)", "reserved_predicate"},
      {"biscuit", "token could not be parsed: truncated protobuf", "malformed"},
      {"taint", tainted_token_reason("hipaa_compliance_check"), "tainted"},
      {"taint", tainted_lineage_reason("hipaa_compliance_check"), "tainted"},
      {"taint", kAuditUnavailableReason, "audit_unavailable"},
      {"mtls", "no client certificate on this connection", "no_certificate"},
      {"limits", "too many concurrent calls for this token's lineage (limit 16)", "concurrency"},
      {"limits", "too many calls per second for this token's lineage (limit 100/s, burst 200)", "rate"},
      {"database", "database unavailable, retry later", "unavailable"},
      {"database",
       "refused: the planner estimates cost 1e9, above the ceiling 1e7 ([database] max_query_cost)",
       "too_costly"},
      {"database", "database error 57014 (operator intervention): deadline exceeded, the query was cancelled",
       "timeout"},
      {"database", "database error 57014 (operator intervention): the caller cancelled the call",
       "cancelled"},
      {"database", std::string("database error 57014 (operator intervention): ") + db::kStoppingReason,
       "shutdown"},
      {"database", "database error 42501 (insufficient privilege)", "statement"},
      {"sql-guard", "only SELECT statements are allowed", "refused"},
      {"policy", "no policy matched", "denied"},
  };
  for (const auto& [lock, reason, kind] : cases) {
    EXPECT_STREQ(refusal_kind(lock, reason), kind) << lock << ": " << reason;
  }
}

}  // namespace
}  // namespace larder::gate

namespace larder::gate {
namespace {

// One source each: the built-in policy is data/policies/default.datalog (embedded at build
// time), the server's predicates are policy::server_predicates(), and that file names them all.
TEST(DefaultPolicy, IsTheDataFileAndNamesEveryServerPredicate) {
  std::ifstream in(std::string(LARDER_SOURCE_DIR) + "/data/policies/default.datalog");
  const std::string file((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(default_policy_code(), file);
  for (const auto& p : reserved_predicates()) {
    EXPECT_TRUE(file.find(" " + p + ",") != std::string::npos ||
                file.find(" " + p + ".") != std::string::npos)
        << p << " is not named in default.datalog";
  }
  EXPECT_EQ(&reserved_predicates(), &policy::server_predicates());
}

}  // namespace
}  // namespace larder::gate
