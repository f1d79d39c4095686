// The Datalog engine. See world.h for the contract; this file is the hot path.
//
// Layout: facts live in Relations keyed by (predicate name, arity), as append-only vectors
// of StoredFact {terms, interned origin id}. A rule or query is compiled into a Plan: each
// body atom knows its relation, which argument positions are constants or already-bound
// variables (-> hash index lookup on those positions), and which positions bind new
// variables. Joins run iteratively (no recursion per atom) over index buckets restricted
// to fact-index ranges, which is how semi-naive evaluation is expressed: for the atom at
// the "delta" position only facts added in the previous iteration are considered, atoms
// before it only older facts, atoms after it all facts.
#include "biscuit/datalog/world.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

namespace biscuit::datalog {

// ------------------------------------------------------------------- OriginSet

OriginSet::OriginSet(std::initializer_list<uint64_t> ids) {
  for (uint64_t id : ids) insert(id);
}

void OriginSet::insert(uint64_t id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) ids_.insert(it, id);
}

void OriginSet::insert_all(const OriginSet& other) {
  std::vector<uint64_t> out;
  out.reserve(ids_.size() + other.ids_.size());
  std::set_union(ids_.begin(), ids_.end(), other.ids_.begin(), other.ids_.end(), std::back_inserter(out));
  ids_ = std::move(out);
}

bool OriginSet::contains(uint64_t id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

bool OriginSet::is_subset_of(const OriginSet& other) const {
  return std::includes(other.ids_.begin(), other.ids_.end(), ids_.begin(), ids_.end());
}

TrustedOrigins TrustedOrigins::defaults() {
  return TrustedOrigins(OriginSet{0, kAuthorizerBlock});
}

TrustedOrigins TrustedOrigins::from_scopes(const std::vector<Scope>& scopes,
                                           const TrustedOrigins& default_origins, uint64_t current_block,
                                           const std::map<uint64_t, std::vector<uint64_t>>& key_blocks) {
  if (scopes.empty()) {
    OriginSet o = default_origins.origins();
    o.insert(current_block);
    o.insert(kAuthorizerBlock);
    return TrustedOrigins(std::move(o));
  }
  OriginSet o{kAuthorizerBlock, current_block};
  for (const auto& s : scopes) {
    switch (s.kind) {
      case Scope::Kind::Authority:
        o.insert(0);
        break;
      case Scope::Kind::Previous:
        if (current_block != kAuthorizerBlock) {
          for (uint64_t i = 0; i <= current_block; ++i) o.insert(i);
        }
        break;
      case Scope::Kind::PublicKey:
        if (auto it = key_blocks.find(s.public_key); it != key_blocks.end()) {
          for (uint64_t b : it->second) o.insert(b);
        }
        break;
    }
  }
  return TrustedOrigins(std::move(o));
}

// ---------------------------------------------------------------------- engine

namespace {

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

struct StoredFact {
  std::vector<Term> terms;
  uint32_t origin;
};

uint64_t fact_hash(const std::vector<Term>& terms, uint32_t origin) {
  uint64_t h = 0x84222325cbf29ce4ULL ^ origin;
  for (const auto& t : terms) h = mix(h, hash_term(t));
  return h;
}

constexpr uint32_t kNone = UINT32_MAX;

// What one stored fact occupies, as counted against RunLimits::max_memory_bytes: the terms,
// the StoredFact, and its dedup/index chain links (a few per fact).
std::size_t fact_cost(const std::vector<Term>& terms) {
  std::size_t n = sizeof(StoredFact) + 4 * sizeof(uint32_t) + terms.size() * sizeof(Term);
  for (const auto& t : terms) {
    const TermKind k = t.kind();
    if (k == TermKind::Bytes || k == TermKind::Set || k == TermKind::Array || k == TermKind::Map) {
      n += term_bytes(t) - sizeof(Term);  // what it owns
    }
  }
  return n;
}

ExecutionError memory_error(std::size_t budget) {
  ExecutionError e;
  e.kind = ExecutionError::Kind::TooMuchMemory;
  e.message = "the facts and the values expressions create need more than the memory budget of " +
              std::to_string(budget) + " bytes (max_memory_bytes)";
  return e;
}

std::size_t remaining(std::size_t budget, std::size_t used) {
  return used >= budget ? 0 : budget - used;
}

// Open-addressing table from a 64-bit hash to the most recent fact index with that hash;
// earlier facts with the same hash are chained through `next` (so chains run from the
// newest fact to the oldest). No per-entry allocation.
class HashChains {
 public:
  void insert(uint64_t h, uint32_t idx) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    if (next_.size() <= idx) next_.resize(static_cast<std::size_t>(idx) + 1, kNone);
    Slot& s = slots_[slot(h)];
    if (s.head == kNone) {
      s.key = h;
      ++count_;
    }
    next_[idx] = s.head;
    s.head = idx;
  }
  uint32_t head(uint64_t h) const {
    if (slots_.empty()) return kNone;
    return slots_[slot(h)].head;
  }
  uint32_t next(uint32_t idx) const { return next_[idx]; }
  const std::vector<uint32_t>& next_links() const { return next_; }
  void clear() {
    slots_.clear();
    next_.clear();
    count_ = 0;
  }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t head = kNone;  // newest fact with this key, or kNone: the slot is free
  };
  std::size_t slot(uint64_t h) const {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = static_cast<std::size_t>(h ^ (h >> 29)) & mask;
    while (slots_[i].head != kNone && slots_[i].key != h) i = (i + 1) & mask;
    return i;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
    for (const Slot& s : old) {
      if (s.head != kNone) slots_[slot(s.key)] = s;
    }
  }
  std::vector<Slot> slots_;  // open addressing, one allocation per table
  std::vector<uint32_t> next_;
  std::size_t count_ = 0;
};

