// Point query for one patient through the whole DB path — SQL guard, BEGIN READ ONLY and the
// transaction's binding, the sealed context with the SELECT and ROLLBACK in one pipeline — at
// 1, 8 and 32 client threads, against pgbench running the same SQL (BEGIN READ ONLY, the
// context sealed on the server, the SELECT, ROLLBACK) on the same throwaway cluster.
// Also reports the time to seed 55,500 rows with COPY.
#include "examples/healthcare/generate.h"
#include "pgbench_support.h"
#include "support/pg_cluster.h"

#include <benchmark/benchmark.h>

#include <iostream>
#include <map>
#include <memory>

using namespace larder;

namespace {

test::PgCluster* g_cluster = nullptr;
db::Database* g_db = nullptr;
db::Database* g_db_no_ceiling = nullptr;  // max_query_cost = 0: the path without the cost check
constexpr const char* kPointSql = "SELECT * FROM health_records WHERE \"Patient Name\" = $1";

void BM_PointQuery(benchmark::State& state) {
  db::RequestContext ctx;
  ctx.add("patient_name", examples::kErinOrtega);
  ctx.guard_enabled = true;
  std::vector<db::Param> params = {std::string(examples::kErinOrtega)};
  std::size_t rows = 0;
  for (auto _ : state) {
    auto r = g_db->query(ctx, kPointSql, params);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    rows += r->rows.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["rows_per_query"] = benchmark::Counter(
      static_cast<double>(rows) / std::max<double>(1, static_cast<double>(state.iterations())),
      benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_PointQuery)->Threads(1)->Threads(8)->Threads(32)->UseRealTime()->MinTime(4.0);

// The cost ceiling's price. Same point query on a Database without the ceiling (what every
// call cost before it): the difference to BM_PointQuery is a cache hit's cost. Then a new
// parameter value on every call, so every call misses the cache and pays the EXPLAIN round
// trip, with (arg 1) and without (arg 0) the ceiling.
void BM_PointQueryNoCeiling(benchmark::State& state) {
  db::RequestContext ctx;
  ctx.add("patient_name", examples::kErinOrtega);
  std::vector<db::Param> params = {std::string(examples::kErinOrtega)};
  for (auto _ : state) {
    auto r = g_db_no_ceiling->query(ctx, kPointSql, params);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PointQueryNoCeiling)->Threads(1)->Threads(8)->UseRealTime()->MinTime(4.0);

void BM_NewParameterEveryCall(benchmark::State& state) {
  db::Database* db = state.range(0) != 0 ? g_db : g_db_no_ceiling;
  db::RequestContext ctx;
  ctx.add("patient_name", examples::kErinOrtega);
  std::uint64_t n = 0;
  for (auto _ : state) {
    auto r = db->query(ctx, kPointSql, {std::string("patient ") + std::to_string(++n)});
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewParameterEveryCall)->Arg(0)->Arg(1)->ArgName("ceiling")->UseRealTime()->MinTime(4.0);

class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end() && r.run_name.function_name == "BM_PointQuery")
        tps[static_cast<int>(r.threads)] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<int, double> tps;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  test::PgCluster::Options o;
  o.seed_rows = examples::kDefaultSeedRows;
  std::unique_ptr<test::PgCluster> cluster;
  try {
    cluster = std::make_unique<test::PgCluster>(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_db_point: " << e.what() << "\n";
    return 1;
  }
  g_cluster = cluster.get();
  const auto& st = cluster->state();
  auto reseed = examples::seed_health_records(st.admin(), examples::kDefaultSeedRows, examples::kDefaultSeed);
  if (!reseed) {
    std::cerr << "bench_db_point: " << reseed.error().message << "\n";
    return 1;
  }
  db::Database database(cluster->database_config(32));
  g_db = &database;
  auto no_ceiling_config = cluster->database_config(32);
  no_ceiling_config.max_query_cost = 0;
  db::Database no_ceiling(no_ceiling_config);
  g_db_no_ceiling = &no_ceiling;

  CapturingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  auto pgbench = bench::pgbench_point_query(st, {1, 8, 32});

  std::printf("\n=== DB point query: Larder DB path vs pgbench (same SQL, same cluster, %zu rows)\n",
              examples::kDefaultSeedRows);
  std::printf("seed %zu rows: %.3f s total (COPY %.3f s, incl. TRUNCATE+ANALYZE %.3f s)\n",
              examples::kDefaultSeedRows, cluster->seed_seconds(),
              static_cast<double>(reseed->copy_time.count()) / 1000.0,
              static_cast<double>(reseed->total_time.count()) / 1000.0);
  // pgbench -M prepared caches the statements' plans, as Larder does per session for guarded
  // SQL (prepared once, then executed by name); -M extended (parse and plan every time) is
  // shown too.
  std::printf("%8s %12s %18s %7s %18s %7s\n", "clients", "larder TPS", "pgbench prepared", "ratio",
              "pgbench extended", "ratio");
  for (int c : {1, 8, 32}) {
    double ours = reporter.tps.count(c) ? reporter.tps[c] : -1;
    double prep = pgbench.prepared.count(c) ? pgbench.prepared[c] : -1;
    double ext = pgbench.extended.count(c) ? pgbench.extended[c] : -1;
    std::printf("%8d %12.0f %18.0f %6.0f%% %18.0f %6.0f%%\n", c, ours, prep,
                prep > 0 ? 100.0 * ours / prep : 0.0, ext, ext > 0 ? 100.0 * ours / ext : 0.0);
  }
  return 0;
}
