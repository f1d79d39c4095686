// Gate: lock 2 of Larder — the Biscuit token of every call is verified (root key by key
// id, signature cache), screened (reserved predicates, revocation), and authorized against
// the server's facts about the call and the policy. Its answer carries the lock that
// decided and, when allowed, the row-level-security context proven by the token.
//
// What the server asserts (never the token; see kReservedPredicates):
//   time(now) · tool(name) | resource(uri) | prompt(name) · operation("read") ·
//   server_audience(aud) · tool_egress(bool) · table(t) · column(t, c) ·
//   client_cert_cn(cn) · client_cert_sha256(hex:…) · client_cert_spki_sha256(hex:…) ·
//   client_cert_issuer(dn) · mtls_client(cn)
// Every value enters Datalog as a typed parameter.
#pragma once

#include "base/lru_cache.h"
#include "base/result.h"
#include "biscuit/token/authorizer.h"
#include "net/peer_identity.h"
#include "policy/policy.h"

#include <chrono>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace larder::gate {

// The four locks, plus the taint rule, the database itself and the per-lineage call limits,
// as named in refusals.
enum class Lock { kMtls, kBiscuit, kPolicy, kSqlGuard, kTaint, kDatabase, kLimits };
// "mtls", "biscuit", "policy", "sql-guard", "taint", "database", "limits"
const char* lock_name(Lock lock);

// Predicates only the server may assert. A token with any of them as a fact or rule head,
// in any block, is refused: otherwise a token could satisfy its own checks (the original
// demo's `mtls_client("claude-client"); check if mtls_client("claude-client")` hole).
const std::vector<std::string>& reserved_predicates();
bool is_reserved_predicate(std::string_view name);

struct Decision {
  bool allowed = false;
  Lock lock = Lock::kPolicy;  // the lock that refused (or, when allowed, the last one passed)
  std::string reason;         // human sentence; never contains rows
};

// A token that passed signature verification and screening. Shared by every call that
// presents the same bytes (the verification cache).
struct VerifiedToken {
  std::shared_ptr<const biscuit::Biscuit> token;
  std::string lineage;                      // hex revocation id of the authority block
  std::vector<std::string> revocation_ids;  // hex, authority first
  // The last instant any token of this lineage can be valid: the earliest upper bound on
  // `time` in the authority block's checks (never an appended block's); nullopt if none.
  // The taint ledger keeps the lineage at least this long.
  std::optional<std::chrono::system_clock::time_point> expires_at;
  std::string root_key;              // the root public key it verified with
  bool carries_taint_block = false;  // an attenuation block is exactly the server's taint block
  bool binds_certificate = false;    // some block checks the client certificate (token_binds_certificate)
};

// True when a block of the token (any block: the attestation may be appended after issue)
// has a `check if` each of whose alternatives requires the call's client certificate by a
// constant: client_cert_sha256(hex:…), client_cert_spki_sha256(hex:…), client_cert_cn("…"),
// mtls_client("…") or client_cert_san("…") — the forms `larder biscuit attest` writes. A check
// with a variable there, or an alternative without one, binds nothing.
bool token_binds_certificate(const biscuit::Biscuit& token);

// The last instant the token can be valid by its authority block (see VerifiedToken::expires_at).
std::optional<std::chrono::system_clock::time_point> token_expiry(const biscuit::Biscuit& token);

// True when a block after the authority block is exactly the taint block the server appends
// (sensitive_data(true); check if tool_egress(false);). Such a token needs no second one.
bool carries_taint_block(const biscuit::Biscuit& token);

// How a tool's output may flow: sensitive reads taint the caller's lineage, egress tools
// refuse tainted lineages, neutral tools neither taint nor egress.
enum class DataFlow { kNeutral, kSensitiveRead, kEgress };
std::string to_string(DataFlow flow);  // "neutral", "sensitive-read", "egress"

// What the server knows about the call being authorized.
struct CallFacts {
  std::string method;  // "tools/call", "resources/read", "prompts/get"
  std::string name;    // tool name, resource URI or prompt name
  DataFlow flow = DataFlow::kNeutral;
  std::set<std::string> tables;                          // relations the SQL guard found
  std::map<std::string, std::set<std::string>> columns;  // relation -> columns
};

