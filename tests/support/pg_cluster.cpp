#include "support/pg_cluster.h"

#include "examples/examples.h"
#include "examples/healthcare/generate.h"
#include "policy/setup.h"
#include "support/process_support.h"
#include "support/wait.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <tuple>

namespace larder::test {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void fail(const std::string& what, const Error& e) {
  throw std::runtime_error("PgCluster: " + what + ": [" + e.code + "] " + e.message);
}
}  // namespace

PgCluster::PgCluster() : PgCluster(Options{}) {}

PgCluster::PgCluster(Options options) {
  // /tmp is world-traversable, so the postgres user can reach a 0711 directory inside it.
  const char* tmp = std::getenv("LARDER_PG_TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") +
                        (options.standby_of ? "/larder-pg-standby-XXXXXX" : "/larder-pg-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("PgCluster: mkdtemp failed for " + pattern);
  root_ = pattern;
  ::chmod(root_.c_str(), 0711);
  std::tie(watchdog_pid_, watchdog_fd_) =
      start_watchdog(root_.string(), (root_ / "data" / "postmaster.pid").string(), "QUIT");
  try {
    if (options.standby_of) {
      init_standby(*options.standby_of);
    } else {
      init_primary(options);
    }
  } catch (...) {
    discard_cluster(state_, running_, root_, watchdog_pid_, watchdog_fd_);
    throw;
  }
}

void PgCluster::init_primary(const Options& options) {
  db::ClusterOptions co;
  co.durable = false;
  co.max_connections = options.max_connections;
  auto st = db::EmbeddedCluster::init(root_ / "data", co);
  if (!st) fail("initdb", st.error());
  state_ = *st;
  // A primary for streaming replication (standby_of): PostgreSQL 15's defaults already are
  // wal_level = replica, max_wal_senders = 10 and hot_standby = on, and initdb's pg_hba.conf
  // has `host replication all 127.0.0.1/32 scram-sha-256`, so the superuser can stream. Made
  // explicit here; wal_keep_size keeps enough WAL for a standby stopped or paused by a test.
  {
    std::ofstream conf(root_ / "data" / "postgresql.conf", std::ios::app);
    conf << "# ---- streaming replication (tests/support PgCluster::Options::standby_of) ----\n"
         << "wal_level = replica\nmax_wal_senders = 10\nhot_standby = on\nwal_keep_size = '256MB'\n";
    if (!conf) throw std::runtime_error("PgCluster: cannot append to postgresql.conf");
  }
  start();
  auto example = examples::find(options.example);
  if (!example) fail("example", example.error());
  auto parsed = policy::parse((*example)->policy, "<example " + (*example)->name + ">/policy.toml");
  if (!parsed) fail("policy", parsed.error());
  policy_ = std::move(*parsed);
  state_.example = (*example)->name;
  state_.database = (*example)->name;
  state_.query_user = policy_.roles.query;
  state_.writer_user = policy_.roles.writer;
  policy::SetupOptions so;
  so.database = state_.database;
  so.schema_sql = std::string((*example)->schema);
  so.query_password = state_.query_password;
  so.writer_password = state_.writer_password;
  if (auto r = policy::setup_database(state_.admin("postgres"), policy_, so); !r) fail("setup", r.error());
  if (options.seed_rows > 0) {
    auto rep = (*example)->seed(state_.admin(), options.seed_rows,
                                options.seed != 0 ? options.seed : (*example)->default_seed);
    if (!rep) fail("seed", rep.error());
    seed_seconds_ = static_cast<double>(rep->total_time.count()) / 1000.0;
  }
}

void PgCluster::init_standby(const PgCluster& primary) {
  if (!primary.running()) throw std::runtime_error("PgCluster: the standby's primary is not running");
  primary_ = &primary;
  policy_ = primary.policy_;
  const fs::path data = root_ / "data";
  state_ = primary.state();
  state_.data_dir = data.string();
  state_.port = 0;  // EmbeddedCluster::start picks a free one
  // pg_basebackup runs as the server user and cannot create directories in root_ (ours).
  if (::mkdir(data.c_str(), 0700) != 0) throw std::runtime_error("PgCluster: cannot create " + data.string());
  if (auto r = db::give_to_server_user(data, state_.run_as); !r) fail("chown", r.error());
  // -R writes standby.signal and primary_conninfo (with the superuser's password: a test
  // cluster's) into postgresql.auto.conf; -X stream copies the WAL written meanwhile;
  // -c fast asks for an immediate checkpoint instead of waiting for a spread one.
  const std::string conninfo = primary.state().admin("postgres").to_conninfo();
  auto outcome =
      db::run_process({(fs::path(state_.bin_dir) / "pg_basebackup").string(), "-D", data.string(), "-d",
                       conninfo, "-R", "-X", "stream", "-c", "fast", "--no-sync", "--no-manifest"},
                      state_.run_as);
  if (!outcome) fail("pg_basebackup", outcome.error());
  if (outcome->status != 0)
    throw std::runtime_error("PgCluster: pg_basebackup failed (status " + std::to_string(outcome->status) +
                             "): " + outcome->output);
  // The copy holds the primary's server log (pg_basebackup copies it): start afresh.
  std::error_code ec;
  fs::remove(state_.log_file(), ec);
  start();
}

PgCluster::~PgCluster() {
  discard_cluster(state_, running_, root_, watchdog_pid_, watchdog_fd_);
}

Result<std::string> first_value(const db::ConnParams& target, const std::string& sql,
                                const std::vector<db::Param>& params, db::Clock::time_point deadline) {
  auto conn = target.connect(deadline);
  if (!conn) return conn.error();
  auto r = db::exec_params(conn->get(), sql, params, deadline);
  if (!r) return r.error();
  if (PQntuples(r->get()) == 0 || PQnfields(r->get()) == 0 || PQgetisnull(r->get(), 0, 0))
    return std::string();
  return std::string(PQgetvalue(r->get(), 0, 0));
}

void discard_cluster(const db::ClusterState& state, bool running, const fs::path& root, pid_t watchdog_pid,
                     int watchdog_fd) {
  if (running) (void)db::EmbeddedCluster::stop(state, true);
  std::error_code ec;
  fs::remove_all(root, ec);
  stop_watchdog(watchdog_pid, watchdog_fd);
}

std::string PgCluster::admin_scalar(const std::string& sql, const std::vector<db::Param>& params) const {
  auto r = first_value(state_.admin(), sql, params, db::Clock::now() + std::chrono::seconds(30));
  if (!r) fail("admin query", r.error());
  return *r;
}

db::DatabaseConfig PgCluster::database_config(std::size_t pool_size) const {
  db::DatabaseConfig c;
  c.query = state_.query();
  c.writer = state_.writer();
  c.pool_size = pool_size;
  c.guard_policy = policy::guard_policy(policy_);
  return c;
}

void PgCluster::stop(bool immediate) {
  if (!running_) return;
  if (auto r = db::EmbeddedCluster::stop(state_, immediate); !r) fail("stop", r.error());
  running_ = false;
}

void PgCluster::start() {
  if (running_) return;
  // The same port, as promised: wait (briefly) until it can be bound the way the server binds
  // it — a restart right after a stop may find it held a moment longer (a socket of the old
  // server still closing, or another process's ephemeral socket); otherwise
  // EmbeddedCluster::start would move the cluster and every client would lose it.
  if (state_.port != 0) (void)wait_port_bindable(state_.port);
  if (auto r = db::EmbeddedCluster::start(state_); !r) fail("start", r.error());
  running_ = true;
  if (primary_) wait_ready(std::chrono::seconds(60));
}

void PgCluster::wait_ready(std::chrono::milliseconds timeout) {
  // pg_ctl -w already waited for connections; a hot standby accepts them once consistent.
  Error last = make_error("db.unavailable", "not yet asked");
  const bool ready = wait_until(
      [&] {
        auto r = first_value(state_.admin(), "SELECT pg_is_in_recovery()", {},
                             db::Clock::now() + std::chrono::seconds(5));
        if (r && *r == "t") return true;
        last = r ? make_error("db.cluster", "pg_is_in_recovery() is " + *r) : r.error();
        return false;
      },
      timeout, std::chrono::milliseconds(50));
  if (ready) return;
  throw std::runtime_error("PgCluster: the standby is not ready in recovery: " + last.message + "\n" +
                           file_tail(state_.log_file()));
}

const PgCluster& PgCluster::primary_of_standby(const char* what) const {
  if (!primary_)
    throw std::runtime_error(std::string("PgCluster: ") + what + " is for a standby (standby_of)");
  return *primary_;
}

void PgCluster::pause_replay() {
  (void)primary_of_standby("pause_replay");
  (void)admin_scalar("SELECT pg_wal_replay_pause()");
  // PostgreSQL 15: pause is a request; replay stops at the next record boundary.
  if (!wait_until([&] { return admin_scalar("SELECT pg_get_wal_replay_pause_state()") == "paused"; },
                  std::chrono::seconds(30)))
    throw std::runtime_error("PgCluster: the standby's replay did not pause");
}

void PgCluster::resume_replay() {
  (void)primary_of_standby("resume_replay");
  (void)admin_scalar("SELECT pg_wal_replay_resume()");
}

bool PgCluster::wait_caught_up(std::chrono::milliseconds timeout) {
  const PgCluster& primary = primary_of_standby("wait_caught_up");
  // The target: the primary's WAL write position after a synchronous commit. PgCluster runs
  // with synchronous_commit = off, so a commit may still sit in the WAL buffers, beyond
  // pg_current_wal_lsn() (the write position), for up to wal_writer_delay. A transaction that
  // writes WAL and commits with synchronous_commit = on flushes everything before it; a
  // transactional logical message is such a write without a table (it works at wal_level =
  // replica). txid_current() alone would not do: a commit that wrote no other WAL is always
  // asynchronous. Nor would pg_current_wal_insert_lsn(): it can point past a page header that
  // a resting standby never replays to.
  std::string target;
  {
    const auto deadline = db::Clock::now() + std::chrono::seconds(30);
    auto conn = primary.state().admin().connect(deadline);
    if (!conn) fail("primary connection", conn.error());
    for (const char* sql :
         {"SET synchronous_commit = on", "SELECT pg_logical_emit_message(true, 'larder-test', '')"}) {
      if (auto r = db::exec_params(conn->get(), sql, {}, deadline); !r) fail("primary flush", r.error());
    }
    auto r = db::exec_params(conn->get(), "SELECT pg_current_wal_lsn()::text", {}, deadline);
    if (!r) fail("primary position", r.error());
    target = PQgetvalue(r->get(), 0, 0);
  }
  return wait_until(
      [&] {
        // Compared on the server (pg_lsn arithmetic): the target is a typed parameter.
        auto r = first_value(state_.admin(), "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
                             {target}, db::Clock::now() + std::chrono::seconds(5));
        return r && *r == "t";
      },
      timeout);
}

}  // namespace larder::test
