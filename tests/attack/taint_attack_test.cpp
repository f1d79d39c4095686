// Attacks on the taint promise: "once a lineage has read sensitive data, no egress tool
// accepts any token of it". Each test is the attack, run against the real servers.
#include "attack_env.h"

#include "biscuit/token/token.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace larder::attack {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Finding 1: a query whose error message carries the rows ("invalid input syntax for type
// integer: "Erin oRTEga|Cancer|…"") must neither show them nor escape the taint.
TEST(TaintAttack, AnErrorThatWouldCarryRowsShowsNoneAndTaintsTheLineage) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  auto r = call(
      *db, "pg_query",
      {{"query",
        R"(SELECT (string_agg("Patient Name"||'|'||"Medical Condition"||'|'||"Medication",' ; '))::int FROM health_records)"}});
  EXPECT_EQ(refused_lock(r), "database") << r.dump();
  EXPECT_EQ(r.dump().find("Erin"), std::string::npos) << "the refusal carries a row: " << r.dump();
  EXPECT_NE(text_of(r).find("22P02"), std::string::npos)
      << "the SQLSTATE names the error class: " << r.dump();

  auto egress = connect(env().compliance_url, token);
  const auto before = bed().received().size();
  auto out = call(*egress, "hipaa_compliance_check", {{"text", "Erin oRTEga|Cancer"}});
  EXPECT_EQ(refused_lock(out), "taint") << out.dump();
  EXPECT_EQ(bed().received().size(), before) << "the external API was reached";

  EXPECT_EQ(slurp(env().audit_log).find("Erin oRTEga|"), std::string::npos) << "row values in the audit log";
}

// The same, for an error raised after some rows were already computed (division by zero
// in a row's expression): it read the data, so it taints.
TEST(TaintAttack, ARuntimeErrorMidQueryTaints) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  auto r = call(
      *db, "pg_query",
      {{"query", R"(SELECT 1 / (length("Patient Name") - length("Patient Name")) FROM health_records)"}});
  EXPECT_EQ(refused_lock(r), "database") << r.dump();
  auto egress = connect(env().compliance_url, token);
  EXPECT_EQ(refused_lock(call(*egress, "hipaa_compliance_check", {{"text", "x"}})), "taint");
}

// Finding 2: the holder appends a `time` check that ended in 1970, reads with that copy and
// hopes the ledger entry expires at once. Neither the copy nor the pre-read token may pass
// egress afterwards.
TEST(TaintAttack, AHolderCannotShortenTheLedgersMemory) {
  const std::string token = fresh_patient_token();
  auto parsed = biscuit::Biscuit::from_base64(token, env().root.public_key());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  biscuit::BlockBuilder block;
  ASSERT_TRUE(block.add_code("check if time($t), $t > 1970-01-01T00:00:00Z;").ok());
  auto attenuated = parsed->append(block);
  ASSERT_TRUE(attenuated.ok());
  const std::string short_lived = attenuated->to_base64();

  auto db = connect(env().db_url, short_lived);
  auto r = call(*db, "pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
  ASSERT_EQ(refused_lock(r), "") << r.dump();

  for (const std::string& t : {token, short_lived}) {
    auto egress = connect(env().compliance_url, t);
    auto out = call(*egress, "hipaa_compliance_check", {{"text", "x"}});
    EXPECT_EQ(refused_lock(out), "taint") << out.dump();
  }
}

}  // namespace
}  // namespace larder::attack
