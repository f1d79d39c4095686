#include "biscuit/datalog/evaluate.h"

#include <re2/re2.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>

#include "biscuit/datalog/convert.h"

namespace biscuit::datalog {

namespace {

using K = ExecutionError::Kind;

ExecutionError err(K kind) {
  ExecutionError e;
  e.kind = kind;
  return e;
}
ExecutionError err_id(K kind, uint64_t id) {
  ExecutionError e;
  e.kind = kind;
  e.id = id;
  return e;
}

using R = Expected<Term, ExecutionError>;

// What a regular expression may cost. RE2 matches in time linear in the text but
// proportional to the program too (text × program when its DFA gives up), so one `matches`
// on a large text with a large hostile pattern could run for seconds between two deadline
// checks: patterns are capped, programs are compiled within a small memory budget, and a
// match whose worst case exceeds kMaxRegexWork steps is refused (Timeout) before it starts.
constexpr std::size_t kMaxRegexPatternBytes = 4096;
constexpr std::size_t kMaxRegexWork = std::size_t{1} << 22;  // text bytes × program instructions

// Regex cache: compiling is far costlier than matching, and rules evaluate the same
// pattern for every binding. Bounded (64 patterns of at most 4 KiB, each program within
// 256 KiB); invalid patterns are cached as null.
const RE2* compiled_regex(std::string_view pattern) {
  thread_local std::unordered_map<std::string, std::unique_ptr<RE2>> cache;
  auto it = cache.find(std::string(pattern));
  if (it != cache.end()) return it->second.get();
  if (cache.size() >= 64) cache.clear();
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(256 << 10);
  auto re = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) re.reset();
  const RE2* out = re.get();
  cache.emplace(std::string(pattern), std::move(re));
  return out;
}

// Bookkeeping charged per string an evaluation creates (the string object, its index entry).
constexpr std::size_t kStringOverhead = 64;

// True for operations whose cost grows with their operands: the clock is read before them.
bool costly(BinaryOp op, TermKind left) {
  switch (op) {
    case BinaryOp::Add:
      return left == TermKind::String;
    case BinaryOp::Contains:
    case BinaryOp::Prefix:
    case BinaryOp::Suffix:
    case BinaryOp::Regex:
    case BinaryOp::Intersection:
    case BinaryOp::Union:
    case BinaryOp::Get:
    case BinaryOp::Ffi:
      return true;
    case BinaryOp::Equal:
    case BinaryOp::NotEqual:
    case BinaryOp::HeterogeneousEqual:
    case BinaryOp::HeterogeneousNotEqual:
      return left == TermKind::Bytes || left == TermKind::Set || left == TermKind::Array ||
             left == TermKind::Map;
    default:
      return false;
  }
}

// What an extern function's result will occupy once interned (strings included).
std::size_t ast_bytes(const ast::Term& t) {
  std::size_t n = sizeof(Term);
  switch (t.kind()) {
    case ast::TermKind::String:
      return n + kStringOverhead + t.as_string().size();
    case ast::TermKind::Bytes:
      return n + t.as_bytes().size();
    case ast::TermKind::Set:
      for (const auto& e : t.as_set()) n += ast_bytes(e);
      return n;
    case ast::TermKind::Array:
      for (const auto& e : t.as_array()) n += ast_bytes(e);
      return n;
    case ast::TermKind::Map:
      for (const auto& [k, v] : t.as_map()) n += sizeof(MapKey) + k.text.size() + ast_bytes(v);
      return n;
    default:
      return n;
  }
}

class Evaluator {
 public:
  Evaluator(const Bindings& base, TemporarySymbols& symbols, const ExternFunctions* externs,
            EvalBudget& budget)
      : base_(base), symbols_(symbols), externs_(externs), budget_(budget) {}

