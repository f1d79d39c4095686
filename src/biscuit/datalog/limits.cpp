#include "biscuit/datalog/limits.h"

#include <algorithm>
#include <limits>
#include <string>

namespace biscuit::datalog {

SizeLimits SizeLimits::unlimited() {
  constexpr std::size_t kMax = std::numeric_limits<std::size_t>::max();
  return SizeLimits{kMax, kMax, kMax, kMax, kMax, kMax, kMax, kMax, kMax};
}

namespace {

std::string above(std::size_t value, const char* unit, std::size_t limit) {
  return std::to_string(value) + " " + unit + ", above the limit of " + std::to_string(limit);
}

Status fail(std::string message) {
  return make_error(Error::Code::LimitExceeded, std::move(message));
}

// "rule 3: " + the inner message; only built on failure.
Status within(Status st, const char* what, std::size_t index) {
  if (st) return st;
  Error e = std::move(st).error();
  e.message = std::string(what) + " " + std::to_string(index) + ": " + e.message;
  return e;
}

// Walks facts, rules, checks and policies at either level (interned or text), checking every
// literal and expression and counting terms.
class Walker {
 public:
  explicit Walker(const SizeLimits& limits) : l_(limits) {}

  std::size_t terms() const { return terms_; }

  Status term(const Term& t) {
    ++terms_;
    switch (t.kind()) {
      case TermKind::Bytes:
        return bytes(t.as_bytes().size());
      case TermKind::Set:
        return elements(t.as_set());
      case TermKind::Array:
        return elements(t.as_array());
      case TermKind::Map: {
        if (auto st = collection(t.as_map().size()); !st) return st;
        for (const auto& [key, value] : t.as_map()) {
          if (auto st = term(value); !st) return st;
        }
        return {};
      }
      default:
        return {};
    }
  }

  Status term(const ast::Term& t) {
    ++terms_;
    switch (t.kind()) {
      case ast::TermKind::String:
        return string(t.as_string().size());
      case ast::TermKind::Bytes:
        return bytes(t.as_bytes().size());
      case ast::TermKind::Set:
        return elements(t.as_set());
      case ast::TermKind::Array:
        return elements(t.as_array());
      case ast::TermKind::Map: {
        if (auto st = collection(t.as_map().size()); !st) return st;
        for (const auto& [key, value] : t.as_map()) {
          if (key.kind == ast::MapKey::Kind::String) {
            if (auto st = string(key.text.size()); !st) return st;
          }
          if (auto st = term(value); !st) return st;
        }
        return {};
      }
      default:
        return {};
    }
  }

  template <class Predicate>
  Status predicate(const Predicate& p) {
    for (const auto& t : p.terms) {
      if (auto st = term(t); !st) return st;
    }
    return {};
  }

  template <class Op>
  Status expression(const std::vector<Op>& ops) {
    std::size_t count = 0;
    std::size_t deepest = 0;
    if (auto st = walk_ops(ops, 0, count, deepest); !st) return st;
    if (count > l_.max_expression_ops) return fail(above(count, "operations", l_.max_expression_ops));
    return {};
  }

  template <class Rule>
  Status rule(const Rule& r) {
    if (auto st = predicate(r.head); !st) return st;
    for (const auto& p : r.body) {
      if (auto st = predicate(p); !st) return st;
    }
    for (std::size_t i = 0; i < r.expressions.size(); ++i) {
      if (auto st = within(expression(r.expressions[i].ops), "expression", i); !st) return st;
    }
    return {};
  }

  template <class Queries>  // a check or a policy
  Status queries(const Queries& q) {
    for (std::size_t i = 0; i < q.queries.size(); ++i) {
      // The query index is only worth naming when there are several (`or`).
      Status st = rule(q.queries[i]);
      if (!st) return q.queries.size() > 1 ? within(std::move(st), "query", i) : st;
    }
    return {};
  }

 private:
  Status string(std::size_t size) const {
    if (size > l_.max_string_bytes) return fail("string of " + above(size, "bytes", l_.max_string_bytes));
    return {};
  }
  Status bytes(std::size_t size) const {
    if (size > l_.max_bytes_length)
      return fail("bytes value of " + above(size, "bytes", l_.max_bytes_length));
    return {};
  }
  Status collection(std::size_t size) const {
    if (size > l_.max_collection_elements) {
      return fail("collection of " + above(size, "elements", l_.max_collection_elements));
    }
    return {};
  }
  template <class T>
  Status elements(const std::vector<T>& items) {
    if (auto st = collection(items.size()); !st) return st;
    for (const auto& e : items) {
      if (auto st = term(e); !st) return st;
    }
    return {};
  }

