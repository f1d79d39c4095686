// PgStandby: a hot-standby replica of a running PgCluster for tests and benchmarks of read
// routing. A physical copy taken with `pg_basebackup -R -X stream` into a fresh temp
// directory, started on its own free 127.0.0.1 port and streaming from the primary. Being a
// physical copy it has the primary's roles and passwords, so the same URLs work with the
// standby's port. On destruction it stops the server and removes the directory; a watchdog
// does the same if the test process dies first. It must not outlive its PgCluster.
// Failures throw std::runtime_error (test support only).
#pragma once

#include <sys/types.h>

#include "db/cluster.h"
#include "support/pg_cluster.h"

#include <chrono>
#include <filesystem>
#include <string>

namespace larder::test {

class PgStandby {
 public:
  // Takes the base backup from `primary` (which must be running) and starts the standby;
  // returns once it accepts connections and pg_is_in_recovery() is true.
  explicit PgStandby(const PgCluster& primary);
  ~PgStandby();
  PgStandby(const PgStandby&) = delete;
  PgStandby& operator=(const PgStandby&) = delete;

  // The standby's state: the primary's with this data directory and port.
  const db::ClusterState& state() const { return state_; }
  int port() const { return state_.port; }
  std::string admin_url() const { return state_.admin().to_uri(); }    // superuser, healthcare db
  std::string query_url() const { return state_.query().to_uri(); }    // the policy's query role
  std::string writer_url() const { return state_.writer().to_uri(); }  // the context writer role
  // The first column of the first row of `sql` run as the superuser on the standby; "" when
  // there is no row or it is NULL. Throws on failure.
  std::string admin_scalar(const std::string& sql, const std::vector<db::Param>& params = {}) const;

  // Stop (fast or immediate) and start again on the same port. start() waits until the
  // standby accepts connections in recovery again.
  void stop(bool immediate = false);
  void start();
  bool running() const { return running_; }

  // pg_wal_replay_pause()/resume(): WAL keeps arriving but is not applied, so the standby lags
  // behind every write on the primary. pause_replay() returns once replay is actually paused.
  void pause_replay();
  void resume_replay();
  // Waits until the standby has replayed up to the primary's current WAL position (read once,
  // at the call). False on timeout.
  bool wait_caught_up(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  void wait_ready(std::chrono::milliseconds timeout);

  const PgCluster& primary_;
  std::filesystem::path root_;
  db::ClusterState state_;
  bool running_ = false;
  pid_t watchdog_pid_ = -1;  // stops the server if this process dies without the destructor
  int watchdog_fd_ = -1;
};

}  // namespace larder::test
