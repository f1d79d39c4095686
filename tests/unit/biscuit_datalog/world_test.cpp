// The engine: origins and trusted scopes, check kinds, run limits (each returning its own
// error, never hanging), errors aborting evaluation, and a large join.
#include <gtest/gtest.h>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"
#include "biscuit/datalog/world.h"

namespace biscuit::datalog {
namespace {

using Kind = ExecutionError::Kind;

struct Fixture {
  SymbolTable symbols;
  World world;
  std::map<uint64_t, std::vector<uint64_t>> key_blocks;

  Fact fact(const std::string& text) { return *intern(*parse_fact(text), symbols); }
  Rule rule(const std::string& text) {
    auto r = parse_rule(text);
    EXPECT_TRUE(r.ok()) << text;
    return *intern(*r, symbols);
  }
  Check check(const std::string& text) {
    auto c = parse_check(text);
    EXPECT_TRUE(c.ok()) << text;
    return *intern(*c, symbols);
  }
  void add_fact(uint64_t block, const std::string& text) { world.add_fact(OriginSet{block}, fact(text)); }
  void add_rule(uint64_t block, const std::string& text) {
    Rule r = rule(text);
    world.add_rule(block,
                   TrustedOrigins::from_scopes(r.scopes, TrustedOrigins::defaults(), block, key_blocks), r);
  }
  Expected<bool, ExecutionError> holds(const std::string& check_text, uint64_t block = kAuthorizerBlock) {
    Check c = check(check_text);
    for (const auto& q : c.queries) {
      const auto trust = TrustedOrigins::from_scopes(q.scopes, TrustedOrigins::defaults(), block, key_blocks);
      Expected<bool, ExecutionError> r = false;
      if (c.kind == CheckKind::All) {
        r = world.query_match_all(q, trust, symbols);
      } else {
        r = world.query_match(q, trust, symbols);
        if (r && c.kind == CheckKind::Reject) r = !*r;
      }
      if (!r || *r) return r;
    }
    return false;
  }
  Expected<void, ExecutionError> run(RunLimits limits = big()) { return world.run(symbols, limits); }
  static RunLimits big() {
    RunLimits l;
    l.max_facts = 1'000'000;
    l.max_iterations = 1000;
    l.max_time = std::chrono::seconds(60);
    return l;
  }
};

TEST(World, DerivedFactsCarryTheUnionOfOrigins) {
  Fixture f;
  f.add_fact(0, "user(\"alice\")");
  f.add_fact(kAuthorizerBlock, "resource(\"file1\")");
  f.add_rule(1, "can($u, $r) <- user($u), resource($r)");
  ASSERT_TRUE(f.run().ok());
  std::vector<std::string> seen;
  f.world.for_each_fact([&](const OriginSet& o, const Fact& fact) {
    if (print_fact(fact, f.symbols).rfind("can", 0) == 0) {
      EXPECT_EQ(o, (OriginSet{0, 1, kAuthorizerBlock}));
      seen.push_back(print_fact(fact, f.symbols));
    }
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"can(\"alice\", \"file1\")"}));
  // The authorizer does not trust block 1: the derived fact is invisible to it...
  EXPECT_FALSE(*f.holds("check if can(\"alice\", \"file1\")"));
  // ...but block 1 itself sees it, and `trusting previous` from block 2 does too.
  EXPECT_TRUE(*f.holds("check if can(\"alice\", \"file1\")", 1));
  EXPECT_FALSE(*f.holds("check if can(\"alice\", \"file1\")", 2));
  EXPECT_TRUE(*f.holds("check if can(\"alice\", \"file1\") trusting previous", 2));
}

TEST(World, AttenuationFactsAreInvisibleToTheAuthorizer) {
  Fixture f;
  f.add_fact(0, "right(\"file1\")");
  f.add_fact(1, "right(\"file2\")");
  ASSERT_TRUE(f.run().ok());
  EXPECT_TRUE(*f.holds("check if right(\"file1\")"));
  EXPECT_FALSE(*f.holds("check if right(\"file2\")"));
  EXPECT_TRUE(*f.holds("check if right(\"file2\")", 1));
  // trusting authority in a block: only block 0 (+ itself + authorizer).
  EXPECT_FALSE(*f.holds("check if right(\"file2\") trusting authority", 2));
  EXPECT_TRUE(*f.holds("check if right(\"file1\") trusting authority", 2));
  // `previous` is ignored in the authorizer.
  EXPECT_FALSE(*f.holds("check if right(\"file2\") trusting previous"));
}

TEST(World, RuleScopesReplaceBlockScopes) {
  const std::map<uint64_t, std::vector<uint64_t>> keys{{7, {2, 3}}};
  const TrustedOrigins block =
      TrustedOrigins::from_scopes({Scope{Scope::Kind::Authority, 0}}, TrustedOrigins::defaults(), 4, keys);
  EXPECT_EQ(block.origins(), (OriginSet{0, 4, kAuthorizerBlock}));
  const TrustedOrigins rule_default = TrustedOrigins::from_scopes({}, block, 4, keys);
  EXPECT_EQ(rule_default.origins(), (OriginSet{0, 4, kAuthorizerBlock}));
  const TrustedOrigins by_key =
      TrustedOrigins::from_scopes({Scope{Scope::Kind::PublicKey, 7}}, block, 4, keys);
  EXPECT_EQ(by_key.origins(), (OriginSet{2, 3, 4, kAuthorizerBlock}));
  const TrustedOrigins unknown_key =
      TrustedOrigins::from_scopes({Scope{Scope::Kind::PublicKey, 8}}, block, 4, keys);
  EXPECT_EQ(unknown_key.origins(), (OriginSet{4, kAuthorizerBlock}));
  const TrustedOrigins previous =
      TrustedOrigins::from_scopes({Scope{Scope::Kind::Previous, 0}}, block, 2, keys);
  EXPECT_EQ(previous.origins(), (OriginSet{0, 1, 2, kAuthorizerBlock}));
  EXPECT_TRUE(previous.contains(OriginSet{1, 2}));
  EXPECT_FALSE(previous.contains(OriginSet{1, 3}));
  EXPECT_TRUE(previous.contains(OriginSet{}));
}

TEST(World, CheckKinds) {
  Fixture f;
  f.add_fact(kAuthorizerBlock, "operation(\"A\")");
  f.add_fact(kAuthorizerBlock, "operation(\"B\")");
  f.add_fact(0, "allowed({\"A\", \"B\"})");
  ASSERT_TRUE(f.run().ok());
  EXPECT_TRUE(*f.holds("check all operation($op), allowed($a), $a.contains($op)"));
  EXPECT_FALSE(*f.holds("check all operation($op), allowed($a), $op == \"A\""));
  EXPECT_FALSE(*f.holds("check all nothing($x), $x == 1"));  // no match: fails
  EXPECT_TRUE(*f.holds("reject if operation(\"C\")"));
  EXPECT_FALSE(*f.holds("reject if operation(\"A\")"));
  EXPECT_TRUE(*f.holds("check if operation(\"C\") or operation(\"B\")"));
  EXPECT_TRUE(*f.holds("check if true"));
  EXPECT_FALSE(*f.holds("check if false"));
  EXPECT_TRUE(*f.holds("check if operation($x), operation($y), $x != $y"));
  EXPECT_FALSE(*f.holds("check if operation($x), operation($x), $x == \"C\""));
}

TEST(World, ExpressionErrorsAbort) {
  Fixture f;
  f.add_fact(0, "n(1)");
  auto r = f.holds("check if n($x), $x + 9223372036854775807 > 0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::Overflow);
  auto nb = f.holds("check if n($x), $x");
  ASSERT_FALSE(nb.ok());
  EXPECT_EQ(nb.error().kind, Kind::InvalidType);  // expressions must be booleans
  auto unk = f.holds("check if n($x), $y > 0");
  ASSERT_FALSE(unk.ok());
  EXPECT_EQ(unk.error().kind, Kind::UnknownVariable);
  f.add_rule(0, "m($x) <- n($x), $x / 0 == 1");
  auto run = f.run();
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().kind, Kind::DivideByZero);
}

TEST(World, UnboundHeadVariablesProduceNothing) {
  Fixture f;
  f.add_fact(0, "operation(\"read\")");
  ParseOptions lenient;
  lenient.validate_rule_variables = false;
  Rule r = *intern(*parse_rule("out($unbound) <- operation($x)", lenient), f.symbols);
  EXPECT_FALSE(head_variables_bound(r));
  f.world.add_rule(0, TrustedOrigins::defaults(), r);
  ASSERT_TRUE(f.run().ok());
  EXPECT_EQ(f.world.fact_count(), 1u);
}

TEST(World, TooManyFacts) {
  Fixture f;
  for (int i = 0; i < 50; ++i) f.add_fact(0, "n(" + std::to_string(i) + ")");
  f.add_rule(0, "pair($x, $y) <- n($x), n($y)");
  RunLimits limits = Fixture::big();
  limits.max_facts = 1000;
  auto r = f.run(limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooManyFacts);
  EXPECT_TRUE(r.error().is_run_limit());
  EXPECT_LE(f.world.fact_count(), 1000u);  // pending facts were discarded
}

TEST(World, TooManyIterations) {
  Fixture f;
  for (int i = 0; i < 200; ++i) {
    f.add_fact(0, "edge(" + std::to_string(i) + ", " + std::to_string(i + 1) + ")");
  }
  f.add_rule(0, "reach($x, $y) <- edge($x, $y)");
  f.add_rule(0, "reach($x, $z) <- reach($x, $y), edge($y, $z)");
  RunLimits limits = Fixture::big();
  limits.max_iterations = 10;
  auto r = f.run(limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::TooManyIterations);
  EXPECT_EQ(f.world.iterations(), 10u);
}

TEST(World, Timeout) {
  Fixture f;
  for (int i = 0; i < 300; ++i) f.add_fact(0, "n(" + std::to_string(i) + ")");
  f.add_rule(0, "triple($x, $y, $z) <- n($x), n($y), n($z)");
  RunLimits limits = Fixture::big();
  limits.max_facts = 100'000'000;
  limits.max_time = std::chrono::nanoseconds(0);
  auto r = f.run(limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::Timeout);
  // Queries honour a deadline too.
  auto q = f.world.query_match(f.rule("q() <- n($x), n($y), n($z), $x + $y + $z < 0"),
                               TrustedOrigins::defaults(), f.symbols, std::chrono::steady_clock::now());
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().kind, Kind::Timeout);
}

