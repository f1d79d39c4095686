// The example databases (examples/): their compiled-in assets, their policy files, and the
// saas generator (deterministic, referentially intact, the fixed rows its header promises).
#include "examples/examples.h"
#include "examples/assets.h"
#include "examples/generate_support.h"
#include "examples/saas/generate.h"
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace larder {
namespace {

namespace ex = larder::examples;
namespace saas = larder::examples::saas;

using Row = std::vector<std::string>;

// COPY text -> rows of fields (the generators write no escapes into these tables' values).
std::vector<Row> rows_of(const std::string& text) {
  std::vector<Row> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "COPY text does not end with a newline";
      break;
    }
    Row row;
    std::size_t start = pos;
    for (;;) {
      const std::size_t tab = text.find('\t', start);
      if (tab == std::string::npos || tab > end) {
        row.push_back(text.substr(start, end - start));
        break;
      }
      row.push_back(text.substr(start, tab - start));
      start = tab + 1;
    }
    out.push_back(std::move(row));
    pos = end + 1;
  }
  return out;
}

std::size_t column_count(const std::string& columns) {
  return static_cast<std::size_t>(std::count(columns.begin(), columns.end(), ',')) + 1;
}

// "12.34" -> 1234
std::int64_t cents(const std::string& v) {
  const auto dot = v.find('.');
  EXPECT_NE(dot, std::string::npos) << v;
  EXPECT_EQ(v.size() - dot, 3u) << v;
  return std::stoll(v.substr(0, dot)) * 100 + std::stoll(v.substr(dot + 1));
}

std::map<std::string, std::vector<Row>> tables_of(const std::vector<saas::TableText>& data) {
  std::map<std::string, std::vector<Row>> out;
  for (const auto& t : data) out[t.table] = rows_of(t.text);
  return out;
}

const policy::Policy& saas_policy() {
  static const policy::Policy p = [] {
    auto parsed = policy::parse(ex::asset("saas/policy.toml"), "<builtin:saas>");
    if (!parsed) ADD_FAILURE() << parsed.error().message;
    return parsed ? *parsed : policy::Policy{};
  }();
  return p;
}

