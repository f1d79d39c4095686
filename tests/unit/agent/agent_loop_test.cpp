// The agent loop end to end against the loopback fake LLM server (real providers, real
// libcurl) and the in-process ClinicToolHost double.
#include "agent/agent.h"
#include "agent/anthropic.h"
#include "agent/ask.h"
#include "agent/fake_llm_server.h"
#include "agent/openai.h"
#include "clinic_tool_host.h"
#include "support/wait.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace larder::agent {
namespace {

using larder::testing::FakeLlmServer;
using testing::ClinicToolHost;
using testing::kRootToken;
using testing::kTaintedToken;

const std::string kApiKey = "sk-ant-test-key-0123456789";

std::string fixture(const std::string& name) {
  return std::string(LARDER_SOURCE_DIR) + "/tests/fixtures/llm/" + name;
}

struct Harness {
  explicit Harness(FakeLlmServer::Api api, const std::string& script) : server(api) {
    std::string err;
    EXPECT_TRUE(server.start(&err)) << err;
    EXPECT_TRUE(server.load_script(fixture(script), &err)) << err;
    server.set_expected_api_key(kApiKey);
    ProviderConfig cfg;
    cfg.kind = api == FakeLlmServer::Api::Anthropic ? ProviderKind::Anthropic : ProviderKind::OpenAi;
    cfg.base_url = server.base_url();
    cfg.api_key = kApiKey;
    cfg.model = "test-model";
    cfg.retry.sleep = [this](std::chrono::milliseconds d) { waits.push_back(d); };
    auto p = make_provider(cfg);
    EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
    provider = std::move(*p);
    tokens = std::make_shared<TokenStore>(kRootToken);
  }

  // No request body may carry a token, key or certificate.
  void expect_no_secrets() {
    for (const auto& r : server.requests()) {
      EXPECT_EQ(r.body.find(kRootToken), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find(kTaintedToken), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find("BEGIN PRIVATE KEY"), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find("biscuit_token"), std::string::npos) << r.body;
      EXPECT_EQ(r.body.find("larder/biscuit_token"), std::string::npos) << r.body;
    }
  }

  FakeLlmServer server;
  std::unique_ptr<Provider> provider;
  std::shared_ptr<TokenStore> tokens;
  std::vector<std::chrono::milliseconds> waits;
  ClinicToolHost host;
};

TEST(AgentLoop, AnthropicQueryThenAnswer) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_pg_query.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("Which condition is most common?");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  EXPECT_EQ(run.answer, "Diabetes is the most common condition (2 patients).");
  ASSERT_EQ(run.steps.size(), 1u);
  EXPECT_EQ(run.steps[0].server, "larder-db");
  EXPECT_EQ(run.steps[0].tool, "pg_query");
  ASSERT_TRUE(run.steps[0].sql);
  EXPECT_NE(run.steps[0].sql->find("GROUP BY"), std::string::npos);
  EXPECT_EQ(run.steps[0].decisions.size(), 2u);
  EXPECT_EQ(run.steps[0].structured["row_count"], 2);
  EXPECT_EQ(run.usage.input_tokens, 812 + 990);
  EXPECT_EQ(exit_status_for(run), kExitOk);
  // The agent injected the token; the model never saw it.
  ASSERT_EQ(h.host.calls.size(), 1u);
  EXPECT_EQ(h.host.calls[0].args["biscuit_token"], kRootToken);
  EXPECT_TRUE(h.server.violations().empty()) << h.server.violations().front();
  ASSERT_EQ(h.server.requests().size(), 2u);
  auto first = nlohmann::json::parse(h.server.requests()[0].body);
  EXPECT_EQ(first["model"], "test-model");
  EXPECT_NE(first["system"].get<std::string>().find("Medical Condition"), std::string::npos);
  ASSERT_EQ(first["tools"].size(), 2u);
  EXPECT_FALSE(first["tools"][0]["input_schema"]["properties"].contains("biscuit_token"));
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  EXPECT_EQ(second["messages"][2]["content"][0]["type"], "tool_result");
  EXPECT_EQ(second["messages"][2]["content"][0]["tool_use_id"], "toolu_01");
  h.expect_no_secrets();
  EXPECT_EQ(h.server.requests()[0].header("x-api-key"), kApiKey);
  EXPECT_EQ(h.server.requests()[0].header("anthropic-version"), "2023-06-01");
}

