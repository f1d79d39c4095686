// Bounded Datalog: the size limits every block and every typed text is held to before
// anything runs (limits.h), and the evaluation budget — memory (facts + what expressions
// create) and the deadline checked inside expression evaluation (evaluate.h, world.h).
// Finding 4: `check if ({s} + {s} + … 500 times).length() > 0` with a 4,000-character `s`
// took seconds and gigabytes per authorization.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/evaluate.h"
#include "biscuit/datalog/limits.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/world.h"

namespace biscuit::datalog {
namespace {

using Kind = ExecutionError::Kind;
using Clock = std::chrono::steady_clock;

ParseOptions with(const SizeLimits& limits) {
  ParseOptions o;
  o.limits = limits;
  return o;
}

// `check if (s + s + ... n times).length() > 0`, the finding's shape.
std::string concat_check(const std::string& s, int n) {
  std::string code = "check if (";
  for (int i = 0; i < n; ++i) code += (i ? " + \"" : "\"") + s + "\"";
  return code + ").length() > 0";
}

template <class R>
void expect_limit(const R& r, const std::string& fragment, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what;
  EXPECT_EQ(r.error().code, Error::Code::LimitExceeded) << what << ": " << r.error().to_string();
  EXPECT_NE(r.error().to_string().find(fragment), std::string::npos) << what << ": " << r.error().to_string();
}

TEST(SizeLimits, TheFindingsBlockIsRefusedByTheParserWithTheDefaults) {
  // (The finding passes the string as a parameter; typed in, 500 × 4,000 characters would
  // already exceed the 1 MiB input limit, so a shorter one shows the operation limit.)
  const std::string s(100, 'a');
  auto r = parse_block_source(concat_check(s, 500));
  expect_limit(r, "check 0: expression 0: 1003 operations, above the limit of 512", "finding");
  // The same text within every limit parses (an honest long expression).
  EXPECT_TRUE(parse_block_source(concat_check("ab", 200)).ok());
}

TEST(SizeLimits, ExpressionOperationsAndDepth) {
  SizeLimits l;
  l.max_expression_ops = 5;
  expect_limit(parse_check("check if 1 + 2 + 3 == 6", with(l)), "7 operations, above the limit of 5", "ops");
  EXPECT_TRUE(parse_check("check if 1 + 2 == 3", with(l)).ok());
  // Closure bodies count: `true || false` is true, closure(false), || = 3 ops + 1 in the body.
  l.max_expression_ops = 3;
  expect_limit(parse_check("check if true || false", with(l)), "4 operations", "closure ops");

  SizeLimits d;
  d.max_expression_depth = 3;
  expect_limit(parse_check("check if 1 + (2 + (3 + 4)) == 10", with(d)), "stack 4 deep, above the limit of 3",
               "depth");
  EXPECT_TRUE(parse_check("check if 1 + (2 + 3) == 6", with(d)).ok());
  // A closure's stack sits on top of the one that holds it.
  expect_limit(parse_check("check if [1].any($x -> [2].any($y -> $x + $y > 0))", with(d)), "deep",
               "closures");
  d.max_expression_depth = 6;
  EXPECT_TRUE(parse_check("check if [1].any($x -> [2].any($y -> $x + $y > 0))", with(d)).ok());
  // Every parse entry point applies them.
  l.max_expression_ops = 2;
  expect_limit(parse_expression("1 + 2", with(l)), "3 operations", "expression");
  expect_limit(parse_rule("r($x) <- f($x), $x + 1 > 2", with(l)), "expression 0: 5 operations", "rule");
  expect_limit(parse_policy("allow if f($x), $x + 1 > 2", with(l)), "5 operations", "policy");
  expect_limit(parse_authorizer_source("allow if true; deny if 1 + 2 == 3;", with(l)),
               "policy 1: ", "authorizer");
  expect_limit(parse_check("check if f($x), true or g($x), $x + 1 > 0", with(l)), "query 1: expression 0",
               "or-query");
}

TEST(SizeLimits, Literals) {
  SizeLimits l;
  l.max_string_bytes = 4;
  expect_limit(parse_fact("f(\"abcde\")", with(l)), "string of 5 bytes, above the limit of 4", "string");
  EXPECT_TRUE(parse_fact("f(\"abcd\")", with(l)).ok());
  expect_limit(parse_fact("f({\"abcde\": 1})", with(l)), "string of 5 bytes", "map key");
  expect_limit(parse_check("check if \"abcde\".length() > 0", with(l)), "string of 5 bytes",
               "in an expression");
  expect_limit(parse_term("\"abcde\"", with(l)), "string of 5", "term");

  SizeLimits b;
  b.max_bytes_length = 2;
  expect_limit(parse_fact("f(hex:aabbcc)", with(b)), "bytes value of 3 bytes, above the limit of 2", "bytes");
  EXPECT_TRUE(parse_fact("f(hex:aabb)", with(b)).ok());

  SizeLimits c;
  c.max_collection_elements = 2;
  expect_limit(parse_fact("f({1, 2, 3})", with(c)), "collection of 3 elements, above the limit of 2", "set");
  expect_limit(parse_fact("f([1, 2, 3])", with(c)), "collection of 3 elements", "array");
  expect_limit(parse_fact("f({\"a\": 1, \"b\": 2, \"c\": 3})", with(c)), "collection of 3 elements", "map");
  expect_limit(parse_fact("f([[1, 2, 3]])", with(c)), "collection of 3 elements", "nested");
  expect_limit(parse_check("check if {1, 2, 3}.contains(1)", with(c)), "collection of 3", "in an expression");
  EXPECT_TRUE(parse_fact("f({1, 2}, [3, 4])", with(c)).ok());
}

TEST(SizeLimits, PerBlockCountsApplyToBlocksNotToAuthorizerCode) {
  SizeLimits l;
  l.max_block_facts = 2;
  expect_limit(parse_block_source("f(1); f(2); f(3);", with(l)), "3 facts, above the limit of 2", "facts");
  EXPECT_TRUE(parse_block_source("f(1); f(2);", with(l)).ok());
  EXPECT_TRUE(parse_authorizer_source("f(1); f(2); f(3); allow if true;", with(l)).ok());

  SizeLimits r;
  r.max_block_rules = 1;
  expect_limit(parse_block_source("a($x) <- f($x); b($x) <- f($x);", with(r)),
               "2 rules, above the limit of 1", "rules");
  SizeLimits c;
  c.max_block_checks = 1;
  expect_limit(parse_block_source("check if f(1); check if f(2);", with(c)), "2 checks, above the limit of 1",
               "checks");
  SizeLimits t;
  t.max_block_terms = 3;
  // f(1, 2) + g({3, 4}): 2 + 3 (the set and its two elements) = 5 terms.
  expect_limit(parse_block_source("f(1, 2); g({3, 4});", with(t)), "5 terms, above the limit of 3", "terms");
  EXPECT_TRUE(parse_block_source("f(1, 2); g(3);", with(t)).ok());
}

TEST(SizeLimits, InternedBlocksAreHeldToTheSameLimits) {
  auto source = parse_block_source("f(\"a long string\"); check if g($x), $x + 1 > 2;");
  ASSERT_TRUE(source.ok());
  auto block = build_block(*source, SymbolTable{});
  ASSERT_TRUE(block.ok());
  EXPECT_TRUE(check_limits(*block, SizeLimits{}).ok());
  SizeLimits s;
  s.max_string_bytes = 5;
  auto r = check_limits(*block, s);
  expect_limit(r, "symbol 1: string of 13 bytes, above the limit of 5", "symbol");
  SizeLimits o;
  o.max_expression_ops = 4;
  expect_limit(check_limits(*block, o), "check 0: expression 0: 5 operations", "ops");
  SizeLimits f;
  f.max_block_facts = 0;
  expect_limit(check_limits(*block, f), "1 facts, above the limit of 0", "facts");
  EXPECT_TRUE(check_limits(*block, SizeLimits::unlimited()).ok());
}

TEST(SizeLimits, ADeepClosureNestingStopsAtTheLimitWithoutRecursingFurther) {
  // 1,000 nested closures built programmatically (no parser nesting limit on this path).
  ast::Expression e;
  e.ops.push_back(ast::Op{ast::Term::boolean(true)});
  for (int i = 0; i < 1000; ++i) {
    ast::Expression outer;
    outer.ops.push_back(ast::Op{ast::Term::boolean(true)});
    outer.ops.push_back(ast::Op{ast::Closure{{}, std::move(e.ops)}});
    outer.ops.push_back(ast::Op{ast::Binary{BinaryOp::LazyAnd, {}}});
    e = std::move(outer);
  }
  expect_limit(check_limits(e, SizeLimits{}), "above the limit of 128", "nesting");
}

// ---------------------------------------------------------------------------- evaluation

struct Eval {
  SymbolTable symbols;
  Expression expr(const std::string& text) {
    auto parsed = parse_expression(text, with(SizeLimits::unlimited()));
    EXPECT_TRUE(parsed.ok()) << parsed.error().to_string();
    return *intern(*parsed, symbols);
  }
};

TEST(EvalBudget, StringConcatenationIsChargedAndStopsAtTheBudget) {
  Eval ev;
  const std::string s(1000, 'a');
  std::string text = "\"" + s + "\"";
  for (int i = 0; i < 100; ++i) text += " + \"" + s + "\"";
  const Expression e = ev.expr("(" + text + ").length() > 0");
  TemporarySymbols temp(ev.symbols);
  EvalBudget budget;
  budget.memory = 256 * 1024;
  auto r = evaluate(e, {}, temp, nullptr, budget);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooMuchMemory);
  EXPECT_TRUE(r.error().is_run_limit());
  // It stopped before building what the budget could not hold.
  EXPECT_LE(temp.bytes(), std::size_t{256} * 1024);
  // Without a budget the same expression evaluates (~5 MB in all: quadratic in its length).
  EvalBudget unlimited;
  TemporarySymbols temp2(ev.symbols);
  auto ok = evaluate(e, {}, temp2, nullptr, unlimited);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->as_bool());
}

