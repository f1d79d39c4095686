// gate::Pipeline's fail-closed branches, one test each: the revocation list and taint ledger
// unreachable, a taint that cannot be recorded, an audit record that cannot be written. A
// real ledger (PostgreSQL) and a real audit log are what production uses and what the
// integration and attack suites run against; the stand-ins here fail on demand, which those
// cannot. Each refusal must name the documented lock and reason (src/gate/reasons.h,
// docs/security-model.md "Refusal reasons"), carry nothing of the failure's details, and be
// audited when the audit log works.
#include "gate/pipeline.h"

#include "db/availability.h"
#include "gate/reasons.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <sstream>

namespace larder::gate {
namespace {

using std::chrono::system_clock;

// What a database error may say, and a refusal must never repeat (docs/ARCHITECTURE.md:
// "without the database's address").
constexpr const char* kSecretDetail = "could not connect to server at 10.9.8.7 port 5432";

// A ledger whose answers the test decides: each call fails, or answers, as told.
class FakeLedger final : public LedgerPort {
 public:
  bool check_fails = false;
  bool mark_fails = false;
  bool down = false;
  CallCheck answer;
  int checks = 0;
  int marks = 0;
  std::optional<std::string> asked_lineage;

  Result<CallCheck> check_call(const std::vector<std::string>&,
                               const std::optional<std::string>& lineage) override {
    ++checks;
    asked_lineage = lineage;
    if (check_fails) return make_error("taint.ledger_unavailable", kSecretDetail);
    return answer;
  }
  Result<void> mark_tainted(const std::string&, std::optional<system_clock::time_point>, const std::string&,
                            const std::string&) override {
    ++marks;
    if (mark_fails) return make_error("taint.ledger_unavailable", kSecretDetail);
    return {};
  }
  bool database_down() const override { return down; }
};

// An audit sink that keeps what it was given, or fails with `fail_code`.
class FakeAudit final : public AuditSink {
 public:
  std::optional<std::string> fail_code;  // e.g. "audit.write", "audit.anchor"
  std::deque<AuditRecord> records;
  int attempts = 0;

  Result<void> append(AuditRecord record) override {
    ++attempts;
    if (fail_code) return make_error(*fail_code, "cannot write /var/log/larder/audit.jsonl: disk full");
    records.push_back(std::move(record));
    return {};
  }
};

struct Fixture {
  biscuit::KeyPair root = biscuit::KeyPair::generate();
  std::shared_ptr<Gate> gate;
  FakeLedger ledger;
  FakeAudit audit;
  std::shared_ptr<const net::PeerIdentity> peer;
  system_clock::time_point now = system_clock::now();

  Fixture() {
    GateOptions o;
    o.root_keys.push_back({1, root.public_key().to_string()});
    o.limits.max_time = std::chrono::seconds(5);  // a loaded CI machine (see gate_test.cpp)
    auto g = Gate::create(std::move(o));
    if (!g) throw std::runtime_error(g.error().message);
    gate = std::move(*g);
    auto p = std::make_shared<net::PeerIdentity>();
    p->cn = "claude-client";
    p->cert_sha256 = std::string(64, 'a');
    peer = p;
  }

  Pipeline pipeline(bool with_ledger = true, bool taint_enabled = true) {
    PipelineOptions po;
    po.taint_enabled = taint_enabled;
    po.clock = [this] { return now; };
    return Pipeline(gate, with_ledger ? &ledger : nullptr, audit, po);
  }

  std::string mint(const std::string& code, const biscuit::Params& params = {}) {
    biscuit::BiscuitBuilder b;
    if (auto added = b.add_code(code, params); !added) throw std::runtime_error(added.error().message);
    b.set_root_key_id(1);
    auto t = b.build(root.private_key());
    if (!t) throw std::runtime_error(t.error().message);
    return t->to_base64();
  }