TEST(AgentLoop, OpenAiQueryThenAnswer) {
  Harness h(FakeLlmServer::Api::OpenAi, "openai_pg_query.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("Which condition is most common?");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  EXPECT_EQ(run.answer, "Diabetes leads with 2 patients.");
  ASSERT_EQ(run.steps.size(), 1u);
  EXPECT_TRUE(run.steps[0].called);
  EXPECT_TRUE(h.server.violations().empty()) << h.server.violations().front();
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  EXPECT_EQ(second["messages"][0]["role"], "system");
  EXPECT_EQ(second["messages"][2]["role"], "assistant");
  EXPECT_TRUE(second["messages"][2]["tool_calls"][0]["function"]["arguments"].is_string());
  EXPECT_EQ(second["messages"][3]["role"], "tool");
  EXPECT_EQ(second["messages"][3]["tool_call_id"], "call_abc");
  EXPECT_EQ(h.server.requests()[0].header("authorization"), "Bearer " + kApiKey);
  h.expect_no_secrets();
}

TEST(AgentLoop, RetriesOn429And529ThenSucceeds) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_retry_then_success.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("hi");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  EXPECT_EQ(run.answer, "Hello after retries.");
  EXPECT_EQ(h.server.requests().size(), 3u);
  ASSERT_EQ(h.waits.size(), 2u);
  EXPECT_EQ(h.waits[0], std::chrono::milliseconds(2000));  // honoured retry-after: 2
  EXPECT_TRUE(h.server.violations().empty());
}

