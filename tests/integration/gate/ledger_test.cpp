// The taint ledger and revocation list against a real PostgreSQL: shared between instances,
// surviving restarts, expiring with the token, failing closed when the database is down.
#include "gate/pipeline.h"
#include "gate/taint_ledger.h"
#include "support/pg_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>

namespace larder::gate {
namespace {

using std::chrono::system_clock;

class LedgerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new test::PgCluster(test::PgCluster::Options{0});
    auto admin = db::ConnParams::parse(cluster_->admin_url());
    ASSERT_TRUE(admin.ok());
    auto setup = apply_gate_setup(*admin, std::string("ledger-secret"));
    ASSERT_TRUE(setup.ok()) << setup.error().message;
    ASSERT_TRUE(apply_gate_setup(*admin, std::nullopt).ok());  // idempotent
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static db::ConnParams ledger_params() {
    auto p = db::ConnParams::parse(cluster_->admin_url());
    p->set("user", kGateRole).set("password", "ledger-secret");
    return *p;
  }
  static test::PgCluster* cluster_;
};
test::PgCluster* LedgerTest::cluster_ = nullptr;

TEST_F(LedgerTest, TaintIsSharedBetweenInstances) {
  TaintLedger a(ledger_params(), {});
  TaintLedger b(ledger_params(), {});
  auto first = b.is_tainted("lineage-shared");
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_FALSE(*first);
  auto marked = a.mark_tainted("lineage-shared", std::nullopt, "pg_query", "abcd");
  ASSERT_TRUE(marked.ok()) << marked.error().message;
  auto seen = b.is_tainted("lineage-shared");
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_TRUE(*seen);
}

TEST_F(LedgerTest, EntriesExpireWithTheToken) {
  TaintLedger ledger(ledger_params(), {});
  ASSERT_TRUE(
      ledger.mark_tainted("lineage-expired", system_clock::now() - std::chrono::hours(1), "pg_query", "")
          .ok());
  EXPECT_FALSE(*ledger.is_tainted("lineage-expired"));
  ASSERT_TRUE(
      ledger.mark_tainted("lineage-live", system_clock::now() + std::chrono::hours(1), "pg_query", "").ok());
  EXPECT_TRUE(*ledger.is_tainted("lineage-live"));
  // A later taint without expiry keeps it forever (the longest wins).
  ASSERT_TRUE(ledger.mark_tainted("lineage-live", std::nullopt, "pg_query", "").ok());
  auto purged = ledger.purge_expired();
  ASSERT_TRUE(purged.ok());
  EXPECT_GE(*purged, 1);
  EXPECT_TRUE(*ledger.is_tainted("lineage-live"));
}

// A revocation id the way a token carries it: 64 bytes of signature, lower-case hex.
std::string revocation_id(char fill) {
  return std::string(128, fill);
}

// A revocation made through one instance holds on another in its very next lookup: "not
// revoked" is never answered from memory (it was, for revocation_cache_ttl_s = 5 s).
TEST_F(LedgerTest, ARevocationIsSeenByAnotherInstanceInItsNextLookup) {
  TaintLedger a(ledger_params(), {});
  TaintLedger b(ledger_params(), {});
  const std::string first = revocation_id('1'), second = revocation_id('2');
  auto none = b.check_call({first, second}, std::string("lineage-revoked-next"));
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->revoked.has_value());
  EXPECT_FALSE(none->tainted);
  ASSERT_TRUE(a.revoke(second, "test").ok());
  ASSERT_TRUE(a.revoke(second, "twice is fine").ok());
  auto hit = b.check_call({first, second}, std::string("lineage-revoked-next"));
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  ASSERT_TRUE(hit->revoked.has_value());
  EXPECT_EQ(*hit->revoked, second);
  auto alone = b.first_revoked({first, second});
  ASSERT_TRUE(alone.ok());
  ASSERT_TRUE(alone->has_value());
  EXPECT_EQ(**alone, second);
  // The first revoked id in the token's order, whatever order the table holds them in.
  ASSERT_TRUE(a.revoke(first, "test").ok());
  auto both = b.check_call({second, first}, std::nullopt);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->revoked.value_or(""), second);
}

