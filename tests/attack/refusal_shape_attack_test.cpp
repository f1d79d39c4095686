// Attacks that end in a refusal, checked for the shape the client receives, for every lock
// that can refuse each kind of call (docs/security-model.md, "What a refused client sees"):
//   tools/call      an isError result; _meta["larder/decision"] names the lock
//   resources/read  JSON-RPC error -32003 (mcp::error_code::kRefused), the message naming the
//   prompts/get     lock, and the same decision object as `data`
// Never -32603 Internal error, never a row. Locks by kind: biscuit, policy and limits refuse
// every kind; sql-guard only tools that take SQL; taint only egress tools (a resource or a
// prompt is never egress); database every kind (outage_attack_test.cpp, during an outage);
// mtls refuses the handshake, before any call (connection_attack_test.cpp).
#include "attack_env.h"

#include "mcp/jsonrpc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace larder::attack {
namespace {

constexpr const char* kSample = "pgmcp://healthcare/schemas/public/tables/health_records/sample";
constexpr const char* kPrompt = "generate_sql";
const nlohmann::json kPromptArgs = {{"nl_query", "how many admissions last year?"}};

// What a refused resources/read or prompts/get must look like: error -32003 whose message
// names `lock`, the decision object as data, and nothing of the table.
void expect_refused(const larder::Result<nlohmann::json>& r, const std::string& lock,
                    const std::string& what) {
  ASSERT_FALSE(r.ok()) << what << " was answered: " << r->dump();
  EXPECT_EQ(r.error().code, "mcp.rpc." + std::to_string(mcp::error_code::kRefused))
      << what << ": " << r.error().message;
  EXPECT_NE(r.error().message.find("refused by lock " + lock), std::string::npos)
      << what << ": " << r.error().message;
  auto data = nlohmann::json::parse(r.error().detail.empty() ? "null" : r.error().detail, nullptr, false);
  ASSERT_TRUE(data.is_object()) << what << ": the error carries no decision: '" << r.error().detail << "'";
  EXPECT_EQ(data.value("decision", ""), "deny") << what << ": " << data.dump();
  EXPECT_EQ(data.value("lock", ""), lock) << what << ": " << data.dump();
  EXPECT_FALSE(data.value("reason", "").empty()) << what << ": " << data.dump();
  for (const char* value : {"Erin oRTEga", "Medical Condition", "Billing Amount"})
    EXPECT_EQ(r.error().message.find(value) == std::string::npos &&
                  r.error().detail.find(value) == std::string::npos,
              true)
        << what << " carries '" << value << "': " << r.error().message << " " << r.error().detail;
}

// A refused tools/call: an isError result naming `lock`, no structured content.
void expect_refused_tool(const nlohmann::json& r, const std::string& lock, const std::string& what) {
  EXPECT_EQ(refused_lock(r), lock) << what << ": " << r.dump();
  EXPECT_TRUE(r.value("isError", false)) << what;
  EXPECT_FALSE(r.contains("structuredContent")) << what << ": " << r.dump();
  EXPECT_NE(text_of(r).find("refused by lock " + lock), std::string::npos) << what << ": " << r.dump();
}

}  // namespace

// Lock 2 (Biscuit): no token, and a token that is not one.
TEST(RefusalShapeAttack, BiscuitRefusesEachKindOfCallInItsDocumentedShape) {
  for (const std::string& token : {std::string(), std::string("not-a-biscuit")}) {
    const std::string what = token.empty() ? "no token" : "a garbage token";
    auto db = connect(env().db_url, token);
    expect_refused_tool(call(*db, "pg_query", {{"query", "SELECT 1"}}), "biscuit", what + ", tools/call");
    expect_refused(db->read_resource(kSample), "biscuit", what + ", resources/read");
    expect_refused(db->get_prompt(kPrompt, kPromptArgs), "biscuit", what + ", prompts/get");
  }
}

// Lock 2's policy: a valid token without the right for that kind of call.
TEST(RefusalShapeAttack, PolicyRefusesEachKindOfCallWithoutItsRight) {
  const std::string only_prompts = fresh_patient_token_with(env(), env().claude, R"(right("prompts/get");)");
  const std::string only_query = fresh_patient_token_with(env(), env().claude, R"(right("pg_query");)");
  auto a = connect(env().db_url, only_prompts);
  expect_refused_tool(call(*a, "pg_query", {{"query", "SELECT 1"}}), "policy",
                      "tools/call without right(pg_query)");
  expect_refused(a->read_resource(kSample), "policy", "resources/read without right(resources/read)");
  auto b = connect(env().db_url, only_query);
  expect_refused(b->get_prompt(kPrompt, kPromptArgs), "policy", "prompts/get without right(prompts/get)");
  // The rights it has still work: the refusals were the policy's, not a broken session.
  EXPECT_TRUE(a->get_prompt(kPrompt, kPromptArgs).ok());
  EXPECT_EQ(refused_lock(call(*b, "pg_query", {{"query", "SELECT 1"}})), "");
}

