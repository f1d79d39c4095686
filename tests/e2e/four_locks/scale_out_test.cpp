// The four locks end to end on PostgreSQL's own scale-out machinery (docs/deployment.md): the
// demo's scenarios through PgBouncer in transaction mode, with a streaming hot standby
// serving the queries, and both; then the failures an operator meets — a replica stopped
// mid-run, a replica lagging beyond max_replica_lag_ms, PgBouncer restarted, the primary
// restarted while the replica serves. Every answer an agent gets is either its own rows or a
// typed refusal naming the lock; nothing is lost and the server recovers without a restart.
#include "examples/healthcare/demo.h"
#include "examples/healthcare/generate.h"
#include "mcp/client.h"
#include "support/testbed.h"
#include "support/wait.h"
#include "tools/demo_scenarios.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace larder {
namespace {

using Path = test::Testbed::Options::Path;

test::Testbed::Options on(Path path, std::chrono::milliseconds max_lag = std::chrono::milliseconds(1000)) {
  test::Testbed::Options o;
  o.path = path;
  o.max_replica_lag = max_lag;
  return o;
}

// ---- The demo's scenarios on each path ----

class ScenariosOnEveryPath : public ::testing::TestWithParam<Path> {};

TEST_P(ScenariosOnEveryPath, EveryDemoScenarioBehavesAsRequired) {
  test::Testbed bed(on(GetParam()));
  bed.start_servers();
  auto env = bed.environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, bed.busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto outcomes = examples::healthcare::run_demo_scenarios(env, *tokens, nullptr);
  ASSERT_GE(outcomes.size(), 20u);
  for (const auto& o : outcomes) {
    EXPECT_TRUE(o.expected) << test::Testbed::path_name(GetParam()) << ": " << o.name
                            << "\n  request: " << o.request << "\n  outcome: " << o.outcome
                            << "\n  lock: " << o.lock;
  }
  if (GetParam() == Path::replica || GetParam() == Path::replica_pgbouncer) {
    // The reads went to the standby; the ledger's writes to the primary (taint held above).
    EXPECT_GT(bed.db->database_stats().replica_calls, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, ScenariosOnEveryPath,
                         ::testing::Values(Path::pgbouncer, Path::replica, Path::replica_pgbouncer),
                         [](const auto& info) { return std::string(test::Testbed::path_name(info.param)); });

// ---- Failures mid-run ----

// One agent: Erin's token over one mTLS session, asking for her admissions.
class Agent {
 public:
  explicit Agent(test::Testbed& bed) : bed_(bed) {
    env_ = bed.environment();
    auto tokens = examples::healthcare::mint_demo_tokens(env_, bed.busiest_hospital());
    if (!tokens) throw std::runtime_error(tokens.error().message);
    token_ = tokens->erin;
    connect();
    auto truth = bed_.cluster().state().admin().connect(db::Clock::now() + std::chrono::seconds(10));
    if (!truth) throw std::runtime_error(truth.error().message);
    auto r =
        db::exec_params(truth->get(), "SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
                        {std::string(examples::kErinOrtega)}, db::Clock::now() + std::chrono::seconds(10));
    if (!r) throw std::runtime_error(r.error().message);
    erin_rows_ = std::stoul(PQgetvalue(r->get(), 0, 0));
  }

  void connect() {
    net::TlsClientConfig tls{env_.ca_file, env_.claude.cert, env_.claude.key, "", false};
    auto c = mcp::Client::connect_http(env_.db_url, tls, {{"Authorization", "Bearer " + token_}});
    if (!c) throw std::runtime_error(c.error().message);
    client_ = std::move(*c);
  }

  // "rows:<n>" when every row is Erin's; "refused:<lock>" for a typed refusal; anything else
  // (a row of someone else, an untyped error) is a failure of the test.
  std::string ask() {
    auto r = client_->call_tool("pg_query", {{"query", "SELECT \"Patient Name\" FROM health_records"}});
    if (!r) return "transport:" + r.error().message;
    if (r->value("isError", false)) {
      const auto& decision = (*r)["_meta"]["larder/decision"];
      const std::string lock = decision.value("lock", "");
      if (lock.empty()) return "untyped:" + r->dump();
      const std::string text = (*r)["content"][0].value("text", "");
      if (text.find("Erin") != std::string::npos) return "leak:" + text;
      return "refused:" + lock;
    }
    auto content = nlohmann::json::parse((*r)["content"][0].value("text", "{}"), nullptr, false);
    if (content.is_discarded() || !content.contains("rows")) return "unreadable:" + r->dump();
    for (const auto& row : content["rows"])
      if (row.value("Patient Name", "") != examples::kErinOrtega) return "leak:" + row.dump();
    return "rows:" + std::to_string(content["rows"].size());
  }

  // One call every 25 ms at most: an agent within the server's per-client and per-lineage
  // rates (the limits lock is not what these tests are about).
  std::string paced_ask() {
    std::this_thread::sleep_until(last_ + std::chrono::milliseconds(25));
    last_ = std::chrono::steady_clock::now();
    return ask();
  }

  std::string own() const { return "rows:" + std::to_string(erin_rows_); }
  void add_admission() {  // one more row of Erin's, on the primary
    admin_exec(
        "INSERT INTO health_records (\"Patient Name\", \"Age\", \"Gender\", \"Blood Type\", \"Medical "
        "Condition\", "
        "\"Date of Admission\", \"Doctor\", \"Hospital\", \"Insurance Provider\", \"Billing Amount\", "
        "\"Room Number\", \"Admission Type\", \"Discharge Date\", \"Medication\", \"Test Results\") "
        "SELECT \"Patient Name\", \"Age\", \"Gender\", \"Blood Type\", \"Medical Condition\", \"Date of "
        "Admission\", "
        "\"Doctor\", \"Hospital\", \"Insurance Provider\", \"Billing Amount\", \"Room Number\", \"Admission "
        "Type\", "
        "\"Discharge Date\", \"Medication\", \"Test Results\" FROM health_records WHERE \"Patient Name\" = "
        "'Erin oRTEga' LIMIT 1");
    ++erin_rows_;
  }

 private:
  void admin_exec(const std::string& sql) {
    auto c = bed_.cluster().state().admin().connect(db::Clock::now() + std::chrono::seconds(10));
    if (!c) throw std::runtime_error(c.error().message);
    auto r = db::exec_script(c->get(), sql, db::Clock::now() + std::chrono::seconds(10));
    if (!r) throw std::runtime_error(r.error().message);
  }

  test::Testbed& bed_;
  tools::DemoEnvironment env_;
  std::string token_;
  std::unique_ptr<mcp::Client> client_;
  std::size_t erin_rows_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// Asks until `ok` holds for an answer or `within` passes; returns the last answer.
std::string ask_until(Agent& a, const std::function<bool(const std::string&)>& ok,
                      std::chrono::milliseconds within = std::chrono::seconds(20)) {
  std::string last;
  test::wait_until(
      [&] {
        last = a.paced_ask();
        return ok(last);
      },
      within, std::chrono::milliseconds(50));
  return last;
}

bool is_clean(const std::string& answer) {
  return answer.rfind("rows:", 0) == 0 || answer.rfind("refused:", 0) == 0;
}

TEST(ScaleOut, AReplicaStoppedMidRunSendsTheReadsToThePrimaryAndBackWhenItReturns) {
  test::Testbed bed(on(Path::replica));
  bed.start_servers();
  Agent agent(bed);
  EXPECT_EQ(agent.paced_ask(), agent.own());
  std::atomic<bool> stop{false};
  std::vector<std::string> answers;
  std::atomic<std::size_t> answered{0};
  std::thread load([&] {
    while (!stop) {
      answers.push_back(agent.paced_ask());
      ++answered;
    }
  });
  // Windows of calls counted, not timed: a few before the standby dies, ten after.
  EXPECT_TRUE(test::wait_until([&] { return answered >= 3; }, std::chrono::seconds(30)));
  const auto before = bed.db->database_stats();
  bed.standby()->stop(/*immediate=*/true);
  const std::size_t at_stop = answered;
  EXPECT_TRUE(test::wait_until([&] { return answered >= at_stop + 10; }, std::chrono::seconds(60)));
  stop = true;
  load.join();
  std::size_t refused = 0;
  for (const auto& a : answers) {
    EXPECT_TRUE(is_clean(a)) << a;
    if (a != agent.own()) ++refused;
  }
  // Only a call in flight on the standby when it died may fail (its SQL had been sent); every
  // later one goes to the primary.
  EXPECT_LE(refused, 1u);
  EXPECT_GT(answers.size(), 5u);
  EXPECT_EQ(agent.paced_ask(), agent.own());
  const auto during = bed.db->database_stats();
  EXPECT_EQ(agent.paced_ask(), agent.own());
  EXPECT_EQ(bed.db->database_stats().replica_calls, during.replica_calls) << "the stopped standby was used";
  EXPECT_GT(during.replica_calls, 0u);
  (void)before;
  // Back: the probe finds it up again and reads return to it.
  bed.standby()->start();
  ASSERT_TRUE(bed.standby()->wait_caught_up());
  const auto back = ask_until(agent, [&](const std::string&) {
    return bed.db->database_stats().replica_calls > during.replica_calls;
  });
  EXPECT_EQ(back, agent.own());
}

TEST(ScaleOut, AReplicaLaggingBeyondTheLimitIsSkippedSoTheAgentSeesFreshRows) {
  test::Testbed bed(on(Path::replica, std::chrono::milliseconds(300)));
  bed.start_servers();
  Agent agent(bed);
  EXPECT_EQ(agent.paced_ask(), agent.own());
  bed.standby()->pause_replay();
  agent.add_admission();  // on the primary; the paused standby does not have it
  // Within max_replica_lag the standby may still answer (one row fewer); past it, never. A sleep
  // on purpose: the lag is the wall-clock time since the standby's last replay, so time must pass.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const auto calls = bed.db->database_stats().replica_calls;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(agent.paced_ask(), agent.own()) << "a lagging replica answered";
  EXPECT_EQ(bed.db->database_stats().replica_calls, calls);
  bed.standby()->resume_replay();
  ASSERT_TRUE(bed.standby()->wait_caught_up());
  const auto back =
      ask_until(agent, [&](const std::string&) { return bed.db->database_stats().replica_calls > calls; });
  EXPECT_EQ(back, agent.own());
}

TEST(ScaleOut, PgBouncerRestartedMidRunRefusesCleanlyWhileItIsDownAndNothingAfter) {
  test::Testbed bed(on(Path::replica_pgbouncer));
  bed.start_servers();
  Agent agent(bed);
  EXPECT_EQ(agent.paced_ask(), agent.own());
  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::vector<std::pair<Clock::time_point, std::string>> answers;  // (asked at, answer)
  std::atomic<std::size_t> answered{0};
  std::thread load([&] {
    while (!stop) {
      const auto at = Clock::now();
      answers.emplace_back(at, agent.paced_ask());
      ++answered;
    }
  });
  // Windows of calls counted, not timed: a few before the restart, a dozen after (at most one
  // of them was asked before it).
  EXPECT_TRUE(test::wait_until([&] { return answered >= 3; }, std::chrono::seconds(30)));
  bed.bouncer()->restart();
  const auto back = Clock::now();
  const std::size_t at_back = answered;
  EXPECT_TRUE(test::wait_until([&] { return answered >= at_back + 12; }, std::chrono::seconds(60)));
  stop = true;
  load.join();
  std::size_t after = 0;
  for (const auto& [at, a] : answers) {
    EXPECT_TRUE(is_clean(a)) << a;
    // Once PgBouncer listens again, every call is answered (a pooled connection it dropped is
    // noticed before anything of the call was sent, and replaced).
    if (at > back) {
      ++after;
      EXPECT_EQ(a, agent.own()) << "a call after the restart";
    }
  }
  EXPECT_GT(after, 10u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(agent.paced_ask(), agent.own());
}

TEST(ScaleOut, ThePrimaryRestartedWhileTheReplicaServesRefusesCleanlyThenRecovers) {
  test::Testbed bed(on(Path::replica));
  bed.start_servers();
  Agent agent(bed);
  EXPECT_EQ(agent.paced_ask(), agent.own());
  bed.cluster().stop(/*immediate=*/true);
  // The replica still has the data, but every call consults the taint ledger and the
  // revocation list on the primary, and a sensitive read must record its taint there: without
  // the primary the call is refused — typed, no row — never served unrecorded.
  for (int i = 0; i < 3; ++i) {
    const std::string a = agent.paced_ask();
    EXPECT_EQ(a.rfind("refused:", 0), 0u) << a;
  }
  bed.cluster().start();
  EXPECT_EQ(ask_until(agent, [&](const std::string& a) { return a == agent.own(); }), agent.own());
  const auto calls = bed.db->database_stats().replica_calls;
  EXPECT_EQ(agent.paced_ask(), agent.own());
  EXPECT_GT(bed.db->database_stats().replica_calls, calls) << "the reads did not return to the replica";
}

}  // namespace
}  // namespace larder
