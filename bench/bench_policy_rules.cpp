// What a row rule costs, by kind, on the saas example (default size: 20,000 invoices, 59,802
// lines, 2,500 customers; the Acme tenant owns about a third). The same DB path as
// bench_db_point (guard, context, read-only pipeline), one tenant's context, point queries by
// primary key on:
//   products       public table: USING (true), no context function
//   customers      a direct rule (tenant_id ∈ tenant), read through the masking view
//   invoices       a one-hop join rule (customer_id -> customers.id)
//   invoice_lines  a two-hop join rule (invoice_id -> invoices.id -> customers.id)
// and a count(*) over each (every visible row). Ratios are against products, in one process.
#include "examples/saas/generate.h"
#include "support/pg_cluster.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

using namespace larder;

namespace {

db::Database* g_db = nullptr;

const char* const kTables[] = {"products", "customers", "invoices", "invoice_lines"};

void run(benchmark::State& state, const std::string& sql, const std::vector<db::Param>& params) {
  db::RequestContext ctx;
  ctx.add("tenant", examples::saas::kAcmeTenant);
  ctx.max_rows = 100000;
  ctx.max_bytes = 64 << 20;
  for (auto _ : state) {
    auto r = g_db->query(ctx, sql, params);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(r->rows.size());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Point(benchmark::State& state) {
  // Id 1 of each table is visible to Acme (customer 1, invoice 1 and its lines are Acme's).
  run(state, std::string("SELECT * FROM ") + kTables[state.range(0)] + " WHERE id = $1", {std::string("1")});
}
BENCHMARK(BM_Point)->DenseRange(0, 3)->ArgName("table")->Threads(1)->Threads(8)->UseRealTime()->MinTime(3.0);

void BM_Count(benchmark::State& state) {
  run(state, std::string("SELECT count(*) FROM ") + kTables[state.range(0)], {});
}
BENCHMARK(BM_Count)->DenseRange(0, 3)->ArgName("table")->Threads(1)->UseRealTime()->MinTime(3.0);

class Capture : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      const auto& name = r.run_name.function_name;
      const auto slash = r.run_name.args.find(':');
      const int table = slash == std::string::npos ? 0 : std::stoi(r.run_name.args.substr(slash + 1));
      rate[{name, static_cast<int>(r.threads), table}] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::tuple<std::string, int, int>, double> rate;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  test::PgCluster::Options o;
  o.example = "saas";
  o.seed_rows = examples::saas::kDefaultRows;
  std::unique_ptr<test::PgCluster> cluster;
  try {
    cluster = std::make_unique<test::PgCluster>(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_policy_rules: " << e.what() << "\n";
    return 1;
  }
  db::Database database(cluster->database_config(16));
  g_db = &database;
  Capture reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf(
      "\n=== Row rules by kind (saas, %zu invoices, Acme's context): calls/s and ratio to the public table\n",
      examples::saas::kDefaultRows);
  std::printf("%-14s %-22s %12s %7s %12s %7s %12s %7s\n", "table", "rule", "point x1", "ratio", "point x8",
              "ratio", "count(*)", "ratio");
  const char* rules[] = {"public (true)", "direct, masked view", "1-hop join", "2-hop join"};
  for (int t = 0; t < 4; ++t) {
    auto get = [&](const char* fn, int threads, int table) {
      auto it = reporter.rate.find({fn, threads, table});
      return it == reporter.rate.end() ? -1.0 : it->second;
    };
    const double p1 = get("BM_Point", 1, t), p8 = get("BM_Point", 8, t), c1 = get("BM_Count", 1, t);
    const double b1 = get("BM_Point", 1, 0), b8 = get("BM_Point", 8, 0), bc = get("BM_Count", 1, 0);
    std::printf("%-14s %-22s %12.0f %6.0f%% %12.0f %6.0f%% %12.1f %6.0f%%\n", kTables[t], rules[t], p1,
                b1 > 0 ? 100 * p1 / b1 : 0, p8, b8 > 0 ? 100 * p8 / b8 : 0, c1, bc > 0 ? 100 * c1 / bc : 0);
  }
  return 0;
}
