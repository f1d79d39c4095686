// The Datalog engine: a world of facts with origins, rules with trusted origins, a
// semi-naive fixpoint under run limits, and the queries checks and policies use.
//
// Origins: every fact carries the set of blocks it comes from (block index; the authorizer
// is kAuthorizerBlock). A fact derived by a rule of block b from facts f1..fn has origin
// {b} ∪ origin(f1) ∪ ... ∪ origin(fn). A rule/check/policy sees a fact only if the fact's
// origin is a subset of its TrustedOrigins. The same fact with two different origins is
// stored twice (as in the reference).
//
// Limits (always enforced, reference semantics and order): after each iteration that added
// facts, TooManyIterations when the iteration count reaches max_iterations, then
// TooManyFacts when the world holds >= max_facts facts, then Timeout past max_time. The
// engine also stops *inside* an iteration as soon as pending facts reach max_facts or the
// deadline passes, so one explosive iteration can neither exhaust memory nor hang.
// Queries take an optional deadline and return Timeout past it.
//
// Memory (max_memory_bytes): the world's facts (term_bytes of every stored fact, plus
// bookkeeping) and, for each binding tested, what its expressions create (EvalBudget) must
// fit in the budget together; TooMuchMemory otherwise, as soon as a derived fact or an
// expression would go beyond it. The deadline is also checked inside expression
// evaluation (see evaluate.h), so one long expression cannot outlive max_time either.
//
// Performance: facts are stored per predicate name in append-only tables; body atoms are
// matched through hash indexes on their bound argument positions (built lazily, extended
// incrementally), and each iteration only joins combinations that use at least one fact
// new in the previous iteration.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/evaluate.h"
#include "biscuit/datalog/types.h"

namespace biscuit::datalog {

// A sorted set of block ids (kAuthorizerBlock sorts last).
class OriginSet {
 public:
  OriginSet() = default;
  OriginSet(std::initializer_list<uint64_t> ids);
  static OriginSet authorizer() { return OriginSet{kAuthorizerBlock}; }
  void insert(uint64_t id);
  void insert_all(const OriginSet& other);
  bool contains(uint64_t id) const;
  bool is_subset_of(const OriginSet& other) const;
  const std::vector<uint64_t>& ids() const { return ids_; }
  bool empty() const { return ids_.empty(); }
  friend bool operator==(const OriginSet&, const OriginSet&) = default;
  friend bool operator<(const OriginSet& a, const OriginSet& b) { return a.ids_ < b.ids_; }

 private:
  std::vector<uint64_t> ids_;
};

class TrustedOrigins {
 public:
  TrustedOrigins() = default;
  explicit TrustedOrigins(OriginSet origins) : origins_(std::move(origins)) {}
  // {authority block 0, authorizer}: the base of every default trust.
  static TrustedOrigins defaults();
  // The reference's TrustedOrigins::from_scopes: with no scopes, `default_origins` plus the
  // current block and the authorizer; otherwise {current block, authorizer} plus what each
  // scope adds: Authority → 0; Previous → 0..current (not for the authorizer);
  // PublicKey(i) → key_blocks[i] (the blocks signed by that key). Pass the block-level
  // result as `default_origins` of its rules/checks (rule scopes replace block scopes).
  static TrustedOrigins from_scopes(const std::vector<Scope>& scopes, const TrustedOrigins& default_origins,
                                    uint64_t current_block,
                                    const std::map<uint64_t, std::vector<uint64_t>>& key_blocks);
  bool contains(const OriginSet& fact_origin) const { return fact_origin.is_subset_of(origins_); }
  const OriginSet& origins() const { return origins_; }
  friend bool operator==(const TrustedOrigins&, const TrustedOrigins&) = default;

 private:
  OriginSet origins_;
};

struct RunLimits {
  uint64_t max_facts = 1000;
  uint64_t max_iterations = 100;
  std::chrono::nanoseconds max_time = std::chrono::milliseconds(1);
  // Facts plus what expressions create while they are evaluated (strings, bytes, sets):
  // the world's memory, bounded. 8 MiB is ~50 times what 1,000 four-term facts need.
  std::size_t max_memory_bytes = 8 << 20;
};

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// What a query may cost: its deadline, and the memory budget it shares with the world's facts.
struct QueryLimits {
  Deadline deadline;
  std::size_t max_memory_bytes = std::numeric_limits<std::size_t>::max();
};

class World {
 public:
  World();
  ~World();
  World(World&&) noexcept;
  World& operator=(World&&) noexcept;
  World(const World&);
  World& operator=(const World&);

  // Adds a fact (no variables) with its origin; duplicates (same origin and fact) ignored.
  void add_fact(const OriginSet& origin, const Fact& fact);
  // Adds a rule of block `block` (kAuthorizerBlock for the authorizer) that sees facts
  // whose origin is within `trusted`.
  void add_rule(uint64_t block, const TrustedOrigins& trusted, const Rule& rule);
  // Host functions for `extern::` calls (copied).
  void set_extern_functions(ExternFunctions externs);
  const ExternFunctions& extern_functions() const;

  // Runs the rules to a fixpoint. Derived facts stay in the world even on error.
  Expected<void, ExecutionError> run(const SymbolTable& symbols, const RunLimits& limits);

  // Iterations performed by all run() calls so far.
  uint64_t iterations() const;
  // Number of (origin, fact) entries.
  std::size_t fact_count() const;
  // What the stored facts occupy, as counted against max_memory_bytes.
  std::size_t fact_bytes() const;

  // `check if` / policy query: true if some binding satisfies the body and expressions.
  Expected<bool, ExecutionError> query_match(const Rule& query, const TrustedOrigins& trusted,
                                             const SymbolTable& symbols, const QueryLimits& limits) const;
  Expected<bool, ExecutionError> query_match(const Rule& query, const TrustedOrigins& trusted,
                                             const SymbolTable& symbols,
                                             Deadline deadline = std::nullopt) const;
  // `check all`: at least one binding, and every binding satisfies the expressions.
  Expected<bool, ExecutionError> query_match_all(const Rule& query, const TrustedOrigins& trusted,
                                                 const SymbolTable& symbols, const QueryLimits& limits) const;
  Expected<bool, ExecutionError> query_match_all(const Rule& query, const TrustedOrigins& trusted,
                                                 const SymbolTable& symbols,
                                                 Deadline deadline = std::nullopt) const;
  // The facts `rule` would produce (with origins, deduplicated), without adding them; they
  // count against the memory budget while they are collected.
  Expected<std::vector<std::pair<OriginSet, Fact>>, ExecutionError> query_rule(
      const Rule& rule, uint64_t block, const TrustedOrigins& trusted, const SymbolTable& symbols,
      const QueryLimits& limits) const;
  Expected<std::vector<std::pair<OriginSet, Fact>>, ExecutionError> query_rule(
      const Rule& rule, uint64_t block, const TrustedOrigins& trusted, const SymbolTable& symbols,
      Deadline deadline = std::nullopt) const;

  // Every (origin, fact), grouped by predicate then insertion order.
  void for_each_fact(const std::function<void(const OriginSet&, const Fact&)>& fn) const;
  struct RuleEntry {
    uint64_t block;
    TrustedOrigins trusted;
    Rule rule;
  };
  const std::vector<RuleEntry>& rules() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace biscuit::datalog