TEST(AgentLoop, OpenAiRetriesOn503And429) {
  Harness h(FakeLlmServer::Api::OpenAi, "openai_retry_then_success.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("hi");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  EXPECT_EQ(run.answer, "ok");
  ASSERT_EQ(h.waits.size(), 2u);
  EXPECT_EQ(h.waits[1], std::chrono::milliseconds(5));  // retry-after-ms
}

TEST(AgentLoop, GivesUpAfterMaxAttempts) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  for (int i = 0; i < 3; ++i)
    server.enqueue(
        {529, {}, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"});
  ProviderConfig cfg;
  cfg.base_url = server.base_url();
  cfg.api_key = kApiKey;
  cfg.retry.max_attempts = 3;
  cfg.retry.sleep = [](std::chrono::milliseconds) {};
  auto p = make_provider(cfg);
  ASSERT_TRUE(p.ok());
  ChatRequest req;
  req.messages.push_back({Role::User, "hi", {}, {}});
  auto r = (*p)->complete(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "llm.unavailable");
  EXPECT_NE(r.error().message.find("overloaded_error: Overloaded"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(AgentLoop, UnauthorizedIsAClearErrorAndExitStatus) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_unauthorized.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("hi");
  EXPECT_EQ(run.status, AgentStatus::ProviderError);
  ASSERT_TRUE(run.error);
  EXPECT_EQ(run.error->code, "llm.auth");
  EXPECT_NE(run.error->message.find("authentication_error: invalid x-api-key"), std::string::npos)
      << run.error->message;
  EXPECT_NE(run.error->message.find("ANTHROPIC_API_KEY"), std::string::npos);
  EXPECT_EQ(exit_status_for(run), kExitProviderAuth);
  EXPECT_EQ(h.server.requests().size(), 1u);  // 401 is not retried
}

TEST(AgentLoop, MalformedToolInputGoesBackToTheModel) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_malformed_input.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("one?");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  ASSERT_EQ(run.steps.size(), 3u);
  EXPECT_FALSE(run.steps[0].called);
  EXPECT_TRUE(run.steps[0].is_error);
  EXPECT_NE(run.steps[0].text.find("must be a JSON object"), std::string::npos) << run.steps[0].text;
  EXPECT_FALSE(run.steps[1].called);
  EXPECT_NE(run.steps[1].text.find("$.sql: must be string"), std::string::npos) << run.steps[1].text;
  EXPECT_NE(run.steps[1].text.find("$.limit: must be <= 1000"), std::string::npos) << run.steps[1].text;
  EXPECT_TRUE(run.steps[2].called);
  EXPECT_EQ(h.host.calls.size(), 1u);  // only the valid call reached the server
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  EXPECT_EQ(second["messages"][2]["content"][0]["is_error"], true);
  EXPECT_TRUE(h.server.violations().empty()) << h.server.violations().front();
  EXPECT_EQ(exit_status_for(run), kExitOk);
}

TEST(AgentLoop, OpenAiArgumentsThatAreNotJson) {
  Harness h(FakeLlmServer::Api::OpenAi, "openai_malformed_arguments.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("one?");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  ASSERT_EQ(run.steps.size(), 2u);
  EXPECT_FALSE(run.steps[0].called);
  EXPECT_NE(run.steps[0].text.find("not valid JSON"), std::string::npos);
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  // The model's own (broken) arguments are sent back verbatim, followed by our error.
  EXPECT_EQ(second["messages"][2]["tool_calls"][0]["function"]["arguments"], "{sql: SELECT 1");
  EXPECT_NE(second["messages"][3]["content"].get<std::string>().find("ERROR:"), std::string::npos);
  EXPECT_TRUE(h.server.violations().empty()) << h.server.violations().front();
}

TEST(AgentLoop, ToolErrorReachesModelAndUser) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_tool_error.json");
  h.host.refuse_queries = true;
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("all admissions");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  ASSERT_EQ(run.steps.size(), 1u);
  EXPECT_TRUE(run.steps[0].is_error);
  EXPECT_TRUE(run.steps[0].called);
  EXPECT_NE(run.steps[0].text.find("policy"), std::string::npos);
  ASSERT_EQ(run.steps[0].decisions.size(), 1u);
  EXPECT_EQ(run.steps[0].decisions[0].decision, "deny");
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  EXPECT_EQ(second["messages"][2]["content"][0]["is_error"], true);
  EXPECT_EQ(exit_status_for(run), kExitToolError);
}

TEST(AgentLoop, MaxStepsStopsWithAClearError) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_loop_forever.json");
  AgentOptions opts;
  opts.max_steps = 2;
  Agent agent(*h.provider, h.host, h.tokens, opts);
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("loop");
  EXPECT_EQ(run.status, AgentStatus::MaxSteps);
  EXPECT_EQ(run.model_turns, 2);
  ASSERT_TRUE(run.error);
  EXPECT_NE(run.error->message.find("--max-steps"), std::string::npos);
  EXPECT_EQ(exit_status_for(run), kExitMaxSteps);
  EXPECT_EQ(h.server.requests().size(), 2u);
  EXPECT_EQ(h.server.pending_replies(), 1u);
}

TEST(AgentLoop, SwitchesToTheAttenuatedTokenFromMeta) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_two_queries.json");
  h.host.attenuate_on_read = true;
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("names, then count, then report");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  ASSERT_EQ(h.host.calls.size(), 3u);
  EXPECT_EQ(h.host.calls[0].args["biscuit_token"], kRootToken);
  EXPECT_EQ(h.host.calls[1].args["biscuit_token"], kTaintedToken);
  // send_report's schema has no biscuit_token: nothing is injected (the transport's job).
  EXPECT_FALSE(h.host.calls[2].args.contains("biscuit_token"));
  EXPECT_EQ(h.tokens->current(), kTaintedToken);
  EXPECT_TRUE(run.steps[0].token_switched);
  EXPECT_FALSE(run.steps[1].token_switched);
  EXPECT_TRUE(run.steps[2].is_error);
  EXPECT_EQ(exit_status_for(run), kExitToolError);
  EXPECT_TRUE(h.server.violations().empty()) << h.server.violations().front();
  h.expect_no_secrets();
}

TEST(AgentLoop, StripsTokensKeysAndMetaFromResults) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_pg_query.json");
  h.host.leak_secrets_in_results = true;
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("Which condition is most common?");
  EXPECT_EQ(run.status, AgentStatus::Answered);
  h.expect_no_secrets();
  auto second = nlohmann::json::parse(h.server.requests()[1].body);
  std::string result = second["messages"][2]["content"][0]["content"];
  EXPECT_NE(result.find(kRedacted), std::string::npos);
  EXPECT_EQ(result.find("_meta"), std::string::npos);
  // What the user sees is redacted too.
  EXPECT_EQ(run.steps[0].structured.dump().find(kRootToken), std::string::npos);
  EXPECT_FALSE(run.steps[0].structured.contains("_meta"));
}