  R run(const std::vector<Op>& ops) {
    // A stack element: a value the evaluation computed (owned), a value it only reads (a
    // bound variable or a literal of the expression: borrowed, never copied, so pushing a
    // large set costs nothing), or a closure.
    struct Elem {
      std::optional<Term> owned;
      const Term* borrowed = nullptr;
      const Closure* closure = nullptr;
      const Term* term() const { return owned ? &*owned : borrowed; }
    };
    std::vector<Elem> stack;
    stack.reserve(8);
    for (const auto& op : ops) {
      if ((++budget_.ops & 63) == 0 && timed_out()) return err(K::Timeout);
      if (const auto* t = std::get_if<Term>(&op.v)) {
        if (t->is(TermKind::Variable)) {
          const Term* v = find(t->as_variable());
          if (!v) return err_id(K::UnknownVariable, t->as_variable());
          stack.push_back(Elem{std::nullopt, v, nullptr});
        } else {
          stack.push_back(Elem{std::nullopt, t, nullptr});
        }
      } else if (const auto* u = std::get_if<Unary>(&op.v)) {
        if (stack.empty() || !stack.back().term()) return err(K::InvalidStack);
        if (u->op == UnaryOp::Parens) continue;  // the identity
        R r = unary(*u, *stack.back().term());
        if (!r) return r;
        stack.back() = Elem{std::move(*r), nullptr, nullptr};
      } else if (const auto* b = std::get_if<Binary>(&op.v)) {
        if (stack.size() < 2) return err(K::InvalidStack);
        Elem right = std::move(stack.back());
        stack.pop_back();
        Elem left = std::move(stack.back());
        stack.pop_back();
        const Term* l = left.term();
        const Term* rt = right.term();
        R r = err(K::InvalidStack);
        if (rt && l) {
          r = binary(*b, *l, *rt);
        } else if (right.closure && l) {
          if (shadows(*right.closure)) return err(K::ShadowedVariable);
          r = with_closure(b->op, *l, *right.closure);
        } else if (rt && left.closure) {
          if (shadows(*left.closure)) return err(K::ShadowedVariable);
          r = with_closure(b->op, *rt, *left.closure);
        } else {
          return err(K::InvalidStack);
        }
        if (!r) return r;
        stack.push_back(Elem{std::move(*r), nullptr, nullptr});
      } else {
        stack.push_back(Elem{std::nullopt, nullptr, &std::get<Closure>(op.v)});
      }
    }
    if (stack.size() != 1 || !stack.back().term()) return err(K::InvalidStack);
    if (stack.back().owned) return std::move(*stack.back().owned);
    return *stack.back().borrowed;
  }

 private:
  static ExecutionError regex_too_costly() {
    ExecutionError e = err(K::Timeout);
    e.message = "a regular expression too costly to evaluate (pattern above " +
                std::to_string(kMaxRegexPatternBytes) + " bytes, or text × program above " +
                std::to_string(kMaxRegexWork) + ")";
    return e;
  }

  bool timed_out() const { return budget_.deadline && std::chrono::steady_clock::now() >= *budget_.deadline; }

  // Takes `bytes` from the memory budget, or fails with TooMuchMemory (nothing is built).
  std::optional<ExecutionError> charge(std::size_t bytes) {
    if (bytes > budget_.memory) return err(K::TooMuchMemory);
    budget_.memory -= bytes;
    return std::nullopt;
  }

  const Term* find(uint32_t id) const {
    for (auto it = extra_.rbegin(); it != extra_.rend(); ++it) {
      if (it->first == id) return it->second;
    }
    for (const auto& [k, v] : base_) {
      if (k == id) return v;
    }
    return nullptr;
  }

  bool shadows(const Closure& c) const {
    for (uint32_t p : c.params) {
      if (find(p)) return true;
    }
    return false;
  }

  Expected<std::string_view, ExecutionError> str(SymbolIndex id) {
    auto s = symbols_.lookup(id);
    if (!s) return err_id(K::UnknownSymbol, id);
    return *s;
  }

  R with_closure(BinaryOp op, const Term& value, const Closure& c) {
    const bool no_params = c.params.empty();
    switch (op) {
      case BinaryOp::TryOr: {
        if (!no_params) return err(K::InvalidType);
        R r = run(c.ops);
        if (r) return r;
        return value;
      }
      case BinaryOp::LazyOr:
      case BinaryOp::LazyAnd: {
        if (!no_params || !value.is(TermKind::Bool)) return err(K::InvalidType);
        const bool b = value.as_bool();
        if (op == BinaryOp::LazyOr && b) return Term::boolean(true);
        if (op == BinaryOp::LazyAnd && !b) return Term::boolean(false);
        return run(c.ops);
      }
      case BinaryOp::All:
      case BinaryOp::Any: {
        if (c.params.size() != 1) return err(K::InvalidType);
        const bool all = op == BinaryOp::All;
        // The closure body's operations count towards the deadline checks of run().
        auto test = [&](const Term& element) -> Expected<std::optional<bool>, ExecutionError> {
          extra_.emplace_back(c.params[0], &element);
          R r = run(c.ops);
          extra_.pop_back();
          if (!r) return std::move(r).error();
          if (!r->is(TermKind::Bool)) return err(K::InvalidType);
          const bool v = r->as_bool();
          if (all && !v) return std::optional<bool>(false);
          if (!all && v) return std::optional<bool>(true);
          return std::optional<bool>();
        };
        if (value.is(TermKind::Set) || value.is(TermKind::Array)) {
          const auto& items = value.is(TermKind::Set) ? value.as_set() : value.as_array();
          for (const auto& e : items) {
            auto r = test(e);
            if (!r) return std::move(r).error();
            if (*r) return Term::boolean(**r);
          }
          return Term::boolean(all);
        }
        if (value.is(TermKind::Map)) {
          for (const auto& [k, v] : value.as_map()) {
            Term key = k.kind == MapKey::Kind::Integer ? Term::integer(k.integer) : Term::string(k.string);
            Term pair = Term::array({std::move(key), v});
            auto r = test(pair);
            if (!r) return std::move(r).error();
            if (*r) return Term::boolean(**r);
          }
          return Term::boolean(all);
        }
        return err(K::InvalidType);
      }
      default:
        return err(K::InvalidType);
    }
  }

