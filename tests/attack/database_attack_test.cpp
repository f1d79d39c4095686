// Attacks on the database boundary: "what leaves PostgreSQL is the caller's rows, bounded, and
// nothing else". A patient's agent, with a valid certificate and token, tries to read other
// patients' data through what the database says besides rows — its error messages, its logs,
// the planner's statistics, EXPLAIN ANALYZE's counters — or to make one call cost the server
// far more than a result's worth (findings 1, 6 and 8 of the security issue).
#include "attack_env.h"
#include "support/wait.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace larder::attack {
namespace {

constexpr const char* kErin = "Erin oRTEga";
constexpr const char* kRecords = "pgmcp://healthcare/schemas/public/tables/health_records/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::uintmax_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : n;
}

// True when `token`'s lineage may no longer reach the egress tool.
bool egress_refused_for_taint(const std::string& token) {
  auto egress = connect(env().compliance_url, token);
  return refused_lock(call(*egress, "hipaa_compliance_check", {{"text", "x"}})) == "taint";
}

long long erins_rows() {
  return std::stoll(bed().cluster().admin_scalar(
      R"(SELECT count(*) FROM health_records WHERE "Patient Name" = $1)", {std::string(kErin)}));
}

// Finding 1: the server's message for a failed cast quotes the value — here every visible row
// glued into one string. The refusal names the SQLSTATE and its class and quotes nothing; the
// PostgreSQL log does not hold the value either.
TEST(DatabaseAttack, ACastErrorNamesItsSqlstateAndQuotesNoValue) {
  auto db = connect(env().db_url, fresh_patient_token());
  auto r = call(
      *db, "pg_query",
      {{"query",
        R"(SELECT (string_agg("Patient Name"||'|'||"Medical Condition"||'|'||"Medication",' ; '))::int FROM health_records)"}});
  EXPECT_EQ(refused_lock(r), "database") << r.dump();
  const std::string text = text_of(r);
  EXPECT_NE(text.find("22P02"), std::string::npos) << text;
  EXPECT_NE(text.find("data exception"), std::string::npos) << text;
  EXPECT_EQ(r.dump().find("Erin"), std::string::npos) << "the refusal carries a row: " << r.dump();
  EXPECT_EQ(slurp(env().audit_log).find("Erin oRTEga|"), std::string::npos) << "row values in the audit log";

  // A value a query cannot see is not quoted either: a foreign patient's name in a literal
  // would be the query's own text, but the server's message about a *row* never reaches us.
  auto other = call(*db, "pg_query", {{"query", R"(SELECT "Medication"::int FROM health_records)"}});
  EXPECT_EQ(refused_lock(other), "database");
  EXPECT_NE(text_of(other).find("22P02"), std::string::npos) << text_of(other);
  for (const char* medication : {"Aspirin", "Ibuprofen", "Lipitor", "Paracetamol", "Penicillin"})
    EXPECT_EQ(other.dump().find(medication), std::string::npos) << other.dump();
}

TEST(DatabaseAttack, ThePostgresLogHoldsNoValueOfAFailedQuery) {
  auto db = connect(env().db_url, fresh_patient_token());
  auto r =
      call(*db, "pg_query", {{"query", R"(SELECT ("Patient Name"||'#marker')::int FROM health_records)"}});
  ASSERT_EQ(refused_lock(r), "database") << r.dump();
  auto ok = call(
      *db, "pg_query",
      {{"query", R"(SELECT count(*) FROM health_records WHERE "Patient Name" = $1)"}, {"params", {kErin}}});
  ASSERT_EQ(refused_lock(ok), "") << ok.dump();
  const std::string log = slurp(bed().cluster().state().log_file());
  ASSERT_FALSE(log.empty()) << "no server log at " << bed().cluster().state().log_file();
  EXPECT_EQ(log.find("#marker"), std::string::npos) << "the failed statement or its value reached the log";
  EXPECT_EQ(log.find(kErin), std::string::npos) << "a patient name reached the PostgreSQL log";
}

