// pgbench as the yardstick for the database benchmarks: the role it runs as, the script of
// the very SQL the Larder path sends for one point query, and a runner that returns TPS.
#pragma once

#include "db/cluster.h"

#include <map>
#include <string>
#include <vector>

namespace larder::bench {

// Creates role larder_bench with `password`: a member of patients (so the same RLS policies
// apply), reading the context key (so one pgbench connection seals its own context).
bool prepare_pgbench_role(const db::ClusterState& cluster, const std::string& password);

// Writes the pgbench script that does what the Larder DB path does for one point query:
// BEGIN READ ONLY, the context for examples::kErinOrtega sealed to the transaction (on the
// server) + statement_timeout and the other per-request settings, the SELECT, ROLLBACK.
// Returns the script's path (caller unlinks).
std::string write_point_query_script();

// CPU time (user + system, seconds) of the PostgreSQL cluster: its live processes plus every
// backend its postmaster has already reaped. A delta across a run is the cluster's CPU for it
// (robust on a shared machine, where wall-clock throughput swings with the neighbours).
double postgres_cpu_seconds(const db::ClusterState& cluster);
// CPU time of this process, all threads.
double self_cpu_seconds();

// CPU per call, in µs: the database cluster's and the client side's (pgbench, or for Larder
// the server and load generator, which share one process).
struct CpuPerCall {
  double pg_us = 0, client_us = 0;
  double total() const { return pg_us + client_us; }
};

// Runs pgbench for `seconds` with `clients` connections in `mode` ("prepared"|"extended");
// TPS without initial connection time, or -1 (with pgbench's output on stderr). `cpu`, when
// given, receives the CPU per transaction of the cluster and of pgbench itself.
double run_pgbench(const db::ClusterState& cluster, const std::string& password, const std::string& script,
                   int clients, const char* mode, int seconds = 4, CpuPerCall* cpu = nullptr);

// prepared and extended TPS (and CPU per transaction) for each client count.
struct PgbenchFigures {
  std::map<int, double> prepared, extended;
  std::map<int, CpuPerCall> prepared_cpu, extended_cpu;
};
PgbenchFigures pgbench_point_query(const db::ClusterState& cluster, const std::vector<int>& clients,
                                   int seconds = 4);

}  // namespace larder::bench
