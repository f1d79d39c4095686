// `larder ask`: wiring of configuration, provider, tool host and agent, one question or a
// REPL, and the exit statuses (documented in docs/agent.md and README.md):
#pragma once

#include "agent/agent.h"
#include "agent/config.h"
#include "agent/render.h"
#include "base/exit_status.h"

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace larder::agent {

// The exit statuses of `larder ask`: the `larder` table (base/exit_status.h), by the names
// the agent uses.
enum ExitStatus : int {
  kExitOk = exit_status::kOk,                             // answered; the last tool call (if any) succeeded
  kExitFailure = exit_status::kRefused,                   // internal failure, or the secret check refused
  kExitUsage = exit_status::kUsage,                       // bad flags, configuration or .env
  kExitNotFound = exit_status::kNotFound,                 // a file mcp.json names is missing or unreadable
  kExitInvalid = exit_status::kInvalid,                   // such a file is not a valid certificate or key
  kExitProviderAuth = exit_status::kCredentialsRejected,  // the LLM API rejected the key (401/403)
  kExitProviderUnavailable = exit_status::kUnavailable,   // LLM API unreachable, overloaded, or refused us
  kExitMcp = exit_status::kUnavailable,                   // an MCP server could not be reached or listed
  kExitMaxSteps = exit_status::kMaxSteps,                 // --max-steps reached while the model wanted tools
  kExitToolError = exit_status::kToolError,               // answered, but the last tool call was an error
  kExitIncomplete = exit_status::kIncomplete,             // the model stopped at max_tokens or refused
  kExitInterrupted = exit_status::kInterrupted,           // Ctrl-C: the question was cancelled (or -i left)
};

int exit_status_for(const AgentRun& run);
int exit_status_for(const Error& error);

struct AskOptions {
  std::string question;
  bool interactive = false;
  bool show_sql = false;
  bool verbose = false;
  bool json = false;
  int max_steps = 8;
  std::string model;  // empty: LARDER_MODEL or the provider default
  std::string
      provider;  // empty: LARDER_PROVIDER, else anthropic if ANTHROPIC_API_KEY, else openai if OPENAI_API_KEY
  std::string base_url;               // empty: LARDER_BASE_URL or the provider default
  std::string state_dir = ".larder";  // --state-dir: Larder's state directory (mcp.json, ask_history)
  std::string config_path;            // empty: <state_dir>/mcp.json (PG_MCP_URL if that is absent)
  std::string token;                  // empty: BISCUIT_TOKEN; "@file" reads a file
  bool no_token = false;              // --no-token: no token at all (MCP servers that need none)
  std::string dotenv_path = ".env";
  bool history = true;       // false: --no-history (or LARDER_ASK_HISTORY=off)
  std::string history_path;  // empty: <state_dir>/ask_history
  bool color = false;
  bool wide = false;      // --wide: tables as wide as their cells, never cut to the terminal
  std::size_t width = 0;  // terminal columns to fit output in (0: no limit)
  // At a terminal (the program sets these; tests over plain streams leave them off):
  bool line_editing = false;       // -i reads with libedit (stdin and stdout are terminals)
  bool handle_interrupts = false;  // Ctrl-C cancels the question instead of ending the program
  bool progress = false;           // a progress line on stderr (stderr is a terminal)
};

// Builds the ToolHost for a configuration (McpToolHost in the program; tests pass their own).
using ToolHostFactory = std::function<Result<std::unique_ptr<ToolHost>>(
    const McpConfig& config, std::shared_ptr<TokenStore> tokens, const Environment& env)>;
// The factory `larder ask` uses: McpToolHost when built with libmcp, else an error.
ToolHostFactory default_tool_host_factory();

int run_ask(const AskOptions& options, const ToolHostFactory& factory, std::istream& in, std::ostream& out,
            std::ostream& err);

// REPL history: the questions the user typed (never answers, never tool results), in
// memory plus an append-only file readable by its owner only: created with mode 0600 (its
// directory 0700 when it has to be made), and an existing file is set back to 0600. An
// empty path keeps the history in memory only.
class History {
 public:
  explicit History(std::string path);
  const std::vector<std::string>& lines() const { return lines_; }
  const std::string& path() const { return path_; }
  void add(const std::string& line);

 private:
  std::string path_;
  std::vector<std::string> lines_;
  bool warned_ = false;
};

}  // namespace larder::agent