struct Index {
  uint32_t indexed_upto = 0;
  HashChains chains;
};

uint64_t key_hash_of(const std::vector<Term>& terms, const std::vector<uint32_t>& positions) {
  uint64_t h = 0x51ed270b27d1c3a5ULL;
  for (uint32_t p : positions) h = mix(h, hash_term(terms[p]));
  return h;
}

struct Relation {
  SymbolIndex name = 0;
  uint32_t arity = 0;
  std::vector<StoredFact> facts;
  HashChains dedup;
  // Facts [0, stable_end) were joined by every rule in an earlier iteration of this run.
  uint32_t stable_end = 0;
  std::vector<StoredFact> pending;
  std::vector<uint64_t> pending_hash;
  HashChains pending_dedup;
  std::map<uint64_t, Index> indexes;  // by bound-position mask

  bool contains(const std::vector<Term>& terms, uint32_t origin, uint64_t h) const {
    for (uint32_t i = dedup.head(h); i != kNone; i = dedup.next(i)) {
      const StoredFact& f = facts[i];
      if (f.origin == origin && f.terms == terms) return true;
    }
    return false;
  }

  bool pending_contains(const std::vector<Term>& terms, uint32_t origin, uint64_t h) const {
    for (uint32_t i = pending_dedup.head(h); i != kNone; i = pending_dedup.next(i)) {
      const StoredFact& f = pending[i];
      if (f.origin == origin && f.terms == terms) return true;
    }
    return false;
  }

  void add_pending(std::vector<Term> terms, uint32_t origin, uint64_t h) {
    pending_dedup.insert(h, static_cast<uint32_t>(pending.size()));
    pending.push_back(StoredFact{std::move(terms), origin});
    pending_hash.push_back(h);
  }

  void append(std::vector<Term> terms, uint32_t origin, uint64_t h) {
    dedup.insert(h, static_cast<uint32_t>(facts.size()));
    facts.push_back(StoredFact{std::move(terms), origin});
  }

  void merge_pending() {
    stable_end = static_cast<uint32_t>(facts.size());
    for (std::size_t i = 0; i < pending.size(); ++i) {
      append(std::move(pending[i].terms), pending[i].origin, pending_hash[i]);
    }
    clear_pending();
  }

