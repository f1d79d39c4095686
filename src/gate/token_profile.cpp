#include "gate/token_profile.h"

#include "base/text.h"
#include "biscuit/datalog/parser.h"
#include "gate/attestation.h"
#include "gate/gate.h"
#include "net/peer_identity.h"

#include <algorithm>
#include <set>

namespace larder::gate {
namespace {

Error profile_error(const std::string& profile, const std::string& message) {
  return make_error("token.profile", "profile \"" + profile + "\": " + message);
}

std::string human(std::chrono::seconds s) {
  auto n = s.count();
  if (n % 86400 == 0) return std::to_string(n / 86400) + "d";
  if (n % 3600 == 0) return std::to_string(n / 3600) + "h";
  if (n % 60 == 0) return std::to_string(n / 60) + "m";
  return std::to_string(n) + "s";
}

}  // namespace

RightFact right_fact(const std::string& right) {
  if (right.rfind(kUnmaskPrefix, 0) == 0) {
    return {"right(\"unmask\", {c})", biscuit::Params().string("c", right.substr(kUnmaskPrefix.size()))};
  }
  return {"right({r})", biscuit::Params().string("r", right)};
}

Result<void> validate_profile(TokenProfile& p) {
  if (p.name.empty()) return make_error("token.profile", "a profile needs a name");
  if (p.rights.empty()) return profile_error(p.name, "grants no right (add tool names to rights)");
  for (const auto& r : p.rights) {
    if (r.empty() || r.size() > 128)
      return profile_error(p.name, "a right must be a tool name of 1 to 128 characters");
    if (r.rfind(kUnmaskPrefix, 0) == 0 && r.size() == kUnmaskPrefix.size()) {
      return profile_error(p.name,
                           "right \"" + r + "\" names nothing to unmask (write unmask:<table>.<column>)");
    }
  }
  std::set<std::string> params;
  for (const auto& text : p.facts) {
    auto source = biscuit::datalog::parse_block_source(text);
    if (!source) return profile_error(p.name, "fact " + text + ": " + source.error().message);
    if (source->facts.size() != 1 || !source->rules.empty() || !source->checks.empty() ||
        !source->scopes.empty()) {
      return profile_error(p.name,
                           "\"" + text + "\" must be exactly one fact, such as patient_name({patient_name})");
    }
    const std::string& predicate = source->facts[0].predicate.name;
    if (is_reserved_predicate(predicate) || predicate == "right") {
      return profile_error(
          p.name, "fact " + text + ": " + predicate +
                      (predicate == "right" ? " belongs in rights" : " is asserted by the server only"));
    }
    for (auto& name : biscuit::datalog::ast::unbound_parameters(*source)) params.insert(std::move(name));
  }
  p.params.assign(params.begin(), params.end());
  if (p.ttl.count() <= 0 || p.max_ttl.count() <= 0)
    return profile_error(p.name, "ttl and max_ttl must be positive");
  if (p.ttl > p.max_ttl)
    return profile_error(p.name, "ttl " + human(p.ttl) + " is above max_ttl " + human(p.max_ttl));
  return {};
}

std::vector<TokenProfile> default_profiles() {
  std::vector<TokenProfile> out;
  TokenProfile patient;
  patient.name = "patient";
  patient.description = "one patient's own records (RLS by patient_name)";
  patient.rights = {"pg_query", "pg_explain", "pg_metadata", "resources/read", "prompts/get"};
  patient.facts = {"patient_name({patient_name})"};
  out.push_back(patient);
  TokenProfile clinician;
  clinician.name = "clinician";
  clinician.description = "a nurse's or doctor's view of one hospital (RLS by role and hospital)";
  clinician.rights = patient.rights;
  clinician.facts = {"role({role})", "hospital({hospital})"};
  out.push_back(clinician);
  TokenProfile readonly;
  readonly.name = "agent-readonly";
  readonly.description = "schema, query plans and prompts; no patient context, so RLS shows no row";
  readonly.rights = {"pg_query", "pg_explain", "pg_metadata", "resources/read", "prompts/get"};
  out.push_back(readonly);
  for (auto& p : out) (void)validate_profile(p);
  return out;
}

Result<IssuedToken> issue_token(const IssueRequest& r) {
  if (!r.profile) return make_error("token.issue", "no profile");
  if (!r.root) return make_error("token.issue", "no root private key");
  if (r.client_cert_pem.empty()) {
    return make_error("token.issue", "a client certificate is required: every token is bound to one");
  }
  if (r.audiences.empty()) return make_error("token.issue", "at least one audience (server) is required");
  const TokenProfile& p = *r.profile;

  // Every placeholder has a value, and every value has a placeholder (a typo would
  // otherwise be dropped silently and mint a token without the fact it was meant to carry).
  std::vector<std::string> missing, unused;
  for (const auto& name : p.params) {
    if (!r.params.ast().terms.count(name)) missing.push_back(name);
  }
  for (const auto& [name, value] : r.params.ast().terms) {
    if (!std::binary_search(p.params.begin(), p.params.end(), name)) unused.push_back(name);
  }
  if (!missing.empty()) {
    std::string hint;
    for (const auto& m : missing) hint += " --param " + m + "=<value>";
    return profile_error(p.name, "needs" + hint);
  }
  if (!unused.empty()) {
    return profile_error(p.name,
                         "takes no parameter " + join(unused) +
                             (p.params.empty() ? " (it takes none)" : " (it takes " + join(p.params) + ")"));
  }
  std::chrono::seconds ttl = r.ttl.value_or(p.ttl);
  if (ttl.count() <= 0) return profile_error(p.name, "the TTL must be positive");
  if (ttl > p.max_ttl) {
    return profile_error(p.name,
                         "a TTL of " + human(ttl) + " is above the profile's max_ttl of " + human(p.max_ttl));
  }
  auto peer = net::peer_identity_from_pem(r.client_cert_pem);
  if (!peer) return make_error("token.issue", "the client certificate: " + peer.error().message);

  const auto expires = std::chrono::time_point_cast<std::chrono::seconds>(r.now + ttl);
  biscuit::BiscuitBuilder builder;
  if (r.root_key_id) builder.set_root_key_id(*r.root_key_id);
  for (const auto& fact : p.facts) {
    if (auto added = builder.add_fact(fact, r.params); !added) {
      return profile_error(p.name, "fact " + fact + ": " + added.error().message);
    }
  }
  for (const auto& right : p.rights) {
    const RightFact fact = right_fact(right);
    if (auto added = builder.add_fact(fact.code, fact.params); !added) {
      return profile_error(p.name, "right " + right + ": " + added.error().message);
    }
  }
  if (auto added = builder.add_check(
          "check if time($time), $time <= {expiry}",
          biscuit::Params().date("expiry", static_cast<uint64_t>(expires.time_since_epoch().count())));
      !added) {
    return make_error("token.issue", added.error().message);
  }
  auto token = builder.build(*r.root);
  if (!token) return make_error("token.issue", token.error().message);
  auto bound = attest(*token, r.client_cert_pem, r.audiences);
  if (!bound) return bound.error();

  IssuedToken out;
  out.base64 = std::move(*bound);
  out.expires_at = expires;
  auto ids = token->revocation_ids();
  if (!ids.empty()) out.revocation_id = biscuit::hex_encode(ids.front());
  out.client_cert_sha256 = peer->cert_sha256;
  return out;
}

}  // namespace larder::gate
