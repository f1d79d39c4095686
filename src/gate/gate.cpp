#include "gate/gate.h"
#include "base/text.h"
#include "gate/default_policy.h"  // generated from data/policies/default.datalog

#include "base/encoding.h"
#include "biscuit/token/inspect.h"
#include "gate/reasons.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <set>

namespace larder::gate {
namespace {

Error biscuit_error(std::string message) {
  return make_error("biscuit", std::move(message));
}

}  // namespace

// How long the taint ledger must remember a lineage: the last instant at which any token of
// it can still be valid. Only the authority block decides it. A holder can append blocks to
// a token, and any check they append could only shorten the token's own life, never that of
// the other tokens of the lineage (the pre-read copy, for one); so nothing appended may
// shorten the ledger's memory either (the 1970 `time` check of finding 2).
//
// The bound is the earliest upper limit the authority block's checks put on `time`
// (biscuit::block_expiry). A check of any other shape (a not-before limit, an `expiry($e)` fact
// compared with $t) bounds nothing here: without a recognised bound the entry never
// expires, which is the safe side.
std::optional<std::chrono::system_clock::time_point> token_expiry(const biscuit::Biscuit& token) {
  return biscuit::block_expiry(token, 0);
}

namespace {

// A failed check of the token, in the user's words: what it restricts (validity period,
// certificate binding, audience, taint) and, for time, when. `more`: how many other checks
// failed too.
Decision explain_failed_check(const biscuit::Biscuit& token, std::size_t block, std::size_t index,
                              std::size_t more, const CallFacts& call, const net::PeerIdentity* peer,
                              const std::string& audience, std::chrono::system_clock::time_point now) {
  const std::string rule = token.check_source(block, index);
  std::string also = more == 0 ? "" : " (and " + std::to_string(more) + " more of its checks failed)";
  std::set<std::string> predicates;
  biscuit::TimeBounds bounds;
  if (auto check = biscuit::describe_check(token, block, index)) {
    predicates.insert(check->predicates.begin(), check->predicates.end());
    bounds = check->time;
    // An authority-block expiry is the token's: its earliest upper bound is what expired.
    if (block == 0 && bounds.not_after) {
      if (auto expiry = biscuit::block_expiry(token, 0); expiry && *expiry < now) bounds.not_after = expiry;
    }
  }
  auto has = [&](std::string_view name) { return predicates.count(std::string(name)) > 0; };
  if (has("tool_egress") && call.flow == DataFlow::kEgress) {
    return Decision{false, Lock::kTaint, tainted_token_reason(call.name) + also};
  }
  if (std::any_of(predicates.begin(), predicates.end(), [](const std::string& p) {
        return p.rfind("client_cert_", 0) == 0 || p == "mtls_client";
      })) {
    return Decision{false, Lock::kBiscuit, other_certificate_reason(peer, rule) + also};
  }
  if (has("server_audience"))
    return Decision{false, Lock::kBiscuit, other_audience_reason(audience, rule) + also};
  if (bounds.reads_time) {
    if (bounds.not_after && *bounds.not_after < now) {
      return Decision{false, Lock::kBiscuit, expired_reason(*bounds.not_after, now) + also};
    }
    if (bounds.not_before && *bounds.not_before > now) {
      return Decision{false, Lock::kBiscuit, not_yet_valid_reason(*bounds.not_before, now) + also};
    }
    return Decision{false, Lock::kBiscuit, outside_validity_reason(rule) + also};
  }
  return Decision{false, Lock::kBiscuit, failed_check_reason(block, rule) + also};
}

}  // namespace

bool token_binds_certificate(const biscuit::Biscuit& token) {
  static constexpr std::string_view kBinding[] = {"client_cert_sha256", "client_cert_spki_sha256",
                                                  "client_cert_cn", "mtls_client", "client_cert_san"};
  return biscuit::some_check_pins(token, kBinding);
}

namespace {

// Names the first reserved predicate the token asserts, if any.
std::optional<std::string> asserted_reserved_predicate(const biscuit::Biscuit& token) {
  for (std::size_t i = 0; i < token.block_count(); ++i) {
    const biscuit::BlockAssertions asserted = biscuit::block_assertions(token, i);
    auto first_reserved = [&](const std::vector<std::string>& names,
                              const char* what) -> std::optional<std::string> {
      for (const auto& name : names) {
        if (is_reserved_predicate(name)) {
          return "block " + std::to_string(i) + " asserts the server-provided predicate " + name + " as a " +
                 what;
        }
      }
      return std::nullopt;
    };
    if (auto hit = first_reserved(asserted.facts, "fact")) return hit;
    if (auto hit = first_reserved(asserted.rule_heads, "rule head")) return hit;
  }
  return std::nullopt;
}

std::string hex(std::span<const uint8_t> bytes) {
  return biscuit::hex_encode(bytes);
}

}  // namespace

const char* lock_name(Lock lock) {
  switch (lock) {
    case Lock::kMtls:
      return "mtls";
    case Lock::kBiscuit:
      return "biscuit";
    case Lock::kPolicy:
      return "policy";
    case Lock::kSqlGuard:
      return "sql-guard";
    case Lock::kTaint:
      return "taint";
    case Lock::kDatabase:
      return "database";
    case Lock::kLimits:
      return "limits";
  }
  return "policy";
}

const std::vector<std::string>& reserved_predicates() {
  return policy::server_predicates();
}

bool is_reserved_predicate(std::string_view name) {
  if (name.rfind("client_cert_", 0) == 0) return true;  // the whole family, present and future
  const auto& names = reserved_predicates();
  return std::find(names.begin(), names.end(), name) != names.end();
}

const std::string& default_policy_code() {
  static const std::string code = kDefaultPolicy;
  return code;
}

GateOptions gate_options_from(GateOptions o, std::string policy_code, const policy::Policy* policy) {
  o.policy_code = std::move(policy_code);
  o.dimensions.clear();
  o.unmask_rights = false;
  if (policy != nullptr) {
    o.dimensions = context_dimensions(*policy);
    for (const auto& rel : policy->relations) o.unmask_rights |= rel.masked();
  }
  return o;
}

std::string to_string(DataFlow flow) {
  switch (flow) {
    case DataFlow::kNeutral:
      return "neutral";
    case DataFlow::kSensitiveRead:
      return "sensitive-read";
    case DataFlow::kEgress:
      return "egress";
  }
  return "neutral";
}

std::vector<std::string> Grant::values(const std::string& fact) const {
  std::vector<std::string> out;
  auto it = facts.find(fact);
  if (it == facts.end()) return out;
  for (const auto& tuple : it->second) {
    if (!tuple.empty()) out.push_back(tuple[0]);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<ContextDimension> context_dimensions(const policy::Policy& policy) {
  std::vector<ContextDimension> out;
  for (const auto& f : policy.facts) out.push_back({f.name, f.args});
  return out;
}

namespace {

// A Biscuit term as a literal of `type` in PostgreSQL's text input form; none when the term
// is not one. Strings must already be literals of the type (a uuid, "2024-05-01", ...);
// integers, booleans and dates convert from their Biscuit kinds.
std::optional<std::string> context_value(const biscuit::datalog::ast::Term& term, policy::ValueType type) {
  using Kind = biscuit::datalog::ast::TermKind;
  std::string text;
  if (term.is(Kind::String)) {
    text = term.as_string();
  } else if (term.is(Kind::Integer) &&
             (type == policy::ValueType::kInteger || type == policy::ValueType::kBigint)) {
    text = std::to_string(term.as_integer());
  } else if (term.is(Kind::Bool) && type == policy::ValueType::kBoolean) {
    text = term.as_bool() ? "true" : "false";
  } else if (term.is(Kind::Date) && type == policy::ValueType::kDate) {
    // The UTC calendar day of the instant.
    const auto day =
        std::chrono::floor<std::chrono::days>(std::chrono::sys_seconds(std::chrono::seconds(term.as_date())));
    const std::chrono::year_month_day ymd(day);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    text = buf;
  } else {
    return std::nullopt;
  }
  if (!policy::valid_value(type, text)) return std::nullopt;
  return text;
}

}  // namespace

Gate::Gate(GateOptions options)
    : options_(std::move(options)),
      verified_(std::make_unique<LruCache<VerifiedToken>>(options_.verify_cache_entries)) {}

struct Gate::Templates {
  biscuit::FactTemplate tool, resource, prompt, operation_read, audience, egress, table, column, cert_cn,
      mtls_client, cert_sha256, cert_spki, cert_issuer, cert_san;
  // Per dimension: `larder_ctx($v0, ...) <- <fact>($v0, ...) [trusting authority, {k0}, ...]`.
  std::vector<biscuit::RuleTemplate> dimensions;
  // `larder_ctx($c) <- right("unmask", $c) [trusting ...]`, when the policy masks a column.
  std::optional<biscuit::RuleTemplate> unmask;
  biscuit::Params trusted_keys;  // k0, k1, ...: the explicitly trusted third-party keys

  static Result<std::shared_ptr<const Templates>> make(const GateOptions& options,
                                                       const std::vector<biscuit::PublicKey>& trusted) {
    auto t = std::make_shared<Templates>();
    bool ok = true;
    auto fact = [&ok](biscuit::FactTemplate& out, std::string_view text) {
      auto parsed = biscuit::FactTemplate::parse(text);
      if (parsed) out = std::move(*parsed);
      ok &= parsed.ok();
    };
    fact(t->tool, "tool({v})");
    fact(t->resource, "resource({v})");
    fact(t->prompt, "prompt({v})");
    fact(t->operation_read, "operation(\"read\")");
    fact(t->audience, "server_audience({v})");
    fact(t->egress, "tool_egress({v})");
    fact(t->table, "table({t})");
    fact(t->column, "column({t}, {c})");
    fact(t->cert_cn, "client_cert_cn({v})");
    fact(t->mtls_client, "mtls_client({v})");
    fact(t->cert_sha256, "client_cert_sha256({v})");
    fact(t->cert_spki, "client_cert_spki_sha256({v})");
    fact(t->cert_issuer, "client_cert_issuer({v})");
    fact(t->cert_san, "client_cert_san({v})");
    // Trusted facts only: the authority block (+ the authorizer, which never asserts these)
    // and explicitly trusted third-party keys; attenuation blocks are outside this scope.
    // Predicate names come from configuration (validated identifiers), never from a request.
    std::string trusting;
    if (!trusted.empty()) {
      trusting = " trusting authority";
      for (std::size_t i = 0; i < trusted.size(); ++i) {
        trusting += ", {k" + std::to_string(i) + "}";
        t->trusted_keys.public_key("k" + std::to_string(i), trusted[i]);
      }
    }
    // Fact names come from the policy file, where they are checked Datalog identifiers.
    for (const auto& d : options.dimensions) {
      std::string vars;
      for (std::size_t i = 0; i < d.types.size(); ++i) vars += (i ? ", $v" : "$v") + std::to_string(i);
      auto parsed =
          biscuit::RuleTemplate::parse("larder_ctx(" + vars + ") <- " + d.fact + "(" + vars + ")" + trusting);
      if (parsed) t->dimensions.push_back(std::move(*parsed));
      ok &= parsed.ok() && !d.types.empty();
    }
    if (options.unmask_rights) {
      auto parsed = biscuit::RuleTemplate::parse("larder_ctx($c) <- right(\"unmask\", $c)" + trusting);
      if (parsed) t->unmask = std::move(*parsed);
      ok &= parsed.ok();
    }
    if (!ok) return make_error("config.invalid", "the policy file's fact names must be Datalog identifiers");
    return std::shared_ptr<const Templates>(std::move(t));
  }
};

Result<std::unique_ptr<Gate>> Gate::create(GateOptions options) {
  std::unique_ptr<Gate> gate(new Gate(std::move(options)));
  if (gate->options_.root_keys.empty())
    return make_error("config.invalid", "no trusted Biscuit root key configured");
  for (const auto& rk : gate->options_.root_keys) {
    auto key = biscuit::PublicKey::from_string(rk.public_key);
    if (!key) return make_error("config.invalid", "root key " + rk.public_key + ": " + key.error().message);
    if (!gate->roots_.emplace(rk.id, *key).second) {
      return make_error("config.invalid", "two root keys share the same key id");
    }
  }
  std::vector<biscuit::PublicKey> trusted_third_party;
  for (const auto& text : gate->options_.trusted_third_party_keys) {
    auto key = biscuit::PublicKey::from_string(text);
    if (!key)
      return make_error("config.invalid", "trusted third-party key " + text + ": " + key.error().message);
    trusted_third_party.push_back(*key);
  }
  if (gate->options_.policy_code.empty()) gate->options_.policy_code = default_policy_code();
  // Parsed once: a policy that does not parse is refused now, not at the first request, and
  // every call starts from a copy of this builder instead of parsing the policy again.
  gate->policy_builder_.set_limits(gate->options_.limits);
  if (auto r = gate->policy_builder_.add_code(gate->options_.policy_code); !r) {
    return make_error("config.invalid", "policy: " + r.error().message);
  }
  if (gate->policy_builder_.source().policies.empty()) {
    return make_error("config.invalid", "policy: no allow/deny policy found (nothing would ever be allowed)");
  }
  auto templates = Templates::make(gate->options_, trusted_third_party);
  if (!templates) return templates.error();
  gate->templates_ = std::move(*templates);
  return gate;
}

Result<biscuit::PublicKey> Gate::root_key(std::optional<uint32_t> id) const {
  auto it = roots_.find(id);
  if (it == roots_.end()) {
    // A token without a key id may use the only key when exactly one is configured (with
    // several, verify() tries each).
    if (!id && roots_.size() == 1) return roots_.begin()->second;
    return biscuit_error(id ? "no trusted root key has id " + std::to_string(*id)
                            : "the token names no root key id and several root keys are trusted");
  }
  return it->second;
}

Result<std::shared_ptr<const VerifiedToken>> Gate::verify(std::string_view token_base64) {
  // Trim surrounding whitespace a copy-paste may bring.
  while (!token_base64.empty() && std::isspace(static_cast<unsigned char>(token_base64.front())))
    token_base64.remove_prefix(1);
  while (!token_base64.empty() && std::isspace(static_cast<unsigned char>(token_base64.back())))
    token_base64.remove_suffix(1);
  if (token_base64.empty()) return biscuit_error("empty token");
  if (token_base64.size() > options_.max_token_bytes * 4 / 3 + 4) {
    return biscuit_error("token larger than " + std::to_string(options_.max_token_bytes) + " bytes");
  }
  auto bytes = biscuit::base64url_decode(token_base64);
  if (!bytes) return biscuit_error("token is not URL-safe base64");
  const std::string digest = sha256({reinterpret_cast<const char*>(bytes->data()), bytes->size()});

  if (auto cached = verified_->find(digest)) return cached;

  std::string used_key;
  std::optional<uint32_t> named_key_id;  // the root key id the token names
  bool names_no_key = false;
  biscuit::Biscuit::KeyProvider provider =
      [&](std::optional<uint32_t> id) -> biscuit::Result<biscuit::PublicKey> {
    named_key_id = id;
    names_no_key = !id;
    auto key = root_key(id);
    if (!key) return biscuit::make_error(biscuit::ErrorCode::UnknownPublicKey, key.error().message);
    used_key = key->to_string();
    return *key;
  };
  biscuit::ParseLimits limits;  // + the default Datalog size limits: oversized blocks are refused here
  limits.max_token_bytes = options_.max_token_bytes;
  auto token = biscuit::Biscuit::from_bytes(*bytes, provider, limits);
  if (!token && names_no_key && token.error().code == biscuit::ErrorCode::UnknownPublicKey) {
    // A token without a root key id while several keys are trusted (a rotation: tokens
    // minted before key ids were used): each trusted key is tried, in id order. The cost is
    // bounded by the configured keys, and only the signature check repeats.
    for (const auto& [id, key] : roots_) {
      biscuit::Biscuit::KeyProvider this_key =
          [&](std::optional<uint32_t>) -> biscuit::Result<biscuit::PublicKey> {
        used_key = key.to_string();
        return key;
      };
      token = biscuit::Biscuit::from_bytes(*bytes, this_key, limits);
      if (token || token.error().code != biscuit::ErrorCode::InvalidSignature) break;
    }
    if (!token && token.error().code == biscuit::ErrorCode::InvalidSignature &&
        !token.error().block.value_or(0)) {
      return biscuit_error(unknown_root_key_reason(std::nullopt, true));
    }
  }
  if (!token) {
    // libbiscuit's error is structured; the sentence is ours.
    switch (token.error().code) {
      case biscuit::ErrorCode::UnknownPublicKey:
        return biscuit_error(unknown_root_key_reason(named_key_id, roots_.size() > 1));
      case biscuit::ErrorCode::InvalidSignature:
        if (token.error().block && *token.error().block > 0) {
          return biscuit_error(altered_token_reason(*token.error().block));
        }
        return biscuit_error(bad_signature_reason(named_key_id));
      case biscuit::ErrorCode::SealedSignature:
        return biscuit_error(altered_token_reason(std::nullopt));
      default:
        return biscuit_error("token refused: it is not a valid Biscuit token (" + token.error().message +
                             ")");
    }
  }
  if (auto reserved = asserted_reserved_predicate(*token)) {
    return biscuit_error("token refused: " + *reserved + " (only the server may assert it)");
  }
  auto verified = std::make_shared<VerifiedToken>();
  auto ids = token->revocation_ids();
  for (const auto& id : ids) verified->revocation_ids.push_back(hex(id));
  verified->lineage = verified->revocation_ids.empty() ? std::string() : verified->revocation_ids.front();
  verified->expires_at = token_expiry(*token);
  verified->root_key = used_key;
  verified->carries_taint_block = carries_taint_block(*token);
  verified->binds_certificate = token_binds_certificate(*token);
  verified->token = std::make_shared<const biscuit::Biscuit>(std::move(*token));

  verified_->insert(digest, verified);
  return std::shared_ptr<const VerifiedToken>(verified);
}

namespace {

// Cheap refusals first (finding 4). A token check that is exactly one server-provided fact with
// constant terms — `check if client_cert_sha256(hex:…)`, `check if mtls_client("…")`,
// `check if server_audience("…")`, `reject if …` — holds or fails on the call's facts alone:
// only the server asserts these predicates (verify() refuses tokens that do), unless the
// policy itself does (then it is left to the authorizer). A failing one refuses the call
// before the authorizer is built, so none of the token's other checks runs first. The answer
// is the full authorization's when no other check fails: lock biscuit (taint for the taint
// block's check on an egress tool) and "check failed in block N: <check>" (+ " (and K more)"
// for the other failing checks of this kind). nullopt: nothing to refuse here.
std::optional<Decision> prescreen(const biscuit::Biscuit& token, const net::PeerIdentity* peer,
                                  const CallFacts& call, std::chrono::system_clock::time_point now,
                                  const std::string& audience, const biscuit::datalog::ast::Source& policy) {
  using biscuit::datalog::ast::TermKind;
  // A fingerprint as hex_decode() reads it; compared in place (no allocation per call).
  auto hex_digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  auto valid_hex = [&](std::string_view hex) {
    return hex.size() % 2 == 0 &&
           std::all_of(hex.begin(), hex.end(), [&](char c) { return hex_digit(c) >= 0; });
  };
  if (peer && (!valid_hex(peer->cert_sha256) || !valid_hex(peer->spki_sha256))) {
    return std::nullopt;  // the authorization refuses it at lock mtls
  }
  auto equals_hex = [&](const biscuit::Bytes& bytes, std::string_view hex) {
    if (bytes.size() * 2 != hex.size()) return false;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] != hex_digit(hex[2 * i]) * 16 + hex_digit(hex[2 * i + 1])) return false;
    }
    return true;
  };
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const uint64_t time_now = secs < 0 ? 0 : static_cast<uint64_t>(secs);  // as set_time() asserts it
  auto asserted_by_policy = [&](const std::string& name) {
    return std::any_of(policy.facts.begin(), policy.facts.end(),
                       [&](const auto& f) { return f.predicate.name == name; }) ||
           std::any_of(policy.rules.begin(), policy.rules.end(),
                       [&](const auto& r) { return r.head.name == name; });
  };
  // Whether the call's facts (Gate::authorize below asserts them) include `fact`; nullopt for
  // a predicate decided elsewhere.
  // The server-provided predicates Gate::authorize asserts (below), looked up once per check.
  enum class Fact {
    kTool,
    kResource,
    kPrompt,
    kOperation,
    kAudience,
    kEgress,
    kTable,
    kColumn,
    kTime,
    kCn,
    kSha256,
    kSpki,
    kIssuer,
    kSan
  };
  static const std::unordered_map<std::string_view, Fact> kFacts = {{"tool", Fact::kTool},
                                                                    {"resource", Fact::kResource},
                                                                    {"prompt", Fact::kPrompt},
                                                                    {"operation", Fact::kOperation},
                                                                    {"server_audience", Fact::kAudience},
                                                                    {"tool_egress", Fact::kEgress},
                                                                    {"table", Fact::kTable},
                                                                    {"column", Fact::kColumn},
                                                                    {"time", Fact::kTime},
                                                                    {"client_cert_cn", Fact::kCn},
                                                                    {"mtls_client", Fact::kCn},
                                                                    {"client_cert_sha256", Fact::kSha256},
                                                                    {"client_cert_spki_sha256", Fact::kSpki},
                                                                    {"client_cert_issuer", Fact::kIssuer},
                                                                    {"client_cert_san", Fact::kSan}};
  // Whether the call's facts include `p`; nullopt for a predicate decided elsewhere.
  auto holds = [&](const biscuit::datalog::ast::Predicate& p) -> std::optional<bool> {
    auto known = kFacts.find(p.name);
    if (known == kFacts.end() || !is_reserved_predicate(p.name) || asserted_by_policy(p.name))
      return std::nullopt;
    const auto& t = p.terms;
    auto string_at = [&](std::size_t i) -> const std::string* {
      return i < t.size() && t[i].is(TermKind::String) ? &t[i].as_string() : nullptr;
    };
    const std::string* s = t.size() == 1 ? string_at(0) : nullptr;
    auto one_string = [&](std::string_view v) { return s && *s == v; };
    auto one_bytes = [&](const std::string* hex) {
      return hex && t.size() == 1 && t[0].is(TermKind::Bytes) && equals_hex(t[0].as_bytes(), *hex);
    };
    switch (known->second) {
      case Fact::kTool:
        return call.method == "tools/call" && one_string(call.name);
      case Fact::kResource:
        return call.method == "resources/read" && one_string(call.name);
      case Fact::kPrompt:
        return call.method != "tools/call" && call.method != "resources/read" && one_string(call.name);
      case Fact::kOperation:
        return one_string("read");
      case Fact::kAudience:
        return one_string(audience);
      case Fact::kEgress:
        return t.size() == 1 && t[0].is(TermKind::Bool) && t[0].as_bool() == (call.flow == DataFlow::kEgress);
      case Fact::kTable:
        return s && call.tables.count(*s) > 0;
      case Fact::kColumn: {
        const std::string* table = t.size() == 2 ? string_at(0) : nullptr;
        const std::string* column = t.size() == 2 ? string_at(1) : nullptr;
        if (!table || !column) return false;
        auto it = call.columns.find(*table);
        return it != call.columns.end() && it->second.count(*column) > 0;
      }
      case Fact::kTime:
        return t.size() == 1 && t[0].is(TermKind::Date) && t[0].as_date() == time_now;
      case Fact::kCn:
        return peer && one_string(peer->cn);
      case Fact::kSha256:
        return one_bytes(peer ? &peer->cert_sha256 : nullptr);
      case Fact::kSpki:
        return one_bytes(peer ? &peer->spki_sha256 : nullptr);
      case Fact::kIssuer:
        return peer && one_string(peer->issuer);
      case Fact::kSan:
        return peer && s && std::find(peer->sans.begin(), peer->sans.end(), *s) != peer->sans.end();
    }
    return std::nullopt;
  };
  std::vector<std::pair<std::size_t, std::size_t>> failing;  // (block, check), in evaluation order
  for (const auto& check : token.checks()) {
    if (!check.fact) continue;
    auto h = holds(check.fact->predicate);
    if (!h) continue;
    if (check.kind == biscuit::CheckKind::Reject ? *h : !*h) failing.emplace_back(check.block, check.index);
  }
  if (failing.empty()) return std::nullopt;
  return explain_failed_check(token, failing[0].first, failing[0].second, failing.size() - 1, call, peer,
                              audience, now);
}

}  // namespace

