// Lock 4: row-level security with the unforgeable per-request context. Every query here runs
// with the SQL guard DISABLED: the database layer alone must hold.
#include "db_test_env.h"

#include <atomic>
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
    return std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"" + column + "\" = $1", {value}));
  }

  // Either an error, or rows that all belong to the context (and no more than it may see).
  static void expect_only(const Result<db::QueryResult>& r, const std::string& column, const std::string& value,
                          const std::string& sql) {
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
  auto r = run(patient_ctx({examples::kDavidAnderson}), "SELECT \"Patient Name\", \"Hospital\" FROM health_records");
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
  long long erin_elsewhere =
      std::stoll(admin_scalar("SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1 AND \"Hospital\" <> $2",
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
      "SELECT set_config('larder.request_nonce', 'forged-forged-forged-forged-forged', false), * FROM health_records",
      "SELECT * FROM health_records WHERE set_config('larder.request_nonce', 'x', true) IS NOT NULL",
      "SELECT * FROM health_records, (SELECT set_config('larder.request_nonce', 'y', true)) s",
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
      "SELECT * FROM health_records WHERE \"Hospital\" = ANY (larder_ctx.r2()) OR \"Patient Name\" = ANY (larder_ctx.r1())",
      "SELECT larder_private.current_facts()",
      "SELECT * FROM larder_private.request_context",
      "SELECT * FROM larder_private.rule_values",
      "SELECT * FROM larder_private.masks",
      "SELECT * FROM larder_private.applied",
      // Forging the context row's facts (jsonb), whole or in part.
      "INSERT INTO larder_private.request_context VALUES (pg_backend_pid(), repeat('a', 32), "
      "'{\"patient_name\": [\"DAvID AndErSON\"]}', now() + interval '1 hour')",
      "INSERT INTO larder_private.request_context (pid, nonce, facts, expires_at) VALUES (pg_backend_pid(), "
      "current_setting('larder.request_nonce'), '{\"role\": [\"doctor\"], \"hospital\": [\"Cook PLC\"]}', "
      "now() + interval '1 hour') ON CONFLICT (pid) DO UPDATE SET facts = EXCLUDED.facts",
      "UPDATE larder_private.request_context SET facts = '{\"patient_name\": [\"DAvID AndErSON\"]}'",
      "UPDATE larder_private.request_context SET facts = facts || '{\"role\": [\"nurse\"], "
      "\"hospital\": [\"Cook PLC\"]}'::jsonb WHERE pid = pg_backend_pid()",
      "UPDATE larder_private.request_context SET expires_at = 'infinity'",
      "DELETE FROM larder_private.request_context",
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
      "CREATE OR REPLACE FUNCTION larder_ctx.r1() RETURNS text[] LANGUAGE sql AS $$ SELECT '{DAvID AndErSON}'::text[] $$",
      "CREATE OR REPLACE FUNCTION larder_private.current_facts() RETURNS jsonb LANGUAGE sql AS "
      "$$ SELECT '{\"patient_name\": [\"DAvID AndErSON\"]}'::jsonb $$",
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
      "DO $$ BEGIN PERFORM set_config('larder.request_nonce', 'z', false); END $$",
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
    EXPECT_EQ(count_rows(patient_ctx({examples::kDavidAnderson})), admin_count("Patient Name", examples::kDavidAnderson)) << sql;
    db::RequestContext empty;
    empty.guard_enabled = false;
    EXPECT_EQ(count_rows(empty), 0) << "after: " << sql;
  }
}

TEST_F(DbRls, SessionLevelSettingsDoNotSurviveTheRequest) {
  // Attempts to leave state behind on a pooled session, then check the next requests.
  const std::vector<std::string> setups = {
      "SET larder.request_nonce = 'abcdefabcdefabcdefabcdefabcdefab'",
      "SELECT set_config('larder.request_nonce', current_setting('larder.request_nonce'), false)",
      "SET search_path = pg_temp, public",
      "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
      "SET default_transaction_read_only = off",
      "RESET ALL",
      "RESET larder.request_nonce",
      "DISCARD ALL",
      "PREPARE stolen AS SELECT * FROM health_records",
      "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM health_records",
  };
  for (const auto& sql : setups) {
    for (int i = 0; i < 4; ++i) (void)run(patient_ctx({examples::kErinOrtega}), sql);  // hit every pooled session
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

TEST_F(DbRls, ReplayingACapturedNonceGivesNothing) {
  auto captured = run(patient_ctx({examples::kErinOrtega}), "SELECT current_setting('larder.request_nonce')");
  ASSERT_TRUE(captured.ok()) << captured.error().message;
  ASSERT_EQ(captured->rows.size(), 1u);
  std::string nonce = *captured->rows[0][0];
  EXPECT_EQ(nonce.size(), 32u);
  db::RequestContext empty;
  empty.guard_enabled = false;
  for (int i = 0; i < 6; ++i) {  // every pooled session
    auto r = run(empty,
                 "SELECT count(*) FROM health_records, (SELECT set_config('larder.request_nonce', $1, false)) s",
                 {nonce});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r->rows[0][0], "0");
    auto r2 = run(patient_ctx({examples::kDavidAnderson}),
                  "SELECT \"Patient Name\" FROM health_records WHERE set_config('larder.request_nonce', $1, true) "
                  "IS NOT NULL",
                  {nonce});
    expect_only(r2, "Patient Name", examples::kDavidAnderson, "replay under david");
  }
}

TEST_F(DbRls, ContextRowIsBoundToPidNonceAndExpiry) {
  // A hand-written context row, as the writer would write it, checked from raw connections.
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  const auto& st = shared_cluster()->state();
  auto q1 = st.query().connect(deadline);
  auto q2 = st.query().connect(deadline);
  auto w = st.writer().connect(deadline);
  ASSERT_TRUE(q1.ok() && q2.ok() && w.ok());
  int pid1 = PQbackendPID(q1->get());
  std::string nonce(32, 'n');
  auto put = [&](int pid, const std::string& expiry) {
    auto r = db::exec_params(w->get(),
                             "INSERT INTO larder_private.request_context (pid, nonce, facts, expires_at) "
                             "VALUES ($1::int, $2, '{\"patient_name\": [\"Erin oRTEga\"]}', "
                             "clock_timestamp() + $3::interval) ON CONFLICT (pid) DO UPDATE SET expires_at = "
                             "EXCLUDED.expires_at, nonce = EXCLUDED.nonce, facts = EXCLUDED.facts",
                             {std::to_string(pid), nonce, expiry}, deadline);
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  auto put_facts = [&](int pid, const std::string& facts) {
    auto r = db::exec_params(w->get(),
                             "INSERT INTO larder_private.request_context (pid, nonce, facts, expires_at) "
                             "VALUES ($1::int, $2, $3::jsonb, clock_timestamp() + interval '1 hour') "
                             "ON CONFLICT (pid) DO UPDATE SET expires_at = EXCLUDED.expires_at, nonce = EXCLUDED.nonce, "
                             "facts = EXCLUDED.facts",
                             {std::to_string(pid), nonce, facts}, deadline);
    ASSERT_TRUE(r.ok()) << r.error().message;
  };
  auto count_on = [&](PGconn* c, const std::optional<std::string>& n) -> std::string {
    auto b = db::exec_script(c, "BEGIN READ ONLY", deadline);
    EXPECT_TRUE(b.ok());
    if (n) {
      auto s = db::exec_params(c, "SELECT set_config('larder.request_nonce', $1, true)", {*n}, deadline);
      EXPECT_TRUE(s.ok());
    }
    auto r = db::exec_params(c, "SELECT count(*) FROM health_records", {}, deadline);
    (void)db::exec_script(c, "ROLLBACK", deadline);
    return r ? std::string(PQgetvalue(r->get(), 0, 0)) : "error";
  };
  const std::string erin = std::to_string(admin_count("Patient Name", examples::kErinOrtega));
  put(pid1, "1 hour");
  EXPECT_EQ(count_on(q1->get(), nonce), erin);                   // the bound backend with the nonce
  EXPECT_EQ(count_on(q1->get(), std::nullopt), "0");             // no nonce in this transaction
  EXPECT_EQ(count_on(q1->get(), std::string(32, 'm')), "0");     // wrong nonce
  EXPECT_EQ(count_on(q2->get(), nonce), "0");                    // another backend (pid) with the nonce
  put(pid1, "-1 second");
  EXPECT_EQ(count_on(q1->get(), nonce), "0");                    // expired
  auto del = db::exec_params(w->get(), "DELETE FROM larder_private.request_context WHERE pid = $1::int",
                             {std::to_string(pid1)}, deadline);
  EXPECT_TRUE(del.ok());
  EXPECT_EQ(count_on(q1->get(), nonce), "0");                    // deleted
  // Facts of an unexpected shape open nothing: either no row or an error, never more rows.
  const std::string hosp = std::to_string(admin_count("Hospital", kHospital));
  put_facts(pid1, R"({"role": ["doctor"], "hospital": ["Cook PLC"]})");
  EXPECT_EQ(count_on(q1->get(), nonce), hosp);                   // the clinician rule, for comparison
  for (const char* facts : {
           R"({"hospital": ["Cook PLC"]})",                           // no role
           R"({"role": ["janitor"], "hospital": ["Cook PLC"]})",    // not a clinical role
           R"({"role": ["doctor"]})",                                 // no hospital
           R"({"role": "doctor", "hospital": "Cook PLC"})",             // scalars, not tuple lists
           R"({"role": [["doctor"]], "hospital": [["Cook PLC"]]})",     // nested one level too deep
           R"({"Role": ["doctor"], "Hospital": ["Cook PLC"]})",     // names are exact
           R"({"patient_name": "Erin oRTEga"})",
           R"({"patient_name": [null]})",
           R"({"patient_name": []})",
           R"({"patient_name": ["erin ortega"]})",
           R"({})",
           R"([])",
           R"("Erin oRTEga")",
           R"(null)",
       }) {
    put_facts(pid1, facts);
    const std::string n = count_on(q1->get(), nonce);
    EXPECT_TRUE(n == "0" || n == "error") << facts << " -> " << n;
  }
  auto del2 = db::exec_params(w->get(), "DELETE FROM larder_private.request_context WHERE pid = $1::int",
                              {std::to_string(pid1)}, deadline);
  EXPECT_TRUE(del2.ok());
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
          case 0: ctx = patient_ctx({examples::kErinOrtega}); expect = erin; break;
          case 1: ctx = patient_ctx({examples::kDavidAnderson}); expect = david; break;
          case 2: ctx = clinician_ctx({"clinician"}, {kHospital}); expect = hosp; break;
          default: ctx.guard_enabled = false; expect = 0; break;
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
      EXPECT_NE(sql.find(';'), std::string::npos) << r.error().code << ": " << r.error().message;  // multi-statement refused
    }
    EXPECT_EQ(count_rows(patient_ctx({examples::kErinOrtega})), admin_count("Patient Name", examples::kErinOrtega));
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
  auto r = run(patient_ctx({examples::kErinOrtega}), "SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1",
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

// --- Keeping the context row while the context repeats (DatabaseConfig::context_lease) ---

// The row a session's query backend has, as the superuser sees it: "nonce xmin", or "" for none.
std::string context_row(int pid) {
  return admin_scalar("SELECT nonce || ' ' || xmin::text FROM larder_private.request_context WHERE pid = $1::int",
                      {std::to_string(pid)});
}

int backend_pid(db::Database& database, const db::RequestContext& ctx) {
  auto r = database.query(ctx, "SELECT pg_backend_pid()");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::stoi(*r->rows.at(0).at(0)) : -1;
}

long long count_on(db::Database& database, const db::RequestContext& ctx) {
  auto r = database.query(ctx, "SELECT count(*) FROM health_records");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::stoll(*r->rows.at(0).at(0)) : -1;
}

db::DatabaseConfig one_session(std::chrono::milliseconds lease) {
  auto c = shared_cluster()->database_config(1);
  c.context_lease = lease;
  return c;
}

TEST(DbContextLease, TheRowStaysWhileTheContextRepeatsAndIsRewrittenWhenItChanges) {
  db::Database database(one_session(std::chrono::seconds(30)));
  const auto erin = patient_ctx({examples::kErinOrtega});
  const auto david = patient_ctx({examples::kDavidAnderson});
  const int pid = backend_pid(database, erin);
  const std::string first = context_row(pid);
  ASSERT_FALSE(first.empty());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(count_on(database, erin), std::stoll(admin_scalar(
        "SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1", {std::string(examples::kErinOrtega)})));
    EXPECT_EQ(context_row(pid), first) << "same context: no write on the context writer";
  }
  EXPECT_EQ(count_on(database, david), std::stoll(admin_scalar(
      "SELECT count(*) FROM health_records WHERE \"Patient Name\" = $1", {std::string(examples::kDavidAnderson)})));
  const std::string second = context_row(pid);
  EXPECT_NE(second, first);
  EXPECT_NE(second.substr(0, 32), first.substr(0, 32)) << "another context gets a fresh nonce";
  db::RequestContext empty;
  empty.guard_enabled = false;
  EXPECT_EQ(count_on(database, empty), 0);
  EXPECT_NE(context_row(pid), second);
}

TEST(DbContextLease, ANonceCapturedUnderOneContextOpensNothingOnceItChanges) {
  db::Database database(one_session(std::chrono::seconds(30)));
  const auto erin = patient_ctx({examples::kErinOrtega});
  auto captured = database.query(erin, "SELECT current_setting('larder.request_nonce')");
  ASSERT_TRUE(captured.ok()) << captured.error().message;
  const std::string nonce = *captured->rows.at(0).at(0);
  // Same context, kept row: the same nonce — it opens nothing the context does not already see.
  auto again = database.query(erin, "SELECT current_setting('larder.request_nonce')");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->rows.at(0).at(0), nonce);
  const std::string replay =
      "SELECT \"Patient Name\" FROM health_records, (SELECT set_config('larder.request_nonce', $1, true)) s";
  auto under_david = database.query(patient_ctx({examples::kDavidAnderson}), replay, {nonce});
  ASSERT_TRUE(under_david.ok()) << under_david.error().message;
  for (const auto& row : under_david->rows) EXPECT_EQ(*row.at(0), examples::kDavidAnderson);
  db::RequestContext empty;
  empty.guard_enabled = false;
  auto under_nobody = database.query(empty, replay, {nonce});
  ASSERT_TRUE(under_nobody.ok()) << under_nobody.error().message;
  EXPECT_EQ(under_nobody->rows.size(), 0u);
}

TEST(DbContextLease, ALeaseThatWouldEndDuringTheRequestIsRenewed) {
  // A 1 ms lease never outlives the next request's deadline: every request rewrites the row.
  db::Database database(one_session(std::chrono::milliseconds(1)));
  const auto erin = patient_ctx({examples::kErinOrtega});
  const int pid = backend_pid(database, erin);
  std::string last = context_row(pid);
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(count_on(database, erin), 0);
    const std::string now = context_row(pid);
    EXPECT_NE(now, last);
    last = now;
  }
}

TEST(DbContextLease, WithoutALeaseTheRowLastsOneRequest) {
  db::Database database(one_session(std::chrono::milliseconds(0)));
  const auto erin = patient_ctx({examples::kErinOrtega});
  const int pid = backend_pid(database, erin);
  EXPECT_GT(count_on(database, erin), 0);
  // The DELETE is pipelined (its result is read with the next upsert): wait for it to land.
  std::string row = context_row(pid);
  for (int i = 0; i < 200 && !row.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    row = context_row(pid);
  }
  EXPECT_EQ(row, "");
}

TEST(DbContextLease, ClosingTheDatabaseDeletesTheRowsItKept) {
  int pid = -1;
  {
    db::Database database(one_session(std::chrono::seconds(30)));
    pid = backend_pid(database, patient_ctx({examples::kErinOrtega}));
    ASSERT_FALSE(context_row(pid).empty());
  }
  EXPECT_EQ(context_row(pid), "");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new larder::test::DbEnvironment(5000));
  return RUN_ALL_TESTS();
}
