// Attacks on the audit trail (finding 9): requests that left no record, a log whose tail
// was cut and whose head was rewritten to match, and rotated files deleted or reordered.
#include "attack_env.h"
#include "support/wait.h"

#include "base/encoding.h"
#include "gate/audit_log.h"
#include "gate/taint_ledger.h"
#include "support/cli_run.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <thread>

namespace larder::attack {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> records(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The records `path` gained while `fn` ran.
template <class Fn>
std::vector<nlohmann::json> records_during(const std::string& path, Fn fn) {
  const auto before = records(path).size();
  fn();
  auto all = records(path);
  return std::vector<nlohmann::json>(all.begin() + static_cast<std::ptrdiff_t>(before), all.end());
}

TEST(AuditAttack, AnArgumentSchemaFailureLeavesARecord) {
  auto db = connect(env().db_url, fresh_patient_token());
  auto added = records_during(env().audit_log, [&] {
    auto r = db->call_tool("pg_query", {{"query", 5}});
    EXPECT_FALSE(r.ok() && !r->value("isError", false)) << "a number where the query belongs was served";
  });
  ASSERT_EQ(added.size(), 1u) << nlohmann::json(added).dump();
  EXPECT_EQ(added[0]["tool"], "pg_query") << added[0].dump();
  EXPECT_EQ(added[0]["decision"], "error");
  EXPECT_EQ(added[0]["client_cert_cn"], "claude-client");
}

TEST(AuditAttack, UnknownMethodsAndListsLeaveRecords) {
  auto db = connect(env().db_url, "");
  auto added = records_during(env().audit_log, [&] {
    (void)db->request("larder/no-such-method");
    (void)db->list_tools();
  });
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0]["method"], "larder/no-such-method");
  EXPECT_EQ(added[0]["decision"], "error");
  EXPECT_EQ(added[1]["method"], "tools/list");
}

TEST(AuditAttack, AMessageThatIsNotJsonLeavesARecord) {
  auto added = records_during(env().audit_log, [&] {
    auto r = raw_post(env().db_url, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    EXPECT_EQ(r.status, 400) << r.body;
  });
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0]["decision"], "error");
  EXPECT_NE(added[0]["reason"].get<std::string>().find("-32700"), std::string::npos) << added[0].dump();
}