  R call_extern(SymbolIndex name_id, const Term& left, const Term* right) {
    auto name = str(name_id);
    if (!name) return std::move(name).error();
    const std::string fname(*name);
    const ExternFunction* fn = nullptr;
    if (externs_) {
      auto it = externs_->find(fname);
      if (it != externs_->end()) fn = &it->second;
    }
    if (!fn || !*fn) {
      ExecutionError e = err(K::UndefinedExtern);
      e.name = fname;
      return e;
    }
    auto l = to_ast(left, symbols_);
    if (!l) return err(K::UnknownSymbol);
    std::optional<ast::Term> r;
    if (right) {
      auto rr = to_ast(*right, symbols_);
      if (!rr) return err(K::UnknownSymbol);
      r = std::move(*rr);
    }
    auto out = (*fn)(*l, r);
    if (!out) {
      ExecutionError e = err(K::ExternEvalError);
      e.name = fname;
      e.message = out.error();
      return e;
    }
    if (auto e = charge(ast_bytes(*out))) return *e;
    auto t = intern(*out, symbols_);
    if (!t) {
      ExecutionError e = err(K::ExternEvalError);
      e.name = fname;
      e.message = "the function returned an unbound parameter";
      return e;
    }
    return std::move(*t);
  }

  R unary(const Unary& u, const Term& v) {
    switch (u.op) {
      case UnaryOp::Negate:
        if (!v.is(TermKind::Bool)) return err(K::InvalidType);
        return Term::boolean(!v.as_bool());
      case UnaryOp::Parens:
        return v;
      case UnaryOp::Length:
        switch (v.kind()) {
          case TermKind::String: {
            auto s = str(v.as_string());
            if (!s) return std::move(s).error();
            return Term::integer(static_cast<int64_t>(s->size()));
          }
          case TermKind::Bytes:
            return Term::integer(static_cast<int64_t>(v.as_bytes().size()));
          case TermKind::Set:
            return Term::integer(static_cast<int64_t>(v.as_set().size()));
          case TermKind::Array:
            return Term::integer(static_cast<int64_t>(v.as_array().size()));
          case TermKind::Map:
            return Term::integer(static_cast<int64_t>(v.as_map().size()));
          default:
            return err(K::InvalidType);
        }
      case UnaryOp::TypeOf: {
        static const char* kNames[] = {nullptr, "integer", "string", "date",  "bytes",
                                       "bool",  "set",     "null",   "array", "map"};
        const auto k = static_cast<std::size_t>(v.kind());
        if (k == 0) return err(K::InvalidType);
        return Term::string(symbols_.insert(kNames[k]));
      }
      case UnaryOp::Ffi:
        if (timed_out()) return err(K::Timeout);
        return call_extern(u.ffi_name, v, nullptr);
    }
    return err(K::InvalidType);
  }

