// The embedded PostgreSQL cluster behind `larder db init|start|stop|status` and the test
// harness: initdb + pg_ctl from the PostgreSQL 15 binaries, listening on 127.0.0.1 only.
// When running as root the server runs as the `postgres` system user (initdb refuses root):
// the data directory is owned by it and every command goes through `runuser -u postgres --`.
//
// ClusterState is everything later commands need (paths, port, generated passwords); it is
// saved as JSON with mode 0600.
#pragma once

#include "base/result.h"
#include "db/connection.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace larder::db {

inline constexpr const char* kDefaultPgBinDir = "/usr/lib/postgresql/15/bin";
// Defaults of a state file written before the policy file named the database and roles.
inline constexpr const char* kDatabaseName = "healthcare";
inline constexpr const char* kQueryRole = "patients";
inline constexpr const char* kContextWriterRole = "larder_context_writer";

struct ClusterState {
  std::string data_dir;  // absolute
  std::string bin_dir = kDefaultPgBinDir;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string database = kDatabaseName;
  std::string run_as;  // system user the server runs as ("" = current user)
  std::string admin_user = "postgres";
  std::string admin_password;
  std::string query_password;
  std::string writer_password;
  std::string query_user = kQueryRole;           // the policy's query role
  std::string writer_user = kContextWriterRole;  // the policy's context writer role
  std::string example;                           // the example `larder db setup --example` loaded ("" = none)

  ConnParams admin(const std::string& dbname) const;
  ConnParams admin() const { return admin(database); }
  ConnParams query() const;
  ConnParams writer() const;
  std::string log_file() const;  // the server log, inside the data directory

  nlohmann::json to_json() const;
  static Result<ClusterState> from_json(const nlohmann::json& j);
  Result<void> save(const std::filesystem::path& path) const;  // mode 0600
  static Result<ClusterState> load(const std::filesystem::path& path);
};

struct ClusterOptions {
  std::string bin_dir = kDefaultPgBinDir;
  bool durable = true;  // false: fsync=off, synchronous_commit=off (tests, benchmarks)
  int max_connections = 200;
  int port = 0;  // 0: pick a free port at start
};

class EmbeddedCluster {
 public:
  // initdb into `data_dir` (must not exist or be empty) with generated passwords. Does not start.
  static Result<ClusterState> init(const std::filesystem::path& data_dir, const ClusterOptions& options);
  // Starts the server (pg_ctl -w). If the recorded port is 0 or taken, picks a free one and
  // records it in `state`.
  static Result<void> start(ClusterState& state);
  // Stops the server: fast (rolls back sessions) or immediate (crash-like).
  static Result<void> stop(const ClusterState& state, bool immediate = false);
  // True when pg_ctl reports the server running.
  static Result<bool> running(const ClusterState& state);
};

// A free TCP port on 127.0.0.1 (bound and released; callers retry if it is taken meanwhile).
Result<int> find_free_port();

// Runs argv (argv[0] absolute) to completion, optionally as another system user (via
// runuser when we are root); returns the exit status and combined output.
struct ProcessOutcome {
  int status = -1;
  std::string output;
};
Result<ProcessOutcome> run_process(const std::vector<std::string>& argv, const std::string& run_as = "");

// The system user the server must run as: "postgres" when we are root, "" otherwise.
std::string default_server_user();

// chown to the server user (no-op when run_as is empty).
Result<void> give_to_server_user(const std::filesystem::path& path, const std::string& run_as);

}  // namespace larder::db
