#include "pgbench_support.h"

#include "db/connection.h"
#include "db/seed.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>

namespace larder::bench {

bool prepare_pgbench_role(const db::ClusterState& st, const std::string& password) {
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = st.admin().connect(deadline);
  if (!conn) return false;
  auto r = db::exec_script(conn->get(),
                           "DROP ROLE IF EXISTS larder_bench; CREATE ROLE larder_bench LOGIN INHERIT; "
                           "GRANT patients, larder_context_writer TO larder_bench",
                           deadline);
  if (!r) return false;
  // The password travels as a parameter and is quoted by format(), never concatenated.
  auto pw = db::exec_params(conn->get(), "SELECT set_config('larder.bench_pw', $1, false)", {password}, deadline);
  auto alter = db::exec_script(conn->get(),
                               "DO $$ BEGIN EXECUTE format('ALTER ROLE larder_bench PASSWORD %L', "
                               "current_setting('larder.bench_pw')); END $$",
                               deadline);
  return pw.ok() && alter.ok();
}

std::string write_point_query_script() {
  std::string path = "/tmp/larder-bench-point-" + std::to_string(::getpid()) + ".sql";
  std::ofstream f(path);
  f << "INSERT INTO larder_private.request_context (pid, nonce, patient_names, roles, hospitals, expires_at) "
       "VALUES (pg_backend_pid(), 'benchbenchbenchbenchbenchbench00', '{\"" << db::kErinOrtega << "\"}', '{}', '{}', "
       "clock_timestamp() + interval '10 seconds') ON CONFLICT (pid) DO UPDATE SET nonce = EXCLUDED.nonce, "
       "patient_names = EXCLUDED.patient_names, roles = EXCLUDED.roles, hospitals = EXCLUDED.hospitals, "
       "expires_at = EXCLUDED.expires_at;\n"
       "BEGIN TRANSACTION READ ONLY;\n"
       "SELECT pg_catalog.set_config('larder.request_nonce', 'benchbenchbenchbenchbenchbench00', true), "
       "pg_catalog.set_config('statement_timeout', '10000', true);\n"
       "SELECT * FROM health_records WHERE \"Patient Name\" = '" << db::kErinOrtega << "';\n"
       "ROLLBACK;\n"
       "DELETE FROM larder_private.request_context WHERE pid = pg_backend_pid();\n";
  return path;
}

double run_pgbench(const db::ClusterState& st, const std::string& password, const std::string& script, int clients,
                   const char* mode, int seconds) {
  std::string cmd = "PGPASSWORD=" + password + " " + st.bin_dir + "/pgbench -n -M " + mode + " -T " +
                    std::to_string(seconds) + " -c " + std::to_string(clients) + " -j " +
                    std::to_string(std::min(clients, 4)) + " -f " + script + " -h 127.0.0.1 -p " +
                    std::to_string(st.port) + " -U larder_bench " + st.database + " 2>&1";
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

PgbenchFigures pgbench_point_query(const db::ClusterState& st, const std::vector<int>& clients, int seconds) {
  PgbenchFigures figures;
  auto password = db::random_hex(16);
  if (!password || !prepare_pgbench_role(st, *password)) {
    std::cerr << "pgbench: could not create the pgbench role\n";
    return figures;
  }
  std::string script = write_point_query_script();
  for (int c : clients) {
    figures.prepared[c] = run_pgbench(st, *password, script, c, "prepared", seconds);
    figures.extended[c] = run_pgbench(st, *password, script, c, "extended", seconds);
  }
  ::unlink(script.c_str());
  return figures;
}

}  // namespace larder::bench
