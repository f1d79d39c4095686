#include "biscuit/datalog/ast.h"

#include <algorithm>
#include <set>

namespace biscuit::datalog::ast {

namespace {

template <class T>
int cmp3(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int compare_vec(const std::vector<Term>& a, const std::vector<Term>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (int c = compare(a[i], b[i]); c != 0) return c;
  }
  return cmp3(a.size(), b.size());
}

int compare_key(const MapKey& a, const MapKey& b) {
  if (a.kind != b.kind) return a.kind < b.kind ? -1 : 1;
  return a.kind == MapKey::Kind::Integer ? cmp3(a.integer, b.integer) : a.text.compare(b.text);
}

// ----------------------------------------------------------------- parameters
struct Substituter {
  const Params& params;
  std::set<std::string> unbound;
  std::optional<Error> error;

  void invalid(std::string message) {
    if (!error) error = make_error(Error::Code::InvalidParameter, std::move(message));
  }

  static bool contains_variable(const Term& t) {
    switch (t.kind()) {
      case TermKind::Variable:
        return true;
      case TermKind::Set:
        return std::any_of(t.as_set().begin(), t.as_set().end(), contains_variable);
      case TermKind::Array:
        return std::any_of(t.as_array().begin(), t.as_array().end(), contains_variable);
      case TermKind::Map:
        return std::any_of(t.as_map().begin(), t.as_map().end(),
                           [](const auto& e) { return contains_variable(e.second); });
      default:
        return false;
    }
  }

  void term(Term& t) {
    switch (t.kind()) {
      case TermKind::Parameter: {
        const std::string name = t.as_parameter();
        auto it = params.terms.find(name);
        if (it == params.terms.end()) {
          unbound.insert(name);
          return;
        }
        if (contains_variable(it->second) || it->second.is(TermKind::Parameter)) {
          invalid("the value of parameter {" + name + "} is a variable or parameter; pass a value");
          return;
        }
        t = it->second;
        return;
      }
      case TermKind::Set: {
        std::vector<Term> items = t.as_set();
        bool changed = false;
        for (auto& e : items) {
          if (e.is(TermKind::Parameter)) changed = true;
          term(e);
        }
        if (!changed) return;
        int kind = -1;
        for (const auto& e : items) {
          if (e.is(TermKind::Set)) invalid("a parameter would put a set inside a set");
          if (e.is(TermKind::Parameter)) continue;
          const int k = static_cast<int>(e.kind());
          if (kind >= 0 && k != kind) invalid("a parameter would make set elements of different types");
          kind = k;
        }
        t = Term::set(std::move(items));
        return;
      }
      case TermKind::Array: {
        std::vector<Term> items = t.as_array();
        for (auto& e : items) term(e);
        t = Term::array(std::move(items));
        return;
      }
      case TermKind::Map: {
        std::vector<std::pair<MapKey, Term>> entries = t.as_map();
        for (auto& [k, v] : entries) {
          if (k.kind == MapKey::Kind::Parameter) {
            auto it = params.terms.find(k.text);
            if (it == params.terms.end()) {
              unbound.insert(k.text);
            } else if (it->second.is(TermKind::Integer)) {
              k = MapKey::from_integer(it->second.as_integer());
            } else if (it->second.is(TermKind::String)) {
              k = MapKey::from_string(it->second.as_string());
            } else {
              invalid("map key parameter {" + k.text + "} must be an integer or a string");
            }
          }
          term(v);
        }
        t = Term::map(std::move(entries));
        return;
      }
      default:
        return;
    }
  }

  void ops(std::vector<Op>& list) {
    for (auto& op : list) {
      if (auto* t = std::get_if<Term>(&op.v)) {
        term(*t);
      } else if (auto* c = std::get_if<Closure>(&op.v)) {
        ops(c->ops);
      }
    }
  }

  void predicate(Predicate& p) {
    for (auto& t : p.terms) term(t);
  }

