// The installation every attack runs against: one Testbed per test binary (a throwaway
// PostgreSQL with the healthcare data, our PKI, both servers as `larder serve` assembles
// them), the demo's tokens (Erin's and DAvID's bound to claude-client), and small helpers to
// speak to the servers the way an attacker with a valid certificate would.
#pragma once

#include "examples/healthcare/demo.h"
#include "mcp/client.h"
#include "support/testbed.h"
#include "tools/demo_scenarios.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace larder::attack {

test::Testbed& bed();  // started once, servers running
const tools::DemoEnvironment& env();
const examples::healthcare::DemoTokens& tokens();  // fresh lineages are minted with fresh_patient_token()

// A new token for `patient`, bound to claude-client and both audiences, from the root key:
// a lineage no other test has touched.
std::string fresh_patient_token(const std::string& patient = "Erin oRTEga");
// The same, bound to another client certificate (e.g. env().other).
std::string fresh_patient_token_for(const tools::ClientCert& holder,
                                    const std::string& patient = "Erin oRTEga");
// The same for another installation (a test's own Testbed): its root key, bound to `holder`.
std::string fresh_patient_token_in(const tools::DemoEnvironment& installation,
                                   const tools::ClientCert& holder,
                                   const std::string& patient = "Erin oRTEga");
// The same with only `rights` (Datalog facts, e.g. `right("pg_query");`) instead of every right.
std::string fresh_patient_token_with(const tools::DemoEnvironment& installation,
                                     const tools::ClientCert& holder, const std::string& rights,
                                     const std::string& patient = "Erin oRTEga");

// A file's text (a certificate to bind a token to); throws when it cannot be read.
std::string file_text(const std::string& path);

// claude-client's TLS settings (our CA, its certificate and key).
net::TlsClientConfig claude_tls();
net::TlsClientConfig tls_of(const tools::ClientCert& holder);  // our CA, the holder's certificate and key

// An MCP client over mTLS to `url` presenting `token` as `Authorization: Bearer`.
std::unique_ptr<mcp::Client> connect(const std::string& url, const std::string& token);
// The same with the given TLS settings (another installation's CA and client certificate).
std::unique_ptr<mcp::Client> connect_with(const std::string& url, const std::string& token,
                                          const net::TlsClientConfig& tls);

// tools/call → the result object (isError + _meta["larder/decision"]); throws on transport errors.
nlohmann::json call(mcp::Client& client, const std::string& tool, nlohmann::json arguments);

// The lock named by a result's _meta["larder/decision"], "" when allowed or absent.
std::string refused_lock(const nlohmann::json& result);

// The whole text of a result's content items.
std::string text_of(const nlohmann::json& result);

// One raw HTTPS exchange with claude-client's certificate: `body` POSTed to `url` with the
// given extra headers; returns status and body. For what the MCP client would never send.
struct RawResponse {
  int status = 0;
  std::string body;
  net::HeaderList headers;
  std::optional<std::string> header(std::string_view name) const;
};
RawResponse raw_post(const std::string& url, const std::string& body, const std::string& token = "",
                     const std::string& session_id = "");

// A session id after a raw initialize on `url` (for raw tools/call bodies).
std::string raw_session(const std::string& url, const std::string& token = "");

}  // namespace larder::attack
