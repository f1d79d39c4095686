// The interned Datalog data model of Biscuit v3, mapping 1:1 to the wire types of
// schema.proto (TermV2, ExpressionV2/Op, PredicateV2, RuleV2, CheckV2, Scope, FactV2,
// Policy, Block) — plus the symbol table that gives strings their ids.
//
// Invariants (established by the factory functions, relied on everywhere):
//  - Term::set() holds its elements sorted by Term order and without duplicates;
//    Term::map() holds its entries sorted by key order with unique keys (last value wins).
//  - Term order is the reference's: first by kind in the order of TermKind (Variable <
//    Integer < String < Date < Bytes < Bool < Set < Null < Array < Map), then by value:
//    strings by *symbol id*, bytes lexicographically (unsigned), sets/arrays/maps
//    lexicographically. Map keys: integers before strings. This is also the print order.
//  - Strings and variable names are symbol ids (SymbolIndex); ids 0..27 are the 28 default
//    symbols, others start at 1024 (SymbolTable::kOffset).
//  - Scope::public_key and Unary/Binary ffi names index the table that was used to intern
//    the block (the token's table, or a third-party block's own table).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace biscuit::datalog {

using SymbolIndex = uint64_t;

// Origin / block id of the authorizer (the reference's usize::MAX).
inline constexpr uint64_t kAuthorizerBlock = UINT64_MAX;

// ---------------------------------------------------------------------------------- terms

enum class TermKind : uint8_t { Variable, Integer, String, Date, Bytes, Bool, Set, Null, Array, Map };

struct Term;

struct MapKey {
  enum class Kind : uint8_t { Integer, String };
  Kind kind = Kind::Integer;
  int64_t integer = 0;     // Kind::Integer
  SymbolIndex string = 0;  // Kind::String (symbol id)

  static MapKey from_integer(int64_t i) { return MapKey{Kind::Integer, i, 0}; }
  static MapKey from_string(SymbolIndex s) { return MapKey{Kind::String, 0, s}; }
  friend bool operator==(const MapKey& a, const MapKey& b) {
    return a.kind == b.kind && (a.kind == Kind::Integer ? a.integer == b.integer : a.string == b.string);
  }
  friend bool operator<(const MapKey& a, const MapKey& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.kind == Kind::Integer ? a.integer < b.integer : a.string < b.string;
  }
};

namespace term_detail {
struct Variable {
  uint32_t id;
};
struct String {
  SymbolIndex id;
};
struct Date {
  uint64_t seconds;
};
struct Null {};
struct Set {
  std::vector<Term> items;
};
struct Array {
  std::vector<Term> items;
};
struct Map {
  std::vector<std::pair<MapKey, Term>> entries;
};
using Value =
    std::variant<Variable, int64_t, String, Date, std::vector<uint8_t>, bool, Set, Null, Array, Map>;
}  // namespace term_detail

// An immutable-by-convention Datalog value. Cheap for scalars; sets/arrays/maps own their
// elements.
struct Term {
  term_detail::Value v;

  static Term variable(uint32_t id) { return Term{term_detail::Variable{id}}; }
  static Term integer(int64_t i) { return Term{i}; }
  static Term string(SymbolIndex id) { return Term{term_detail::String{id}}; }
  static Term date(uint64_t seconds) { return Term{term_detail::Date{seconds}}; }
  static Term bytes(std::vector<uint8_t> b) { return Term{std::move(b)}; }
  static Term boolean(bool b) { return Term{b}; }
  static Term null() { return Term{term_detail::Null{}}; }
  static Term set(std::vector<Term> items);  // sorts and removes duplicates
  static Term array(std::vector<Term> items) { return Term{term_detail::Array{std::move(items)}}; }
  static Term map(std::vector<std::pair<MapKey, Term>> entries);  // sorts; last duplicate wins

  TermKind kind() const { return static_cast<TermKind>(v.index()); }
  bool is(TermKind k) const { return kind() == k; }

  // Accessors: call only when kind() matches.
  uint32_t as_variable() const { return std::get<term_detail::Variable>(v).id; }
  int64_t as_integer() const { return std::get<int64_t>(v); }
  SymbolIndex as_string() const { return std::get<term_detail::String>(v).id; }
  uint64_t as_date() const { return std::get<term_detail::Date>(v).seconds; }
  const std::vector<uint8_t>& as_bytes() const { return std::get<std::vector<uint8_t>>(v); }
  bool as_bool() const { return std::get<bool>(v); }
  const std::vector<Term>& as_set() const { return std::get<term_detail::Set>(v).items; }
  const std::vector<Term>& as_array() const { return std::get<term_detail::Array>(v).items; }
  const std::vector<std::pair<MapKey, Term>>& as_map() const { return std::get<term_detail::Map>(v).entries; }