// One lookup answers both questions; a taint another instance recorded is seen in the next one,
// and a lineage this instance knows to be tainted still has its revocations asked.
TEST_F(LedgerTest, OneLookupAnswersRevocationAndTaint) {
  TaintLedger a(ledger_params(), {});
  TaintLedger b(ledger_params(), {});
  const std::string id = revocation_id('3');
  auto clean = b.check_call({id}, std::string("lineage-one-lookup"));
  ASSERT_TRUE(clean.ok()) << clean.error().message;
  EXPECT_FALSE(clean->tainted);
  ASSERT_TRUE(a.mark_tainted("lineage-one-lookup", std::nullopt, "pg_query", "").ok());
  auto tainted = b.check_call({id}, std::string("lineage-one-lookup"));
  ASSERT_TRUE(tainted.ok());
  EXPECT_TRUE(tainted->tainted);
  EXPECT_FALSE(tainted->revoked.has_value());
  ASSERT_TRUE(a.revoke(id, "test").ok());
  auto both = b.check_call({id}, std::string("lineage-one-lookup"));  // taint known: only revocations asked
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->tainted);
  EXPECT_EQ(both->revoked.value_or(""), id);
  // Not asked about a lineage: not tainted, whatever the ledger says.
  auto unasked = b.check_call({revocation_id('4')}, std::nullopt);
  ASSERT_TRUE(unasked.ok());
  EXPECT_FALSE(unasked->tainted);
}

// The price of asking every call (docs/deployment.md quotes it): one round trip on loopback,
// measured against the old separate lookups. Prints; asserts only a generous ceiling.
TEST_F(LedgerTest, ThePerCallLookupCostsOneRoundTrip) {
  using namespace std::chrono;
  TaintLedger ledger(ledger_params(), {});
  const std::vector<std::string> ids = {revocation_id('5'), revocation_id('6')};
  constexpr int kCalls = 2000;
  auto median_us = [&](const std::function<void()>& call) {
    std::vector<double> us;
    us.reserve(kCalls);
    for (int i = 0; i < 100; ++i) call();  // warm the connection and the plan cache
    for (int i = 0; i < kCalls; ++i) {
      auto t = steady_clock::now();
      call();
      us.push_back(duration<double, std::micro>(steady_clock::now() - t).count());
    }
    std::sort(us.begin(), us.end());
    return std::make_pair(us[us.size() / 2], us[us.size() * 99 / 100]);
  };
  auto combined = median_us([&] { ASSERT_TRUE(ledger.check_call(ids, std::string("lineage-bench")).ok()); });
  auto taint_only = median_us([&] { ASSERT_TRUE(ledger.is_tainted("lineage-bench").ok()); });
  auto revocations_only = median_us([&] { ASSERT_TRUE(ledger.first_revoked(ids).ok()); });
  ASSERT_TRUE(ledger.mark_tainted("lineage-bench-known", std::nullopt, "pg_query", "").ok());
  auto known =
      median_us([&] { ASSERT_TRUE(ledger.check_call(ids, std::string("lineage-bench-known")).ok()); });
  std::printf(
      "ledger lookup per call, median / p99 over %d calls (loopback PostgreSQL 15):\n"
      "  revocations + taint, one round trip : %7.1f / %7.1f us\n"
      "  taint only (the old per-call lookup): %7.1f / %7.1f us\n"
      "  revocations only                    : %7.1f / %7.1f us\n"
      "  revocations, lineage known tainted  : %7.1f / %7.1f us\n",
      kCalls, combined.first, combined.second, taint_only.first, taint_only.second, revocations_only.first,
      revocations_only.second, known.first, known.second);
  EXPECT_LT(combined.first, 20000.0);
}