TEST(EvalBudget, SetsAndExternResultsAreCharged) {
  Eval ev;
  std::string set = "{";
  for (int i = 0; i < 1000; ++i) set += (i ? ", " : "") + std::to_string(i);
  set += "}";
  const Expression u = ev.expr(set + ".union(" + set + ").union(" + set + ").length() > 0");
  TemporarySymbols temp(ev.symbols);
  EvalBudget small;
  small.memory = 64 * 1024;
  auto r = evaluate(u, {}, temp, nullptr, small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooMuchMemory);
  EvalBudget enough;
  enough.memory = 1 << 20;
  EXPECT_TRUE(evaluate(u, {}, temp, nullptr, enough).ok());
  EXPECT_LT(enough.memory, std::size_t{1} << 20);  // charged

  ExternFunctions externs;
  externs["big"] = [](const ast::Term&, const std::optional<ast::Term>&) -> Expected<ast::Term, std::string> {
    return ast::Term::string(std::string(100000, 'x'));
  };
  const Expression x = ev.expr("1.extern::big().length() > 0");
  EvalBudget tight;
  tight.memory = 50000;
  auto ext = evaluate(x, {}, temp, &externs, tight);
  ASSERT_FALSE(ext.ok());
  EXPECT_EQ(ext.error().kind, Kind::TooMuchMemory);
  // Small everyday expressions cost nothing.
  EvalBudget zero;
  zero.memory = 0;
  EXPECT_TRUE(evaluate(ev.expr("1 + 2 == 3 && \"abc\".starts_with(\"a\") && [1, 2].contains(2)"), {}, temp,
                       nullptr, zero)
                  .ok());
}

