#include "biscuit/datalog/printer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

namespace biscuit::datalog {

namespace {

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

std::string binary_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::LessThan:
      return " < ";
    case BinaryOp::GreaterThan:
      return " > ";
    case BinaryOp::LessOrEqual:
      return " <= ";
    case BinaryOp::GreaterOrEqual:
      return " >= ";
    case BinaryOp::Equal:
      return " === ";
    case BinaryOp::HeterogeneousEqual:
      return " == ";
    case BinaryOp::NotEqual:
      return " !== ";
    case BinaryOp::HeterogeneousNotEqual:
      return " != ";
    case BinaryOp::Add:
      return " + ";
    case BinaryOp::Sub:
      return " - ";
    case BinaryOp::Mul:
      return " * ";
    case BinaryOp::Div:
      return " / ";
    case BinaryOp::And:
      return " &&! ";
    case BinaryOp::Or:
      return " ||! ";
    case BinaryOp::BitwiseAnd:
      return " & ";
    case BinaryOp::BitwiseOr:
      return " | ";
    case BinaryOp::BitwiseXor:
      return " ^ ";
    case BinaryOp::LazyAnd:
      return " && ";
    case BinaryOp::LazyOr:
      return " || ";
    case BinaryOp::Contains:
      return ".contains(";
    case BinaryOp::Prefix:
      return ".starts_with(";
    case BinaryOp::Suffix:
      return ".ends_with(";
    case BinaryOp::Regex:
      return ".matches(";
    case BinaryOp::Intersection:
      return ".intersection(";
    case BinaryOp::Union:
      return ".union(";
    case BinaryOp::All:
      return ".all(";
    case BinaryOp::Any:
      return ".any(";
    case BinaryOp::Get:
      return ".get(";
    case BinaryOp::TryOr:
      return ".try_or(";
    case BinaryOp::Ffi:
      return ".extern::";
  }
  return " ? ";
}

bool is_method(BinaryOp op) {
  switch (op) {
    case BinaryOp::Contains:
    case BinaryOp::Prefix:
    case BinaryOp::Suffix:
    case BinaryOp::Regex:
    case BinaryOp::Intersection:
    case BinaryOp::Union:
    case BinaryOp::All:
    case BinaryOp::Any:
    case BinaryOp::Get:
    case BinaryOp::TryOr:
    case BinaryOp::Ffi:
      return true;
    default:
      return false;
  }
}

// Prints a postfix op list in linear time without deep recursion (closures recurse, and
// their nesting is bounded by whoever built them). Ops: datalog::Op or ast::Op.
template <class OpT, class Leaf, class Name, class Param>
std::optional<std::string> print_ops(const std::vector<OpT>& ops, const Leaf& leaf, const Name& name,
                                     const Param& param) {
  struct Node {
    std::vector<std::string> text;  // text[i] is emitted before child[i]
    std::vector<std::size_t> child;
  };
  std::vector<Node> nodes;
  std::vector<std::size_t> stack;
  nodes.reserve(ops.size());
  for (const auto& op : ops) {
    Node n;
    if (const auto* t = std::get_if<0>(&op.v)) {
      n.text.push_back(leaf(*t));
    } else if (const auto* u = std::get_if<1>(&op.v)) {
      if (stack.empty()) return std::nullopt;
      const std::size_t c = stack.back();
      stack.pop_back();
      switch (u->op) {
        case UnaryOp::Negate:
          n.text = {"!", ""};
          break;
        case UnaryOp::Parens:
          n.text = {"(", ")"};
          break;
        case UnaryOp::Length:
          n.text = {"", ".length()"};
          break;
        case UnaryOp::TypeOf:
          n.text = {"", ".type()"};
          break;
        case UnaryOp::Ffi:
          n.text = {"", ".extern::" + name(u->ffi_name) + "()"};
          break;
      }
      n.child = {c};
    } else if (const auto* b = std::get_if<2>(&op.v)) {
      if (stack.size() < 2) return std::nullopt;
      const std::size_t r = stack.back();
      stack.pop_back();
      const std::size_t l = stack.back();
      stack.pop_back();
      std::string mid = binary_symbol(b->op);
      if (b->op == BinaryOp::Ffi) mid += name(b->ffi_name) + "(";
      n.text = {"", std::move(mid), is_method(b->op) ? ")" : ""};
      n.child = {l, r};
    } else {
      const auto& c = std::get<3>(op.v);
      auto body = print_ops(c.ops, leaf, name, param);
      if (!body) return std::nullopt;
      if (c.params.empty()) {
        n.text.push_back(std::move(*body));
      } else {
        std::string s;
        for (std::size_t i = 0; i < c.params.size(); ++i) {
          if (i) s += ", ";
          s += "$" + param(c.params[i]);
        }
        n.text.push_back(s + " -> " + *body);
      }
    }
    nodes.push_back(std::move(n));
    stack.push_back(nodes.size() - 1);
  }
  if (stack.size() != 1) return std::nullopt;
  std::string out;
  std::vector<std::pair<std::size_t, std::size_t>> work{{stack.back(), 0}};
  while (!work.empty()) {
    auto& [node, i] = work.back();
    const Node& n = nodes[node];
    if (i < n.text.size()) out += n.text[i];
    if (i < n.child.size()) {
      const std::size_t c = n.child[i];
      ++i;
      work.emplace_back(c, 0);
    } else {
      work.pop_back();
    }
  }
  return out;
}

