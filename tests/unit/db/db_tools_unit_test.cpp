// Pure parts of the DB tool logic: URI parsing, parameter conversion, type classes, prompts.
#include "policy/policy.h"
#include "tools/db_prompts.h"
#include "tools/db_resources.h"
#include "tools/db_tools.h"

#include <gtest/gtest.h>

using namespace larder::tools;
using nlohmann::json;

namespace {

TEST(ResourceUri, ParsesEveryForm) {
  using K = ResourceAddress::Kind;
  EXPECT_EQ(parse_resource_uri("pgmcp://healthcare/", "healthcare")->kind, K::database);
  EXPECT_EQ(parse_resource_uri("pgmcp://healthcare", "healthcare")->kind, K::database);
  EXPECT_EQ(parse_resource_uri("pgmcp://healthcare/schemas", "healthcare")->kind, K::schemas);
  auto s = parse_resource_uri("pgmcp://healthcare/schemas/public", "healthcare");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, K::schema);
  EXPECT_EQ(s->schema, "public");
  auto t = parse_resource_uri("pgmcp://healthcare/schemas/public/tables/health_records", "healthcare");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->kind, K::table);
  EXPECT_EQ(t->table, "health_records");
  EXPECT_EQ(parse_resource_uri("pgmcp://healthcare/schemas/public/tables/health_records/sample", "healthcare")
                ->kind,
            K::sample);
  EXPECT_EQ(
      parse_resource_uri("pgmcp://healthcare/schemas/public/tables/health_records/rowcount", "healthcare")
          ->kind,
      K::rowcount);
  auto enc = parse_resource_uri("pgmcp://healthcare/schemas/my%20schema/tables/a%22b", "healthcare");
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->schema, "my schema");
  EXPECT_EQ(enc->table, "a\"b");
}

TEST(ResourceUri, RejectsEverythingElse) {
  for (const char* bad :
       {"pgmcp://other/", "http://healthcare/", "pgmcp://healthcare/tables",
        "pgmcp://healthcare/schemas/public/views/x", "pgmcp://healthcare/schemas/public/tables",
        "pgmcp://healthcare/schemas/public/tables/t/drop", "pgmcp://healthcare/schemas/%zz",
        "pgmcp://healthcare/schemas/a%00b", "pgmcp://healthcare/schemas//tables/t",
        "pgmcp://healthcare/schemas/p/tables/t/sample/x"}) {
    EXPECT_FALSE(parse_resource_uri(bad, "healthcare").ok()) << bad;
  }
  // The database's name is part of every URI: another database's URIs are unknown.
  EXPECT_FALSE(parse_resource_uri("pgmcp://healthcare/schemas", "saas").ok());
  EXPECT_FALSE(parse_resource_uri("pgmcp://healthcarex/schemas", "healthcare").ok());
  EXPECT_EQ(parse_resource_uri("pgmcp://saas/schemas", "saas")->kind, ResourceAddress::Kind::schemas);
  EXPECT_EQ(resource_prefix("saas"), "pgmcp://saas/");
}

TEST(QuoteIdentifier, DoublesQuotes) {
  EXPECT_EQ(larder::policy::quote_ident("health_records"), "\"health_records\"");
  EXPECT_EQ(larder::policy::quote_ident("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(larder::policy::quote_qualified("my schema", "t"), "\"my schema\".\"t\"");
}

TEST(Params, FromJson) {
  auto p = params_from_json(json::array({"x", 1, 2.5, true, nullptr}));
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 5u);
  EXPECT_EQ((*p)[0], "x");
  EXPECT_EQ((*p)[1], "1");
  EXPECT_EQ((*p)[2], "2.5");
  EXPECT_EQ((*p)[3], "true");
  EXPECT_FALSE((*p)[4].has_value());
  EXPECT_FALSE(params_from_json(json::array({json::array()})).ok());
  EXPECT_FALSE(params_from_json(json::object()).ok());
  EXPECT_FALSE(params_from_json(json(std::vector<int>(101, 1))).ok());
}

TEST(LogicalType, Classes) {
  EXPECT_EQ(logical_type("integer"), "quantitative");
  EXPECT_EQ(logical_type("numeric(12,2)"), "quantitative");
  EXPECT_EQ(logical_type("double precision"), "quantitative");
  EXPECT_EQ(logical_type("date"), "temporal");
  EXPECT_EQ(logical_type("timestamp with time zone"), "temporal");
  EXPECT_EQ(logical_type("text"), "nominal");
  EXPECT_EQ(logical_type("boolean"), "nominal");
}

TEST(Prompts, ListAndSchemaText) {
  auto list = DbPrompts::list();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0]["name"], "generate_sql");
  EXPECT_EQ(list[0]["arguments"].size(), 1u);
  EXPECT_EQ(list[2]["name"], "justify_sql");
  EXPECT_EQ(list[2]["arguments"].size(), 2u);
  json structure = {
      {"database", "healthcare"},
      {"schemas",
       {{{"name", "public"},
         {"tables",
          {{{"name", "health_records"}, {"columns", {{{"name", "Patient Name"}, {"type", "text"}}}}}}}}}}};
  auto text = describe_schema(structure);
  EXPECT_NE(text.find("Table public.health_records"), std::string::npos);
  EXPECT_NE(text.find("\"Patient Name\" text"), std::string::npos);
  // The policy file's notes come after the schema, before the fixed notes.
  auto noted = describe_schema(structure, "- health_records: admissions\n");
  const auto notes_at = noted.find("Notes:\n- health_records: admissions\n");
  ASSERT_NE(notes_at, std::string::npos) << noted;
  EXPECT_GT(notes_at, noted.find("\"Patient Name\" text"));
}

TEST(Prompts, PolicyNotes) {
  auto p = larder::policy::parse(R"(
[facts]
tenant = "integer"

[tables.customers]
description = "Customers of a tenant."
columns = ["id", "tenant_id", "name"]
masked = { email = "email" }

[tables.customers.descriptions]
name = "Display name."

[[tables.customers.rows]]
column = "tenant_id"
fact = "tenant"

[tables.products]
description = "The catalogue."
sensitivity = "public"
public = true
columns = ["id", "title"]
)",
                                 "test.toml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const std::string notes = policy_notes(*p);
  EXPECT_NE(notes.find("- customers: Customers of a tenant.\n"), std::string::npos) << notes;
  EXPECT_NE(notes.find("\"name\": Display name."), std::string::npos) << notes;
  EXPECT_NE(notes.find("\"email\" is masked (email)"), std::string::npos) << notes;
  EXPECT_NE(notes.find("- products: The catalogue. (every row is readable)"), std::string::npos) << notes;
}

TEST(Schemas, ToolInputSchemas) {
  EXPECT_EQ(DbTools::pg_query_input_schema()["required"], json::array({"query"}));
  EXPECT_FALSE(DbTools::pg_explain_input_schema()["properties"].contains("max_rows"));
  EXPECT_EQ(DbTools::pg_explain_input_schema()["properties"]["analyze"]["type"], "boolean");
  EXPECT_FALSE(DbTools::pg_query_input_schema()["properties"].contains("biscuit_token"));
}

}  // namespace