// Finding 6: a 20 MB value inside the error message made a 40 MB response and 20 MB of audit
// log per call. The refusal is now a fixed sentence, and a 20 MB *value* is capped like rows.
TEST(DatabaseAttack, AHugeValueInAnErrorIsNotEchoed) {
  auto db = connect(env().db_url, fresh_patient_token());
  const auto audit_before = file_size(env().audit_log);
  auto r = call(*db, "pg_query", {{"query", "SELECT repeat('x', 20000000)::int"}});
  EXPECT_EQ(refused_lock(r), "database") << r.dump().substr(0, 500);
  EXPECT_LT(r.dump().size(), 4096u) << r.dump().substr(0, 500);
  EXPECT_NE(text_of(r).find("22P02"), std::string::npos) << text_of(r).substr(0, 500);
  EXPECT_LT(file_size(env().audit_log) - audit_before, 4096u) << "the audit record of one refusal is large";
}

TEST(DatabaseAttack, AHugeValueIsCappedLikeRows) {
  auto db = connect(env().db_url, fresh_patient_token());
  const auto audit_before = file_size(env().audit_log);
  auto r = call(*db, "pg_query", {{"query", "SELECT repeat('x', 20000000) AS big"}});
  EXPECT_EQ(refused_lock(r), "") << r.dump().substr(0, 500);
  EXPECT_LT(r.dump().size(), 64u * 1024) << "a 20 MB cell went out";
  EXPECT_EQ(r["structuredContent"]["truncated"], true) << r.dump().substr(0, 500);
  EXPECT_LT(file_size(env().audit_log) - audit_before, 4096u);
}

// Every row repeats the column names in the JSON answer: many long names over tiny values
// must not multiply the answer past max_result_bytes.
TEST(DatabaseAttack, RepeatedColumnNamesCountTowardsTheByteCap) {
  std::string select = "SELECT ";
  for (int i = 0; i < 400; ++i) {
    if (i > 0) select += ", ";
    select += "1 AS c" + std::to_string(i) + "_" + std::string(50, 'n');
  }
  select += " FROM generate_series(1, 1000)";
  auto db = connect(env().db_url, fresh_patient_token());
  auto r = call(*db, "pg_query", {{"query", select}});
  ASSERT_EQ(refused_lock(r), "") << r.dump().substr(0, 500);
  // 1000 rows x 400 names of 56 bytes would be 22 MB of JSON per copy; the cap is 4 MiB.
  EXPECT_LT(r["structuredContent"].dump().size(), std::size_t{5} << 20);
  EXPECT_EQ(r["structuredContent"]["truncated"], true);
}

// A query the planner expects to be enormous is refused before it runs, with the estimate and
// the ceiling in the message.
TEST(DatabaseAttack, ACrossJoinBeyondTheCostCeilingIsRefusedBeforeItRuns) {
  auto db = connect(env().db_url, fresh_patient_token());
  const auto started = std::chrono::steady_clock::now();
  auto r =
      call(*db, "pg_query",
           {{"query",
             "SELECT count(*) FROM health_records a, health_records b, health_records c, health_records d"}});
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(refused_lock(r), "database") << r.dump();
  const std::string text = text_of(r);
  EXPECT_NE(text.find("planner estimates cost"), std::string::npos) << text;
  EXPECT_NE(text.find("above the ceiling 1e7"), std::string::npos) << text;
  EXPECT_NE(text.find("max_query_cost"), std::string::npos) << text;
  EXPECT_LT(took, std::chrono::seconds(5)) << "the query ran instead of being refused";
  // An ordinary analytic query passes the same check.
  auto fine = call(*db, "pg_query",
                   {{"query", R"(SELECT "Medical Condition", count(*) FROM health_records GROUP BY 1)"}});
  EXPECT_EQ(refused_lock(fine), "") << fine.dump();
}

// Finding 8: pg_explain's estimates, divided by the unfiltered estimate and multiplied by the
// table's row count, gave every column's distribution over all patients.
TEST(DatabaseAttack, ExplainShowsThePlanButNoEstimate) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  auto r = call(*db, "pg_explain",
                {{"query", R"(SELECT * FROM health_records WHERE "Medical Condition" = 'Cancer')"}});
  ASSERT_EQ(refused_lock(r), "") << r.dump();
  const std::string plan = r["structuredContent"]["plan"].dump();
  for (const char* field : {"Plan Rows", "Plan Width", "Total Cost", "Startup Cost", "Workers Planned"})
    EXPECT_EQ(plan.find(field), std::string::npos) << field << " in " << plan;
  EXPECT_NE(plan.find("Node Type"), std::string::npos) << plan;
  EXPECT_NE(plan.find("health_records"), std::string::npos) << plan;
  EXPECT_NE(plan.find("Cancer"), std::string::npos) << "the filter is part of the plan's shape: " << plan;
  // Planning alone reads no row: the lineage stays clean.
  EXPECT_FALSE(egress_refused_for_taint(token));
}