  CallRequest call(const std::string& token, const std::string& tool, DataFlow flow) {
    CallRequest r;
    r.peer = peer;
    r.authorization = "Bearer " + token;
    r.facts = CallFacts{"tools/call", tool, flow, {}, {}};
    return r;
  }
};

const char* kGrants = R"(right("pg_query"); right("hipaa_compliance_check");)";

// The refusal is the documented one, says nothing of the failure, and (when `audited`) the
// audit log holds exactly that decision.
void expect_refusal(const Fixture& f, const Refusal& r, Lock lock, const std::string& reason, bool audited) {
  EXPECT_EQ(r.lock, lock);
  EXPECT_EQ(r.reason, reason);
  EXPECT_EQ(r.message().find("10.9.8.7"), std::string::npos) << r.message();
  EXPECT_EQ(r.message().find("/var/log"), std::string::npos) << r.message();
  if (!audited) return;
  ASSERT_EQ(f.audit.records.size(), 1u);
  const AuditRecord& a = f.audit.records.back();
  EXPECT_EQ(a.decision, "deny");
  EXPECT_EQ(a.lock, lock_name(lock));
  EXPECT_EQ(a.reason, reason);
  EXPECT_FALSE(a.rows.has_value());  // a refusal never carries rows
  EXPECT_EQ(a.reason.find("10.9.8.7"), std::string::npos) << a.reason;
}

// The happy path first: the stand-ins are used the way production uses the real ones.
TEST(PipelineFailClosed, WithAWorkingLedgerAndLogASensitiveReadIsAllowedTaintedAndAudited) {
  Fixture f;
  auto p = f.pipeline();
  auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted)) << std::get<Refusal>(admitted).message();
  EXPECT_EQ(f.ledger.checks, 1);
  EXPECT_TRUE(f.ledger.asked_lineage.has_value());
  auto done = p.complete(std::get<Admission>(admitted), 3);
  ASSERT_TRUE(std::holds_alternative<Completion>(done)) << std::get<Refusal>(done).message();
  EXPECT_EQ(std::get<Completion>(done).taint_state, "tainted-now");
  EXPECT_TRUE(std::get<Completion>(done).attenuated_token.has_value());
  EXPECT_EQ(f.ledger.marks, 1);
  ASSERT_EQ(f.audit.records.size(), 1u);
  EXPECT_EQ(f.audit.records.back().decision, "allow");
  EXPECT_EQ(f.audit.records.back().rows, std::optional<int64_t>(3));
}

// The revocation list and the taint ledger are asked in one round trip: without an answer the
// call is refused as the database's outage, whatever the tool.
TEST(PipelineFailClosed, AnUnreachableLedgerRefusesEveryCallAsLockDatabase) {
  for (DataFlow flow : {DataFlow::kSensitiveRead, DataFlow::kEgress, DataFlow::kNeutral}) {
    Fixture f;
    f.ledger.check_fails = true;
    auto p = f.pipeline();
    auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", flow));
    ASSERT_TRUE(std::holds_alternative<Refusal>(admitted));
    expect_refusal(f, std::get<Refusal>(admitted), Lock::kDatabase, db::kUnavailableReason, true);
    EXPECT_EQ(f.audit.records.back().taint, "unknown");
  }
}

// With taint off only the revocation list is asked; it being unreachable still refuses.
TEST(PipelineFailClosed, AnUnreachableRevocationListRefusesEvenWithTaintOff) {
  Fixture f;
  f.ledger.check_fails = true;
  auto p = f.pipeline(true, /*taint_enabled=*/false);
  auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
  ASSERT_TRUE(std::holds_alternative<Refusal>(admitted));
  EXPECT_FALSE(f.ledger.asked_lineage.has_value());
  expect_refusal(f, std::get<Refusal>(admitted), Lock::kDatabase, db::kUnavailableReason, true);
}

// A revoked id, and a tainted lineage at an egress tool, as the ledger answers them.
TEST(PipelineFailClosed, TheLedgersAnswersRefuseRevokedTokensAndTaintedLineagesAtEgress) {
  {
    Fixture f;
    f.ledger.answer.revoked = std::string(128, 'e');
    auto p = f.pipeline();
    auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
    ASSERT_TRUE(std::holds_alternative<Refusal>(admitted));
    expect_refusal(f, std::get<Refusal>(admitted), Lock::kBiscuit, revoked_reason(std::string(128, 'e')),
                   true);
  }
  {
    Fixture f;
    f.ledger.answer.tainted = true;
    auto p = f.pipeline();
    auto admitted = p.admit(f.call(f.mint(kGrants), "hipaa_compliance_check", DataFlow::kEgress));
    ASSERT_TRUE(std::holds_alternative<Refusal>(admitted));
    expect_refusal(f, std::get<Refusal>(admitted), Lock::kTaint,
                   tainted_lineage_reason("hipaa_compliance_check"), true);
  }
}

// A sensitive read whose taint cannot be recorded is not answered: the rows are withheld.
TEST(PipelineFailClosed, AFailedTaintWriteWithholdsTheResultAsLockDatabase) {
  Fixture f;
  f.ledger.mark_fails = true;
  auto p = f.pipeline();
  auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted)) << std::get<Refusal>(admitted).message();
  auto done = p.complete(std::get<Admission>(admitted), 3);
  ASSERT_TRUE(std::holds_alternative<Refusal>(done));
  EXPECT_EQ(f.ledger.marks, 1);
  expect_refusal(f, std::get<Refusal>(done), Lock::kDatabase, db::kUnavailableReason, true);
}

// Taint on but no ledger configured: nothing can record the read, so it is refused the same way.
TEST(PipelineFailClosed, TaintWithoutALedgerWithholdsTheResult) {
  Fixture f;
  auto p = f.pipeline(/*with_ledger=*/false);
  auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted)) << std::get<Refusal>(admitted).message();
  auto done = p.complete(std::get<Admission>(admitted), 3);
  ASSERT_TRUE(std::holds_alternative<Refusal>(done));
  expect_refusal(f, std::get<Refusal>(done), Lock::kDatabase, db::kUnavailableReason, true);
}