TEST(AgentLoop, ModelCannotChooseTheToken) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  server.enqueue({200, {}, R"({"type":"message","role":"assistant","model":"m","stop_reason":"tool_use",
    "content":[{"type":"tool_use","id":"t1","name":"pg_query","input":{"sql":"SELECT 1","biscuit_token":"forged"}}]})"});
  server.enqueue({200, {}, R"({"type":"message","role":"assistant","model":"m","stop_reason":"end_turn",
    "content":[{"type":"text","text":"done"}]})"});
  ProviderConfig cfg;
  cfg.base_url = server.base_url();
  cfg.api_key = kApiKey;
  auto p = make_provider(cfg);
  ASSERT_TRUE(p.ok());
  ClinicToolHost host;
  auto tokens = std::make_shared<TokenStore>();  // no token configured
  Agent agent(**p, host, tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  AgentRun run = agent.ask("q");
  // The forged value is dropped; with no token configured nothing is injected, and the
  // server's own lock gives the authoritative refusal.
  ASSERT_EQ(host.calls.size(), 1u);
  EXPECT_FALSE(host.calls[0].args.contains("biscuit_token"));
  EXPECT_FALSE(run.steps[0].arguments.contains("biscuit_token"));
}

TEST(AgentLoop, RefusesToSendAKnownSecret) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_pg_query.json");
  Redactor secrets;
  secrets.add_secret("header-secret-value-123");
  h.host.schema = "schema mentions header-secret-value-123";  // would reach the system prompt
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{}, secrets);
  ASSERT_TRUE(agent.prepare().ok());
  EXPECT_EQ(agent.system_prompt().find("header-secret-value-123"), std::string::npos);
  AgentRun run = agent.ask("tell me header-secret-value-123");
  EXPECT_EQ(run.status, AgentStatus::Answered);  // redacted, so it may go out
  for (const auto& r : h.server.requests())
    EXPECT_EQ(r.body.find("header-secret-value-123"), std::string::npos);
}

TEST(AgentLoop, ConversationContinuesAcrossQuestions) {
  FakeLlmServer server(FakeLlmServer::Api::OpenAi);
  ASSERT_TRUE(server.start());
  for (const char* text : {"first", "second"})
    server.enqueue({200,
                    {},
                    nlohmann::json{{"choices",
                                    {{{"finish_reason", "stop"},
                                      {"message", {{"role", "assistant"}, {"content", text}}}}}}}
                        .dump()});
  ProviderConfig cfg;
  cfg.kind = ProviderKind::OpenAi;
  cfg.base_url = server.base_url();  // no key: a local server
  auto p = make_provider(cfg);
  ASSERT_TRUE(p.ok());
  ClinicToolHost host;
  Agent agent(**p, host, std::make_shared<TokenStore>(kRootToken), AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  EXPECT_EQ(agent.ask("q1").answer, "first");
  EXPECT_EQ(agent.ask("q2").answer, "second");
  auto body = nlohmann::json::parse(server.requests()[1].body);
  ASSERT_EQ(body["messages"].size(), 4u);  // system, q1, first, q2
  EXPECT_EQ(body["messages"][2]["content"], "first");
  EXPECT_TRUE(server.requests()[0].header("authorization").empty());
  EXPECT_TRUE(server.violations().empty()) << server.violations().front();
}

// ---- Ctrl-C: cancelling a question ----

TEST(AgentLoop, CancelAbortsTheModelRequestInFlight) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_slow_answer.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  std::vector<std::string> progress;
  agent.on_progress = [&](const std::string& what) { progress.push_back(what); };
  CancellationToken cancel;
  std::thread ctrl_c([&] {
    // Ctrl-C once the model request is in flight (the fake has it), not after a guessed delay.
    EXPECT_TRUE(test::wait_until([&] { return !h.server.requests().empty(); }, std::chrono::seconds(10)))
        << "the model request never reached the fake";
    cancel.cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  AgentRun run = agent.ask("slow question", cancel);
  const auto took = std::chrono::steady_clock::now() - start;
  ctrl_c.join();
  EXPECT_EQ(run.status, AgentStatus::Cancelled);
  EXPECT_EQ(exit_status_for(run), kExitInterrupted);
  EXPECT_LT(took, std::chrono::seconds(3)) << "the request was not aborted";
  EXPECT_EQ(h.server.requests().size(), 1u);
  EXPECT_TRUE(test::wait_until([&] { return h.server.abandoned() != 0; }, std::chrono::seconds(5)));
  EXPECT_EQ(h.server.abandoned(), 1u) << "the fake still held an open request";
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0], "waiting for the model (test-model)");
  EXPECT_EQ(progress[1], "");
  EXPECT_NE(render_run(run, RenderOptions{}).find("(cancelled)"), std::string::npos);
}