TEST(AuditAttack, ARecordIsBoundedWhateverTheRequestSends) {
  auto db = connect(env().db_url, fresh_patient_token());
  const std::string huge(200'000, 'n');
  auto added = records_during(env().audit_log, [&] { (void)db->call_tool(huge, {{"query", "SELECT 1"}}); });
  ASSERT_EQ(added.size(), 1u);
  EXPECT_LT(added[0].dump().size(), 4096u);
}

// The log's tail is cut and its head rewritten to match: the chain alone is consistent, the
// anchor in PostgreSQL is not.
TEST(AuditAttack, ACutLogWithARewrittenHeadFailsVerification) {
  auto db = connect(env().db_url, fresh_patient_token());
  for (int i = 0; i < 3; ++i) (void)call(*db, "pg_query", {{"query", "SELECT 1"}});

  const std::string log = env().audit_log;
  const std::string id = gate::default_audit_anchor_id("larder-db", log);
  gate::TaintLedger ledger(bed().ledger(), {});
  auto reader = [&](const std::string& log_id) { return ledger.audit_anchor(log_id); };
  // The anchor follows the log within milliseconds; wait (bounded) until it holds every record.
  const auto total = records(log).size();
  test::wait_until(
      [&] {
        auto a = ledger.audit_anchor(id);
        return a.ok() && *a && (*a)->seq >= total;
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  ASSERT_TRUE(gate::verify_audit_log(log, id, reader).ok);

  // The attacker's copy: the last two records cut, the head rewritten to the new last line.
  const std::string cut = (bed().dir() / "audit-cut.jsonl").string();
  std::vector<std::string> lines;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  ASSERT_GE(lines.size(), 3u);
  lines.resize(lines.size() - 2);
  {
    std::ofstream out(cut);
    for (const auto& l : lines) out << l << "\n";
    char head[96];
    std::snprintf(head, sizeof head, "%020zu %s\n", lines.size(), sha256_hex(lines.back()).c_str());
    std::ofstream(cut + ".head") << head;
  }
  EXPECT_TRUE(gate::verify_audit_log(cut).ok) << "the chain alone cannot see this cut";
  auto anchored = gate::verify_audit_log(cut, id, reader);
  EXPECT_FALSE(anchored.ok);
  EXPECT_NE(anchored.problem.find("cut off"), std::string::npos) << anchored.problem;

  // A rewritten record at the anchored position fails too.
  auto all = records(log);
  lines.clear();
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  lines.back().replace(lines.back().find("\"decision\":\"allow\""), 18, "\"decision\":\"alloW\"");
  const std::string edited = (bed().dir() / "audit-edited.jsonl").string();
  {
    std::ofstream out(edited);
    for (const auto& l : lines) out << l << "\n";
  }
  EXPECT_FALSE(gate::verify_audit_log(edited, id, reader).ok);
}

// A call whose decision cannot be written is not carried out: the log's file may not grow
// (RLIMIT_FSIZE at its current size, so the server's next write fails with EFBIG).
TEST(AuditAttack, AFailedAuditWriteRefusesTheCall) {
  auto db = connect(env().db_url, fresh_patient_token());
  (void)call(*db, "pg_query", {{"query", "SELECT 1"}});  // the session is open, the log warm
  const auto size = fs::file_size(env().audit_log);
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit capped = old;
  capped.rlim_cur = static_cast<rlim_t>(size);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &capped), 0);
  auto r = db->call_tool("pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->value("isError", false)) << r->dump();
  EXPECT_EQ(r->dump().find("Erin"), std::string::npos)
      << "rows were sent although the decision was not recorded";
  EXPECT_EQ(fs::file_size(env().audit_log), size);
}

// Rotated files (issue #17, item 5): someone who can write the log's directory deletes a
// rotated file in the middle, deletes the oldest one as if retention had, hides a gap by
// renaming the next file into it, or swaps two files. `larder audit verify <directory>`
// fails every one of them, and passes the untouched log, whose oldest files retention
// deleted as its retention records say.
TEST(AuditAttack, ADeletedOrReorderedRotatedFileFailsVerification) {
  const std::string larder = std::string(LARDER_BINARY_DIR) + "/larder";
  const fs::path dir = bed().dir() / "audit-rotated";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string log_path = (dir / "audit.jsonl").string();
  {
    gate::AuditLogOptions options;
    options.rotate_bytes = 4096;
    options.keep_files = 4;
    auto log = gate::AuditLog::open(log_path, options);
    ASSERT_TRUE(log.ok()) << log.error().message;
    for (int i = 0; i < 80; ++i) {
      gate::AuditRecord r;
      r.method = "tools/call";
      r.tool = "pg_query";
      r.decision = i % 5 ? "allow" : "deny";
      r.reason = "call " + std::to_string(i);
      ASSERT_TRUE((*log)->append(r).ok());
    }
  }
  const auto files = gate::rotated_audit_files(log_path);
  ASSERT_EQ(files.size(), 4u);
  auto name = [&](size_t i) { return fs::path(files[i].second).filename(); };
  auto verify = [&](const fs::path& d) {
    return test::run_shell(test::shell_quote(larder) + " audit verify " + test::shell_quote(d.string()) +
                           " 2>&1");
  };
  const auto intact = verify(dir);
  EXPECT_EQ(intact.status, 0) << intact.out;
  EXPECT_NE(intact.out.find("deleted by retention"), std::string::npos) << intact.out;

  // Each attack on its own copy of the directory.
  auto attacked = [&](const std::string& attack, const std::function<void(const fs::path&)>& mutate) {
    const fs::path copy = bed().dir() / ("audit-rotated-" + attack);
    fs::remove_all(copy);
    fs::copy(dir, copy, fs::copy_options::recursive);
    mutate(copy);
    return verify(copy);
  };
  const auto middle = attacked("middle", [&](const fs::path& d) { fs::remove(d / name(1)); });
  EXPECT_EQ(middle.status, 1) << middle.out;
  EXPECT_NE(middle.out.find("TAMPERED"), std::string::npos) << middle.out;
  EXPECT_NE(middle.out.find("missing"), std::string::npos) << middle.out;

  const auto oldest = attacked("oldest", [&](const fs::path& d) { fs::remove(d / name(0)); });
  EXPECT_EQ(oldest.status, 1) << oldest.out;
  EXPECT_NE(oldest.out.find("no retention record"), std::string::npos) << oldest.out;

  const auto renamed = attacked("renamed", [&](const fs::path& d) {
    fs::remove(d / name(1));
    fs::rename(d / name(2), d / name(1));
  });
  EXPECT_EQ(renamed.status, 1) << renamed.out;
  EXPECT_NE(renamed.out.find("TAMPERED"), std::string::npos) << renamed.out;

  const auto swapped = attacked("swapped", [&](const fs::path& d) {
    fs::rename(d / name(1), d / "tmp");
    fs::rename(d / name(2), d / name(1));
    fs::rename(d / "tmp", d / name(2));
  });
  EXPECT_EQ(swapped.status, 1) << swapped.out;
  EXPECT_NE(swapped.out.find("reordered"), std::string::npos) << swapped.out;
}

}  // namespace
}  // namespace larder::attack
