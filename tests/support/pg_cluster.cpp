#include "support/pg_cluster.h"

#include "examples/examples.h"
#include "examples/healthcare/generate.h"
#include "policy/setup.h"
#include "support/process_support.h"

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
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/larder-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("PgCluster: mkdtemp failed for " + pattern);
  root_ = pattern;
  ::chmod(root_.c_str(), 0711);
  std::tie(watchdog_pid_, watchdog_fd_) =
      start_watchdog(root_.string(), (root_ / "data" / "postmaster.pid").string(), "QUIT");
  try {
    db::ClusterOptions co;
    co.durable = false;
    co.max_connections = options.max_connections;
    auto st = db::EmbeddedCluster::init(root_ / "data", co);
    if (!st) fail("initdb", st.error());
    state_ = *st;
    // A primary for streaming replication (PgStandby): PostgreSQL 15's defaults already are
    // wal_level = replica, max_wal_senders = 10 and hot_standby = on, and initdb's pg_hba.conf
    // has `host replication all 127.0.0.1/32 scram-sha-256`, so the superuser can stream. Made
    // explicit here; wal_keep_size keeps enough WAL for a standby stopped or paused by a test.
    {
      std::ofstream conf(root_ / "data" / "postgresql.conf", std::ios::app);
      conf << "# ---- streaming replication (tests/support PgStandby) ----\n"
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
  } catch (...) {
    discard_cluster(state_, running_, root_, watchdog_pid_, watchdog_fd_);
    throw;
  }
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
}

}  // namespace larder::test
