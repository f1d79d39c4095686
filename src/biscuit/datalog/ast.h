// The text level of Biscuit Datalog: what the parser produces and what callers build
// programmatically before interning — strings are still strings, `{name}` parameters may
// still be unbound. (The reference calls this level "builder".)
//
// Invariants:
//  - ast::Term order is the reference builder's: by kind in the order of ast::TermKind
//    (Variable < Integer < String < Date < Bytes < Bool < Set < Parameter < Null < Array <
//    Map), then by value — strings compare by their UTF-8 bytes. ast::Term::set() sorts and
//    deduplicates, ast::Term::map() sorts by key (Integer < String < Parameter) keeping the
//    last value of a duplicate key. Interning walks sets and maps in this order, which is
//    what makes our new-symbol lists identical to the reference's.
//  - Values never reach Datalog by string concatenation: callers pass typed Params and
//    apply_parameters() substitutes them; any parameter left unbound is an error when a
//    block is built.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/types.h"

namespace biscuit::datalog::ast {

enum class TermKind : uint8_t {
  Variable,
  Integer,
  String,
  Date,
  Bytes,
  Bool,
  Set,
  Parameter,
  Null,
  Array,
  Map
};

struct Term;

struct MapKey {
  enum class Kind : uint8_t { Integer, String, Parameter };
  Kind kind = Kind::Integer;
  int64_t integer = 0;
  std::string text;  // Kind::String: the string; Kind::Parameter: the parameter name

  static MapKey from_integer(int64_t i) { return MapKey{Kind::Integer, i, {}}; }
  static MapKey from_string(std::string s) { return MapKey{Kind::String, 0, std::move(s)}; }
  static MapKey parameter(std::string name) { return MapKey{Kind::Parameter, 0, std::move(name)}; }
  friend bool operator==(const MapKey& a, const MapKey& b) {
    return a.kind == b.kind && (a.kind == Kind::Integer ? a.integer == b.integer : a.text == b.text);
  }
  friend bool operator<(const MapKey& a, const MapKey& b) {
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.kind == Kind::Integer ? a.integer < b.integer : a.text < b.text;
  }
};

namespace detail {
struct Variable {
  std::string name;
};
struct String {
  std::string value;
};
struct Date {
  uint64_t seconds;
};
struct Parameter {
  std::string name;
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
using Value = std::variant<Variable, int64_t, String, Date, std::vector<uint8_t>, bool, Set, Parameter, Null,
                           Array, Map>;
}  // namespace detail

struct Term {
  detail::Value v;

  static Term variable(std::string name) { return Term{detail::Variable{std::move(name)}}; }
  static Term integer(int64_t i) { return Term{i}; }
  static Term string(std::string s) { return Term{detail::String{std::move(s)}}; }
  static Term date(uint64_t seconds) { return Term{detail::Date{seconds}}; }
  static Term bytes(std::vector<uint8_t> b) { return Term{std::move(b)}; }
  static Term boolean(bool b) { return Term{b}; }
  static Term null() { return Term{detail::Null{}}; }
  static Term parameter(std::string name) { return Term{detail::Parameter{std::move(name)}}; }
  static Term set(std::vector<Term> items);  // sorted, deduplicated
  static Term array(std::vector<Term> items) { return Term{detail::Array{std::move(items)}}; }
  static Term map(std::vector<std::pair<MapKey, Term>> entries);  // sorted, last dup wins

