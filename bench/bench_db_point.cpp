// Point query for one patient through the whole DB path — SQL guard, context write on the
// writer connection, read-only pipeline on the query connection, context delete — at 1, 8
// and 32 client threads, against pgbench running the same SQL (context upsert, BEGIN READ
// ONLY, set nonce, the SELECT, ROLLBACK, context delete) on the same throwaway cluster.
// Also reports the time to seed 55,500 rows with COPY.
#include "db/seed.h"
#include "db/setup.h"
#include "support/pg_cluster.h"

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>

using namespace larder;

namespace {

test::PgCluster* g_cluster = nullptr;
db::Database* g_db = nullptr;
constexpr const char* kPointSql = "SELECT * FROM health_records WHERE \"Patient Name\" = $1";

void BM_PointQuery(benchmark::State& state) {
  db::RequestContext ctx;
  ctx.patient_names = {db::kErinOrtega};
  ctx.guard_enabled = g_db->guard_available();
  std::vector<db::Param> params = {std::string(db::kErinOrtega)};
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

class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) tps[static_cast<int>(r.threads)] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<int, double> tps;
};

// pgbench as a role that is both a member of patients (so the same policies apply) and of
// the context writer (so one connection can do both halves, as pgbench must).
bool prepare_pgbench_role(const db::ClusterState& st, const std::string& password) {
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = st.admin().connect(deadline);
  if (!conn) return false;
  auto r = db::exec_script(conn->get(),
                           "DROP ROLE IF EXISTS larder_bench; CREATE ROLE larder_bench LOGIN INHERIT; "
                           "GRANT patients, larder_context_writer TO larder_bench",
                           deadline);
  if (!r) return false;
  auto pw = db::exec_params(conn->get(),
                            "SELECT set_config('larder.bench_pw', $1, false)", {password}, deadline);
  auto alter = db::exec_script(conn->get(),
                               "DO $$ BEGIN EXECUTE format('ALTER ROLE larder_bench PASSWORD %L', "
                               "current_setting('larder.bench_pw')); END $$",
                               deadline);
  return pw.ok() && alter.ok();
}

double run_pgbench(const db::ClusterState& st, const std::string& password, const std::string& script, int clients,
                   const char* mode) {
  std::string cmd = "PGPASSWORD=" + password + " " + st.bin_dir + "/pgbench -n -M " + mode + " -T 4 -c " +
                    std::to_string(clients) + " -j " + std::to_string(std::min(clients, 4)) + " -f " + script +
                    " -h 127.0.0.1 -p " + std::to_string(st.port) + " -U larder_bench " + st.database + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"(tps = ([0-9.]+) \(without initial connection time\))")))
    return std::stod(m[1]);
  std::cerr << "pgbench failed:\n" << out << "\n";
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  test::PgCluster::Options o;
  o.seed_rows = db::kDefaultSeedRows;
  std::unique_ptr<test::PgCluster> cluster;
  try {
    cluster = std::make_unique<test::PgCluster>(o);
  } catch (const std::exception& e) {
    std::cerr << "bench_db_point: " << e.what() << "\n";
    return 1;
  }
  g_cluster = cluster.get();
  const auto& st = cluster->state();
  auto reseed = db::seed_health_records(st.admin(), db::kDefaultSeedRows, db::kDefaultSeed);
  if (!reseed) {
    std::cerr << "bench_db_point: " << reseed.error().message << "\n";
    return 1;
  }
  db::Database database(cluster->database_config(32));
  g_db = &database;

  CapturingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::string password = *db::random_hex(16);
  std::string script = "/tmp/larder-bench-point-" + std::to_string(::getpid()) + ".sql";
  {
    std::ofstream f(script);
    f << "INSERT INTO larder_private.request_context (pid, nonce, patient_names, roles, hospitals, expires_at) "
         "VALUES (pg_backend_pid(), 'benchbenchbenchbenchbenchbench00', '{\"Erin oRTEga\"}', '{}', '{}', "
         "clock_timestamp() + interval '10 seconds') ON CONFLICT (pid) DO UPDATE SET nonce = EXCLUDED.nonce, "
         "patient_names = EXCLUDED.patient_names, roles = EXCLUDED.roles, hospitals = EXCLUDED.hospitals, "
         "expires_at = EXCLUDED.expires_at;\n"
         "BEGIN TRANSACTION READ ONLY;\n"
         "SELECT pg_catalog.set_config('larder.request_nonce', 'benchbenchbenchbenchbenchbench00', true), "
         "pg_catalog.set_config('statement_timeout', '10000', true);\n"
         "SELECT * FROM health_records WHERE \"Patient Name\" = 'Erin oRTEga';\n"
         "ROLLBACK;\n"
         "DELETE FROM larder_private.request_context WHERE pid = pg_backend_pid();\n";
  }
  std::map<int, double> pgbench, pgbench_extended;
  if (prepare_pgbench_role(st, password)) {
    for (int c : {1, 8, 32}) {
      pgbench[c] = run_pgbench(st, password, script, c, "prepared");
      pgbench_extended[c] = run_pgbench(st, password, script, c, "extended");
    }
  } else {
    std::cerr << "bench_db_point: could not create the pgbench role\n";
  }
  ::unlink(script.c_str());

  std::printf("\n=== DB point query: Larder DB path vs pgbench (same SQL, same cluster, %zu rows)\n",
              db::kDefaultSeedRows);
  std::printf("seed %zu rows: %.3f s total (COPY %.3f s, incl. TRUNCATE+ANALYZE %.3f s)\n", db::kDefaultSeedRows,
              cluster->seed_seconds(), static_cast<double>(reseed->copy_time.count()) / 1000.0,
              static_cast<double>(reseed->total_time.count()) / 1000.0);
  // pgbench -M prepared caches the statements' plans (Larder sends the model's SQL unnamed,
  // parsed and planned per call, as pgbench -M extended does); both are shown.
  std::printf("%8s %12s %18s %7s %18s %7s\n", "clients", "larder TPS", "pgbench prepared", "ratio",
              "pgbench extended", "ratio");
  for (int c : {1, 8, 32}) {
    double ours = reporter.tps.count(c) ? reporter.tps[c] : -1;
    double prep = pgbench.count(c) ? pgbench[c] : -1;
    double ext = pgbench_extended.count(c) ? pgbench_extended[c] : -1;
    std::printf("%8d %12.0f %18.0f %6.0f%% %18.0f %6.0f%%\n", c, ours, prep, prep > 0 ? 100.0 * ours / prep : 0.0, ext,
                ext > 0 ? 100.0 * ours / ext : 0.0);
  }
  std::printf("guard in path: %s\n", database.guard_available() ? "yes" : "no (not built)");
  return 0;
}
