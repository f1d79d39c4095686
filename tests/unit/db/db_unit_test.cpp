// Unit tests of src/db pieces that need no server.
#include "db/cluster.h"
#include "db/connection.h"
#include "db/database.h"
#include "db/plan_redaction.h"
#include "examples/examples.h"
#include "examples/healthcare/generate.h"
#include "policy/policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <set>

using namespace larder::db;
namespace ex = larder::examples;
namespace policy = larder::policy;

namespace {

TEST(TextArray, QuotesAndEscapes) {
  auto r = encode_text_array({"Erin oRTEga", "a\"b", "c\\d", "{x}", "", "e,f"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, R"({"Erin oRTEga","a\"b","c\\d","{x}","","e,f"})");
  EXPECT_EQ(*encode_text_array({}), "{}");
  EXPECT_FALSE(encode_text_array({std::string("a\0b", 3)}).ok());
}

TEST(ConnParams, ParsesUriAndKeyValue) {
  auto u = ConnParams::parse("postgresql://patients:s%40cret@127.0.0.1:5433/healthcare?sslmode=disable");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->get("user"), "patients");
  EXPECT_EQ(u->get("password"), "s@cret");
  EXPECT_EQ(u->get("port"), "5433");
  EXPECT_EQ(u->get("dbname"), "healthcare");
  EXPECT_EQ(u->describe().find("s@cret"), std::string::npos);
  auto again = ConnParams::parse(u->to_uri());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get("password"), "s@cret");
  EXPECT_EQ(again->get("sslmode"), "disable");
  auto kv = ConnParams::parse("host=127.0.0.1 port=5 user='o\\'brien'");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->get("user"), "o'brien");
  auto round = ConnParams::parse(kv->to_conninfo());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->get("user"), "o'brien");
  EXPECT_FALSE(ConnParams::parse("nonsense_key=1").ok());
}

TEST(ConnParams, ConnectFailureIsACleanError) {
  auto port = find_free_port();
  ASSERT_TRUE(port.ok());
  ConnParams p;
  p.set("host", "127.0.0.1").set("port", std::to_string(*port)).set("user", "x").set("dbname", "x");
  auto c = p.connect(Clock::now() + std::chrono::seconds(3));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "db.unavailable");
}

