// The DB tool logic (src/tools/db_*): output shapes, guard use, RLS in resources.
#include "tools/db_tools.h"
#include "db_test_env.h"
#include "tools/db_prompts.h"
#include "tools/db_resources.h"

using namespace larder;
using larder::test::admin_scalar;
using larder::test::shared_cluster;
using nlohmann::json;

namespace {

class DbToolsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new db::Database(shared_cluster()->database_config(2));
    tools_ = new tools::DbTools(*db_);
    resources_ = new tools::DbResources(*db_, "healthcare");
    prompts_ = new tools::DbPrompts(*resources_, tools::policy_notes(shared_cluster()->policy()));
  }
  static void TearDownTestSuite() {
    delete prompts_;
    delete resources_;
    delete tools_;
    delete db_;
  }
  static db::RequestContext erin() {
    db::RequestContext c;
    c.add("patient_name", examples::kErinOrtega);
    return c;
  }
  static db::RequestContext clinician() {
    db::RequestContext c;
    c.add("role", "doctor");
    c.add("hospital", "Cook PLC");
    return c;
  }
  static db::Database* db_;
  static tools::DbTools* tools_;
  static tools::DbResources* resources_;
  static tools::DbPrompts* prompts_;
};
db::Database* DbToolsTest::db_ = nullptr;
tools::DbTools* DbToolsTest::tools_ = nullptr;
tools::DbResources* DbToolsTest::resources_ = nullptr;
tools::DbPrompts* DbToolsTest::prompts_ = nullptr;

TEST_F(DbToolsTest, PgQueryShape) {
  auto r = tools_->pg_query(erin(), {{"query",
                                      "SELECT \"Patient Name\", \"Age\", \"Billing Amount\", "
                                      "\"Date of Admission\" FROM health_records ORDER BY id"}});
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  const json& j = *r;
  ASSERT_EQ(j["columns"].size(), 4u);
  EXPECT_EQ(j["columns"][0], (json{{"name", "Patient Name"}, {"type", "text"}}));
  EXPECT_EQ(j["columns"][1]["type"], "integer");
  EXPECT_EQ(j["columns"][2]["type"], "numeric");
  EXPECT_EQ(j["columns"][3]["type"], "date");
  EXPECT_GE(j["row_count"].get<int>(), 5);
  EXPECT_EQ(j["row_count"], j["rows"].size());
  EXPECT_EQ(j["truncated"], false);
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["Patient Name"], examples::kErinOrtega);
    EXPECT_TRUE(row["Age"].is_number_integer());
    EXPECT_TRUE(row["Billing Amount"].is_number());
  }
}

