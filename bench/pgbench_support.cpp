#include "pgbench_support.h"

#include "db/connection.h"
#include "examples/healthcare/generate.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace larder::bench {

bool prepare_pgbench_role(const db::ClusterState& st, const std::string& password) {
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = st.admin().connect(deadline);
  if (!conn) return false;
  auto r =
      db::exec_script(conn->get(),
                      "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'larder_bench') THEN "
                      "DROP OWNED BY larder_bench; DROP ROLE larder_bench; END IF; END $$; "
                      "CREATE ROLE larder_bench LOGIN INHERIT; "
                      "GRANT patients, larder_context_writer TO larder_bench; "
                      // The whole key row (the pads too): the script seals its context
                      // on the server, the work Larder does in its own process.
                      "GRANT SELECT ON larder_private.context_keys TO larder_bench",
                      deadline);
  if (!r) return false;
  // The password travels as a parameter and is quoted by format(), never concatenated.
  auto pw =
      db::exec_params(conn->get(), "SELECT set_config('larder.bench_pw', $1, false)", {password}, deadline);
  auto alter = db::exec_script(conn->get(),
                               "DO $$ BEGIN EXECUTE format('ALTER ROLE larder_bench PASSWORD %L', "
                               "current_setting('larder.bench_pw')); END $$",
                               deadline);
  return pw.ok() && alter.ok();
}

std::string write_point_query_script() {
  std::string path = "/tmp/larder-bench-point-" + std::to_string(::getpid()) + ".sql";
  std::ofstream f(path);
  // What the database sees for one Larder call (docs/database.md, "The request context"):
  // BEGIN READ ONLY, the context sealed to this transaction (Larder computes the HMAC in its
  // own process; here the server does, from the key's precomputed pads) with the per-request
  // settings, the SELECT, ROLLBACK. Larder sends it in two round trips; pgbench in four.
  f << "BEGIN TRANSACTION READ ONLY;\n"
       "SELECT pg_catalog.set_config('larder.context', pg_catalog.encode(pg_catalog.sha256(k.opad || "
       "pg_catalog.sha256(k.ipad || pg_catalog.convert_to(m.msg, 'UTF8'))), 'hex') || '.' || m.msg, true) AS "
       "c, "
       "pg_catalog.set_config('statement_timeout', '10000', true) AS t, "
       "pg_catalog.set_config('search_path', 'pg_catalog,public', true) AS p, "
       "pg_catalog.set_config('standard_conforming_strings', 'on', true) AS s "
       "FROM (SELECT id, 'larder-ctx-v1.' || id || '.{\"b\":[' || pg_catalog.pg_backend_pid() || ',' || "
       "(EXTRACT(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint || '],\"e\":' || "
       "((EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint + 12500000) || "
       "',\"f\":{\"patient_name\":[\""
    << examples::kErinOrtega
    << "\"]}}' AS msg "
       "FROM larder_private.context_keys ORDER BY id DESC LIMIT 1) m "
       "JOIN larder_private.context_keys k USING (id);\n"
       "SELECT * FROM health_records WHERE \"Patient Name\" = '"
    << examples::kErinOrtega
    << "';\n"
       "ROLLBACK;\n";
  return path;
}

namespace {

struct ProcTimes {
  int ppid = 0;
  double own_s = 0, reaped_children_s = 0;
};

// /proc/<pid>/stat: ppid (field 4), utime/stime (14, 15), cutime/cstime (16, 17), in ticks.
std::optional<ProcTimes> proc_times(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto close = line.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string x; rest >> x && f.size() < 15;) f.push_back(x);
  if (f.size() < 15) return std::nullopt;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  ProcTimes t;
  t.ppid = std::atoi(f[1].c_str());
  t.own_s = (std::stod(f[11]) + std::stod(f[12])) / tick;
  t.reaped_children_s = (std::stod(f[13]) + std::stod(f[14])) / tick;
  return t;
}

double seconds_of(const rusage& u) {
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double children_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  return seconds_of(u);
}

// The postmaster's pid, and its children's times (live, or exited but not yet reaped).
int postmaster_pid(const db::ClusterState& st) {
  std::ifstream pidfile(st.data_dir + "/postmaster.pid");
  std::string line;
  return std::getline(pidfile, line) ? std::atoi(line.c_str()) : 0;
}

std::vector<ProcTimes> children_of(int pm) {
  std::vector<ProcTimes> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto t = proc_times(name); t && t->ppid == pm) out.push_back(*t);
  }
  return out;
}

// Waits (up to 3 s) until the cluster's process count has been stable for 200 ms, so the
// backends of connections just closed are reaped and counted on the right side of a window.
void settle(const db::ClusterState& st) {
  const int pm = postmaster_pid(st);
  if (pm <= 0) return;
  std::size_t last = children_of(pm).size();
  int stable_for = 0;
  for (int waited = 0; waited < 3000 && stable_for < 200; waited += 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::size_t now = children_of(pm).size();
    stable_for = now == last ? stable_for + 20 : 0;
    last = now;
  }
}

}  // namespace

double postgres_cpu_seconds(const db::ClusterState& st) {
  const int pm = postmaster_pid(st);
  if (pm <= 0) return 0;
  auto root = proc_times(std::to_string(pm));
  if (!root) return 0;
  double total = root->own_s + root->reaped_children_s;
  for (const auto& child : children_of(pm)) total += child.own_s;
  return total;
}

double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return seconds_of(u);
}

double run_pgbench(const db::ClusterState& st, const std::string& password, const std::string& script,
                   int clients, const char* mode, int seconds, CpuPerCall* cpu) {
  std::string cmd = "PGPASSWORD=" + password + " " + st.bin_dir + "/pgbench -n -M " + mode + " -T " +
                    std::to_string(seconds) + " -c " + std::to_string(clients) + " -j " +
                    std::to_string(std::min(clients, 4)) + " -f " + script + " -h 127.0.0.1 -p " +
                    std::to_string(st.port) + " -U larder_bench " + st.database + " 2>&1";
  settle(st);
  const double pg_before = postgres_cpu_seconds(st), children_before = children_cpu_seconds();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  settle(st);
  const double pg_s = postgres_cpu_seconds(st) - pg_before,
               client_s = children_cpu_seconds() - children_before;
  std::smatch tps;
  if (std::regex_search(out, tps, std::regex(R"(tps = ([0-9.]+) \(without initial connection time\))"))) {
    std::smatch n;
    if (cpu != nullptr &&
        std::regex_search(out, n, std::regex(R"(number of transactions actually processed: ([0-9]+))"))) {
      const double txns = std::stod(n[1]);
      if (txns > 0) *cpu = CpuPerCall{1e6 * pg_s / txns, 1e6 * client_s / txns};
    }
    return std::stod(tps[1]);
  }
  std::cerr << "pgbench failed:\n" << out << "\n";
  return -1;
}

PgbenchFigures pgbench_point_query(const db::ClusterState& st, const std::vector<int>& clients, int seconds) {
  PgbenchFigures figures;
  auto password = db::random_hex(16);
  if (!password || !prepare_pgbench_role(st, *password)) {
    std::cerr << "pgbench: could not create the pgbench role\n";
    return figures;
  }
  std::string script = write_point_query_script();
  for (int c : clients) {
    figures.prepared[c] =
        run_pgbench(st, *password, script, c, "prepared", seconds, &figures.prepared_cpu[c]);
    figures.extended[c] =
        run_pgbench(st, *password, script, c, "extended", seconds, &figures.extended_cpu[c]);
  }
  ::unlink(script.c_str());
  return figures;
}

}  // namespace larder::bench