template <class Body>
std::string join_body(const std::vector<std::string>& preds, const std::vector<std::string>& exprs,
                      const std::vector<std::string>& scopes, const Body&) {
  std::string out;
  for (std::size_t i = 0; i < preds.size(); ++i) {
    if (i) out += ", ";
    out += preds[i];
  }
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    if (i || !preds.empty()) out += ", ";
    out += exprs[i];
  }
  if (!scopes.empty()) {
    out += " trusting ";
    for (std::size_t i = 0; i < scopes.size(); ++i) {
      if (i) out += ", ";
      out += scopes[i];
    }
  }
  return out;
}

const char* check_prefix(CheckKind k) {
  switch (k) {
    case CheckKind::One:
      return "check if ";
    case CheckKind::All:
      return "check all ";
    case CheckKind::Reject:
      return "reject if ";
  }
  return "check if ";
}

}  // namespace

std::string hex_encode(const std::vector<uint8_t>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::string format_date(uint64_t seconds) {
  if (seconds > 253402300799ULL) return "<invalid date>";  // after 9999-12-31T23:59:59Z
  const std::chrono::sys_seconds instant{std::chrono::seconds(static_cast<int64_t>(seconds))};
  const auto day = std::chrono::floor<std::chrono::days>(instant);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss time{instant - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  return buf;
}

// ------------------------------------------------------------------- interned level

std::string print_term(const Term& term, const SymbolTable& symbols) {
  switch (term.kind()) {
    case TermKind::Variable:
      return "$" + symbols.print_symbol(term.as_variable());
    case TermKind::Integer:
      return std::to_string(term.as_integer());
    case TermKind::String: {
      std::string out;
      append_quoted(out, symbols.print_symbol(term.as_string()));
      return out;
    }
    case TermKind::Date:
      return format_date(term.as_date());
    case TermKind::Bytes:
      return "hex:" + hex_encode(term.as_bytes());
    case TermKind::Bool:
      return term.as_bool() ? "true" : "false";
    case TermKind::Set: {
      if (term.as_set().empty()) return "{,}";
      std::string out = "{";
      bool first = true;
      for (const auto& t : term.as_set()) {
        if (!first) out += ", ";
        first = false;
        out += print_term(t, symbols);
      }
      return out + "}";
    }
    case TermKind::Null:
      return "null";
    case TermKind::Array: {
      std::string out = "[";
      bool first = true;
      for (const auto& t : term.as_array()) {
        if (!first) out += ", ";
        first = false;
        out += print_term(t, symbols);
      }
      return out + "]";
    }
    case TermKind::Map: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : term.as_map()) {
        if (!first) out += ", ";
        first = false;
        if (k.kind == MapKey::Kind::Integer) {
          out += std::to_string(k.integer);
        } else {
          append_quoted(out, symbols.print_symbol(k.string));
        }
        out += ": " + print_term(v, symbols);
      }
      return out + "}";
    }
  }
  return "";
}

std::string print_predicate(const Predicate& p, const SymbolTable& symbols) {
  std::string out;
  if (auto s = symbols.lookup(p.name)) {
    out = std::string(*s);
  } else {
    out = "<?>";
  }
  out += "(";
  for (std::size_t i = 0; i < p.terms.size(); ++i) {
    if (i) out += ", ";
    out += print_term(p.terms[i], symbols);
  }
  return out + ")";
}

std::string print_fact(const Fact& fact, const SymbolTable& symbols) {
  return print_predicate(fact.predicate, symbols);
}

