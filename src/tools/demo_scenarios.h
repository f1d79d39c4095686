// The scenario framework of `larder demo` (library larder_demo): the demo's certificates,
// its environment (a running database server and compliance server), minting bound tokens,
// MCP calls over mTLS judged by the lock that decided, and the scenarios every example's demo
// runs (the handshake, the token's binding and integrity, the SQL guard, taint, revocation,
// the audit log). What an example's data looks like — its tokens' facts, its questions, its
// tables — is the example's own: examples/<name>/demo.cpp (examples/examples.h, Demo). `larder
// demo` prints the outcomes; the e2e tests run the very same lists and require every one.
#pragma once

#include "base/result.h"
#include "biscuit/crypto/keys.h"
#include "biscuit/token/token.h"
#include "db/connection.h"
#include "gate/token_profile.h"
#include "mcp/client.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace larder::tools {

struct ClientCert {
  std::string cert, key;
};

struct DemoEnvironment {
  std::string db_url;          // https://127.0.0.1:<port>/mcp of the database server (audience larder-db)
  std::string compliance_url;  // https://127.0.0.1:<port>/mcp of the compliance server (larder-compliance)
  std::string ca_file;         // our CA: verifies servers, issued the client certificates
  ClientCert claude;           // claude-client, the agent's certificate
  ClientCert other;            // another valid client of our CA
  ClientCert rogue;            // a client certificate from a rogue CA
  biscuit::PrivateKey root;    // the root key (the demo is its own token issuer)
  uint32_t root_key_id = 1;
  std::string audit_log;  // the database server's audit log
  // A superuser connection to the example's database: the truth the scenarios compare what a
  // token sees with (admin_value). Scenarios that need it fail when it is not set.
  std::optional<db::ConnParams> admin;
  // What the compliance API receiver has been sent so far (request bodies).
  std::function<std::vector<std::string>()> compliance_received;
  // Revokes a token by revocation id through the shared revocation list.
  std::function<Result<void>(const std::string& revocation_id)> revoke;
};

struct ScenarioOutcome {
  std::string name;       // short title
  std::string request;    // what was asked, one line
  std::string outcome;    // what happened, one line
  std::string lock;       // the lock that decided ("mtls", "biscuit", "policy", "sql-guard", "taint", "-")
  bool expected = false;  // the outcome is the one the scenario requires
};

// The demo's certificates, created where missing: under `certs_dir` a CA named `ca_name`
// with the servers larder-db and larder-compliance (127.0.0.1, localhost), the clients
// claude-client and other-client, and its CRL; under `rogue_dir` a rogue CA with its own
// claude-client (same name, wrong issuer).
Result<void> ensure_demo_pki(const std::string& certs_dir, const std::string& rogue_dir,
                             const std::string& ca_name);
// Points `env` at those certificates (ca_file, claude, other, rogue).
void use_demo_pki(DemoEnvironment& env, const std::string& certs_dir, const std::string& rogue_dir);

// The servers every demo token is bound to (their audiences).
const std::vector<std::string>& demo_audiences();
// The egress tool of the compliance server (classed "egress"): what taint guards.
inline constexpr const char* kEgressTool = "hipaa_compliance_check";

// Mints a token from `profile` (gate::issue_token): its rights and facts with `params` bound,
// bound to claude-client's certificate and to both demo servers, expiring after `ttl`.
Result<std::string> issue_demo_token(const DemoEnvironment& env, const gate::TokenProfile& profile,
                                     const biscuit::Params& params,
                                     std::chrono::seconds ttl = std::chrono::hours(24 * 30));

// Who a token the scenarios mint by hand is for: its authority facts (Datalog, `{name}`
// placeholders bound from `params`) and its rights, and how the outcomes name it.
struct DemoSubject {
  std::string label;  // "Erin", "Acme's admin": used in scenario titles
  std::string facts;  // e.g. patient_name({name});
  biscuit::Params params;
  std::string rights =
      R"(right("pg_query"); right("pg_explain"); right("pg_metadata"); right("resources/read"); right("prompts/get"); right("hipaa_compliance_check");)";
};
// The subject's token, expiring at `expiry` (seconds since the epoch: in the past for an
// expired one), bound like issue_demo_token's.
Result<std::string> mint_bound(const DemoEnvironment& env, const DemoSubject& subject, uint64_t expiry);
// Now plus `days` (negative: in the past), in seconds since the epoch.
uint64_t days_from_now(int days);

// An MCP client over mTLS with `cert` (none: no client certificate).
Result<std::unique_ptr<mcp::Client>> connect(const std::string& url, const DemoEnvironment& env,
                                             const ClientCert* cert);

