// `larder ask -i` at a real terminal: tmux runs the REAL `larder` program (80×40 pane)
// against the REAL Larder servers (tests/support/testbed: PostgreSQL with Larder's roles, RLS
// and synthetic data, both MCP servers over mTLS) and the loopback fake LLM replaying
// recorded Messages-API responses, one of them 60 s slow. Keys are typed with send-keys, the
// screen is read with capture-pane:
//  * a question is typed and answered with a table that fits 80 columns (capture-pane -J
//    joins wrapped lines: none of them is wider than 80 columns);
//  * Up recalls the question (libedit history) and Enter asks it again;
//  * while the slow model works, stderr shows the progress line;
//  * Ctrl-C cancels that question: the model request is abandoned (the fake sees the client
//    hang up), "(cancelled)" is printed and the prompt comes back;
//  * a second Ctrl-C, at the empty prompt, ends the program with status 130;
//  * the history file is <state-dir>/ask_history, mode 0600, holding only the questions.
// Skipped, with a message, only when tmux is not installed (scripts/install-deps installs it).
#include "agent/fake_llm_server.h"
#include "agent/render.h"
#include "examples/healthcare/demo.h"
#include "net/pki.h"
#include "support/testbed.h"
#include "support/wait.h"
#include "tools/demo_scenarios.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>

namespace larder {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Llm = larder::testing::FakeLlmServer;

constexpr const char* kKey = "sk-ant-tty-0123456789abcdef-dummy-key";
constexpr const char* kQuestion = "Show me all medical records for patient Erin oRTEga";

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command, returns its stdout (and its exit status in *status).
std::string run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

bool have_tmux() {
  int status = -1;
  run("tmux -V 2>/dev/null", &status);
  return status == 0;
}

json message(const std::string& id, json content, const std::string& stop) {
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", "claude-sonnet-4-5"},
          {"content", std::move(content)},
          {"stop_reason", stop},
          {"stop_sequence", nullptr},
          {"usage", {{"input_tokens", 100}, {"output_tokens", 20}}}};
}

class AskTty : public ::testing::Test {
 protected:
  static test::Testbed* bed_;

  static void SetUpTestSuite() {
    if (!have_tmux()) return;
    try {
      bed_ = new test::Testbed(test::Testbed::Options{});
      bed_->start_servers();
    } catch (const std::exception& e) {
      std::cerr << "testbed: " << e.what() << "\n";
    }
  }
  static void TearDownTestSuite() {
    delete bed_;
    bed_ = nullptr;
  }

  void SetUp() override {
    if (!have_tmux())
      GTEST_SKIP() << "tmux is not installed (apt-get install tmux; scripts/install-deps does)";
    ASSERT_TRUE(bed_ && bed_->db) << "the servers did not start";
    work_ = (bed_->dir() / "tty").string();
    fs::create_directories(work_);
    state_ = work_ + "/state";
    socket_ = work_ + "/tmux.sock";
    tools::DemoEnvironment env = bed_->environment();
    auto tokens = examples::healthcare::mint_demo_tokens(env, bed_->busiest_hospital());
    ASSERT_TRUE(tokens.ok()) << tokens.error().message;
    ASSERT_TRUE(net::pki::write_file(work_ + "/erin.b64", tokens->erin + "\n", 0600).ok());
    json tls = {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}};
    json cfg = {{"mcpServers", {{"larder-db", {{"url", env.db_url}, {"tls", tls}}}}}};
    fs::create_directories(state_);
    std::ofstream(state_ + "/mcp.json") << cfg.dump(2);
  }

  void TearDown() override {
    if (!socket_.empty()) run("tmux -S " + shell_quote(socket_) + " kill-server 2>/dev/null");
  }

  std::string tmux(const std::string& args) {
    return run("tmux -S " + shell_quote(socket_) + " " + args + " 2>&1");
  }
  void keys(const std::string& args) { tmux("send-keys -t ask " + args); }
  // The whole screen and scrollback, wrapped lines joined (-J): what was printed, line by line.
  std::string screen() { return tmux("capture-pane -p -J -S - -t ask"); }

  bool wait_for(const std::function<bool(const std::string&)>& ok, std::chrono::seconds limit,
                std::string* seen) {
    return test::wait_until(
        [&] {
          *seen = screen();
          return ok(*seen);
        },
        limit, std::chrono::milliseconds(100));
  }
  bool wait_text(const std::string& text, std::chrono::seconds limit, std::string* seen) {
    return wait_for([&](const std::string& s) { return s.find(text) != std::string::npos; }, limit, seen);
  }
  static size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
  }

  std::string work_, state_, socket_;
};

test::Testbed* AskTty::bed_ = nullptr;