TEST(DatabaseAttack, RowCountCountsOnlyTheCallersRowsAndTaints) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  auto r = db->read_resource(std::string(kRecords) + "rowcount");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto content = nlohmann::json::parse((*r)["contents"][0].value("text", "{}"));
  EXPECT_EQ(content["row_count"].get<long long>(), erins_rows()) << content.dump();
  EXPECT_FALSE(content.contains("approximate_row_count")) << content.dump();
  EXPECT_EQ(content.dump().find("3000"), std::string::npos) << "the table's size: " << content.dump();
  EXPECT_TRUE(egress_refused_for_taint(token)) << "a count of the caller's rows is a sensitive read";
}

// EXPLAIN ANALYZE runs the query: it is a sensitive read, and its counters of rows the RLS
// filter removed (or the index found before it) are withheld.
TEST(DatabaseAttack, ExplainAnalyzeTaintsAndHidesFilteredRows) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  auto r = call(
      *db, "pg_explain",
      {{"query", R"(SELECT * FROM health_records WHERE "Medical Condition" = 'Cancer')"}, {"analyze", true}});
  ASSERT_EQ(refused_lock(r), "") << r.dump();
  const std::string plan = r["structuredContent"]["plan"].dump();
  EXPECT_NE(plan.find("Actual Total Time"), std::string::npos) << plan;
  for (const char* field :
       {"Rows Removed", "Heap Fetches", "Heap Blocks", "Shared Hit", "Plan Rows", "Total Cost"})
    EXPECT_EQ(plan.find(field), std::string::npos) << field << " in " << plan;
  EXPECT_TRUE(egress_refused_for_taint(token)) << "EXPLAIN ANALYZE read rows but left the lineage clean";

  auto costly =
      call(*db, "pg_explain",
           {{"query",
             "SELECT count(*) FROM health_records a, health_records b, health_records c, health_records d"},
            {"analyze", true}});
  EXPECT_EQ(refused_lock(costly), "database") << costly.dump();
  EXPECT_NE(text_of(costly).find("max_query_cost"), std::string::npos) << text_of(costly);

  auto bad = call(*db, "pg_explain", {{"query", "SELECT 1"}, {"analyze", "yes"}});
  EXPECT_TRUE(bad.value("isError", false)) << bad.dump();
}

// A caller who gives up (Ctrl-C in `larder ask`, a host's cancel through `larder connect`)
// sends notifications/cancelled; a statement left running would hold a backend and its CPU
// until the deadline (10 s) for an answer nobody reads: N such calls are N busy backends. The
// server cancels the statement in PostgreSQL as soon as the cancel arrives.
TEST(DatabaseAttack, ACancelledCallStopsItsStatementInPostgresAtOnce) {
  auto client = connect(env().db_url, fresh_patient_token());
  auto running = [] {
    return std::stoll(bed().cluster().admin_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%generate_series(1, "
        "400000000)%' AND pid <> pg_backend_pid()"));
  };
  CancellationToken cancel;
  std::thread canceller([&] {
    // The cancel comes once the statement runs in PostgreSQL, not after a guessed delay.
    EXPECT_TRUE(test::wait_until([&] { return running() > 0; }, std::chrono::seconds(10),
                                 std::chrono::milliseconds(20)))
        << "the statement never ran";
    cancel.cancel();
  });
  auto r = client->call_tool(
      "pg_query", {{"query", "SELECT count(*) FROM generate_series(1, 400000000) AS g"}}, nullptr, &cancel);
  canceller.join();
  EXPECT_FALSE(r.ok()) << "the client abandoned the call";
  EXPECT_TRUE(test::wait_until([&] { return running() == 0; }, std::chrono::seconds(3),
                               std::chrono::milliseconds(50)))
      << "the statement still runs in PostgreSQL 3 s after the cancel";
}

}  // namespace
}  // namespace larder::attack