// Finding 7: an upper-case id was stored and reported "revoked" but never matched a token,
// and `revoke deadbeef` (no revocation id at all) was accepted.
TEST_F(LedgerTest, RevocationIdsAreValidatedAndMatchInAnyCase) {
  TaintLedger a(ledger_params(), {});
  TaintLedger b(ledger_params(), {});
  const std::string lower = revocation_id('c');
  ASSERT_TRUE(a.revoke(revocation_id('C'), "typed in upper case").ok());
  auto hit = b.first_revoked({lower});
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ(**hit, lower);

  for (const std::string& bad : {std::string("deadbeef"), std::string(127, 'a'), std::string(146, 'a'),
                                 std::string(126, 'a') + "zz", std::string(""), std::string(128, ' ')}) {
    auto r = a.revoke(bad, "bad");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "taint.bad_revocation_id");
    EXPECT_NE(r.error().message.find("not a revocation id"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(*normalize_revocation_id(std::string(64, 'A') + std::string(64, 'f')),
            std::string(64, 'a') + std::string(64, 'f'));
  EXPECT_TRUE(normalize_revocation_id(std::string(144, '0')).ok());  // a P-256 (DER) signature at its longest
}

// Ids stored upper-case before they were normalised take effect once the setup runs again.
TEST_F(LedgerTest, SetupFoldsUpperCaseIdsStoredBefore) {
  const std::string upper = revocation_id('D');
  cluster_->admin_scalar(
      "INSERT INTO larder_gate.revocations (revocation_id, reason) VALUES ($1, 'stored before') "
      "ON CONFLICT DO NOTHING RETURNING 1",
      {upper});
  auto admin = db::ConnParams::parse(cluster_->admin_url());
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(apply_gate_setup(*admin, std::nullopt).ok());
  TaintLedger ledger(ledger_params(), {});
  auto hit = ledger.first_revoked({revocation_id('d')});
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE(hit->has_value());
}

TEST_F(LedgerTest, QueryRoleCannotSeeTheLedger) {
  auto query = db::ConnParams::parse(cluster_->query_url());
  ASSERT_TRUE(query.ok());
  auto conn = query->connect(db::Clock::now() + std::chrono::seconds(5));
  ASSERT_TRUE(conn.ok());
  auto read = db::exec_params(conn->get(), "SELECT count(*) FROM larder_gate.taint_ledger", {},
                              db::Clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(read.ok());
  auto write = db::exec_params(conn->get(), "DELETE FROM larder_gate.revocations", {},
                               db::Clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(write.ok());
}

TEST_F(LedgerTest, SurvivesRestartAndFailsClosedWhileDown) {
  {
    TaintLedger writer(ledger_params(), {});
    ASSERT_TRUE(writer.mark_tainted("lineage-durable", std::nullopt, "pg_query", "").ok());
  }
  TaintLedger ledger(ledger_params(), {});  // knows nothing yet: must ask the database
  cluster_->stop();
  auto down = ledger.is_tainted("lineage-durable");
  EXPECT_FALSE(down.ok());  // an error, never "not tainted"
  if (!down.ok()) {
    EXPECT_EQ(down.error().code, "taint.ledger_unavailable");
  }
  cluster_->start();
  auto back = ledger.is_tainted("lineage-durable");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back);
}

TEST_F(LedgerTest, KnownTaintIsAnsweredWithoutARoundTripOnlyWhileItLasts) {
  using namespace std::chrono;
  TaintLedger ledger(ledger_params(), {});
  const auto in_an_hour = system_clock::now() + hours(1);
  ASSERT_TRUE(ledger.mark_tainted("lineage-known", in_an_hour, "pg_query", "").ok());
  TaintLedger reader(ledger_params(), {});
  ASSERT_TRUE(*reader.is_tainted("lineage-known"));  // learned from the database, with its expiry
  ASSERT_FALSE(*ledger.is_tainted("lineage-unknown"));
  cluster_->stop();
  // A known taint needs no round trip: still tainted (the safe answer) while the database is down.
  auto a = ledger.is_tainted("lineage-known");
  EXPECT_TRUE(a.ok() && *a);
  auto b = reader.is_tainted("lineage-known");
  EXPECT_TRUE(b.ok() && *b);
  // Marking again with an expiry already recorded needs no round trip either...
  EXPECT_TRUE(ledger.mark_tainted("lineage-known", in_an_hour - minutes(5), "pg_query", "").ok());
  // ...but a later expiry, or "never", must reach the database: an error while it is down.
  EXPECT_FALSE(ledger.mark_tainted("lineage-known", in_an_hour + hours(1), "pg_query", "").ok());
  EXPECT_FALSE(ledger.mark_tainted("lineage-known", std::nullopt, "pg_query", "").ok());
  // An untainted answer is never remembered: asked again, it is an error, not "clean".
  EXPECT_FALSE(ledger.is_tainted("lineage-unknown").ok());
  cluster_->start();
}

// A remembered taint ends with its expiry, by the ledger's clock (no waiting): the clock
// starts an hour behind, so an entry that PostgreSQL (its own now()) already sees expired is
// still remembered; once the clock passes the expiry, the ledger asks the database again.
TEST_F(LedgerTest, ARememberedTaintEndsWithItsExpiryByTheLedgersClock) {
  using namespace std::chrono;
  const auto real = system_clock::now();
  auto now = real - hours(1);
  TaintLedger::Options options;
  options.clock = [&now] { return now; };
  TaintLedger ledger(ledger_params(), options);
  const auto expiry = real - seconds(1);
  ASSERT_TRUE(ledger.mark_tainted("lineage-brief", expiry, "pg_query", "").ok());
  const auto known_before = ledger.stats().known_taint;
  EXPECT_TRUE(*ledger.is_tainted("lineage-brief"));
  EXPECT_EQ(ledger.stats().known_taint, known_before + 1);  // from memory: it has not expired yet
  now = expiry + milliseconds(1);
  auto after = ledger.is_tainted("lineage-brief");
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_FALSE(*after);  // forgotten, and the database's entry has expired too
  EXPECT_EQ(ledger.stats().known_taint, known_before + 1);
}

}  // namespace
}  // namespace larder::gate
