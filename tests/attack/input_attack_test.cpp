// Attacks on the JSON input boundary (finding 3, and the batch part of finding 9): a client
// with a valid certificate and no token sends JSON nested 150,000 levels deep (≈300 KB), which
// used to overflow a thread's stack and kill the server, or a batch of 2,000 tool calls. Every
// server answers with a clear JSON-RPC error and keeps serving.
#include "attack_env.h"

#include "net/client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace larder::attack {
namespace {

using nlohmann::json;

std::string deep_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// The finding's body: {"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":[[[…]]]}}.
std::string finding_body(std::size_t depth = 150000) {
  return R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":)" + deep_arrays(depth) + "}}";
}

std::string deep_objects_body(std::size_t depth = 100000) {
  std::string body = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":)";
  for (std::size_t i = 0; i < depth; ++i) body += R"({"a":)";
  return body + "1" + std::string(depth, '}') + "}";
}

// Asserts a JSON-RPC error answer with `code` whose message contains `needle`.
void expect_rpc_error(const RawResponse& r, int status, int code, const std::string& needle) {
  EXPECT_EQ(r.status, status) << r.body.substr(0, 300);
  auto j = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body.substr(0, 300);
  EXPECT_EQ(j["jsonrpc"], "2.0");
  EXPECT_EQ(j["error"]["code"], code) << j.dump();
  EXPECT_NE(j["error"].value("message", "").find(needle), std::string::npos) << j.dump();
}

// The server still answers a normal MCP client afterwards.
void expect_still_serving(const std::string& url, const std::string& tool, const json& arguments) {
  auto client = connect(url, fresh_patient_token());
  auto r = call(*client, tool, arguments);
  EXPECT_EQ(refused_lock(r), "") << r.dump();
  EXPECT_TRUE(client->ping().ok());
}

std::vector<json> audit_records() {
  std::ifstream in(env().audit_log);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// A refused message leaves exactly one audit record (finding 9): the JSON-RPC error, no tool.
void expect_one_refusal_recorded(std::size_t before, int code) {
  auto all = audit_records();
  ASSERT_EQ(all.size(), before + 1) << "a refused message must leave one record, and nothing of it may run";
  const json& r = all.back();
  EXPECT_EQ(r["decision"], "error") << r.dump();
  EXPECT_NE(r.value("reason", "").find(std::to_string(code)), std::string::npos) << r.dump();
  EXPECT_TRUE(!r.contains("tool") || r["tool"].is_null() || r["tool"] == "") << r.dump();
}

std::string base_of(const std::string& url) {
  return url.substr(0, url.find('/', url.find("://") + 3));
}

// A raw Streamable HTTP session under protocol revision 2025-03-26, the one revision with
// JSON-RPC batches.
std::string batch_session(const std::string& url, const std::string& token) {
  auto client = net::HttpClient::create(base_of(url), claude_tls());
  if (!client) throw std::runtime_error(client.error().message);
  net::HeaderList headers = {{"Content-Type", "application/json"},
                             {"Accept", "application/json, text/event-stream"},
                             {"Authorization", "Bearer " + token}};
  auto r = (*client)->request(
      "POST", "/mcp", headers,
      R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26",)"
      R"("capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}})");
  if (!r) throw std::runtime_error(r.error().message);
  auto sid = r->header("mcp-session-id");
  if (!sid) throw std::runtime_error("no session id: " + r->body);
  EXPECT_EQ(json::parse(r->body)["result"]["protocolVersion"], "2025-03-26");
  headers.emplace_back("Mcp-Session-Id", *sid);
  (void)(*client)->request("POST", "/mcp", headers,
                           R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  return *sid;
}

TEST(InputAttack, TheFindingsBodyGetsAClearErrorFromBothServersWithoutAToken) {
  for (const std::string& url : {env().db_url, env().compliance_url}) {
    expect_rpc_error(raw_post(url, finding_body()), 400, -32700, "JSON nested deeper than 64 levels");
    expect_rpc_error(raw_post(url, deep_objects_body()), 400, -32700, "JSON nested deeper than 64 levels");
    // Never closed: the same refusal, not a wait for the rest.
    expect_rpc_error(raw_post(url, std::string(300000, '[')), 400, -32700,
                     "JSON nested deeper than 64 levels");
  }
  expect_still_serving(env().db_url, "pg_explain", {{"query", "SELECT 1"}});
  expect_still_serving(env().compliance_url, "hipaa_compliance_check", {{"text", "nothing to see"}});
}

TEST(InputAttack, TheFindingsBodyInsideASessionGetsTheSameErrorAndTheSessionGoesOn) {
  for (const std::string& url : {env().db_url, env().compliance_url}) {
    const std::string token = fresh_patient_token();
    const std::string sid = raw_session(url, token);
    for (int i = 0; i < 3; ++i) {
      expect_rpc_error(raw_post(url, finding_body(), token, sid), 400, -32700,
                       "JSON nested deeper than 64 levels");
    }
    auto ping = raw_post(url, R"({"jsonrpc":"2.0","id":2,"method":"ping"})", token, sid);
    EXPECT_EQ(ping.status, 200) << ping.body;
    EXPECT_EQ(json::parse(ping.body)["result"], json::object()) << ping.body;
  }
}

TEST(InputAttack, DeepJsonInsideAToolArgumentIsRefusedBeforeTheGate) {
  const std::string token = fresh_patient_token();
  const std::string sid = raw_session(env().db_url, token);
  const auto before = audit_records().size();
  // message(1) → params(2) → arguments(3) → params: 100 more levels.
  auto r = raw_post(
      env().db_url,
      R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pg_query","arguments":{"query":"SELECT 1","params":)" +
          deep_arrays(100) + "}}}",
      token, sid);
  expect_rpc_error(r, 400, -32700, "JSON nested deeper than 64 levels");
  expect_one_refusal_recorded(before, -32700);

  // At the limit the call is served: schema validation refuses the nested params (no crash).
  r = raw_post(
      env().db_url,
      R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"pg_query","arguments":{"query":"SELECT 1","params":)" +
          deep_arrays(61) + "}}}",
      token, sid);
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 300);
  auto j = json::parse(r.body);
  EXPECT_TRUE(j.contains("error") || j["result"].value("isError", false)) << j.dump();

