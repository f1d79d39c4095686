#include "support/pg_standby.h"

#include "support/process_support.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace larder::test {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void fail(const std::string& what, const Error& e) {
  throw std::runtime_error("PgStandby: " + what + ": [" + e.code + "] " + e.message);
}

}  // namespace

PgStandby::PgStandby(const PgCluster& primary) : primary_(primary) {
  if (!primary.running()) throw std::runtime_error("PgStandby: the primary is not running");
  // /tmp is world-traversable, so the postgres user can reach a 0711 directory inside it.
  const char* tmp = std::getenv("LARDER_PG_TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/larder-pg-standby-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("PgStandby: mkdtemp failed for " + pattern);
  root_ = pattern;
  ::chmod(root_.c_str(), 0711);
  const fs::path data = root_ / "data";
  std::tie(watchdog_pid_, watchdog_fd_) =
      start_watchdog(root_.string(), (data / "postmaster.pid").string(), "QUIT");
  try {
    state_ = primary.state();
    state_.data_dir = data.string();
    state_.port = 0;  // EmbeddedCluster::start picks a free one
    // pg_basebackup runs as the server user and cannot create directories in root_ (ours).
    if (::mkdir(data.c_str(), 0700) != 0)
      throw std::runtime_error("PgStandby: cannot create " + data.string());
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
      throw std::runtime_error("PgStandby: pg_basebackup failed (status " + std::to_string(outcome->status) +
                               "): " + outcome->output);
    // The copy holds the primary's server log (pg_basebackup copies it): start afresh.
    std::error_code ec;
    fs::remove(state_.log_file(), ec);
    start();
  } catch (...) {
    discard_cluster(state_, running_, root_, watchdog_pid_, watchdog_fd_);
    throw;
  }
}

PgStandby::~PgStandby() {
  discard_cluster(state_, running_, root_, watchdog_pid_, watchdog_fd_);
}

std::string PgStandby::admin_scalar(const std::string& sql, const std::vector<db::Param>& params) const {
  auto r = first_value(state_.admin(), sql, params, db::Clock::now() + std::chrono::seconds(30));
  if (!r) fail("admin query", r.error());
  return *r;
}

void PgStandby::stop(bool immediate) {
  if (!running_) return;
  if (auto r = db::EmbeddedCluster::stop(state_, immediate); !r) fail("stop", r.error());
  running_ = false;
}

void PgStandby::start() {
  if (running_) return;
  // The same port on a restart (see PgCluster::start).
  if (state_.port != 0) (void)wait_port_bindable(state_.port);
  if (auto r = db::EmbeddedCluster::start(state_); !r) fail("start", r.error());
  running_ = true;
  wait_ready(std::chrono::seconds(60));
}

void PgStandby::wait_ready(std::chrono::milliseconds timeout) {
  // pg_ctl -w already waited for connections; a hot standby accepts them once consistent.
  const auto until = db::Clock::now() + timeout;
  Error last = make_error("db.unavailable", "not yet asked");
  while (db::Clock::now() < until) {
    auto r = first_value(state_.admin(), "SELECT pg_is_in_recovery()", {},
                         db::Clock::now() + std::chrono::seconds(5));
    if (r && *r == "t") return;
    if (r) {
      last = make_error("db.cluster", "pg_is_in_recovery() is " + *r);
    } else {
      last = r.error();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("PgStandby: not ready in recovery: " + last.message + "\n" +
                           file_tail(state_.log_file()));
}

void PgStandby::pause_replay() {
  (void)admin_scalar("SELECT pg_wal_replay_pause()");
  // PostgreSQL 15: pause is a request; replay stops at the next record boundary.
  const auto until = db::Clock::now() + std::chrono::seconds(30);
  while (admin_scalar("SELECT pg_get_wal_replay_pause_state()") != "paused") {
    if (db::Clock::now() >= until) throw std::runtime_error("PgStandby: replay did not pause");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void PgStandby::resume_replay() {
  (void)admin_scalar("SELECT pg_wal_replay_resume()");
}

bool PgStandby::wait_caught_up(std::chrono::milliseconds timeout) {
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
    auto conn = primary_.state().admin().connect(deadline);
    if (!conn) fail("primary connection", conn.error());
    for (const char* sql :
         {"SET synchronous_commit = on", "SELECT pg_logical_emit_message(true, 'larder-test', '')"}) {
      if (auto r = db::exec_params(conn->get(), sql, {}, deadline); !r) fail("primary flush", r.error());
    }
    auto r = db::exec_params(conn->get(), "SELECT pg_current_wal_lsn()::text", {}, deadline);
    if (!r) fail("primary position", r.error());
    target = PQgetvalue(r->get(), 0, 0);
  }
  const auto until = db::Clock::now() + timeout;
  while (true) {
    // Compared on the server (pg_lsn arithmetic): the target is a typed parameter.
    auto r = first_value(state_.admin(), "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
                         {target}, db::Clock::now() + std::chrono::seconds(5));
    if (r && *r == "t") return true;
    if (db::Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace larder::test
