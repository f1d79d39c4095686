// PgCluster: a throwaway PostgreSQL 15 cluster for integration tests and benchmarks.
// Starts in a fresh temp directory on a free 127.0.0.1 port (fsync off, ~1 s), sets up the
// healthcare example (its schema, then its policy file applied: roles, grants, context, RLS
// policies; policy::setup_database), seeds N synthetic rows, and on destruction stops the
// server and removes the directory. Never touches a system cluster.
// Failures throw std::runtime_error (test support only: a test cannot go on without it).
#pragma once

#include <sys/types.h>

#include "db/cluster.h"
#include "db/database.h"
#include "examples/healthcare/generate.h"
#include "policy/policy.h"

#include <filesystem>
#include <string>

namespace larder::test {

// The first value of the first row of `sql` on `target` ("" for no row or NULL).
Result<std::string> first_value(const db::ConnParams& target, const std::string& sql,
                                const std::vector<db::Param>& params, db::Clock::time_point deadline);

// Teardown of a throwaway cluster (PgCluster, PgStandby): an immediate stop when it runs, its
// directory removed, its watchdog told.
void discard_cluster(const db::ClusterState& state, bool running, const std::filesystem::path& root,
                     pid_t watchdog_pid, int watchdog_fd);

class PgCluster {
 public:
  struct Options {
    std::size_t seed_rows = 2000;  // 0: no data
    std::uint64_t seed = examples::kDefaultSeed;
    int max_connections = 200;
    std::string example =
        "healthcare";  // examples/<name>: its schema, policy file and data (seed_rows of it)
  };

  PgCluster();
  explicit PgCluster(Options options);
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  const db::ClusterState& state() const { return state_; }
  int port() const { return state_.port; }
  std::string admin_url() const { return state_.admin().to_uri(); }    // superuser, healthcare db
  std::string query_url() const { return state_.query().to_uri(); }    // the policy's query role (patients)
  std::string writer_url() const { return state_.writer().to_uri(); }  // role larder_context_writer
  // The healthcare example's policy file, as applied to the database.
  const policy::Policy& policy() const { return policy_; }
  // Query and writer connections, and the guard policy of the policy file.
  db::DatabaseConfig database_config(std::size_t pool_size = 4) const;
  // The first column of the first row of `sql` run as the superuser (parameters typed, never
  // spliced); "" when there is no row. Throws on failure.
  std::string admin_scalar(const std::string& sql, const std::vector<db::Param>& params = {}) const;
  double seed_seconds() const { return seed_seconds_; }

  // Stop (fast or immediate) and start again on the same port: for restart tests.
  void stop(bool immediate = false);
  void start();
  bool running() const { return running_; }

 private:
  std::filesystem::path root_;
  db::ClusterState state_;
  policy::Policy policy_;
  bool running_ = false;
  pid_t watchdog_pid_ = -1;  // stops the server if this process dies without the destructor
  int watchdog_fd_ = -1;
  double seed_seconds_ = 0;
};

}  // namespace larder::test
