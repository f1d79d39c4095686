#include "gate/audit_log.h"

#include "base/encoding.h"
#include "base/time.h"
#include "gate/audit_syslog.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iomanip>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
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

// Fail closed (the pipeline's refusal for it: tests/unit/gate/pipeline_test.cpp): once the
// anchor has not been written for longer than max_lag, append() refuses, writes nothing, and
// says why with its own code; when the anchor is written again, appends go on.
TEST_F(AuditLogTest, AnAnchorUnwrittenForLongerThanItsMaxLagFailsTheAppend) {
  auto opened = AuditLog::open(path_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& log = **opened;
  ASSERT_TRUE(log.append(record(0)).ok());  // a head the anchor has not seen
  std::atomic<bool> reachable{false};
  log.set_anchor(
      "test-log",
      [&](const std::string&, uint64_t, const std::string&) -> Result<void> {
        if (!reachable) return make_error("db.unavailable", "database unavailable");
        return {};
      },
      std::chrono::milliseconds(0), std::chrono::milliseconds(0));
  auto refused = log.append(record(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "audit.anchor");
  EXPECT_EQ(lines().size(), 1u) << "a refused record was written";
  reachable = true;
  ASSERT_TRUE(log.flush_anchor(std::chrono::seconds(10)));
  EXPECT_TRUE(log.append(record(2)).ok());
  EXPECT_EQ(lines().size(), 2u);
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

// ---- rotation and retention (issue #17, item 5) ----

// A settable wall clock for the rotation tests: no sleeps.
struct FakeClock {
  std::shared_ptr<std::chrono::system_clock::time_point> at =
      std::make_shared<std::chrono::system_clock::time_point>(
          std::chrono::sys_days{std::chrono::year{2026} / 12 / 1});
  std::function<std::chrono::system_clock::time_point()> fn() const {
    return [at = at] { return *at; };
  }
  void advance(std::chrono::seconds s) { *at += s; }
};

class AuditRotationTest : public AuditLogTest {
 protected:
  AuditLogOptions options(uint64_t rotate_bytes, uint64_t keep_files = 0) {
    AuditLogOptions o;
    o.rotate_bytes = rotate_bytes;
    o.keep_files = keep_files;
    o.clock = clock_.fn();
    return o;
  }
  std::unique_ptr<AuditLog> open_log(AuditLogOptions o) {
    auto log = AuditLog::open(path_, std::move(o));
    EXPECT_TRUE(log.ok()) << log.error().message;
    return log.ok() ? std::move(*log) : nullptr;
  }
  void append_n(AuditLog& log, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(log.append(record(i)).ok());
  }
  std::vector<std::string> rotated() {
    std::vector<std::string> out;
    for (auto& [seq, file] : rotated_audit_files(path_)) out.push_back(file);
    return out;
  }
  static std::vector<std::string> file_lines(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  static void write_lines(const std::string& file, const std::vector<std::string>& ls) {
    std::ofstream out(file, std::ios::trunc);
    for (const auto& l : ls) out << l << "\n";
  }
  FakeClock clock_;
};

TEST_F(AuditRotationTest, SizeTriggerRotatesAndTheChainContinuesAcrossFiles) {
  auto log = open_log(options(4096));
  append_n(*log, 40);  // ~500 bytes each: several files
  auto files = rotated();
  ASSERT_GE(files.size(), 3u);
  EXPECT_EQ(files[0], path_ + ".00000000000000000001");
  for (const auto& f : files) EXPECT_LE(fs::file_size(f), 4096u) << f;
  // Each rotated file's first record continues the previous file: seq + 1, prev = its last hash.
  for (size_t i = 1; i < files.size(); ++i) {
    auto before = file_lines(files[i - 1]);
    auto first = nlohmann::json::parse(file_lines(files[i]).front());
    EXPECT_EQ(first["prev"], sha256_hex(before.back()));
    EXPECT_EQ(first["seq"].get<uint64_t>(), nlohmann::json::parse(before.back())["seq"].get<uint64_t>() + 1);
    EXPECT_EQ(files[i], rotated_audit_file(path_, first["seq"].get<uint64_t>()));
  }
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 40u);
  EXPECT_EQ(v.files, files.size() + 1);
  EXPECT_EQ(v.first_seq, 1u);
  EXPECT_EQ(v.last_seq, 40u);
  auto by_dir = verify_audit_log(dir_.string());  // the directory holding the log
  EXPECT_TRUE(by_dir.ok) << by_dir.problem;
  EXPECT_EQ(by_dir.records, 40u);
}

TEST_F(AuditRotationTest, TimeTriggerRotatesOnTheInjectedClock) {
  auto o = options(0);
  o.rotate_interval = std::chrono::hours(24);
  auto log = open_log(o);
  append_n(*log, 3);
  clock_.advance(std::chrono::hours(23));
  append_n(*log, 1);
  EXPECT_TRUE(rotated().empty());
  clock_.advance(std::chrono::hours(1));
  append_n(*log, 2);  // the first is written after the rotation
  ASSERT_EQ(rotated().size(), 1u);
  EXPECT_EQ(file_lines(rotated()[0]).size(), 4u);
  EXPECT_EQ(lines().size(), 2u);
  // A process started later reads the active file's age from its first record.
  log.reset();
  clock_.advance(std::chrono::hours(24));
  auto reopened = open_log(o);
  append_n(*reopened, 1);
  EXPECT_EQ(rotated().size(), 2u);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 7u);
}

TEST_F(AuditRotationTest, ReopenAfterRotationContinuesFromTheNewestRotatedFile) {
  {
    auto log = open_log(options(4096));
    append_n(*log, 10);
  }
  // The active file is gone (a crash between the rename and the new file): the next writer
  // continues the chain from the newest rotated file, not from the genesis.
  ASSERT_TRUE(fs::exists(path_));
  const auto first = nlohmann::json::parse(lines().front())["seq"].get<uint64_t>();
  fs::rename(path_, rotated_audit_file(path_, first));
  auto log = open_log(options(4096));
  append_n(*log, 2);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 12u);
}

TEST_F(AuditRotationTest, RetentionDeletesTheOldestFilesAndVerifyAcceptsItsBoundary) {
  auto log = open_log(options(4096, 2));
  append_n(*log, 60);
  auto files = rotated();
  ASSERT_EQ(files.size(), 2u);
  EXPECT_FALSE(fs::exists(path_ + ".00000000000000000001")) << "the oldest file outlived retention";
  auto v = verify_audit_log(path_);
  ASSERT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.first_seq, 1u);
  // The retention records are in the chain, saying where the kept records start.
  int retention_records = 0;
  for (const auto& f : files)
    for (const auto& l : file_lines(f))
      retention_records += nlohmann::json::parse(l).value("event", "") == "audit.retention";
  for (const auto& l : lines())
    retention_records += nlohmann::json::parse(l).value("event", "") == "audit.retention";
  EXPECT_GE(retention_records, 1);
  EXPECT_GT(v.last_seq, 60u);  // the user's records and the retention records share one seq
  // Without its retention records (the newest files cut), the missing oldest files fail.
  log.reset();
  fs::remove(path_);
  fs::remove(files.back());
  auto cut = verify_audit_log(path_);
  EXPECT_FALSE(cut.ok);
}