TEST(World, ExpensiveExpressionsHonourTheDeadline) {
  // One binding whose expression nests closures over a large set: without a deadline in
  // the evaluator this single evaluation would run for a very long time.
  Fixture f;
  std::vector<Term> items;
  for (int i = 0; i < 5000; ++i) items.push_back(Term::integer(i));
  f.world.add_fact(OriginSet{0}, Fact{Predicate{f.symbols.insert("big"), {Term::set(items)}}});
  const Rule q = f.rule("q() <- big($s), $s.all($x -> $s.all($y -> $s.all($z -> $x + $y + $z > -1)))");
  auto r = f.world.query_match(q, TrustedOrigins::defaults(), f.symbols,
                               std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::Timeout);
  f.add_rule(0, "p(1) <- big($s), $s.all($x -> $s.all($y -> $s.all($z -> $x + $y + $z > -1)))");
  RunLimits limits = Fixture::big();
  limits.max_time = std::chrono::milliseconds(5);
  auto run = f.run(limits);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().kind, Kind::Timeout);
}

TEST(World, TransitiveClosureReachesTheFixpoint) {
  Fixture f;
  const int n = 40;
  for (int i = 0; i < n; ++i) f.add_fact(0, "edge(" + std::to_string(i) + ", " + std::to_string(i + 1) + ")");
  f.add_rule(0, "reach($x, $y) <- edge($x, $y)");
  f.add_rule(0, "reach($x, $z) <- reach($x, $y), reach($y, $z)");
  ASSERT_TRUE(f.run().ok());
  EXPECT_EQ(f.world.fact_count(), static_cast<std::size_t>(n + n * (n + 1) / 2));
  EXPECT_TRUE(*f.holds("check if reach(0, 40)", 0));
  EXPECT_FALSE(*f.holds("check if reach(1, 0)", 0));
  // Running again changes nothing.
  ASSERT_TRUE(f.run().ok());
  EXPECT_EQ(f.world.fact_count(), static_cast<std::size_t>(n + n * (n + 1) / 2));
}

