// db::ReplicaSet against a real streaming standby (tests/support PgStandby): health, lag
// from replay pauses, down and back, a replica that does not exist, a promoted "replica",
// and the primary-unreachable rule.
#include "db/replica_set.h"
#include "support/pg_cluster.h"
#include "support/pg_standby.h"
#include "support/wait.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

using namespace larder;
using namespace std::chrono_literals;
using larder::test::PgCluster;
using larder::test::PgStandby;

namespace {

std::unique_ptr<PgCluster>& primary_ptr() {
  static std::unique_ptr<PgCluster> p;
  return p;
}
std::unique_ptr<PgStandby>& standby_ptr() {
  static std::unique_ptr<PgStandby> s;
  return s;
}
PgCluster& primary() {
  return *primary_ptr();
}
PgStandby& standby() {
  return *standby_ptr();
}

class Environment : public ::testing::Environment {
 public:
  void SetUp() override {
    PgCluster::Options o;
    o.seed_rows = 50;
    primary_ptr() = std::make_unique<PgCluster>(o);
    (void)primary().admin_scalar("CREATE TABLE lag_probe (id serial PRIMARY KEY, note text NOT NULL)");
    standby_ptr() = std::make_unique<PgStandby>(primary());
  }
  void TearDown() override {
    standby_ptr().reset();
    primary_ptr().reset();
  }
};

db::ReplicaSetOptions fast_options() {
  db::ReplicaSetOptions o;
  o.max_lag = 300ms;
  o.probe_interval = 50ms;
  o.probe_timeout = 1000ms;
  return o;
}

// The query role on both: any role that can log in may probe.
db::ConnParams primary_params() {
  return primary().state().query();
}
db::ConnParams standby_params() {
  return standby().state().query();
}

db::ConnParams dead_params() {
  auto port = db::find_free_port();  // bound and released: nothing listens there
  EXPECT_TRUE(port.ok());
  db::ConnParams p = standby().state().query();
  p.set("port", std::to_string(port.ok() ? *port : 1));
  return p;
}

void write_on_primary(const std::string& note) {
  (void)primary().admin_scalar("INSERT INTO lag_probe (note) VALUES ($1)", {note});
}

TEST(Lsn, Parse) {
  EXPECT_EQ(db::parse_lsn("0/0"), 0u);
  EXPECT_EQ(db::parse_lsn("16/B374D848"), 0x16B374D848ull);
  EXPECT_EQ(db::parse_lsn("0/3000148"), 0x3000148ull);
  EXPECT_EQ(db::parse_lsn("ffffffff/FFFFFFFF"), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_LT(*db::parse_lsn("0/FFFFFFFF"), *db::parse_lsn("1/0"));
  for (const char* bad : {"", "1", "/1", "1/", "g/1", "1/x", "123456789/0", "1/2/3", " 1/2", "-1/2"})
    EXPECT_FALSE(db::parse_lsn(bad).has_value()) << bad;
  // Agrees with the server's pg_lsn ordering.
  EXPECT_EQ(primary().admin_scalar("SELECT '0/FFFFFFFF'::pg_lsn < '1/0'::pg_lsn"), "t");
  const std::string current = primary().admin_scalar("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(db::parse_lsn(current).has_value()) << current;
}

TEST(ReplicaSet, HealthyStandbyIsPicked) {
  ASSERT_TRUE(standby().wait_caught_up(30s));
  db::ReplicaSet set(primary_params(), {standby_params()}, fast_options());
  EXPECT_EQ(set.size(), 1u);
  ASSERT_TRUE(test::wait_until([&] { return set.pick() == std::optional<std::size_t>(0); }, 15s));
  auto st = set.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0].up) << st[0].last_error;
  EXPECT_TRUE(st[0].last_error.empty());
  ASSERT_TRUE(st[0].lag.has_value());
  EXPECT_LE(st[0].lag->count(), 300);
  EXPECT_FALSE(st[0].replay_paused);
  EXPECT_EQ(st[0].name, "127.0.0.1:" + std::to_string(standby().port()) + "/" + primary().state().database);
  EXPECT_EQ(set.primary_error(), "");
}

TEST(ReplicaSet, PausedReplayLagsBeyondMaxLagAndResumeBringsItBack) {
  ASSERT_TRUE(standby().wait_caught_up(30s));
  db::ReplicaSet set(primary_params(), {standby_params()}, fast_options());
  ASSERT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s));
  standby().pause_replay();
  write_on_primary("paused-1");  // one write the standby cannot apply: its lag grows from here
  ASSERT_TRUE(test::wait_until([&] { return !set.pick().has_value(); }, 10s));
  auto st = set.status();
  EXPECT_TRUE(st[0].up);  // up, just too far behind
  ASSERT_TRUE(st[0].lag.has_value());
  EXPECT_GT(st[0].lag->count(), 300);
  EXPECT_TRUE(st[0].replay_paused);
  // Lag keeps growing while paused, without further writes.
  EXPECT_TRUE(test::wait_until(
      [&] {
        auto lag = set.status()[0].lag;
        return lag && lag->count() > st[0].lag->count();
      },
      10s))
      << "the lag stayed at " << st[0].lag->count() << " ms";
  EXPECT_FALSE(set.pick().has_value());

  standby().resume_replay();
  ASSERT_TRUE(test::wait_until([&] { return set.pick() == std::optional<std::size_t>(0); }, 15s));
  EXPECT_FALSE(set.status()[0].replay_paused);
  EXPECT_LE(set.status()[0].lag->count(), 300);
}

