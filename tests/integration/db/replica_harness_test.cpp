// The scale-out test harness itself (tests/support): a streaming hot standby of PgCluster
// (PgStandby) and PgBouncer in transaction mode in front of both (PgBouncer).
#include "support/pg_bouncer.h"
#include "support/pg_cluster.h"
#include "support/pg_standby.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

using namespace larder;
using larder::test::PgBouncer;
using larder::test::PgCluster;
using larder::test::PgStandby;

namespace {

struct Harness {
  std::unique_ptr<PgCluster> primary;
  std::unique_ptr<PgStandby> standby;
  std::unique_ptr<PgBouncer> bouncer;
};

Harness& harness() {
  static Harness h;
  return h;
}

class HarnessEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    PgCluster::Options o;
    o.seed_rows = 50;
    harness().primary = std::make_unique<PgCluster>(o);
    (void)harness().primary->admin_scalar(
        "CREATE TABLE replica_probe (id serial PRIMARY KEY, note text NOT NULL)");
    harness().standby = std::make_unique<PgStandby>(*harness().primary);
    harness().bouncer = std::make_unique<PgBouncer>(*harness().primary, harness().standby.get());
  }
  void TearDown() override {
    harness().bouncer.reset();
    harness().standby.reset();
    harness().primary.reset();
  }
};

PgCluster& primary() {
  return *harness().primary;
}
PgStandby& standby() {
  return *harness().standby;
}
PgBouncer& bouncer() {
  return *harness().bouncer;
}

db::PgConn connect(const std::string& url) {
  auto params = db::ConnParams::parse(url);
  if (!params) throw std::runtime_error(params.error().message);
  auto conn = params->connect(db::Clock::now() + std::chrono::seconds(10));
  if (!conn) throw std::runtime_error(conn.error().message);
  return std::move(*conn);
}

// Runs one statement; returns the first value, or throws with the SQLSTATE and message.
std::string value(PGconn* conn, const std::string& sql, const std::vector<db::Param>& params = {}) {
  auto r = db::exec_params(conn, sql, params, db::Clock::now() + std::chrono::seconds(10));
  if (!r) throw std::runtime_error(r.error().message);
  if (PQntuples(r->get()) == 0 || PQnfields(r->get()) == 0) return "";
  return PQgetvalue(r->get(), 0, 0);
}

// The SQLSTATE of a statement that fails ("" when it succeeds).
std::string sqlstate_of(PGconn* conn, const std::string& sql, const std::vector<const char*>& params) {
  db::PgResult r(PQexecParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(),
                              nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) == PGRES_COMMAND_OK || PQresultStatus(r.get()) == PGRES_TUPLES_OK) return "";
  const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
  return state != nullptr ? state : "?";
}

std::string insert_note(const std::string& note) {
  return primary().admin_scalar("INSERT INTO replica_probe (note) VALUES ($1) RETURNING id", {note});
}

std::string standby_count(const std::string& note) {
  return standby().admin_scalar("SELECT count(*) FROM replica_probe WHERE note = $1", {note});
}

TEST(ReplicaHarness, StandbyIsAHotStandbyWithThePrimarysRoles) {
  EXPECT_NE(standby().port(), primary().port());
  EXPECT_EQ(standby().admin_scalar("SELECT pg_is_in_recovery()"), "t");
  // A physical copy: the same roles and passwords, only the port differs.
  for (const auto& url : {standby().query_url(), standby().writer_url(), standby().admin_url()}) {
    auto conn = connect(url);
    EXPECT_EQ(value(conn.get(), "SELECT pg_is_in_recovery()"), "t") << url;
  }
  EXPECT_EQ(primary().admin_scalar("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"),
            "1");
}

TEST(ReplicaHarness, PrimaryWriteIsVisibleOnTheStandbyAfterCatchUp) {
  insert_note("caught-up");
  ASSERT_TRUE(standby().wait_caught_up(std::chrono::seconds(30)));
  EXPECT_EQ(standby_count("caught-up"), "1");
}

TEST(ReplicaHarness, StandbyRefusesWrites) {
  auto conn = connect(standby().admin_url());
  // 25006: read_only_sql_transaction ("cannot execute INSERT in a read-only transaction").
  EXPECT_EQ(sqlstate_of(conn.get(), "INSERT INTO replica_probe (note) VALUES ($1)", {"refused"}), "25006");
}

TEST(ReplicaHarness, PausedReplayHidesNewRowsUntilResumed) {
  standby().pause_replay();
  insert_note("while-paused");
  // WAL still streams in, but is not applied.
  const bool caught_up = standby().wait_caught_up(std::chrono::milliseconds(500));
  EXPECT_FALSE(caught_up);
  EXPECT_EQ(standby_count("while-paused"), "0");
  standby().resume_replay();
  ASSERT_TRUE(standby().wait_caught_up(std::chrono::seconds(30)));
  EXPECT_EQ(standby_count("while-paused"), "1");
}