TEST_F(AuditRotationTest, KeepDaysDeletesOnlyOldFiles) {
  auto o = options(4096);
  o.keep_age = std::chrono::hours(24 * 7);
  auto log = open_log(o);
  append_n(*log, 30);
  auto before = rotated();
  ASSERT_GE(before.size(), 2u);
  // The oldest file was last written ten days before the clock says now.
  const auto ten_days_ago = *clock_.at - std::chrono::hours(24 * 10);
  const auto mtime = fs::file_time_type::clock::now() + (ten_days_ago - std::chrono::system_clock::now());
  fs::last_write_time(before[0], mtime);
  append_n(*log, 20);
  EXPECT_FALSE(fs::exists(before[0]));
  EXPECT_TRUE(fs::exists(before[1]));
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
}

TEST_F(AuditRotationTest, AMissingMiddleFileFails) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  ASSERT_GE(files.size(), 3u);
  fs::remove(files[1]);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("missing"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, AMissingOldestFileFailsWithoutARetentionRecord) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  ASSERT_GE(files.size(), 2u);
  fs::remove(files[0]);  // what retention would do, but retention did not
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("no retention record"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, AFileDeletedBeyondRetentionFails) {
  auto log = open_log(options(4096, 3));
  append_n(*log, 80);
  auto files = rotated();
  ASSERT_EQ(files.size(), 3u);
  ASSERT_TRUE(verify_audit_log(path_).ok);
  fs::remove(files[0]);  // one more than retention removed
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("no retention record"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, TheNewestFilesDeletedFailAgainstTheHead) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  fs::remove(path_);
  fs::remove(files.back());
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("cut off"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, EveryFileDeletedButTheHeadFails) {
  auto log = open_log(options(4096));
  append_n(*log, 30);
  log.reset();
  fs::remove(path_);
  for (const auto& f : rotated()) fs::remove(f);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_FALSE(v.not_checked.has_value()) << "a deleted log is tampering, not \"cannot check\"";
  EXPECT_NE(v.problem.find("was deleted"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, SwappedFilesFail) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  ASSERT_GE(files.size(), 3u);
  // Contents swapped, names kept.
  fs::rename(files[0], dir_ / "tmp");
  fs::rename(files[1], files[0]);
  fs::rename(dir_ / "tmp", files[1]);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("renamed or reordered"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, RenamedFilesToFitTheirContentStillFailWhenOneIsMissing) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  ASSERT_GE(files.size(), 3u);
  // The middle file is removed and the next one renamed into its place.
  fs::remove(files[1]);
  fs::rename(files[2], files[1]);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok) << "a file renamed to hide a gap verified";
}

TEST_F(AuditRotationTest, AnEditedRecordInAnOldFileFails) {
  auto log = open_log(options(4096));
  append_n(*log, 40);
  auto files = rotated();
  auto ls = file_lines(files[0]);
  auto j = nlohmann::json::parse(ls[2]);
  j["decision"] = "deny";
  ls[2] = j.dump();
  write_lines(files[0], ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("line 4"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, AForgedRetentionRecordFailsAgainstTheHeadAndTheAnchor) {
  std::mutex mu;
  AuditAnchorPoint anchored;
  auto log = open_log(options(4096));
  log->set_anchor(
      "test-log",
      [&](const std::string&, uint64_t seq, const std::string& hash) -> Result<void> {
        std::lock_guard lock(mu);
        if (seq > anchored.seq) anchored = {seq, hash};
        return {};
      },
      std::chrono::milliseconds(5000), std::chrono::milliseconds(0));
  append_n(*log, 40);
  ASSERT_TRUE(log->flush_anchor(std::chrono::milliseconds(5000)));
  log.reset();
  auto reader = [&](const std::string&) -> Result<std::optional<AuditAnchorPoint>> {
    std::lock_guard lock(mu);
    return std::optional<AuditAnchorPoint>(anchored);
  };
  auto files = rotated();
  fs::remove(files[0]);
  // The attacker appends a retention record that would excuse the deletion: its chain fields
  // are valid, but the head no longer matches.
  auto ls = lines();
  const auto kept = nlohmann::json::parse(file_lines(files[1]).front());
  const uint64_t forged_seq = nlohmann::json::parse(ls.back())["seq"].get<uint64_t>() + 1;
  nlohmann::json forged = {{"event", "audit.retention"},
                           {"first_kept_seq", kept["seq"]},
                           {"first_kept_prev", kept["prev"]},
                           {"prev", sha256_hex(ls.back())},
                           {"seq", forged_seq}};
  ls.push_back(forged.dump());
  rewrite(ls);
  auto v = verify_audit_log(path_);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("head"), std::string::npos) << v.problem;
  // The head rewritten too: the chain and the head agree; the anchor does not vouch for it.
  char head_line[96];
  std::snprintf(head_line, sizeof head_line, "%020llu %s\n", static_cast<unsigned long long>(forged_seq),
                sha256_hex(ls.back()).c_str());
  std::ofstream(path_ + ".head", std::ios::trunc) << head_line;
  EXPECT_TRUE(verify_audit_log(path_).ok) << "the chain and head alone cannot see this";
  auto anchored_check = verify_audit_log(path_, "test-log", reader);
  EXPECT_FALSE(anchored_check.ok);
  EXPECT_NE(anchored_check.problem.find("after the anchored record"), std::string::npos)
      << anchored_check.problem;
}

TEST_F(AuditRotationTest, AnAnchoredRetentionRecordVerifiesAgainstTheAnchor) {
  std::mutex mu;
  AuditAnchorPoint anchored;
  auto log = open_log(options(4096, 2));
  log->set_anchor(
      "test-log",
      [&](const std::string&, uint64_t seq, const std::string& hash) -> Result<void> {
        std::lock_guard lock(mu);
        if (seq > anchored.seq) anchored = {seq, hash};
        return {};
      },
      std::chrono::milliseconds(5000), std::chrono::milliseconds(0));
  append_n(*log, 60);
  ASSERT_TRUE(log->flush_anchor(std::chrono::milliseconds(5000)));
  auto reader = [&](const std::string&) -> Result<std::optional<AuditAnchorPoint>> {
    std::lock_guard lock(mu);
    return std::optional<AuditAnchorPoint>(anchored);
  };
  auto v = verify_audit_log(path_, "test-log", reader);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.first_seq, 1u);
  EXPECT_GT(v.retention_seq, 0u);
  EXPECT_EQ(anchored.seq, v.last_seq);  // seq runs on across files and retention records
}

TEST_F(AuditRotationTest, TwoWritersAcrossRotationsKeepOneChain) {
  auto a = open_log(options(4096));
  auto b = open_log(options(4096));  // a second "process" sharing the files
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = (t % 2) ? *a : *b;
      for (int i = 0; i < 60; ++i) ASSERT_TRUE(log.append(record(i)).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GE(rotated().size(), 10u);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 240u);
  EXPECT_EQ(v.last_seq, 240u);
}

// Real processes: two children append to the same log across many rotations and retention.
TEST_F(AuditRotationTest, TwoProcessesAcrossRotationsKeepOneChain) {
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto log = AuditLog::open(path_, options(4096, 3));
      if (!log.ok()) ::_exit(2);
      for (int i = 0; i < 100; ++i)
        if (!(*log)->append(record(i)).ok()) ::_exit(3);
      ::_exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_EQ(rotated().size(), 3u);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.first_seq, 1u);
  EXPECT_GT(v.last_seq, 200u);  // 200 records and the retention records, one seq
}