// One tool call and what came of it.
struct Call {
  bool transport_ok = false;
  std::string transport_error;
  nlohmann::json result;
  bool is_error() const;
  // The lock that refused ("mtls" when the transport failed), "-" when allowed.
  std::string lock() const;
  std::string text() const;  // the first text content, or the transport error
  nlohmann::json structured() const;
  int row_count() const;        // structuredContent.row_count; -1 when there is none
  nlohmann::json rows() const;  // structuredContent.rows; an empty array when there is none
  // The attenuated token the server returned after a sensitive read (the taint).
  std::optional<std::string> attenuated() const;
};
Call call(mcp::Client& client, const std::string& tool, nlohmann::json args);
nlohmann::json query_args(const std::string& token, const std::string& sql);
// pg_query `sql` with `token`.
Call query(mcp::Client& client, const std::string& token, const std::string& sql);
// The egress tool with `token`, sending `text`.
Call egress(mcp::Client& client, const std::string& token, const std::string& text);

// The first column of the first row of `sql` (parameters $1.. from `params`), run as the
// environment's superuser: the truth a scenario compares with.
Result<std::string> admin_value(const DemoEnvironment& env, const std::string& sql,
                                const std::vector<std::string>& params = {});

// `s` on one line, cut to `max` characters.
std::string one_line(std::string s, std::size_t max = 140);

// Collects the outcomes in order and hands each to the sink as soon as it is decided.
class ScenarioRunner {
 public:
  explicit ScenarioRunner(std::function<void(const ScenarioOutcome&)> sink) : sink_(std::move(sink)) {}

  void report(std::string name, std::string request, std::string outcome, std::string lock, bool expected);
  // A refusal scenario: one of `locks` must have refused.
  void expect_refused(const std::string& name, const std::string& request, const Call& c,
                      const std::vector<std::string>& locks);
  void expect_refused(const std::string& name, const std::string& request, const Call& c,
                      const std::string& lock) {
    expect_refused(name, request, c, std::vector<std::string>{lock});
  }
  const std::vector<ScenarioOutcome>& outcomes() const { return outcomes_; }
  std::vector<ScenarioOutcome> take() { return std::move(outcomes_); }

 private:
  std::function<void(const ScenarioOutcome&)> sink_;
  std::vector<ScenarioOutcome> outcomes_;
};

// The scenarios every example runs, each a group of the demo's list:

// Lock 1: the TLS handshake without a client certificate, and with a rogue CA's.
void run_handshake_scenarios(ScenarioRunner& run, const DemoEnvironment& env);
// The token itself: `token` (issued for claude-client, `subject`'s) over another valid
// client's connection, tampered with, expired, and a token asserting mtls_client itself —
// each running `sql`, each refused by lock biscuit.
void run_token_scenarios(ScenarioRunner& run, mcp::Client& db, const DemoEnvironment& env,
                         const std::string& token, const DemoSubject& subject, const std::string& sql);
// Lock 3: each (title, SQL) refused by the SQL guard.
void run_guard_scenarios(ScenarioRunner& run, mcp::Client& db, const std::string& token,
                         const std::vector<std::pair<std::string, std::string>>& hostile);
// Taint: a fresh token of `subject` reads `sql` (sensitive); the server returns it attenuated;
// the egress tool refuses the attenuated token and the copy kept from before the read.
void run_taint_scenarios(ScenarioRunner& run, mcp::Client& db, mcp::Client& egress,
                         const DemoEnvironment& env, const DemoSubject& subject, const std::string& sql);
// A fresh token of `subject` (a new lineage) sends `note` through the egress tool: allowed.
void run_fresh_egress_scenario(ScenarioRunner& run, mcp::Client& egress, const DemoEnvironment& env,
                               const DemoSubject& subject, const std::string& note);
// What reached the external compliance API during this run: `expected` requests, none
// holding any of `forbidden`.
void run_egress_record_scenario(ScenarioRunner& run, const DemoEnvironment& env, std::size_t expected,
                                const std::vector<std::string>& forbidden);
// A fresh token of `subject`, revoked through the shared list, then refused (lock biscuit).
void run_revocation_scenario(ScenarioRunner& run, mcp::Client& db, const DemoEnvironment& env,
                             const DemoSubject& subject, const std::string& sql);
// The database server's audit log verifies; a copy with one decision edited does not.
void run_audit_scenarios(ScenarioRunner& run, const DemoEnvironment& env);

}  // namespace larder::tools