  void clear_pending() {
    pending.clear();
    pending_hash.clear();
    pending_dedup.clear();
  }

  Index& index(uint64_t mask, const std::vector<uint32_t>& positions) {
    Index& ix = indexes[mask];
    while (ix.indexed_upto < facts.size()) {
      ix.chains.insert(key_hash_of(facts[ix.indexed_upto].terms, positions), ix.indexed_upto);
      ++ix.indexed_upto;
    }
    return ix;
  }
};

struct AtomPlan {
  Relation* rel = nullptr;              // null: no fact has this name/arity
  std::vector<int32_t> slot;            // per position: -1 constant, else variable slot
  std::vector<const Term*> constant;    // per position, for constants
  std::vector<uint8_t> binds;           // per position: first binding of its slot
  std::vector<uint32_t> key_positions;  // bound before this atom: used for the index
  uint64_t mask = 0;
  uint32_t lo = 0, hi = 0;  // fact index range
};

struct Plan {
  std::vector<AtomPlan> atoms;
  std::vector<uint32_t> slot_var;  // slot -> variable id
};

}  // namespace

struct World::Impl {
  std::deque<Relation> relations;
  std::map<std::pair<SymbolIndex, uint32_t>, Relation*> by_key;
  std::vector<OriginSet> origins;
  std::map<OriginSet, uint32_t> origin_ids;
  std::unordered_map<uint64_t, uint32_t> union_memo;
  std::vector<RuleEntry> rules;
  ExternFunctions externs;
  uint64_t iterations = 0;
  std::size_t fact_count = 0;
  std::size_t fact_bytes = 0;  // fact_cost() of every stored fact

  Impl() = default;
  Impl(const Impl& o)
      : relations(o.relations),
        origins(o.origins),
        origin_ids(o.origin_ids),
        union_memo(o.union_memo),
        rules(o.rules),
        externs(o.externs),
        iterations(o.iterations),
        fact_count(o.fact_count),
        fact_bytes(o.fact_bytes) {
    for (auto& r : relations) by_key[{r.name, r.arity}] = &r;
  }

  uint32_t intern_origin(const OriginSet& o) {
    auto it = origin_ids.find(o);
    if (it != origin_ids.end()) return it->second;
    const auto id = static_cast<uint32_t>(origins.size());
    origins.push_back(o);
    origin_ids.emplace(o, id);
    return id;
  }

  uint32_t unite(uint32_t a, uint32_t b) {
    if (a == b) return a;
    if (a > b) std::swap(a, b);
    const uint64_t key = (static_cast<uint64_t>(a) << 32) | b;
    auto it = union_memo.find(key);
    if (it != union_memo.end()) return it->second;
    OriginSet u = origins[a];
    u.insert_all(origins[b]);
    const uint32_t id = intern_origin(u);
    union_memo.emplace(key, id);
    return id;
  }

  Relation& relation(SymbolIndex name, uint32_t arity) {
    auto it = by_key.find({name, arity});
    if (it != by_key.end()) return *it->second;
    relations.emplace_back();
    Relation& r = relations.back();
    r.name = name;
    r.arity = arity;
    by_key[{name, arity}] = &r;
    return r;
  }

  Relation* find_relation(SymbolIndex name, uint32_t arity) {
    auto it = by_key.find({name, arity});
    return it == by_key.end() ? nullptr : it->second;
  }

  std::vector<char> visibility(const TrustedOrigins& trusted) const {
    std::vector<char> v(origins.size());
    for (std::size_t i = 0; i < origins.size(); ++i) v[i] = trusted.contains(origins[i]) ? 1 : 0;
    return v;
  }