TEST_F(AskTty, EditHistoryCancelAndLeaveAtTheTerminal) {
  Llm llm(Llm::Api::Anthropic);
  std::string error;
  ASSERT_TRUE(llm.start(&error)) << error;
  llm.set_expected_api_key(kKey);
  // Question 1: pg_query for Erin's records (8 columns, wider than 80 together), then the answer.
  json query = {
      {"query",
       "SELECT \"Patient Name\", \"Age\", \"Medical Condition\", \"Date of Admission\", \"Doctor\", "
       "\"Hospital\", \"Medication\", \"Test Results\" FROM health_records WHERE \"Patient Name\" = $1 "
       "ORDER BY \"Date of Admission\""},
      {"params", {"Erin oRTEga"}}};
  llm.enqueue(
      {200,
       {},
       message("msg_tty_1",
               {{{"type", "text"}, {"text", "Looking up Erin's admissions."}},
                {{"type", "tool_use"}, {"id", "toolu_tty_1"}, {"name", "pg_query"}, {"input", query}}},
               "tool_use")
           .dump()});
  llm.enqueue({200,
               {},
               message("msg_tty_2",
                       {{{"type", "text"},
                         {"text",
                          "These are all the admissions on record for Erin oRTEga, oldest first, with the "
                          "condition, doctor, hospital, medication and test results of each."}}},
                       "end_turn")
                   .dump()});
  // Question 2 (recalled with Up): the model takes a minute — long enough to be cancelled.
  larder::testing::FakeLlmReply slow{
      200, {}, message("msg_tty_3", {{{"type", "text"}, {"text", "too late"}}}, "end_turn").dump()};
  slow.delay = std::chrono::seconds(60);
  llm.enqueue(slow);

  const std::string command =
      "cd " + shell_quote(work_) +
      " && env -u BISCUIT_TOKEN -u OPENAI_API_KEY -u LARDER_PROVIDER -u LARDER_MODEL " +
      "-u LARDER_BASE_URL -u HTTPS_PROXY -u https_proxy -u NO_COLOR LANG=C.UTF-8 LC_ALL=C.UTF-8 " +
      "ANTHROPIC_API_KEY=" + kKey + " " + shell_quote(LARDER_BINARY) + " ask -i --state-dir " +
      shell_quote(state_) + " --token @" + shell_quote(work_ + "/erin.b64") +
      " --provider anthropic --base-url " + llm.base_url() +
      "; echo \"[larder exited with status $?]\"; sleep 600";
  std::string out = tmux("new-session -d -s ask -x 80 -y 40 " + shell_quote(command));
  ASSERT_TRUE(out.empty()) << out;

  std::string seen;
  ASSERT_TRUE(wait_text("larder>", std::chrono::seconds(60), &seen)) << seen;

  // 1. Type a question (literally, -l) and Enter: the table comes back fitted to 80 columns.
  keys("-l " + shell_quote(kQuestion));
  keys("Enter");
  ASSERT_TRUE(wait_for(
      [](const std::string& s) { return count(s, "larder>") >= 2 && s.find("rows)") != std::string::npos; },
      std::chrono::seconds(60), &seen))
      << seen;
  // Eight columns share 80: the headers and cells are cut with an ellipsis, one line per row.
  EXPECT_NE(seen.find(" Patien"), std::string::npos) << seen;
  EXPECT_NE(seen.find(" Erin o"), std::string::npos) << seen;
  EXPECT_NE(seen.find("…"), std::string::npos) << seen;
  EXPECT_NE(seen.find("These are all the admissions"), std::string::npos) << seen;
  {
    std::istringstream lines(seen);
    std::string line;
    size_t table_lines = 0;
    while (std::getline(lines, line)) {
      EXPECT_LE(agent::display_width(line), 80u) << "wider than the terminal: [" << line << "]\n" << seen;
      if (line.find(" | ") != std::string::npos) ++table_lines;
    }
    EXPECT_GE(table_lines, 2u) << "no table rows on the screen:\n" << seen;
  }

  // 2. Up recalls the question; Enter asks it again.
  keys("Up");
  ASSERT_TRUE(
      wait_for([](const std::string& s) { return count(s, std::string("larder> ") + kQuestion) >= 2; },
               std::chrono::seconds(10), &seen))
      << "Up did not recall the question:\n"
      << seen;
  EXPECT_EQ(seen.find("^[[A"), std::string::npos) << seen;
  keys("Enter");

  // 3. The slow model: the progress line says what it waits for, and for how long.
  ASSERT_TRUE(wait_text("waiting for the model (claude-sonnet-4-5)", std::chrono::seconds(20), &seen))
      << seen;
  EXPECT_TRUE(wait_for(
      [](const std::string& s) {
        return s.find(" 1.") != std::string::npos || s.find(" 2.") != std::string::npos;
      },
      std::chrono::seconds(10), &seen))
      << "no elapsed time:\n"
      << seen;
  ASSERT_EQ(llm.requests().size(), 3u);

  // 4. Ctrl-C cancels the question; the prompt comes back long before the model would answer.
  const auto pressed = std::chrono::steady_clock::now();
  keys("C-c");
  ASSERT_TRUE(wait_for(
      [](const std::string& s) {
        return s.find("(cancelled)") != std::string::npos && count(s, "larder>") >= 3;
      },
      std::chrono::seconds(10), &seen))
      << seen;
  EXPECT_LT(std::chrono::steady_clock::now() - pressed, std::chrono::seconds(5));
  EXPECT_EQ(seen.find("waiting for the model"), std::string::npos) << "the progress line was not erased:\n"
                                                                   << seen;
  EXPECT_EQ(seen.find("too late"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("[larder exited"), std::string::npos) << "the first Ctrl-C ended the session:\n"
                                                            << seen;
  EXPECT_TRUE(test::wait_until([&] { return llm.abandoned() != 0; }, std::chrono::seconds(5)));
  EXPECT_EQ(llm.abandoned(), 1u) << "the model request was not aborted";

  // 5. A second Ctrl-C, at the empty prompt, ends the program (status 130).
  keys("C-c");
  ASSERT_TRUE(wait_text("[larder exited with status 130]", std::chrono::seconds(10), &seen)) << seen;
  EXPECT_TRUE(llm.violations().empty()) << llm.violations().front();

  // The history: in the state directory, mode 0600, only what was typed.
  const std::string history = state_ + "/ask_history";
  struct stat st {};
  ASSERT_EQ(::stat(history.c_str(), &st), 0) << history;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(history);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), std::string(kQuestion) + "\n") << text.str();
  llm.stop();
}

}  // namespace
}  // namespace larder