TEST(EvalBudget, TheDeadlineIsCheckedInsideALongExpression) {
  Eval ev;
  // Already past: a string concatenation (cost grows with its operands) checks the clock first.
  const Expression concat = ev.expr("(\"abc\" + \"def\").length() > 0");
  TemporarySymbols temp(ev.symbols);
  EvalBudget past;
  past.deadline = Clock::now();
  auto r = evaluate(concat, {}, temp, nullptr, past);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::Timeout);
  // Cheap operations: checked every 64 operations.
  std::string sum = "0";
  for (int i = 0; i < 100; ++i) sum += " + 1";
  const Expression cheap = ev.expr(sum + " > 0");
  EvalBudget past2;
  past2.deadline = Clock::now();
  auto c = evaluate(cheap, {}, temp, nullptr, past2);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().kind, Kind::Timeout);
  // The deadline-only overload too.
  auto d = evaluate(concat, {}, temp, nullptr, std::optional<Clock::time_point>(Clock::now()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, Kind::Timeout);
  // A deadline in the future changes nothing.
  EvalBudget later;
  later.deadline = Clock::now() + std::chrono::hours(1);
  EXPECT_TRUE(evaluate(cheap, {}, temp, nullptr, later).ok());
  EXPECT_TRUE(evaluate(concat, {}, temp, nullptr, later).ok());
}

