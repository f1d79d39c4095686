// Tokens: build, parse + verify, attenuate, seal, third-party blocks, inspect.
//
//   biscuit::KeyPair root = biscuit::KeyPair::generate();
//   biscuit::BiscuitBuilder b;
//   b.add_code("user({user}); check if time($t), $t <= {expiry};",
//              biscuit::Params().string("user", "alice").date("expiry", 1767225600));
//   auto token = b.build(root.private_key());                 // Result<Biscuit>
//   biscuit::BlockBuilder att;
//   att.add_code("check if operation(\"read\");");
//   auto smaller = token->append(att);                          // attenuation
//   auto again = biscuit::Biscuit::from_base64(smaller->to_base64(), root.public_key());
//
// Values reach Datalog only as typed parameters (`{name}` in the code, a value in Params);
// a parameter left unbound is an error. Every call returns a Result; nothing throws.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "biscuit/crypto/keys.h"
#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/limits.h"
#include "biscuit/datalog/types.h"
#include "biscuit/error.h"
#include "biscuit/format/envelope.h"

namespace biscuit {

using datalog::CheckKind;  // `check if` (One), `check all` (All), `reject if` (Reject)
using format::ParseLimits;

// Typed values for `{name}` parameters.
class Params {
 public:
  Params& string(std::string name, std::string value);
  Params& integer(std::string name, int64_t value);
  Params& boolean(std::string name, bool value);
  Params& date(std::string name, uint64_t unix_seconds);
  Params& bytes(std::string name, Bytes value);
  Params& null(std::string name);
  Params& term(std::string name, datalog::ast::Term value);    // any value, incl. sets/arrays/maps
  Params& public_key(std::string name, const PublicKey& key);  // for `trusting {name}`
  const datalog::ast::Params& ast() const { return p_; }

 private:
  datalog::ast::Params p_;
};

// A fact or rule parsed once, its `{name}` placeholders bound at each use: for hosts that
// assert the same shapes of facts (and ask the same queries) on every request.
//   auto tool = FactTemplate::parse("tool({name})");          // at start-up
//   builder.add_fact(*tool, Params().string("name", called));  // per request, no parsing
template <class Ast>  // datalog::ast::Fact or datalog::ast::Rule
class Template {
 public:
  static Result<Template> parse(std::string_view text);
  const Ast& ast() const { return ast_; }

 private:
  Ast ast_;
};
using FactTemplate = Template<datalog::ast::Fact>;
using RuleTemplate = Template<datalog::ast::Rule>;

// Converts between the crypto and the Datalog representation of a public key.
datalog::PublicKey to_datalog_key(const PublicKey& key);
Result<PublicKey> from_datalog_key(const datalog::PublicKey& key);

// The Datalog content of one block, before signing. Its code is held to size limits
// (datalog/limits.h; the defaults are what a default reader accepts): when parsed, and
// when the block is built (after parameters are bound).
class BlockBuilder {
 public:
  // Set before adding code. Raising them builds blocks that default readers refuse.
  void set_limits(const datalog::SizeLimits& limits) { limits_ = limits; }
  const datalog::SizeLimits& limits() const { return limits_; }
  // Block source: facts, rules, checks, optional leading `trusting ...;`.
  Result<void> add_code(std::string_view code, const Params& params = {});
  Result<void> add_fact(std::string_view fact, const Params& params = {});
  Result<void> add_rule(std::string_view rule, const Params& params = {});
  Result<void> add_check(std::string_view check, const Params& params = {});
  void set_context(std::string context) { context_ = std::move(context); }
  bool empty() const;
  const datalog::ast::Source& source() const { return source_; }
  const std::optional<std::string>& context() const { return context_; }

 private:
  datalog::ast::Source source_;
  std::optional<std::string> context_;
  datalog::SizeLimits limits_;
};

class Biscuit;

// The authority block plus the root key id.
class BiscuitBuilder : public BlockBuilder {
 public:
  void set_root_key_id(uint32_t id) { root_key_id_ = id; }
  // Signs the authority block with `root`; the next key pair uses `next_algorithm`.
  Result<Biscuit> build(const PrivateKey& root, Algorithm next_algorithm = Algorithm::Ed25519) const;

 private:
  std::optional<uint32_t> root_key_id_;
};

// A request for a third-party block: binds the block to this token's last signature.
class ThirdPartyRequest {
 public:
  static Result<ThirdPartyRequest> from_bytes(std::span<const uint8_t> bytes, const ParseLimits& limits = {});
  static Result<ThirdPartyRequest> from_base64(std::string_view text, const ParseLimits& limits = {});
  Bytes to_bytes() const;
  std::string to_base64() const;
  // Run by the third party: builds the block (own symbol table, version >= 5) and signs it.
  Result<class ThirdPartyBlock> create_block(const PrivateKey& key, const BlockBuilder& block) const;