Decision Gate::authorize(const VerifiedToken& token, const net::PeerIdentity* peer, const CallFacts& call,
                         std::chrono::system_clock::time_point now, Grant* grant) const {
  // What this server demands of every token, before anything the token itself says.
  if (options_.require_binding && !token.binds_certificate) {
    return Decision{
        false, Lock::kBiscuit,
        "token refused: it is not bound to a client certificate, and this server requires binding "
        "(biscuit.require_binding); bind it with `larder biscuit attest --cert <client.crt>`"};
  }
  if (options_.require_expiry && !token.expires_at) {
    return Decision{false, Lock::kBiscuit,
                    "token refused: its authority block sets no expiry, and this server requires one "
                    "(biscuit.require_expiry); mint it with `check if time($t), $t <= <date>`"};
  }
  if (auto early = prescreen(*token.token, peer, call, now, options_.audience, policy_builder_.source()))
    return *early;
  auto refuse = [](Lock lock, std::string reason) { return Decision{false, lock, std::move(reason)}; };
  biscuit::AuthorizerBuilder builder = policy_builder_;  // the policy, parsed at creation
  builder.set_time(now);

  const Templates& t = *templates_;
  auto add = [&](const biscuit::FactTemplate& fact, const biscuit::Params& params) -> bool {
    return builder.add_fact(fact, params).ok();
  };
  bool ok = true;
  if (call.method == "tools/call") {
    ok &= add(t.tool, biscuit::Params().string("v", call.name));
  } else if (call.method == "resources/read") {
    ok &= add(t.resource, biscuit::Params().string("v", call.name));
  } else {
    ok &= add(t.prompt, biscuit::Params().string("v", call.name));
  }
  ok &= add(t.operation_read, {});
  ok &= add(t.audience, biscuit::Params().string("v", options_.audience));
  ok &= add(t.egress, biscuit::Params().boolean("v", call.flow == DataFlow::kEgress));
  for (const auto& table : call.tables) ok &= add(t.table, biscuit::Params().string("t", table));
  for (const auto& [table, cols] : call.columns) {
    for (const auto& c : cols) ok &= add(t.column, biscuit::Params().string("t", table).string("c", c));
  }
  if (peer) {
    auto cert = biscuit::hex_decode(peer->cert_sha256);
    auto spki = biscuit::hex_decode(peer->spki_sha256);
    if (!cert || !spki) return refuse(Lock::kMtls, "client certificate fingerprint is malformed");
    ok &= add(t.cert_cn, biscuit::Params().string("v", peer->cn));
    ok &= add(t.mtls_client, biscuit::Params().string("v", peer->cn));
    ok &= add(t.cert_sha256, biscuit::Params().bytes("v", *cert));
    ok &= add(t.cert_spki, biscuit::Params().bytes("v", *spki));
    ok &= add(t.cert_issuer, biscuit::Params().string("v", peer->issuer));
    for (const auto& san : peer->sans) ok &= add(t.cert_san, biscuit::Params().string("v", san));
  }
  if (!ok) return refuse(Lock::kPolicy, "internal error: could not assert the request facts");

  auto authorizer = std::move(builder).build(*token.token);
  if (!authorizer) return refuse(Lock::kBiscuit, "authorizer setup failed: " + authorizer.error().message);
  auto outcome = authorizer->authorize();
  if (!outcome) {
    const auto& e = outcome.error();
    std::string reason;
    Lock lock = Lock::kPolicy;
    if (e.code == biscuit::ErrorCode::Unauthorized || e.code == biscuit::ErrorCode::NoMatchingPolicy) {
      if (!e.checks.empty()) {
        // A failed check of the token (expiry, certificate binding, audience, taint) is the
        // token's own restriction speaking; a deny policy without failed checks is policy.
        const auto& first = e.checks.front();
        if (first.authorizer) {
          lock = Lock::kBiscuit;
          reason = "the server's check failed: " + first.rule;
          if (e.checks.size() > 1) reason += " (and " + std::to_string(e.checks.size() - 1) + " more)";
        } else {
          auto d = explain_failed_check(*token.token, first.block_id, first.check_id, e.checks.size() - 1,
                                        call, peer, options_.audience, now);
          lock = d.lock;
          reason = std::move(d.reason);
        }
      } else if (e.code == biscuit::ErrorCode::Unauthorized && e.policy) {
        reason = "denied by policy #" + std::to_string(e.policy->index) + " (nothing in the token grants " +
                 call.method + " " + call.name + ")";
      } else {
        reason = "no policy matched (nothing in the token grants " + call.method + " " + call.name + ")";
      }
    } else {
      lock = Lock::kBiscuit;
      reason = std::string("authorization error: ") + e.message;
    }
    return refuse(lock, reason);
  }

  if (grant) {
    grant->policy_index = *outcome;
    grant->facts.clear();
    grant->unmask.clear();
    // Trusted facts only (see Templates): never attenuation blocks. Each value must be a
    // literal of the type the policy file declares for its argument: one that is not is
    // refused (a typo in a token must not silently become "no rows").
    for (std::size_t d = 0; d < t.dimensions.size(); ++d) {
      const ContextDimension& dim = options_.dimensions[d];
      auto facts = authorizer->query(t.dimensions[d], t.trusted_keys);
      if (!facts) return refuse(Lock::kBiscuit, "could not read the row-level-security facts from the token");
      auto& tuples = grant->facts[dim.fact];
      for (const auto& f : *facts) {
        std::vector<std::string> tuple;
        for (std::size_t i = 0; i < f.predicate.terms.size() && i < dim.types.size(); ++i) {
          auto text = context_value(f.predicate.terms[i], dim.types[i]);
          if (!text)
            return refuse(Lock::kBiscuit,
                          "the token's fact " + dim.fact + "(...) has an argument that is not a " +
                              std::string(policy::to_string(dim.types[i])) + ", as the policy file declares");
          tuple.push_back(std::move(*text));
        }
        if (tuple.size() == dim.types.size()) tuples.push_back(std::move(tuple));
      }
      std::sort(tuples.begin(), tuples.end());
      tuples.erase(std::unique(tuples.begin(), tuples.end()), tuples.end());
    }
    if (t.unmask) {
      auto facts = authorizer->query(*t.unmask, t.trusted_keys);
      if (!facts) return refuse(Lock::kBiscuit, "could not read the unmask rights from the token");
      for (const auto& f : *facts) {
        if (f.predicate.terms.size() == 1 && f.predicate.terms[0].is(biscuit::datalog::ast::TermKind::String))
          grant->unmask.push_back(f.predicate.terms[0].as_string());
      }
      std::sort(grant->unmask.begin(), grant->unmask.end());
      grant->unmask.erase(std::unique(grant->unmask.begin(), grant->unmask.end()), grant->unmask.end());
    }
  }
  return Decision{true, Lock::kPolicy, "allowed by policy #" + std::to_string(*outcome)};
}