TEST(World, LargeJoinIsIndexed) {
  Fixture f;
  const SymbolIndex a = f.symbols.insert("a");
  const SymbolIndex b = f.symbols.insert("b");
  for (int i = 0; i < 5000; ++i) {
    f.world.add_fact(OriginSet{0}, Fact{Predicate{a, {Term::integer(i), Term::integer(i + 1)}}});
    f.world.add_fact(OriginSet{kAuthorizerBlock},
                     Fact{Predicate{b, {Term::integer(i + 1), Term::integer(i * 2)}}});
  }
  f.add_rule(0, "c($x, $z) <- a($x, $y), b($y, $z)");
  ASSERT_TRUE(f.run().ok());
  EXPECT_EQ(f.world.fact_count(), 15000u);
  EXPECT_TRUE(*f.holds("check if c(4999, 9998)", 0));
  auto derived = f.world.query_rule(f.rule("d($x) <- c($x, $z), $z > 9990"), kAuthorizerBlock,
                                    TrustedOrigins(OriginSet{0, kAuthorizerBlock}), f.symbols);
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(derived->size(), 4u);
}

TEST(World, DuplicatesAndCopies) {
  Fixture f;
  f.add_fact(0, "x(1)");
  f.add_fact(0, "x(1)");
  f.add_fact(1, "x(1)");  // same fact, other origin: kept
  EXPECT_EQ(f.world.fact_count(), 2u);
  World copy = f.world;
  copy.add_fact(OriginSet{2}, f.fact("x(2)"));
  EXPECT_EQ(copy.fact_count(), 3u);
  EXPECT_EQ(f.world.fact_count(), 2u);
}

