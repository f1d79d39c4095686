#include "biscuit/datalog/convert.h"

#include <set>

namespace biscuit::datalog {

namespace {

Error unbound(const std::string& name) {
  return make_error(Error::Code::UnboundParameter, "unbound parameter {" + name + "}");
}

// Interning against either a SymbolTable or a TemporarySymbols overlay.
template <class Table>
Result<Term> intern_term(const ast::Term& t, Table& symbols) {
  using K = ast::TermKind;
  switch (t.kind()) {
    case K::Variable:
      return Term::variable(static_cast<uint32_t>(symbols.insert(t.as_variable())));
    case K::Integer:
      return Term::integer(t.as_integer());
    case K::String:
      return Term::string(symbols.insert(t.as_string()));
    case K::Date:
      return Term::date(t.as_date());
    case K::Bytes:
      return Term::bytes(t.as_bytes());
    case K::Bool:
      return Term::boolean(t.as_bool());
    case K::Null:
      return Term::null();
    case K::Parameter:
      return unbound(t.as_parameter());
    case K::Set: {
      std::vector<Term> items;
      items.reserve(t.as_set().size());
      for (const auto& e : t.as_set()) {
        auto r = intern_term(e, symbols);
        if (!r) return std::move(r).error();
        items.push_back(std::move(*r));
      }
      return Term::set(std::move(items));
    }
    case K::Array: {
      std::vector<Term> items;
      items.reserve(t.as_array().size());
      for (const auto& e : t.as_array()) {
        auto r = intern_term(e, symbols);
        if (!r) return std::move(r).error();
        items.push_back(std::move(*r));
      }
      return Term::array(std::move(items));
    }
    case K::Map: {
      std::vector<std::pair<MapKey, Term>> entries;
      for (const auto& [k, v] : t.as_map()) {
        MapKey key;
        switch (k.kind) {
          case ast::MapKey::Kind::Integer:
            key = MapKey::from_integer(k.integer);
            break;
          case ast::MapKey::Kind::String:
            key = MapKey::from_string(symbols.insert(k.text));
            break;
          case ast::MapKey::Kind::Parameter:
            return unbound(k.text);
        }
        auto r = intern_term(v, symbols);
        if (!r) return std::move(r).error();
        entries.emplace_back(key, std::move(*r));
      }
      return Term::map(std::move(entries));
    }
  }
  return make_error(Error::Code::InvalidTerm, "unknown term kind");
}

template <class Table>
Result<ast::Term> term_to_ast(const Term& t, const Table& symbols) {
  switch (t.kind()) {
    case TermKind::Variable: {
      auto s = symbols.lookup(t.as_variable());
      if (!s)
        return make_error(Error::Code::UnknownSymbol, "unknown symbol id " + std::to_string(t.as_variable()));
      return ast::Term::variable(std::string(*s));
    }
    case TermKind::Integer:
      return ast::Term::integer(t.as_integer());
    case TermKind::String: {
      auto s = symbols.lookup(t.as_string());
      if (!s)
        return make_error(Error::Code::UnknownSymbol, "unknown symbol id " + std::to_string(t.as_string()));
      return ast::Term::string(std::string(*s));
    }
    case TermKind::Date:
      return ast::Term::date(t.as_date());
    case TermKind::Bytes:
      return ast::Term::bytes(t.as_bytes());
    case TermKind::Bool:
      return ast::Term::boolean(t.as_bool());
    case TermKind::Null:
      return ast::Term::null();
    case TermKind::Set:
    case TermKind::Array: {
      const auto& src = t.is(TermKind::Set) ? t.as_set() : t.as_array();
      std::vector<ast::Term> items;
      for (const auto& e : src) {
        auto r = term_to_ast(e, symbols);
        if (!r) return std::move(r).error();
        items.push_back(std::move(*r));
      }
      return t.is(TermKind::Set) ? ast::Term::set(std::move(items)) : ast::Term::array(std::move(items));
    }
    case TermKind::Map: {
      std::vector<std::pair<ast::MapKey, ast::Term>> entries;
      for (const auto& [k, v] : t.as_map()) {
        ast::MapKey key;
        if (k.kind == MapKey::Kind::Integer) {
          key = ast::MapKey::from_integer(k.integer);
        } else {
          auto s = symbols.lookup(k.string);
          if (!s)
            return make_error(Error::Code::UnknownSymbol, "unknown symbol id " + std::to_string(k.string));
          key = ast::MapKey::from_string(std::string(*s));
        }
        auto r = term_to_ast(v, symbols);
        if (!r) return std::move(r).error();
        entries.emplace_back(std::move(key), std::move(*r));
      }
      return ast::Term::map(std::move(entries));
    }
  }
  return make_error(Error::Code::InvalidTerm, "unknown term kind");
}

Result<std::vector<Op>> intern_ops(const std::vector<ast::Op>& ops, SymbolTable& symbols) {
  std::vector<Op> out;
  out.reserve(ops.size());
  for (const auto& op : ops) {
    if (const auto* t = std::get_if<ast::Term>(&op.v)) {
      auto r = intern_term(*t, symbols);
      if (!r) return std::move(r).error();
      out.push_back(Op{std::move(*r)});
    } else if (const auto* u = std::get_if<ast::Unary>(&op.v)) {
      Unary x{u->op, 0};
      if (u->op == UnaryOp::Ffi) x.ffi_name = symbols.insert(u->ffi_name);
      out.push_back(Op{x});
    } else if (const auto* b = std::get_if<ast::Binary>(&op.v)) {
      Binary x{b->op, 0};
      if (b->op == BinaryOp::Ffi) x.ffi_name = symbols.insert(b->ffi_name);
      out.push_back(Op{x});
    } else {
      const auto& c = std::get<ast::Closure>(op.v);
      Closure x;
      for (const auto& p : c.params) x.params.push_back(static_cast<uint32_t>(symbols.insert(p)));
      auto body = intern_ops(c.ops, symbols);
      if (!body) return std::move(body).error();
      x.ops = std::move(*body);
      out.push_back(Op{std::move(x)});
    }
  }
  return out;
}

Result<std::vector<ast::Op>> ops_to_ast(const std::vector<Op>& ops, const SymbolTable& symbols) {
  std::vector<ast::Op> out;
  auto name = [&](SymbolIndex id) -> Result<std::string> {
    auto s = symbols.lookup(id);
    if (!s) return make_error(Error::Code::UnknownSymbol, "unknown symbol id " + std::to_string(id));
    return std::string(*s);
  };
  for (const auto& op : ops) {
    if (const auto* t = std::get_if<Term>(&op.v)) {
      auto r = term_to_ast(*t, symbols);
      if (!r) return std::move(r).error();
      out.push_back(ast::Op{std::move(*r)});
    } else if (const auto* u = std::get_if<Unary>(&op.v)) {
      ast::Unary x{u->op, {}};
      if (u->op == UnaryOp::Ffi) {
        auto n = name(u->ffi_name);
        if (!n) return std::move(n).error();
        x.ffi_name = *n;
      }
      out.push_back(ast::Op{x});
    } else if (const auto* b = std::get_if<Binary>(&op.v)) {
      ast::Binary x{b->op, {}};
      if (b->op == BinaryOp::Ffi) {
        auto n = name(b->ffi_name);
        if (!n) return std::move(n).error();
        x.ffi_name = *n;
      }
      out.push_back(ast::Op{x});
    } else {
      const auto& c = std::get<Closure>(op.v);
      ast::Closure x;
      for (uint32_t p : c.params) {
        auto n = name(p);
        if (!n) return std::move(n).error();
        x.params.push_back(*n);
      }
      auto body = ops_to_ast(c.ops, symbols);
      if (!body) return std::move(body).error();
      x.ops = std::move(*body);
      out.push_back(ast::Op{std::move(x)});
    }
  }
  return out;
}

// ------------------------------------------------------------------ version features
struct Features {
  bool scopes = false;
  bool v31 = false;  // bitwise, !==
  bool check_all = false;
  bool v33 = false;
};

bool term_is_v33(const Term& t) {
  if (t.is(TermKind::Null)) return true;
  if (t.is(TermKind::Set)) {
    for (const auto& e : t.as_set())
      if (e.is(TermKind::Null)) return true;
  }
  return false;
}

bool predicate_is_v33(const Predicate& p) {
  for (const auto& t : p.terms)
    if (term_is_v33(t)) return true;
  return false;
}

void scan_expressions(const std::vector<Expression>& exprs, Features& f) {
  for (const auto& e : exprs) {
    for (const auto& op : e.ops) {
      if (const auto* t = std::get_if<Term>(&op.v)) {
        if (term_is_v33(*t)) f.v33 = true;
      } else if (std::holds_alternative<Closure>(op.v)) {
        f.v33 = true;
      } else if (const auto* u = std::get_if<Unary>(&op.v)) {
        if (u->op == UnaryOp::TypeOf || u->op == UnaryOp::Ffi) f.v33 = true;
      } else if (const auto* b = std::get_if<Binary>(&op.v)) {
        switch (b->op) {
          case BinaryOp::BitwiseAnd:
          case BinaryOp::BitwiseOr:
          case BinaryOp::BitwiseXor:
          case BinaryOp::NotEqual:
            f.v31 = true;
            break;
          case BinaryOp::HeterogeneousEqual:
          case BinaryOp::HeterogeneousNotEqual:
          case BinaryOp::LazyAnd:
          case BinaryOp::LazyOr:
          case BinaryOp::All:
          case BinaryOp::Any:
          case BinaryOp::Ffi:
            f.v33 = true;
            break;
          default:
            break;
        }
      }
    }
  }
}

Features features(const Block& block) {
  Features f;
  f.scopes = !block.scopes.empty();
  for (const auto& r : block.rules) {
    if (!r.scopes.empty()) f.scopes = true;
    if (predicate_is_v33(r.head)) f.v33 = true;
    for (const auto& p : r.body)
      if (predicate_is_v33(p)) f.v33 = true;
    scan_expressions(r.expressions, f);
  }
  for (const auto& c : block.checks) {
    if (c.kind == CheckKind::All) f.check_all = true;
    if (c.kind == CheckKind::Reject) f.v33 = true;
    for (const auto& q : c.queries) {
      if (!q.scopes.empty()) f.scopes = true;
      for (const auto& p : q.body)
        if (predicate_is_v33(p)) f.v33 = true;
      scan_expressions(q.expressions, f);
    }
  }
  for (const auto& fact : block.facts)
    if (predicate_is_v33(fact.predicate)) f.v33 = true;
  return f;
}

Error invalid_term(std::string message) {
  return make_error(Error::Code::InvalidTerm, std::move(message));
}

Status validate_ops(const std::vector<Op>& ops) {
  for (const auto& op : ops) {
    if (const auto* t = std::get_if<Term>(&op.v)) {
      if (auto st = validate_term(*t, false); !st) return st;
    } else if (const auto* c = std::get_if<Closure>(&op.v)) {
      if (auto st = validate_ops(c->ops); !st) return st;
    }
  }
  return {};
}

Status validate_rule(const Rule& r) {
  for (const auto& t : r.head.terms)
    if (auto st = validate_term(t, false); !st) return st;
  for (const auto& p : r.body)
    for (const auto& t : p.terms)
      if (auto st = validate_term(t, false); !st) return st;
  for (const auto& e : r.expressions)
    if (auto st = validate_ops(e.ops); !st) return st;
  return {};
}

}  // namespace

// -------------------------------------------------------------------------- intern

Result<Term> intern(const ast::Term& term, SymbolTable& symbols) {
  return intern_term(term, symbols);
}
Result<Term> intern(const ast::Term& term, TemporarySymbols& symbols) {
  return intern_term(term, symbols);
}

Result<Predicate> intern(const ast::Predicate& predicate, SymbolTable& symbols) {
  Predicate p;
  p.name = symbols.insert(predicate.name);
  for (const auto& t : predicate.terms) {
    auto r = intern_term(t, symbols);
    if (!r) return std::move(r).error();
    p.terms.push_back(std::move(*r));
  }
  return p;
}

Result<Fact> intern(const ast::Fact& fact, SymbolTable& symbols) {
  auto p = intern(fact.predicate, symbols);
  if (!p) return std::move(p).error();
  Fact f{std::move(*p)};
  for (const auto& t : f.predicate.terms) {
    if (t.contains_variable()) return invalid_term("variables are not allowed in facts");
  }
  return f;
}

Result<Expression> intern(const ast::Expression& expression, SymbolTable& symbols) {
  auto ops = intern_ops(expression.ops, symbols);
  if (!ops) return std::move(ops).error();
  return Expression{std::move(*ops)};
}

Result<Scope> intern(const ast::Scope& scope, SymbolTable& symbols) {
  switch (scope.kind) {
    case ast::Scope::Kind::Authority:
      return Scope{Scope::Kind::Authority, 0};
    case ast::Scope::Kind::Previous:
      return Scope{Scope::Kind::Previous, 0};
    case ast::Scope::Kind::PublicKey:
      return Scope{Scope::Kind::PublicKey, symbols.insert_key(scope.key)};
    case ast::Scope::Kind::Parameter:
      return unbound(scope.parameter);
  }
  return make_error(Error::Code::InvalidTerm, "unknown scope kind");
}

Result<Rule> intern(const ast::Rule& rule, SymbolTable& symbols) {
  Rule r;
  auto head = intern(rule.head, symbols);
  if (!head) return std::move(head).error();
  r.head = std::move(*head);
  for (const auto& p : rule.body) {
    auto x = intern(p, symbols);
    if (!x) return std::move(x).error();
    r.body.push_back(std::move(*x));
  }
  for (const auto& e : rule.expressions) {
    auto x = intern(e, symbols);
    if (!x) return std::move(x).error();
    r.expressions.push_back(std::move(*x));
  }
  for (const auto& s : rule.scopes) {
    auto x = intern(s, symbols);
    if (!x) return std::move(x).error();
    r.scopes.push_back(*x);
  }
  return r;
}

Result<Check> intern(const ast::Check& check, SymbolTable& symbols) {
  Check c;
  c.kind = check.kind;
  for (const auto& q : check.queries) {
    auto r = intern(q, symbols);
    if (!r) return std::move(r).error();
    c.queries.push_back(std::move(*r));
  }
  return c;
}

Result<Policy> intern(const ast::Policy& policy, SymbolTable& symbols) {
  Policy p;
  p.kind = policy.kind;
  for (const auto& q : policy.queries) {
    auto r = intern(q, symbols);
    if (!r) return std::move(r).error();
    p.queries.push_back(std::move(*r));
  }
  return p;
}

Result<Block> build_block(const ast::Source& source, const SymbolTable& base,
                          std::optional<std::string> context) {
  if (!source.policies.empty()) {
    return make_error(Error::Code::InvalidRule, "a block cannot contain policies (allow if / deny if)");
  }
  SymbolTable table = base;
  const std::size_t sym_start = table.size();
  const std::size_t key_start = table.keys().size();
  Block block;
  block.context = std::move(context);
  for (const auto& f : source.facts) {
    auto x = intern(f, table);
    if (!x) return std::move(x).error();
    block.facts.push_back(std::move(*x));
  }
  for (const auto& r : source.rules) {
    auto x = intern(r, table);
    if (!x) return std::move(x).error();
    block.rules.push_back(std::move(*x));
  }
  for (const auto& c : source.checks) {
    auto x = intern(c, table);
    if (!x) return std::move(x).error();
    block.checks.push_back(std::move(*x));
  }
  for (const auto& s : source.scopes) {
    auto x = intern(s, table);
    if (!x) return std::move(x).error();
    block.scopes.push_back(*x);
  }
  block.symbols = table.symbols_since(sym_start);
  block.public_keys = table.keys_since(key_start);
  block.version = minimum_version(block);
  return block;
}

// -------------------------------------------------------------------------- to_ast

Result<ast::Term> to_ast(const Term& term, const SymbolTable& symbols) {
  return term_to_ast(term, symbols);
}
Result<ast::Term> to_ast(const Term& term, const TemporarySymbols& symbols) {
  return term_to_ast(term, symbols);
}

Result<ast::Predicate> to_ast(const Predicate& predicate, const SymbolTable& symbols) {
  ast::Predicate p;
  auto name = symbols.lookup(predicate.name);
  if (!name)
    return make_error(Error::Code::UnknownSymbol, "unknown symbol id " + std::to_string(predicate.name));
  p.name = std::string(*name);
  for (const auto& t : predicate.terms) {
    auto r = term_to_ast(t, symbols);
    if (!r) return std::move(r).error();
    p.terms.push_back(std::move(*r));
  }
  return p;
}

Result<ast::Fact> to_ast(const Fact& fact, const SymbolTable& symbols) {
  auto p = to_ast(fact.predicate, symbols);
  if (!p) return std::move(p).error();
  return ast::Fact{std::move(*p)};
}

Result<ast::Expression> to_ast(const Expression& expression, const SymbolTable& symbols) {
  auto ops = ops_to_ast(expression.ops, symbols);
  if (!ops) return std::move(ops).error();
  return ast::Expression{std::move(*ops)};
}

Result<ast::Scope> to_ast(const Scope& scope, const SymbolTable& symbols) {
  ast::Scope s;
  switch (scope.kind) {
    case Scope::Kind::Authority:
      s.kind = ast::Scope::Kind::Authority;
      break;
    case Scope::Kind::Previous:
      s.kind = ast::Scope::Kind::Previous;
      break;
    case Scope::Kind::PublicKey: {
      const PublicKey* k = symbols.key(scope.public_key);
      if (!k) {
        return make_error(Error::Code::UnknownPublicKey,
                          "unknown public key index " + std::to_string(scope.public_key));
      }
      s.kind = ast::Scope::Kind::PublicKey;
      s.key = *k;
      break;
    }
  }
  return s;
}

Result<ast::Rule> to_ast(const Rule& rule, const SymbolTable& symbols) {
  ast::Rule r;
  auto head = to_ast(rule.head, symbols);
  if (!head) return std::move(head).error();
  r.head = std::move(*head);
  for (const auto& p : rule.body) {
    auto x = to_ast(p, symbols);
    if (!x) return std::move(x).error();
    r.body.push_back(std::move(*x));
  }
  for (const auto& e : rule.expressions) {
    auto x = to_ast(e, symbols);
    if (!x) return std::move(x).error();
    r.expressions.push_back(std::move(*x));
  }
  for (const auto& s : rule.scopes) {
    auto x = to_ast(s, symbols);
    if (!x) return std::move(x).error();
    r.scopes.push_back(std::move(*x));
  }
  return r;
}

Result<ast::Check> to_ast(const Check& check, const SymbolTable& symbols) {
  ast::Check c;
  c.kind = check.kind;
  for (const auto& q : check.queries) {
    auto r = to_ast(q, symbols);
    if (!r) return std::move(r).error();
    c.queries.push_back(std::move(*r));
  }
  return c;
}

Result<ast::Policy> to_ast(const Policy& policy, const SymbolTable& symbols) {
  ast::Policy p;
  p.kind = policy.kind;
  for (const auto& q : policy.queries) {
    auto r = to_ast(q, symbols);
    if (!r) return std::move(r).error();
    p.queries.push_back(std::move(*r));
  }
  return p;
}

Result<Fact> translate(const Fact& fact, const SymbolTable& from, SymbolTable& to) {
  auto a = to_ast(fact, from);
  if (!a) return std::move(a).error();
  return intern(*a, to);
}

Result<Rule> translate(const Rule& rule, const SymbolTable& from, SymbolTable& to) {
  auto a = to_ast(rule, from);
  if (!a) return std::move(a).error();
  return intern(*a, to);
}

Result<Check> translate(const Check& check, const SymbolTable& from, SymbolTable& to) {
  auto a = to_ast(check, from);
  if (!a) return std::move(a).error();
  return intern(*a, to);
}

// ------------------------------------------------------------------------ versions

uint32_t minimum_version(const Block& block) {
  const Features f = features(block);
  if (f.v33) return 6;
  if (f.scopes || f.v31 || f.check_all) return 4;
  return 3;
}

Status check_version(const Block& block, uint32_t version) {
  if (version < kMinBlockVersion || version > kMaxBlockVersion) {
    return make_error(Error::Code::Version,
                      "unsupported block version " + std::to_string(version) + " (supported: 3 to 6)");
  }
  const Features f = features(block);
  if (version < 4) {
    if (f.scopes) return make_error(Error::Code::Version, "scopes are only supported in datalog v3.1+");
    if (f.v31) {
      return make_error(Error::Code::Version,
                        "bitwise operators and !== are only supported in datalog v3.1+");
    }
    if (f.check_all) return make_error(Error::Code::Version, "check all is only supported in datalog v3.1+");
  }
  if (version < 6 && f.v33) {
    return make_error(Error::Code::Version,
                      "reject if, null, closures, ==/!=, .type() and extern calls are only supported "
                      "in datalog v3.3+");
  }
  return {};
}

// ---------------------------------------------------------------------- validation

Status validate_term(const Term& term, bool in_fact) {
  switch (term.kind()) {
    case TermKind::Variable:
      if (in_fact) return invalid_term("variables are not allowed in facts");
      return {};
    case TermKind::Set: {
      int kind = -1;
      for (const auto& e : term.as_set()) {
        if (e.is(TermKind::Variable)) return invalid_term("sets cannot contain variables");
        if (e.is(TermKind::Set)) return invalid_term("sets cannot contain other sets");
        const int k = static_cast<int>(e.kind());
        if (kind >= 0 && k != kind) return invalid_term("set elements must have the same type");
        kind = k;
        if (auto st = validate_term(e, true); !st) return st;
      }
      return {};
    }
    case TermKind::Array:
      for (const auto& e : term.as_array())
        if (auto st = validate_term(e, in_fact); !st) return st;
      return {};
    case TermKind::Map:
      for (const auto& e : term.as_map())
        if (auto st = validate_term(e.second, in_fact); !st) return st;
      return {};
    default:
      return {};
  }
}

Status validate_block(const Block& block) {
  for (const auto& f : block.facts)
    for (const auto& t : f.predicate.terms)
      if (auto st = validate_term(t, true); !st) return st;
  for (const auto& r : block.rules)
    if (auto st = validate_rule(r); !st) return st;
  for (const auto& c : block.checks)
    for (const auto& q : c.queries)
      if (auto st = validate_rule(q); !st) return st;
  return {};
}

bool head_variables_bound(const Rule& rule) {
  std::set<uint32_t> head;
  for (const auto& t : rule.head.terms)
    if (t.is(TermKind::Variable)) head.insert(t.as_variable());
  for (const auto& p : rule.body)
    for (const auto& t : p.terms)
      if (t.is(TermKind::Variable)) head.erase(t.as_variable());
  return head.empty();
}

}  // namespace biscuit::datalog