// Lock 3 (SQL guard) refuses tools that take SQL; taint refuses egress tools. Resources and
// prompts take no SQL from the caller and are never egress.
TEST(RefusalShapeAttack, SqlGuardAndTaintRefuseToolsInTheirShape) {
  const std::string token = fresh_patient_token();
  auto db = connect(env().db_url, token);
  expect_refused_tool(call(*db, "pg_query", {{"query", "DELETE FROM health_records"}}), "sql-guard",
                      "a DELETE through pg_query");
  ASSERT_EQ(refused_lock(call(*db, "pg_query", {{"query", "SELECT count(*) FROM health_records"}})), "");
  auto egress = connect(env().compliance_url, token);
  expect_refused_tool(call(*egress, "hipaa_compliance_check", {{"text", "hello"}}), "taint",
                      "egress after a sensitive read");
}

// Lock `limits`: a lineage over its call rate is refused for every kind of call. A server of
// its own on the shared cluster, allowing one call per lineage per second with no burst.
TEST(RefusalShapeAttack, LimitsRefuseEachKindOfCallOverTheLineageRate) {
  tools::ServeConfig c = bed().db_config();
  c.audit.path = (bed().dir() / "audit-refusal-shape-limits.jsonl").string();
  c.pipeline.lineage_limits.rate_per_second = 1;
  c.pipeline.lineage_limits.burst = 1;
  auto server = test::Testbed::start(c);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port()) + "/mcp";
  auto db = connect(url, fresh_patient_token());
  // Each kind: the first call of a rested lineage passes; calls right after it are refused
  // (the first refusal is checked; a few tries, so a stalled machine cannot refill the
  // bucket between two calls and fail the test); then the lineage rests for the next kind.
  // A sleep on purpose: the lineage's bucket refills by the wall clock (1 call/s).
  auto rest = [] { std::this_thread::sleep_for(std::chrono::milliseconds(1100)); };
  constexpr int kTries = 10;
  EXPECT_EQ(refused_lock(call(*db, "pg_query", {{"query", "SELECT 1"}})), "");
  nlohmann::json tool = nlohmann::json::object();
  for (int i = 0; i < kTries && refused_lock(tool).empty(); ++i)
    tool = call(*db, "pg_query", {{"query", "SELECT 1"}});
  expect_refused_tool(tool, "limits", "tools/call over the rate");
  rest();
  EXPECT_TRUE(db->read_resource(kSample).ok());
  auto read = db->read_resource(kSample);
  for (int i = 0; i < kTries && read.ok(); ++i) read = db->read_resource(kSample);
  expect_refused(read, "limits", "resources/read over the rate");
  rest();
  EXPECT_TRUE(db->get_prompt(kPrompt, kPromptArgs).ok());
  auto prompt = db->get_prompt(kPrompt, kPromptArgs);
  for (int i = 0; i < kTries && prompt.ok(); ++i) prompt = db->get_prompt(kPrompt, kPromptArgs);
  expect_refused(prompt, "limits", "prompts/get over the rate");
  server->stop();
}

// The wire shape itself, as a client that is not ours reads it: a raw resources/read.
TEST(RefusalShapeAttack, ARefusedReadIsJsonRpcErrorMinus32003WithTheDecisionNotAnInternalError) {
  const std::string session = raw_session(env().db_url);
  auto r = raw_post(
      env().db_url,
      nlohmann::json{
          {"jsonrpc", "2.0"}, {"id", 7}, {"method", "resources/read"}, {"params", {{"uri", kSample}}}}
          .dump(),
      "", session);
  // No token at all: MCP authorization's 401 with the challenge (http_auth_attack_test.cpp);
  // the body is the refusal all the same.
  ASSERT_EQ(r.status, 401) << r.body;
  // A JSON body, or one SSE event whose data line is the response.
  std::string text = r.body;
  if (auto at = text.find("data: "); text.rfind("{", 0) != 0 && at != std::string::npos)
    text = text.substr(at + 6, text.find('\n', at) - at - 6);
  auto body = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body["id"], 7);
  ASSERT_TRUE(body.contains("error")) << r.body;
  EXPECT_EQ(body["error"]["code"], mcp::error_code::kRefused) << r.body;
  EXPECT_NE(body["error"]["code"], mcp::error_code::kInternalError) << r.body;
  EXPECT_EQ(body["error"]["data"]["lock"], "biscuit") << r.body;
  EXPECT_EQ(body["error"]["data"]["decision"], "deny") << r.body;
  EXPECT_FALSE(body.contains("result")) << r.body;
}

}  // namespace larder::attack