  R binary(const Binary& b, const Term& l, const Term& r) {
    const TermKind lk = l.kind();
    const TermKind rk = r.kind();
    const bool same = lk == rk;
    if (costly(b.op, lk) && timed_out()) return err(K::Timeout);
    switch (b.op) {
      case BinaryOp::LessThan:
      case BinaryOp::GreaterThan:
      case BinaryOp::LessOrEqual:
      case BinaryOp::GreaterOrEqual: {
        if (!same || (lk != TermKind::Integer && lk != TermKind::Date)) return err(K::InvalidType);
        const int c = compare(l, r);
        switch (b.op) {
          case BinaryOp::LessThan:
            return Term::boolean(c < 0);
          case BinaryOp::GreaterThan:
            return Term::boolean(c > 0);
          case BinaryOp::LessOrEqual:
            return Term::boolean(c <= 0);
          default:
            return Term::boolean(c >= 0);
        }
      }
      case BinaryOp::Equal:
      case BinaryOp::NotEqual:
        if (!same) return err(K::InvalidType);
        return Term::boolean((compare(l, r) == 0) == (b.op == BinaryOp::Equal));
      case BinaryOp::HeterogeneousEqual:
        return Term::boolean(same && compare(l, r) == 0);
      case BinaryOp::HeterogeneousNotEqual:
        return Term::boolean(!(same && compare(l, r) == 0));
      case BinaryOp::Contains:
        switch (lk) {
          case TermKind::String: {
            if (rk != TermKind::String) return err(K::InvalidType);
            auto s = str(l.as_string());
            if (!s) return std::move(s).error();
            auto p = str(r.as_string());
            if (!p) return std::move(p).error();
            // Two-way search (glibc memmem): linear, where string_view::find is text × pattern.
            return Term::boolean(p->empty() || memmem(s->data(), s->size(), p->data(), p->size()) != nullptr);
          }
          case TermKind::Set: {
            const auto& set = l.as_set();
            if (rk == TermKind::Set) {
              for (const auto& e : r.as_set()) {
                if (!std::binary_search(set.begin(), set.end(), e)) return Term::boolean(false);
              }
              return Term::boolean(true);
            }
            if (rk == TermKind::Integer || rk == TermKind::Date || rk == TermKind::Bool ||
                rk == TermKind::String || rk == TermKind::Bytes) {
              return Term::boolean(std::binary_search(set.begin(), set.end(), r));
            }
            return err(K::InvalidType);
          }
          case TermKind::Array:
            for (const auto& e : l.as_array()) {
              if (e == r) return Term::boolean(true);
            }
            return Term::boolean(false);
          case TermKind::Map:
            for (const auto& [k, v] : l.as_map()) {
              if (k.kind == MapKey::Kind::Integer && rk == TermKind::Integer && k.integer == r.as_integer()) {
                return Term::boolean(true);
              }
              if (k.kind == MapKey::Kind::String && rk == TermKind::String && k.string == r.as_string()) {
                return Term::boolean(true);
              }
            }
            return Term::boolean(false);
          default:
            return err(K::InvalidType);
        }
      case BinaryOp::Prefix:
      case BinaryOp::Suffix: {
        const bool prefix = b.op == BinaryOp::Prefix;
        if (lk == TermKind::String && rk == TermKind::String) {
          auto s = str(l.as_string());
          if (!s) return std::move(s).error();
          auto p = str(r.as_string());
          if (!p) return std::move(p).error();
          if (p->size() > s->size()) return Term::boolean(false);
          return Term::boolean(prefix ? s->substr(0, p->size()) == *p
                                      : s->substr(s->size() - p->size()) == *p);
        }
        if (lk == TermKind::Array && rk == TermKind::Array) {
          const auto& a = l.as_array();
          const auto& p = r.as_array();
          if (p.size() > a.size()) return Term::boolean(false);
          const std::size_t off = prefix ? 0 : a.size() - p.size();
          for (std::size_t i = 0; i < p.size(); ++i) {
            if (a[off + i] != p[i]) return Term::boolean(false);
          }
          return Term::boolean(true);
        }
        return err(K::InvalidType);
      }
      case BinaryOp::Regex: {
        if (lk != TermKind::String || rk != TermKind::String) return err(K::InvalidType);
        auto s = str(l.as_string());
        if (!s) return std::move(s).error();
        auto p = str(r.as_string());
        if (!p) return std::move(p).error();
        if (p->size() > kMaxRegexPatternBytes) return regex_too_costly();
        const RE2* re = compiled_regex(*p);
        if (!re) return Term::boolean(false);
        if (s->size() > kMaxRegexWork / static_cast<std::size_t>(std::max(re->ProgramSize(), 1))) {
          return regex_too_costly();
        }
        return Term::boolean(RE2::PartialMatch(re2::StringPiece(s->data(), s->size()), *re));
      }
      case BinaryOp::Add:
        if (lk == TermKind::String && rk == TermKind::String) {
          auto s1 = str(l.as_string());
          if (!s1) return std::move(s1).error();
          auto s2 = str(r.as_string());
          if (!s2) return std::move(s2).error();
          if (auto e = charge(kStringOverhead + s1->size() + s2->size())) return *e;
          std::string joined;
          joined.reserve(s1->size() + s2->size());
          joined.append(*s1).append(*s2);
          return Term::string(symbols_.insert_owned(std::move(joined)));
        }
        [[fallthrough]];
      case BinaryOp::Sub:
      case BinaryOp::Mul:
      case BinaryOp::Div:
      case BinaryOp::BitwiseAnd:
      case BinaryOp::BitwiseOr:
      case BinaryOp::BitwiseXor: {
        if (lk != TermKind::Integer || rk != TermKind::Integer) return err(K::InvalidType);
        const int64_t x = l.as_integer();
        const int64_t y = r.as_integer();
        int64_t out = 0;
        switch (b.op) {
          case BinaryOp::Add:
            if (__builtin_add_overflow(x, y, &out)) return err(K::Overflow);
            return Term::integer(out);
          case BinaryOp::Sub:
            if (__builtin_sub_overflow(x, y, &out)) return err(K::Overflow);
            return Term::integer(out);
          case BinaryOp::Mul:
            if (__builtin_mul_overflow(x, y, &out)) return err(K::Overflow);
            return Term::integer(out);
          case BinaryOp::Div:
            // The reference maps every checked_div failure (x / 0, MIN / -1) to DivideByZero.
            if (y == 0 || (x == std::numeric_limits<int64_t>::min() && y == -1)) {
              return err(K::DivideByZero);
            }
            return Term::integer(x / y);
          case BinaryOp::BitwiseAnd:
            return Term::integer(x & y);
          case BinaryOp::BitwiseOr:
            return Term::integer(x | y);
          default:
            return Term::integer(x ^ y);
        }
      }
      case BinaryOp::And:
      case BinaryOp::Or:
        if (lk != TermKind::Bool || rk != TermKind::Bool) return err(K::InvalidType);
        return Term::boolean(b.op == BinaryOp::And ? (l.as_bool() && r.as_bool())
                                                   : (l.as_bool() || r.as_bool()));
      case BinaryOp::Intersection:
      case BinaryOp::Union: {
        if (lk != TermKind::Set || rk != TermKind::Set) return err(K::InvalidType);
        const auto& a = l.as_set();
        const auto& c = r.as_set();
        // Charged before it is built: at most the smaller input (intersection), both (union).
        const std::size_t lb = term_bytes(l);
        const std::size_t rb = term_bytes(r);
        if (auto e = charge(b.op == BinaryOp::Intersection ? std::min(lb, rb) : lb + rb)) return *e;
        std::vector<Term> out;
        if (b.op == BinaryOp::Intersection) {
          for (const auto& e : a) {
            if (std::binary_search(c.begin(), c.end(), e)) out.push_back(e);
          }
        } else {
          out = a;
          out.insert(out.end(), c.begin(), c.end());
        }
        return Term::set(std::move(out));
      }
      case BinaryOp::Get:
        if (lk == TermKind::Array && rk == TermKind::Integer) {
          const int64_t i = r.as_integer();
          const auto& a = l.as_array();
          if (i < 0 || static_cast<uint64_t>(i) >= a.size()) return Term::null();
          return a[static_cast<std::size_t>(i)];
        }
        if (lk == TermKind::Map && (rk == TermKind::Integer || rk == TermKind::String)) {
          const MapKey key = rk == TermKind::Integer ? MapKey::from_integer(r.as_integer())
                                                     : MapKey::from_string(r.as_string());
          for (const auto& [k, v] : l.as_map()) {
            if (k == key) return v;
          }
          return Term::null();
        }
        return err(K::InvalidType);
      case BinaryOp::Ffi:
        return call_extern(b.ffi_name, l, &r);
      case BinaryOp::LazyAnd:
      case BinaryOp::LazyOr:
      case BinaryOp::All:
      case BinaryOp::Any:
      case BinaryOp::TryOr:
        return err(K::InvalidType);
    }
    return err(K::InvalidType);
  }

  const Bindings& base_;
  Bindings extra_;
  TemporarySymbols& symbols_;
  const ExternFunctions* externs_;
  EvalBudget& budget_;
};

}  // namespace

Expected<Term, ExecutionError> evaluate(const Expression& expression, const Bindings& bindings,
                                        TemporarySymbols& symbols, const ExternFunctions* externs,
                                        EvalBudget& budget) {
  Evaluator ev(bindings, symbols, externs, budget);
  return ev.run(expression.ops);
}

Expected<Term, ExecutionError> evaluate(const Expression& expression, const Bindings& bindings,
                                        TemporarySymbols& symbols, const ExternFunctions* externs,
                                        std::optional<std::chrono::steady_clock::time_point> deadline) {
  EvalBudget budget;
  budget.deadline = deadline;
  return evaluate(expression, bindings, symbols, externs, budget);
}

}  // namespace biscuit::datalog
