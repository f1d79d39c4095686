#include "examples/healthcare/demo.h"

#include "examples/assets.h"
#include "examples/healthcare/generate.h"

#include <libpq-fe.h>

#include <chrono>

namespace larder::examples::healthcare {
namespace {

using nlohmann::json;
using tools::Call;
using tools::DemoSubject;
using tools::ScenarioRunner;

const std::vector<std::string> kRights = {"pg_query",       "pg_explain",  "pg_metadata",
                                          "resources/read", "prompts/get", tools::kEgressTool};

gate::TokenProfile patient_profile() {
  gate::TokenProfile p;
  p.name = "patient";
  p.description = "one patient's own records (RLS by patient_name)";
  p.rights = kRights;
  p.facts = {"patient_name({patient_name})"};
  p.ttl = std::chrono::hours(24 * 30);
  return p;
}

gate::TokenProfile clinician_profile() {
  gate::TokenProfile p;
  p.name = "clinician";
  p.description = "a nurse's or doctor's view of one hospital (RLS by role and hospital)";
  p.rights = kRights;
  p.facts = {"role({role})", "hospital({hospital})"};
  p.ttl = std::chrono::hours(24 * 30);
  return p;
}

// A patient, for the tokens the scenarios mint by hand.
DemoSubject patient(const std::string& label, const std::string& name) {
  DemoSubject s;
  s.label = label;
  s.facts = "patient_name({name});";
  s.params.string("name", name);
  return s;
}

constexpr const char* kAllRows =
    R"(SELECT "Patient Name", "Medical Condition", "Date of Admission" FROM health_records ORDER BY "Date of Admission")";

// Every row of `c` has `column` = `value` (and there is at least one).
bool all_rows_are(const Call& c, const std::string& column, const std::string& value) {
  bool only = !c.is_error() && c.row_count() > 0;
  for (const auto& row : c.rows()) only &= row.value(column, "") == value;
  return only;
}

}  // namespace

std::vector<DemoToken> demo_tokens(const std::string& nurse_hospital) {
  return {
      {"erin", std::string(kErinOrtega) + " (patient)", patient_profile(), {{"patient_name", kErinOrtega}}},
      {"david",
       std::string(kDavidAnderson) + " (patient)",
       patient_profile(),
       {{"patient_name", kDavidAnderson}}},
      {"nurse",
       "a nurse at " + nurse_hospital + " (clinician)",
       clinician_profile(),
       {{"role", "nurse"}, {"hospital", nurse_hospital}}},
  };
}

Result<std::string> busiest_hospital(const db::ConnParams& admin) {
  auto deadline = db::Clock::now() + std::chrono::seconds(10);
  auto conn = admin.connect(deadline);
  if (!conn) return conn.error();
  auto r = db::exec_params(
      conn->get(), "SELECT \"Hospital\" FROM health_records GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", {},
      deadline);
  if (!r) return r.error();
  if (PQntuples(r->get()) == 0)
    return make_error("demo", "health_records is empty: no hospital for the nurse");
  return std::string(PQgetvalue(r->get(), 0, 0));
}

Result<DemoTokens> mint_demo_tokens(const tools::DemoEnvironment& env, const std::string& nurse_hospital) {
  DemoTokens t;
  for (auto& token : demo_tokens(nurse_hospital)) {
    if (auto valid = gate::validate_profile(token.profile); !valid) return valid.error();
    biscuit::Params params;
    for (const auto& [name, value] : token.params) params.string(name, value);
    auto minted = tools::issue_demo_token(env, token.profile, params);
    if (!minted) return minted.error();
    (token.name == "erin" ? t.erin : token.name == "david" ? t.david : t.nurse) = *minted;
  }
  return t;
}

std::vector<tools::ScenarioOutcome> run_demo_scenarios(
    const tools::DemoEnvironment& env, const DemoTokens& tokens,
    const std::function<void(const tools::ScenarioOutcome&)>& on_outcome) {
  ScenarioRunner run(on_outcome);
  auto claude = tools::connect(env.db_url, env, &env.claude);
  if (!claude) {
    run.report("connect", "claude-client → larder-db", "cannot connect: " + claude.error().message, "mtls",
               false);
    return run.take();
  }
  mcp::Client& db = **claude;

  // Lock 4: Erin's token sees Erin's rows only, whatever the SQL asks for.
  {
    Call c = tools::query(db, tokens.erin, kAllRows);
    bool only_erin = all_rows_are(c, "Patient Name", kErinOrtega);
    run.report("Erin's token, every row requested", std::string("pg_query ") + kAllRows,
               c.is_error() ? "refused: " + c.text()
                            : std::to_string(c.row_count()) + " rows, all \"" + kErinOrtega + "\"" +
                                  (only_erin ? "" : " — NOT ONLY ERIN"),
               "rls", only_erin);
  }
  // Asking for someone else's rows by name returns nothing.
  {
    std::string sql =
        std::string(R"(SELECT * FROM health_records WHERE "Patient Name" = ')") + kDavidAnderson + "'";
    Call c = tools::query(db, tokens.erin, sql);
    run.report("Erin's token asks for DAvID's rows", "pg_query " + sql,
               c.is_error() ? "refused: " + c.text() : std::to_string(c.row_count()) + " rows", "rls",
               !c.is_error() && c.row_count() == 0);
  }
  // DAvID's own token sees his rows.
  {
    const std::string sql = R"(SELECT "Patient Name", "Hospital" FROM health_records)";
    Call c = tools::query(db, tokens.david, sql);
    bool only_david = all_rows_are(c, "Patient Name", kDavidAnderson);
    run.report("DAvID's token", "pg_query " + sql,
               c.is_error() ? "refused: " + c.text()
                            : std::to_string(c.row_count()) + " rows, all \"" + kDavidAnderson + "\"",
               "rls", only_david);
  }
  // The nurse token sees one hospital.
  {
    const std::string sql = R"(SELECT DISTINCT "Hospital" FROM health_records)";
    Call c = tools::query(db, tokens.nurse, sql);
    run.report("nurse token scoped to one hospital", "pg_query " + sql,
               c.is_error() ? "refused: " + c.text() : std::to_string(c.row_count()) + " hospital(s) visible",
               "rls", !c.is_error() && c.row_count() == 1);
  }
  // Lock 1, the token's binding and integrity.
  tools::run_handshake_scenarios(run, env);
  tools::run_token_scenarios(run, db, env, tokens.erin, patient("Erin", kErinOrtega), kAllRows);
  // Lock 3: hostile SQL.
  tools::run_guard_scenarios(
      run, db, tokens.erin,
      {{"set_config forging the context",
        std::string("SELECT set_config('larder.patient_names', '") + kDavidAnderson + "', false)"},
       {"two statements", "SELECT 1; SELECT * FROM health_records"},
       {"UPDATE", "UPDATE health_records SET \"Billing Amount\" = 0"},
       {"pg_read_file", "SELECT pg_read_file('/etc/passwd')"}});

  // Data taint: read, then try to send the data out; a fresh lineage may.
  auto compliance = tools::connect(env.compliance_url, env, &env.claude);
  if (!compliance) {
    run.report("connect", "claude-client → larder-compliance", compliance.error().message, "mtls", false);
  } else {
    mcp::Client& out = **compliance;
    tools::run_taint_scenarios(run, db, out, env, patient("Erin", kErinOrtega), kAllRows);
    tools::run_fresh_egress_scenario(
        run, out, env, patient("Erin", kErinOrtega),
        "Quarterly summary: average billing for Diabetes patients rose 4% in 2023.");
    tools::run_egress_record_scenario(run, env, 1, {kErinOrtega, "Records:"});
  }

  tools::run_revocation_scenario(run, db, env, patient("DAvID", kDavidAnderson), kAllRows);
  tools::run_audit_scenarios(run, env);
  return run.take();
}

Demo demo() {
  Demo d;
  d.banner = {
      "One table of hospital admissions. Erin oRTEga's and DAvID AndErSON's tokens (patients)",
      "see only their own admissions; a nurse's token sees only her hospital's. Row-level",
      "security decides, whatever the SQL.",
  };
  d.tokens = [](const db::ConnParams& admin) -> Result<std::vector<DemoToken>> {
    auto hospital = busiest_hospital(admin);
    if (!hospital) return hospital.error();
    return demo_tokens(*hospital);
  };
  d.scenarios = [](const tools::DemoEnvironment& env, const MintedTokens& minted,
                   const std::function<void(const tools::ScenarioOutcome&)>& on_outcome) {
    auto get = [&](const char* name) {
      auto it = minted.find(name);
      return it == minted.end() ? std::string() : it->second;
    };
    return run_demo_scenarios(env, DemoTokens{get("erin"), get("david"), get("nurse")}, on_outcome);
  };
  d.try_token = "erin";
  d.question = std::string("Show me all medical records for patient ") + kErinOrtega;
  d.try_sql = "SELECT count(*) FROM health_records";
  d.model_script = asset("healthcare/demo_model_script.json");
  d.model_script_name = "tests/fixtures/llm/anthropic_e2e_erin_records.json";
  return d;
}

}  // namespace larder::examples::healthcare