TEST(World, DumpGroupsAndSorts) {
  Fixture f;
  f.add_fact(kAuthorizerBlock, "b(2)");
  f.add_fact(kAuthorizerBlock, "a(1)");
  f.add_fact(0, "z(1)");
  f.add_rule(1, "y($x) <- z($x)");
  ASSERT_TRUE(f.run().ok());
  WorldDump d = dump_world(f.world, f.symbols,
                           {{kAuthorizerBlock, {f.check("check if b(2)")}},
                            {0, {f.check("check if z(1)"), f.check("check if a(1)")}}},
                           {});
  ASSERT_EQ(d.facts.size(), 3u);
  EXPECT_EQ(d.facts[0].origin, (std::vector<std::optional<uint64_t>>{std::nullopt}));
  EXPECT_EQ(d.facts[0].facts, (std::vector<std::string>{"a(1)", "b(2)"}));
  EXPECT_EQ(d.facts[1].origin, (std::vector<std::optional<uint64_t>>{0}));
  EXPECT_EQ(d.facts[2].origin, (std::vector<std::optional<uint64_t>>{0, 1}));
  ASSERT_EQ(d.checks.size(), 2u);
  EXPECT_EQ(d.checks[0].origin, 0u);
  EXPECT_EQ(d.checks[0].checks, (std::vector<std::string>{"check if a(1)", "check if z(1)"}));
  EXPECT_EQ(d.checks[1].origin, kAuthorizerBlock);
  ASSERT_EQ(d.rules.size(), 1u);
  EXPECT_EQ(d.rules[0].rules, (std::vector<std::string>{"y($x) <- z($x)"}));
}

}  // namespace
}  // namespace biscuit::datalog