TEST_F(DbToolsTest, PgQueryParamsAndMaxRows) {
  auto r = tools_->pg_query(
      clinician(),
      {{"query", "SELECT id FROM health_records WHERE \"Age\" >= $1"}, {"params", {13}}, {"max_rows", 2}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["row_count"], 2);
  EXPECT_EQ((*r)["truncated"], true);
}

TEST_F(DbToolsTest, PgQueryRejectsBadArgumentsAndUnsafeSql) {
  EXPECT_EQ(tools_->pg_query(erin(), json::object()).error().code, "tools.bad_arguments");
  EXPECT_EQ(tools_->pg_query(erin(), {{"query", 42}}).error().code, "tools.bad_arguments");
  EXPECT_EQ(tools_->pg_query(erin(), {{"query", "SELECT 1"}, {"params", {{{"a", 1}}}}}).error().code,
            "tools.bad_arguments");
  EXPECT_EQ(tools_->pg_query(erin(), {{"query", "SELECT 1"}, {"max_rows", 0}}).error().code,
            "tools.bad_arguments");
  auto bad = tools_->pg_query(erin(), {{"query", "SELECT set_config('larder.context', 'x', true)"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code.rfind("sql_guard", 0), 0u) << bad.error().code;
  auto del = tools_->pg_query(erin(), {{"query", "DELETE FROM health_records"}});
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().code.rfind("sql_guard", 0), 0u);
}

TEST_F(DbToolsTest, APreCheckedVerdictMustBeForTheQueryText) {
  // The served path checks the SQL once and passes the verdict in; the tools run it only
  // when it is the guard's verdict on this very text.
  const std::string sql = "SELECT \"Patient Name\" FROM health_records";
  auto checked = db_->guard().check(sql);
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  auto r = tools_->pg_query(erin(), {{"query", sql}}, &*checked);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE((*r)["row_count"].get<int>(), 1);
  for (const auto& row : (*r)["rows"]) EXPECT_EQ(row["Patient Name"], examples::kErinOrtega);
  auto other = db_->guard().check("SELECT 1");
  ASSERT_TRUE(other.ok());
  using Tool =
      Result<json> (tools::DbTools::*)(const db::RequestContext&, const json&, const db::GuardedQuery*);
  for (Tool tool : {&tools::DbTools::pg_query, &tools::DbTools::pg_explain, &tools::DbTools::pg_metadata}) {
    auto swapped = (tools_->*tool)(erin(), {{"query", "SELECT * FROM health_records"}}, &*other);
    ASSERT_FALSE(swapped.ok());
    EXPECT_EQ(swapped.error().code, "sql_guard.internal");
  }
}

TEST_F(DbToolsTest, PgExplainPlansWithoutRunning) {
  auto r = tools_->pg_explain(
      erin(), {{"query", "SELECT * FROM health_records WHERE \"Age\" > $1"}, {"params", {30}}});
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  ASSERT_TRUE((*r)["plan"].is_array());
  EXPECT_TRUE((*r)["plan"][0].contains("Plan"));
  EXPECT_FALSE((*r)["plan"][0].contains("Execution Time"));
  EXPECT_TRUE((*r)["plan"][0]["Plan"].contains("Node Type"));
  for (const char* withheld : {"Plan Rows", "Plan Width", "Total Cost", "Startup Cost"})
    EXPECT_EQ((*r)["plan"].dump().find(withheld), std::string::npos) << withheld;
  EXPECT_TRUE((*r)["note"].is_string());
  auto ran =
      tools_->pg_explain(erin(), {{"query", "SELECT count(*) FROM health_records"}, {"analyze", true}});
  ASSERT_TRUE(ran.ok()) << ran.error().code << ": " << ran.error().message;
  EXPECT_TRUE((*ran)["plan"][0].contains("Execution Time"));
  EXPECT_EQ(tools_->pg_explain(erin(), {{"query", "SELECT 1"}, {"analyze", 1}}).error().code,
            "tools.bad_arguments");
  auto analyze = tools_->pg_explain(erin(), {{"query", "EXPLAIN ANALYZE SELECT * FROM health_records"}});
  EXPECT_FALSE(analyze.ok());
  auto trick = tools_->pg_explain(erin(), {{"query", "(ANALYZE) SELECT 1"}});
  EXPECT_FALSE(trick.ok());
}

TEST_F(DbToolsTest, PgMetadataDescribesFields) {
  auto r = tools_->pg_metadata(clinician(), {{"query",
                                              "SELECT \"Gender\", \"Date of Admission\", \"Billing Amount\" "
                                              "FROM health_records"}});
  ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  const json& j = *r;
  long long expected =
      std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"Hospital\" = 'Cook PLC'"));
  EXPECT_EQ(j["rowCount"].get<long long>(), std::min<long long>(expected, 1000));
  ASSERT_EQ(j["fields"].size(), 3u);
  EXPECT_EQ(j["fields"][0]["logicalType"], "nominal");
  EXPECT_EQ(j["fields"][0]["distinctCount"], 2);
  EXPECT_EQ(j["fields"][1]["logicalType"], "temporal");
  EXPECT_TRUE(j["fields"][1]["min"].is_string());
  EXPECT_LE(j["fields"][1]["min"].get<std::string>(), j["fields"][1]["max"].get<std::string>());
  EXPECT_EQ(j["fields"][2]["logicalType"], "quantitative");
  EXPECT_EQ(j["groupBy"]["field"], "Gender");
}