namespace {

constexpr const char* kTaintBlockCode = "sensitive_data(true);\ncheck if tool_egress(false);";

// The taint block as the token printer prints it, learned once from a throwaway token so the
// comparison never depends on how the printer formats it.
const std::string& printed_taint_block() {
  static const std::string printed = [] {
    biscuit::BiscuitBuilder authority;
    biscuit::BlockBuilder block;
    auto key = biscuit::KeyPair::generate();
    if (!authority.add_code("larder_probe(true);").ok() || !block.add_code(kTaintBlockCode).ok())
      return std::string();
    auto token = authority.build(key.private_key());
    if (!token) return std::string();
    auto attenuated = token->append(block);
    return attenuated && attenuated->block_count() == 2 ? attenuated->block_source(1) : std::string();
  }();
  return printed;
}

}  // namespace

bool carries_taint_block(const biscuit::Biscuit& token) {
  const std::string& taint = printed_taint_block();
  if (taint.empty()) return false;
  for (std::size_t i = 1; i < token.block_count(); ++i) {
    if (token.block_source(i) == taint) return true;
  }
  return false;
}

Result<std::string> Gate::attenuate_tainted(const VerifiedToken& token) const {
  biscuit::BlockBuilder block;
  if (auto r = block.add_code(kTaintBlockCode); !r) {
    return make_error("taint", "cannot build the taint block: " + r.error().message);
  }
  auto attenuated = token.token->append(block);
  if (!attenuated) return make_error("taint", "cannot attenuate the token: " + attenuated.error().message);
  return attenuated->to_base64();
}

Gate::CacheStats Gate::cache_stats() const {
  auto s = verified_->stats();
  return CacheStats{s.hits, s.misses, s.entries};
}

std::optional<std::string> bearer_token(const std::optional<std::string>& authorization) {
  if (!authorization) return std::nullopt;
  std::string_view v = *authorization;
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  if (v.size() < 7) return std::nullopt;
  if (!iequals(v.substr(0, 6), "bearer") || v[6] != ' ') return std::nullopt;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

}  // namespace larder::gate
