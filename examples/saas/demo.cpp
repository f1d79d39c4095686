#include "examples/saas/demo.h"

#include "examples/saas/generate.h"

#include <chrono>

namespace larder::examples::saas {
namespace {

using nlohmann::json;
using tools::Call;
using tools::DemoSubject;
using tools::ScenarioRunner;

const std::vector<std::string> kQueryRights = {"pg_query",       "pg_explain",  "pg_metadata",
                                               "resources/read", "prompts/get", tools::kEgressTool};

gate::TokenProfile profile(const std::string& name, const std::string& description,
                           const std::vector<std::string>& extra_rights) {
  gate::TokenProfile p;
  p.name = name;
  p.description = description;
  p.rights = kQueryRights;
  p.rights.insert(p.rights.end(), extra_rights.begin(), extra_rights.end());
  p.facts = {"tenant({tenant})"};
  p.ttl = std::chrono::hours(24 * 30);
  return p;
}

// A tenant's member, for the tokens the scenarios mint by hand.
DemoSubject member(const std::string& label, const std::string& tenant) {
  DemoSubject s;
  s.label = label;
  s.facts = "tenant({tenant});";
  s.params.string("tenant", tenant);
  return s;
}

// A cell as text: strings as they are, numbers as JSON writes them, null as "".
std::string cell(const json& row, const std::string& column) {
  if (!row.is_object() || !row.contains(column) || row[column].is_null()) return {};
  const json& v = row[column];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// What the masks show (docs/policy.md): the first letter and the domain; the last four digits.
std::string email_mask(const std::string& email) {
  auto at = email.find('@');
  return at == std::string::npos || at == 0 ? "***" : email.substr(0, 1) + "***" + email.substr(at);
}
std::string last4_mask(const std::string& phone) {
  return phone.size() <= 4 ? "****" : "****" + phone.substr(phone.size() - 4);
}

std::string token_of(const MintedTokens& tokens, const std::string& name) {
  auto it = tokens.find(name);
  return it == tokens.end() ? std::string() : it->second;
}

// A token's count of a table against the truth (the superuser's count of Acme's rows, and of
// all rows): equal, and fewer than all.
void expect_tenant_count(ScenarioRunner& run, mcp::Client& db, const tools::DemoEnvironment& env,
                         const std::string& token, const std::string& what, const std::string& table,
                         const std::string& truth_sql) {
  const std::string sql = "SELECT count(*) AS n FROM " + table;
  Call c = tools::query(db, token, sql);
  auto acme = tools::admin_value(env, truth_sql, {kAcmeTenant});
  auto all = tools::admin_value(env, "SELECT count(*) FROM public." + table);
  if (!acme || !all) {
    run.report("Acme's admin: " + what, "pg_query " + sql,
               "no truth to compare with: " + (!acme ? acme.error().message : all.error().message), "rls",
               false);
    return;
  }
  const std::string seen = c.rows().empty() ? std::string() : cell(c.rows()[0], "n");
  bool ok = !c.is_error() && seen == *acme && std::stoll(*acme) > 0 && std::stoll(*acme) < std::stoll(*all);
  run.report("Acme's admin: " + what, "pg_query " + sql,
             c.is_error()
                 ? "refused: " + c.text()
                 : seen + " " + what + " (the truth: " + *acme + " of Acme's, " + *all + " in all tenants)",
             "rls", ok);
}

}  // namespace

std::vector<DemoToken> demo_tokens() {
  return {
      {"acme-admin",
       std::string(kAcmeName) + "'s administrator (tenant-admin)",
       profile("tenant-admin", "a tenant's administrator: the query tools and unpaid_invoices",
               {"unpaid_invoices"}),
       {{"tenant", kAcmeTenant}}},
      {"globex-user",
       std::string("a user of ") + kGlobexName + " (tenant-user)",
       profile("tenant-user", "a tenant's user: the query tools", {}),
       {{"tenant", kGlobexTenant}}},
      {"support",
       std::string("a support engineer at ") + kAcmeName + " (support-engineer, unmasks customers.email)",
       profile("support-engineer", "a tenant's support engineer: the query tools, customers' emails in clear",
               {"unmask:customers.email"}),
       {{"tenant", kAcmeTenant}}},
  };
}

std::vector<tools::ScenarioOutcome> run_demo_scenarios(
    const tools::DemoEnvironment& env, const MintedTokens& tokens,
    const std::function<void(const tools::ScenarioOutcome&)>& on_outcome) {
  ScenarioRunner run(on_outcome);
  const std::string admin = token_of(tokens, "acme-admin");
  const std::string globex = token_of(tokens, "globex-user");
  const std::string support = token_of(tokens, "support");
  auto claude = tools::connect(env.db_url, env, &env.claude);
  if (!claude) {
    run.report("connect", "claude-client → larder-db", "cannot connect: " + claude.error().message, "mtls",
               false);
    return run.take();
  }
  mcp::Client& db = **claude;

  // Lock 4: Acme's admin sees Acme's rows only — directly (customers.tenant_id), through one
  // hop (invoices -> customers) and through two (invoice_lines -> invoices -> customers).
  {
    const std::string sql = "SELECT tenant_id, count(*) AS n FROM customers GROUP BY tenant_id";
    Call c = tools::query(db, admin, sql);
    auto truth =
        tools::admin_value(env, "SELECT count(*) FROM public.customers WHERE tenant_id = $1", {kAcmeTenant});
    const json rows = c.rows();
    bool ok = truth.ok() && !c.is_error() && rows.size() == 1 && cell(rows[0], "tenant_id") == kAcmeTenant &&
              cell(rows[0], "n") == *truth;
    std::string seen = "none";
    if (!rows.empty()) {
      seen = cell(rows[0], "n") + " customers of tenant " + cell(rows[0], "tenant_id") +
             (cell(rows[0], "tenant_id") == kAcmeTenant ? " (Acme)" : "");
    }
    run.report("Acme's admin: customers", "pg_query " + sql,
               c.is_error() ? "refused: " + c.text()
                            : std::to_string(rows.size()) + " tenant(s) visible: " + seen +
                                  (truth ? " (the truth: " + *truth + " of Acme's)"
                                         : " (no truth: " + truth.error().message + ")"),
               "rls", ok);
  }
  expect_tenant_count(
      run, db, env, admin, "invoices", "invoices",
      "SELECT count(*) FROM public.invoices i JOIN public.customers c ON c.id = i.customer_id "
      "WHERE c.tenant_id = $1");
  expect_tenant_count(
      run, db, env, admin, "invoice lines", "invoice_lines",
      "SELECT count(*) FROM public.invoice_lines l JOIN public.invoices i ON i.id = l.invoice_id "
      "JOIN public.customers c ON c.id = i.customer_id WHERE c.tenant_id = $1");
  // Another tenant's user asks for Acme's invoice by id.
  {
    const std::string sql =
        "SELECT id, number, total FROM invoices WHERE id = " + std::to_string(kAcmeOverdueInvoice);
    Call c = tools::query(db, globex, sql);
    auto owner = tools::admin_value(env,
                                    "SELECT c.tenant_id FROM public.invoices i JOIN public.customers c "
                                    "ON c.id = i.customer_id WHERE i.id = $1",
                                    {std::to_string(kAcmeOverdueInvoice)});
    bool ok = owner.ok() && *owner == kAcmeTenant && !c.is_error() && c.row_count() == 0;
    run.report("Globex's user asks for Acme's invoice " + std::to_string(kAcmeOverdueInvoice),
               "pg_query " + sql,
               c.is_error()
                   ? "refused: " + c.text()
                   : std::to_string(c.row_count()) + " rows (the invoice exists: " +
                         (owner ? (*owner == kAcmeTenant ? std::string("Acme's") : "tenant " + *owner + "'s")
                                : owner.error().message) +
                         ")",
               "rls", ok);
  }

  // Masks: customers.email reads masked unless the token proves right("unmask", "customers.email").
  const std::string customer_sql =
      "SELECT name, email, phone FROM customers WHERE id = " + std::to_string(kAcmeCustomerId);
  {
    Call c = tools::query(db, admin, customer_sql);
    const json row = c.rows().empty() ? json::object() : c.rows()[0];
    bool ok = !c.is_error() && c.row_count() == 1 && cell(row, "name") == kAcmeCustomerName &&
              cell(row, "email") == email_mask(kAcmeCustomerEmail) &&
              cell(row, "phone") == last4_mask(kAcmeCustomerPhone);
    run.report("Acme's admin reads a customer's email: masked", "pg_query " + customer_sql,
               c.is_error() ? "refused: " + c.text()
                            : cell(row, "name") + ", email \"" + cell(row, "email") + "\", phone \"" +
                                  cell(row, "phone") + "\"",
               "mask", ok);
  }
  {
    Call c = tools::query(db, support, customer_sql);
    const json row = c.rows().empty() ? json::object() : c.rows()[0];
    bool ok = !c.is_error() && c.row_count() == 1 && cell(row, "email") == kAcmeCustomerEmail &&
              cell(row, "phone") == last4_mask(kAcmeCustomerPhone);
    run.report("the support engineer (unmask:customers.email): email in clear", "pg_query " + customer_sql,
               c.is_error()
                   ? "refused: " + c.text()
                   : cell(row, "name") + ", email \"" + cell(row, "email") + "\" in clear, phone \"" +
                         cell(row, "phone") + "\" still masked (no right for it)",
               "mask", ok);
  }

  // The declared tool, granted per tool like any other.
  {
    Call c = tools::call(db, "unpaid_invoices", {{"min_total", 0}, {"biscuit_token", admin}});
    auto truth =
        tools::admin_value(env,
                           "SELECT least(count(*), 100) FROM public.invoices i JOIN public.customers c "
                           "ON c.id = i.customer_id WHERE c.tenant_id = $1 AND NOT i.paid",
                           {kAcmeTenant});
    bool ok = truth.ok() && !c.is_error() && std::to_string(c.row_count()) == *truth && c.row_count() > 0;
    run.report("declared tool unpaid_invoices (Acme's admin, right(\"unpaid_invoices\"))",
               "unpaid_invoices {\"min_total\": 0}",
               c.is_error()
                   ? "refused: " + c.text()
                   : std::to_string(c.row_count()) + " unpaid invoices of Acme's (the truth, at most 100: " +
                         (truth ? *truth : truth.error().message) + ")",
               c.lock(), ok);
  }
  run.expect_refused("unpaid_invoices without its right (Globex's user)",
                     "unpaid_invoices {\"min_total\": 0}",
                     tools::call(db, "unpaid_invoices", {{"min_total", 0}, {"biscuit_token", globex}}),
                     std::vector<std::string>{"biscuit", "policy"});

  // Lock 1, the token's binding and integrity.
  tools::run_handshake_scenarios(run, env);
  tools::run_token_scenarios(run, db, env, admin, member("Acme's admin", kAcmeTenant),
                             "SELECT count(*) FROM invoices");
  // Lock 3: hostile SQL, and the base table behind the mask.
  tools::run_guard_scenarios(
      run, db, admin,
      {{"set_config forging the context",
        std::string("SELECT set_config('larder.tenant', '") + kGlobexTenant + "', false)"},
       {"two statements", "SELECT 1; SELECT * FROM invoices"},
       {"UPDATE", "UPDATE invoices SET paid = true"},
       {"pg_read_file", "SELECT pg_read_file('/etc/passwd')"},
       {"the base table behind the mask", "SELECT name, email FROM public.customers"}});
  // A hidden column is in neither the masking view nor the query role's privileges.
  {
    const std::string sql = "SELECT name, internal_notes FROM customers";
    run.expect_refused("the hidden column internal_notes", "pg_query " + sql, tools::query(db, admin, sql),
                       std::vector<std::string>{"sql-guard", "database"});
  }

  // Taint: the public catalogue does not taint; customers do.
  auto compliance = tools::connect(env.compliance_url, env, &env.claude);
  if (!compliance) {
    run.report("connect", "claude-client → larder-compliance", compliance.error().message, "mtls", false);
  } else {
    mcp::Client& out = **compliance;
    auto fresh = tools::mint_bound(env, member("Globex's user", kGlobexTenant), tools::days_from_now(1));
    if (!fresh) {
      run.report("taint: a read of the public catalogue only", "mint a fresh token", fresh.error().message,
                 "-", false);
    } else {
      const std::string sql = "SELECT sku, name, price FROM products ORDER BY sku";
      Call read = tools::query(db, *fresh, sql);
      bool untainted = !read.is_error() && !read.attenuated().has_value();
      run.report("taint: a read of the public catalogue only", "pg_query with a fresh token: " + sql,
                 read.is_error() ? "refused: " + read.text()
                                 : std::to_string(read.row_count()) + " products; " +
                                       (untainted ? "no attenuated token: the lineage is not tainted"
                                                  : "the server returned an ATTENUATED token"),
                 read.lock(), untainted && read.row_count() == static_cast<int>(kProductCount));
      Call sent = tools::egress(out, *fresh, "Price list: " + read.text().substr(0, 200));
      run.report("taint: the same token → compliance check",
                 std::string(tools::kEgressTool) + " with the catalogue",
                 sent.is_error() ? "refused: " + sent.text() : "allowed: the catalogue is public",
                 sent.lock(), !sent.is_error());
    }
    tools::run_taint_scenarios(run, db, out, env, member("Acme's admin", kAcmeTenant),
                               "SELECT name, email FROM customers ORDER BY id");
    tools::run_fresh_egress_scenario(run, out, env, member("Acme's admin", kAcmeTenant),
                                     "Quarterly summary: invoices paid on time rose 4% in Q2.");
    tools::run_egress_record_scenario(run, env, 2, {kAcmeCustomerName, "Records:"});
  }

  tools::run_revocation_scenario(run, db, env, member("Globex's user", kGlobexTenant),
                                 "SELECT count(*) FROM invoices");
  tools::run_audit_scenarios(run, env);
  return run.take();
}

Demo demo() {
  Demo d;
  d.banner = {
      "A multi-tenant invoicing application. Each token proves tenant(...) and sees only that",
      "tenant's rows: customers directly, invoices and their lines through join paths; the",
      "product catalogue is public. Emails read masked unless the token may unmask them;",
      "unpaid_invoices is a query tool the policy file declares.",
  };
  d.tokens = [](const db::ConnParams&) -> Result<std::vector<DemoToken>> { return demo_tokens(); };
  d.scenarios = [](const tools::DemoEnvironment& env, const MintedTokens& tokens,
                   const std::function<void(const tools::ScenarioOutcome&)>& on_outcome) {
    return run_demo_scenarios(env, tokens, on_outcome);
  };
  d.try_token = "acme-admin";
  d.question = "Which of our invoices are overdue, and which customers owe us the most?";
  d.try_sql = "SELECT count(*) FROM invoices";
  return d;
}

}  // namespace larder::examples::saas