  // True if this term or any nested element is a variable.
  bool contains_variable() const;
};

// Total order (see the header comment); 0 if equal.
int compare(const Term& a, const Term& b);
inline bool operator==(const Term& a, const Term& b) {
  return compare(a, b) == 0;
}
inline bool operator!=(const Term& a, const Term& b) {
  return compare(a, b) != 0;
}
inline bool operator<(const Term& a, const Term& b) {
  return compare(a, b) < 0;
}
uint64_t hash_term(const Term& t);
// The memory a term occupies, approximately: sizeof(Term) plus what it owns (bytes,
// elements). Strings are symbol ids: their text is counted where it is created.
std::size_t term_bytes(const Term& t);

// ------------------------------------------------------------------------------- predicates

struct Predicate {
  SymbolIndex name = 0;
  std::vector<Term> terms;
  friend bool operator==(const Predicate& a, const Predicate& b) {
    return a.name == b.name && a.terms == b.terms;
  }
};

struct Fact {
  Predicate predicate;
  friend bool operator==(const Fact& a, const Fact& b) { return a.predicate == b.predicate; }
};

// ------------------------------------------------------------------------------ expressions

// Numbering = schema.proto's OpUnary.Kind / OpBinary.Kind.
enum class UnaryOp : uint8_t { Negate = 0, Parens = 1, Length = 2, TypeOf = 3, Ffi = 4 };
enum class BinaryOp : uint8_t {
  LessThan = 0,
  GreaterThan = 1,
  LessOrEqual = 2,
  GreaterOrEqual = 3,
  Equal = 4,  // strict `===` (type error across types)
  Contains = 5,
  Prefix = 6,
  Suffix = 7,
  Regex = 8,
  Add = 9,
  Sub = 10,
  Mul = 11,
  Div = 12,
  And = 13,
  Or = 14,  // eager (printed `&&!` / `||!`); the parser never produces them
  Intersection = 15,
  Union = 16,
  BitwiseAnd = 17,
  BitwiseOr = 18,
  BitwiseXor = 19,
  NotEqual = 20,  // strict `!==`
  HeterogeneousEqual = 21,
  HeterogeneousNotEqual = 22,  // lenient `==` / `!=`
  LazyAnd = 23,
  LazyOr = 24,  // right operand is a parameterless Closure
  All = 25,
  Any = 26,  // right operand is a one-parameter Closure
  Get = 27,
  Ffi = 28,
  TryOr = 29,  // left operand is a parameterless Closure, right operand the fallback
};

struct Op;

struct Unary {
  UnaryOp op = UnaryOp::Negate;
  SymbolIndex ffi_name = 0;  // only for UnaryOp::Ffi
  friend bool operator==(const Unary&, const Unary&) = default;
};
struct Binary {
  BinaryOp op = BinaryOp::LessThan;
  SymbolIndex ffi_name = 0;  // only for BinaryOp::Ffi
  friend bool operator==(const Binary&, const Binary&) = default;
};
struct Closure {
  std::vector<uint32_t> params;  // variable ids
  std::vector<Op> ops;
};

// One instruction of an expression in postfix order, exactly as on the wire.
struct Op {
  std::variant<Term, Unary, Binary, Closure> v;
};
bool operator==(const Op& a, const Op& b);
bool operator==(const Closure& a, const Closure& b);

struct Expression {
  std::vector<Op> ops;
  friend bool operator==(const Expression& a, const Expression& b) { return a.ops == b.ops; }
};

// ---------------------------------------------------------------------- rules, checks, ...

struct Scope {
  enum class Kind : uint8_t { Authority = 0, Previous = 1, PublicKey = 2 };
  Kind kind = Kind::Authority;
  uint64_t public_key = 0;  // Kind::PublicKey: index into the symbol table's key list
  friend bool operator==(const Scope&, const Scope&) = default;
};

struct Rule {
  Predicate head;
  std::vector<Predicate> body;
  std::vector<Expression> expressions;
  std::vector<Scope> scopes;  // rule-level scopes; empty = the block's default trust
  friend bool operator==(const Rule&, const Rule&) = default;
};

// Numbering = schema.proto's Check.Kind.
enum class CheckKind : uint8_t { One = 0, All = 1, Reject = 2 };
struct Check {
  CheckKind kind = CheckKind::One;
  std::vector<Rule> queries;  // each with head `query()`; joined by `or`
  friend bool operator==(const Check&, const Check&) = default;
};

// Numbering = schema.proto's Policy.Kind.
enum class PolicyKind : uint8_t { Allow = 0, Deny = 1 };
struct Policy {
  PolicyKind kind = PolicyKind::Allow;
  std::vector<Rule> queries;
  friend bool operator==(const Policy&, const Policy&) = default;
};

