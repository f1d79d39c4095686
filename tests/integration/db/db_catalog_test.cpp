// Lock 3 facts, read from the catalog: what the query role can and cannot do.
#include "db_test_env.h"
#include "examples/examples.h"
#include "policy/apply.h"
#include "policy/setup.h"

using namespace larder;
using larder::test::admin_scalar;

namespace {

TEST(DbCatalog, QueryRoleHasNoPrivilegedAttributes) {
  EXPECT_EQ(
      admin_scalar("SELECT rolsuper::text || rolbypassrls::text || rolcreatedb::text || rolcreaterole::text "
                   "|| rolreplication::text || rolcanlogin::text FROM pg_roles WHERE rolname = 'patients'"),
      "falsefalsefalsefalsefalsetrue");
  EXPECT_EQ(admin_scalar("SELECT rolsuper::text || rolbypassrls::text || rolcanlogin::text FROM pg_roles "
                         "WHERE rolname = 'larder_context_writer'"),
            "falsefalsetrue");
  EXPECT_EQ(
      admin_scalar(
          "SELECT rolcanlogin::text || rolbypassrls::text FROM pg_roles WHERE rolname = 'larder_owner'"),
      "falsefalse");
}

TEST(DbCatalog, QueryRoleIsMemberOfNoRole) {
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                         "WHERE r.rolname IN ('patients', 'larder_context_writer')"),
            "0");
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_roles r WHERE r.rolname <> 'patients' "
                         "AND pg_has_role('patients', r.oid, 'USAGE')"),
            "0");
}

TEST(DbCatalog, QueryRoleCannotCreateAnywhere) {
  EXPECT_EQ(
      admin_scalar(
          "SELECT count(*) FROM pg_namespace n WHERE has_schema_privilege('patients', n.oid, 'CREATE')"),
      "0");
  EXPECT_EQ(
      admin_scalar("SELECT has_database_privilege('patients', current_database(), 'TEMPORARY')::text || "
                   "has_database_privilege('patients', current_database(), 'CREATE')::text"),
      "falsefalse");
  EXPECT_EQ(admin_scalar("SELECT has_database_privilege('public', current_database(), 'CONNECT')::text"),
            "false");
}

TEST(DbCatalog, QueryRoleSelectsOnlyTheExposedTable) {
  // The policy file grants SELECT column by column: any readable column counts.
  EXPECT_EQ(
      admin_scalar(
          "SELECT string_agg(c.oid::regclass::text, ',' ORDER BY 1) FROM pg_class c "
          "JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema') "
          "AND (has_table_privilege('patients', c.oid, 'SELECT') "
          "OR has_any_column_privilege('patients', c.oid, 'SELECT'))"),
      "health_records");
  // Exactly the columns the policy file lists as readable (all 16 of health_records).
  EXPECT_EQ(
      admin_scalar("SELECT count(*) FROM pg_attribute a WHERE a.attrelid = 'public.health_records'::regclass "
                   "AND a.attnum > 0 AND NOT a.attisdropped "
                   "AND has_column_privilege('patients', a.attrelid, a.attnum, 'SELECT')"),
      "16");
  EXPECT_EQ(
      admin_scalar(
          "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema') "
          "AND (has_table_privilege('patients', c.oid, 'INSERT') OR has_table_privilege('patients', c.oid, "
          "'UPDATE') "
          "OR has_table_privilege('patients', c.oid, 'DELETE') OR has_table_privilege('patients', c.oid, "
          "'TRUNCATE') "
          "OR has_table_privilege('patients', c.oid, 'REFERENCES') OR has_table_privilege('patients', c.oid, "
          "'TRIGGER') "
          "OR has_any_column_privilege('patients', c.oid, 'INSERT, UPDATE, REFERENCES'))"),
      "0");
  EXPECT_EQ(admin_scalar("SELECT has_schema_privilege('patients', 'larder_private', 'USAGE')::text"),
            "false");
  EXPECT_EQ(
      admin_scalar(
          "SELECT has_table_privilege('larder_context_writer', 'public.health_records', 'SELECT')::text || "
          "has_any_column_privilege('larder_context_writer', 'public.health_records', 'SELECT')::text"),
      "falsefalse");
}

