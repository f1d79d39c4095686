#include "tools/demo_scenarios.h"

#include "biscuit/token/token.h"
#include "gate/attestation.h"
#include "gate/audit_log.h"
#include "gate/token_profile.h"
#include "mcp/client.h"
#include "net/pki.h"

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace larder::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRights =
    R"(right("pg_query"); right("pg_explain"); right("pg_metadata"); right("resources/read"); right("prompts/get"); right("hipaa_compliance_check");)";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

uint64_t days_from_now(int days) {
  auto t = std::chrono::system_clock::now() + std::chrono::hours(24 * days);
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

// An authority block: the subject's facts, the rights, an expiry.
Result<biscuit::Biscuit> mint(const DemoEnvironment& env, const std::string& facts,
                              const biscuit::Params& params, uint64_t expiry) {
  biscuit::BiscuitBuilder builder;
  builder.set_root_key_id(env.root_key_id);
  biscuit::Params p = params;
  p.date("expiry", expiry);
  auto added = builder.add_code(facts + "\n" + kRights + "\ncheck if time($time), $time <= {expiry};", p);
  if (!added) return make_error("demo", added.error().message);
  auto token = builder.build(env.root);
  if (!token) return make_error("demo", token.error().message);
  return std::move(*token);
}

Result<std::string> mint_bound(const DemoEnvironment& env, const std::string& facts,
                               const biscuit::Params& params, uint64_t expiry) {
  auto token = mint(env, facts, params, expiry);
  if (!token) return token.error();
  // Bound to claude-client's certificate and to both demo servers.
  return gate::attest(*token, read_file(env.claude.cert), {"larder-db", "larder-compliance"});
}

Result<std::unique_ptr<mcp::Client>> connect(const std::string& url, const DemoEnvironment& env,
                                             const ClientCert* cert) {
  net::TlsClientConfig tls;
  tls.ca_file = env.ca_file;
  if (cert) {
    tls.cert_file = cert->cert;
    tls.key_file = cert->key;
  }
  mcp::ClientOptions options;
  options.info = {"larder-demo", "0.1.0", ""};
  options.request_timeout = std::chrono::seconds(30);
  return mcp::Client::connect_http(url, tls, {}, options);
}

// One tool call and what came of it.
struct Call {
  bool transport_ok = false;
  std::string transport_error;
  json result;
  bool is_error() const { return !transport_ok || result.value("isError", false); }
  std::string lock() const {
    if (!transport_ok) return "mtls";
    if (result.contains("_meta") && result["_meta"].contains("larder/decision")) {
      const auto& d = result["_meta"]["larder/decision"];
      return d.value("decision", "") == "deny" ? d.value("lock", "?") : "-";
    }
    return is_error() ? "?" : "-";
  }
  std::string text() const {
    if (!transport_ok) return transport_error;
    if (result.contains("content") && result["content"].is_array() && !result["content"].empty()) {
      return result["content"][0].value("text", "");
    }
    return {};
  }
  json structured() const { return result.value("structuredContent", json::object()); }
  std::optional<std::string> attenuated() const {
    if (result.contains("_meta") && result["_meta"].contains("larder/biscuit_token")) {
      return result["_meta"]["larder/biscuit_token"].get<std::string>();
    }
    return std::nullopt;
  }
};

Call call(mcp::Client& client, const std::string& tool, json args) {
  Call c;
  auto r = client.call_tool(tool, std::move(args));
  if (!r) {
    c.transport_error = r.error().message;
    return c;
  }
  c.transport_ok = true;
  c.result = std::move(*r);
  return c;
}

std::string one_line(std::string s, std::size_t max = 140) {
  for (auto& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

class Runner {
 public:
  Runner(const DemoEnvironment& env, const std::function<void(const ScenarioOutcome&)>& sink)
      : env_(env), sink_(sink) {}

  void report(std::string name, std::string request, std::string outcome, std::string lock, bool expected) {
    ScenarioOutcome o{std::move(name), std::move(request), one_line(std::move(outcome)), std::move(lock),
                      expected};
    if (sink_) sink_(o);
    outcomes_.push_back(std::move(o));
  }

  // A refusal scenario: `expected_lock` must have refused.
  void expect_refused(const std::string& name, const std::string& request, const Call& c,
                      const std::string& expected_lock) {
    bool ok = c.is_error() && c.lock() == expected_lock;
    report(name, request, (c.is_error() ? "refused: " : "ALLOWED: ") + c.text(), c.lock(), ok);
  }

  std::vector<ScenarioOutcome> outcomes_;
  const DemoEnvironment& env_;
  const std::function<void(const ScenarioOutcome&)>& sink_;
};

json query_args(const std::string& token, const std::string& sql) {
  return {{"query", sql}, {"biscuit_token", token}};
}

}  // namespace

Result<void> ensure_demo_pki(const std::string& certs_dir, const std::string& rogue_dir,
                             const std::string& ca_name) {
  net::pki::CertStore store(certs_dir);
  if (!store.has_ca()) {
    if (auto r = store.init(ca_name); !r) return r;
    for (const char* server : {"larder-db", "larder-compliance"}) {
      net::pki::CertSpec spec;
      spec.kind = net::pki::CertKind::kServer;
      spec.common_name = server;
      spec.sans = {"IP:127.0.0.1", "DNS:localhost"};
      if (auto r = store.issue(spec, server); !r) return r.error();
    }
    for (const char* client : {"claude-client", "other-client"}) {
      net::pki::CertSpec spec;
      spec.common_name = client;
      if (auto r = store.issue(spec, client); !r) return r.error();
    }
    if (auto r = store.write_crl(); !r) return r;
  }
  net::pki::CertStore rogue(rogue_dir);
  if (!rogue.has_ca()) {
    if (auto r = rogue.init("Rogue CA"); !r) return r;
    net::pki::CertSpec spec;
    spec.common_name = "claude-client";  // same name, wrong issuer
    if (auto r = rogue.issue(spec, "claude-client"); !r) return r.error();
  }
  return {};
}

void use_demo_pki(DemoEnvironment& env, const std::string& certs_dir, const std::string& rogue_dir) {
  env.ca_file = certs_dir + "/ca.crt";
  env.claude = {certs_dir + "/client/claude-client.crt", certs_dir + "/client/claude-client.key"};
  env.other = {certs_dir + "/client/other-client.crt", certs_dir + "/client/other-client.key"};
  env.rogue = {rogue_dir + "/client/claude-client.crt", rogue_dir + "/client/claude-client.key"};
}

// The demo's tokens come from profiles, like `larder token issue`'s: the default patient and
// clinician profiles, plus the egress right the compliance scenarios need; 30 days; bound to
// claude-client's certificate and to both demo servers.
Result<DemoTokens> mint_demo_tokens(const DemoEnvironment& env, const std::string& nurse_hospital) {
  std::vector<gate::TokenProfile> profiles = gate::default_profiles();
  auto profile = [&](const std::string& name) {
    for (auto& p : profiles) {
      if (p.name == name) {
        p.rights.push_back("hipaa_compliance_check");
        p.ttl = std::chrono::hours(24 * 30);
        return p;
      }
    }
    return gate::TokenProfile{};
  };
  const gate::TokenProfile patient = profile("patient");
  const gate::TokenProfile clinician = profile("clinician");
  const std::string cert = read_file(env.claude.cert);
  auto issue = [&](const gate::TokenProfile& p, biscuit::Params params) -> Result<std::string> {
    gate::IssueRequest r;
    r.profile = &p;
    r.params = std::move(params);
    r.root = &env.root;
    r.root_key_id = env.root_key_id;
    r.client_cert_pem = cert;
    r.audiences = {"larder-db", "larder-compliance"};
    auto issued = gate::issue_token(r);
    if (!issued) return issued.error();
    return issued->base64;
  };
  DemoTokens t;
  auto erin = issue(patient, biscuit::Params().string("patient_name", "Erin oRTEga"));
  if (!erin) return erin.error();
  t.erin = *erin;
  auto david = issue(patient, biscuit::Params().string("patient_name", "DAvID AndErSON"));
  if (!david) return david.error();
  t.david = *david;
  auto nurse = issue(clinician, biscuit::Params().string("role", "nurse").string("hospital", nurse_hospital));
  if (!nurse) return nurse.error();
  t.nurse = *nurse;
  return t;
}

std::vector<ScenarioOutcome> run_demo_scenarios(
    const DemoEnvironment& env, const DemoTokens& tokens,
    const std::function<void(const ScenarioOutcome&)>& on_outcome) {
  Runner run(env, on_outcome);
  const std::string all_rows =
      R"(SELECT "Patient Name", "Medical Condition", "Date of Admission" FROM health_records ORDER BY "Date of Admission")";

  auto claude = connect(env.db_url, env, &env.claude);
  if (!claude) {
    run.report("connect", "claude-client → larder-db", "cannot connect: " + claude.error().message, "mtls",
               false);
    return run.outcomes_;
  }
  mcp::Client& db = **claude;

  // 1. Lock 4: Erin's token sees Erin's rows only, whatever the SQL asks for.
  {
    Call c = call(db, "pg_query", query_args(tokens.erin, all_rows));
    json s = c.structured();
    bool only_erin = !c.is_error() && s.value("row_count", 0) > 0;
    for (const auto& row : s.value("rows", json::array()))
      only_erin &= row.value("Patient Name", "") == "Erin oRTEga";
    run.report("Erin's token, every row requested", "pg_query " + all_rows,
               c.is_error() ? "refused: " + c.text()
                            : std::to_string(s.value("row_count", 0)) + " rows, all \"Erin oRTEga\"" +
                                  (only_erin ? "" : " — NOT ONLY ERIN"),
               "rls", only_erin);
  }
  // 2. Asking for someone else's rows by name returns nothing.
  {
    std::string sql = R"(SELECT * FROM health_records WHERE "Patient Name" = 'DAvID AndErSON')";
    Call c = call(db, "pg_query", query_args(tokens.erin, sql));
    int rows = c.structured().value("row_count", -1);
    run.report("Erin's token asks for DAvID's rows", "pg_query " + sql,
               c.is_error() ? "refused: " + c.text() : std::to_string(rows) + " rows", "rls",
               !c.is_error() && rows == 0);
  }
  // 3. DAvID's own token sees his rows.
  {
    Call c = call(db, "pg_query",
                  query_args(tokens.david, R"(SELECT "Patient Name", "Hospital" FROM health_records)"));
    json s = c.structured();
    bool only_david = !c.is_error() && s.value("row_count", 0) > 0;
    for (const auto& row : s.value("rows", json::array()))
      only_david &= row.value("Patient Name", "") == "DAvID AndErSON";
    run.report("DAvID's token", "pg_query SELECT \"Patient Name\", \"Hospital\" FROM health_records",
               std::to_string(s.value("row_count", 0)) + " rows, all \"DAvID AndErSON\"", "rls", only_david);
  }
  // 4. The nurse token sees one hospital.
  {
    Call c =
        call(db, "pg_query", query_args(tokens.nurse, R"(SELECT DISTINCT "Hospital" FROM health_records)"));
    int n = c.structured().value("row_count", -1);
    run.report("nurse token scoped to one hospital",
               "pg_query SELECT DISTINCT \"Hospital\" FROM health_records",
               c.is_error() ? "refused: " + c.text() : std::to_string(n) + " hospital(s) visible", "rls",
               !c.is_error() && n == 1);
  }
  // 5-6. Lock 1: the handshake.
  {
    auto none = connect(env.db_url, env, nullptr);
    run.report("no client certificate", "TLS handshake without a certificate",
               none ? "CONNECTED" : "handshake refused: " + none.error().message, "mtls", !none);
    auto rogue = connect(env.db_url, env, &env.rogue);
    run.report("certificate from a rogue CA", "TLS handshake with rogue-ca/claude-client",
               rogue ? "CONNECTED" : "handshake refused: " + rogue.error().message, "mtls", !rogue);
  }
  // 7. Certificate binding: Erin's token over another valid client's connection.
  {
    auto other = connect(env.db_url, env, &env.other);
    if (!other) {
      run.report("Erin's token from another client", "other-client → larder-db", other.error().message,
                 "mtls", false);
    } else {
      Call c = call(**other, "pg_query", query_args(tokens.erin, all_rows));
      run.expect_refused("Erin's token from another client's certificate", "pg_query as other-client", c,
                         "biscuit");
    }
  }
  // 8. A tampered token.
  {
    std::string tampered = tokens.erin;
    std::size_t at = tampered.size() / 3;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    run.expect_refused("tampered token", "pg_query with one character of the token changed",
                       call(db, "pg_query", query_args(tampered, all_rows)), "biscuit");
  }
  // 9. An expired token.
  {
    auto expired = mint_bound(env, "patient_name({name});", biscuit::Params().string("name", "Erin oRTEga"),
                              days_from_now(-1));
    if (expired) {
      run.expect_refused("expired token", "pg_query with a token that expired yesterday",
                         call(db, "pg_query", query_args(*expired, all_rows)), "biscuit");
    }
  }
  // 10. A token asserting a server-provided fact (the original demo's hole).
  {
    biscuit::BiscuitBuilder b;
    b.set_root_key_id(env.root_key_id);
    std::string code =
        std::string(
            R"(patient_name("Erin oRTEga"); mtls_client("claude-client"); check if mtls_client("claude-client");)") +
        kRights;
    if (b.add_code(code)) {
      auto forged = b.build(env.root);
      if (forged) {
        run.expect_refused("token asserting mtls_client itself",
                           "pg_query with mtls_client(\"claude-client\") in the token",
                           call(db, "pg_query", query_args(forged->to_base64(), all_rows)), "biscuit");
      }
    }
  }
  // 11. Lock 3: hostile SQL.
  for (const auto& [title, sql] : std::vector<std::pair<std::string, std::string>>{
           {"set_config forging the context",
            "SELECT set_config('larder.patient_names', 'DAvID AndErSON', false)"},
           {"two statements", "SELECT 1; SELECT * FROM health_records"},
           {"UPDATE", "UPDATE health_records SET \"Billing Amount\" = 0"},
           {"pg_read_file", "SELECT pg_read_file('/etc/passwd')"}}) {
    run.expect_refused("hostile SQL: " + title, "pg_query " + sql,
                       call(db, "pg_query", query_args(tokens.erin, sql)), "sql-guard");
  }

  // 12. Data taint: read, then try to send the data out.
  auto compliance = connect(env.compliance_url, env, &env.claude);
  if (!compliance) {
    run.report("connect", "claude-client → larder-compliance", compliance.error().message, "mtls", false);
  } else {
    mcp::Client& egress = **compliance;
    auto reader = mint_bound(env, "patient_name({name});", biscuit::Params().string("name", "Erin oRTEga"),
                             days_from_now(1));
    if (reader) {
      const std::string pre_taint = *reader;
      Call read = call(db, "pg_query", query_args(pre_taint, all_rows));
      auto tainted = read.attenuated();
      run.report("taint: a sensitive read", "pg_query with a fresh Erin token",
                 tainted ? std::to_string(read.structured().value("row_count", 0)) +
                               " rows; the server returned the token attenuated with sensitive_data(true); "
                               "check if tool_egress(false)"
                         : "no attenuated token returned",
                 "-", !read.is_error() && tainted.has_value());
      std::string leak = "Records: " + read.text().substr(0, 200);
      if (tainted) {
        run.expect_refused(
            "taint: tainted token → compliance check", "hipaa_compliance_check with the attenuated token",
            call(egress, "hipaa_compliance_check", {{"text", leak}, {"biscuit_token", *tainted}}), "taint");
      }
      run.expect_refused(
          "taint: the pre-taint copy → compliance check",
          "hipaa_compliance_check with the token kept from before",
          call(egress, "hipaa_compliance_check", {{"text", leak}, {"biscuit_token", pre_taint}}), "taint");
    }
    auto fresh = mint_bound(env, "patient_name({name});", biscuit::Params().string("name", "Erin oRTEga"),
                            days_from_now(1));
    if (fresh) {
      const std::string note = "Quarterly summary: average billing for Diabetes patients rose 4% in 2023.";
      Call c = call(egress, "hipaa_compliance_check", {{"text", note}, {"biscuit_token", *fresh}});
      bool sent =
          c.structured().contains("external_check") && c.structured()["external_check"].value("sent", false);
      run.report("taint: a fresh token (new lineage) → compliance check",
                 "hipaa_compliance_check with a token that never read data",
                 c.is_error() ? "refused: " + c.text()
                              : std::string("allowed: compliant=") +
                                    (c.structured().value("compliant", false) ? "true" : "false") +
                                    (sent ? ", forwarded to the compliance API" : ""),
                 c.lock(), !c.is_error());
    }
    if (env.compliance_received) {
      auto bodies = env.compliance_received();
      bool leaked = false;
      for (const auto& b : bodies)
        leaked |= b.find("Erin oRTEga") != std::string::npos || b.find("Records:") != std::string::npos;
      run.report("taint: what reached the external compliance API",
                 "inspect the loopback receiver standing in for the external API",
                 std::to_string(bodies.size()) + " request(s), " +
                     (leaked ? "TAINTED DATA LEAKED" : "no patient data"),
                 "taint", !leaked && bodies.size() == 1);
    }
  }

  // 13. Revocation through the shared list.
  if (env.revoke) {
    auto doomed = mint_bound(env, "patient_name({name});", biscuit::Params().string("name", "DAvID AndErSON"),
                             days_from_now(1));
    if (doomed) {
      auto parsed = biscuit::Biscuit::from_base64(*doomed, env.root.public_key());
      std::string id = parsed ? biscuit::hex_encode(parsed->revocation_ids().front()) : std::string();
      auto revoked = env.revoke(id);
      Call c = call(db, "pg_query", query_args(*doomed, all_rows));
      bool ok = revoked.ok() && c.is_error() && c.lock() == "biscuit" &&
                c.text().find("revoked") != std::string::npos;
      run.report("revoked token", "larder biscuit revoke " + id.substr(0, 16) + "…, then pg_query",
                 (c.is_error() ? "refused: " : "ALLOWED: ") + c.text(), c.lock(), ok);
    }
  }

  // 14. The audit log: intact, and a tampered copy is caught.
  if (!env.audit_log.empty()) {
    auto v = gate::verify_audit_log(env.audit_log);
    run.report("audit log verifies", "larder audit verify " + env.audit_log,
               v.ok ? std::to_string(v.records) + " records, hash chain intact" : "BROKEN: " + v.problem, "-",
               v.ok);
    fs::path copy =
        fs::temp_directory_path() / ("larder-audit-tampered-" + std::to_string(::getpid()) + ".jsonl");
    std::error_code ec;
    fs::copy_file(env.audit_log, copy, fs::copy_options::overwrite_existing, ec);
    fs::copy_file(env.audit_log + ".head", copy.string() + ".head", fs::copy_options::overwrite_existing, ec);
    std::string content = read_file(copy.string());
    auto pos = content.find("\"decision\":\"deny\"");
    if (pos != std::string::npos) content.replace(pos, 17, "\"decision\":\"allw\"");
    std::ofstream(copy, std::ios::trunc) << content;
    auto t = gate::verify_audit_log(copy.string());
    run.report("tampered audit log copy", "edit one decision in a copy, then verify",
               t.ok ? "NOT DETECTED" : "detected: " + t.problem, "-", !t.ok);
    fs::remove(copy, ec);
    fs::remove(copy.string() + ".head", ec);
  }
  return run.outcomes_;
}

}  // namespace larder::tools