// What an allowed call may see: the RLS context proven by trusted facts (authority block
// and explicitly trusted third-party keys; never attenuation blocks).
struct Grant {
  // Fact name (a dimension of the policy file) -> the tuples the token proves, each value in
  // PostgreSQL's text input form, checked against the declared type.
  std::map<std::string, std::vector<std::vector<std::string>>> facts;
  // right("unmask", "<table>.<column>") the token proves: masked columns it reads in clear.
  std::vector<std::string> unmask;
  std::size_t policy_index = 0;

  // The first argument of every tuple of `fact` (one-argument facts), sorted.
  std::vector<std::string> values(const std::string& fact) const;
};

// One dimension of the RLS context: a fact of the policy file and its argument types.
struct ContextDimension {
  std::string fact;
  std::vector<policy::ValueType> types;
};

// The dimensions of a policy file: every fact it declares.
std::vector<ContextDimension> context_dimensions(const policy::Policy& policy);

struct RootKeyConfig {
  std::optional<uint32_t> id;  // Biscuit rootKeyId this key answers to; none = default key
  std::string public_key;      // "ed25519/<hex>", "secp256r1/<hex>" or bare Ed25519 hex
};

struct GateOptions {
  std::string audience = "larder-db";
  std::vector<RootKeyConfig> root_keys;
  std::string policy_code;  // authorizer policies (Datalog); see data/policies/default.datalog
  // Per authorization. Larder's max_time is 5 ms, libbiscuit's own default 1 ms.
  biscuit::RunLimits limits{.max_time = std::chrono::milliseconds(5)};
  // The RLS context the gate reads from trusted facts (context_dimensions of the policy file);
  // and whether it reads right("unmask", $column) (the file masks some column).
  std::vector<ContextDimension> dimensions;
  bool unmask_rights = false;
  std::vector<std::string> trusted_third_party_keys;  // "ed25519/<hex>" …
  std::size_t verify_cache_entries = 4096;
  std::size_t max_token_bytes = 64 * 1024;
  // Refuse, as lock biscuit, tokens bound to no client certificate / without an expiry in the
  // authority block. Off here (the library's callers decide); a served configuration
  // (tools::ServeConfig) turns both on unless the file acknowledges otherwise.
  bool require_binding = false;
  bool require_expiry = false;
};

// `options` (a served configuration's) with the Datalog policy and the RLS context of the
// policy file: `policy` gives the dimensions and unmask; null: no RLS context at all.
GateOptions gate_options_from(GateOptions options, std::string policy_code,
                              const policy::Policy* policy = nullptr);

// The built-in policy (data/policies/default.datalog): deny unless granted.
const std::string& default_policy_code();

class Gate {
 public:
  static Result<std::unique_ptr<Gate>> create(GateOptions options);

  // Parses and verifies a base64url token (signature results cached by SHA-256 of the
  // bytes, per Gate: its trusted root keys are fixed for its life, so an entry verified
  // under one of them stays verified). Refuses reserved predicates. Errors: code "biscuit",
  // message says why.
  Result<std::shared_ptr<const VerifiedToken>> verify(std::string_view token_base64);

  // Authorizes one call. `peer` is null only on plain-HTTP development listeners.
  // On success fills `grant` (when not null).
  Decision authorize(const VerifiedToken& token, const net::PeerIdentity* peer, const CallFacts& call,
                     std::chrono::system_clock::time_point now, Grant* grant) const;

  // The token with the taint block appended: `sensitive_data(true); check if tool_egress(false);`
  Result<std::string> attenuate_tainted(const VerifiedToken& token) const;

  const GateOptions& options() const { return options_; }

  struct CacheStats {
    uint64_t hits = 0, misses = 0;
    std::size_t entries = 0;
  };
  CacheStats cache_stats() const;

 private:
  explicit Gate(GateOptions options);
  Result<biscuit::PublicKey> root_key(std::optional<uint32_t> id) const;

  GateOptions options_;
  biscuit::AuthorizerBuilder policy_builder_;  // limits + the parsed policy; copied per call
  std::map<std::optional<uint32_t>, biscuit::PublicKey> roots_;
  // The shapes of the facts asserted on every call and the queries reading the RLS context,
  // parsed once here (values are bound per call as typed parameters).
  struct Templates;
  std::shared_ptr<const Templates> templates_;

  // Verified tokens keyed by SHA-256 of the token bytes.
  std::unique_ptr<LruCache<VerifiedToken>> verified_;
};

// "Bearer <token>" → token (scheme case-insensitive); nullopt otherwise.
std::optional<std::string> bearer_token(const std::optional<std::string>& authorization);

}  // namespace larder::gate