TEST(DbCatalog, RowLevelSecurityEnabledAndForcedOnProtectedTables) {
  EXPECT_EQ(
      admin_scalar("SELECT relrowsecurity::text || relforcerowsecurity::text || pg_get_userbyid(relowner) "
                   "FROM pg_class WHERE oid = 'public.health_records'::regclass"),
      "truetruepostgres");  // the administrator's table; FORCE applies RLS to its owner too
  // Every table the query role can read is protected by RLS.
  EXPECT_EQ(
      admin_scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                   "AND (has_table_privilege('patients', c.oid, 'SELECT') "
                   "OR has_any_column_privilege('patients', c.oid, 'SELECT')) "
                   "AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"),
      "0");
  // One permissive SELECT policy per row rule of the policy file (patient, clinician), for the
  // query role (and the masking views' owner), none for PUBLIC.
  EXPECT_EQ(admin_scalar(
                "SELECT string_agg(policyname || ':' || permissive || ':' || "
                "array_to_string(ARRAY(SELECT r FROM unnest(roles) AS r ORDER BY 1), ','), ' ' "
                "ORDER BY policyname) FROM pg_policies WHERE tablename = 'health_records' AND cmd = 'SELECT' "
                "AND 'patients' = ANY (roles)"),
            "larder_r1:PERMISSIVE:larder_views,patients larder_r2:PERMISSIVE:larder_views,patients");
  EXPECT_EQ(
      admin_scalar(
          "SELECT count(*) FROM pg_policies WHERE tablename = 'health_records' AND 'public' = ANY (roles)"),
      "0");
  EXPECT_EQ(
      admin_scalar("SELECT count(*) FROM pg_policies WHERE tablename = 'health_records' AND cmd <> 'SELECT'"),
      "0");
}

TEST(DbCatalog, NoDefinerViewsOverProtectedData) {
  EXPECT_EQ(
      admin_scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                   "WHERE c.relkind IN ('v','m') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                   "AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)"),
      "0");
}

TEST(DbCatalog, ContextFunctionsAreDefinerWithPinnedSearchPath) {
  // The rule functions (r1: the patient's names, r2: the clinician's hospitals), unmasked() and
  // the context function that verifies the sealed context read it as the owner: SECURITY
  // DEFINER, search_path pinned. The masking
  // functions are plain (no definer rights) but pinned too. Nothing else is in either schema.
  EXPECT_EQ(
      admin_scalar("SELECT string_agg(n.nspname || '.' || p.proname || ':' || p.prosecdef::text || ':' || "
                   "array_to_string(p.proconfig, ';') || ':' || p.pronargs::text || ':' || "
                   "pg_get_userbyid(p.proowner), ',' ORDER BY n.nspname, p.proname) FROM pg_proc p "
                   "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('larder_ctx', "
                   "'larder_private')"),
      "larder_ctx.mask_email:false:search_path=pg_catalog, pg_temp:1:larder_owner,"
      "larder_ctx.mask_last4:false:search_path=pg_catalog, pg_temp:1:larder_owner,"
      "larder_ctx.mask_redact:false:search_path=pg_catalog, pg_temp:1:larder_owner,"
      "larder_ctx.r1:true:search_path=pg_catalog, pg_temp:0:larder_owner,"
      "larder_ctx.r2:true:search_path=pg_catalog, pg_temp:0:larder_owner,"
      "larder_ctx.unmasked:true:search_path=pg_catalog, pg_temp:1:larder_owner,"
      "larder_private.context:true:search_path=pg_catalog, pg_temp:0:larder_owner");
  for (const char* fn : {"larder_ctx.r1()", "larder_ctx.r2()", "larder_ctx.unmasked(integer)"}) {
    EXPECT_EQ(
        admin_scalar(std::string("SELECT has_function_privilege('public', '") + fn + "', 'EXECUTE')::text"),
        "false")
        << fn;
  }
  // The query role calls the rule functions (its policies do), but neither reads the context
  // keys nor calls the context function itself; the context writer reads the key, and only it.
  EXPECT_EQ(admin_scalar(
                "SELECT has_function_privilege('patients', 'larder_ctx.r1()', 'EXECUTE')::text || "
                "has_table_privilege('patients', 'larder_private.context_keys', 'SELECT')::text || "
                "has_column_privilege('patients', 'larder_private.context_keys', 'key', 'SELECT')::text || "
                "has_function_privilege('patients', 'larder_private.context()', 'EXECUTE')::text"),
            "truefalsefalsefalse");
  EXPECT_EQ(admin_scalar(
                "SELECT has_column_privilege('larder_context_writer', 'larder_private.context_keys', 'key', "
                "'SELECT')::text || has_column_privilege('larder_context_writer', "
                "'larder_private.context_keys', 'ipad', 'SELECT')::text || "
                "has_table_privilege('larder_context_writer', 'larder_private.context_keys', "
                "'INSERT')::text"),
            "truefalsefalse");
}

