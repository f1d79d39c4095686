// The policy file parser (src/policy/policy.h): a valid file, and every kind of bad input
// refused with the file, the line and the key, before anything touches a database.
#include "policy/policy.h"

#include <gtest/gtest.h>

namespace larder::policy {
namespace {

constexpr const char* kValid = R"(
[facts]
tenant = "uuid"
role = "text"

[tables.customers]
description = "Customers"
columns = ["id", "tenant_id", "name"]
masked = { email = "email", phone = { mask = "last4", unmask_right = "phones" } }
hidden = ["notes"]

[[tables.customers.rows]]
column = "tenant_id"
fact = "tenant"
when = { fact = "role", any_of = ["admin"] }

[tables.invoices]
columns = ["id", "customer_id"]

[[tables.invoices.rows]]
column = "tenant_id"
fact = "tenant"
via = ["customer_id -> customers.id"]

[tables."catalog.products"]
public = true
columns = ["id", "name"]

[tools.by_name]
description = "Customers by name"
sql = "SELECT id FROM customers WHERE name = $1"
[[tools.by_name.params]]
name = "name"
type = "text"
)";

TEST(PolicyParse, AValidFileDeclaresEverything) {
  auto p = parse(kValid, "policy.toml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->relations.size(), 3u);
  const Relation* c = p->relation("customers");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->qualified(), "public.customers");
  EXPECT_TRUE(c->masked());
  ASSERT_NE(c->column("email"), nullptr);
  EXPECT_EQ(c->column("email")->unmask_right, "customers.email");
  EXPECT_EQ(c->column("phone")->unmask_right, "phones");
  EXPECT_EQ(c->hidden, std::vector<std::string>{"notes"});
  EXPECT_EQ(c->rules[0].when_fact, "role");
  const Relation* products = p->relation("catalog.products");
  ASSERT_NE(products, nullptr);
  EXPECT_TRUE(products->everyone);
  EXPECT_EQ(products->sensitivity, Sensitivity::kPublic);
  EXPECT_EQ(p->relation("invoices")->rules[0].via[0].relation, "public.customers");
  // The guard sees the masking view of customers, and the plain tables.
  EXPECT_EQ(p->guard_relations(),
            (std::set<std::string>{"larder_masked.customers", "public.invoices", "catalog.products"}));
  EXPECT_EQ(p->search_path(), (std::vector<std::string>{"larder_masked", "public"}));
  EXPECT_EQ(p->behind("larder_masked.customers"), c);
  EXPECT_EQ(p->dimensions(), (std::vector<std::string>{"role", "tenant"}));
  EXPECT_EQ(p->tools[0].params[0].type, ValueType::kText);
  EXPECT_EQ(p->digest.size(), 64u);
}

struct BadInput {
  const char* name;
  const char* text;
  const char* expect;  // in the message, after "policy.toml:<line>: "
  int line;
};

class PolicyBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(PolicyBadInput, IsRefusedWithFileLineAndKey) {
  const auto& c = GetParam();
  auto p = parse(c.text, "policy.toml");
  ASSERT_FALSE(p.ok()) << c.name;
  EXPECT_EQ(p.error().code, "policy.invalid");
  const std::string prefix = "policy.toml:" + std::to_string(c.line) + ": ";
  EXPECT_EQ(p.error().message.rfind(prefix, 0), 0u) << p.error().message;
  EXPECT_NE(p.error().message.find(c.expect), std::string::npos) << p.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyBadInput,
    ::testing::Values(
        BadInput{"UnknownKey", "[tables.t]\ncolumns = [\"a\"]\ncolour = \"red\"\n",
                 "tables.t.colour: unknown key", 3},
        BadInput{"MaskedAndHidden",
                 "[tables.t]\ncolumns = [\"a\"]\nmasked = { b = \"email\" }\nhidden = [\"b\"]\n",
                 "tables.t.hidden[0]: column \"b\" is declared twice", 4},
        BadInput{"ReadableAndMasked", "[tables.t]\ncolumns = [\"a\"]\nmasked = { a = \"email\" }\n",
                 "tables.t.masked.a: column \"a\" is declared twice", 3},
        BadInput{"UnknownMask", "[tables.t]\ncolumns = [\"a\"]\nmasked = { b = \"rot13\" }\n",
                 "unknown mask \"rot13\"", 3},
        BadInput{"DuplicateRelation",
                 "[tables.t]\ncolumns = [\"a\"]\n[tables.\"public.t\"]\ncolumns = [\"a\"]\n",
                 "table public.t is declared twice (first at line 1)", 3},
        BadInput{"TwoArities",
                 "[facts]\nm = \"uuid\"\n[tables.t]\ncolumns = [\"a\"]\n[[tables.t.rows]]\ncolumns = [\"a\", "
                 "\"b\"]\nfact = \"m\"\n",
                 "fact \"m\" has 1 argument(s) (policy.toml:2: facts.m) but is matched against 2 column(s)",
                 5},
        BadInput{"UndeclaredFact",
                 "[tables.t]\ncolumns = [\"a\"]\n[[tables.t.rows]]\ncolumn = \"a\"\nfact = \"tenant\"\n",
                 "fact \"tenant\" is not declared", 3},
        BadInput{"UnknownType", "[facts]\ntenant = \"guid\"\n", "facts.tenant: unknown type \"guid\"", 2},
        BadInput{"ReservedFact", "[facts]\nright = \"text\"\n", "is a predicate the server asserts", 2},
        BadInput{"BadHop",
                 "[facts]\nt = \"uuid\"\n[tables.x]\ncolumns = [\"a\"]\n[[tables.x.rows]]\ncolumn = "
                 "\"t\"\nfact = \"t\"\n"
                 "via = [\"invoice_id => invoices.id\"]\n",
                 "tables.x.rows[0].via[0]: write a hop as", 8},
        BadInput{"WhenValueOfWrongType",
                 "[facts]\nt = \"uuid\"\nn = \"integer\"\n[tables.x]\ncolumns = "
                 "[\"a\"]\n[[tables.x.rows]]\ncolumn = \"t\"\n"
                 "fact = \"t\"\nwhen = { fact = \"n\", any_of = [\"twelve\"] }\n",
                 "when.any_of value \"twelve\" is not a integer", 6},
        BadInput{"UnusedFact", "[facts]\nt = \"uuid\"\n[tables.x]\ncolumns = [\"a\"]\n",
                 "declared but no row rule uses it", 2},
        BadInput{"PublicWithRules",
                 "[facts]\nt = \"uuid\"\n[tables.x]\npublic = true\ncolumns = "
                 "[\"a\"]\n[[tables.x.rows]]\ncolumn = \"a\"\nfact = \"t\"\n",
                 "is public (every row to every valid token) and also has row rules", 3},
        BadInput{"NoColumns", "[tables.x]\ndescription = \"x\"\n", "exposes no column", 1},
        BadInput{"SystemSchema", "[tables.\"pg_catalog.pg_authid\"]\ncolumns = [\"rolname\"]\n",
                 "cannot be exposed", 1},
        BadInput{"ToolParamType",
                 "[tables.x]\ncolumns = [\"a\"]\n[tools.q]\ndescription = \"d\"\nsql = \"SELECT "
                 "1\"\n[[tools.q.params]]\n"
                 "name = \"p\"\ntype = \"money\"\n",
                 "tools.q.params[0].type: unknown type \"money\"", 8},
        BadInput{"NotToml", "[tables.x\ncolumns = 1\n", "", 1}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return std::string(info.param.name); });

TEST(PolicyParse, AFileWithoutTablesIsRefused) {
  auto p = parse("[facts]\n", "policy.toml");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("exposes no table"), std::string::npos);
}