TEST_F(AuditRotationTest, TwoWritersWithRetentionKeepOneChain) {
  auto a = open_log(options(4096, 2));
  auto b = open_log(options(4096, 2));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      AuditLog& log = (t % 2) ? *a : *b;
      for (int i = 0; i < 60; ++i) ASSERT_TRUE(log.append(record(i)).ok());
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(rotated().size(), 2u);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.first_seq, 1u);
}

TEST_F(AuditRotationTest, TheAnchorStaysMeaningfulAcrossRotation) {
  std::mutex mu;
  AuditAnchorPoint anchored;
  auto log = open_log(options(4096));
  log->set_anchor(
      "test-log",
      [&](const std::string&, uint64_t seq, const std::string& hash) -> Result<void> {
        std::lock_guard lock(mu);
        if (seq > anchored.seq) anchored = {seq, hash};
        return {};
      },
      std::chrono::milliseconds(5000), std::chrono::milliseconds(0));
  append_n(*log, 60);
  ASSERT_TRUE(log->flush_anchor(std::chrono::milliseconds(5000)));
  auto reader = [&](const std::string&) -> Result<std::optional<AuditAnchorPoint>> {
    std::lock_guard lock(mu);
    return std::optional<AuditAnchorPoint>(anchored);
  };
  auto head = log->current_head();
  ASSERT_TRUE(head.ok());
  EXPECT_GE(rotated().size(), 3u);
  EXPECT_EQ(anchored.seq, head->seq);  // seq keeps increasing across files
  EXPECT_EQ(anchored.seq, 60u);
  auto v = verify_audit_log(path_, "test-log", reader);
  EXPECT_TRUE(v.ok) << v.problem;
  // The active file and the newest rotated file cut, the head rewritten to match: the chain
  // and the head agree, the anchor does not.
  log.reset();
  auto files = rotated();
  fs::remove(path_);
  fs::remove(files.back());
  auto kept = file_lines(files[files.size() - 2]);
  char head_line[96];
  std::snprintf(head_line, sizeof head_line, "%020llu %s\n",
                static_cast<unsigned long long>(nlohmann::json::parse(kept.back())["seq"].get<uint64_t>()),
                sha256_hex(kept.back()).c_str());
  std::ofstream(path_ + ".head", std::ios::trunc) << head_line;
  EXPECT_TRUE(verify_audit_log(path_).ok) << "the chain alone cannot see this cut";
  auto cut = verify_audit_log(path_, "test-log", reader);
  EXPECT_FALSE(cut.ok);
  EXPECT_NE(cut.problem.find("cut off"), std::string::npos) << cut.problem;
}