  Plan compile(const Rule& rule) {
    Plan plan;
    std::unordered_map<uint32_t, int32_t> slots;
    for (const auto& pred : rule.body) {
      AtomPlan a;
      const auto arity = static_cast<uint32_t>(pred.terms.size());
      a.rel = find_relation(pred.name, arity);
      a.slot.resize(arity, -1);
      a.constant.resize(arity, nullptr);
      a.binds.resize(arity, 0);
      std::unordered_map<uint32_t, int32_t> bound_before = slots;
      for (uint32_t p = 0; p < arity; ++p) {
        const Term& t = pred.terms[p];
        if (t.is(TermKind::Variable)) {
          const uint32_t var = t.as_variable();
          auto it = slots.find(var);
          if (it == slots.end()) {
            const auto s = static_cast<int32_t>(plan.slot_var.size());
            plan.slot_var.push_back(var);
            slots.emplace(var, s);
            a.slot[p] = s;
            a.binds[p] = 1;
          } else {
            a.slot[p] = it->second;
            if (bound_before.count(var) && p < 64) {
              a.key_positions.push_back(p);
              a.mask |= 1ULL << p;
            }
          }
        } else {
          a.constant[p] = &t;
          if (p < 64) {
            a.key_positions.push_back(p);
            a.mask |= 1ULL << p;
          }
        }
      }
      plan.atoms.push_back(std::move(a));
    }
    return plan;
  }

  struct Limits {
    Deadline deadline;
    uint64_t steps = 0;
    bool check_time() {
      if (!deadline) return false;
      if ((++steps & 255) != 0) return false;
      return std::chrono::steady_clock::now() >= *deadline;
    }
  };

  enum class Flow { Continue, Stop };

  // Enumerates complete bindings of `plan`; `on_match(origin_id)` sees slot values in
  // `vals`. Returns Timeout if the deadline passes.
  template <class OnMatch>
  Expected<void, ExecutionError> join(Plan& plan, uint32_t start_origin, const std::vector<char>& visible,
                                      std::vector<const Term*>& vals, Limits& limits, OnMatch&& on_match) {
    const std::size_t n = plan.atoms.size();
    vals.assign(plan.slot_var.size(), nullptr);
    if (n == 0) {
      on_match(start_origin);
      return {};
    }
    struct Cursor {
      const HashChains* chain = nullptr;  // index candidates (newest first), or null: range scan
      uint32_t cur = kNone;               // chain position
      std::size_t pos = 0, end = 0;       // range scan
    };
    std::vector<Cursor> cur(n);
    std::vector<uint32_t> origin_at(n + 1);
    origin_at[0] = start_origin;
    std::vector<uint64_t> key_hash(n);

    auto open = [&](std::size_t k) -> bool {
      AtomPlan& a = plan.atoms[k];
      Cursor& c = cur[k];
      if (!a.rel || a.lo >= a.hi) return false;
      if (a.key_positions.empty()) {
        c.chain = nullptr;
        c.pos = a.lo;
        c.end = a.hi;
        return true;
      }
      uint64_t h = 0x51ed270b27d1c3a5ULL;
      for (uint32_t p : a.key_positions) {
        const Term* t = a.slot[p] < 0 ? a.constant[p] : vals[static_cast<std::size_t>(a.slot[p])];
        h = mix(h, hash_term(*t));
      }
      Index& ix = a.rel->index(a.mask, a.key_positions);
      c.chain = &ix.chains;
      c.cur = ix.chains.head(h);
      return c.cur != kNone;
    };

    // Try to match the next candidate at level k; true if one matched (slots bound).
    auto advance = [&](std::size_t k) -> bool {
      AtomPlan& a = plan.atoms[k];
      Cursor& c = cur[k];
      while (true) {
        uint32_t idx;
        if (c.chain) {
          // Chains run newest to oldest: skip facts past the range, stop below it.
          while (c.cur != kNone && c.cur >= a.hi) c.cur = c.chain->next(c.cur);
          if (c.cur == kNone || c.cur < a.lo) return false;
          idx = c.cur;
          c.cur = c.chain->next(c.cur);
        } else {
          if (c.pos >= c.end) return false;
          idx = static_cast<uint32_t>(c.pos);
          ++c.pos;
        }
        const StoredFact& f = a.rel->facts[idx];
        if (!visible[f.origin]) continue;
        bool ok = true;
        const std::size_t arity = a.slot.size();
        for (std::size_t p = 0; p < arity && ok; ++p) {
          const Term& ft = f.terms[p];
          if (ft.is(TermKind::Variable)) {
            ok = false;
          } else if (a.slot[p] < 0) {
            ok = compare(*a.constant[p], ft) == 0;
          } else if (a.binds[p]) {
            vals[static_cast<std::size_t>(a.slot[p])] = &ft;
          } else {
            ok = compare(*vals[static_cast<std::size_t>(a.slot[p])], ft) == 0;
          }
        }
        if (!ok) continue;
        origin_at[k + 1] = unite(origin_at[k], f.origin);
        return true;
      }
    };

    std::size_t k = 0;
    if (!open(0)) return {};
    while (true) {
      if (limits.check_time()) {
        ExecutionError e;
        e.kind = ExecutionError::Kind::Timeout;
        return e;
      }
      if (!advance(k)) {
        if (k == 0) return {};
        --k;
        continue;
      }
      if (k + 1 == n) {
        if (on_match(origin_at[n]) == Flow::Stop) return {};
        continue;
      }
      if (open(k + 1)) ++k;
    }
  }

