// Lock 4: row-level security with the unforgeable per-request context. Every query here runs
// with the SQL guard DISABLED: the database layer alone must hold.
#include "db_test_env.h"

#include "policy/apply.h"

#include <atomic>
#include <functional>
#include <optional>
#include <thread>

using namespace larder;
using larder::test::admin_scalar;
using larder::test::clinician_ctx;
using larder::test::patient_ctx;
using larder::test::shared_cluster;

namespace {

constexpr const char* kHospital = "Cook PLC";

class DbRls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { db_ = new db::Database(shared_cluster()->database_config(4)); }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }

  static Result<db::QueryResult> run(const db::RequestContext& ctx, const std::string& sql,
                                     const std::vector<db::Param>& params = {}) {
    return db_->query(ctx, sql, params);
  }

  static long long count_rows(const db::RequestContext& ctx) {
    auto r = run(ctx, "SELECT count(*) FROM health_records");
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return -1;
    return std::stoll(*r->rows.at(0).at(0));
  }

  static long long admin_count(const std::string& column, const std::string& value) {
    return std::stoll(
        admin_scalar("SELECT count(*) FROM health_records WHERE \"" + column + "\" = $1", {value}));
  }

  // Either an error, or rows that all belong to the context (and no more than it may see).
  static void expect_only(const Result<db::QueryResult>& r, const std::string& column,
                          const std::string& value, const std::string& sql) {
    if (!r.ok()) return;  // refused: fine
    int idx = -1;
    for (std::size_t i = 0; i < r->columns.size(); ++i)
      if (r->columns[i].name == column) idx = static_cast<int>(i);
    for (const auto& row : r->rows) {
      if (idx >= 0) {
        ASSERT_TRUE(row[static_cast<std::size_t>(idx)].has_value()) << sql;
        EXPECT_EQ(*row[static_cast<std::size_t>(idx)], value) << sql;
      }
    }
  }

  static db::Database* db_;
};
db::Database* DbRls::db_ = nullptr;

TEST_F(DbRls, ErinSeesOnlyHerSeveralRecords) {
  auto r = run(patient_ctx({examples::kErinOrtega}), "SELECT * FROM health_records ORDER BY id");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(r->rows.size(), 5u);
  EXPECT_EQ(static_cast<long long>(r->rows.size()), admin_count("Patient Name", examples::kErinOrtega));
  expect_only(r, "Patient Name", examples::kErinOrtega, "select *");
  EXPECT_FALSE(r->truncated);
  ASSERT_EQ(r->columns.size(), 16u);
  EXPECT_EQ(r->columns[0].name, "id");
  EXPECT_EQ(r->columns[0].type, "bigint");
  EXPECT_EQ(r->columns[1].name, "Patient Name");
  EXPECT_EQ(r->columns[1].type, "text");
  EXPECT_EQ(r->columns[6].type, "date");
  EXPECT_EQ(r->columns[10].type, "numeric");
}