TEST(EvalBudget, NoSingleStringOperationRunsForLong) {
  // `contains` is linear (a naive search of this pattern in this text is ~10^10 steps).
  Eval ev;
  const Expression contains = ev.expr("$t.contains($p)");
  const Term text = Term::string(ev.symbols.insert(std::string(256 * 1024, 'a')));
  const Term pattern = Term::string(ev.symbols.insert(std::string(64 * 1024, 'a') + "b"));
  const Term found = Term::string(ev.symbols.insert(std::string(64 * 1024, 'a')));
  const uint32_t t = static_cast<uint32_t>(ev.symbols.insert("t"));
  const uint32_t p = static_cast<uint32_t>(ev.symbols.insert("p"));
  TemporarySymbols temp(ev.symbols);
  EvalBudget budget;
  auto r = evaluate(contains, {{t, &text}, {p, &pattern}}, temp, nullptr, budget);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->as_bool());
  auto yes = evaluate(contains, {{t, &text}, {p, &found}}, temp, nullptr, budget);
  ASSERT_TRUE(yes.ok());
  EXPECT_TRUE(yes->as_bool());
  auto empty = evaluate(ev.expr("\"abc\".contains(\"\")"), {}, temp, nullptr, budget);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->as_bool());  // as before: every string contains the empty one

  // `matches`: a pattern whose program makes RE2 fall back to text × program steps (about
  // 30 s for this text with a 3,000-byte pattern) is refused before it runs.
  std::string hostile;
  for (int i = 0; i < 1000; ++i) hostile += "a?";
  for (int i = 0; i < 1000; ++i) hostile += "a";
  hostile += "b";
  const Term big_regex = Term::string(ev.symbols.insert(hostile));
  const Expression matches = ev.expr("$t.matches($p)");
  auto m = evaluate(matches, {{t, &text}, {p, &big_regex}}, temp, nullptr, budget);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, Kind::Timeout);
  EXPECT_NE(m.error().to_string().find("regular expression too costly"), std::string::npos);
  const Term huge_pattern = Term::string(ev.symbols.insert(std::string(5000, 'a')));
  auto h = evaluate(matches, {{t, &found}, {p, &huge_pattern}}, temp, nullptr, budget);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().kind, Kind::Timeout);
  // Everyday patterns and texts are unaffected.
  const Term small = Term::string(ev.symbols.insert("^[a-z]+$"));
  auto ok = evaluate(matches, {{t, &found}, {p, &small}}, temp, nullptr, budget);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->as_bool());
}

struct WorldFixture {
  SymbolTable symbols;
  World world;
  Rule rule(const std::string& text) {
    auto r = parse_rule(text, with(SizeLimits::unlimited()));
    EXPECT_TRUE(r.ok()) << text;
    return *intern(*r, symbols);
  }
  static RunLimits limits(std::size_t memory) {
    RunLimits l;
    l.max_facts = 1'000'000;
    l.max_iterations = 1000;
    l.max_time = std::chrono::seconds(60);
    l.max_memory_bytes = memory;
    return l;
  }
};

