// pgbench as the yardstick for the database benchmarks: the role it runs as, the script of
// the very SQL the Larder path sends for one point query, and a runner that returns TPS.
#pragma once

#include "db/cluster.h"

#include <map>
#include <string>
#include <vector>

namespace larder::bench {

// Creates role larder_bench with `password`: a member of patients (so the same RLS policies
// apply) and of the context writer (so one pgbench connection can do both halves).
bool prepare_pgbench_role(const db::ClusterState& cluster, const std::string& password);

// Writes the pgbench script that does what the Larder DB path does for one point query:
// context upsert for db::kErinOrtega, BEGIN READ ONLY, request nonce + statement_timeout, the SELECT, ROLLBACK,
// context delete. Returns the script's path (caller unlinks).
std::string write_point_query_script();

// Runs pgbench for `seconds` with `clients` connections in `mode` ("prepared"|"extended");
// TPS without initial connection time, or -1 (with pgbench's output on stderr).
double run_pgbench(const db::ClusterState& cluster, const std::string& password, const std::string& script,
                   int clients, const char* mode, int seconds = 4);

// prepared and extended TPS for each client count.
struct PgbenchFigures {
  std::map<int, double> prepared, extended;
};
PgbenchFigures pgbench_point_query(const db::ClusterState& cluster, const std::vector<int>& clients,
                                   int seconds = 4);

}  // namespace larder::bench
