#include "tools/demo_scenarios.h"
#include "base/files.h"

#include "gate/attestation.h"
#include "gate/audit_log.h"
#include "net/pki.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace larder::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The file's text, or "" when it cannot be read (the scenario that needs it then fails and
// says so).
std::string text_of_file(const std::string& path) {
  auto text = read_file(path);
  return text ? std::move(*text) : std::string();
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

const std::vector<std::string>& demo_audiences() {
  static const std::vector<std::string> audiences = {"larder-db", "larder-compliance"};
  return audiences;
}

Result<std::string> issue_demo_token(const DemoEnvironment& env, const gate::TokenProfile& profile,
                                     const biscuit::Params& params, std::chrono::seconds ttl) {
  gate::IssueRequest r;
  r.profile = &profile;
  r.params = params;
  r.root = &env.root;
  r.root_key_id = env.root_key_id;
  r.client_cert_pem = text_of_file(env.claude.cert);
  r.audiences = demo_audiences();
  r.ttl = ttl;
  auto issued = gate::issue_token(r);
  if (!issued) return issued.error();
  return issued->base64;
}

uint64_t days_from_now(int days) {
  auto t = std::chrono::system_clock::now() + std::chrono::hours(24 * days);
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

namespace {

// An authority block: the subject's facts, the rights, `extra` code, an expiry.
Result<biscuit::Biscuit> mint(const DemoEnvironment& env, const DemoSubject& subject,
                              const std::string& extra, uint64_t expiry) {
  biscuit::BiscuitBuilder builder;
  builder.set_root_key_id(env.root_key_id);
  biscuit::Params p = subject.params;
  p.date("expiry", expiry);
  auto added = builder.add_code(
      subject.facts + "\n" + extra + "\n" + subject.rights + "\ncheck if time($time), $time <= {expiry};", p);
  if (!added) return make_error("demo", added.error().message);
  auto token = builder.build(env.root);
  if (!token) return make_error("demo", token.error().message);
  return std::move(*token);
}

}  // namespace

Result<std::string> mint_bound(const DemoEnvironment& env, const DemoSubject& subject, uint64_t expiry) {
  auto token = mint(env, subject, "", expiry);
  if (!token) return token.error();
  return gate::attest(*token, text_of_file(env.claude.cert), demo_audiences());
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
  options.info = {"larder-demo", LARDER_VERSION, ""};
  options.request_timeout = std::chrono::seconds(30);
  return mcp::Client::connect_http(url, tls, {}, options);
}

bool Call::is_error() const {
  return !transport_ok || result.value("isError", false);
}

std::string Call::lock() const {
  if (!transport_ok) return "mtls";
  if (result.contains("_meta") && result["_meta"].contains("larder/decision")) {
    const auto& d = result["_meta"]["larder/decision"];
    return d.value("decision", "") == "deny" ? d.value("lock", "?") : "-";
  }
  return is_error() ? "?" : "-";
}

std::string Call::text() const {
  if (!transport_ok) return transport_error;
  if (result.contains("content") && result["content"].is_array() && !result["content"].empty()) {
    return result["content"][0].value("text", "");
  }
  return {};
}

json Call::structured() const {
  return result.value("structuredContent", json::object());
}

int Call::row_count() const {
  return is_error() ? -1 : structured().value("row_count", -1);
}

json Call::rows() const {
  json s = structured();
  return s.contains("rows") && s["rows"].is_array() ? s["rows"] : json::array();
}

std::optional<std::string> Call::attenuated() const {
  if (result.contains("_meta") && result["_meta"].contains("larder/biscuit_token")) {
    return result["_meta"]["larder/biscuit_token"].get<std::string>();
  }
  return std::nullopt;
}

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

json query_args(const std::string& token, const std::string& sql) {
  return {{"query", sql}, {"biscuit_token", token}};
}

Call query(mcp::Client& client, const std::string& token, const std::string& sql) {
  return call(client, "pg_query", query_args(token, sql));
}

Call egress(mcp::Client& client, const std::string& token, const std::string& text) {
  return call(client, kEgressTool, {{"text", text}, {"biscuit_token", token}});
}

Result<std::string> admin_value(const DemoEnvironment& env, const std::string& sql,
                                const std::vector<std::string>& params) {
  if (!env.admin) return make_error("demo", "no superuser connection to compare with");
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = env.admin->connect(deadline);
  if (!conn) return conn.error();
  std::vector<db::Param> bound;
  for (const auto& p : params) bound.push_back(db::Param{p});
  auto r = db::exec_params(conn->get(), sql, bound, deadline);
  if (!r) return r.error();
  if (PQntuples(r->get()) == 0 || PQnfields(r->get()) == 0) return make_error("demo", "no row: " + sql);
  return std::string(PQgetvalue(r->get(), 0, 0));
}

std::string one_line(std::string s, std::size_t max) {
  for (auto& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

void ScenarioRunner::report(std::string name, std::string request, std::string outcome, std::string lock,
                            bool expected) {
  ScenarioOutcome o{std::move(name), std::move(request), one_line(std::move(outcome)), std::move(lock),
                    expected};
  if (sink_) sink_(o);
  outcomes_.push_back(std::move(o));
}

void ScenarioRunner::expect_refused(const std::string& name, const std::string& request, const Call& c,
                                    const std::vector<std::string>& locks) {
  bool ok = c.is_error() && std::find(locks.begin(), locks.end(), c.lock()) != locks.end();
  report(name, request, (c.is_error() ? "refused: " : "ALLOWED: ") + c.text(), c.lock(), ok);
}

void run_handshake_scenarios(ScenarioRunner& run, const DemoEnvironment& env) {
  auto none = connect(env.db_url, env, nullptr);
  run.report("no client certificate", "TLS handshake without a certificate",
             none ? "CONNECTED" : "handshake refused: " + none.error().message, "mtls", !none);
  auto rogue = connect(env.db_url, env, &env.rogue);
  run.report("certificate from a rogue CA", "TLS handshake with rogue-ca/claude-client",
             rogue ? "CONNECTED" : "handshake refused: " + rogue.error().message, "mtls", !rogue);
}

void run_token_scenarios(ScenarioRunner& run, mcp::Client& db, const DemoEnvironment& env,
                         const std::string& token, const DemoSubject& subject, const std::string& sql) {
  // Certificate binding: the token over another valid client's connection.
  auto other = connect(env.db_url, env, &env.other);
  if (!other) {
    run.report(subject.label + "'s token from another client", "other-client → larder-db",
               other.error().message, "mtls", false);
  } else {
    run.expect_refused(subject.label + "'s token from another client's certificate",
                       "pg_query as other-client", query(**other, token, sql), "biscuit");
  }
  // A tampered token.
  std::string tampered = token;
  std::size_t at = tampered.size() / 3;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  run.expect_refused("tampered token", "pg_query with one character of the token changed",
                     query(db, tampered, sql), "biscuit");
  // An expired token.
  auto expired = mint_bound(env, subject, days_from_now(-1));
  if (!expired) {
    run.report("expired token", "mint a token that expired yesterday", expired.error().message, "-", false);
  } else {
    run.expect_refused("expired token", "pg_query with a token that expired yesterday",
                       query(db, *expired, sql), "biscuit");
  }
  // A token asserting a server-provided fact (the original demo's hole): unbound, so that
  // only the reserved predicate can refuse it.
  auto forged = mint(env, subject, R"(mtls_client("claude-client"); check if mtls_client("claude-client");)",
                     days_from_now(1));
  if (!forged) {
    run.report("token asserting mtls_client itself", "mint it", forged.error().message, "-", false);
  } else {
    run.expect_refused("token asserting mtls_client itself",
                       "pg_query with mtls_client(\"claude-client\") in the token",
                       query(db, forged->to_base64(), sql), "biscuit");
  }
}

void run_guard_scenarios(ScenarioRunner& run, mcp::Client& db, const std::string& token,
                         const std::vector<std::pair<std::string, std::string>>& hostile) {
  for (const auto& [title, sql] : hostile) {
    run.expect_refused("hostile SQL: " + title, "pg_query " + sql, query(db, token, sql), "sql-guard");
  }
}

void run_taint_scenarios(ScenarioRunner& run, mcp::Client& db, mcp::Client& out, const DemoEnvironment& env,
                         const DemoSubject& subject, const std::string& sql) {
  auto reader = mint_bound(env, subject, days_from_now(1));
  if (!reader) {
    run.report("taint: a sensitive read", "mint a fresh token", reader.error().message, "-", false);
    return;
  }
  const std::string pre_taint = *reader;
  Call read = query(db, pre_taint, sql);
  auto tainted = read.attenuated();
  run.report("taint: a sensitive read", "pg_query with a fresh token (" + subject.label + "): " + sql,
             read.is_error() ? "refused: " + read.text()
             : tainted       ? std::to_string(read.row_count()) +
                             " rows; the server returned the token attenuated with sensitive_data(true); "
                             "check if tool_egress(false)"
                       : "no attenuated token returned",
             read.lock(), !read.is_error() && tainted.has_value());
  std::string leak = "Records: " + read.text().substr(0, 200);
  if (tainted) {
    run.expect_refused("taint: tainted token → compliance check",
                       std::string(kEgressTool) + " with the attenuated token", egress(out, *tainted, leak),
                       "taint");
  }
  run.expect_refused("taint: the pre-taint copy → compliance check",
                     std::string(kEgressTool) + " with the token kept from before",
                     egress(out, pre_taint, leak), "taint");
}

void run_fresh_egress_scenario(ScenarioRunner& run, mcp::Client& out, const DemoEnvironment& env,
                               const DemoSubject& subject, const std::string& note) {
  auto fresh = mint_bound(env, subject, days_from_now(1));
  if (!fresh) {
    run.report("taint: a fresh token (new lineage) → compliance check", "mint a fresh token",
               fresh.error().message, "-", false);
    return;
  }
  Call c = egress(out, *fresh, note);
  bool sent =
      c.structured().contains("external_check") && c.structured()["external_check"].value("sent", false);
  run.report("taint: a fresh token (new lineage) → compliance check",
             std::string(kEgressTool) + " with a token that never read data",
             c.is_error() ? "refused: " + c.text()
                          : std::string("allowed: compliant=") +
                                (c.structured().value("compliant", false) ? "true" : "false") +
                                (sent ? ", forwarded to the compliance API" : ""),
             c.lock(), !c.is_error());
}

void run_egress_record_scenario(ScenarioRunner& run, const DemoEnvironment& env, std::size_t expected,
                                const std::vector<std::string>& forbidden) {
  if (!env.compliance_received) return;
  auto bodies = env.compliance_received();
  bool leaked = false;
  for (const auto& b : bodies) {
    for (const auto& f : forbidden) leaked |= b.find(f) != std::string::npos;
  }
  run.report("taint: what reached the external compliance API",
             "inspect the loopback receiver standing in for the external API",
             std::to_string(bodies.size()) + " request(s) (" + std::to_string(expected) + " expected), " +
                 (leaked ? "TAINTED DATA LEAKED" : "none holding data read from the database"),
             "taint", !leaked && bodies.size() == expected);
}

void run_revocation_scenario(ScenarioRunner& run, mcp::Client& db, const DemoEnvironment& env,
                             const DemoSubject& subject, const std::string& sql) {
  if (!env.revoke) return;
  auto doomed = mint_bound(env, subject, days_from_now(1));
  if (!doomed) {
    run.report("revoked token", "mint a fresh token", doomed.error().message, "-", false);
    return;
  }
  auto parsed = biscuit::Biscuit::from_base64(*doomed, env.root.public_key());
  std::string id = parsed ? biscuit::hex_encode(parsed->revocation_ids().front()) : std::string();
  auto revoked = env.revoke(id);
  Call c = query(db, *doomed, sql);
  bool ok =
      revoked.ok() && c.is_error() && c.lock() == "biscuit" && c.text().find("revoked") != std::string::npos;
  run.report("revoked token", "larder biscuit revoke " + id.substr(0, 16) + "…, then pg_query",
             (c.is_error() ? "refused: " : "ALLOWED: ") + c.text(), c.lock(), ok);
}

void run_audit_scenarios(ScenarioRunner& run, const DemoEnvironment& env) {
  if (env.audit_log.empty()) return;
  auto v = gate::verify_audit_log(env.audit_log);
  run.report("audit log verifies", "larder audit verify " + env.audit_log,
             v.ok ? std::to_string(v.records) + " records, hash chain intact" : "BROKEN: " + v.problem, "-",
             v.ok);
  fs::path copy =
      fs::temp_directory_path() / ("larder-audit-tampered-" + std::to_string(::getpid()) + ".jsonl");
  std::error_code ec;
  fs::copy_file(env.audit_log, copy, fs::copy_options::overwrite_existing, ec);
  fs::copy_file(env.audit_log + ".head", copy.string() + ".head", fs::copy_options::overwrite_existing, ec);
  std::string content = text_of_file(copy.string());
  auto pos = content.find("\"decision\":\"deny\"");
  if (pos != std::string::npos) content.replace(pos, 17, "\"decision\":\"allw\"");
  std::ofstream(copy, std::ios::trunc) << content;
  auto t = gate::verify_audit_log(copy.string());
  run.report("tampered audit log copy", "edit one decision in a copy, then verify",
             t.ok ? "NOT DETECTED" : "detected: " + t.problem, "-", !t.ok);
  fs::remove(copy, ec);
  fs::remove(copy.string() + ".head", ec);
}

}  // namespace larder::tools