  // Evaluates the rule's expressions for the current binding: true, false, or an error.
  // What they create may use `memory` bytes (what the budget leaves after the facts).
  Expected<bool, ExecutionError> test_expressions(const Rule& rule, const Plan& plan,
                                                  const std::vector<const Term*>& vals,
                                                  const SymbolTable& symbols, Bindings& bindings,
                                                  const Deadline& deadline, std::size_t memory,
                                                  std::size_t budget) const {
    if (rule.expressions.empty()) return true;
    bindings.clear();
    for (std::size_t s = 0; s < plan.slot_var.size(); ++s) bindings.emplace_back(plan.slot_var[s], vals[s]);
    TemporarySymbols temp(symbols);
    EvalBudget eval;
    eval.deadline = deadline;
    eval.memory = memory;
    for (const auto& e : rule.expressions) {
      auto r = evaluate(e, bindings, temp, &externs, eval);
      if (!r) {
        if (r.error().kind == ExecutionError::Kind::TooMuchMemory) return memory_error(budget);
        return std::move(r).error();
      }
      if (!r->is(TermKind::Bool)) {
        ExecutionError err;
        err.kind = ExecutionError::Kind::InvalidType;
        return err;
      }
      if (!r->as_bool()) return false;
    }
    return true;
  }

  // Head terms for the current binding; false if a head variable is unbound.
  static bool instantiate(const Rule& rule, const Plan& plan, const std::vector<const Term*>& vals,
                          std::vector<Term>& out) {
    out.clear();
    out.reserve(rule.head.terms.size());
    for (const auto& t : rule.head.terms) {
      if (!t.is(TermKind::Variable)) {
        out.push_back(t);
        continue;
      }
      const Term* v = nullptr;
      for (std::size_t s = 0; s < plan.slot_var.size(); ++s) {
        if (plan.slot_var[s] == t.as_variable()) v = vals[s];
      }
      if (!v) return false;
      out.push_back(*v);
    }
    return true;
  }

  Expected<bool, ExecutionError> query(const Rule& query, const TrustedOrigins& trusted,
                                       const SymbolTable& symbols, const QueryLimits& limits, bool all);

  void set_full_ranges(Plan& plan) {
    for (auto& a : plan.atoms) {
      a.lo = 0;
      a.hi = a.rel ? static_cast<uint32_t>(a.rel->facts.size()) : 0;
    }
  }
};