std::string print_expression(const Expression& e, const SymbolTable& symbols) {
  auto s = print_ops(
      e.ops, [&](const Term& t) { return print_term(t, symbols); },
      [&](SymbolIndex i) { return symbols.print_symbol(i); },
      [&](uint32_t v) { return symbols.print_symbol(v); });
  return s ? *s : std::string("<invalid expression>");
}

std::string print_scope(const Scope& scope, const SymbolTable& symbols) {
  switch (scope.kind) {
    case Scope::Kind::Authority:
      return "authority";
    case Scope::Kind::Previous:
      return "previous";
    case Scope::Kind::PublicKey:
      if (const PublicKey* k = symbols.key(scope.public_key)) return k->print();
      return "<unknown public key id>";
  }
  return "";
}

std::string print_rule_body(const Rule& rule, const SymbolTable& symbols) {
  std::vector<std::string> preds, exprs, scopes;
  for (const auto& p : rule.body) preds.push_back(print_predicate(p, symbols));
  for (const auto& e : rule.expressions) exprs.push_back(print_expression(e, symbols));
  for (const auto& s : rule.scopes) scopes.push_back(print_scope(s, symbols));
  return join_body(preds, exprs, scopes, 0);
}

std::string print_rule(const Rule& rule, const SymbolTable& symbols) {
  return print_predicate(rule.head, symbols) + " <- " + print_rule_body(rule, symbols);
}

std::string print_check(const Check& check, const SymbolTable& symbols) {
  std::string out = check_prefix(check.kind);
  for (std::size_t i = 0; i < check.queries.size(); ++i) {
    if (i) out += " or ";
    out += print_rule_body(check.queries[i], symbols);
  }
  return out;
}

std::string print_policy(const Policy& policy, const SymbolTable& symbols) {
  std::string out = policy.kind == PolicyKind::Allow ? "allow if " : "deny if ";
  for (std::size_t i = 0; i < policy.queries.size(); ++i) {
    if (i) out += " or ";
    out += print_rule_body(policy.queries[i], symbols);
  }
  return out;
}

std::string print_block_code(const Block& block, const SymbolTable& symbols) {
  std::string out;
  for (const auto& f : block.facts) out += print_fact(f, symbols) + ";\n";
  for (const auto& r : block.rules) out += print_rule(r, symbols) + ";\n";
  for (const auto& c : block.checks) out += print_check(c, symbols) + ";\n";
  return out;
}

// ------------------------------------------------------------------------ text level

std::string print(const ast::Term& term) {
  using K = ast::TermKind;
  switch (term.kind()) {
    case K::Variable:
      return "$" + term.as_variable();
    case K::Integer:
      return std::to_string(term.as_integer());
    case K::String: {
      std::string out;
      append_quoted(out, term.as_string());
      return out;
    }
    case K::Date:
      return format_date(term.as_date());
    case K::Bytes:
      return "hex:" + hex_encode(term.as_bytes());
    case K::Bool:
      return term.as_bool() ? "true" : "false";
    case K::Set: {
      if (term.as_set().empty()) return "{,}";
      std::string out = "{";
      bool first = true;
      for (const auto& t : term.as_set()) {
        if (!first) out += ", ";
        first = false;
        out += print(t);
      }
      return out + "}";
    }
    case K::Parameter:
      return "{" + term.as_parameter() + "}";
    case K::Null:
      return "null";
    case K::Array: {
      std::string out = "[";
      bool first = true;
      for (const auto& t : term.as_array()) {
        if (!first) out += ", ";
        first = false;
        out += print(t);
      }
      return out + "]";
    }
    case K::Map: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : term.as_map()) {
        if (!first) out += ", ";
        first = false;
        switch (k.kind) {
          case ast::MapKey::Kind::Integer:
            out += std::to_string(k.integer);
            break;
          case ast::MapKey::Kind::String:
            append_quoted(out, k.text);
            break;
          case ast::MapKey::Kind::Parameter:
            out += "{" + k.text + "}";
            break;
        }
        out += ": " + print(v);
      }
      return out + "}";
    }
  }
  return "";
}

std::string print(const ast::Predicate& p) {
  std::string out = p.name + "(";
  for (std::size_t i = 0; i < p.terms.size(); ++i) {
    if (i) out += ", ";
    out += print(p.terms[i]);
  }
  return out + ")";
}

std::string print(const ast::Fact& fact) {
  return print(fact.predicate);
}

std::string print(const ast::Expression& e) {
  auto s = print_ops(
      e.ops, [](const ast::Term& t) { return print(t); }, [](const std::string& n) { return n; },
      [](const std::string& n) { return n; });
  return s ? *s : std::string("<invalid expression>");
}