TEST(RandomHex, LengthAndAlphabet) {
  auto a = random_hex(16);
  auto b = random_hex(16);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Seed, DeterministicAndGuaranteedPatients) {
  ex::HealthRecordGenerator g1(55'500, ex::kDefaultSeed), g2(55'500, ex::kDefaultSeed),
      g3(55'500, ex::kDefaultSeed + 1);
  int erin = 0, david = 0;
  std::set<std::string> hospitals, names;
  std::map<std::string, int> conditions;
  bool differs = false;
  for (std::size_t i = 0; i < g1.size(); ++i) {
    auto a = g1.row(i);
    if (i % 97 == 0) {
      auto b = g2.row(i);
      ASSERT_EQ(a.patient_name, b.patient_name);
      ASSERT_EQ(a.billing_cents, b.billing_cents);
      ASSERT_EQ(a.date_of_admission, b.date_of_admission);
      if (g3.row(i).patient_name != a.patient_name) differs = true;
    }
    erin += a.patient_name == ex::kErinOrtega;
    david += a.patient_name == ex::kDavidAnderson;
    hospitals.insert(a.hospital);
    names.insert(a.patient_name);
    conditions[a.medical_condition]++;
    ASSERT_GE(a.age, 13);
    ASSERT_LE(a.age, 89);
    ASSERT_GE(a.room_number, 101);
    ASSERT_LE(a.room_number, 500);
    ASSERT_GE(a.date_of_admission, "2019-05-01");
    ASSERT_LE(a.date_of_admission, "2024-05-31");
    ASSERT_GT(a.discharge_date, a.date_of_admission);
    ASSERT_LE(a.billing_cents, 5'280'000);
    ASSERT_GE(a.billing_cents, -200'000);
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(erin, 6);
  EXPECT_EQ(david, 5);
  EXPECT_GE(hospitals.size(), 24u);
  EXPECT_LE(hospitals.size(), 48u);
  EXPECT_LT(names.size(), 55'500u);  // patients recur
  EXPECT_GT(names.size(), 10'000u);
  EXPECT_EQ(conditions.size(), 6u);
  for (const auto& [c, n] : conditions) EXPECT_NEAR(n, 55'500 / 6, 500) << c;
}

TEST(Seed, SmallDataSetsStillHaveBothPatients) {
  ex::HealthRecordGenerator g(20, 1);
  int erin = 0, david = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    erin += g.row(i).patient_name == ex::kErinOrtega;
    david += g.row(i).patient_name == ex::kDavidAnderson;
  }
  EXPECT_GE(erin, 2);
  EXPECT_GE(david, 2);
}

TEST(Seed, CopyLineEscapes) {
  ex::HealthRecord r;
  r.patient_name = "a\tb\\c\nd";
  r.age = 30;
  r.billing_cents = -1234;
  r.test_results = "Normal";
  std::string out;
  ex::append_copy_line(out, r);
  EXPECT_EQ(out.substr(0, 10), "a\\tb\\\\c\\nd");
  EXPECT_NE(out.find("\t-12.34\t"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
  std::size_t tabs = 0;
  for (char c : out) tabs += c == '\t';
  EXPECT_EQ(tabs, 14u);
}

TEST(QueryResultJson, Shape) {
  QueryResult r;
  r.columns = {{"n", "integer", 23}, {"name", "text", 25}};
  r.rows = {{std::string("1"), std::string("a")}, {std::nullopt, std::string("b")}};
  r.truncated = true;
  auto j = r.to_json();
  EXPECT_EQ(j["columns"][0]["name"], "n");
  EXPECT_EQ(j["columns"][0]["type"], "integer");
  EXPECT_EQ(j["rows"][0]["n"], 1);
  EXPECT_TRUE(j["rows"][1]["n"].is_null());
  EXPECT_EQ(j["row_count"], 2);
  EXPECT_EQ(j["truncated"], true);
}

TEST(ClusterState, SavesWith0600AndLoads) {
  auto dir = std::filesystem::temp_directory_path() / ("larder-state-" + *random_hex(6));
  std::filesystem::create_directories(dir);
  ClusterState s;
  s.data_dir = "/x/pg";
  s.port = 5555;
  s.admin_password = "a";
  s.query_password = "q";
  s.writer_password = "w";
  auto path = dir / "db.json";
  ASSERT_TRUE(s.save(path).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto l = ClusterState::load(path);
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(l->port, 5555);
  EXPECT_EQ(l->query().get("user"), "patients");
  EXPECT_EQ(l->writer().get("password"), "w");
  ::chmod(path.c_str(), 0644);
  EXPECT_FALSE(ClusterState::load(path).ok());
  auto bad = ClusterState::from_json({{"data_dir", "/x"},
                                      {"port", 1},
                                      {"host", "10.0.0.1"},
                                      {"admin_password", "a"},
                                      {"query_password", "q"},
                                      {"writer_password", "w"}});
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(ClusterState::load(dir / "missing.json").ok());
  std::filesystem::remove_all(dir);
}

// The healthcare example that setup runs (policy::setup_database): its schema and its policy
// file are compiled in, and the policy file yields the locks the old fixed SQL gave (one
// exposed table, the patient and clinician rules, the three context facts).
TEST(HealthcareExample, AssetsCompiledIn) {
  auto e = ex::find("healthcare");
  ASSERT_TRUE(e.ok()) << e.error().message;
  const std::string schema((*e)->schema);
  EXPECT_NE(schema.find("CREATE TABLE IF NOT EXISTS public.health_records ("), std::string::npos);
  EXPECT_NE(schema.find("health_records_patient_name_idx"), std::string::npos);
  EXPECT_NE(schema.find("health_records_hospital_idx"), std::string::npos);
  EXPECT_NE(schema.find("\"Patient Name\" SET STATISTICS 0"), std::string::npos);
  EXPECT_EQ((*e)->default_rows, ex::kDefaultSeedRows);
  EXPECT_EQ((*e)->default_seed, ex::kDefaultSeed);

  auto p = policy::parse((*e)->policy, "<example healthcare>/policy.toml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->roles.query, kQueryRole);
  EXPECT_EQ(p->roles.writer, kContextWriterRole);
  EXPECT_EQ(p->roles.owner, "larder_owner");
  EXPECT_EQ(p->dimensions(), (std::vector<std::string>{"hospital", "patient_name", "role"}));
  for (const char* f : {"patient_name", "role", "hospital"}) {
    const auto* fact = p->fact(f);
    ASSERT_NE(fact, nullptr) << f;
    EXPECT_EQ(fact->args, std::vector<policy::ValueType>{policy::ValueType::kText}) << f;
  }
  ASSERT_EQ(p->relations.size(), 1u);
  const auto& rel = p->relations[0];
  EXPECT_EQ(rel.qualified(), "public.health_records");
  EXPECT_EQ(rel.sensitivity, policy::Sensitivity::kSensitive);
  EXPECT_FALSE(rel.everyone);
  EXPECT_FALSE(rel.masked());
  EXPECT_EQ(rel.columns.size(), 16u);
  ASSERT_EQ(rel.rules.size(), 2u);
  EXPECT_EQ(rel.rules[0].columns, std::vector<std::string>{"Patient Name"});
  EXPECT_EQ(rel.rules[0].fact, "patient_name");
  EXPECT_TRUE(rel.rules[0].when_fact.empty());
  EXPECT_EQ(rel.rules[1].columns, std::vector<std::string>{"Hospital"});
  EXPECT_EQ(rel.rules[1].fact, "hospital");
  EXPECT_EQ(rel.rules[1].when_fact, "role");
  EXPECT_EQ(rel.rules[1].when_any_of, (std::vector<std::string>{"clinician", "doctor", "nurse"}));

  // The guard allows exactly that table, looked up in public.
  const auto guard = policy::guard_policy(*p);
  EXPECT_EQ(guard.allowed_relations, std::set<std::string>{"public.health_records"});
  EXPECT_EQ(guard.search_path, std::vector<std::string>{"public"});
  // While a default GuardPolicy (DatabaseConfig's) allows no relation at all.
  EXPECT_TRUE(DatabaseConfig{}.guard_policy.allowed_relations.empty());
}

TEST(WithheldError, NamesTheSqlstateItsClassAndOurSentenceOnly) {
  auto e = withheld_error("db.statement", "22P02", "the query failed");
  EXPECT_EQ(e.code, "db.statement");
  EXPECT_EQ(
      e.message,
      "database error 22P02 (data exception): a value in the query could not be converted to the requested "
      "type; the database's own message is withheld because it may contain row data");
  auto syntax = withheld_error("db.statement", "42601", "the query failed", 17);
  EXPECT_EQ(
      syntax.message.rfind("database error 42601 (syntax error or access rule violation): the query has a "
                           "syntax error (at character 17 of the query); ",
                           0),
      0u)
      << syntax.message;
  // A SQLSTATE without a sentence of ours: the fallback, still with its class.
  auto odd = withheld_error("db.statement", "2F005", "the query failed");
  EXPECT_EQ(odd.message.rfind("database error 2F005 (SQL routine exception): the query failed; ", 0), 0u)
      << odd.message;
  auto none = withheld_error("db.statement", "", "the query failed");
  EXPECT_EQ(none.message.rfind("database error (no SQLSTATE): the query failed; ", 0), 0u) << none.message;
  EXPECT_EQ(withheld_error(static_cast<const PGresult*>(nullptr), "db.statement", "x")
                .message.rfind("database error (no SQLSTATE)", 0),
            0u);
}

TEST(WithheldError, ClassNames) {
  EXPECT_EQ(sqlstate_class_name("22012"), "data exception");
  EXPECT_EQ(sqlstate_class_name("42703"), "syntax error or access rule violation");
  EXPECT_EQ(sqlstate_class_name("57014"), "operator intervention");
  EXPECT_EQ(sqlstate_class_name("XX000"), "internal error");
  EXPECT_EQ(sqlstate_class_name("ZZ000"), "unknown class");
  EXPECT_EQ(sqlstate_class_name("22"), "unknown class");
  EXPECT_EQ(sqlstate_summary("22012"), "division by zero");
  EXPECT_EQ(sqlstate_summary("99999"), "");
  EXPECT_EQ(code_for_sqlstate("08006"), "db.unavailable");
  EXPECT_EQ(code_for_sqlstate("22P02"), "db.data_error");
}

TEST(PlanRedaction, KeepsTheShapeAndDropsEstimatesAndFilteredCounts) {
  auto explained = nlohmann::json::parse(R"json([{
    "Plan": {
      "Node Type": "Bitmap Heap Scan", "Parallel Aware": false, "Relation Name": "health_records", "Alias": "h",
      "Startup Cost": 16.02, "Total Cost": 30.75, "Plan Rows": 497, "Plan Width": 120,
      "Actual Startup Time": 0.2, "Actual Total Time": 0.3, "Actual Rows": 2, "Actual Loops": 1,
      "Recheck Cond": "(\"Hospital\" = 'X'::text)", "Rows Removed by Index Recheck": 0,
      "Filter": "(\"Patient Name\" = ANY ($0))", "Rows Removed by Filter": 497,
      "Exact Heap Blocks": 3, "Shared Hit Blocks": 4, "Workers Planned": 2, "Some Future Field": 7,
      "Plans": [{"Node Type": "Bitmap Index Scan", "Parent Relationship": "Outer", "Index Name": "h_hospital_idx",
                 "Plan Rows": 499, "Actual Rows": 499, "Actual Loops": 1, "Actual Total Time": 0.1,
                 "Index Cond": "(\"Hospital\" = 'X'::text)"}]
    },
    "Planning": {"Shared Hit Blocks": 69}, "Planning Time": 1.0, "Triggers": [], "Execution Time": 0.5,
    "JIT": {"Functions": 3}
  }])json");
  auto r = redact_plan(explained);
  const auto& plan = r[0]["Plan"];
  EXPECT_EQ(plan["Node Type"], "Bitmap Heap Scan");
  EXPECT_EQ(plan["Relation Name"], "health_records");
  EXPECT_EQ(plan["Filter"], "(\"Patient Name\" = ANY ($0))");
  EXPECT_EQ(plan["Actual Rows"], 2);
  EXPECT_EQ(plan["Actual Total Time"], 0.3);
  for (const char* gone : {"Startup Cost", "Total Cost", "Plan Rows", "Plan Width", "Rows Removed by Filter",
                           "Rows Removed by Index Recheck", "Exact Heap Blocks", "Shared Hit Blocks",
                           "Workers Planned", "Some Future Field"})
    EXPECT_FALSE(plan.contains(gone)) << gone;
  const auto& index = plan["Plans"][0];
  EXPECT_EQ(index["Index Name"], "h_hospital_idx");
  EXPECT_EQ(index["Index Cond"], "(\"Hospital\" = 'X'::text)");
  EXPECT_FALSE(index.contains("Actual Rows")) << "a bitmap index scan counts rows before the RLS filter";
  EXPECT_FALSE(index.contains("Plan Rows"));
  EXPECT_EQ(index["Actual Loops"], 1);
  EXPECT_EQ(r[0]["Execution Time"], 0.5);
  EXPECT_FALSE(r[0].contains("Planning"));
  EXPECT_FALSE(r[0].contains("JIT"));
  EXPECT_FALSE(r[0].contains("Triggers"));
}

TEST(PlanRedaction, TotalCostAndItsFormat) {
  EXPECT_EQ(plan_total_cost(R"([{"Plan": {"Node Type": "Result", "Total Cost": 3200000000.5, "Plans": [
      {"Total Cost": 1.0}]}}])"),
            3200000000.5);
  EXPECT_EQ(plan_total_cost("[]"), std::nullopt);
  EXPECT_EQ(plan_total_cost("not json"), std::nullopt);
  EXPECT_EQ(plan_total_cost(R"([{"Plan": {"Total Cost": "x"}}])"), std::nullopt);
  EXPECT_EQ(format_cost(1e7), "1e7");
  EXPECT_EQ(format_cost(3.2e9), "3.2e9");
  EXPECT_EQ(format_cost(12345678), "1.23e7");
  EXPECT_EQ(format_cost(850.4), "850");
  EXPECT_EQ(format_cost(1), "1");
  EXPECT_EQ(format_cost_magnitude(6.62e9), "1e10");
  EXPECT_EQ(format_cost_magnitude(2.5e9), "1e9");
  EXPECT_EQ(format_cost_magnitude(159), "1e2");
  EXPECT_EQ(format_cost_magnitude(0.5), "1");
}

TEST(Database, FailsCleanlyWithoutServer) {
  auto port = find_free_port();
  ASSERT_TRUE(port.ok());
  DatabaseConfig cfg;
  cfg.query.set("host", "127.0.0.1")
      .set("port", std::to_string(*port))
      .set("user", "patients")
      .set("dbname", "x");
  cfg.writer = cfg.query;
  Database db(cfg);
  RequestContext ctx;
  ctx.guard_enabled = false;
  ctx.deadline = Clock::now() + std::chrono::seconds(3);
  auto r = db.query(ctx, "SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "db.unavailable");
  ctx.add("patient_name", std::string(600, 'x'));
  EXPECT_EQ(db.query(ctx, "SELECT 1").error().code, "db.bad_context");
  ctx.facts.clear();
  ctx.deadline = Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(db.query(ctx, "SELECT 1").error().code, "db.timeout");
}

}  // namespace