World::World() : impl_(std::make_unique<Impl>()) {}
World::~World() = default;
World::World(World&&) noexcept = default;
World& World::operator=(World&&) noexcept = default;
World::World(const World& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
World& World::operator=(const World& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}

void World::add_fact(const OriginSet& origin, const Fact& fact) {
  const uint32_t o = impl_->intern_origin(origin);
  Relation& r = impl_->relation(fact.predicate.name, static_cast<uint32_t>(fact.predicate.terms.size()));
  const uint64_t h = fact_hash(fact.predicate.terms, o);
  if (r.contains(fact.predicate.terms, o, h)) return;
  r.append(fact.predicate.terms, o, h);
  ++impl_->fact_count;
  impl_->fact_bytes += fact_cost(fact.predicate.terms);
}

void World::add_rule(uint64_t block, const TrustedOrigins& trusted, const Rule& rule) {
  impl_->rules.push_back(RuleEntry{block, trusted, rule});
}

void World::set_extern_functions(ExternFunctions externs) {
  impl_->externs = std::move(externs);
}
const ExternFunctions& World::extern_functions() const {
  return impl_->externs;
}

uint64_t World::iterations() const {
  return impl_->iterations;
}
std::size_t World::fact_count() const {
  return impl_->fact_count;
}
std::size_t World::fact_bytes() const {
  return impl_->fact_bytes;
}
const std::vector<World::RuleEntry>& World::rules() const {
  return impl_->rules;
}

void World::for_each_fact(const std::function<void(const OriginSet&, const Fact&)>& fn) const {
  Fact f;
  for (const auto& r : impl_->relations) {
    f.predicate.name = r.name;
    for (const auto& sf : r.facts) {
      f.predicate.terms = sf.terms;
      fn(impl_->origins[sf.origin], f);
    }
  }
}

Expected<void, ExecutionError> World::run(const SymbolTable& symbols, const RunLimits& limits) {
  Impl& w = *impl_;
  using Kind = ExecutionError::Kind;
  const auto start = std::chrono::steady_clock::now();
  Impl::Limits lim;
  // Clamp absurd limits so the deadline cannot overflow the clock.
  const auto max_time = std::min<std::chrono::nanoseconds>(limits.max_time, std::chrono::hours(24 * 365));
  lim.deadline = start + max_time;
  auto fail = [](Kind k) {
    ExecutionError e;
    e.kind = k;
    return e;
  };

  for (auto& r : w.relations) r.stable_end = 0;
  uint64_t index = 0;
  bool first = true;
  std::vector<const Term*> vals;
  std::vector<Term> head;
  Bindings bindings;
  std::size_t pending_count = 0;
  std::size_t pending_bytes = 0;
  const std::size_t budget = limits.max_memory_bytes;
  // The facts given to the world (token and authorizer) already count.
  if (w.fact_bytes > budget) return memory_error(budget);

  auto discard_pending = [&] {
    for (auto& r : w.relations) r.clear_pending();
    pending_count = 0;
    pending_bytes = 0;
  };

  while (true) {
    // Snapshot of the ranges for this iteration.
    std::vector<std::pair<Relation*, uint32_t>> ends;
    for (auto& r : w.relations) ends.emplace_back(&r, static_cast<uint32_t>(r.facts.size()));
    std::map<OriginSet, std::vector<char>> vis_cache;
    std::optional<ExecutionError> error;

    for (const auto& entry : w.rules) {
      if (error) break;
      const Rule& rule = entry.rule;
      auto vis_it = vis_cache.find(entry.trusted.origins());
      if (vis_it == vis_cache.end()) {
        vis_it = vis_cache.emplace(entry.trusted.origins(), w.visibility(entry.trusted)).first;
      }
      const std::vector<char>& visible = vis_it->second;
      const uint32_t rule_origin = w.intern_origin(OriginSet{entry.block});
      Plan plan = w.compile(rule);
      const std::size_t n = plan.atoms.size();
      if (n == 0 && !first) continue;

      auto on_match = [&](uint32_t origin) -> Impl::Flow {
        auto ok = w.test_expressions(rule, plan, vals, symbols, bindings, lim.deadline,
                                     remaining(budget, w.fact_bytes + pending_bytes), budget);
        if (!ok) {
          error = std::move(ok).error();
          return Impl::Flow::Stop;
        }
        if (!*ok) return Impl::Flow::Continue;
        if (!Impl::instantiate(rule, plan, vals, head)) return Impl::Flow::Continue;
        Relation& rel = w.relation(rule.head.name, static_cast<uint32_t>(head.size()));
        const uint64_t h = fact_hash(head, origin);
        if (rel.contains(head, origin, h) || rel.pending_contains(head, origin, h)) {
          return Impl::Flow::Continue;
        }
        pending_bytes += fact_cost(head);
        rel.add_pending(head, origin, h);
        ++pending_count;
        if (w.fact_count + pending_count >= limits.max_facts) {
          error = fail(index + 1 >= limits.max_iterations ? Kind::TooManyIterations : Kind::TooManyFacts);
          return Impl::Flow::Stop;
        }
        if (w.fact_bytes + pending_bytes > budget) {
          error = memory_error(budget);
          return Impl::Flow::Stop;
        }
        return Impl::Flow::Continue;
      };

      if (n == 0) {
        auto r = w.join(plan, rule_origin, visible, vals, lim, on_match);
        if (!r) error = std::move(r).error();
        continue;
      }
      for (std::size_t d = 0; d < n && !error; ++d) {
        Relation* dr = plan.atoms[d].rel;
        if (!dr) break;  // an atom without facts: no match at all
        uint32_t d_end = 0;
        for (const auto& [rel, end] : ends) {
          if (rel == dr) d_end = end;
        }
        if (dr->stable_end >= d_end) continue;  // no new facts for this atom
        bool empty = false;
        for (std::size_t j = 0; j < n; ++j) {
          AtomPlan& a = plan.atoms[j];
          uint32_t end = 0;
          if (a.rel) {
            for (const auto& [rel, e] : ends) {
              if (rel == a.rel) end = e;
            }
          }
          if (j < d) {
            a.lo = 0;
            a.hi = a.rel ? a.rel->stable_end : 0;
          } else if (j == d) {
            a.lo = a.rel->stable_end;
            a.hi = end;
          } else {
            a.lo = 0;
            a.hi = end;
          }
          if (a.lo >= a.hi) empty = true;
        }
        if (empty) continue;
        auto r = w.join(plan, rule_origin, visible, vals, lim, on_match);
        if (!r && !error) error = std::move(r).error();
      }
    }

    if (error) {
      discard_pending();
      w.iterations += index;
      return *error;
    }
    first = false;

    // Merge: this iteration's facts become the next delta.
    for (auto& r : w.relations) r.merge_pending();
    // Relations created during the iteration have stable_end 0: all their facts are new.
    const std::size_t added = pending_count;
    w.fact_count += added;
    w.fact_bytes += pending_bytes;
    pending_count = 0;
    pending_bytes = 0;
    if (added == 0) break;

    ++index;
    if (index >= limits.max_iterations) {
      w.iterations += index;
      return fail(Kind::TooManyIterations);
    }
    if (w.fact_count >= limits.max_facts) {
      w.iterations += index;
      return fail(Kind::TooManyFacts);
    }
    if (std::chrono::steady_clock::now() >= *lim.deadline) {
      w.iterations += index;
      return fail(Kind::Timeout);
    }
  }
  w.iterations += index;
  return {};
}

Expected<bool, ExecutionError> World::Impl::query(const Rule& query, const TrustedOrigins& trusted,
                                                  const SymbolTable& symbols, const QueryLimits& limits,
                                                  bool all) {
  const Deadline& deadline = limits.deadline;
  const std::size_t memory = remaining(limits.max_memory_bytes, fact_bytes);
  Plan plan = compile(query);
  set_full_ranges(plan);
  const std::vector<char> visible = visibility(trusted);
  std::vector<const Term*> vals;
  Bindings bindings;
  Limits lim;
  lim.deadline = deadline;
  std::optional<ExecutionError> error;
  bool found = false;
  bool result = all;
  const uint32_t origin0 = intern_origin(OriginSet{});
  auto r = join(plan, origin0, visible, vals, lim, [&](uint32_t) {
    found = true;
    auto ok =
        test_expressions(query, plan, vals, symbols, bindings, deadline, memory, limits.max_memory_bytes);
    if (!ok) {
      error = std::move(ok).error();
      return Flow::Stop;
    }
    if (!all && *ok) {
      result = true;
      return Flow::Stop;
    }
    if (all && !*ok) {
      result = false;
      return Flow::Stop;
    }
    return Flow::Continue;
  });
  if (error) return *error;
  if (!r) return std::move(r).error();
  if (all) return found && result;
  return result;
}

Expected<bool, ExecutionError> World::query_match(const Rule& query, const TrustedOrigins& trusted,
                                                  const SymbolTable& symbols,
                                                  const QueryLimits& limits) const {
  return impl_->query(query, trusted, symbols, limits, false);
}

Expected<bool, ExecutionError> World::query_match(const Rule& query, const TrustedOrigins& trusted,
                                                  const SymbolTable& symbols, Deadline deadline) const {
  return query_match(query, trusted, symbols, QueryLimits{deadline});
}

Expected<bool, ExecutionError> World::query_match_all(const Rule& query, const TrustedOrigins& trusted,
                                                      const SymbolTable& symbols,
                                                      const QueryLimits& limits) const {
  return impl_->query(query, trusted, symbols, limits, true);
}

Expected<bool, ExecutionError> World::query_match_all(const Rule& query, const TrustedOrigins& trusted,
                                                      const SymbolTable& symbols, Deadline deadline) const {
  return query_match_all(query, trusted, symbols, QueryLimits{deadline});
}

Expected<std::vector<std::pair<OriginSet, Fact>>, ExecutionError> World::query_rule(
    const Rule& rule, uint64_t block, const TrustedOrigins& trusted, const SymbolTable& symbols,
    Deadline deadline) const {
  return query_rule(rule, block, trusted, symbols, QueryLimits{deadline});
}

Expected<std::vector<std::pair<OriginSet, Fact>>, ExecutionError> World::query_rule(
    const Rule& rule, uint64_t block, const TrustedOrigins& trusted, const SymbolTable& symbols,
    const QueryLimits& limits) const {
  Impl& w = *impl_;
  const Deadline& deadline = limits.deadline;
  const std::size_t budget = limits.max_memory_bytes;
  std::size_t collected = 0;  // what the result holds so far
  Plan plan = w.compile(rule);
  w.set_full_ranges(plan);
  const std::vector<char> visible = w.visibility(trusted);
  std::vector<const Term*> vals;
  Bindings bindings;
  Impl::Limits lim;
  lim.deadline = deadline;
  std::optional<ExecutionError> error;
  std::vector<std::pair<OriginSet, Fact>> out;
  std::vector<Term> head;
  const uint32_t origin0 = w.intern_origin(OriginSet{block});
  auto r = w.join(plan, origin0, visible, vals, lim, [&](uint32_t origin) {
    auto ok = w.test_expressions(rule, plan, vals, symbols, bindings, lim.deadline,
                                 remaining(budget, w.fact_bytes + collected), budget);
    if (!ok) {
      error = std::move(ok).error();
      return Impl::Flow::Stop;
    }
    if (*ok && Impl::instantiate(rule, plan, vals, head)) {
      Fact f{Predicate{rule.head.name, head}};
      const OriginSet& o = w.origins[origin];
      bool dup = false;
      for (const auto& [eo, ef] : out) {
        if (eo == o && ef == f) {
          dup = true;
          break;
        }
      }
      if (!dup) {
        collected += fact_cost(head);
        if (w.fact_bytes + collected > budget) {
          error = memory_error(budget);
          return Impl::Flow::Stop;
        }
        out.emplace_back(o, std::move(f));
      }
    }
    return Impl::Flow::Continue;
  });
  if (error) return *error;
  if (!r) return std::move(r).error();
  return out;
}

}  // namespace biscuit::datalog