  void scope(Scope& s) {
    if (s.kind != Scope::Kind::Parameter) return;
    auto it = params.keys.find(s.parameter);
    if (it == params.keys.end()) {
      unbound.insert(s.parameter);
      return;
    }
    s.kind = Scope::Kind::PublicKey;
    s.key = it->second;
    s.parameter.clear();
  }

  void rule(Rule& r) {
    predicate(r.head);
    for (auto& p : r.body) predicate(p);
    for (auto& e : r.expressions) ops(e.ops);
    for (auto& s : r.scopes) scope(s);
  }

  Status finish() {
    if (error) return *error;
    if (!unbound.empty()) {
      std::string names;
      for (const auto& n : unbound) {
        if (!names.empty()) names += ", ";
        names += "{" + n + "}";
      }
      return make_error(Error::Code::UnboundParameter, "unbound parameter(s): " + names);
    }
    return {};
  }
};

Status check_fact_variables(const Fact& f) {
  for (const auto& t : f.predicate.terms) {
    if (Substituter::contains_variable(t)) {
      return make_error(Error::Code::InvalidTerm, "variables are not allowed in facts");
    }
  }
  return {};
}

void collect_params(const Term& t, std::set<std::string>& out) {
  switch (t.kind()) {
    case TermKind::Parameter:
      out.insert(t.as_parameter());
      return;
    case TermKind::Set:
      for (const auto& e : t.as_set()) collect_params(e, out);
      return;
    case TermKind::Array:
      for (const auto& e : t.as_array()) collect_params(e, out);
      return;
    case TermKind::Map:
      for (const auto& [k, v] : t.as_map()) {
        if (k.kind == MapKey::Kind::Parameter) out.insert(k.text);
        collect_params(v, out);
      }
      return;
    default:
      return;
  }
}

void collect_ops(const std::vector<Op>& ops, std::set<std::string>& out) {
  for (const auto& op : ops) {
    if (const auto* t = std::get_if<Term>(&op.v)) collect_params(*t, out);
    if (const auto* c = std::get_if<Closure>(&op.v)) collect_ops(c->ops, out);
  }
}

void collect_rule(const Rule& r, std::set<std::string>& out) {
  for (const auto& t : r.head.terms) collect_params(t, out);
  for (const auto& p : r.body)
    for (const auto& t : p.terms) collect_params(t, out);
  for (const auto& e : r.expressions) collect_ops(e.ops, out);
  for (const auto& s : r.scopes)
    if (s.kind == Scope::Kind::Parameter) out.insert(s.parameter);
}

}  // namespace

Term Term::set(std::vector<Term> items) {
  std::sort(items.begin(), items.end(), [](const Term& a, const Term& b) { return compare(a, b) < 0; });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const Term& a, const Term& b) { return compare(a, b) == 0; }),
              items.end());
  return Term{detail::Set{std::move(items)}};
}