  TermKind kind() const { return static_cast<TermKind>(v.index()); }
  bool is(TermKind k) const { return kind() == k; }
  const std::string& as_variable() const { return std::get<detail::Variable>(v).name; }
  int64_t as_integer() const { return std::get<int64_t>(v); }
  const std::string& as_string() const { return std::get<detail::String>(v).value; }
  uint64_t as_date() const { return std::get<detail::Date>(v).seconds; }
  const std::vector<uint8_t>& as_bytes() const { return std::get<std::vector<uint8_t>>(v); }
  bool as_bool() const { return std::get<bool>(v); }
  const std::string& as_parameter() const { return std::get<detail::Parameter>(v).name; }
  const std::vector<Term>& as_set() const { return std::get<detail::Set>(v).items; }
  const std::vector<Term>& as_array() const { return std::get<detail::Array>(v).items; }
  const std::vector<std::pair<MapKey, Term>>& as_map() const { return std::get<detail::Map>(v).entries; }
};

int compare(const Term& a, const Term& b);
inline bool operator==(const Term& a, const Term& b) {
  return compare(a, b) == 0;
}
inline bool operator<(const Term& a, const Term& b) {
  return compare(a, b) < 0;
}

struct Predicate {
  std::string name;
  std::vector<Term> terms;
  friend bool operator==(const Predicate&, const Predicate&) = default;
};

struct Fact {
  Predicate predicate;
  friend bool operator==(const Fact&, const Fact&) = default;
};

struct Op;
struct Unary {
  UnaryOp op = UnaryOp::Negate;
  std::string ffi_name;  // UnaryOp::Ffi only
  friend bool operator==(const Unary&, const Unary&) = default;
};
struct Binary {
  BinaryOp op = BinaryOp::LessThan;
  std::string ffi_name;  // BinaryOp::Ffi only
  friend bool operator==(const Binary&, const Binary&) = default;
};
struct Closure {
  std::vector<std::string> params;
  std::vector<Op> ops;
};
struct Op {
  std::variant<Term, Unary, Binary, Closure> v;
};
bool operator==(const Op& a, const Op& b);
bool operator==(const Closure& a, const Closure& b);

// Postfix op list, same shape as datalog::Expression.
struct Expression {
  std::vector<Op> ops;
  friend bool operator==(const Expression& a, const Expression& b) { return a.ops == b.ops; }
};

struct Scope {
  enum class Kind : uint8_t { Authority, Previous, PublicKey, Parameter };
  Kind kind = Kind::Authority;
  PublicKey key;          // Kind::PublicKey
  std::string parameter;  // Kind::Parameter: `{name}` to be bound to a public key
  friend bool operator==(const Scope&, const Scope&) = default;
};

struct Rule {
  Predicate head;
  std::vector<Predicate> body;
  std::vector<Expression> expressions;
  std::vector<Scope> scopes;
  friend bool operator==(const Rule&, const Rule&) = default;
};

struct Check {
  CheckKind kind = CheckKind::One;
  std::vector<Rule> queries;  // heads are `query()`
  friend bool operator==(const Check&, const Check&) = default;
};

struct Policy {
  PolicyKind kind = PolicyKind::Allow;
  std::vector<Rule> queries;
  friend bool operator==(const Policy&, const Policy&) = default;
};

// A parsed source text: a block (scopes, facts, rules, checks) or authorizer code (facts,
// rules, checks, policies). Elements keep their source order within each list.
struct Source {
  std::vector<Scope> scopes;  // block-level `trusting ...;` (blocks only)
  std::vector<Fact> facts;
  std::vector<Rule> rules;
  std::vector<Check> checks;
  std::vector<Policy> policies;  // authorizer code only
  friend bool operator==(const Source&, const Source&) = default;
};

// Typed values for `{name}` parameters: terms for term positions (and map keys: integer or
// string terms only), public keys for `trusting {name}`.
struct Params {
  std::map<std::string, Term, std::less<>> terms;
  std::map<std::string, PublicKey, std::less<>> keys;
};

// Substitutes parameters everywhere in `source` (sets/maps are re-sorted afterwards).
// Errors: UnboundParameter if any `{name}` has no value (message names all of them);
// InvalidParameter if a value is a variable or contains one, if a map-key parameter is not
// an integer or string, or if a set would become heterogeneous/nested; InvalidTerm if a
// fact would contain a variable. Parameters that the text does not use are ignored.
Status apply_parameters(Source& source, const Params& params);
Status apply_parameters(Fact& fact, const Params& params);
Status apply_parameters(Rule& rule, const Params& params);
Status apply_parameters(Check& check, const Params& params);
Status apply_parameters(Policy& policy, const Params& params);

// Names of the parameters still present (sorted, unique).
std::vector<std::string> unbound_parameters(const Source& source);

// Checks that every variable of the head appears in a body predicate (the reference's
// validate_variables); InvalidRule with "rule head contains variables that are not used in
// predicates of the rule's body: $x, $y" otherwise.
Status validate_variables(const Rule& rule);

}  // namespace biscuit::datalog::ast
