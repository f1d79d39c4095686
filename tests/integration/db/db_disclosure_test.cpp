// What the database layer says besides rows, against a real PostgreSQL: errors that carry no
// server text (SQLSTATE, class and our sentence; "db.statement" once the SQL was sent), a
// server log without values, the planner-cost ceiling (refused before running, cached per
// session), EXPLAIN without statistics, and byte caps that hold for single huge values.
#include "db/plan_redaction.h"
#include "db_test_env.h"
#include "support/wait.h"

#include <fstream>
#include <iterator>

using namespace larder;
using namespace std::chrono_literals;
using larder::test::admin_scalar;
using larder::test::clinician_ctx;
using larder::test::patient_ctx;
using larder::test::shared_cluster;
using nlohmann::json;

namespace {

constexpr const char* kLeakyCast =
    R"(SELECT (string_agg("Patient Name"||'|'||"Medical Condition"||'|'||"Medication",' ; '))::int FROM health_records)";

std::string server_log() {
  std::ifstream in(shared_cluster()->state().log_file(), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

db::RequestContext guarded_erin() {
  auto c = patient_ctx({examples::kErinOrtega});
  c.guard_enabled = true;
  return c;
}

class DbDisclosure : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new db::Database(shared_cluster()->database_config(2)); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  static db::Database* db_;
};
db::Database* DbDisclosure::db_ = nullptr;

void expect_no_server_text(const Error& e) {
  EXPECT_EQ(e.message.find("invalid input syntax"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("ERROR"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find(examples::kErinOrtega), std::string::npos) << e.message;
}

// ---- 1. errors: the SQLSTATE and our sentence, never the server's text -----------------

TEST_F(DbDisclosure, AnErrorQuotingRowsCarriesOnlyItsSqlstate) {
  auto r = db_->query(guarded_erin(), kLeakyCast);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, db::kStatementError);
  EXPECT_EQ(
      r.error().message,
      "database error 22P02 (data exception): a value in the query could not be converted to the requested "
      "type; the database's own message is withheld because it may contain row data");
  expect_no_server_text(r.error());
  EXPECT_EQ(r.error().message.find("Erin"), std::string::npos);
}

TEST_F(DbDisclosure, EveryServerErrorIsDbStatementWithItsClass) {
  struct Case {
    const char* sql;
    const char* sqlstate;
    const char* class_name;
  };
  const Case cases[] = {
      {R"(SELECT 1 / (length("Patient Name") - length("Patient Name")) FROM health_records)", "22012",
       "data exception"},
      {R"(SELECT "no such column" FROM health_records)", "42703", "syntax error or access rule violation"},
      {R"(SELECT (SELECT "Patient Name" FROM health_records))", "21000", "cardinality violation"},
      {R"(SELECT "Age" FROM health_records GROUP BY "Gender")", "42803",
       "syntax error or access rule violation"},
      {R"(SELECT make_date(2024, 13, "Age") FROM health_records)", "22008", "data exception"},
  };
  for (const auto& c : cases) {
    auto r = db_->query(guarded_erin(), c.sql);
    ASSERT_FALSE(r.ok()) << c.sql;
    EXPECT_EQ(r.error().code, db::kStatementError) << c.sql;
    EXPECT_EQ(
        r.error().message.rfind(std::string("database error ") + c.sqlstate + " (" + c.class_name + "): ", 0),
        0u)
        << c.sql << " -> " << r.error().message;
    EXPECT_NE(r.error().message.find("withheld"), std::string::npos) << r.error().message;
    expect_no_server_text(r.error());
  }
  // A parse-time error names where in the caller's text it is (the text is the caller's own).
  auto col = db_->query(guarded_erin(), R"(SELECT "nope" FROM health_records)");
  ASSERT_FALSE(col.ok());
  EXPECT_NE(col.error().message.find("(at character 8 of the query)"), std::string::npos)
      << col.error().message;
  EXPECT_EQ(col.error().message.find("nope"), std::string::npos) << col.error().message;
}

TEST_F(DbDisclosure, UnguardedAndTrustedSqlErrorsAreWithheldToo) {
  auto syntax = db_->query(patient_ctx({examples::kErinOrtega}), "SELEC 1");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().code, db::kStatementError);
  EXPECT_EQ(syntax.error().message.rfind(
                "database error 42601 (syntax error or access rule violation): the query has "
                "a syntax error (at character 1 of the query)",
                0),
            0u)
      << syntax.error().message;
  auto denied = db_->query(patient_ctx({examples::kErinOrtega}), "SELECT * FROM larder_private.context_keys");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().code, db::kStatementError);
  EXPECT_NE(denied.error().message.find("42501"), std::string::npos) << denied.error().message;
  EXPECT_EQ(denied.error().message.find("context_keys"), std::string::npos) << denied.error().message;
  auto trusted = db_->query_trusted(guarded_erin(), R"(SELECT "Patient Name"::int FROM health_records)");
  ASSERT_FALSE(trusted.ok());
  EXPECT_EQ(trusted.error().code, db::kStatementError);
  expect_no_server_text(trusted.error());
}

TEST_F(DbDisclosure, ErrorsBeforeSendingKeepTheirCodes) {
  auto late = guarded_erin();
  late.deadline = db::Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(db_->query(late, "SELECT 1").error().code, "db.timeout");
  auto bad = guarded_erin();
  bad.facts["patient_name"] = {{std::string(600, 'x')}};
  EXPECT_EQ(db_->query(bad, "SELECT 1").error().code, "db.bad_context");
  // Every other context the writer would not store faithfully is refused before anything runs.
  {
    std::vector<db::RequestContext> refused_contexts;
    auto with = [&](auto change) {
      auto c = guarded_erin();
      change(c);
      refused_contexts.push_back(c);
    };
    with([](db::RequestContext& c) { c.facts["patient_name"] = {{}}; });                    // empty tuple
    with([](db::RequestContext& c) { c.facts[""] = {{"x"}}; });                             // empty name
    with([](db::RequestContext& c) { c.facts["$unmask"] = {{"health_records.Age"}}; });     // reserved name
    with([](db::RequestContext& c) { c.add("patient_name", std::string("Erin\0x", 6)); });  // NUL byte
    with([](db::RequestContext& c) { c.add("patient_name", "\xff\xfe"); });                 // not UTF-8
    with([](db::RequestContext& c) { c.unmask = {std::string(600, 'u')}; });                // long right
    with([](db::RequestContext& c) {                                                        // too many
      for (int i = 0; i < 300; ++i) c.add("hospital", "h" + std::to_string(i));
    });
    for (const auto& c : refused_contexts)
      EXPECT_EQ(db_->query(c, "SELECT 1").error().code, "db.bad_context");
  }
  auto refused = db_->query(guarded_erin(), "DELETE FROM health_records");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code.rfind("sql_guard", 0), 0u) << refused.error().code;

