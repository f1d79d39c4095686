#include "biscuit/token/token.h"

#include <algorithm>
#include <type_traits>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/limits.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"
#include "biscuit/format/block_codec.h"
#include "biscuit/format/signature.h"
#include "biscuit/token/datalog_errors.h"

namespace biscuit {

using detail::from_datalog;

// ------------------------------------------------------------------ Params

Params& Params::string(std::string name, std::string value) {
  p_.terms[std::move(name)] = datalog::ast::Term::string(std::move(value));
  return *this;
}
Params& Params::integer(std::string name, int64_t value) {
  p_.terms[std::move(name)] = datalog::ast::Term::integer(value);
  return *this;
}
Params& Params::boolean(std::string name, bool value) {
  p_.terms[std::move(name)] = datalog::ast::Term::boolean(value);
  return *this;
}
Params& Params::date(std::string name, uint64_t unix_seconds) {
  p_.terms[std::move(name)] = datalog::ast::Term::date(unix_seconds);
  return *this;
}
Params& Params::bytes(std::string name, Bytes value) {
  p_.terms[std::move(name)] = datalog::ast::Term::bytes(std::move(value));
  return *this;
}
Params& Params::null(std::string name) {
  p_.terms[std::move(name)] = datalog::ast::Term::null();
  return *this;
}
Params& Params::term(std::string name, datalog::ast::Term value) {
  p_.terms[std::move(name)] = std::move(value);
  return *this;
}
Params& Params::public_key(std::string name, const PublicKey& key) {
  p_.keys[std::move(name)] = to_datalog_key(key);
  return *this;
}

template <class Ast>
Result<Template<Ast>> Template<Ast>::parse(std::string_view text) {
  auto parsed = [&] {
    if constexpr (std::is_same_v<Ast, datalog::ast::Fact>)
      return datalog::parse_fact(text);
    else
      return datalog::parse_rule(text);
  }();
  if (!parsed) return from_datalog(parsed.error(), false);
  Template t;
  t.ast_ = std::move(*parsed);
  return t;
}
template class Template<datalog::ast::Fact>;
template class Template<datalog::ast::Rule>;

datalog::PublicKey to_datalog_key(const PublicKey& key) {
  datalog::PublicKey out;
  out.algorithm = key.algorithm() == Algorithm::Secp256r1 ? datalog::PublicKey::Algorithm::Secp256r1
                                                          : datalog::PublicKey::Algorithm::Ed25519;
  out.key = key.bytes();
  return out;
}

Result<PublicKey> from_datalog_key(const datalog::PublicKey& key) {
  return PublicKey::from_bytes(
      key.algorithm == datalog::PublicKey::Algorithm::Secp256r1 ? Algorithm::Secp256r1 : Algorithm::Ed25519,
      key.key);
}

// ------------------------------------------------------------------ BlockBuilder

namespace {

template <class T>
void append_all(std::vector<T>& to, std::vector<T>& from) {
  for (auto& x : from) to.push_back(std::move(x));
}

datalog::ParseOptions parse_options(const datalog::SizeLimits& limits) {
  datalog::ParseOptions options;
  options.limits = limits;
  return options;
}

// `error` with "<what>: " before its message.
datalog::Error prefixed(datalog::Error error, const std::string& what) {
  error.message = what + ": " + error.message;
  return error;
}

// A base64 text whose decoded size must be above `max_bytes` (4 characters carry 3 bytes).
bool base64_too_long(std::string_view text, std::size_t max_bytes) {
  return text.size() / 4 > max_bytes / 3 + 1;
}

Error too_long(const char* what, std::string_view text, std::size_t max_bytes) {
  return make_error(ErrorCode::Deserialization, std::string(what) + " is " + std::to_string(text.size()) +
                                                    " characters of base64, more than the limit of " +
                                                    std::to_string(max_bytes) + " bytes can take");
}

// The checks of block `index` in their simple form (see TokenCheck), read through `symbols`.
void list_checks(const datalog::Block& block, std::size_t index, const datalog::SymbolTable& symbols,
                 std::vector<TokenCheck>& out) {
  for (std::size_t j = 0; j < block.checks.size(); ++j) {
    const datalog::Check& c = block.checks[j];
    TokenCheck tc;
    tc.block = index;
    tc.index = j;
    tc.kind = c.kind;
    if (c.queries.size() == 1 && c.queries[0].body.size() == 1 && c.queries[0].expressions.empty()) {
      const datalog::Predicate& p = c.queries[0].body[0];
      const bool constant = std::none_of(p.terms.begin(), p.terms.end(),
                                         [](const datalog::Term& t) { return t.contains_variable(); });
      if (constant) {
        auto fact = datalog::to_ast(datalog::Fact{p}, symbols);
        if (fact) tc.fact = std::move(*fact);  // a dangling symbol id: not in simple form
      }
    }
    out.push_back(std::move(tc));
  }
}

// A block about to be signed, held to the limits its readers apply.
Result<void> check_built(const datalog::Block& block, const datalog::SizeLimits& limits) {
  if (auto st = datalog::check_limits(block, limits); !st)
    return from_datalog(prefixed(st.error(), "block"), false);
  return {};
}

}  // namespace

Result<void> BlockBuilder::add_code(std::string_view code, const Params& params) {
  auto parsed = datalog::parse_block_source(code, parse_options(limits_));
  if (!parsed) return from_datalog(parsed.error(), false);
  datalog::ast::Source src = std::move(*parsed);
  if (auto st = datalog::ast::apply_parameters(src, params.ast()); !st)
    return from_datalog(st.error(), false);
  append_all(source_.scopes, src.scopes);
  append_all(source_.facts, src.facts);
  append_all(source_.rules, src.rules);
  append_all(source_.checks, src.checks);
  return {};
}

Result<void> BlockBuilder::add_fact(std::string_view text, const Params& params) {
  auto f = datalog::parse_fact(text, parse_options(limits_));
  if (!f) return from_datalog(f.error(), false);
  if (auto st = datalog::ast::apply_parameters(*f, params.ast()); !st) return from_datalog(st.error(), false);
  source_.facts.push_back(std::move(*f));
  return {};
}

Result<void> BlockBuilder::add_rule(std::string_view text, const Params& params) {
  auto r = datalog::parse_rule(text, parse_options(limits_));
  if (!r) return from_datalog(r.error(), false);
  if (auto st = datalog::ast::apply_parameters(*r, params.ast()); !st) return from_datalog(st.error(), false);
  source_.rules.push_back(std::move(*r));
  return {};
}

Result<void> BlockBuilder::add_check(std::string_view text, const Params& params) {
  auto c = datalog::parse_check(text, parse_options(limits_));
  if (!c) return from_datalog(c.error(), false);
  if (auto st = datalog::ast::apply_parameters(*c, params.ast()); !st) return from_datalog(st.error(), false);
  source_.checks.push_back(std::move(*c));
  return {};
}

bool BlockBuilder::empty() const {
  return source_.facts.empty() && source_.rules.empty() && source_.checks.empty() && source_.scopes.empty() &&
         !context_;
}

// ------------------------------------------------------------------ Biscuit: loading

Result<Biscuit> Biscuit::load(format::Envelope env, bool verified, const ParseLimits& limits) {
  Biscuit token;
  token.verified_ = verified;
  for (std::size_t i = 0; i < env.block_count(); ++i) {
    if (auto r = token.absorb(env.block(i), limits); !r) return r.take_error();
  }
  token.env_ = std::move(env);
  return token;
}

// Decodes one signed block and adds it to the token's tables, enforcing the symbol and
// version rules and the size limits: first-party symbols/keys extend the token table (a
// redefinition is an error); a third-party block gets its own fresh table.
Result<void> Biscuit::absorb(const format::SignedBlock& sb, const ParseLimits& limits) {
  auto decoded =
      format::decode_block(sb.block, format::BlockLimits{limits.max_token_bytes, limits.max_nesting});
  if (!decoded) return decoded.take_error();
  datalog::Block block = std::move(*decoded);
  std::size_t index = blocks_.size();
  auto check = [&]() -> Result<void> {
    if (auto st = datalog::check_limits(block, limits.datalog); !st) {
      return from_datalog(prefixed(st.error(), "block " + std::to_string(index)), true);
    }
    if (auto st = datalog::check_version(block, block.version); !st) return from_datalog(st.error(), true);
    if (auto st = datalog::validate_block(block); !st) return from_datalog(st.error(), true);
    return {};
  };
  if (sb.external) {
    auto table = std::make_shared<datalog::SymbolTable>();
    if (!table->extend(block.symbols)) {
      return make_error(ErrorCode::SymbolTableOverlap, "third-party block " + std::to_string(index) +
                                                           " repeats a symbol or redefines a default symbol");
    }
    if (!table->extend_keys(block.public_keys)) {
      return make_error(ErrorCode::PublicKeyTableOverlap,
                        "third-party block " + std::to_string(index) + " repeats a public key");
    }
    if (auto r = check(); !r) return r;
    list_checks(block, index, *table, checks_);
    own_tables_.push_back(std::move(table));
  } else {
    std::size_t sym_mark = symbols_.size();
    std::size_t key_mark = symbols_.keys().size();
    if (!symbols_.extend(block.symbols)) {
      return make_error(
          ErrorCode::SymbolTableOverlap,
          "block " + std::to_string(index) + " redefines a symbol already in the token's table");
    }
    if (!symbols_.extend_keys(block.public_keys)) {
      symbols_.truncate(sym_mark);
      return make_error(
          ErrorCode::PublicKeyTableOverlap,
          "block " + std::to_string(index) + " redefines a public key already in the token's table");
    }
    if (auto r = check(); !r) {
      symbols_.truncate(sym_mark);
      symbols_.truncate_keys(key_mark);
      return r;
    }
    list_checks(block, index, symbols_, checks_);
    own_tables_.push_back(nullptr);
  }
  blocks_.push_back(std::move(block));
  return {};
}

Result<Biscuit> Biscuit::from_bytes(std::span<const uint8_t> bytes, const PublicKey& root,
                                    const ParseLimits& limits) {
  return from_bytes(
      bytes, KeyProvider([&root](std::optional<uint32_t>) -> Result<PublicKey> { return root; }), limits);
}

Result<Biscuit> Biscuit::from_bytes(std::span<const uint8_t> bytes, const KeyProvider& root,
                                    const ParseLimits& limits) {
  auto env = format::Envelope::parse(bytes, limits);
  if (!env) return env.take_error();
  auto key = root(env->root_key_id);
  if (!key) return key.take_error();
  if (auto r = env->verify(*key); !r) return r.take_error();
  return load(std::move(*env), true, limits);
}

Result<Biscuit> Biscuit::from_base64(std::string_view text, const PublicKey& root,
                                     const ParseLimits& limits) {
  if (base64_too_long(text, limits.max_token_bytes)) return too_long("token", text, limits.max_token_bytes);
  auto bytes = base64url_decode(text);
  if (!bytes) return make_error(ErrorCode::Deserialization, "token is not valid URL-safe base64");
  return from_bytes(*bytes, root, limits);
}

Result<Biscuit> Biscuit::from_base64(std::string_view text, const KeyProvider& root,
                                     const ParseLimits& limits) {
  if (base64_too_long(text, limits.max_token_bytes)) return too_long("token", text, limits.max_token_bytes);
  auto bytes = base64url_decode(text);
  if (!bytes) return make_error(ErrorCode::Deserialization, "token is not valid URL-safe base64");
  return from_bytes(*bytes, root, limits);
}

Result<Biscuit> Biscuit::from_bytes_unverified(std::span<const uint8_t> bytes, const ParseLimits& limits) {
  auto env = format::Envelope::parse(bytes, limits);
  if (!env) return env.take_error();
  return load(std::move(*env), false, limits);
}

std::string Biscuit::to_base64() const {
  return base64url_encode(to_bytes());
}

// ------------------------------------------------------------------ Biscuit: building

Result<Biscuit> BiscuitBuilder::build(const PrivateKey& root, Algorithm next_algorithm) const {
  if (!root.valid()) return make_error(ErrorCode::InvalidKey, "no root private key");
  auto block = datalog::build_block(source(), datalog::SymbolTable{}, context());
  if (!block) return from_datalog(block.error(), false);
  if (auto r = check_built(*block, limits()); !r) return r.take_error();
  Bytes bytes = format::encode_block(*block);
  auto env = format::Envelope::create(root, root_key_id_, std::move(bytes), block->version,
                                      KeyPair::generate(next_algorithm));
  if (!env) return env.take_error();
  Biscuit token;
  token.verified_ = true;
  token.env_ = std::move(*env);
  ParseLimits own;
  own.datalog = limits();
  if (auto r = token.absorb(token.env_.authority, own); !r) return r.take_error();
  return token;
}

Result<Biscuit> Biscuit::append(const BlockBuilder& builder, Algorithm next_algorithm) const {
  if (sealed()) return make_error(ErrorCode::AppendOnSealed, "cannot append a block to a sealed token");
  auto block = datalog::build_block(builder.source(), symbols_, builder.context());
  if (!block) return from_datalog(block.error(), false);
  if (auto r = check_built(*block, builder.limits()); !r) return r.take_error();
  Bytes bytes = format::encode_block(*block);
  auto env = env_.append(std::move(bytes), block->version, KeyPair::generate(next_algorithm));
  if (!env) return env.take_error();
  Biscuit token = *this;
  token.env_ = std::move(*env);
  ParseLimits own;
  own.datalog = builder.limits();
  if (auto r = token.absorb(token.env_.blocks.back(), own); !r) return r.take_error();
  return token;
}

Result<Biscuit> Biscuit::seal() const {
  auto env = env_.seal();
  if (!env) return env.take_error();
  Biscuit token = *this;
  token.env_ = std::move(*env);
  return token;
}

Result<ThirdPartyRequest> Biscuit::third_party_request() const {
  if (sealed())
    return make_error(ErrorCode::AppendOnSealed, "cannot request a third-party block for a sealed token");
  ThirdPartyRequest req;
  req.previous_signature_ = env_.last().signature;
  return req;
}

Result<Biscuit> Biscuit::append_third_party(const ThirdPartyBlock& block, Algorithm next_algorithm,
                                            const ParseLimits& limits) const {
  auto env = env_.append_third_party(block.payload_, block.external_, KeyPair::generate(next_algorithm));
  if (!env) return env.take_error();
  Biscuit token = *this;
  token.env_ = std::move(*env);
  if (auto r = token.absorb(token.env_.blocks.back(), limits); !r) return r.take_error();
  return token;
}

// ------------------------------------------------------------------ Biscuit: inspection

std::vector<Bytes> Biscuit::revocation_ids() const {
  std::vector<Bytes> ids;
  for (std::size_t i = 0; i < env_.block_count(); ++i) ids.push_back(env_.block(i).signature);
  return ids;
}

const datalog::SymbolTable& Biscuit::block_symbols(std::size_t index) const {
  const auto& own = own_tables_.at(index);
  return own ? *own : symbols_;
}

std::string Biscuit::block_source(std::size_t index) const {
  return datalog::print_block_code(blocks_.at(index), block_symbols(index));
}

std::string Biscuit::check_source(std::size_t block, std::size_t index) const {
  return datalog::print_check(blocks_.at(block).checks.at(index), block_symbols(block));
}

std::optional<PublicKey> Biscuit::block_external_key(std::size_t index) const {
  const auto& sb = env_.block(index);
  if (!sb.external) return std::nullopt;
  return sb.external->public_key;
}

// ------------------------------------------------------------------ third-party exchange

Result<ThirdPartyRequest> ThirdPartyRequest::from_bytes(std::span<const uint8_t> bytes,
                                                        const ParseLimits& limits) {
  auto prev = format::parse_request(bytes, limits);
  if (!prev) return prev.take_error();
  ThirdPartyRequest req;
  req.previous_signature_ = std::move(*prev);
  return req;
}

Result<ThirdPartyRequest> ThirdPartyRequest::from_base64(std::string_view text, const ParseLimits& limits) {
  if (base64_too_long(text, limits.max_token_bytes)) {
    return too_long("third-party request", text, limits.max_token_bytes);
  }
  auto bytes = base64url_decode(text);
  if (!bytes)
    return make_error(ErrorCode::Deserialization, "third-party request is not valid URL-safe base64");
  return from_bytes(*bytes, limits);
}

Bytes ThirdPartyRequest::to_bytes() const {
  return format::serialize_request(previous_signature_);
}
std::string ThirdPartyRequest::to_base64() const {
  return base64url_encode(to_bytes());
}

Result<ThirdPartyBlock> ThirdPartyRequest::create_block(const PrivateKey& key,
                                                        const BlockBuilder& builder) const {
  if (!key.valid()) return make_error(ErrorCode::InvalidKey, "no third-party private key");
  auto block = datalog::build_block(builder.source(), datalog::SymbolTable{}, builder.context());
  if (!block) return from_datalog(block.error(), false);
  if (auto r = check_built(*block, builder.limits()); !r) return r.take_error();
  block->version = std::max<uint32_t>(block->version, 5);  // third-party blocks are datalog 3.2+
  ThirdPartyBlock out;
  out.payload_ = format::encode_block(*block);
  auto sig = key.sign(format::external_payload(out.payload_, previous_signature_));
  if (!sig) return sig.take_error();
  out.external_ = format::ExternalSignature{std::move(*sig), key.public_key()};
  return out;
}

Result<ThirdPartyBlock> ThirdPartyBlock::from_bytes(std::span<const uint8_t> bytes,
                                                    const ParseLimits& limits) {
  auto parsed = format::parse_third_party_contents(bytes, limits);
  if (!parsed) return parsed.take_error();
  // Its Datalog is read now, so an oversized block is refused before anyone signs over it.
  auto block =
      format::decode_block(parsed->first, format::BlockLimits{limits.max_token_bytes, limits.max_nesting});
  if (!block) return block.take_error();
  if (auto st = datalog::check_limits(*block, limits.datalog); !st) {
    return from_datalog(prefixed(st.error(), "third-party block"), true);
  }
  ThirdPartyBlock out;
  out.payload_ = std::move(parsed->first);
  out.external_ = std::move(parsed->second);
  return out;
}

Result<ThirdPartyBlock> ThirdPartyBlock::from_base64(std::string_view text, const ParseLimits& limits) {
  if (base64_too_long(text, limits.max_token_bytes))
    return too_long("third-party block", text, limits.max_token_bytes);
  auto bytes = base64url_decode(text);
  if (!bytes) return make_error(ErrorCode::Deserialization, "third-party block is not valid URL-safe base64");
  return from_bytes(*bytes, limits);
}

Bytes ThirdPartyBlock::to_bytes() const {
  return format::serialize_third_party_contents(payload_, external_);
}
std::string ThirdPartyBlock::to_base64() const {
  return base64url_encode(to_bytes());
}

}  // namespace biscuit