TEST(AgentLoop, ACancelledQuestionLeavesTheConversationAsItWas) {
  Harness h(FakeLlmServer::Api::Anthropic, "anthropic_pg_query.json");
  Agent agent(*h.provider, h.host, h.tokens, AgentOptions{});
  ASSERT_TRUE(agent.prepare().ok());
  CancellationToken cancel;
  cancel.cancel();
  AgentRun run = agent.ask("q", cancel);
  EXPECT_EQ(run.status, AgentStatus::Cancelled);
  EXPECT_TRUE(h.server.requests().empty());
  std::vector<std::string> progress;
  agent.on_progress = [&](const std::string& what) { progress.push_back(what); };
  EXPECT_EQ(agent.ask("q").status, AgentStatus::Answered);
  // The model is asked, pg_query runs, the model is asked again.
  ASSERT_GE(progress.size(), 3u);
  EXPECT_EQ(progress[1], "running pg_query");
  ASSERT_EQ(h.server.requests().size(), 2u);
  auto body = nlohmann::json::parse(h.server.requests()[0].body);
  EXPECT_EQ(body["messages"].size(), 1u);  // nothing of the cancelled question
}

// ---- run_ask: configuration → exit statuses ----

class RunAsk : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "BISCUIT_TOKEN", "PG_MCP_URL",
                          "LARDER_PROVIDER", "LARDER_MODEL", "LARDER_BASE_URL"})
      unsetenv(v);
    dir = std::filesystem::temp_directory_path() /
          ("larder-ask-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
    write("mcp.json", R"({"mcpServers": {"larder-db": {"url": "https://127.0.0.1:8443/mcp",
      "headers": {"X-Api-Key": "mcp-header-secret-42"}}}})");
    write(".env",
          "# test env\nexport ANTHROPIC_API_KEY=\"" + kApiKey + "\"\nBISCUIT_TOKEN='" + kRootToken + "'\n");
    opts.config_path = (dir / "mcp.json").string();
    opts.dotenv_path = (dir / ".env").string();
    opts.history_path = (dir / "history").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  void write(const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; }
  ToolHostFactory factory() {
    return [this](const McpConfig& cfg, std::shared_ptr<TokenStore> tokens,
                  const Environment&) -> Result<std::unique_ptr<ToolHost>> {
      seen_servers = cfg.servers.size();
      seen_token = tokens->current();
      return std::unique_ptr<ToolHost>(std::make_unique<ClinicToolHost>());
    };
  }
  int run(std::string* out_text = nullptr, std::string* err_text = nullptr, const std::string& input = "") {
    std::istringstream in(input);
    std::ostringstream out, err;
    int status = run_ask(opts, factory(), in, out, err);
    if (out_text) *out_text = out.str();
    if (err_text) *err_text = err.str();
    return status;
  }
  std::filesystem::path dir;
  AskOptions opts;
  size_t seen_servers = 0;
  std::string seen_token;
};

TEST_F(RunAsk, AnswersAndPrintsTableAndSql) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  server.set_expected_api_key(kApiKey);
  opts.base_url = server.base_url();
  opts.question = "Which condition is most common?";
  opts.show_sql = true;
  opts.verbose = true;
  std::string out, err;
  EXPECT_EQ(run(&out, &err), kExitOk) << err;
  EXPECT_EQ(seen_servers, 1u);
  EXPECT_EQ(seen_token, kRootToken);
  EXPECT_NE(out.find("GROUP BY"), std::string::npos) << out;
  EXPECT_NE(out.find(" condition | patients"), std::string::npos) << out;
  EXPECT_NE(out.find("(2 rows)"), std::string::npos) << out;
  EXPECT_NE(out.find("lock biscuit: allow"), std::string::npos) << out;
  EXPECT_NE(out.find("Diabetes is the most common"), std::string::npos) << out;
  for (const auto& r : server.requests()) EXPECT_EQ(r.body.find("mcp-header-secret-42"), std::string::npos);
}