TEST(MemoryBudget, DerivedFactsCountAgainstIt) {
  WorldFixture f;
  const SymbolIndex n = f.symbols.insert("n");
  for (int i = 0; i < 100; ++i) f.world.add_fact(OriginSet{0}, Fact{Predicate{n, {Term::integer(i)}}});
  const std::size_t base = f.world.fact_bytes();
  EXPECT_GT(base, 100 * sizeof(Term));
  // 10,000 pairs: far more than a 256 KiB budget holds.
  f.world.add_rule(0, TrustedOrigins::defaults(), f.rule("p($a, $b) <- n($a), n($b)"));
  auto r = f.world.run(f.symbols, WorldFixture::limits(256 * 1024));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooMuchMemory);
  EXPECT_NE(r.error().to_string().find("262144 bytes"), std::string::npos) << r.error().to_string();
  EXPECT_EQ(f.world.fact_bytes(), base);  // the iteration's facts were dropped
  // With room, it completes.
  EXPECT_TRUE(f.world.run(f.symbols, WorldFixture::limits(64 << 20)).ok());
  EXPECT_EQ(f.world.fact_count(), 10100u);
}

TEST(MemoryBudget, TheWorldsOwnFactsCountAndExpressionsGetWhatIsLeft) {
  WorldFixture f;
  const SymbolIndex big = f.symbols.insert("big");
  f.world.add_fact(OriginSet{0}, Fact{Predicate{big, {Term::bytes(std::vector<uint8_t>(100000, 1))}}});
  auto r = f.world.run(f.symbols, WorldFixture::limits(50000));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooMuchMemory);

  // A check whose expression concatenates: the budget left after the facts bounds it.
  const std::string s(1000, 'a');
  std::string text = "\"" + s + "\"";
  for (int i = 0; i < 100; ++i) text += " + \"" + s + "\"";
  const Rule q = f.rule("q() <- big($b), (" + text + ").length() > 0");
  auto m = f.world.query_match(q, TrustedOrigins::defaults(), f.symbols, QueryLimits{std::nullopt, 1 << 20});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, Kind::TooMuchMemory);
  auto all =
      f.world.query_match_all(q, TrustedOrigins::defaults(), f.symbols, QueryLimits{std::nullopt, 1 << 20});
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().kind, Kind::TooMuchMemory);
  auto rule = f.world.query_rule(f.rule("x(1) <- big($b), (" + text + ").length() > 0"), kAuthorizerBlock,
                                 TrustedOrigins::defaults(), f.symbols, QueryLimits{std::nullopt, 1 << 20});
  ASSERT_FALSE(rule.ok());
  EXPECT_EQ(rule.error().kind, Kind::TooMuchMemory);
  auto fine =
      f.world.query_match(q, TrustedOrigins::defaults(), f.symbols, QueryLimits{std::nullopt, 64 << 20});
  ASSERT_TRUE(fine.ok());
  EXPECT_TRUE(*fine);
}

TEST(MemoryBudget, RuleExpressionsAreBoundedDuringTheFixpoint) {
  WorldFixture f;
  const SymbolIndex n = f.symbols.insert("n");
  f.world.add_fact(OriginSet{0}, Fact{Predicate{n, {Term::integer(1)}}});
  const std::string s(1000, 'a');
  std::string text = "\"" + s + "\"";
  for (int i = 0; i < 100; ++i) text += " + \"" + s + "\"";
  f.world.add_rule(0, TrustedOrigins::defaults(), f.rule("p($x) <- n($x), (" + text + ").length() > 0"));
  auto r = f.world.run(f.symbols, WorldFixture::limits(1 << 20));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooMuchMemory);
  // The deadline reaches inside the same expression.
  RunLimits timed = WorldFixture::limits(std::size_t{1} << 40);
  timed.max_time = std::chrono::nanoseconds(0);
  auto t = f.world.run(f.symbols, timed);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().kind, Kind::Timeout);
}

}  // namespace
}  // namespace biscuit::datalog
