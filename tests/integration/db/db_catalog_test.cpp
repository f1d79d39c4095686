// Lock 3 facts, read from the catalog: what the query role can and cannot do.
#include "db_test_env.h"
#include "db/setup.h"

using namespace larder;
using larder::test::admin_scalar;

namespace {

TEST(DbCatalog, QueryRoleHasNoPrivilegedAttributes) {
  EXPECT_EQ(admin_scalar("SELECT rolsuper::text || rolbypassrls::text || rolcreatedb::text || rolcreaterole::text "
                         "|| rolreplication::text || rolcanlogin::text FROM pg_roles WHERE rolname = 'patients'"),
            "falsefalsefalsefalsefalsetrue");
  EXPECT_EQ(admin_scalar("SELECT rolsuper::text || rolbypassrls::text || rolcanlogin::text FROM pg_roles "
                         "WHERE rolname = 'larder_context_writer'"),
            "falsefalsetrue");
  EXPECT_EQ(admin_scalar("SELECT rolcanlogin::text || rolbypassrls::text FROM pg_roles WHERE rolname = 'larder_owner'"),
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
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_namespace n WHERE has_schema_privilege('patients', n.oid, 'CREATE')"),
            "0");
  EXPECT_EQ(admin_scalar("SELECT has_database_privilege('patients', current_database(), 'TEMPORARY')::text || "
                         "has_database_privilege('patients', current_database(), 'CREATE')::text"),
            "falsefalse");
  EXPECT_EQ(admin_scalar("SELECT has_database_privilege('public', current_database(), 'CONNECT')::text"), "false");
}

TEST(DbCatalog, QueryRoleSelectsOnlyTheExposedTable) {
  EXPECT_EQ(admin_scalar("SELECT string_agg(c.oid::regclass::text, ',' ORDER BY 1) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                         "AND has_table_privilege('patients', c.oid, 'SELECT')"),
            "health_records");
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r','v','m','p','f') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                         "AND (has_table_privilege('patients', c.oid, 'INSERT') OR has_table_privilege('patients', c.oid, 'UPDATE') "
                         "OR has_table_privilege('patients', c.oid, 'DELETE') OR has_table_privilege('patients', c.oid, 'TRUNCATE') "
                         "OR has_table_privilege('patients', c.oid, 'REFERENCES') OR has_table_privilege('patients', c.oid, 'TRIGGER'))"),
            "0");
  EXPECT_EQ(admin_scalar("SELECT has_schema_privilege('patients', 'larder_private', 'USAGE')::text"), "false");
  EXPECT_EQ(admin_scalar("SELECT has_table_privilege('larder_context_writer', 'public.health_records', 'SELECT')::text"),
            "false");
}

TEST(DbCatalog, RowLevelSecurityEnabledAndForcedOnProtectedTables) {
  EXPECT_EQ(admin_scalar("SELECT relrowsecurity::text || relforcerowsecurity::text || pg_get_userbyid(relowner) "
                         "FROM pg_class WHERE oid = 'public.health_records'::regclass"),
            "truetruelarder_owner");
  // Every table the query role can read is protected by RLS.
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                         "AND has_table_privilege('patients', c.oid, 'SELECT') "
                         "AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"),
            "0");
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_policies WHERE tablename = 'health_records' AND cmd = 'SELECT' "
                         "AND roles = '{patients}'"),
            "2");
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_policies WHERE tablename = 'health_records' AND cmd <> 'SELECT'"), "0");
}

TEST(DbCatalog, NoDefinerViewsOverProtectedData) {
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('v','m') AND n.nspname NOT IN ('pg_catalog','information_schema') "
                         "AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)"),
            "0");
}

TEST(DbCatalog, ContextFunctionsAreDefinerWithPinnedSearchPath) {
  EXPECT_EQ(admin_scalar("SELECT string_agg(p.proname || ':' || p.prosecdef::text || ':' || array_to_string(p.proconfig, ';') "
                         "|| ':' || p.pronargs::text, ',' ORDER BY p.proname) FROM pg_proc p "
                         "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'larder_ctx'"),
            "clinician_hospitals:true:search_path=pg_catalog, pg_temp:0,patient_names:true:search_path=pg_catalog, pg_temp:0");
  EXPECT_EQ(admin_scalar("SELECT has_function_privilege('public', 'larder_ctx.patient_names()', 'EXECUTE')::text"), "false");
}

TEST(DbCatalog, LeakyCatalogViewsAreRevoked) {
  EXPECT_EQ(admin_scalar("SELECT has_table_privilege('patients', 'pg_catalog.pg_stats', 'SELECT')::text || "
                         "has_table_privilege('patients', 'pg_catalog.pg_stat_activity', 'SELECT')::text"),
            "falsefalse");
  EXPECT_EQ(admin_scalar("SELECT has_function_privilege('patients', 'pg_catalog.pg_terminate_backend(integer, bigint)', "
                         "'EXECUTE')::text"),
            "false");
}

TEST(DbCatalog, RlsPredicatesAreIndexed) {
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_indexes WHERE tablename = 'health_records' AND "
                         "(indexdef LIKE '%(\"Patient Name\")%' OR indexdef LIKE '%(\"Hospital\")%')"),
            "2");
}

TEST(DbCatalog, SetupIsIdempotent) {
  const auto& st = larder::test::shared_cluster()->state();
  db::SetupOptions so;
  so.query_password = st.query_password;
  so.writer_password = st.writer_password;
  auto r = db::apply_setup(st.admin("postgres"), so);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(admin_scalar("SELECT count(*) FROM pg_policies WHERE tablename = 'health_records'"), "2");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(500));
  return RUN_ALL_TESTS();
}