Term Term::map(std::vector<std::pair<MapKey, Term>> entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<MapKey, Term>> out;
  out.reserve(entries.size());
  for (auto& e : entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  return Term{detail::Map{std::move(out)}};
}

int compare(const Term& a, const Term& b) {
  if (a.v.index() != b.v.index()) return a.v.index() < b.v.index() ? -1 : 1;
  switch (a.kind()) {
    case TermKind::Variable:
      return a.as_variable().compare(b.as_variable());
    case TermKind::Integer:
      return cmp3(a.as_integer(), b.as_integer());
    case TermKind::String:
      return a.as_string().compare(b.as_string());
    case TermKind::Date:
      return cmp3(a.as_date(), b.as_date());
    case TermKind::Bytes:
      return cmp3(a.as_bytes(), b.as_bytes());
    case TermKind::Bool:
      return cmp3(a.as_bool(), b.as_bool());
    case TermKind::Set:
      return compare_vec(a.as_set(), b.as_set());
    case TermKind::Parameter:
      return a.as_parameter().compare(b.as_parameter());
    case TermKind::Null:
      return 0;
    case TermKind::Array:
      return compare_vec(a.as_array(), b.as_array());
    case TermKind::Map: {
      const auto& x = a.as_map();
      const auto& y = b.as_map();
      const std::size_t n = std::min(x.size(), y.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (int c = compare_key(x[i].first, y[i].first); c != 0) return c < 0 ? -1 : 1;
        if (int c = compare(x[i].second, y[i].second); c != 0) return c;
      }
      return cmp3(x.size(), y.size());
    }
  }
  return 0;
}

bool operator==(const Closure& a, const Closure& b) {
  return a.params == b.params && a.ops == b.ops;
}

bool operator==(const Op& a, const Op& b) {
  if (a.v.index() != b.v.index()) return false;
  switch (a.v.index()) {
    case 0:
      return std::get<0>(a.v) == std::get<0>(b.v);
    case 1:
      return std::get<1>(a.v) == std::get<1>(b.v);
    case 2:
      return std::get<2>(a.v) == std::get<2>(b.v);
    default:
      return std::get<3>(a.v) == std::get<3>(b.v);
  }
}

Status apply_parameters(Source& source, const Params& params) {
  Substituter s{params, {}, {}};
  for (auto& sc : source.scopes) s.scope(sc);
  for (auto& f : source.facts) s.predicate(f.predicate);
  for (auto& r : source.rules) s.rule(r);
  for (auto& c : source.checks)
    for (auto& q : c.queries) s.rule(q);
  for (auto& p : source.policies)
    for (auto& q : p.queries) s.rule(q);
  if (auto st = s.finish(); !st) return st;
  for (const auto& f : source.facts) {
    if (auto st = check_fact_variables(f); !st) return st;
  }
  return {};
}

Status apply_parameters(Fact& fact, const Params& params) {
  Substituter s{params, {}, {}};
  s.predicate(fact.predicate);
  if (auto st = s.finish(); !st) return st;
  return check_fact_variables(fact);
}

Status apply_parameters(Rule& rule, const Params& params) {
  Substituter s{params, {}, {}};
  s.rule(rule);
  return s.finish();
}

Status apply_parameters(Check& check, const Params& params) {
  Substituter s{params, {}, {}};
  for (auto& q : check.queries) s.rule(q);
  return s.finish();
}

Status apply_parameters(Policy& policy, const Params& params) {
  Substituter s{params, {}, {}};
  for (auto& q : policy.queries) s.rule(q);
  return s.finish();
}

std::vector<std::string> unbound_parameters(const Source& source) {
  std::set<std::string> out;
  for (const auto& sc : source.scopes)
    if (sc.kind == Scope::Kind::Parameter) out.insert(sc.parameter);
  for (const auto& f : source.facts)
    for (const auto& t : f.predicate.terms) collect_params(t, out);
  for (const auto& r : source.rules) collect_rule(r, out);
  for (const auto& c : source.checks)
    for (const auto& q : c.queries) collect_rule(q, out);
  for (const auto& p : source.policies)
    for (const auto& q : p.queries) collect_rule(q, out);
  return {out.begin(), out.end()};
}

Status validate_variables(const Rule& rule) {
  std::set<std::string> head;
  for (const auto& t : rule.head.terms) {
    if (t.is(TermKind::Variable)) head.insert(t.as_variable());
  }
  for (const auto& p : rule.body) {
    for (const auto& t : p.terms) {
      if (t.is(TermKind::Variable)) head.erase(t.as_variable());
    }
  }
  if (head.empty()) return {};
  std::string names;
  for (const auto& n : head) {
    if (!names.empty()) names += ", ";
    names += "$" + n;
  }
  return make_error(Error::Code::InvalidRule,
                    "rule head contains variables that are not used in predicates of the "
                    "rule's body: " +
                        names);
}

}  // namespace biscuit::datalog::ast
