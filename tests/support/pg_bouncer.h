// PgBouncer: Debian's pgbouncer (1.18) in transaction pooling mode in front of a PgCluster
// (and optionally a PgStandby), for tests and benchmarks of Larder behind a pooler. Listens
// on a free 127.0.0.1 port, runs as the clusters' server user (pgbouncer refuses root), logs
// into its temp directory, and on destruction stops and removes it; a watchdog does the same
// if the test process dies first. It must not outlive the clusters it fronts.
//
// [databases]: the primary's database under its own name, and with a standby the same
// database as "<name>_standby"; url_for() rewrites a cluster URL accordingly. The auth_file
// holds the cluster's three roles (superuser, query role, context writer) with their
// plain-text passwords; pgbouncer then speaks SCRAM-SHA-256 (the clusters' password method)
// to both clients and servers.
//
// What transaction pooling means for a client (see tests/integration/db/replica_harness_test):
// each transaction may run on a different server backend, so session state — SET, named
// prepared statements (PgBouncer 1.18 does not track them), advisory locks, temp tables,
// LISTEN — is not reliable across transactions.
// While a server is down, a client logging in waits (PgBouncer logs a client in only once it
// has a server connection) up to client_login_timeout, a query up to query_wait_timeout:
// both 10 s here (defaults 60 s and 120 s); after a server restart PgBouncer retries its login
// every second (server_login_retry).
// Failures throw std::runtime_error, with the tail of pgbouncer's log when it does not start.
#pragma once

#include <sys/types.h>

#include "support/pg_cluster.h"
#include "support/pg_standby.h"

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace larder::test {

class PgBouncer {
 public:
  struct Options {
    int max_client_conn = 400;
    int default_pool_size = 10;  // server connections per (database, user)
    // More login roles for the auth_file (user, plain-text password): e.g. the taint ledger's.
    std::vector<std::pair<std::string, std::string>> extra_users;
  };

  explicit PgBouncer(const PgCluster& primary, const PgStandby* standby = nullptr);
  PgBouncer(const PgCluster& primary, const PgStandby* standby, Options options);
  ~PgBouncer();
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;

  int port() const { return port_; }
  // `url`, a URL of the primary or of the standby (any of their roles), pointed at the
  // bouncer: host and port replaced, and the database renamed to its standby entry when `url`
  // names the standby's port. Throws on a URL of neither.
  std::string url_for(const std::string& url) const;
  db::ConnParams params_for(const db::ConnParams& params) const;
  // The bouncer's log (stdout and stderr of pgbouncer).
  std::string log_file() const { return (root_ / "pgbouncer.log").string(); }

  // Stop (SIGTERM: immediate shutdown, clients are disconnected) and start again on the same
  // port.
  void restart();
  void stop();
  void start();
  bool running() const { return pid_ > 0; }

 private:
  void write_config();
  std::string extra_users() const;
  bool spawn();  // false when pgbouncer exited before accepting connections

  const PgCluster& primary_;
  const PgStandby* standby_;
  Options options_;
  std::filesystem::path root_;
  std::string run_as_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
};

}  // namespace larder::test