TEST_F(DbToolsTest, ResourcesDescribeOnlyWhatTheRoleSees) {
  auto db = resources_->read(erin(), "pgmcp://healthcare/");
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_EQ((*db)["schemas"].size(), 1u);
  EXPECT_EQ((*db)["schemas"][0]["name"], "public");
  EXPECT_EQ((*db)["schemas"][0]["tables"][0]["name"], "health_records");
  EXPECT_EQ((*db)["schemas"][0]["tables"][0]["columns"].size(), 16u);

  auto schemas = resources_->read(erin(), "pgmcp://healthcare/schemas");
  ASSERT_TRUE(schemas.ok());
  EXPECT_EQ((*schemas)["schemas"].size(), 1u);

  auto pub = resources_->read(erin(), "pgmcp://healthcare/schemas/public");
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ((*pub)["tables"][0]["name"], "health_records");

  auto table = resources_->read(erin(), "pgmcp://healthcare/schemas/public/tables/health_records");
  ASSERT_TRUE(table.ok()) << table.error().message;
  EXPECT_EQ((*table)["columns"].size(), 16u);
  EXPECT_EQ((*table)["columns"][1]["name"], "Patient Name");
  EXPECT_EQ((*table)["columns"][1]["type"], "text");
  EXPECT_EQ((*table)["columns"][10]["type"], "numeric(12,2)");
  bool pk = false;
  for (const auto& c : (*table)["constraints"]) pk = pk || c["type"] == "PRIMARY KEY";
  EXPECT_TRUE(pk);
  EXPECT_EQ((*table)["indexes"].size(), 3u);

  EXPECT_EQ(resources_->read(erin(), "pgmcp://healthcare/schemas/larder_private").error().code,
            "tools.not_found");
  EXPECT_EQ(
      resources_->read(erin(), "pgmcp://healthcare/schemas/larder_private/tables/context_keys").error().code,
      "tools.not_found");
  EXPECT_EQ(
      resources_->read(erin(), "pgmcp://healthcare/schemas/pg_catalog/tables/pg_authid/sample").error().code,
      "tools.not_found");
  EXPECT_EQ(resources_->read(erin(), "pgmcp://other/").error().code, "tools.not_found");
}

TEST_F(DbToolsTest, SampleIsFilteredByRls) {
  auto s = resources_->read(erin(), "pgmcp://healthcare/schemas/public/tables/health_records/sample");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_GT((*s)["row_count"].get<int>(), 0);
  EXPECT_LE((*s)["row_count"].get<int>(), 10);
  for (const auto& row : (*s)["rows"]) EXPECT_EQ(row["Patient Name"], examples::kErinOrtega);
  db::RequestContext nobody;
  auto none = resources_->read(nobody, "pgmcp://healthcare/schemas/public/tables/health_records/sample");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)["row_count"], 0);
  auto quoted = resources_->read(erin(), "pgmcp://healthcare/schemas/public/tables/health%22records/sample");
  EXPECT_EQ(quoted.error().code, "tools.not_found");
}

TEST_F(DbToolsTest, RowCountCountsTheCallersRows) {
  auto r = resources_->read(erin(), "pgmcp://healthcare/schemas/public/tables/health_records/rowcount");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["row_count"].get<long long>(),
            std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
                                    {std::string(examples::kErinOrtega)})));
  EXPECT_FALSE(r->contains("approximate_row_count"));
  auto c = resources_->read(clinician(), "pgmcp://healthcare/schemas/public/tables/health_records/rowcount");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)["row_count"].get<long long>(),
            std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"Hospital\" = 'Cook PLC'")));
  db::RequestContext nobody;
  auto none = resources_->read(nobody, "pgmcp://healthcare/schemas/public/tables/health_records/rowcount");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)["row_count"], 0);
  EXPECT_EQ(resources_->read(erin(), "pgmcp://healthcare/schemas/public/tables/health%22records/rowcount")
                .error()
                .code,
            "tools.not_found");
}

TEST_F(DbToolsTest, PromptsEmbedTheSchema) {
  auto list = tools::DbPrompts::list();
  ASSERT_EQ(list.size(), 4u);
  auto p = prompts_->get(erin(), "generate_sql", {{"nl_query", "How many admissions do I have?"}});
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::string text = (*p)["messages"][0]["content"]["text"];
  EXPECT_NE(text.find("\"Patient Name\" text"), std::string::npos);
  EXPECT_NE(text.find("How many admissions do I have?"), std::string::npos);
  // The policy file's descriptions follow the schema.
  EXPECT_NE(text.find("- health_records: One row per hospital admission"), std::string::npos) << text;
  EXPECT_NE(text.find("\"Patient Name\": Name as written at admission"), std::string::npos) << text;
  EXPECT_EQ((*p)["messages"][0]["role"], "user");
  for (const char* name : {"validate_nl", "justify_sql", "generate_vega"}) {
    auto g = prompts_->get(
        erin(), name,
        {{"nl_query", "average bill"}, {"sql_query", "SELECT avg(\"Billing Amount\") FROM health_records"}});
    ASSERT_TRUE(g.ok()) << name;
    EXPECT_NE((*g)["messages"][0]["content"]["text"].get<std::string>().find("health_records"),
              std::string::npos);
  }
  EXPECT_EQ(prompts_->get(erin(), "justify_sql", {{"nl_query", "x"}}).error().code, "tools.bad_arguments");
  EXPECT_EQ(prompts_->get(erin(), "nope", {{"nl_query", "x"}}).error().code, "tools.not_found");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(3000));
  return RUN_ALL_TESTS();
}