TEST_F(RunAsk, JsonOutput) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  opts.base_url = server.base_url();
  opts.question = "q";
  opts.json = true;
  std::string out;
  EXPECT_EQ(run(&out), kExitOk);
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["status"], "answered");
  EXPECT_EQ(j["steps"][0]["result"]["row_count"], 2);
  EXPECT_EQ(j["question"], "q");
}

TEST_F(RunAsk, UnauthorizedExitsWith3) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_unauthorized.json")));
  opts.base_url = server.base_url();
  opts.question = "q";
  std::string out, err;
  EXPECT_EQ(run(&out, &err), kExitProviderAuth);
  EXPECT_NE(out.find("invalid x-api-key"), std::string::npos) << out;
}

TEST_F(RunAsk, MissingConfigKeyIsAUsageError) {
  write("mcp.json", R"({"mcpServers": {"larder-db": {"url": 5}}})");
  opts.question = "q";
  std::string err;
  EXPECT_EQ(run(nullptr, &err), kExitUsage);
  EXPECT_NE(err.find("mcpServers.larder-db.url"), std::string::npos) << err;
}

TEST_F(RunAsk, NoQuestionIsAUsageError) {
  std::string err;
  EXPECT_EQ(run(nullptr, &err), kExitUsage);
  EXPECT_NE(err.find("-i"), std::string::npos);
}

TEST_F(RunAsk, ToolHostFailureExitsWith5) {
  opts.question = "q";
  std::istringstream in;
  std::ostringstream out, err;
  int status = run_ask(
      opts,
      [](const McpConfig&, std::shared_ptr<TokenStore>,
         const Environment&) -> Result<std::unique_ptr<ToolHost>> {
        return make_error("mcp.connect", "TLS handshake with 127.0.0.1:8443 failed");
      },
      in, out, err);
  EXPECT_EQ(status, kExitMcp);
  EXPECT_NE(err.str().find("TLS handshake"), std::string::npos);
}