TEST(Examples, AssetsArePresent) {
  for (const char* name : {"healthcare", "saas"}) {
    EXPECT_FALSE(ex::asset(std::string(name) + "/policy.toml").empty()) << name;
    EXPECT_FALSE(ex::asset(std::string(name) + "/schema.sql").empty()) << name;
  }
  EXPECT_TRUE(ex::asset("saas/nothing.toml").empty());
  ASSERT_EQ(ex::all().size(), 2u);
  for (const auto& e : ex::all()) {
    EXPECT_EQ(e.policy, ex::asset(e.name + "/policy.toml")) << e.name;
    EXPECT_EQ(e.schema, ex::asset(e.name + "/schema.sql")) << e.name;
    EXPECT_FALSE(e.description.empty()) << e.name;
    EXPECT_GT(e.default_rows, 0u) << e.name;
    EXPECT_TRUE(static_cast<bool>(e.seed)) << e.name;
  }
  auto saas_example = ex::find("saas");
  ASSERT_TRUE(saas_example.ok());
  EXPECT_EQ((*saas_example)->default_rows, saas::kDefaultRows);
  EXPECT_EQ((*saas_example)->default_seed, saas::kDefaultSeed);
  auto unknown = ex::find("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("healthcare, saas"), std::string::npos) << unknown.error().message;
}

TEST(Examples, EveryPolicyParses) {
  for (const auto& e : ex::all()) {
    auto p = policy::parse(e.policy, "<builtin:" + e.name + ">");
    ASSERT_TRUE(p.ok()) << e.name << ": " << p.error().message;
    EXPECT_FALSE(p->relations.empty()) << e.name;
    for (const auto& r : p->relations) EXPECT_FALSE(r.description.empty()) << e.name << ": " << r.qualified();
  }
}

// Every table and column the policy names is created by the example's schema.sql (a textual
// check; policy::plan checks against the catalog).
TEST(Examples, PolicyNamesOnlySchemaColumns) {
  for (const auto& e : ex::all()) {
    auto p = policy::parse(e.policy, e.name);
    ASSERT_TRUE(p.ok()) << p.error().message;
    const std::string schema(e.schema);
    for (const auto& r : p->relations) {
      const std::string head = "CREATE TABLE IF NOT EXISTS " + r.qualified() + " (";
      const auto begin = schema.find(head);
      ASSERT_NE(begin, std::string::npos) << e.name << ": " << head;
      const std::string body = schema.substr(begin, schema.find("\n);", begin) - begin);
      std::vector<std::string> names = r.hidden;
      for (const auto& c : r.columns) names.push_back(c.name);
      for (const auto& n : names) {
        const std::string quoted = policy::quote_ident(n);
        const bool found = body.find("\n  " + n + " ") != std::string::npos ||
                           body.find("\n  " + quoted + " ") != std::string::npos;
        EXPECT_TRUE(found) << e.name << ": " << r.qualified() << "." << n;
      }
    }
  }
}

TEST(SaasPolicy, TenantFactAndDefaultRoles) {
  const auto& p = saas_policy();
  ASSERT_EQ(p.facts.size(), 1u);
  EXPECT_EQ(p.facts[0].name, "tenant");
  EXPECT_EQ(p.facts[0].args, std::vector<policy::ValueType>{policy::ValueType::kUuid});
  EXPECT_EQ(p.roles.query, "larder_query");
  EXPECT_TRUE(p.pg_query);
  std::set<std::string> names;
  for (const auto& r : p.relations) names.insert(r.qualified());
  EXPECT_EQ(names, (std::set<std::string>{"public.tenants", "public.users", "public.customers",
                                          "public.invoices", "public.invoice_lines", "public.products"}));
}

TEST(SaasPolicy, DirectTenantRules) {
  const auto& p = saas_policy();
  for (const auto& [table, column] : std::vector<std::pair<std::string, std::string>>{
           {"tenants", "id"}, {"users", "tenant_id"}, {"customers", "tenant_id"}}) {
    const auto* r = p.relation(table);
    ASSERT_NE(r, nullptr) << table;
    ASSERT_EQ(r->rules.size(), 1u) << table;
    EXPECT_EQ(r->rules[0].fact, "tenant");
    EXPECT_EQ(r->rules[0].columns, std::vector<std::string>{column}) << table;
    EXPECT_TRUE(r->rules[0].via.empty()) << table;
    EXPECT_FALSE(r->everyone) << table;
    EXPECT_EQ(r->sensitivity, policy::Sensitivity::kSensitive) << table;
  }
}

TEST(SaasPolicy, MaskedAndHiddenColumns) {
  const auto& p = saas_policy();
  const auto* customers = p.relation("customers");
  ASSERT_NE(customers, nullptr);
  ASSERT_NE(customers->column("email"), nullptr);
  EXPECT_EQ(customers->column("email")->mask, policy::MaskKind::kEmail);
  EXPECT_EQ(customers->column("email")->unmask_right, "customers.email");
  ASSERT_NE(customers->column("phone"), nullptr);
  EXPECT_EQ(customers->column("phone")->mask, policy::MaskKind::kLast4);
  EXPECT_EQ(customers->hidden, std::vector<std::string>{"internal_notes"});
  EXPECT_EQ(customers->column("internal_notes"), nullptr);
  EXPECT_FALSE(customers->column("name")->mask.has_value());
  EXPECT_TRUE(customers->masked());

  const auto* users = p.relation("users");
  ASSERT_NE(users, nullptr);
  ASSERT_NE(users->column("email"), nullptr);
  EXPECT_EQ(users->column("email")->mask, policy::MaskKind::kEmail);

  for (const char* plain : {"tenants", "invoices", "invoice_lines", "products"}) {
    EXPECT_FALSE(p.relation(plain)->masked()) << plain;
    EXPECT_TRUE(p.relation(plain)->hidden.empty()) << plain;
  }
  // Masked tables are read through the masking views; the others directly.
  EXPECT_EQ(p.guard_relations(),
            (std::set<std::string>{"larder_masked.customers", "larder_masked.users", "public.tenants",
                                   "public.invoices", "public.invoice_lines", "public.products"}));
  for (const auto& r : p.relations) {
    for (const auto& c : r.columns) EXPECT_FALSE(c.description.empty()) << r.name << "." << c.name;
  }
}

TEST(SaasPolicy, JoinPaths) {
  const auto& p = saas_policy();
  const auto* invoices = p.relation("invoices");
  ASSERT_NE(invoices, nullptr);
  ASSERT_EQ(invoices->rules.size(), 1u);
  const auto& ir = invoices->rules[0];
  EXPECT_EQ(ir.fact, "tenant");
  EXPECT_EQ(ir.columns, std::vector<std::string>{"tenant_id"});
  ASSERT_EQ(ir.via.size(), 1u);
  EXPECT_EQ(ir.via[0].column, "customer_id");
  EXPECT_EQ(ir.via[0].relation, "public.customers");
  EXPECT_EQ(ir.via[0].target, "id");

  const auto* lines = p.relation("invoice_lines");
  ASSERT_NE(lines, nullptr);
  ASSERT_EQ(lines->rules.size(), 1u);
  const auto& lr = lines->rules[0];
  EXPECT_EQ(lr.fact, "tenant");
  EXPECT_EQ(lr.columns, std::vector<std::string>{"tenant_id"});
  ASSERT_EQ(lr.via.size(), 2u);
  EXPECT_EQ(lr.via[0].column, "invoice_id");
  EXPECT_EQ(lr.via[0].relation, "public.invoices");
  EXPECT_EQ(lr.via[0].target, "id");
  EXPECT_EQ(lr.via[1].column, "customer_id");
  EXPECT_EQ(lr.via[1].relation, "public.customers");
  EXPECT_EQ(lr.via[1].target, "id");
}

TEST(SaasPolicy, ProductsArePublic) {
  const auto* products = saas_policy().relation("products");
  ASSERT_NE(products, nullptr);
  EXPECT_TRUE(products->everyone);
  EXPECT_TRUE(products->rules.empty());
  EXPECT_EQ(products->sensitivity, policy::Sensitivity::kPublic);
}

TEST(SaasPolicy, UnpaidInvoicesTool) {
  const auto& p = saas_policy();
  ASSERT_EQ(p.tools.size(), 1u);
  const auto& t = p.tools[0];
  EXPECT_EQ(t.name, "unpaid_invoices");
  EXPECT_FALSE(t.description.empty());
  EXPECT_NE(t.sql.find("$1"), std::string::npos);
  EXPECT_EQ(t.sql.find("$2"), std::string::npos);
  ASSERT_EQ(t.params.size(), 1u);
  EXPECT_EQ(t.params[0].name, "min_total");
  EXPECT_EQ(t.params[0].type, policy::ValueType::kInteger);
  EXPECT_TRUE(t.params[0].required);
}

TEST(HealthcarePolicy, PatientAndClinicianRules) {
  auto p = policy::parse(ex::asset("healthcare/policy.toml"), "<builtin:healthcare>");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->roles.query, "patients");
  const auto* r = p->relation("health_records");
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->rules.size(), 2u);
  EXPECT_EQ(r->rules[0].fact, "patient_name");
  EXPECT_EQ(r->rules[1].fact, "hospital");
  EXPECT_EQ(r->rules[1].when_fact, "role");
}

