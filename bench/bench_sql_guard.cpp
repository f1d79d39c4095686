// SqlGuard::check time per query for typical LLM-written queries (parse + walk + normalize +
// fingerprint), and for a refusal that stops early — with the verdict cache off, so every
// iteration parses — plus BM_CachedVerdict, a repeated accepted text answered from the cache.
// Reported as µs per query.
#include <benchmark/benchmark.h>

#include <string>

#include "db/sql_guard.h"

namespace {

larder::db::GuardPolicy policy(std::size_t cache_entries) {
  larder::db::GuardPolicy p;
  p.allowed_relations = {"public.health_records"};
  p.verdict_cache_entries = cache_entries;
  return p;
}

const larder::db::SqlGuard& guard() {
  static const larder::db::SqlGuard g(policy(0));
  return g;
}

const larder::db::SqlGuard& caching_guard() {
  static const larder::db::SqlGuard g(policy(512));
  return g;
}

void run(benchmark::State& state, const std::string& sql, bool expect_ok,
         const larder::db::SqlGuard& checker = guard()) {
  for (auto _ : state) {
    auto r = checker.check(sql);
    if (r.ok() != expect_ok) {
      state.SkipWithError("unexpected guard decision");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  // Seconds of CPU per query, printed with an SI prefix (e.g. "52.1u" = 52.1 µs).
  state.counters["per_query"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes"] = static_cast<double>(sql.size());
}

void BM_SimpleCount(benchmark::State& state) {
  run(state, R"(SELECT count(*) FROM health_records WHERE "Age" > $1)", true);
}

void BM_GroupByOrder(benchmark::State& state) {
  run(state,
      R"(SELECT "Medical Condition", round(avg("Billing Amount")::numeric, 2) AS avg_bill, count(*) AS n
FROM health_records WHERE "Date of Admission" >= current_date - interval '1 year'
GROUP BY "Medical Condition" ORDER BY avg_bill DESC LIMIT 10)",
      true);
}

void BM_CteWindowRollup(benchmark::State& state) {
  run(state,
      R"(WITH by_month AS (
  SELECT date_trunc('month', "Date of Admission") AS month, "Hospital", sum("Billing Amount") AS revenue,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY "Billing Amount") AS median_bill
  FROM health_records
  WHERE "Insurance Provider" ILIKE $1
  GROUP BY ROLLUP (1, 2)
), ranked AS (
  SELECT month, "Hospital", revenue, median_bill,
         rank() OVER (PARTITION BY month ORDER BY revenue DESC) AS r,
         lag(revenue) OVER (PARTITION BY "Hospital" ORDER BY month) AS prev
  FROM by_month
)
SELECT month, "Hospital", revenue, CASE WHEN prev IS NULL THEN NULL ELSE revenue - prev END AS delta
FROM ranked WHERE r <= 3 ORDER BY month, r)",
      true);
}

void BM_RefusedFunction(benchmark::State& state) {
  run(state, "SELECT set_config('role', 'postgres', false)", false);
}

void BM_MediumInList(benchmark::State& state) {  // just under 2 KiB: parsed inline
  std::string sql = "SELECT count(*) FROM health_records WHERE id IN (";
  for (int i = 0; sql.size() < 2000; ++i) sql += (i != 0 ? ", " : "") + std::to_string(i);
  sql += ")";
  run(state, sql, true);
}

void BM_LargeInList(benchmark::State& state) {  // > 2 KiB: parsed on the helper thread
  std::string sql = "SELECT count(*) FROM health_records WHERE id IN (";
  for (int i = 0; i < 1000; ++i) sql += (i != 0 ? ", " : "") + std::to_string(i);
  sql += ")";
  run(state, sql, true);
}

}  // namespace

void BM_CachedVerdict(benchmark::State& state) {
  run(state, R"(SELECT "Patient Name", "Medical Condition" FROM health_records WHERE "Patient Name" = $1)",
      true, caching_guard());
}

BENCHMARK(BM_SimpleCount);
BENCHMARK(BM_CachedVerdict);
BENCHMARK(BM_GroupByOrder);
BENCHMARK(BM_CteWindowRollup);
BENCHMARK(BM_RefusedFunction);
BENCHMARK(BM_MediumInList);
BENCHMARK(BM_LargeInList);
BENCHMARK_MAIN();