TEST_F(RunAsk, ReplKeepsHistory) {
  FakeLlmServer server(FakeLlmServer::Api::OpenAi);
  ASSERT_TRUE(server.start());
  for (const char* text : {"one", "two"})
    server.enqueue({200,
                    {},
                    nlohmann::json{{"choices",
                                    {{{"finish_reason", "stop"},
                                      {"message", {{"role", "assistant"}, {"content", text}}}}}}}
                        .dump()});
  opts.provider = "openai";
  opts.base_url = server.base_url();
  opts.interactive = true;
  std::string out;
  EXPECT_EQ(run(&out, nullptr, "first question\n\n.history\n!1\n.quit\n"), kExitOk);
  EXPECT_NE(out.find("1  first question"), std::string::npos) << out;
  EXPECT_NE(out.find("one"), std::string::npos);
  EXPECT_NE(out.find("two"), std::string::npos);
  std::ifstream hist(opts.history_path);
  std::string line;
  std::getline(hist, line);
  EXPECT_EQ(line, "first question");
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST_F(RunAsk, RefusesToStartWithoutAToken) {
  write(".env", "ANTHROPIC_API_KEY=\"" + kApiKey + "\"\n");
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  opts.base_url = server.base_url();
  opts.question = "Which condition is most common?";
  std::string out, err;
  EXPECT_EQ(run(&out, &err), kExitUsage);
  EXPECT_NE(err.find("no Biscuit token"), std::string::npos) << err;
  EXPECT_NE(err.find("--token"), std::string::npos) << err;
  EXPECT_NE(err.find("BISCUIT_TOKEN"), std::string::npos) << err;
  EXPECT_NE(err.find("--no-token"), std::string::npos) << err;
  EXPECT_TRUE(server.requests().empty()) << "the model was asked without a token";
  EXPECT_EQ(seen_servers, 0u) << "an MCP server was contacted without a token";

  write("empty.b64", "\n");
  opts.token = "@" + (dir / "empty.b64").string();
  EXPECT_EQ(run(&out, &err), kExitUsage);
  EXPECT_NE(err.find("the token file is empty"), std::string::npos) << err;
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(RunAsk, NoTokenFlagForServersThatNeedNone) {
  write(".env", "ANTHROPIC_API_KEY=\"" + kApiKey + "\"\n");
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  opts.base_url = server.base_url();
  opts.question = "q";
  opts.no_token = true;
  std::string out, err;
  EXPECT_EQ(run(&out, &err), kExitOk) << err;
  EXPECT_EQ(seen_token, "");
  // Both at once is a contradiction, not a guess.
  opts.token = kRootToken;
  EXPECT_EQ(run(&out, &err), kExitUsage);
  EXPECT_NE(err.find("--no-token"), std::string::npos) << err;
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST_F(RunAsk, HistoryIsPrivateAndHoldsOnlyWhatWasTyped) {
  FakeLlmServer server(FakeLlmServer::Api::OpenAi);
  ASSERT_TRUE(server.start());
  for (const char* text : {"Erin oRTEga has diabetes", "two"})
    server.enqueue({200,
                    {},
                    nlohmann::json{{"choices",
                                    {{{"finish_reason", "stop"},
                                      {"message", {{"role", "assistant"}, {"content", text}}}}}}}
                        .dump()});
  opts.provider = "openai";
  opts.base_url = server.base_url();
  opts.interactive = true;
  // An old 0644 file (as earlier versions wrote it) is made private before anything is added.
  write("history", "older question\n");
  std::filesystem::permissions(dir / "history", std::filesystem::perms(0644));
  History old((dir / "history").string());
  EXPECT_EQ(mode_of(dir / "history"), 0600u);
  EXPECT_EQ(old.lines().size(), 1u);
  std::string out;
  EXPECT_EQ(run(&out, nullptr, "What does Erin oRTEga have?\n.history\nsecond\n"), kExitOk);
  EXPECT_NE(out.find("Erin oRTEga has diabetes"), std::string::npos) << out;
  std::ifstream in(dir / "history");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "older question\nWhat does Erin oRTEga have?\nsecond\n");  // no answer, no command
  EXPECT_EQ(mode_of(dir / "history"), 0600u);
}

TEST_F(RunAsk, HistoryLivesInTheStateDirectoryAndCanBeTurnedOff) {
  auto answer = [](FakeLlmServer& s) {
    s.enqueue({200,
               {},
               nlohmann::json{
                   {"choices",
                    {{{"finish_reason", "stop"}, {"message", {{"role", "assistant"}, {"content", "ok"}}}}}}}
                   .dump()});
  };
  FakeLlmServer server(FakeLlmServer::Api::OpenAi);
  ASSERT_TRUE(server.start());
  opts.provider = "openai";
  opts.base_url = server.base_url();
  opts.interactive = true;
  opts.history_path.clear();
  opts.state_dir = (dir / "state").string();
  answer(server);
  EXPECT_EQ(run(nullptr, nullptr, "first\n"), kExitOk);
  const auto file = dir / "state" / "ask_history";
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_EQ(mode_of(dir / "state"), 0700u);  // made for the history: the owner's only

  std::filesystem::remove_all(dir / "state");
  opts.history = false;  // --no-history
  answer(server);
  EXPECT_EQ(run(nullptr, nullptr, "second\n"), kExitOk);
  EXPECT_FALSE(std::filesystem::exists(file));

  opts.history = true;
  write(".env", "ANTHROPIC_API_KEY=\"" + kApiKey + "\"\nBISCUIT_TOKEN='" + kRootToken +
                    "'\nLARDER_ASK_HISTORY=off\n");
  answer(server);
  EXPECT_EQ(run(nullptr, nullptr, "third\n"), kExitOk);
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST_F(RunAsk, TablesFitTheGivenWidthUnlessWide) {
  FakeLlmServer server(FakeLlmServer::Api::Anthropic);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  ASSERT_TRUE(server.load_script(fixture("anthropic_pg_query.json")));
  opts.base_url = server.base_url();
  opts.question = "q";
  opts.width = 20;
  std::string out;
  EXPECT_EQ(run(&out), kExitOk);
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    EXPECT_LE(display_width(line), 20u) << "[" << line << "]\n" << out;
  opts.wide = true;
  EXPECT_EQ(run(&out), kExitOk);
  EXPECT_NE(out.find("Diabetes is the most common condition (2 patients)."), std::string::npos) << out;
}

}  // namespace
}  // namespace larder::agent