TEST(GenerateSupport, CopyLineEscapesAndFormats) {
  std::string out;
  ex::CopyLine(out).number(-7).text("a\tb\\c\nd\re").cents(-1234).cents(5).boolean(true).boolean(false).end();
  EXPECT_EQ(out, "-7\ta\\tb\\\\c\\nd\\re\t-12.34\t0.05\ttrue\tfalse\n");
  EXPECT_EQ(ex::cents_text(0), "0.00");
  EXPECT_EQ(ex::cents_text(123456), "1234.56");
  EXPECT_EQ(ex::civil_from_days(ex::days_from_civil(2024, 2, 29)), "2024-02-29");
  EXPECT_EQ(ex::days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(ex::civil_from_days(ex::days_from_civil(2025, 6, 30) + 1), "2025-07-01");
}

TEST(SaasGenerator, DeterministicPerSeed) {
  const auto a = saas::copy_text(3'000, saas::kDefaultSeed);
  const auto b = saas::copy_text(3'000, saas::kDefaultSeed);
  const auto c = saas::copy_text(3'000, saas::kDefaultSeed + 1);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  ASSERT_EQ(c.size(), 6u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].table, b[i].table);
    EXPECT_EQ(a[i].rows, b[i].rows) << a[i].table;
    EXPECT_TRUE(a[i].text == b[i].text) << a[i].table << " differs between two runs with the same seed";
  }
  // Tenants and products are fixed; the generated tables follow the seed.
  EXPECT_EQ(a[0].text, c[0].text);
  EXPECT_EQ(a[1].text, c[1].text);
  for (std::size_t i = 2; i < a.size(); ++i) EXPECT_NE(a[i].text, c[i].text) << a[i].table;
}

TEST(SaasGenerator, TablesInLoadOrderWithTheirColumns) {
  const auto data = saas::copy_text(800, 1);
  std::vector<std::string> names;
  for (const auto& t : data) {
    names.push_back(t.table);
    for (const auto& row : rows_of(t.text)) ASSERT_EQ(row.size(), column_count(t.columns)) << t.table;
    EXPECT_EQ(rows_of(t.text).size(), t.rows) << t.table;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"public.tenants", "public.products", "public.users",
                                             "public.customers", "public.invoices", "public.invoice_lines"}));
}

TEST(SaasGenerator, DefaultScale) {
  const auto data = saas::copy_text(saas::kDefaultRows, saas::kDefaultSeed);
  std::map<std::string, std::size_t> counts;
  for (const auto& t : data) counts[t.table] = t.rows;
  EXPECT_EQ(counts["public.tenants"], 8u);
  EXPECT_EQ(counts["public.products"], 25u);
  EXPECT_EQ(counts["public.users"], 200u);
  EXPECT_EQ(counts["public.customers"], 2'500u);
  EXPECT_EQ(counts["public.invoices"], saas::kDefaultRows);
  EXPECT_EQ(counts["public.invoice_lines"], saas::kDefaultInvoiceLines);
  EXPECT_NEAR(static_cast<double>(counts["public.invoice_lines"]) / saas::kDefaultRows, 3.0, 0.1);
}

// Foreign keys, uniqueness and the fixed rows the header documents, checked on the text.
TEST(SaasGenerator, IntegrityAndFixedRows) {
  constexpr std::size_t kRows = 4'000;
  auto t = tables_of(saas::copy_text(kRows, saas::kDefaultSeed));
  const auto& tenants = t["public.tenants"];
  const auto& products = t["public.products"];
  const auto& users = t["public.users"];
  const auto& customers = t["public.customers"];
  const auto& invoices = t["public.invoices"];
  const auto& lines = t["public.invoice_lines"];

  ASSERT_EQ(tenants.size(), saas::kTenants.size());
  EXPECT_EQ(tenants[0], (Row{saas::kAcmeTenant, saas::kAcmeName, "enterprise", "2018-03-12"}));
  EXPECT_EQ(tenants[1][0], saas::kGlobexTenant);
  EXPECT_EQ(tenants[1][1], saas::kGlobexName);
  EXPECT_EQ(tenants[2][0], saas::kInitechTenant);
  EXPECT_EQ(tenants[2][1], saas::kInitechName);
  std::set<std::string> tenant_ids, tenant_names;
  for (const auto& r : tenants) {
    EXPECT_TRUE(policy::valid_value(policy::ValueType::kUuid, r[0])) << r[0];
    tenant_ids.insert(r[0]);
    tenant_names.insert(r[1]);
  }
  EXPECT_EQ(tenant_ids.size(), tenants.size());
  EXPECT_EQ(tenant_names.size(), tenants.size());

  ASSERT_EQ(products.size(), saas::kProductCount);
  std::map<std::int64_t, std::int64_t> price;
  std::set<std::string> skus;
  for (const auto& r : products) {
    price[std::stoll(r[0])] = cents(r[3]);
    skus.insert(r[1]);
  }
  EXPECT_EQ(skus.size(), products.size());
  EXPECT_EQ(products[0][1], "LRD-1001");

  ASSERT_EQ(users.size(), saas::user_count(kRows));
  std::set<std::string> user_ids, admins_of;
  for (const auto& r : users) {
    EXPECT_TRUE(policy::valid_value(policy::ValueType::kUuid, r[0])) << r[0];
    EXPECT_EQ(r[0][14], '4') << r[0];
    user_ids.insert(r[0]);
    EXPECT_EQ(tenant_ids.count(r[1]), 1u) << r[1];
    EXPECT_NE(r[2].find('@'), std::string::npos);
    EXPECT_TRUE(r[4] == "true" || r[4] == "false");
    if (r[4] == "true") admins_of.insert(r[1]);
  }
  EXPECT_EQ(user_ids.size(), users.size());
  EXPECT_EQ(admins_of, tenant_ids);  // every tenant has an admin

  ASSERT_EQ(customers.size(), saas::customer_count(kRows));
  std::map<std::int64_t, std::string> tenant_of_customer;
  for (std::size_t i = 0; i < customers.size(); ++i) {
    const auto& r = customers[i];
    EXPECT_EQ(std::stoll(r[0]), static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(tenant_ids.count(r[1]), 1u) << r[1];
    tenant_of_customer[std::stoll(r[0])] = r[1];
    EXPECT_NE(r[3].find('@'), std::string::npos) << r[3];
    EXPECT_EQ(r[4].rfind("+1-", 0), 0u) << r[4];
    EXPECT_NE(r[4].find("-555-01"), std::string::npos) << r[4];
    EXPECT_TRUE(policy::valid_value(policy::ValueType::kDate, r[6])) << r[6];
    EXPECT_LE(r[6], saas::kAsOf);
  }
  EXPECT_EQ(customers[0], (Row{"1", saas::kAcmeTenant, saas::kAcmeCustomerName, saas::kAcmeCustomerEmail,
                               saas::kAcmeCustomerPhone, saas::kAcmeCustomerNotes, "2021-04-14"}));
  for (std::int64_t id = 1; id <= static_cast<std::int64_t>(saas::kAcmeCustomers); ++id)
    EXPECT_EQ(tenant_of_customer[id], saas::kAcmeTenant) << id;
  EXPECT_EQ(tenant_of_customer[saas::kGlobexCustomer], saas::kGlobexTenant);
  EXPECT_EQ(tenant_of_customer[saas::kInitechCustomer], saas::kInitechTenant);
  // Every tenant has customers at this scale.
  std::set<std::string> with_customers;
  for (const auto& [id, tenant] : tenant_of_customer) with_customers.insert(tenant);
  EXPECT_EQ(with_customers, tenant_ids);

  ASSERT_EQ(invoices.size(), kRows);
  std::map<std::int64_t, std::int64_t> total_of;
  std::set<std::string> numbers;
  std::set<std::int64_t> invoiced_customers;
  for (std::size_t i = 0; i < invoices.size(); ++i) {
    const auto& r = invoices[i];
    const std::int64_t id = std::stoll(r[0]);
    EXPECT_EQ(id, static_cast<std::int64_t>(i + 1));
    const std::int64_t customer = std::stoll(r[1]);
    EXPECT_EQ(tenant_of_customer.count(customer), 1u) << customer;
    invoiced_customers.insert(customer);
    numbers.insert(r[2]);
    EXPECT_EQ(r[2].rfind("INV-" + r[3].substr(0, 4) + "-", 0), 0u) << r[2];
    EXPECT_LE(r[3], r[4]);  // issued_on <= due_on
    EXPECT_LE(r[3], saas::kAsOf);
    total_of[id] = cents(r[5]);
    EXPECT_TRUE(r[6] == "true" || r[6] == "false");
  }
  EXPECT_EQ(numbers.size(), invoices.size());
  for (std::int64_t id = 1; id <= static_cast<std::int64_t>(saas::kFixedCustomers); ++id) {
    EXPECT_EQ(invoices[static_cast<std::size_t>(id - 1)][1], std::to_string(id));
    EXPECT_EQ(invoiced_customers.count(id), 1u) << id;
  }
  const auto& overdue = invoices[static_cast<std::size_t>(saas::kAcmeOverdueInvoice - 1)];
  EXPECT_EQ(overdue[6], "false");
  EXPECT_LT(overdue[4], saas::kAsOf);

  std::map<std::int64_t, std::int64_t> line_sum;
  std::int64_t previous_invoice = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& r = lines[i];
    EXPECT_EQ(std::stoll(r[0]), static_cast<std::int64_t>(i + 1));
    const std::int64_t invoice = std::stoll(r[1]);
    EXPECT_GE(invoice, previous_invoice);
    previous_invoice = invoice;
    const std::int64_t product = std::stoll(r[2]);
    ASSERT_EQ(price.count(product), 1u) << product;
    const std::int64_t quantity = std::stoll(r[3]);
    EXPECT_GT(quantity, 0);
    EXPECT_EQ(cents(r[4]), quantity * price[product]);
    line_sum[invoice] += cents(r[4]);
  }
  ASSERT_EQ(line_sum.size(), invoices.size());  // every invoice has lines, no line is orphaned
  for (const auto& [id, total] : total_of) EXPECT_EQ(line_sum[id], total) << "invoice " << id;
}

TEST(SaasGenerator, SmallDataSets) {
  for (std::size_t rows : {0u, 1u, 7u, 20u}) {
    auto t = tables_of(saas::copy_text(rows, 3));
    EXPECT_EQ(t["public.tenants"].size(), saas::kTenants.size());
    EXPECT_EQ(t["public.customers"].size(), saas::kFixedCustomers) << rows;
    EXPECT_EQ(t["public.users"].size(), 2 * saas::kTenants.size()) << rows;
    EXPECT_EQ(t["public.invoices"].size(), rows);
    EXPECT_GE(t["public.invoice_lines"].size(), rows);
    EXPECT_LE(t["public.invoice_lines"].size(), 5 * rows);
  }
}

}  // namespace
}  // namespace larder