// A sensitive read whose SQL reached the data and then failed: its taint is recorded as if it
// had succeeded; when that fails too, the refusal says so and the record's taint is unknown.
TEST(PipelineFailClosed, AFailedReadWhoseTaintCannotBeRecordedSaysSo) {
  Fixture f;
  f.ledger.mark_fails = true;
  auto p = f.pipeline();
  auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted)) << std::get<Refusal>(admitted).message();
  const std::string reason = "statement timeout";
  Refusal r = p.refuse(std::get<Admission>(admitted), Lock::kDatabase, reason, /*data_reached=*/true);
  EXPECT_EQ(f.ledger.marks, 1);
  expect_refusal(
      f, r, Lock::kDatabase,
      reason + "; and the taint of this read could not be recorded (" + db::kUnavailableReason + ")", true);
  EXPECT_EQ(f.audit.records.back().taint, "unknown");
}

// A decision that cannot be written is not carried out: complete() refuses and no result goes.
TEST(PipelineFailClosed, AFailedAuditWriteRefusesTheAllowedCall) {
  for (const char* code : {"audit.write", "audit.anchor"}) {  // a full disk; the anchor over max_lag
    Fixture f;
    auto p = f.pipeline();
    auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kNeutral));
    ASSERT_TRUE(std::holds_alternative<Admission>(admitted)) << std::get<Refusal>(admitted).message();
    f.audit.fail_code = code;
    auto done = p.complete(std::get<Admission>(admitted), 3);
    ASSERT_TRUE(std::holds_alternative<Refusal>(done)) << code;
    const Refusal& r = std::get<Refusal>(done);
    // Lock taint (the withheld result is the taint lock's to answer for), in the user's words:
    // the log's own error (a server path, the disk's state) stays in the server's log.
    EXPECT_EQ(r.lock, Lock::kTaint) << code;
    EXPECT_EQ(r.reason, kAuditUnavailableReason) << r.reason;
    EXPECT_EQ(r.reason.find("/var/log"), std::string::npos) << r.reason;
    EXPECT_EQ(r.reason.find("disk full"), std::string::npos) << r.reason;
    EXPECT_EQ(f.audit.attempts, 1);
    EXPECT_TRUE(f.audit.records.empty());
  }
}

// What the default logger says while it lives (the pipeline reports failures it cannot return).
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("captured", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// A refusal stands when its own record cannot be written (the caller still gets it), and the
// operator hears of the failed write — except for an anchor lagging because the database is
// down, which the outage's own line (once per outage) already reports.
TEST(PipelineFailClosed, ARefusalStandsWhenItsRecordCannotBeWritten) {
  struct Case {
    const char* code;
    bool database_down;
    bool logged;
  };
  for (const Case& c : {Case{"audit.write", false, true}, Case{"audit.write", true, true},
                        Case{"audit.anchor", false, true}, Case{"audit.anchor", true, false}}) {
    Fixture f;
    f.ledger.check_fails = true;
    f.ledger.down = c.database_down;
    f.audit.fail_code = c.code;
    auto p = f.pipeline();
    CapturedLog log;
    auto admitted = p.admit(f.call(f.mint(kGrants), "pg_query", DataFlow::kSensitiveRead));
    ASSERT_TRUE(std::holds_alternative<Refusal>(admitted));
    expect_refusal(f, std::get<Refusal>(admitted), Lock::kDatabase, db::kUnavailableReason, false);
    EXPECT_EQ(f.audit.attempts, 1);
    EXPECT_EQ(log.text().find("audit log append failed") != std::string::npos, c.logged)
        << c.code << (c.database_down ? " (database down)" : "") << ": " << log.text();
  }
}

// Token expiry is judged by the pipeline's clock: no test needs to wait for a token to expire.
TEST(PipelineClock, ATokenExpiresByThePipelinesClock) {
  Fixture f;
  const auto expiry = system_clock::from_time_t(system_clock::to_time_t(f.now) + 3600);
  const std::string token = f.mint(std::string(kGrants) + " check if time($t), $t <= {exp};",
                                   biscuit::Params().date("exp", system_clock::to_time_t(expiry)));
  auto p = f.pipeline();
  EXPECT_TRUE(std::holds_alternative<Admission>(p.admit(f.call(token, "pg_query", DataFlow::kNeutral))));
  f.now = expiry + std::chrono::seconds(1);
  auto later = p.admit(f.call(token, "pg_query", DataFlow::kNeutral));
  ASSERT_TRUE(std::holds_alternative<Refusal>(later));
  EXPECT_EQ(std::get<Refusal>(later).lock, Lock::kBiscuit);
  EXPECT_STREQ(refusal_kind("biscuit", std::get<Refusal>(later).reason), "expired")
      << std::get<Refusal>(later).reason;
}

}  // namespace
}  // namespace larder::gate
