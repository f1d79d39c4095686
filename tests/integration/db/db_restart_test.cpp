// PostgreSQL going away and coming back: a clean error while it is down, never a wrong
// answer, and the pool recovers by itself on the next call.
#include "db_test_env.h"

#include <thread>

using namespace larder;
using larder::test::patient_ctx;
using larder::test::shared_cluster;

namespace {

long long erin_count(db::Database& db) {
  auto r = db.query(patient_ctx({examples::kErinOrtega}), "SELECT count(*) FROM health_records");
  if (!r.ok()) return -1;
  return std::stoll(*r->rows.at(0).at(0));
}

void restart_and_check(bool immediate) {
  db::Database db(shared_cluster()->database_config(4));
  const long long expected =
      std::stoll(larder::test::admin_scalar("SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
                                            {std::string(examples::kErinOrtega)}));
  // Fill the pool with several idle sessions.
  std::vector<std::thread> warm;
  for (int i = 0; i < 4; ++i) warm.emplace_back([&] { (void)erin_count(db); });
  for (auto& t : warm) t.join();
  ASSERT_EQ(erin_count(db), expected);

  shared_cluster()->stop(immediate);
  auto ctx = patient_ctx({examples::kErinOrtega});
  ctx.deadline = db::Clock::now() + std::chrono::seconds(5);
  auto down = db.query(ctx, "SELECT count(*) FROM health_records");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, "db.unavailable") << down.error().message;

  shared_cluster()->start();
  // Recovery: the very next call works (stale sessions are dropped and a fresh one opened).
  EXPECT_EQ(erin_count(db), expected);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(erin_count(db), expected);
}

TEST(DbRestart, FastShutdownThenRecovery) {
  restart_and_check(false);
}
TEST(DbRestart, CrashThenRecovery) {
  restart_and_check(true);
}

TEST(DbRestart, ServerRestartedBehindIdleSessionsIsInvisible) {
  db::Database db(shared_cluster()->database_config(2));
  auto expected = erin_count(db);
  ASSERT_GT(expected, 0);
  shared_cluster()->stop(false);
  shared_cluster()->start();
  // No call happened while it was down: the idle sessions are stale, the call still succeeds.
  EXPECT_EQ(erin_count(db), expected);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(500));
  return RUN_ALL_TESTS();
}
