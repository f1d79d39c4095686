#include "gate/audit_log.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <iomanip>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace larder::gate {
namespace {

namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("larder-audit-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "audit.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  AuditRecord record(int i, const std::string& decision = "allow") {
    AuditRecord r;
    r.client_cert_sha256 = "ab12";
    r.client_cert_cn = "claude-client";
    r.lineage = "lineage-" + std::to_string(i % 3);
    r.revocation_ids = {"r0", "r1"};
    r.method = "tools/call";
    r.tool = "pg_query";
    r.sql_fingerprint = "fp";
    r.rows = i;
    r.decision = decision;
    r.lock = decision == "allow" ? "" : "policy";
    r.taint = "clean";
    return r;
  }
  void write_n(int n) {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok()) << log.error().message;
    for (int i = 0; i < n; ++i) ASSERT_TRUE((*log)->append(record(i)).ok());
  }
  std::vector<std::string> lines() {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  void rewrite(const std::vector<std::string>& ls) {
    std::ofstream out(path_, std::ios::trunc);
    for (const auto& l : ls) out << l << "\n";
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(AuditLogTest, IntactLogVerifies) {
  write_n(5);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
  auto first = nlohmann::json::parse(lines()[0]);
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["prev"], std::string(64, '0'));
  EXPECT_EQ(first["client_cert_cn"], "claude-client");
  EXPECT_FALSE(first["time"].get<std::string>().empty());
}

TEST_F(AuditLogTest, ReopenContinuesTheChain) {
  write_n(3);
  write_n(2);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 5u);
}

TEST_F(AuditLogTest, EditedRecordIsDetected) {
  write_n(4);
  auto ls = lines();
  auto j = nlohmann::json::parse(ls[1]);
  j["decision"] = "deny";  // someone hides what happened
  ls[1] = j.dump();
  rewrite(ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 3"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, DeletedRecordIsDetected) {
  write_n(4);
  auto ls = lines();
  ls.erase(ls.begin() + 1);
  rewrite(ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 2"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, ReorderedRecordsAreDetected) {
  write_n(4);
  auto ls = lines();
  std::swap(ls[1], ls[2]);
  rewrite(ls);
  EXPECT_FALSE(verify_audit_log(path_).ok);
}

TEST_F(AuditLogTest, TruncatedTailIsDetectedThroughTheHead) {
  write_n(4);
  auto ls = lines();
  ls.pop_back();
  rewrite(ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("cut off"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, RecomputedChainStillFailsAgainstHead) {
  // An attacker who edits a record and recomputes every later hash still leaves the head
  // pointing at the original last hash.
  write_n(3);
  auto ls = lines();
  auto j0 = nlohmann::json::parse(ls[0]);
  j0["rows"] = 999;
  ls[0] = j0.dump(-1, ' ', false);
  // recompute the chain
  std::string prev;
  for (size_t i = 0; i < ls.size(); ++i) {
    auto j = nlohmann::json::parse(ls[i]);
    if (i > 0) j["prev"] = prev;
    ls[i] = j.dump(-1, ' ', false);
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(ls[i].data(), ls[i].size(), d, &n, EVP_sha256(), nullptr);
    std::ostringstream hex;
    for (unsigned int k = 0; k < n; ++k) hex << std::hex << std::setw(2) << std::setfill('0') << int(d[k]);
    prev = hex.str();
  }
  rewrite(ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("head"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, ConcurrentWritersKeepOneChain) {
  auto a = AuditLog::open(path_);
  auto b = AuditLog::open(path_);  // a second "process" sharing the file
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = (t % 2) ? **a : **b;
      for (int i = 0; i < 50; ++i) ASSERT_TRUE(log.append(record(i)).ok());
    });
  }
  for (auto& th : threads) th.join();
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 200u);
}

TEST_F(AuditLogTest, PartialLastLineRefusesAppend) {
  write_n(2);
  {
    std::ofstream out(path_, std::ios::app);
    out << "{\"seq\":3";
  }
  auto log = AuditLog::open(path_);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.error().code, "audit.corrupt");
  EXPECT_FALSE(verify_audit_log(path_).ok);
}

TEST_F(AuditLogTest, EmptyOrMissingLogIsValid) {
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);  // missing file: cannot read
  {
    auto log = AuditLog::open(path_);
    ASSERT_TRUE(log.ok());
  }
  EXPECT_TRUE(verify_audit_log(path_).ok);
}

TEST(AuditRecordJson, CarriesTheTimeOfEveryStageReachedAndNoOther) {
  AuditRecord r;
  r.decision = "deny";
  r.lock = "policy";
  EXPECT_FALSE(to_json(r).contains("us"));
  r.timings.guard_us = 21;
  r.timings.verify_us = 3;
  r.timings.ledger_us = 0;
  r.timings.authorize_us = 44;
  auto j = to_json(r);
  ASSERT_TRUE(j.contains("us"));
  EXPECT_EQ(j["us"], nlohmann::json({{"guard", 21}, {"verify", 3}, {"ledger", 0}, {"authorize", 44}}));
}

}  // namespace
}  // namespace larder::gate