TEST_F(AuditRotationTest, ADirectoryWithTwoLogsIsAmbiguous) {
  write_n(2);
  {
    auto other = AuditLog::open((dir_ / "other.jsonl").string());
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->append(record(1)).ok());
  }
  auto v = verify_audit_log(dir_.string());
  EXPECT_FALSE(v.ok);
  ASSERT_TRUE(v.not_checked.has_value());
  EXPECT_EQ(v.not_checked->code, "usage");  // exit status 2, not "tampered"
  EXPECT_NE(v.problem.find("other.jsonl"), std::string::npos) << v.problem;
}

TEST_F(AuditRotationTest, AFailedRotationKeepsTheRecordInTheActiveFile) {
  auto log = open_log(options(4096));
  append_n(*log, 5);
  // The name the active file would be rotated to is taken: rotation fails, nothing is lost.
  const auto first = nlohmann::json::parse(lines().front())["seq"].get<uint64_t>();
  fs::create_directory(rotated_audit_file(path_, first));
  append_n(*log, 20);
  EXPECT_EQ(lines().size(), 25u) << "the active file keeps growing while rotation fails";
  fs::remove(rotated_audit_file(path_, first));
  append_n(*log, 1);
  ASSERT_EQ(rotated().size(), 1u);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 26u);
}