TEST(PolicyParse, PgQueryOffNeedsDeclaredTools) {
  auto p = parse("[options]\npg_query = false\n[tables.x]\ncolumns = [\"a\"]\n", "policy.toml");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("nothing to call"), std::string::npos);
}

TEST(PolicyParse, IdentifiersAreQuotedForDdl) {
  EXPECT_EQ(quote_ident("Patient Name"), "\"Patient Name\"");
  EXPECT_EQ(quote_ident("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
  EXPECT_EQ(quote_qualified("s", "t"), "\"s\".\"t\"");
}

TEST(PolicyValues, EachTypeAcceptsItsLiteralsOnly) {
  EXPECT_TRUE(valid_value(ValueType::kUuid, "6c09ed4c-60a4-46d7-88e4-1a8e1862e5e0"));
  EXPECT_FALSE(valid_value(ValueType::kUuid, "6c09ed4c-60a4-46d7-88e4-1a8e1862e5e"));
  EXPECT_FALSE(valid_value(ValueType::kUuid, "6c09ed4c60a446d788e41a8e1862e5e0xxxx"));
  EXPECT_TRUE(valid_value(ValueType::kInteger, "-2147483648"));
  EXPECT_FALSE(valid_value(ValueType::kInteger, "2147483648"));
  EXPECT_FALSE(valid_value(ValueType::kInteger, "+1"));
  EXPECT_FALSE(valid_value(ValueType::kInteger, "1 OR 1=1"));
  EXPECT_TRUE(valid_value(ValueType::kBigint, "9223372036854775807"));
  EXPECT_FALSE(valid_value(ValueType::kBigint, "9223372036854775808"));
  EXPECT_TRUE(valid_value(ValueType::kDate, "2024-02-29"));
  EXPECT_FALSE(valid_value(ValueType::kDate, "2023-02-29"));
  EXPECT_TRUE(valid_value(ValueType::kDate, "2000-02-29"));   // divisible by 400: leap
  EXPECT_FALSE(valid_value(ValueType::kDate, "1900-02-29"));  // by 100, not 400: common
  EXPECT_TRUE(valid_value(ValueType::kDate, "2100-03-01"));
  EXPECT_FALSE(valid_value(ValueType::kDate, "2024-04-31"));
  EXPECT_TRUE(valid_value(ValueType::kDate, "1969-12-31"));
  EXPECT_FALSE(valid_value(ValueType::kDate, "0000-01-01"));
  EXPECT_FALSE(valid_value(ValueType::kDate, "2024-13-01"));
  EXPECT_TRUE(valid_value(ValueType::kBoolean, "true"));
  EXPECT_FALSE(valid_value(ValueType::kBoolean, "yes"));
  EXPECT_TRUE(valid_value(ValueType::kText, "anything at all"));
  EXPECT_FALSE(valid_value(ValueType::kText, std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace larder::policy