TEST_F(DbRls, DavidSeesOnlyHisRecords) {
  auto r = run(patient_ctx({examples::kDavidAnderson}),
               "SELECT \"Patient Name\", \"Hospital\" FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GE(r->rows.size(), 4u);
  EXPECT_EQ(static_cast<long long>(r->rows.size()), admin_count("Patient Name", examples::kDavidAnderson));
  expect_only(r, "Patient Name", examples::kDavidAnderson, "select");
}

TEST_F(DbRls, NameMatchingIsExact) {
  EXPECT_EQ(count_rows(patient_ctx({"erin ortega"})), 0);
  EXPECT_EQ(count_rows(patient_ctx({"Erin oRTEga "})), 0);
}

TEST_F(DbRls, ClinicianSeesOnlyTheirHospital) {
  auto r = run(clinician_ctx({"doctor"}, {kHospital}), "SELECT \"Hospital\" FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_GT(r->rows.size(), 0u);
  EXPECT_EQ(static_cast<long long>(r->rows.size()), admin_count("Hospital", kHospital));
  expect_only(r, "Hospital", kHospital, "select hospital");
}

TEST_F(DbRls, HospitalWithoutClinicalRoleSeesNothing) {
  EXPECT_EQ(count_rows(clinician_ctx({}, {kHospital})), 0);
  EXPECT_EQ(count_rows(clinician_ctx({"janitor", "patient"}, {kHospital})), 0);
  EXPECT_EQ(count_rows(clinician_ctx({"nurse"}, {})), 0);
}

TEST_F(DbRls, EmptyContextSeesZeroRows) {
  db::RequestContext empty;
  empty.guard_enabled = false;
  EXPECT_EQ(count_rows(empty), 0);
  auto r = run(empty, "SELECT * FROM health_records");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rows.size(), 0u);
  EXPECT_EQ(r->columns.size(), 16u);
}

TEST_F(DbRls, PatientAndClinicianContextsUnion) {
  auto ctx = clinician_ctx({"nurse"}, {kHospital});
  ctx.add("patient_name", examples::kErinOrtega);
  long long both = count_rows(ctx);
  long long erin_elsewhere = std::stoll(
      admin_scalar("SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1 AND \"Hospital\" <> $2",
                   {std::string(examples::kErinOrtega), std::string(kHospital)}));
  EXPECT_EQ(both, admin_count("Hospital", kHospital) + erin_elsewhere);
}

TEST_F(DbRls, ValuesWithQuotesAndBracesAreData) {
  EXPECT_EQ(count_rows(patient_ctx({"x\",\"Erin oRTEga", "{Erin oRTEga}", "\\", "'; --"})), 0);
  // The context travels as jsonb: values that look like JSON stay strings.
  EXPECT_EQ(count_rows(patient_ctx({"Erin oRTEga\"]], \"patient_name\": [[\"DAvID AndErSON",
                                    "[[\"Erin oRTEga\"]]", "{\"patient_name\": [[\"Erin oRTEga\"]]}"})),
            0);
  auto ctx = patient_ctx({});
  ctx.add("role", "doctor\"]], \"hospital\": [[\"Cook PLC");
  EXPECT_EQ(count_rows(ctx), 0);
}

TEST_F(DbRls, RlsPredicateIsAnIndexLookup) {
  auto r = run(patient_ctx({examples::kErinOrtega}), "EXPLAIN SELECT * FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string plan;
  for (const auto& row : r->rows) plan += *row[0] + "\n";
  EXPECT_NE(plan.find("health_records_patient_name_idx"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
}

// ---- the forgery battery: every statement runs under Erin's context ----

TEST_F(DbRls, ForgeryBatteryStatementsSeeOnlyEntitledRows) {
  const long long erin = admin_count("Patient Name", examples::kErinOrtega);
  const std::vector<std::string> attacks = {
      // The sealed context: emptied, replaced, or edited in place (the tag no longer matches).
      "SELECT set_config('larder.context', '', false), * FROM health_records",
      "SELECT * FROM health_records WHERE set_config('larder.context', 'x', true) IS NOT NULL",
      "SELECT * FROM health_records, (SELECT set_config('larder.context', '', true)) s",
      "SELECT * FROM health_records, (SELECT set_config('larder.context', "
      "replace(current_setting('larder.context'), "
      "'Erin oRTEga', 'DAvID AndErSON'), true)) s",
      "SELECT * FROM health_records, (SELECT set_config('larder.context', regexp_replace(current_setting("
      "'larder.context'), '\\[\"Erin oRTEga\"\\]', '[\"Erin oRTEga\",\"DAvID AndErSON\"]'), true)) s",
      "SELECT * FROM health_records, (SELECT set_config('larder.context', regexp_replace(current_setting("
      "'larder.context'), '\"e\":[0-9]+', '\"e\":99999999999999999'), true)) s",
      "SELECT set_config('role', 'larder_owner', false)",
      "SELECT set_config('role', 'postgres', true), * FROM health_records",
      "SELECT set_config('session_authorization', 'postgres', true)",
      "SET ROLE larder_owner",
      "SET ROLE postgres",
      "SET ROLE larder_context_writer",
      "SET SESSION AUTHORIZATION postgres",
      "SET SESSION AUTHORIZATION larder_context_writer",
      "SET row_security = off",
      "SELECT set_config('row_security', 'off', true), * FROM health_records",
      // The generated rule functions (r1: patient names, r2: clinician hospitals) and the lookup.
      "SELECT larder_ctx.r1('DAvID AndErSON')",
      "SELECT larder_ctx.r1(), larder_ctx.r2()",
      "SELECT * FROM health_records WHERE \"Patient Name\" = ANY (larder_ctx.r1())",
      "SELECT * FROM health_records WHERE \"Hospital\" = ANY (larder_ctx.r2()) OR \"Patient Name\" = ANY "
      "(larder_ctx.r1())",
      "SELECT larder_private.context()",
      "SELECT * FROM larder_private.context_keys",
      "SELECT id, key FROM larder_private.context_keys",
      "SELECT encode(ipad, 'hex') FROM larder_private.context_keys",
      "SELECT * FROM larder_private.rule_values",
      "SELECT * FROM larder_private.masks",
      "SELECT * FROM larder_private.applied",
      // Planting a key of one's own, or changing the real one.
      "INSERT INTO larder_private.context_keys (id, key, ipad, opad) VALUES (2, sha256('k'), "
      "decode(repeat('36', 64), 'hex'), decode(repeat('5c', 64), 'hex'))",
      "UPDATE larder_private.context_keys SET key = sha256('k')",
      "DELETE FROM larder_private.context_keys",
      "CREATE OR REPLACE FUNCTION larder_private.context() RETURNS jsonb LANGUAGE sql AS "
      "$$ SELECT '{\"patient_name\": [\"DAvID AndErSON\"]}'::jsonb $$",
      "INSERT INTO larder_private.rule_values VALUES (3, '{patient}')",
      "CREATE FUNCTION public.r1() RETURNS text[] LANGUAGE sql AS $$ SELECT '{DAvID AndErSON}'::text[] $$",
      "CREATE FUNCTION public.current_facts() RETURNS jsonb LANGUAGE sql AS "
      "$$ SELECT '{\"patient_name\": [\"DAvID AndErSON\"]}'::jsonb $$",
      "CREATE FUNCTION pg_temp.pg_backend_pid() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$",
      "CREATE TEMP TABLE health_records AS SELECT 1 AS id",
      "CREATE TEMP VIEW v AS SELECT * FROM health_records",
      "CREATE SCHEMA larder_ctx2",
      "ALTER TABLE health_records DISABLE ROW LEVEL SECURITY",
      "ALTER TABLE health_records NO FORCE ROW LEVEL SECURITY",
      "DROP POLICY larder_r1 ON health_records",
      "ALTER POLICY larder_r2 ON health_records USING (true)",
      "CREATE POLICY everyone ON health_records FOR SELECT USING (true)",
      "ALTER ROLE patients BYPASSRLS",
      "GRANT larder_owner TO patients",
      "GRANT larder_views TO patients",
      "SET ROLE larder_views",
      "ALTER FUNCTION larder_ctx.r1() SECURITY INVOKER",
      "CREATE OR REPLACE FUNCTION larder_ctx.r1() RETURNS text[] LANGUAGE sql AS $$ SELECT '{DAvID "
      "AndErSON}'::text[] $$",
      "CREATE FUNCTION pg_temp.transaction_timestamp() RETURNS timestamptz LANGUAGE sql AS $$ SELECT now() "
      "$$",
      "CREATE FUNCTION pg_temp.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$ SELECT "
      "''::text $$",
      "UPDATE health_records SET \"Patient Name\" = 'Erin oRTEga'",
      "INSERT INTO health_records (\"Patient Name\") VALUES ('x')",
      "DELETE FROM health_records",
      "TRUNCATE health_records",
      "SET TRANSACTION READ WRITE",
      "SET transaction_read_only = off",
      "COMMIT",
      "ROLLBACK",
      "BEGIN",
      "SELECT * FROM pg_stats WHERE tablename = 'health_records'",
      "SELECT * FROM pg_stat_activity",
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
      "SELECT pg_cancel_backend(1)",
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT * FROM pg_ls_dir('.')",
      "COPY health_records TO STDOUT",
      "COPY (SELECT * FROM health_records) TO STDOUT",
      "DO $$ BEGIN PERFORM set_config('larder.context', 'z', false); END $$",
      "SELECT lo_import('/etc/passwd')",
      "LOAD 'plpgsql'",
      "SELECT * FROM health_records WHERE \"Patient Name\" = 'DAvID AndErSON'",
      "SELECT * FROM health_records WHERE \"Hospital\" = 'Cook PLC' OR true",
      "SELECT * FROM ONLY public.health_records",
      "WITH x AS (SELECT * FROM health_records) SELECT * FROM x",
      "SELECT * FROM health_records TABLESAMPLE SYSTEM (100)",
      "TABLE health_records",
      "SELECT * FROM health_records; SELECT * FROM health_records",
      "SET statement_timeout = 0; SELECT * FROM health_records",
  };
  for (const auto& sql : attacks) {
    auto r = run(patient_ctx({examples::kErinOrtega}), sql);
    expect_only(r, "Patient Name", examples::kErinOrtega, sql);
    // Whatever reads or writes the context machinery, or changes a policy, function or role,
    // is refused outright (the query role has no USAGE on larder_private and owns nothing).
    const bool touches_machinery = sql.find("larder_private") != std::string::npos ||
                                   sql.find("FUNCTION larder_ctx") != std::string::npos ||
                                   sql.find("POLICY") != std::string::npos || sql.find("GRANT ") == 0 ||
                                   sql.find("ALTER ROLE") == 0;
    if (touches_machinery) {
      EXPECT_FALSE(r.ok()) << "not refused: " << sql;
    }
    if (r.ok()) {
      EXPECT_LE(static_cast<long long>(r->rows.size()), erin) << sql;
    }
    // And the session it ran on is left harmless: the next request still sees exactly its rows.
    EXPECT_EQ(count_rows(patient_ctx({examples::kDavidAnderson})),
              admin_count("Patient Name", examples::kDavidAnderson))
        << sql;
    db::RequestContext empty;
    empty.guard_enabled = false;
    EXPECT_EQ(count_rows(empty), 0) << "after: " << sql;
  }
}

TEST_F(DbRls, SessionLevelSettingsDoNotSurviveTheRequest) {
  // Attempts to leave state behind on a pooled session, then check the next requests.
  const std::vector<std::string> setups = {
      "SET larder.context = 'abcdefabcdefabcdefabcdefabcdefab'",
      "SELECT set_config('larder.context', current_setting('larder.context'), false)",
      "SET search_path = pg_temp, public",
      "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
      "SET default_transaction_read_only = off",
      "RESET ALL",
      "RESET larder.context",
      "DISCARD ALL",
      "PREPARE stolen AS SELECT * FROM health_records",
      "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM health_records",
  };
  for (const auto& sql : setups) {
    for (int i = 0; i < 4; ++i)
      (void)run(patient_ctx({examples::kErinOrtega}), sql);  // hit every pooled session
    db::RequestContext empty;
    empty.guard_enabled = false;
    EXPECT_EQ(count_rows(empty), 0) << sql;
    auto ins = run(empty, "INSERT INTO health_records (\"Patient Name\") VALUES ('x')");
    EXPECT_FALSE(ins.ok()) << sql;
    auto exec = run(patient_ctx({examples::kDavidAnderson}), "EXECUTE stolen");
    expect_only(exec, "Patient Name", examples::kDavidAnderson, "EXECUTE stolen after " + sql);
    auto fetch = run(empty, "FETCH ALL FROM c");
    if (fetch.ok()) {
      EXPECT_EQ(fetch->rows.size(), 0u) << sql;
    }
  }
}

TEST_F(DbRls, ReplayingACapturedContextGivesNothing) {
  // The query role can read the sealed value of its own request (current_setting): captured
  // under Erin, it opens nothing in any later request, on any pooled session.
  auto captured = run(patient_ctx({examples::kErinOrtega}), "SELECT current_setting('larder.context')");
  ASSERT_TRUE(captured.ok()) << captured.error().message;
  ASSERT_EQ(captured->rows.size(), 1u);
  const std::string sealed = *captured->rows[0][0];
  EXPECT_EQ(sealed.substr(64, 15), ".larder-ctx-v1.") << sealed;
  EXPECT_NE(sealed.find("Erin oRTEga"), std::string::npos) << sealed;
  db::RequestContext empty;
  empty.guard_enabled = false;
  for (int i = 0; i < 6; ++i) {  // every pooled session
    for (const char* local : {"false", "true"}) {
      auto r =
          run(empty,
              std::string("SELECT count(*) FROM health_records, (SELECT set_config('larder.context', $1, ") +
                  local + ")) s",
              {sealed});
      if (r.ok()) {
        EXPECT_EQ(*r->rows[0][0], "0");
      } else {
        EXPECT_EQ(r.error().code, "db.bad_context") << r.error().message;
      }
    }
    auto r2 = run(patient_ctx({examples::kDavidAnderson}),
                  "SELECT \"Patient Name\" FROM health_records WHERE set_config('larder.context', $1, true) "
                  "IS NOT NULL",
                  {sealed});
    expect_only(r2, "Patient Name", examples::kDavidAnderson, "replay under david");
    // And the session is fine afterwards.
    EXPECT_EQ(count_rows(patient_ctx({examples::kErinOrtega})),
              admin_count("Patient Name", examples::kErinOrtega));
  }
}

// The newest request-context key, read as the superuser (the query role cannot).
db::ContextKey admin_context_key() {
  auto key = db::parse_context_key(admin_scalar("SELECT max(id)::text FROM larder_private.context_keys"),
                                   admin_scalar("SELECT encode(key, 'hex') FROM larder_private.context_keys "
                                                "ORDER BY id DESC LIMIT 1"));
  if (!key) throw std::runtime_error(key.error().message);
  return *key;
}

TEST_F(DbRls, TheSealedContextHoldsOnlyInItsTransactionUnderItsKeyUntilItsDeadline) {
  // Sealed values made by hand, exactly as Larder makes them, tried on raw query connections.
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  const auto& st = shared_cluster()->state();
  auto q1 = st.query().connect(deadline);
  auto q2 = st.query().connect(deadline);
  ASSERT_TRUE(q1.ok() && q2.ok());
  const db::ContextKey key = admin_context_key();
  const std::string erin_facts = R"({"patient_name":["Erin oRTEga"]})";
  auto bind = [&](PGconn* c) {
    auto r = db::exec_params(c, db::kBindTransactionSql, {}, deadline);
    EXPECT_TRUE(r.ok());
    if (!r) return db::TransactionBinding{};
    return db::TransactionBinding{PQgetvalue(r->get(), 0, 0), PQgetvalue(r->get(), 0, 1),
                                  std::atoll(PQgetvalue(r->get(), 0, 2))};
  };
  // In a fresh transaction on `c`: make the value (from that transaction's binding), set it
  // and count. "error" when the server refuses the context (or anything else fails).
  auto count_with = [&](PGconn* c,
                        const std::function<std::optional<std::string>(const db::TransactionBinding&)>& make)
      -> std::string {
    EXPECT_TRUE(db::exec_script(c, "BEGIN READ ONLY", deadline).ok());
    const auto b = bind(c);
    if (auto value = make(b)) {
      auto s = db::exec_params(c, "SELECT set_config('larder.context', $1, true)", {*value}, deadline);
      EXPECT_TRUE(s.ok());
    }
    auto r = db::exec_params(c, "SELECT count(*) FROM health_records", {}, deadline);
    std::string state = r ? "" : r.error().message;
    (void)db::exec_script(c, "ROLLBACK", deadline);
    return r ? std::string(PQgetvalue(r->get(), 0, 0)) : "error";
  };
  const long long hour = 3'600'000'000LL;
  auto sealed = [&](const std::string& facts, long long ttl_us = 3'600'000'000LL) {
    return [&, facts, ttl_us](const db::TransactionBinding& b) -> std::optional<std::string> {
      return db::seal_context(key, b, b.now_us + ttl_us, facts);
    };
  };
  const std::string erin = std::to_string(admin_count("Patient Name", examples::kErinOrtega));
  EXPECT_EQ(count_with(q1->get(), sealed(erin_facts)), erin);  // made for this transaction
  EXPECT_EQ(count_with(q1->get(), [](const auto&) { return std::nullopt; }), "0");   // none: no context
  EXPECT_EQ(count_with(q1->get(), [](const auto&) { return std::string(); }), "0");  // empty: no context

  // Made for another transaction: another backend (q2), or an earlier transaction on this one.
  db::TransactionBinding other_backend;
  ASSERT_TRUE(db::exec_script(q2->get(), "BEGIN READ ONLY", deadline).ok());
  other_backend = bind(q2->get());
  (void)db::exec_script(q2->get(), "ROLLBACK", deadline);
  EXPECT_EQ(
      count_with(q1->get(),
                 [&](const auto& b) {
                   auto x = other_backend;
                   x.now_us = b.now_us;
                   return std::optional<std::string>(db::seal_context(key, x, b.now_us + hour, erin_facts));
                 }),
      "error");
  db::TransactionBinding earlier;
  EXPECT_EQ(
      count_with(q1->get(),
                 [&](const auto& b) {
                   earlier = b;
                   return std::optional<std::string>(db::seal_context(key, b, b.now_us + hour, erin_facts));
                 }),
      erin);
  EXPECT_EQ(count_with(q1->get(),
                       [&](const auto& b) {
                         return std::optional<std::string>(
                             db::seal_context(key, earlier, b.now_us + hour, erin_facts));
                       }),
            "error");
  // Same pid, a start one microsecond off.
  EXPECT_EQ(
      count_with(q1->get(),
                 [&](const auto& b) {
                   auto x = b;
                   x.xact_us = std::to_string(std::stoll(b.xact_us) + 1);
                   return std::optional<std::string>(db::seal_context(key, x, b.now_us + hour, erin_facts));
                 }),
      "error");
  // Past its deadline.
  EXPECT_EQ(count_with(q1->get(), sealed(erin_facts, -1)), "error");
  // Another key under the real key's id, an unknown key id, a tampered message or tag.
  db::ContextKey forged = key;
  forged.bytes[0] ^= 1;
  EXPECT_EQ(count_with(q1->get(),
                       [&](const auto& b) {
                         return std::optional<std::string>(
                             db::seal_context(forged, b, b.now_us + hour, erin_facts));
                       }),
            "error");
  db::ContextKey unknown = key;
  unknown.id = 77;
  EXPECT_EQ(count_with(q1->get(),
                       [&](const auto& b) {
                         return std::optional<std::string>(
                             db::seal_context(unknown, b, b.now_us + hour, erin_facts));
                       }),
            "error");
  auto tampered = [&](std::function<void(std::string&)> edit) {
    return [&, edit](const db::TransactionBinding& b) -> std::optional<std::string> {
      std::string v = db::seal_context(key, b, b.now_us + hour, erin_facts);
      edit(v);
      return v;
    };
  };
  EXPECT_EQ(count_with(q1->get(), tampered([](std::string& v) { v[0] = v[0] == 'a' ? 'b' : 'a'; })), "error");
  EXPECT_EQ(count_with(q1->get(), tampered([](std::string& v) {
                         v.replace(v.find("Erin oRTEga"), 11, "DAvID AndErSON");
                       })),
            "error");
  EXPECT_EQ(count_with(q1->get(), tampered([](std::string& v) { v.insert(v.find("\"f\""), " "); })), "error");
  for (const char* malformed :
       {"x", "larder-ctx-v1.1.{}", ".", "0000000000000000000000000000000000000000000000000000000000000000.",
        "0000000000000000000000000000000000000000000000000000000000000000.larder-ctx-v1.1.{}",
        "0000000000000000000000000000000000000000000000000000000000000000.larder-ctx-v1.x.{}",
        "0000000000000000000000000000000000000000000000000000000000000000.larder-ctx-v2.1.{}"}) {
    EXPECT_EQ(count_with(q1->get(), [&](const auto&) { return std::optional<std::string>(malformed); }),
              "error")
        << malformed;
  }
  // Facts of an unexpected shape, correctly sealed, open nothing: no row or an error.
  const std::string hosp = std::to_string(admin_count("Hospital", kHospital));
  EXPECT_EQ(count_with(q1->get(), sealed(R"({"role":["doctor"],"hospital":["Cook PLC"]})")), hosp);
  for (const char* facts : {
           R"({"hospital": ["Cook PLC"]})",                          // no role
           R"({"role": ["janitor"], "hospital": ["Cook PLC"]})",     // not a clinical role
           R"({"role": ["doctor"]})",                                // no hospital
           R"({"role": "doctor", "hospital": "Cook PLC"})",          // scalars, not tuple lists
           R"({"role": [["doctor"]], "hospital": [["Cook PLC"]]})",  // nested one level too deep
           R"({"Role": ["doctor"], "Hospital": ["Cook PLC"]})",      // names are exact
           R"({"patient_name": "Erin oRTEga"})",
           R"({"patient_name": [null]})",
           R"({"patient_name": []})",
           R"({"patient_name": ["erin ortega"]})",
           R"({})",
           R"([])",
           R"("Erin oRTEga")",
           R"(null)",
       }) {
    const std::string n = count_with(q1->get(), sealed(facts));
    EXPECT_TRUE(n == "0" || n == "error") << facts << " -> " << n;
  }
  // The query role reads neither the key nor the context function.
  for (const char* sql : {"SELECT key FROM larder_private.context_keys", "SELECT larder_private.context()"}) {
    auto r = db::exec_params(q1->get(), sql, {}, deadline);
    EXPECT_FALSE(r.ok()) << sql;
  }
  EXPECT_EQ(count_with(q1->get(), sealed(erin_facts)), erin);  // and the connection still works
}

TEST_F(DbRls, ConcurrentRequestsNeverSeeEachOthersRows) {
  const long long erin = admin_count("Patient Name", examples::kErinOrtega);
  const long long david = admin_count("Patient Name", examples::kDavidAnderson);
  const long long hosp = admin_count("Hospital", kHospital);
  std::atomic<int> wrong{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        db::RequestContext ctx;
        long long expect = 0;
        switch ((t + i) % 4) {
          case 0:
            ctx = patient_ctx({examples::kErinOrtega});
            expect = erin;
            break;
          case 1:
            ctx = patient_ctx({examples::kDavidAnderson});
            expect = david;
            break;
          case 2:
            ctx = clinician_ctx({"clinician"}, {kHospital});
            expect = hosp;
            break;
          default:
            ctx.guard_enabled = false;
            expect = 0;
            break;
        }
        auto r = db_->query(ctx, "SELECT count(*) FROM health_records");
        if (!r.ok()) {
          ++errors;
          continue;
        }
        if (std::stoll(*r->rows[0][0]) != expect) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
}

// ---- lock 3 runtime: deadline, caps ----

TEST_F(DbRls, DeadlineCancelsSleepWhateverStatementTimeoutSays) {
  const std::vector<std::string> sleepers = {
      "SELECT pg_sleep(30)",
      "SELECT set_config('statement_timeout', '0', true), pg_sleep(30)",
      "SELECT set_config('statement_timeout', '0', false), pg_sleep(30) FROM health_records",
      "SET statement_timeout = 0; SELECT pg_sleep(30)",
  };
  (void)run(patient_ctx({examples::kErinOrtega}), "SET statement_timeout = 0");
  for (const auto& sql : sleepers) {
    auto before = db_->stats().watchdog_cancels;
    auto ctx = patient_ctx({examples::kErinOrtega});
    ctx.deadline = db::Clock::now() + std::chrono::milliseconds(800);
    auto start = db::Clock::now();
    auto r = run(ctx, sql);
    auto elapsed = db::Clock::now() - start;
    ASSERT_FALSE(r.ok()) << sql;
    EXPECT_LT(elapsed, std::chrono::seconds(15)) << sql;  // generous: 30 s sleeps were cut short
    if (r.error().message.find("deadline exceeded") != std::string::npos) {
      // Sent, then cancelled: the statement may have read rows (db.statement).
      EXPECT_EQ(r.error().code, db::kStatementError) << sql;
      EXPECT_GT(db_->stats().watchdog_cancels, before) << sql;
    } else {
      EXPECT_NE(sql.find(';'), std::string::npos)
          << r.error().code << ": " << r.error().message;  // multi-statement refused
    }
    EXPECT_EQ(count_rows(patient_ctx({examples::kErinOrtega})),
              admin_count("Patient Name", examples::kErinOrtega));
  }
}

TEST_F(DbRls, RowCapTruncates) {
  auto ctx = clinician_ctx({"doctor"}, {kHospital});
  ctx.max_rows = 3;
  auto r = run(ctx, "SELECT * FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->rows.size(), 3u);
  EXPECT_TRUE(r->truncated);
  auto j = r->to_json();
  EXPECT_EQ(j["row_count"], 3);
  EXPECT_EQ(j["truncated"], true);
}

TEST_F(DbRls, ByteCapTruncates) {
  auto ctx = clinician_ctx({"doctor"}, {kHospital});
  ctx.max_bytes = 1500;  // counted as JSON: every value with its column name (16 per row)
  auto r = run(ctx, "SELECT * FROM health_records");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->truncated);
  EXPECT_GE(r->rows.size(), 1u);
  EXPECT_LT(r->rows.size(), 10u);
}

TEST_F(DbRls, HugeResultIsCutShortNotAnError) {
  auto ctx = clinician_ctx({"doctor"}, {kHospital});
  ctx.max_rows = 5;
  auto r = run(ctx, "SELECT h.id, g FROM health_records h, generate_series(1, 100000) g");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->rows.size(), 5u);
  EXPECT_TRUE(r->truncated);
}

TEST_F(DbRls, ParametersAreBoundNotSpliced) {
  auto r = run(patient_ctx({examples::kErinOrtega}),
               "SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
               {std::string("Erin oRTEga' OR '1'='1")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r->rows[0][0], "0");
  auto r2 = run(patient_ctx({examples::kErinOrtega}), "SELECT $1::int + 1 AS n, $2::text IS NULL AS isnull",
                {std::string("41"), std::nullopt});
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  auto j = r2->to_json();
  EXPECT_EQ(j["rows"][0]["n"], 42);
  EXPECT_EQ(j["rows"][0]["isnull"], true);
}

TEST_F(DbRls, CachedStatementsFollowTheCurrentContext) {
  // The same guarded SQL many times under alternating contexts: the prepared statement is
  // reused per session, the RLS context is read per execution.
  const std::string sql = "SELECT \"Patient Name\", count(*) AS n FROM health_records GROUP BY 1";
  for (int i = 0; i < 24; ++i) {
    auto ctx = patient_ctx({i % 2 == 0 ? examples::kErinOrtega : examples::kDavidAnderson});
    ctx.guard_enabled = true;
    auto r = run(ctx, sql);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->rows.size(), 1u);
    EXPECT_EQ(*r->rows[0][0], i % 2 == 0 ? examples::kErinOrtega : examples::kDavidAnderson);
    db::RequestContext empty;
    empty.guard_enabled = true;
    auto none = run(empty, sql);
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->rows.size(), 0u);
  }
}

TEST_F(DbRls, GuardedQueriesRunThroughTheGuard) {
  auto ctx = patient_ctx({examples::kErinOrtega});
  ctx.guard_enabled = true;
  auto ok = run(ctx, "SELECT \"Patient Name\", \"Age\" FROM health_records");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  expect_only(ok, "Patient Name", examples::kErinOrtega, "guarded");
  auto bad = run(ctx, "SELECT set_config('larder.request_nonce', 'x', true)");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code.rfind("sql_guard", 0), 0u) << bad.error().code;
}

TEST_F(DbRls, AGuardVerdictRunsOnlyOnTheDatabaseWhoseGuardGaveIt) {
  // The server checks the SQL once (for the table facts) and hands the verdict on: it runs
  // the text it was given, under RLS, without a second parse...
  auto ctx = patient_ctx({examples::kErinOrtega});
  auto checked = db_->guard().check("SELECT \"Patient Name\" FROM health_records");
  ASSERT_TRUE(checked.ok()) << checked.error().message;
  EXPECT_EQ(checked->sql(), "SELECT \"Patient Name\" FROM health_records");
  auto r = db_->query(ctx, *checked);
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_only(r, "Patient Name", examples::kErinOrtega, "pre-checked");
  // ...but a verdict from a guard with another policy (here: one that admits a private
  // table) is not this database's verdict, and is refused before anything runs.
  db::GuardPolicy lax = db_->config().guard_policy;
  lax.allowed_relations.insert("larder_private.request_context");
  db::SqlGuard other(lax);
  auto foreign = other.check("SELECT * FROM larder_private.request_context");
  ASSERT_TRUE(foreign.ok()) << foreign.error().message;
  auto refused = db_->query(ctx, *foreign);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "sql_guard.internal");
}

// --- The context key: read once, read again after a rotation ---

long long count_on(db::Database& database, const db::RequestContext& ctx) {
  auto r = database.query(ctx, "SELECT count(*) FROM health_records");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::stoll(*r->rows.at(0).at(0)) : -1;
}

TEST(DbContextKey, ARotatedKeyIsPickedUpAndARetiredOneRefusedWithACleanError) {
  const long long erin_rows =
      std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
                              {std::string(examples::kErinOrtega)}));
  db::Database database(shared_cluster()->database_config(2));
  const auto erin = patient_ctx({examples::kErinOrtega});
  EXPECT_EQ(count_on(database, erin), erin_rows);
  auto admin = shared_cluster()->state().admin().connect(db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(admin.ok());
  // A new key (`larder policy rotate-key`): the server keeps sealing with the one it read,
  // which the database still accepts — no request is refused.
  auto added = policy::add_context_key(admin->get(), db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(count_on(database, erin), erin_rows);
  // Retired too early (`larder policy retire-keys --min-age 0`, against the advice): the server
  // still seals with the old key, which the database now refuses — a typed error, never rows —
  // and reads the key again for the next call.
  auto retired = policy::retire_context_keys(admin->get(), std::chrono::seconds(0),
                                             db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(retired.ok()) << retired.error().message;
  EXPECT_EQ(retired->retired, 1);
  EXPECT_EQ(retired->newest, *added);
  auto refused = database.query(erin, "SELECT count(*) FROM health_records");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "db.bad_context") << refused.error().message;
  EXPECT_EQ(refused.error().message.find("Erin"), std::string::npos);
  EXPECT_EQ(count_on(database, erin), erin_rows);
  EXPECT_EQ(count_on(database, erin), erin_rows);
}

TEST(DbContextKey, WithoutAKeyNothingRunsAndTheErrorSaysHowToMakeOne) {
  const std::string saved = admin_scalar(
      "SELECT json_agg(json_build_array(id, encode(key, 'hex'), encode(ipad, 'hex'), encode(opad, "
      "'hex')))::text "
      "FROM larder_private.context_keys");
  admin_scalar("DELETE FROM larder_private.context_keys");
  {
    db::Database database(shared_cluster()->database_config(1));
    auto r = database.query(patient_ctx({examples::kErinOrtega}), "SELECT count(*) FROM health_records");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "db.no_context_key");
    EXPECT_NE(r.error().message.find("larder policy apply"), std::string::npos) << r.error().message;
    EXPECT_FALSE(database.check_connectivity(db::Clock::now() + std::chrono::seconds(10)).ok());
  }
  admin_scalar(
      "INSERT INTO larder_private.context_keys (id, key, ipad, opad) SELECT (e->>0)::int, decode(e->>1, "
      "'hex'), "
      "decode(e->>2, 'hex'), decode(e->>3, 'hex') FROM json_array_elements($1::json) e",
      {saved});
  db::Database database(shared_cluster()->database_config(1));
  EXPECT_GT(count_on(database, patient_ctx({examples::kErinOrtega})), 0);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(5000));
  return RUN_ALL_TESTS();
}