TEST(AuditTime, Rfc3339RoundTrip) {
  const auto t = std::chrono::sys_days{std::chrono::year{2026} / 11 / 27} + std::chrono::hours(5) +
                 std::chrono::minutes(14) + std::chrono::seconds(49);
  EXPECT_EQ(parse_rfc3339_utc(rfc3339_utc(t)), t);
  EXPECT_EQ(parse_rfc3339_utc(rfc3339_utc(t, true)), t);
  EXPECT_FALSE(parse_rfc3339_utc("yesterday").has_value());
  EXPECT_FALSE(parse_rfc3339_utc("2026-13-01T00:00:00Z").has_value());
}

// ---- syslog shipping ----

// A unix datagram socket standing in for the syslog daemon's /dev/log.
class FakeSyslogDaemon {
 public:
  explicit FakeSyslogDaemon(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~FakeSyslogDaemon() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  std::optional<std::string> receive() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1) return std::nullopt;
    std::string buf(65536, '\0');
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) return std::nullopt;
    buf.resize(static_cast<size_t>(n));
    return buf;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST_F(AuditLogTest, SyslogGetsEachRecordInChainOrderAsAuthpriv) {
  FakeSyslogDaemon daemon((dir_ / "dev-log").string());
  ASSERT_TRUE(daemon.bound());
  AuditSyslog syslog((dir_ / "dev-log").string());
  AuditLogOptions o;
  o.on_record = [&](const std::string& line) { EXPECT_TRUE(syslog.send(line)); };
  auto log = AuditLog::open(path_, o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->append(record(i)).ok());
  const auto ls = lines();
  ASSERT_EQ(ls.size(), 3u);
  for (const auto& line : ls) {
    auto got = daemon.receive();
    ASSERT_TRUE(got.has_value());
    // <86>: facility authpriv (10) * 8 + severity info (6).
    EXPECT_EQ(*got, "<86>larder-audit[" + std::to_string(::getpid()) + "]: " + line);
  }
}

TEST_F(AuditLogTest, ASyslogDaemonThatIsGoneRefusesNoRecord) {
  AuditSyslog syslog((dir_ / "no-daemon").string());
  int shipped = 0;
  AuditLogOptions o;
  o.on_record = [&](const std::string& line) { shipped += syslog.send(line); };
  auto log = AuditLog::open(path_, o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*log)->append(record(i)).ok());
  EXPECT_EQ(shipped, 0);
  auto v = verify_audit_log(path_);
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.records, 2u);
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