TEST(ReplicaHarness, StandbyStopAndStartKeepsItsPortAndCatchesUp) {
  const int port = standby().port();
  standby().stop(false);
  insert_note("while-stopped");
  standby().start();
  EXPECT_EQ(standby().port(), port);
  ASSERT_TRUE(standby().wait_caught_up(std::chrono::seconds(30)));
  EXPECT_EQ(standby_count("while-stopped"), "1");
}

TEST(ReplicaHarness, BouncerServesEveryRoleOfPrimaryAndStandby) {
  for (const auto& url : {primary().query_url(), primary().writer_url(), primary().admin_url()}) {
    auto conn = connect(bouncer().url_for(url));
    EXPECT_EQ(value(conn.get(), "SELECT pg_is_in_recovery()"), "f");
  }
  for (const auto& url : {standby().query_url(), standby().writer_url(), standby().admin_url()}) {
    auto conn = connect(bouncer().url_for(url));
    EXPECT_EQ(value(conn.get(), "SELECT pg_is_in_recovery()"), "t");
  }
  EXPECT_THROW((void)bouncer().url_for("postgresql://x@127.0.0.1:1/healthcare"), std::runtime_error);
}

TEST(ReplicaHarness, BouncerTransactionsOfOneClientCanLandOnDifferentBackends) {
  auto a = connect(bouncer().url_for(primary().admin_url()));
  auto b = connect(bouncer().url_for(primary().admin_url()));
  // A's transaction ends, its server connection goes back to the pool; B's open transaction
  // takes it; A's next statement must then run on another backend.
  const std::string first = value(a.get(), "SELECT pg_backend_pid()");
  ASSERT_EQ(value(b.get(), "BEGIN"), "");
  const std::string held = value(b.get(), "SELECT pg_backend_pid()");
  const std::string second = value(a.get(), "SELECT pg_backend_pid()");
  EXPECT_EQ(held, first);
  EXPECT_NE(second, first);
  (void)value(b.get(), "COMMIT");
}

TEST(ReplicaHarness, BouncerNamedPreparedStatementsAreNotReliableAcrossTransactions) {
  // PgBouncer 1.18 does not track protocol-level prepared statements in transaction mode:
  // the statement lives on whichever backend ran the Parse. Not asserted either way (a newer
  // PgBouncer with max_prepared_statements would make it work); documented and recorded.
  auto a = connect(bouncer().url_for(primary().admin_url()));
  auto b = connect(bouncer().url_for(primary().admin_url()));
  db::PgResult prep(PQprepare(a.get(), "larder_s1", "SELECT 1", 0, nullptr));
  ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK) << PQresultErrorMessage(prep.get());
  (void)value(b.get(), "BEGIN");
  (void)value(b.get(), "SELECT 1");  // B now holds the backend that has larder_s1
  db::PgResult run(PQexecPrepared(a.get(), "larder_s1", 0, nullptr, nullptr, nullptr, 0));
  const char* state = PQresultErrorField(run.get(), PG_DIAG_SQLSTATE);
  const std::string outcome = PQresultStatus(run.get()) == PGRES_TUPLES_OK
                                  ? "worked"
                                  : std::string("failed with SQLSTATE ") + (state != nullptr ? state : "?");
  ::testing::Test::RecordProperty("prepared_statement_on_another_backend", outcome);
  std::printf("named prepared statement after its backend was taken: %s\n", outcome.c_str());
  (void)value(b.get(), "COMMIT");
}

TEST(ReplicaHarness, BouncerIgnoresTheOptionsStartupParameter) {
  // Accepted (ignore_startup_parameters) but dropped: the server never sees it.
  auto params = db::ConnParams::parse(bouncer().url_for(primary().admin_url()));
  ASSERT_TRUE(params.ok());
  params->set("options", "-c search_path=nowhere");
  auto conn = params->connect(db::Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  EXPECT_NE(value(conn->get(), "SHOW search_path"), "nowhere");
  // Directly, the same parameter takes effect.
  auto direct = db::ConnParams::parse(primary().admin_url());
  direct->set("options", "-c search_path=nowhere");
  auto dconn = direct->connect(db::Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(dconn.ok()) << dconn.error().message;
  EXPECT_EQ(value(dconn->get(), "SHOW search_path"), "nowhere");
}

TEST(ReplicaHarness, BouncerRestartKeepsItsPort) {
  const int port = bouncer().port();
  {
    auto before = connect(bouncer().url_for(primary().query_url()));
    EXPECT_EQ(value(before.get(), "SELECT 1"), "1");
    bouncer().restart();
    // The old client connection was cut by the restart (not asserted: how libpq reports it varies).
  }
  EXPECT_EQ(bouncer().port(), port);
  auto after = connect(bouncer().url_for(primary().query_url()));
  EXPECT_EQ(value(after.get(), "SELECT 1"), "1");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new HarnessEnvironment());
  return RUN_ALL_TESTS();
}
