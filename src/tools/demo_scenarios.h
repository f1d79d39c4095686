// The four-lock demonstration as a list of scenarios, each an MCP exchange over mTLS with a
// running database server and compliance server, and the outcome it must have. `larder
// demo` prints them; the e2e test suite runs the very same list and requires every one.
#pragma once

#include "base/result.h"
#include "biscuit/crypto/keys.h"

#include <functional>
#include <string>
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
  std::string audit_log;       // the database server's audit log
  // What the compliance API receiver has been sent so far (request bodies).
  std::function<std::vector<std::string>()> compliance_received;
  // Revokes a token by revocation id through the shared revocation list.
  std::function<Result<void>(const std::string& revocation_id)> revoke;
};

struct ScenarioOutcome {
  std::string name;        // short title
  std::string request;     // what was asked, one line
  std::string outcome;     // what happened, one line
  std::string lock;        // the lock that decided ("mtls", "biscuit", "policy", "sql-guard", "taint", "-")
  bool expected = false;   // the outcome is the one the scenario requires
};

// The demo's certificates, created where missing: under `certs_dir` a CA named `ca_name`
// with the servers larder-db and larder-compliance (127.0.0.1, localhost), the clients
// claude-client and other-client, and its CRL; under `rogue_dir` a rogue CA with its own
// claude-client (same name, wrong issuer).
Result<void> ensure_demo_pki(const std::string& certs_dir, const std::string& rogue_dir, const std::string& ca_name);
// Points `env` at those certificates (ca_file, claude, other, rogue).
void use_demo_pki(DemoEnvironment& env, const std::string& certs_dir, const std::string& rogue_dir);

// Mints the demo's tokens. Erin's and DAvID's are bound to claude-client's certificate and
// to both servers' audiences; the nurse token is scoped to one hospital.
struct DemoTokens {
  std::string erin, david, nurse;
};
Result<DemoTokens> mint_demo_tokens(const DemoEnvironment& env, const std::string& nurse_hospital);

// Runs every scenario in order; `on_outcome` sees each as soon as it is decided.
std::vector<ScenarioOutcome> run_demo_scenarios(const DemoEnvironment& env, const DemoTokens& tokens,
                                                const std::function<void(const ScenarioOutcome&)>& on_outcome);

}  // namespace larder::tools