TEST(ReplicaSet, StoppedStandbyIsDownUntilItIsBack) {
  db::ReplicaSet set(primary_params(), {standby_params()}, fast_options());
  ASSERT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s));
  standby().stop(false);
  set.report_failure(0);  // a request saw the connection fail
  EXPECT_FALSE(set.pick().has_value());
  set.probe_now();
  auto st = set.status();
  EXPECT_FALSE(st[0].up);
  EXPECT_FALSE(st[0].lag.has_value());
  EXPECT_FALSE(st[0].last_error.empty());
  EXPECT_FALSE(set.pick().has_value());

  standby().start();
  ASSERT_TRUE(test::wait_until([&] { return set.pick() == std::optional<std::size_t>(0); }, 30s))
      << set.status()[0].last_error;
  EXPECT_TRUE(set.status()[0].up);
}

TEST(ReplicaSet, ReportedFailureWithoutAnOutageRecoversOnTheNextProbe) {
  db::ReplicaSet set(primary_params(), {standby_params()}, fast_options());
  ASSERT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s));
  set.report_failure(0);
  EXPECT_FALSE(set.pick().has_value());
  EXPECT_FALSE(set.status()[0].up);
  set.probe_now();
  EXPECT_TRUE(set.status()[0].up) << set.status()[0].last_error;
  EXPECT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s));
  set.report_failure(7);  // out of range: ignored
}

TEST(ReplicaSet, NonExistentReplicaIsDownWithAClearErrorAndNeverPicked) {
  db::ReplicaSet set(primary_params(), {dead_params(), standby_params()}, fast_options());
  ASSERT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(set.pick(), std::optional<std::size_t>(1));
  auto st = set.status();
  EXPECT_FALSE(st[0].up);
  EXPECT_FALSE(st[0].lag.has_value());
  EXPECT_NE(st[0].last_error.find("cannot connect"), std::string::npos) << st[0].last_error;
  EXPECT_TRUE(st[1].up);
}

TEST(ReplicaSet, ReplicaNotInRecoveryIsNotAReplica) {
  // The primary listed as a replica: what a promoted standby looks like.
  db::ReplicaSet set(primary_params(), {primary_params()}, fast_options());
  set.probe_now();
  EXPECT_FALSE(set.pick().has_value());
  auto st = set.status();
  EXPECT_FALSE(st[0].up);
  EXPECT_NE(st[0].last_error.find("not in recovery"), std::string::npos) << st[0].last_error;
}

TEST(ReplicaSet, PrimaryUnreachableStillUsesAnsweringReplicas) {
  auto availability = std::make_shared<db::Availability>("replica-set-test");
  auto options = fast_options();
  options.availability = availability;
  db::ReplicaSet set(dead_params(), {standby_params()}, options);
  EXPECT_EQ(set.pick(), std::optional<std::size_t>(0));
  auto st = set.status();
  EXPECT_TRUE(st[0].up);
  EXPECT_FALSE(st[0].lag.has_value());  // unknown without the primary
  EXPECT_NE(set.primary_error().find("cannot connect"), std::string::npos) << set.primary_error();
  EXPECT_TRUE(availability->down());
}

TEST(ReplicaSet, RoundRobinAmongEligibleReplicas) {
  db::ReplicaSet set(primary_params(), {standby_params(), standby_params(), dead_params()}, fast_options());
  ASSERT_TRUE(test::wait_until([&] { return set.status()[0].up && set.status()[1].up; }, 15s));
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 20; ++i) {
    auto p = set.pick();
    ASSERT_TRUE(p.has_value());
    ++counts[*p];
  }
  EXPECT_EQ(counts[0], 10);
  EXPECT_EQ(counts[1], 10);
  EXPECT_EQ(counts[2], 0);
}

TEST(ReplicaSet, DestructorStopsTheProbeThreadPromptly) {
  auto options = fast_options();
  options.probe_interval = 30s;
  auto set = std::make_unique<db::ReplicaSet>(primary_params(), std::vector<db::ConnParams>{standby_params()},
                                              options);
  // The constructor probed once; its thread now waits out the 30 s interval (a stop that comes
  // before the thread reaches its wait is seen by the wait's predicate all the same).
  ASSERT_TRUE(test::wait_until([&] { return set->status()[0].up; }, 15s)) << set->status()[0].last_error;
  const auto t0 = std::chrono::steady_clock::now();
  set.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST(ReplicaSet, NoReplicasMeansThePrimary) {
  db::ReplicaSet set(primary_params(), {}, fast_options());
  EXPECT_EQ(set.size(), 0u);
  EXPECT_FALSE(set.pick().has_value());
  EXPECT_TRUE(set.status().empty());
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new Environment());
  return RUN_ALL_TESTS();
}