  // Counts every operation (closure bodies included) and tracks the stack height the
  // evaluator would reach: a value or a closure pushes, a binary operator pops two and
  // pushes one, a unary one replaces the top. A closure body runs on its own stack, counted
  // on top of the height at which the closure was pushed. Stops at the first depth beyond
  // the limit, so a hostile nesting never recurses deeper than the limit.
  template <class Op>
  Status walk_ops(const std::vector<Op>& ops, std::size_t base, std::size_t& count, std::size_t& deepest) {
    std::size_t height = 0;
    for (const auto& op : ops) {
      ++count;
      switch (op.v.index()) {
        case 0:  // value
          if (auto st = term(std::get<0>(op.v)); !st) return st;
          ++height;
          break;
        case 1:  // unary
          break;
        case 2:  // binary
          if (height > 0) --height;
          break;
        default:  // closure
          ++height;
          if (base + height > l_.max_expression_depth) break;
          if (auto st = walk_ops(std::get<3>(op.v).ops, base + height, count, deepest); !st) return st;
          break;
      }
      deepest = std::max(deepest, base + height);
      if (deepest > l_.max_expression_depth) {
        return fail("evaluation stack " + above(deepest, "deep", l_.max_expression_depth));
      }
    }
    return {};
  }

  const SizeLimits& l_;
  std::size_t terms_ = 0;
};

Status count(std::size_t n, const char* what, std::size_t limit) {
  if (n > limit) return fail(above(n, what, limit));
  return {};
}

template <class Source>
Status walk_block(Walker& w, const Source& s) {
  for (std::size_t i = 0; i < s.facts.size(); ++i) {
    if (auto st = within(w.predicate(s.facts[i].predicate), "fact", i); !st) return st;
  }
  for (std::size_t i = 0; i < s.rules.size(); ++i) {
    if (auto st = within(w.rule(s.rules[i]), "rule", i); !st) return st;
  }
  for (std::size_t i = 0; i < s.checks.size(); ++i) {
    if (auto st = within(w.queries(s.checks[i]), "check", i); !st) return st;
  }
  return {};
}

}  // namespace

Status check_limits(const Block& block, const SizeLimits& limits) {
  if (auto st = count(block.facts.size(), "facts", limits.max_block_facts); !st) return st;
  if (auto st = count(block.rules.size(), "rules", limits.max_block_rules); !st) return st;
  if (auto st = count(block.checks.size(), "checks", limits.max_block_checks); !st) return st;
  for (std::size_t i = 0; i < block.symbols.size(); ++i) {
    const std::size_t n = block.symbols[i].size();
    if (n > limits.max_string_bytes) {
      return within(fail("string of " + above(n, "bytes", limits.max_string_bytes)), "symbol", i);
    }
  }
  Walker w(limits);
  if (auto st = walk_block(w, block); !st) return st;
  return count(w.terms(), "terms", limits.max_block_terms);
}

Status check_limits(const ast::Source& source, const SizeLimits& limits, bool is_block) {
  if (is_block) {
    if (auto st = count(source.facts.size(), "facts", limits.max_block_facts); !st) return st;
    if (auto st = count(source.rules.size(), "rules", limits.max_block_rules); !st) return st;
    if (auto st = count(source.checks.size(), "checks", limits.max_block_checks); !st) return st;
  }
  Walker w(limits);
  if (auto st = walk_block(w, source); !st) return st;
  for (std::size_t i = 0; i < source.policies.size(); ++i) {
    if (auto st = within(w.queries(source.policies[i]), "policy", i); !st) return st;
  }
  if (is_block) return count(w.terms(), "terms", limits.max_block_terms);
  return {};
}

Status check_limits(const ast::Fact& fact, const SizeLimits& limits) {
  Walker w(limits);
  return w.predicate(fact.predicate);
}

Status check_limits(const ast::Rule& rule, const SizeLimits& limits) {
  Walker w(limits);
  return w.rule(rule);
}

Status check_limits(const ast::Check& check, const SizeLimits& limits) {
  Walker w(limits);
  return w.queries(check);
}

Status check_limits(const ast::Policy& policy, const SizeLimits& limits) {
  Walker w(limits);
  return w.queries(policy);
}

Status check_limits(const ast::Expression& expression, const SizeLimits& limits) {
  Walker w(limits);
  return w.expression(expression.ops);
}

Status check_limits(const ast::Term& term, const SizeLimits& limits) {
  Walker w(limits);
  return w.term(term);
}

}  // namespace biscuit::datalog