  // A deep document inside a string argument is only text: it never becomes a tree.
  auto client = connect(env().db_url, token);
  auto text = call(*client, "pg_explain", {{"query", "SELECT 1 AS \"" + deep_arrays(1000) + "\""}});
  EXPECT_NE(refused_lock(text), "?") << text.dump().substr(0, 300);
  EXPECT_TRUE(client->ping().ok());
}

TEST(InputAttack, DeepJsonComingBackFromTheDatabaseStaysText) {
  // json/jsonb nest as deep as the query makes them; the value is returned as text, so the
  // result stays inside every client's nesting limit.
  auto client = connect(env().db_url, fresh_patient_token());
  auto r =
      call(*client, "pg_query", {{"query", "SELECT (repeat('[', 5000) || repeat(']', 5000))::json AS j"}});
  ASSERT_EQ(refused_lock(r), "") << r.dump().substr(0, 300);
  const auto& rows = r["structuredContent"]["rows"];
  ASSERT_EQ(rows.size(), 1u) << r.dump().substr(0, 300);
  EXPECT_TRUE(rows[0]["j"].is_string());
  EXPECT_EQ(rows[0]["j"].get<std::string>().size(), 10000u);
  auto shallow = call(*client, "pg_query", {{"query", R"(SELECT '{"a":[1,{"b":2}]}'::jsonb AS j)"}});
  ASSERT_EQ(refused_lock(shallow), "") << shallow.dump();
  EXPECT_EQ(shallow["structuredContent"]["rows"][0]["j"]["a"][1]["b"], 2);
}

TEST(InputAttack, ABatchOfTwoThousandToolCallsIsRefusedWhole) {
  const std::string token = fresh_patient_token();
  const std::string sid = batch_session(env().db_url, token);
  json batch = json::array();
  for (int i = 0; i < 2000; ++i) {
    batch.push_back({{"jsonrpc", "2.0"},
                     {"id", i + 1},
                     {"method", "tools/call"},
                     {"params", {{"name", "pg_query"}, {"arguments", {{"query", "SELECT 1"}}}}}});
  }
  const auto before = audit_records().size();
  expect_rpc_error(raw_post(env().db_url, batch.dump(), token, sid), 400, -32600,
                   "a batch of 2000 messages exceeds the limit of 32");
  expect_one_refusal_recorded(before, -32600);
  expect_rpc_error(raw_post(env().db_url, "[]", token, sid), 400, -32600, "empty batch");

  // A small batch is still served in that revision.
  auto small = raw_post(
      env().db_url, R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}])",
      token, sid);
  EXPECT_EQ(small.status, 200) << small.body;
  EXPECT_EQ(json::parse(small.body).size(), 2u) << small.body;

  // Revisions after 2025-03-26 have no batches at all.
  const std::string modern = raw_session(env().db_url, token);
  expect_rpc_error(raw_post(env().db_url, batch.dump(), token, modern), 400, -32600,
                   "only allowed in protocol revision 2025-03-26");
}

TEST(InputAttack, TheLegacySseTransportRefusesDeepBodiesToo) {
  for (const std::string& url : {env().db_url, env().compliance_url}) {
    const std::string base = base_of(url);
    auto stream = net::HttpClient::create(base, claude_tls());
    ASSERT_TRUE(stream.ok()) << stream.error().message;
    std::promise<std::string> endpoint;
    std::string events;
    bool published = false;
    std::thread reader([&] {
      (void)(*stream)->request_stream(
          "GET", "/sse", {{"Accept", "text/event-stream"}}, "", [](const net::ClientResponse&) {},
          [&](std::string_view chunk) {
            events.append(chunk);
            auto at = events.find("/messages?sessionId=");
            if (!published && at != std::string::npos && events.find('\n', at) != std::string::npos) {
              endpoint.set_value(events.substr(at, events.find('\n', at) - at));
              published = true;
            }
            return events.find(R"("id":77)") == std::string::npos;  // until the answer below
          },
          std::chrono::seconds(30));
      if (!published) endpoint.set_value("");
    });
    auto path = endpoint.get_future().get();
    ASSERT_FALSE(path.empty()) << events;
    expect_rpc_error(raw_post(base + path, finding_body()), 400, -32700, "JSON nested deeper than 64 levels");
    // The session is intact: its initialize is answered on the stream.
    auto init =
        raw_post(base + path,
                 R"({"jsonrpc":"2.0","id":77,"method":"initialize","params":{"protocolVersion":"2024-11-05",)"
                 R"("capabilities":{},"clientInfo":{"name":"attacker","version":"1"}}})");
    EXPECT_EQ(init.status, 202) << init.body;
    reader.join();
    EXPECT_NE(events.find(R"("protocolVersion":"2024-11-05")"), std::string::npos) << events;
  }
}

}  // namespace
}  // namespace larder::attack
