// PgCluster: a throwaway PostgreSQL 15 cluster for integration tests and benchmarks — the one
// way tests start PostgreSQL (through db::EmbeddedCluster, the production code's initdb and
// pg_ctl). Starts in a fresh temp directory on a free 127.0.0.1 port (fsync off, ~1 s), sets up
// the healthcare example (its schema, then its policy file applied: roles, grants, context, RLS
// policies; policy::setup_database), seeds N synthetic rows, and on destruction stops the
// server and removes the directory; a watchdog does the same if the test process dies first.
// Never touches a system cluster. It is set up as a streaming-replication primary.
//
// With Options::standby_of it is instead a hot standby of that running cluster (PgStandby, in
// pg_standby.h, is the short way to ask for one): a physical copy taken with
// `pg_basebackup -R -X stream`, started on its own free port and streaming from the primary.
// Being a physical copy it has the primary's roles, passwords and policy, so the same URLs
// work with its port. It must not outlive its primary.
// Failures throw std::runtime_error (test support only: a test cannot go on without it).
#pragma once

#include <sys/types.h>

#include "db/cluster.h"
#include "db/database.h"
#include "examples/healthcare/generate.h"
#include "policy/policy.h"

#include <chrono>
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
    // Non-null: a hot standby of this running cluster (the fields above are then unused).
    const PgCluster* standby_of = nullptr;
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

  // Stop (fast or immediate) and start again on the same port: for restart tests. A standby's
  // start() returns once it accepts connections in recovery again.
  void stop(bool immediate = false);
  void start();
  bool running() const { return running_; }

  // A standby's (Options::standby_of) replay; throw on a primary.
  // pg_wal_replay_pause()/resume(): WAL keeps arriving but is not applied, so the standby lags
  // behind every write on the primary. pause_replay() returns once replay is actually paused.
  void pause_replay();
  void resume_replay();
  // Waits until the standby has replayed up to the primary's current WAL position (read once,
  // at the call). False on timeout.
  bool wait_caught_up(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  void init_primary(const Options& options);
  void init_standby(const PgCluster& primary);
  void wait_ready(std::chrono::milliseconds timeout);
  const PgCluster& primary_of_standby(const char* what) const;

  const PgCluster* primary_ = nullptr;  // set on a standby
  std::filesystem::path root_;
  db::ClusterState state_;
  policy::Policy policy_;
  bool running_ = false;
  pid_t watchdog_pid_ = -1;  // stops the server if this process dies without the destructor
  int watchdog_fd_ = -1;
  double seed_seconds_ = 0;
};

}  // namespace larder::test
