// Biscuit Datalog hot paths: a 10,000-fact world with a two-predicate join rule, parsing
// a typical block, evaluating typical checks, and one expression.
#include <benchmark/benchmark.h>

#include <cstring>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/evaluate.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/world.h"

namespace {

using namespace biscuit::datalog;

RunLimits unlimited() {
  RunLimits l;
  l.max_facts = 10'000'000;
  l.max_iterations = 1000;
  l.max_time = std::chrono::seconds(60);
  return l;
}

// 5,000 a(i, i+1) + 5,000 b(i+1, 2i), rule c($x, $z) <- a($x, $y), b($y, $z): 5,000 joins.
void BM_JoinRule10kFacts(benchmark::State& state) {
  SymbolTable symbols;
  const SymbolIndex a = symbols.insert("a");
  const SymbolIndex b = symbols.insert("b");
  World base;
  for (int64_t i = 0; i < 5000; ++i) {
    base.add_fact(OriginSet{0}, Fact{Predicate{a, {Term::integer(i), Term::integer(i + 1)}}});
    base.add_fact(OriginSet{kAuthorizerBlock},
                  Fact{Predicate{b, {Term::integer(i + 1), Term::integer(2 * i)}}});
  }
  Rule rule = *intern(*parse_rule("c($x, $z) <- a($x, $y), b($y, $z)"), symbols);
  base.add_rule(0, TrustedOrigins::defaults(), rule);
  for (auto _ : state) {
    state.PauseTiming();
    World w = base;
    state.ResumeTiming();
    auto r = w.run(symbols, unlimited());
    if (!r || w.fact_count() != 15000) state.SkipWithError("unexpected result");
    benchmark::DoNotOptimize(w);
  }
}
BENCHMARK(BM_JoinRule10kFacts)->Unit(benchmark::kMillisecond);

// The same join with an expression filter on every binding.
void BM_JoinRuleWithExpression(benchmark::State& state) {
  SymbolTable symbols;
  const SymbolIndex a = symbols.insert("a");
  const SymbolIndex b = symbols.insert("b");
  World base;
  for (int64_t i = 0; i < 5000; ++i) {
    base.add_fact(OriginSet{0}, Fact{Predicate{a, {Term::integer(i), Term::integer(i + 1)}}});
    base.add_fact(OriginSet{0}, Fact{Predicate{b, {Term::integer(i + 1), Term::integer(2 * i)}}});
  }
  Rule filtered = *intern(*parse_rule("c($x, $z) <- a($x, $y), b($y, $z), $z >= 0, $x < 100000"), symbols);
  base.add_rule(0, TrustedOrigins::defaults(), filtered);
  for (auto _ : state) {
    state.PauseTiming();
    World w = base;
    state.ResumeTiming();
    auto r = w.run(symbols, unlimited());
    if (!r) state.SkipWithError("run failed");
    benchmark::DoNotOptimize(w);
  }
}
BENCHMARK(BM_JoinRuleWithExpression)->Unit(benchmark::kMillisecond);

const char* kTypicalBlock = R"(
user("alice");
role("nurse");
hospital("st-mary");
expiry(2030-01-01T00:00:00Z);
right($table, "read") <- role("nurse"), allowed_table($table), $table.starts_with("patient");
check if time($t), expiry($e), $t <= $e;
check if operation($op), ["read", "list"].contains($op);
check if client_cert_sha256(hex:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9);
check if server_audience("larder-db") or mtls_client("claude-client");
)";

void BM_ParseTypicalBlock(benchmark::State& state) {
  for (auto _ : state) {
    auto src = parse_block_source(kTypicalBlock);
    if (!src) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(src);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(std::strlen(kTypicalBlock)));
}
BENCHMARK(BM_ParseTypicalBlock);

void BM_ParseAndBuildTypicalBlock(benchmark::State& state) {
  SymbolTable base;
  for (auto _ : state) {
    auto src = parse_block_source(kTypicalBlock);
    auto block = build_block(*src, base);
    if (!block) state.SkipWithError("build failed");
    benchmark::DoNotOptimize(block);
  }
}
BENCHMARK(BM_ParseAndBuildTypicalBlock);

// A request-sized world: authority facts, ambient facts, rule, four checks.
void BM_AuthorizeTypicalChecks(benchmark::State& state) {
  SymbolTable symbols;
  auto block = build_block(*parse_block_source(kTypicalBlock), symbols);
  symbols.extend(block->symbols);
  auto ambient = parse_authorizer_source(
      "time(2026-01-01T00:00:00Z); operation(\"read\"); allowed_table(\"patients\");"
      "client_cert_sha256(hex:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9);"
      "server_audience(\"larder-db\");");
  std::vector<Fact> ambient_facts;
  for (const auto& f : ambient->facts) ambient_facts.push_back(*intern(f, symbols));
  for (auto _ : state) {
    World w;
    for (const auto& f : block->facts) w.add_fact(OriginSet{0}, f);
    for (const auto& f : ambient_facts) w.add_fact(OriginSet::authorizer(), f);
    for (const auto& r : block->rules) w.add_rule(0, TrustedOrigins::defaults(), r);
    RunLimits limits;
    limits.max_time = std::chrono::seconds(1);
    if (!w.run(symbols, limits)) state.SkipWithError("run failed");
    bool all = true;
    for (const auto& c : block->checks) {
      bool ok = false;
      for (const auto& q : c.queries) {
        auto r = w.query_match(q, TrustedOrigins::defaults(), symbols);
        if (r && *r) ok = true;
      }
      all = all && ok;
    }
    if (!all) state.SkipWithError("a check failed");
  }
}
BENCHMARK(BM_AuthorizeTypicalChecks);

void BM_EvaluateExpression(benchmark::State& state) {
  SymbolTable symbols;
  Expression e =
      *intern(*parse_expression("$t <= 2030-01-01T00:00:00Z && [\"read\", \"list\"].contains($op)"), symbols);
  const Term t = Term::date(1767225600);
  const Term op = Term::string(symbols.insert("read"));
  const Bindings bindings{{static_cast<uint32_t>(*symbols.get("t")), &t},
                          {static_cast<uint32_t>(*symbols.get("op")), &op}};
  for (auto _ : state) {
    TemporarySymbols temp(symbols);
    auto r = evaluate(e, bindings, temp, nullptr);
    if (!r || !r->as_bool()) state.SkipWithError("unexpected result");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_EvaluateExpression);

}  // namespace

BENCHMARK_MAIN();
