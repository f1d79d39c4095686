// The policy file on a real PostgreSQL 15 with the saas example: every lock built from the
// file. Rows through direct and multi-hop join rules, a public table, masked columns that
// hold against hostile SQL with the SQL guard off, plan/apply/check and drift, the catalog's
// bad input (file, line, key; nothing applied), and an apply by a non-superuser.
#include "db/database.h"
#include "examples/examples.h"
#include "examples/saas/generate.h"
#include "policy/apply.h"
#include "support/pg_cluster.h"

#include <gtest/gtest.h>

namespace larder::test {
namespace {

using examples::saas::kAcmeTenant;
using examples::saas::kGlobexTenant;

PgCluster* cluster = nullptr;

class Env : public ::testing::Environment {
 public:
  void SetUp() override {
    PgCluster::Options o;
    o.example = "saas";
    o.seed_rows = 2000;  // invoices
    cluster = new PgCluster(o);
  }
  void TearDown() override {
    delete cluster;
    cluster = nullptr;
  }
};
const auto* const env = ::testing::AddGlobalTestEnvironment(new Env);

db::RequestContext tenant(const std::string& id, bool guard = true) {
  db::RequestContext ctx;
  ctx.add("tenant", id);
  ctx.guard_enabled = guard;
  ctx.max_rows = 100000;
  ctx.max_bytes = 64 << 20;
  return ctx;
}

long long admin_count(const std::string& sql, const std::vector<db::Param>& params = {}) {
  return std::stoll(cluster->admin_scalar(sql, params));
}

long long count(db::Database& database, const db::RequestContext& ctx, const std::string& sql) {
  auto r = database.query(ctx, sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << (r.ok() ? "" : r.error().message);
  if (!r.ok() || r->rows.empty() || !r->rows[0][0]) return -1;
  return std::stoll(*r->rows[0][0]);
}

db::PgConn admin_connection() {
  auto c = cluster->state().admin().connect(db::Clock::now() + std::chrono::seconds(30));
  if (!c) throw std::runtime_error(c.error().message);
  return std::move(*c);
}

void admin_exec(const std::string& sql) {
  auto c = admin_connection();
  auto r = db::exec_script(c.get(), sql, db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(r.ok()) << sql << ": " << r.error().message;
}

std::vector<std::string> drift() {
  auto c = admin_connection();
  auto d = policy::check(cluster->policy(), c.get(), db::Clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(d.ok()) << d.error().message;
  return d.ok() ? *d : std::vector<std::string>{"check failed"};
}

void reapply() {
  auto c = admin_connection();
  auto r = policy::apply(cluster->policy(), c.get(), {}, db::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

bool mentions(const std::vector<std::string>& list, const std::string& what) {
  for (const auto& s : list)
    if (s.find(what) != std::string::npos) return true;
  return false;
}

TEST(SaasRows, ATenantSeesItsRowsThroughEveryRuleAndNoOthers) {
  db::Database database(cluster->database_config());
  for (bool guard : {true, false}) {
    for (const char* t : {kAcmeTenant, kGlobexTenant}) {
      auto ctx = tenant(t, guard);
      const std::vector<db::Param> p = {std::string(t)};
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM tenants"), 1);
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM customers"),
                admin_count("SELECT count(*) FROM customers WHERE tenant_id = $1::uuid", p));
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM users"),
                admin_count("SELECT count(*) FROM users WHERE tenant_id = $1::uuid", p));
      // One hop: an invoice through its customer.
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM invoices"),
                admin_count("SELECT count(*) FROM invoices i JOIN customers c ON c.id = i.customer_id "
                            "WHERE c.tenant_id = $1::uuid",
                            p));
      // Two hops: a line through its invoice and the invoice's customer.
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM invoice_lines"),
                admin_count("SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id "
                            "JOIN customers c ON c.id = i.customer_id WHERE c.tenant_id = $1::uuid",
                            p));
      // Public: every valid context reads the whole catalogue.
      EXPECT_EQ(count(database, ctx, "SELECT count(*) FROM products"),
                static_cast<long long>(examples::saas::kProductCount));
    }
  }
  // Two tenants: the union (rules OR together over the fact's values).
  db::RequestContext both = tenant(kAcmeTenant);
  both.add("tenant", kGlobexTenant);
  EXPECT_EQ(count(database, both, "SELECT count(*) FROM customers"),
            admin_count("SELECT count(*) FROM customers WHERE tenant_id IN ($1::uuid, $2::uuid)",
                        {std::string(kAcmeTenant), std::string(kGlobexTenant)}));
}

TEST(SaasRows, NoContextSeesOnlyThePublicCatalogue) {
  db::Database database(cluster->database_config());
  db::RequestContext none;
  for (const char* table : {"tenants", "users", "customers", "invoices", "invoice_lines"})
    EXPECT_EQ(count(database, none, std::string("SELECT count(*) FROM ") + table), 0) << table;
  EXPECT_EQ(count(database, none, "SELECT count(*) FROM products"),
            static_cast<long long>(examples::saas::kProductCount));
}

TEST(SaasRows, AnotherTenantsRowByIdIsInvisible) {
  db::Database database(cluster->database_config());
  // Invoice 1 is Acme's: Globex cannot reach it or its lines, by id or by join.
  auto globex = tenant(kGlobexTenant, false);
  EXPECT_EQ(count(database, globex, "SELECT count(*) FROM invoices WHERE id = 1"), 0);
  EXPECT_EQ(count(database, globex, "SELECT count(*) FROM invoice_lines WHERE invoice_id = 1"), 0);
  EXPECT_EQ(count(database, globex,
                  "SELECT count(*) FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE "
                  "i.customer_id = 1"),
            0);
  EXPECT_EQ(count(database, tenant(kAcmeTenant), "SELECT count(*) FROM invoices WHERE id = 1"), 1);
}

TEST(SaasMasks, EmailsAndPhonesAreMaskedUnlessTheContextUnmasksThem) {
  db::Database database(cluster->database_config());
  const std::string clear = cluster->admin_scalar("SELECT email FROM customers WHERE id = 1");
  const std::string phone = cluster->admin_scalar("SELECT phone FROM customers WHERE id = 1");
  auto r = database.query(tenant(kAcmeTenant), "SELECT email, phone, name FROM customers WHERE id = 1");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->rows.size(), 1u);
  const std::string masked = *r->rows[0][0];
  EXPECT_NE(masked, clear);
  EXPECT_EQ(masked, clear.substr(0, 1) + "***" + clear.substr(clear.find('@')));
  EXPECT_EQ(*r->rows[0][1], "****" + phone.substr(phone.size() - 4));
  auto unmasked_ctx = tenant(kAcmeTenant);
  unmasked_ctx.unmask = {"customers.email"};
  auto u = database.query(unmasked_ctx, "SELECT email, phone FROM customers WHERE id = 1");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(*u->rows[0][0], clear);
  EXPECT_NE(*u->rows[0][1], phone) << "the email right does not unmask the phone";
  // The right of another column, or of the same column with another spelling, unmasks nothing.
  auto other = tenant(kAcmeTenant);
  other.unmask = {"users.email", "Customers.Email", "customers.email "};
  auto o = database.query(other, "SELECT email FROM customers WHERE id = 1");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(*o->rows[0][0], masked);
}

// The mechanism, with the SQL guard off: the clear value is unreachable by filtering,
// sorting, joining, casting or aggregating — the query role can read only the view's masked
// expression, never the base column (docs/security-model.md).
TEST(SaasMasks, HostileSqlWithTheGuardOffNeverReachesTheClearValue) {
  db::Database database(cluster->database_config());
  auto ctx = tenant(kAcmeTenant, false);
  const std::string clear = cluster->admin_scalar("SELECT email FROM customers WHERE id = 1");
  for (const std::string& sql : {
           "SELECT count(*) FROM customers WHERE email = '" + clear + "'",
           "SELECT count(*) FROM customers WHERE email LIKE '%" + clear.substr(1, 4) + "%'",
           "SELECT count(*) FROM customers WHERE left(email, 2) = '" + clear.substr(0, 2) + "'",
           "SELECT count(*) FROM customers WHERE length(email) = " + std::to_string(clear.size()),
       }) {
    EXPECT_EQ(count(database, ctx, sql), 0) << sql;
  }
  auto sorted =
      database.query(ctx, "SELECT email, email::bytea::text AS b, md5(email) AS h FROM customers ORDER BY 1");
  ASSERT_TRUE(sorted.ok()) << sorted.error().message;
  for (const auto& row : sorted->rows) {
    ASSERT_TRUE(row[0]);
    EXPECT_NE(row[0]->find("***"), std::string::npos) << *row[0];
  }
  auto agg = database.query(ctx, "SELECT string_agg(email, ',') FROM customers");
  ASSERT_TRUE(agg.ok());
  EXPECT_EQ(agg->rows[0][0]->find(clear), std::string::npos);
  // Every way around the view fails: the base table, its hidden column, Larder's machinery.
  for (const std::string& sql : {
           std::string("SELECT email FROM public.customers"),
           std::string("SELECT count(*) FROM public.customers"),
           std::string("SELECT c.id FROM customers c JOIN public.customers p ON p.id = c.id"),
           std::string("SELECT internal_notes FROM public.customers"),
           std::string("SELECT internal_notes FROM customers"),
           std::string("SELECT * FROM larder_private.masks"),
           std::string("SELECT * FROM larder_private.context_keys"),
           std::string("SELECT larder_private.context()"),
           std::string("SELECT * FROM pg_catalog.pg_stats WHERE attname = 'email'"),
       }) {
    auto r = database.query(ctx, sql);
    if (r.ok()) {
      EXPECT_TRUE(r->rows.empty() || (r->rows.size() == 1 && r->rows[0][0] && *r->rows[0][0] == "0")) << sql;
    }
  }
  // The one function of the masks the query role may call says only whether its own token
  // unmasks a column.
  auto own =
      database.query(ctx, "SELECT larder_ctx.unmasked(1), larder_ctx.unmasked(2), larder_ctx.unmasked(3)");
  ASSERT_TRUE(own.ok()) << own.error().message;
  for (const auto& v : own->rows[0]) EXPECT_EQ(*v, "f");
}

TEST(SaasPolicy, CheckIsCleanAndASecondApplyChangesNothing) {
  EXPECT_TRUE(drift().empty()) << drift().front();
  auto c = admin_connection();
  auto pl = policy::plan(cluster->policy(), c.get(), db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(pl.ok()) << pl.error().message;
  EXPECT_TRUE(pl->up_to_date);
  EXPECT_NE(pl->render().find("nothing to do"), std::string::npos);
}

// `larder serve` checks as the context writer, which may not use schema public: the names and
// view definitions it reads back are the ones apply fingerprinted as the administrator, in a
// transaction of the check's own or in the caller's (whose search_path it leaves as it was).
TEST(SaasPolicy, CheckIsCleanAsTheContextWriterToo) {
  auto writer = cluster->state().writer().connect(db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  const auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto d = policy::check(cluster->policy(), writer->get(), deadline);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->empty()) << d->front();
  EXPECT_EQ(PQtransactionStatus(writer->get()), PQTRANS_IDLE);

  auto c = admin_connection();
  ASSERT_TRUE(db::exec_script(c.get(), "BEGIN; SET LOCAL search_path = public, \"$user\"", deadline).ok());
  auto in_transaction = policy::check(cluster->policy(), c.get(), deadline);
  ASSERT_TRUE(in_transaction.ok()) << in_transaction.error().message;
  EXPECT_TRUE(in_transaction->empty()) << in_transaction->front();
  auto path = db::exec_params(c.get(), "SHOW search_path", {}, deadline);
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(std::string(PQgetvalue(path->get(), 0, 0)), "public, \"$user\"");
  ASSERT_TRUE(db::exec_script(c.get(), "ROLLBACK", deadline).ok());
}

TEST(SaasPolicy, CheckNamesEachDifferenceAndApplyRepairsWhatItOwns) {
  struct Case {
    const char* sql;
    const char* expect;
    bool repaired;  // by apply
    const char* undo;
  };
  const Case cases[] = {
      {"GRANT SELECT ON public.customers TO larder_query", "can read public.customers", true, ""},
      {"ALTER TABLE public.invoices DISABLE ROW LEVEL SECURITY",
       "row-level security is disabled on public.invoices", true, ""},
      {"ALTER TABLE public.invoices NO FORCE ROW LEVEL SECURITY", "not FORCEd on public.invoices", true, ""},
      {"ALTER POLICY larder_r1 ON public.customers USING (true)", "larder_r1 was changed by hand", true, ""},
      {"ALTER TABLE public.customers ADD COLUMN ssn text", "customers.\"ssn\" is not in the policy file",
       false, "ALTER TABLE public.customers DROP COLUMN ssn"},
      {"CREATE VIEW public.leak AS SELECT * FROM public.customers; GRANT SELECT ON public.leak TO PUBLIC",
       "can read public.leak", false, "DROP VIEW public.leak"},
      {"CREATE POLICY wide ON public.invoices FOR SELECT USING (true)", "policy wide on public.invoices",
       false, "DROP POLICY wide ON public.invoices"},
      {"CREATE OR REPLACE FUNCTION larder_ctx.mask_email(v text) RETURNS text LANGUAGE sql IMMUTABLE RETURN "
       "v",
       "function larder_ctx.mask_email(text) was changed by hand", true, ""},
      {"GRANT pg_read_all_data TO larder_query", "privileged attribute", true, ""},
  };
  for (const auto& c : cases) {
    admin_exec(c.sql);
    auto d = drift();
    EXPECT_TRUE(mentions(d, c.expect)) << c.sql << " -> " << (d.empty() ? "no drift" : d.front());
    reapply();
    if (c.repaired) {
      auto after = drift();
      EXPECT_TRUE(after.empty()) << c.sql << " still: " << (after.empty() ? "" : after.front());
    } else {
      EXPECT_TRUE(mentions(drift(), c.expect)) << "apply must not silently accept: " << c.sql;
      admin_exec(c.undo);
      EXPECT_TRUE(drift().empty()) << c.undo;
    }
  }
}

Result<policy::Policy> variant(const std::string& from, const std::string& to) {
  auto e = examples::find("saas");
  std::string text((*e)->policy);
  if (text.find(from) == std::string::npos) return Error{"test", "no " + from, ""};
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return policy::parse(text, "saas-policy.toml");
}

TEST(SaasPolicy, CatalogErrorsNameFileLineAndKeyAndApplyNothing) {
  struct Case {
    const char* from;
    const char* to;
    const char* expect;
  };
  const Case cases[] = {
      {"[tables.products", "[tables.product", "relation public.product does not exist"},
      {"columns = [\"id\", \"sku\", \"name\", \"price\"]",
       "columns = [\"id\", \"sku\", \"name\", \"price\", \"cost\"]",
       "column \"cost\" does not exist in public.products"},
      {"tenant = \"uuid\"", "tenant = \"text\"", "fact \"tenant\" is text"},
      {"via = [\"customer_id -> customers.id\"]", "via = [\"customer_id -> customers.uid\"]",
       "join path: column \"uid\" does not exist in public.customers"},
      {"via = [\"customer_id -> customers.id\"]", "via = [\"customer_id -> tenants.id\"]",
       "join path: public.invoices.customer_id is bigint but public.tenants.id is uuid"},
  };
  for (const auto& c : cases) {
    auto p = variant(c.from, c.to);
    ASSERT_TRUE(p.ok()) << c.to << ": " << p.error().message;
    auto conn = admin_connection();
    auto r = policy::apply(*p, conn.get(), {}, db::Clock::now() + std::chrono::seconds(30));
    ASSERT_FALSE(r.ok()) << c.to;
    EXPECT_NE(r.error().message.find("saas-policy.toml:"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_TRUE(drift().empty()) << "a refused apply changed the database: " << c.to;
  }
}

TEST(SaasPolicy, AFailedApplyRollsEverythingBack) {
  // A table where apply puts a masking view: its DROP VIEW fails mid-transaction.
  admin_exec("DROP VIEW larder_masked.users; CREATE TABLE larder_masked.users (x int)");
  auto conn = admin_connection();
  auto r = policy::apply(cluster->policy(), conn.get(), {}, db::Clock::now() + std::chrono::seconds(30));
  EXPECT_FALSE(r.ok());
  if (!r.ok()) {
    EXPECT_NE(r.error().message.find("nothing was changed"), std::string::npos) << r.error().message;
  }
  // The privileges apply revoked first are still in place: the transaction rolled back.
  EXPECT_EQ(
      cluster->admin_scalar("SELECT has_table_privilege('larder_query', 'public.invoices', 'SELECT') OR "
                            "has_any_column_privilege('larder_query', 'public.invoices', 'SELECT')"),
      "t");
  admin_exec("DROP TABLE larder_masked.users");
  reapply();
  EXPECT_TRUE(drift().empty());
}

TEST(SaasPolicy, ARoleWithCreateroleThatOwnsTheTablesAppliesWithoutASuperuser) {
  admin_exec(
      "CREATE ROLE app_admin LOGIN CREATEROLE PASSWORD 'app-admin-pw';"
      "GRANT CREATE, CONNECT ON DATABASE saas TO app_admin; GRANT ALL ON SCHEMA public TO app_admin;"
      "ALTER TABLE tenants OWNER TO app_admin; ALTER TABLE users OWNER TO app_admin;"
      "ALTER TABLE customers OWNER TO app_admin; ALTER TABLE invoices OWNER TO app_admin;"
      "ALTER TABLE invoice_lines OWNER TO app_admin; ALTER TABLE products OWNER TO app_admin;"
      "ALTER SCHEMA larder_private OWNER TO app_admin; ALTER SCHEMA larder_ctx OWNER TO app_admin;"
      "ALTER SCHEMA larder_masked OWNER TO app_admin;"
      "GRANT larder_owner, larder_views TO app_admin WITH ADMIN OPTION");
  auto params = cluster->state().admin();
  params.set("user", "app_admin").set("password", "app-admin-pw");
  auto conn = params.connect(db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(conn.ok()) << conn.error().message;
  // The file changed since (a new description): apply has work to do, as app_admin.
  auto p = variant("The product catalogue, the same for every tenant.", "The catalogue.");
  ASSERT_TRUE(p.ok());
  auto r = policy::apply(*p, conn->get(), {}, db::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->up_to_date);
  EXPECT_TRUE(mentions(r->notes, "not a superuser")) << "the superuser-only parts are listed";
  auto d = policy::check(*p, conn->get(), db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->empty()) << d->front();
  // The locks hold as before.
  db::Database database(cluster->database_config());
  EXPECT_EQ(count(database, tenant(kGlobexTenant, false), "SELECT count(*) FROM invoices WHERE id = 1"), 0);
  reapply();  // back to the file the other tests use, as the superuser
}

TEST(SaasPlans, APointQueryOnAProtectedTableUsesAnIndex) {
  db::Database database(cluster->database_config());
  for (const std::string sql : {"SELECT * FROM invoices WHERE id = 7", "SELECT * FROM customers WHERE id = 3",
                                "SELECT * FROM invoice_lines WHERE id = 11"}) {
    auto plan = database.explain(tenant(kAcmeTenant), sql, {}, false);
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    const std::string text = plan->dump();
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << sql << ": " << text;
  }
}

}  // namespace
}  // namespace larder::test