TEST(DbCatalog, LeakyCatalogViewsAreRevoked) {
  EXPECT_EQ(admin_scalar("SELECT has_table_privilege('patients', 'pg_catalog.pg_stats', 'SELECT')::text || "
                         "has_table_privilege('patients', 'pg_catalog.pg_stat_activity', 'SELECT')::text"),
            "falsefalse");
  EXPECT_EQ(
      admin_scalar(
          "SELECT has_function_privilege('patients', 'pg_catalog.pg_terminate_backend(integer, bigint)', "
          "'EXECUTE')::text"),
      "false");
}

TEST(DbCatalog, RlsPredicatesAreIndexed) {
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'health_records' AND "
                         "(indexdef LIKE '%(\"Patient Name\")%' OR indexdef LIKE '%(\"Hospital\")%')"),
            "2");
}

TEST(DbCatalog, SetupIsIdempotent) {
  const auto& cluster = *larder::test::shared_cluster();
  const auto& st = cluster.state();
  auto example = examples::find("healthcare");
  ASSERT_TRUE(example.ok());
  policy::SetupOptions so;
  so.database = st.database;
  so.schema_sql = std::string((*example)->schema);
  so.query_password = st.query_password;
  so.writer_password = st.writer_password;
  auto r = policy::setup_database(st.admin("postgres"), cluster.policy(), so);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // The database already matched the file: the second setup planned nothing.
  EXPECT_TRUE(r->up_to_date) << r->render();
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_policies WHERE tablename = 'health_records'"), "2");
  // And the rows are still there (the schema is idempotent, not recreated).
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM public.health_records"), "500");
}

// `larder serve` runs policy::check as the context writer before it serves: right after setup,
// neither the writer nor the administrator finds any difference (names in the fingerprints
// must not depend on who reads them: the writer has no USAGE on public).
TEST(DbCatalog, RightAfterSetupNoRoleFindsDrift) {
  const auto& cluster = *larder::test::shared_cluster();
  const auto deadline = db::Clock::now() + std::chrono::seconds(30);
  for (const auto& [who, params] : {std::pair{"administrator", cluster.state().admin()},
                                    std::pair{"context writer", cluster.state().writer()}}) {
    auto conn = params.connect(deadline);
    ASSERT_TRUE(conn.ok()) << who << ": " << conn.error().message;
    auto drift = policy::check(cluster.policy(), conn->get(), deadline);
    ASSERT_TRUE(drift.ok()) << who << ": " << drift.error().message;
    std::string all;
    for (const auto& d : *drift) all += "\n  " + d;
    EXPECT_TRUE(drift->empty()) << who << " finds drift:" << all;
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(500));
  return RUN_ALL_TESTS();
}