 private:
  friend class Biscuit;
  Bytes previous_signature_;
};

class ThirdPartyBlock {
 public:
  // Also decodes the block and holds it to `limits` (size, nesting, Datalog size limits).
  static Result<ThirdPartyBlock> from_bytes(std::span<const uint8_t> bytes, const ParseLimits& limits = {});
  static Result<ThirdPartyBlock> from_base64(std::string_view text, const ParseLimits& limits = {});
  Bytes to_bytes() const;
  std::string to_base64() const;
  const PublicKey& external_key() const { return external_.public_key; }

 private:
  friend class Biscuit;
  friend class ThirdPartyRequest;
  Bytes payload_;
  format::ExternalSignature external_;
};

// One check of a token, in a simple form (Biscuit::checks()): for hosts that screen a token
// cheaply before they authorize it.
struct TokenCheck {
  std::size_t block = 0;  // 0: the authority block
  std::size_t index = 0;  // within its block
  CheckKind kind = CheckKind::One;
  // Set when the check is one query whose body is exactly one predicate with only constant
  // terms and no expression, e.g. `check if client_cert_sha256(hex:…)`. Such a check passes
  // exactly when a fact equal to `fact` is visible to it (for `reject if`: when none is);
  // the authorizer's own facts always are.
  std::optional<datalog::ast::Fact> fact;
};

// A verified token (or, from `from_bytes_unverified`, a parsed one for inspection only).
// Every parse applies `limits` to the envelope and to each block's Datalog (datalog/limits.h)
// before the token is returned; base64 text too long for max_token_bytes is refused undecoded.
class Biscuit {
 public:
  // Picks the root public key from the token's root key id (absent: nullopt), so servers
  // can rotate keys. Return an error to refuse the token.
  using KeyProvider = std::function<Result<PublicKey>(std::optional<uint32_t> root_key_id)>;

  static Result<Biscuit> from_bytes(std::span<const uint8_t> bytes, const PublicKey& root,
                                    const ParseLimits& limits = {});
  static Result<Biscuit> from_bytes(std::span<const uint8_t> bytes, const KeyProvider& root,
                                    const ParseLimits& limits = {});
  static Result<Biscuit> from_base64(std::string_view text, const PublicKey& root,
                                     const ParseLimits& limits = {});
  static Result<Biscuit> from_base64(std::string_view text, const KeyProvider& root,
                                     const ParseLimits& limits = {});
  // Parses and decodes without checking any signature: for inspection tools only. Such a
  // token must never be authorized (Authorizer refuses it).
  static Result<Biscuit> from_bytes_unverified(std::span<const uint8_t> bytes,
                                               const ParseLimits& limits = {});

  Bytes to_bytes() const { return env_.serialize(); }
  std::string to_base64() const;

  // Attenuation: a new token with one more block, signed with this token's proof secret.
  Result<Biscuit> append(const BlockBuilder& block, Algorithm next_algorithm = Algorithm::Ed25519) const;
  Result<Biscuit> seal() const;
  Result<ThirdPartyRequest> third_party_request() const;
  // The third-party block is held to `limits` (its Datalog) before it is appended.
  Result<Biscuit> append_third_party(const ThirdPartyBlock& block,
                                     Algorithm next_algorithm = Algorithm::Ed25519,
                                     const ParseLimits& limits = {}) const;

  bool verified() const { return verified_; }
  bool sealed() const { return env_.sealed(); }
  std::optional<uint32_t> root_key_id() const { return env_.root_key_id; }
  std::size_t block_count() const { return blocks_.size(); }
  // Revocation ids: each block's signature, authority first.
  std::vector<Bytes> revocation_ids() const;
  // A block's code printed as Datalog (facts, rules, checks; one per line, ';'-terminated).
  std::string block_source(std::size_t index) const;
  const datalog::Block& block(std::size_t index) const { return blocks_.at(index); }
  // The symbol table a block is interned in (the token's, or a third-party block's own).
  const datalog::SymbolTable& block_symbols(std::size_t index) const;
  std::optional<PublicKey> block_external_key(std::size_t index) const;
  std::optional<std::string> block_context(std::size_t index) const { return blocks_.at(index).context; }
  // Every check of every block, in evaluation order of blocks (authority first) and checks
  // (listed once, when the token is parsed or built).
  const std::vector<TokenCheck>& checks() const { return checks_; }
  // A check printed as authorization errors print it (FailedCheck::rule).
  std::string check_source(std::size_t block, std::size_t index) const;
  // The token's symbol table: defaults + first-party blocks' symbols and keys.
  const datalog::SymbolTable& symbols() const { return symbols_; }
  const format::Envelope& envelope() const { return env_; }

 private:
  friend class BiscuitBuilder;
  static Result<Biscuit> load(format::Envelope env, bool verified, const ParseLimits& limits);
  Result<void> absorb(const format::SignedBlock& signed_block, const ParseLimits& limits);

  format::Envelope env_;
  std::vector<datalog::Block> blocks_;
  datalog::SymbolTable symbols_;
  std::vector<std::shared_ptr<const datalog::SymbolTable>> own_tables_;  // third-party blocks
  std::vector<TokenCheck> checks_;
  bool verified_ = false;
};

}  // namespace biscuit
