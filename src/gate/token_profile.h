// Token profiles: the named sets of rights and facts an operator grants with
// `larder token issue --profile <name>` ([profiles.<name>] in larder.toml), and the one
// function that mints a token from a profile. Every token it mints
//   - carries the profile's facts, with `{param}` values bound as typed parameters,
//   - grants the profile's rights as right("<tool>") facts in the authority block, and a
//     right "unmask:<table>.<column>" as right("unmask", "<table>.<column>") (the policy
//     file's masked columns read in clear: docs/policy.md),
//   - expires (check if time($time), $time <= <expiry>; the TTL is never optional),
//   - names the root key id it was signed with (so keys can be rotated), and
//   - is bound to one client certificate and to the servers' audiences (gate/attestation.h).
// The demo's tokens are minted here too.
#pragma once

#include "base/result.h"
#include "biscuit/token/token.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace larder::gate {

struct TokenProfile {
  std::string name;
  std::string description;
  // Tool names, "resources/read", "prompts/get"; "unmask:<table>.<column>" (kUnmaskPrefix) for
  // right("unmask", "<table>.<column>").
  std::vector<std::string> rights;
  std::vector<std::string> facts;   // Datalog facts; `{name}` placeholders come from --param
  std::vector<std::string> params;  // the placeholders the facts use (sorted, unique)
  std::chrono::seconds ttl{std::chrono::hours(8)};
  std::chrono::seconds max_ttl{std::chrono::hours(24 * 30)};
};

// A right of a profile that starts with this grants right("unmask", <the rest>).
inline constexpr std::string_view kUnmaskPrefix = "unmask:";

// The Datalog fact a profile's right becomes: right("pg_query"), or for "unmask:<c>"
// right("unmask", "<c>") (the value is a typed parameter, never spliced into the code).
struct RightFact {
  std::string code;  // right({r}) or right("unmask", {c})
  biscuit::Params params;
};
RightFact right_fact(const std::string& right);

// Validates a profile (facts are facts, assert no predicate reserved to the server; rights
// are non-empty, an unmask right names what it unmasks; ttl <= max_ttl) and fills `params`.
// Errors name the profile and the fact or right.
Result<void> validate_profile(TokenProfile& profile);

// The profiles every configuration Larder generates starts with (larder init, the demo):
// patient (its own records), clinician (one hospital), agent-readonly (schema and plans).
std::vector<TokenProfile> default_profiles();

struct IssueRequest {
  const TokenProfile* profile = nullptr;
  biscuit::Params params;                     // a value for every `{name}` of the profile
  const biscuit::PrivateKey* root = nullptr;  // the root private key
  std::optional<uint32_t> root_key_id;        // the id the servers know that key by
  std::string client_cert_pem;                // the token works only over this certificate
  std::vector<std::string> audiences;         // ... and only at these servers
  std::optional<std::chrono::seconds> ttl;    // default: the profile's
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

struct IssuedToken {
  std::string base64;
  std::chrono::system_clock::time_point expires_at;
  std::string revocation_id;  // of the authority block: revoking it revokes the whole lineage
  std::string client_cert_sha256;
};

Result<IssuedToken> issue_token(const IssueRequest& request);

}  // namespace larder::gate