  db::DatabaseConfig wrong = shared_cluster()->database_config(1);
  wrong.query.set("password", "not-the-password");
  db::Database nowhere(wrong);
  auto r = nowhere.query(guarded_erin(), "SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().code == "db.auth" || r.error().code == "db.unavailable") << r.error().code;
  EXPECT_EQ(r.error().message.find("password"), std::string::npos) << r.error().message;
}

TEST_F(DbDisclosure, TheWatchdogsCancelIsADistinctStatementError) {
  auto ctx = patient_ctx({examples::kErinOrtega});
  ctx.deadline = db::Clock::now() + std::chrono::milliseconds(500);
  auto r = db_->query(ctx, "SELECT pg_sleep(30)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, db::kStatementError);
  EXPECT_NE(r.error().message.find("deadline exceeded"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("57014"), std::string::npos) << r.error().message;
}

// ---- 2. the server log ------------------------------------------------------------------

TEST_F(DbDisclosure, TheRolesLogNoValues) {
  auto settings = db_->query_trusted(
      guarded_erin(),
      "SELECT name, setting FROM pg_catalog.pg_settings WHERE name IN ('log_min_messages', "
      "'log_min_error_statement', 'log_statement', 'log_min_duration_statement', 'log_parameter_max_length', "
      "'log_parameter_max_length_on_error') ORDER BY name");
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  std::map<std::string, std::string> got;
  for (const auto& row : settings->rows) got[*row[0]] = *row[1];
  EXPECT_EQ(got["log_min_messages"], "fatal");
  EXPECT_EQ(got["log_min_error_statement"], "panic");
  EXPECT_EQ(got["log_statement"], "none");
  EXPECT_EQ(got["log_min_duration_statement"], "-1");
  EXPECT_EQ(got["log_parameter_max_length"], "0");
  EXPECT_EQ(got["log_parameter_max_length_on_error"], "0");
  auto writer = admin_scalar(
      "SELECT pg_catalog.array_to_string(setconfig, ',') FROM pg_catalog.pg_db_role_setting s "
      "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'larder_context_writer' AND "
      "s.setdatabase = 0");
  EXPECT_NE(writer.find("log_min_messages=fatal"), std::string::npos) << writer;
  EXPECT_NE(writer.find("log_parameter_max_length_on_error=0"), std::string::npos) << writer;

  // The query role cannot lower them (superuser-only), not even inside its own transaction.
  auto lowered = db_->query(patient_ctx({examples::kErinOrtega}),
                            "SELECT set_config('log_min_messages', 'debug5', true)");
  ASSERT_FALSE(lowered.ok());
  EXPECT_NE(lowered.error().message.find("42501"), std::string::npos) << lowered.error().message;
}

TEST_F(DbDisclosure, AFailedQueryLeavesNoValueInTheServerLog) {
  const auto guarded = guarded_erin();
  ASSERT_FALSE(db_->query(guarded, kLeakyCast).ok());
  ASSERT_FALSE(
      db_->query(guarded, R"(SELECT ("Patient Name" || '#in-the-log')::int FROM health_records)").ok());
  ASSERT_FALSE(db_->query(patient_ctx({examples::kErinOrtega}), "SELECT '#not-a-number'::int").ok());
  // A statement with a patient name as a parameter that fails.
  ASSERT_FALSE(
      db_->query(guarded, R"(SELECT $1::int FROM health_records)", {std::string(examples::kErinOrtega)})
          .ok());
  // The server writes a statement's log lines before it answers; a marker the superuser logs
  // now, once it is in the file, shows that everything before it is too.
  const auto markers = [] {
    const std::string log = server_log();
    std::size_t n = 0;
    for (auto at = log.find("larder-test-log-marker"); at != std::string::npos;
         at = log.find("larder-test-log-marker", at + 1))
      ++n;
    return n;
  };
  const std::size_t before = markers();
  (void)admin_scalar("DO $$ BEGIN RAISE LOG 'larder-test-log-marker'; END $$");
  ASSERT_TRUE(test::wait_until([&] { return markers() > before; }, 10s))
      << "the marker never reached " << shared_cluster()->state().log_file();
  const std::string log = server_log();
  ASSERT_FALSE(log.empty()) << shared_cluster()->state().log_file();
  EXPECT_EQ(log.find("#in-the-log"), std::string::npos)
      << log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
  EXPECT_EQ(log.find("#not-a-number"), std::string::npos);
  EXPECT_EQ(log.find(examples::kErinOrtega), std::string::npos) << "a patient name in the PostgreSQL log";
  EXPECT_EQ(log.find("invalid input syntax"), std::string::npos);
}

// ---- 3. caps and the cost ceiling --------------------------------------------------------

TEST_F(DbDisclosure, ASingleHugeValueIsCapped) {
  auto ctx = guarded_erin();
  ctx.max_bytes = 1 << 20;
  auto r = db_->query(ctx, "SELECT repeat('x', 5000000) AS big");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->truncated);
  EXPECT_TRUE(r->rows.empty());
  auto error = db_->query(ctx, "SELECT repeat('x', 5000000)::int");
  ASSERT_FALSE(error.ok());
  EXPECT_LT(error.error().message.size(), 400u);
}

TEST_F(DbDisclosure, TheByteCapCountsTheAnswersJson) {
  auto ctx = guarded_erin();
  ctx.max_bytes = 64 * 1024;
  std::string select = "SELECT ";
  for (int i = 0; i < 50; ++i)
    select += std::string(i ? ", " : "") + "1 AS c" + std::to_string(i) + std::string(40, 'n');
  select += " FROM generate_series(1, 1000)";
  auto r = db_->query(ctx, select);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->truncated);
  EXPECT_LE(r->to_json().dump().size(), ctx.max_bytes + 1024);
  // Escapes count: a value of quotes doubles in JSON.
  auto quotes = db_->query(ctx, R"(SELECT repeat('"', 40000) AS q)");
  ASSERT_TRUE(quotes.ok()) << quotes.error().message;
  EXPECT_TRUE(quotes->truncated);
}

class CostCeiling : public ::testing::Test {
 protected:
  static db::DatabaseConfig config(double ceiling) {
    auto c = shared_cluster()->database_config(1);
    c.max_query_cost = ceiling;
    return c;
  }
};

TEST_F(CostCeiling, AQueryAboveTheCeilingIsRefusedBeforeItRuns) {
  db::Database db(config(1e7));
  const char* sql =
      "SELECT count(*) FROM health_records a, health_records b, health_records c, health_records d";
  auto started = db::Clock::now();
  auto r = db.query(guarded_erin(), sql);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(db::Clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(r.error().code, db::kTooCostlyError);
  EXPECT_EQ(r.error().message.rfind("refused: the planner estimates cost ", 0), 0u) << r.error().message;
  EXPECT_NE(r.error().message.find(", above the ceiling 1e7 ([database] max_query_cost)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(db.stats().cost_refusals, 1u);
  // The session stays usable; an ordinary query passes.
  auto ok =
      db.query(guarded_erin(), R"(SELECT "Medical Condition", count(*) FROM health_records GROUP BY 1)");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE(ok->rows.empty());
}

TEST_F(CostCeiling, TheVerdictIsCachedPerSessionTextAndParameters) {
  db::Database db(config(1e7));
  const char* sql = R"(SELECT * FROM health_records WHERE "Patient Name" = $1)";
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(db.query(guarded_erin(), sql, {std::string(examples::kErinOrtega)}).ok());
  EXPECT_EQ(db.stats().cost_checks, 1u) << "one EXPLAIN for five executions";
  ASSERT_TRUE(db.query(guarded_erin(), sql, {std::string("someone else")}).ok());
  EXPECT_EQ(db.stats().cost_checks, 2u) << "other parameter values are checked again";
  ASSERT_TRUE(db.query(guarded_erin(), R"(SELECT count(*) FROM health_records)").ok());
  EXPECT_EQ(db.stats().cost_checks, 3u);
  // A refusal is cached too: the second one does not reach the server.
  const char* big =
      "SELECT count(*) FROM health_records a, health_records b, health_records c, health_records d";
  ASSERT_FALSE(db.query(guarded_erin(), big).ok());
  ASSERT_FALSE(db.query(guarded_erin(), big).ok());
  EXPECT_EQ(db.stats().cost_checks, 4u);
  EXPECT_EQ(db.stats().cost_refusals, 2u);
}

TEST_F(CostCeiling, ZeroTurnsItOffAndUnguardedSqlIsNotChecked) {
  db::Database off(config(0));
  ASSERT_TRUE(off.query(guarded_erin(), "SELECT count(*) FROM health_records a, health_records b").ok());
  EXPECT_EQ(off.stats().cost_checks, 0u);
  db::Database tiny(config(1));
  auto r = tiny.query(guarded_erin(), "SELECT count(*) FROM health_records");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, db::kTooCostlyError);
  EXPECT_NE(r.error().message.find("above the ceiling 1 ("), std::string::npos) << r.error().message;
  // Trusted SQL (Larder's own) is never held to it.
  EXPECT_TRUE(tiny.query_trusted(guarded_erin(), "SELECT count(*) FROM health_records").ok());
}

TEST_F(CostCeiling, ItRunsInTheRequestsTransactionAndContext) {
  // Many alternating contexts over one session: every answer is the context's own.
  db::Database db(config(1e7));
  const long long erin =
      std::stoll(admin_scalar(R"(SELECT count(*) FROM health_records WHERE "Patient Name" = $1)",
                              {std::string(examples::kErinOrtega)}));
  for (int i = 0; i < 6; ++i) {
    auto ctx = i % 2 == 0 ? guarded_erin() : patient_ctx({"nobody at all"});
    ctx.guard_enabled = true;
    auto r = db.query(ctx, "SELECT count(*) FROM health_records WHERE \"Age\" >= $1", {std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(std::stoll(*r->rows[0][0]), i % 2 == 0 ? erin : 0);
  }
  EXPECT_EQ(db.stats().cost_checks, 6u);
}

// ---- 4. EXPLAIN -----------------------------------------------------------------------------

void expect_no_statistics(const json& plan) {
  const std::string text = plan.dump();
  for (const char* field : {"Plan Rows", "Plan Width", "Startup Cost", "Total Cost", "Workers Planned",
                            "Rows Removed", "Heap Fetches", "Heap Blocks", "Shared Hit", "Shared Read"})
    EXPECT_EQ(text.find(field), std::string::npos) << field << " in " << text;
}

// Every node whose rows come straight from an index, before the scan's filters (RLS among
// them), shows no row count.
void expect_no_unfiltered_counts(const json& node) {
  if (node.is_array()) {
    for (const auto& n : node) expect_no_unfiltered_counts(n);
    return;
  }
  if (!node.is_object()) return;
  if (auto t = node.value("Node Type", ""); t == "Bitmap Index Scan" || t == "BitmapAnd" || t == "BitmapOr") {
    EXPECT_FALSE(node.contains("Actual Rows")) << node.dump();
  }
  for (const auto& [k, v] : node.items()) expect_no_unfiltered_counts(v);
}

TEST_F(DbDisclosure, ExplainKeepsTheShapeAndWithholdsEstimates) {
  const auto checks_before = db_->stats().cost_checks;
  auto plan = db_->explain(guarded_erin(), R"(SELECT * FROM health_records WHERE "Medical Condition" = $1)",
                           {std::string("Cancer")}, false);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  expect_no_statistics(*plan);
  const json& root = (*plan)[0]["Plan"];
  EXPECT_TRUE(root.contains("Node Type")) << plan->dump();
  EXPECT_NE(plan->dump().find("health_records"), std::string::npos) << plan->dump();
  EXPECT_NE(plan->dump().find("Filter"), std::string::npos) << plan->dump();
  EXPECT_FALSE((*plan)[0].contains("Execution Time"));
  // Not run: no cost check either.
  EXPECT_EQ(db_->stats().cost_checks, checks_before);
}

TEST_F(DbDisclosure, ExplainAnalyzeShowsTimesButNoFilteredRows) {
  const long long hospital_rows = std::stoll(admin_scalar(
      R"(SELECT count(*) FROM health_records WHERE "Hospital" = (SELECT "Hospital" FROM health_records
                      WHERE "Patient Name" = $1 LIMIT 1))",
      {std::string(examples::kErinOrtega)}));
  const std::string hospital =
      admin_scalar(R"(SELECT "Hospital" FROM health_records WHERE "Patient Name" = $1 LIMIT 1)",
                   {std::string(examples::kErinOrtega)});
  ASSERT_GT(hospital_rows, 1);
  const auto checks_before = db_->stats().cost_checks;
  auto plan =
      db_->explain(guarded_erin(), R"(SELECT * FROM health_records WHERE "Hospital" = $1)", {hospital}, true);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(db_->stats().cost_checks, checks_before + 1) << "ANALYZE runs the query: the ceiling applies";
  expect_no_statistics(*plan);
  expect_no_unfiltered_counts(*plan);
  EXPECT_TRUE((*plan)[0].contains("Execution Time")) << plan->dump();
  const json& root = (*plan)[0]["Plan"];
  EXPECT_TRUE(root.contains("Actual Total Time")) << plan->dump();
  // The root's rows are the caller's own: Erin's admissions at that hospital, never all of them.
  ASSERT_TRUE(root.contains("Actual Rows")) << plan->dump();
  EXPECT_LT(root["Actual Rows"].get<long long>(), hospital_rows);

  auto costly = db_->explain(
      guarded_erin(),
      "SELECT count(*) FROM health_records a, health_records b, health_records c, health_records d", {},
      true);
  ASSERT_FALSE(costly.ok());
  EXPECT_EQ(costly.error().code, db::kTooCostlyError);
  auto refused = db_->explain(guarded_erin(), "EXPLAIN ANALYZE SELECT 1", {}, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code.rfind("sql_guard", 0), 0u) << refused.error().code;
  // A parse error's position is the caller's, not shifted by our EXPLAIN prefix.
  auto col = db_->explain(guarded_erin(), R"(SELECT "nope" FROM health_records)", {}, false);
  ASSERT_FALSE(col.ok());
  EXPECT_EQ(col.error().code, db::kStatementError);
  EXPECT_NE(col.error().message.find("(at character 8 of the query)"), std::string::npos)
      << col.error().message;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(3000));
  return RUN_ALL_TESTS();
}