std::string print(const ast::Scope& scope) {
  switch (scope.kind) {
    case ast::Scope::Kind::Authority:
      return "authority";
    case ast::Scope::Kind::Previous:
      return "previous";
    case ast::Scope::Kind::PublicKey:
      return scope.key.print();
    case ast::Scope::Kind::Parameter:
      return "{" + scope.parameter + "}";
  }
  return "";
}

namespace {
std::string print_body(const ast::Rule& rule) {
  std::vector<std::string> preds, exprs, scopes;
  for (const auto& p : rule.body) preds.push_back(print(p));
  for (const auto& e : rule.expressions) exprs.push_back(print(e));
  for (const auto& s : rule.scopes) scopes.push_back(print(s));
  return join_body(preds, exprs, scopes, 0);
}
}  // namespace

std::string print(const ast::Rule& rule) {
  return print(rule.head) + " <- " + print_body(rule);
}

std::string print(const ast::Check& check) {
  std::string out = check_prefix(check.kind);
  for (std::size_t i = 0; i < check.queries.size(); ++i) {
    if (i) out += " or ";
    out += print_body(check.queries[i]);
  }
  return out;
}

std::string print(const ast::Policy& policy) {
  std::string out = policy.kind == PolicyKind::Allow ? "allow if " : "deny if ";
  for (std::size_t i = 0; i < policy.queries.size(); ++i) {
    if (i) out += " or ";
    out += print_body(policy.queries[i]);
  }
  return out;
}

std::string print_block_source(const ast::Source& source) {
  std::string out;
  if (!source.scopes.empty()) {
    out += "trusting ";
    for (std::size_t i = 0; i < source.scopes.size(); ++i) {
      if (i) out += ", ";
      out += print(source.scopes[i]);
    }
    out += ";\n";
  }
  for (const auto& f : source.facts) out += print(f) + ";\n";
  for (const auto& r : source.rules) out += print(r) + ";\n";
  for (const auto& c : source.checks) out += print(c) + ";\n";
  return out;
}

std::string print_authorizer_code(const ast::Source& source) {
  std::string out;
  for (const auto& f : source.facts) out += print(f) + ";\n";
  if (!source.facts.empty()) out += "\n";
  for (const auto& r : source.rules) out += print(r) + ";\n";
  if (!source.rules.empty()) out += "\n";
  for (const auto& c : source.checks) out += print(c) + ";\n";
  if (!source.checks.empty()) out += "\n";
  for (const auto& p : source.policies) out += print(p) + ";\n";
  return out;
}

// ----------------------------------------------------------------------- world dump

WorldDump dump_world(const World& world, const SymbolTable& symbols, const std::vector<BlockChecks>& checks,
                     const std::vector<Policy>& policies) {
  WorldDump dump;
  std::map<std::vector<std::optional<uint64_t>>, std::vector<std::string>> facts;
  world.for_each_fact([&](const OriginSet& origin, const Fact& fact) {
    std::vector<std::optional<uint64_t>> key;
    for (uint64_t id : origin.ids()) {
      if (id == kAuthorizerBlock) {
        key.insert(key.begin(), std::nullopt);
      } else {
        key.emplace_back(id);
      }
    }
    facts[key].push_back(print_fact(fact, symbols));
  });
  for (auto& [origin, list] : facts) {
    std::sort(list.begin(), list.end());
    dump.facts.push_back({origin, std::move(list)});
  }
  std::sort(dump.facts.begin(), dump.facts.end(), [](const auto& a, const auto& b) {
    return a.origin != b.origin ? a.origin < b.origin : a.facts < b.facts;
  });

  std::map<uint64_t, std::vector<std::string>> rules;
  for (const auto& r : world.rules()) rules[r.block].push_back(print_rule(r.rule, symbols));
  for (auto& [origin, list] : rules) {
    std::sort(list.begin(), list.end());
    dump.rules.push_back({origin, std::move(list)});
  }

  std::map<uint64_t, std::vector<std::string>> by_block;
  for (const auto& bc : checks) {
    for (const auto& c : bc.checks) by_block[bc.origin].push_back(print_check(c, symbols));
  }
  for (auto& [origin, list] : by_block) {
    if (list.empty()) continue;
    std::sort(list.begin(), list.end());
    dump.checks.push_back({origin, std::move(list)});
  }
  for (const auto& p : policies) dump.policies.push_back(print_policy(p, symbols));
  return dump;
}

}  // namespace biscuit::datalog
