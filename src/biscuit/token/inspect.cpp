#include "biscuit/token/inspect.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>

namespace biscuit {
namespace {

using datalog::Binary;
using datalog::BinaryOp;
using datalog::Term;
using datalog::TermKind;

// A Datalog date (seconds since the epoch, unsigned) as an instant; dates past what the
// clock can represent saturate.
std::chrono::sys_seconds instant(uint64_t seconds) {
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<std::chrono::seconds::rep>::max());
  return std::chrono::sys_seconds(std::chrono::seconds(static_cast<int64_t>(std::min(seconds, kMax))));
}

// `$t <op> D` on the variable `time_var`, as the three ops [$t, D, op] or [D, $t, op'].
std::optional<uint64_t> bound(const datalog::Expression& e, uint32_t time_var, bool upper) {
  if (e.ops.size() != 3) return std::nullopt;
  const auto* a = std::get_if<Term>(&e.ops[0].v);
  const auto* b = std::get_if<Term>(&e.ops[1].v);
  const auto* op = std::get_if<Binary>(&e.ops[2].v);
  if (!a || !b || !op) return std::nullopt;
  auto is_time = [&](const Term* t) { return t->is(TermKind::Variable) && t->as_variable() == time_var; };
  const bool less = op->op == BinaryOp::LessOrEqual || op->op == BinaryOp::LessThan;
  const bool greater = op->op == BinaryOp::GreaterOrEqual || op->op == BinaryOp::GreaterThan;
  if (is_time(a) && b->is(TermKind::Date) && (upper ? less : greater)) return b->as_date();
  if (a->is(TermKind::Date) && is_time(b) && (upper ? greater : less)) return a->as_date();
  return std::nullopt;
}

TimeBounds time_bounds(const datalog::Check& check, const datalog::SymbolTable& symbols) {
  TimeBounds out;
  // The tightest bound of one query (upper: the earliest; lower: the latest).
  auto query_bound = [&](const datalog::Rule& query, bool upper) -> std::optional<uint64_t> {
    std::optional<uint64_t> found;
    for (const auto& p : query.body) {
      auto name = symbols.lookup(p.name);
      if (!name || *name != "time" || p.terms.size() != 1 || !p.terms[0].is(TermKind::Variable)) continue;
      out.reads_time = true;
      for (const auto& e : query.expressions) {
        auto d = bound(e, p.terms[0].as_variable(), upper);
        if (d && (!found || (upper ? *d < *found : *d > *found))) found = d;
      }
    }
    return found;
  };
  if (check.kind == CheckKind::Reject || check.queries.empty()) {
    for (const auto& query : check.queries) (void)query_bound(query, true);
    return out;
  }
  for (bool upper : {true, false}) {
    std::optional<uint64_t> loosest;
    bool every_query_bounded = true;
    for (const auto& query : check.queries) {
      auto d = query_bound(query, upper);
      if (!d) {
        every_query_bounded = false;
        continue;  // still records reads_time
      }
      if (!loosest || (upper ? *d > *loosest : *d < *loosest)) loosest = d;
    }
    if (every_query_bounded && loosest) (upper ? out.not_after : out.not_before) = instant(*loosest);
  }
  return out;
}

}  // namespace

std::optional<CheckSummary> describe_check(const Biscuit& token, std::size_t block, std::size_t index) {
  if (block >= token.block_count() || index >= token.block(block).checks.size()) return std::nullopt;
  const datalog::Check& check = token.block(block).checks[index];
  const datalog::SymbolTable& symbols = token.block_symbols(block);
  CheckSummary out;
  out.kind = check.kind;
  std::set<std::string> names;
  for (const auto& q : check.queries) {
    for (const auto& p : q.body) {
      if (auto name = symbols.lookup(p.name)) names.emplace(*name);
    }
  }
  out.predicates.assign(names.begin(), names.end());
  out.time = time_bounds(check, symbols);
  return out;
}

std::optional<std::chrono::sys_seconds> block_expiry(const Biscuit& token, std::size_t block) {
  if (block >= token.block_count()) return std::nullopt;
  std::optional<std::chrono::sys_seconds> earliest;
  for (const auto& check : token.block(block).checks) {
    auto b = time_bounds(check, token.block_symbols(block));
    if (b.not_after && (!earliest || *b.not_after < *earliest)) earliest = b.not_after;
  }
  return earliest;
}

bool some_check_pins(const Biscuit& token, std::span<const std::string_view> predicates) {
  auto wanted = [&](std::string_view name) {
    return std::find(predicates.begin(), predicates.end(), name) != predicates.end();
  };
  for (std::size_t i = 0; i < token.block_count(); ++i) {
    const auto& symbols = token.block_symbols(i);
    for (const auto& check : token.block(i).checks) {
      if (check.kind != CheckKind::One || check.queries.empty()) continue;
      bool every_query_pins = true;
      for (const auto& query : check.queries) {
        bool pins = false;
        for (const auto& p : query.body) {
          auto name = symbols.lookup(p.name);
          if (!name || !wanted(*name) || p.terms.empty()) continue;
          pins |= std::none_of(p.terms.begin(), p.terms.end(),
                               [](const Term& t) { return t.is(TermKind::Variable); });
        }
        every_query_pins &= pins;
      }
      if (every_query_pins) return true;
    }
  }
  return false;
}

BlockAssertions block_assertions(const Biscuit& token, std::size_t block) {
  BlockAssertions out;
  if (block >= token.block_count()) return out;
  const auto& b = token.block(block);
  const auto& symbols = token.block_symbols(block);
  std::set<std::string_view> seen_facts, seen_heads;
  auto add = [&](std::vector<std::string>& list, std::set<std::string_view>& seen, datalog::SymbolIndex id) {
    auto name = symbols.lookup(id);
    if (name && seen.insert(*name).second) list.emplace_back(*name);
  };
  for (const auto& fact : b.facts) add(out.facts, seen_facts, fact.predicate.name);
  for (const auto& rule : b.rules) add(out.rule_heads, seen_heads, rule.head.name);
  return out;
}

}  // namespace biscuit