// A public key as data (schema.proto's PublicKey): algorithm + raw bytes. No crypto here.
struct PublicKey {
  enum class Algorithm : uint8_t { Ed25519 = 0, Secp256r1 = 1 };
  Algorithm algorithm = Algorithm::Ed25519;
  std::vector<uint8_t> key;
  // "ed25519/<hex>" or "secp256r1/<hex>" (lowercase hex), as printed in scopes.
  std::string print() const;
  friend bool operator==(const PublicKey&, const PublicKey&) = default;
};

// Datalog versions as the block `version` field (3.0 = 3 ... 3.3 = 6).
inline constexpr uint32_t kMinBlockVersion = 3;
inline constexpr uint32_t kMaxBlockVersion = 6;

// The contents of schema.proto's Block, interned.
struct Block {
  std::vector<std::string> symbols;  // symbols this block adds to the table, in order
  std::optional<std::string> context;
  uint32_t version = kMinBlockVersion;
  std::vector<Fact> facts;
  std::vector<Rule> rules;
  std::vector<Check> checks;
  std::vector<Scope> scopes;           // block-level scopes (not printed in block code)
  std::vector<PublicKey> public_keys;  // keys this block adds to the key table, in order
};

// ----------------------------------------------------------------------------- symbols

// Hashes std::string keys and looks them up by std::string_view, without a temporary string.
struct StringViewHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using SymbolIndexMap = std::unordered_map<std::string, SymbolIndex, StringViewHash, std::equal_to<>>;

// The symbol table: 28 default symbols at 0..27, then the token's (or a third-party
// block's) symbols from 1024 on, plus the public-key table used by scopes.
class SymbolTable {
 public:
  static constexpr SymbolIndex kOffset = 1024;
  static const std::array<std::string_view, 28>& default_symbols();

  SymbolTable() = default;  // defaults only, no keys

  // Id of `s`, adding it if absent (defaults are never added).
  SymbolIndex insert(std::string_view s);
  std::optional<SymbolIndex> get(std::string_view s) const;
  // The string of an id, or nullopt if unknown.
  std::optional<std::string_view> lookup(SymbolIndex id) const;
  // The string, or "<{id}?>" for an unknown id (the reference's infallible printing).
  std::string print_symbol(SymbolIndex id) const;

  // Number of non-default symbols (the next id is kOffset + size()).
  std::size_t size() const { return symbols_.size(); }
  const std::vector<std::string>& symbols() const { return symbols_; }
  // Symbols added after the first `offset` non-default ones.
  std::vector<std::string> symbols_since(std::size_t offset) const;
  // Appends a block's symbol list. Fails (leaving the table unchanged) if one is a default
  // symbol, already present, or repeated: the reference's SymbolTableOverlap.
  bool extend(const std::vector<std::string>& block_symbols);
  // Drops every symbol after the first `offset` (undo of insert/extend).
  void truncate(std::size_t offset);

  // ---- public keys ----
  uint64_t insert_key(const PublicKey& key);  // index of `key`, adding it if absent
  std::optional<uint64_t> find_key(const PublicKey& key) const;
  const PublicKey* key(uint64_t index) const;  // nullptr if out of range
  const std::vector<PublicKey>& keys() const { return keys_; }
  std::vector<PublicKey> keys_since(std::size_t offset) const;
  // Appends a block's key list; fails (unchanged) on a key already present or repeated.
  bool extend_keys(const std::vector<PublicKey>& block_keys);
  void truncate_keys(std::size_t offset);

 private:
  std::vector<std::string> symbols_;
  SymbolIndexMap index_;
  std::vector<PublicKey> keys_;
};

// Symbols created while evaluating expressions (string concatenation, .type(), extern
// results) live in this overlay, on top of a read-only table: ids continue after the base.
// Each string is stored once (the index refers to it); bytes() is their total size.
class TemporarySymbols {
 public:
  explicit TemporarySymbols(const SymbolTable& base)
      : base_(base), offset_(SymbolTable::kOffset + base.size()) {}
  TemporarySymbols(const TemporarySymbols&) = delete;
  TemporarySymbols& operator=(const TemporarySymbols&) = delete;
  SymbolIndex insert(std::string_view s);
  SymbolIndex insert_owned(std::string s);  // the same, keeping `s` itself when it is new
  std::optional<std::string_view> lookup(SymbolIndex id) const;
  const SymbolTable& base() const { return base_; }
  std::size_t bytes() const { return bytes_; }

 private:
  SymbolIndex add(std::string s);  // `s` is new

  const SymbolTable& base_;
  SymbolIndex offset_;
  // Created per binding tested, so constructing it must not allocate; each string is held
  // by pointer so the index's views stay valid as the list grows.
  std::vector<std::unique_ptr<const std::string>> extra_;
  std::unordered_map<std::string_view, SymbolIndex> index_;
  std::size_t bytes_ = 0;
};

}  // namespace biscuit::datalog
