#include "attack_env.h"
#include "base/files.h"

#include "biscuit/token/token.h"
#include "gate/attestation.h"
#include "net/client.h"

#include <chrono>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>

namespace larder::attack {
namespace {

constexpr const char* kRights =
    R"(right("pg_query"); right("pg_explain"); right("pg_metadata"); right("resources/read"); right("prompts/get"); right("hipaa_compliance_check");)";

struct Installation {
  test::Testbed bed{test::Testbed::Options{}};
  tools::DemoEnvironment env;
  examples::healthcare::DemoTokens tokens;
  Installation() {
    bed.start_servers();
    env = bed.environment();
    auto minted = examples::healthcare::mint_demo_tokens(env, bed.busiest_hospital());
    if (!minted) throw std::runtime_error("attack env: " + minted.error().message);
    tokens = *minted;
  }
};

Installation& installation() {
  static Installation* it = new Installation();  // lives for the process: servers stay up
  return *it;
}

}  // namespace

test::Testbed& bed() {
  return installation().bed;
}
const tools::DemoEnvironment& env() {
  return installation().env;
}
const examples::healthcare::DemoTokens& tokens() {
  return installation().tokens;
}

std::string fresh_patient_token(const std::string& patient) {
  return fresh_patient_token_for(env().claude, patient);
}

std::string fresh_patient_token_for(const tools::ClientCert& holder, const std::string& patient) {
  return fresh_patient_token_in(env(), holder, patient);
}

std::string fresh_patient_token_in(const tools::DemoEnvironment& e, const tools::ClientCert& holder,
                                   const std::string& patient) {
  return fresh_patient_token_with(e, holder, kRights, patient);
}

std::string fresh_patient_token_with(const tools::DemoEnvironment& e, const tools::ClientCert& holder,
                                     const std::string& rights, const std::string& patient) {
  biscuit::BiscuitBuilder builder;
  builder.set_root_key_id(e.root_key_id);
  auto expiry = std::chrono::system_clock::now() + std::chrono::hours(24);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count();
  auto added = builder.add_code(
      std::string("patient_name({name});\n") + rights + "\ncheck if time($time), $time <= {expiry};",
      biscuit::Params().string("name", patient).date("expiry", static_cast<uint64_t>(seconds)));
  if (!added) throw std::runtime_error("fresh token: " + added.error().message);
  auto token = builder.build(e.root);
  if (!token) throw std::runtime_error("fresh token: " + token.error().message);
  auto bound = gate::attest(*token, file_text(holder.cert), {"larder-db", "larder-compliance"});
  if (!bound) throw std::runtime_error("fresh token: " + bound.error().message);
  return *bound;
}

net::TlsClientConfig claude_tls() {
  return tls_of(env().claude);
}

net::TlsClientConfig tls_of(const tools::ClientCert& holder) {
  return net::TlsClientConfig{env().ca_file, holder.cert, holder.key, "", false};
}

std::unique_ptr<mcp::Client> connect(const std::string& url, const std::string& token) {
  return connect_with(url, token, claude_tls());
}

std::unique_ptr<mcp::Client> connect_with(const std::string& url, const std::string& token,
                                          const net::TlsClientConfig& tls) {
  net::HeaderList headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  auto client = mcp::Client::connect_http(url, tls, headers);
  if (!client) throw std::runtime_error("connect " + url + ": " + client.error().message);
  return std::move(*client);
}

nlohmann::json call(mcp::Client& client, const std::string& tool, nlohmann::json arguments) {
  auto r = client.call_tool(tool, std::move(arguments));
  if (!r) throw std::runtime_error("tools/call " + tool + ": " + r.error().message);
  return *r;
}

std::string refused_lock(const nlohmann::json& result) {
  if (!result.value("isError", false)) return "";
  auto meta = result.find("_meta");
  if (meta == result.end() || !meta->contains("larder/decision")) return "?";
  return (*meta)["larder/decision"].value("lock", "?");
}

std::string text_of(const nlohmann::json& result) {
  std::string out;
  for (const auto& item : result.value("content", nlohmann::json::array())) out += item.value("text", "");
  return out;
}

namespace {
std::pair<std::string, std::string> split_url(const std::string& url) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme + 3);
  return {url.substr(0, slash), slash == std::string::npos ? "/" : url.substr(slash)};
}
}  // namespace

std::string file_text(const std::string& path) {
  auto text = larder::read_file(path);
  if (!text) throw std::runtime_error(text.error().message);
  return *text;
}

RawResponse raw_post(const std::string& url, const std::string& body, const std::string& token,
                     const std::string& session_id) {
  auto [base, target] = split_url(url);
  auto client = net::HttpClient::create(base, claude_tls());
  if (!client) throw std::runtime_error("raw client: " + client.error().message);
  net::HeaderList headers = {{"Content-Type", "application/json"},
                             {"Accept", "application/json, text/event-stream"},
                             {"MCP-Protocol-Version", "2025-06-18"}};
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  if (!session_id.empty()) headers.emplace_back("Mcp-Session-Id", session_id);
  auto r = (*client)->request("POST", target, headers, body, std::chrono::seconds(60));
  if (!r) return RawResponse{0, r.error().message, {}};
  return RawResponse{r->status, r->body, r->headers};
}

std::optional<std::string> RawResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  return std::nullopt;
}

std::string raw_session(const std::string& url, const std::string& token) {
  auto [base, target] = split_url(url);
  auto client = net::HttpClient::create(base, claude_tls());
  if (!client) throw std::runtime_error("raw client: " + client.error().message);
  net::HeaderList headers = {{"Content-Type", "application/json"},
                             {"Accept", "application/json, text/event-stream"}};
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  const std::string init =
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}})";
  auto r = (*client)->request("POST", target, headers, init, std::chrono::seconds(30));
  if (!r) throw std::runtime_error("raw initialize: " + r.error().message);
  auto id = r->header("mcp-session-id");
  if (!id)
    throw std::runtime_error("raw initialize: no session id (status " + std::to_string(r->status) + ")");
  headers.emplace_back("Mcp-Session-Id", *id);
  headers.emplace_back("MCP-Protocol-Version", "2025-06-18");
  (void)(*client)->request("POST", target, headers,
                           R"({"jsonrpc":"2.0","method":"notifications/initialized"})",
                           std::chrono::seconds(30));
  return *id;
}

}  // namespace larder::attack
