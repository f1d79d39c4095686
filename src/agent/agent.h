// The text-to-SQL agent loop: question → model → (tool calls → MCP servers → results) × n →
// answer, bounded by max_steps model turns.
//
// Security invariants (fail closed):
//  * the model never sees or chooses a Biscuit token: `biscuit_token` is removed from every
//    tool schema shown to it and from every argument it sends; the agent injects the
//    TokenStore's current token into tools whose schema takes one;
//  * a result's _meta["larder/biscuit_token"] switches the TokenStore to the attenuated token;
//  * everything that reaches the model is redacted (known tokens, configured secrets, PEM
//    blocks, token-shaped runs; _meta dropped), and every request is checked once more for
//    literal secrets before it leaves — a hit aborts the run (agent.secret_leak).
#pragma once

#include "agent/conversation.h"
#include "agent/provider.h"
#include "agent/redaction.h"
#include "agent/tool_host.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace larder::agent {

inline constexpr const char* kTokenArgument = "biscuit_token";
inline constexpr const char* kMetaToken = "larder/biscuit_token";
inline constexpr const char* kMetaDecision = "larder/decision";

struct AgentOptions {
  int max_steps = 8;  // model turns per question
  std::string model;  // empty: the provider's model
  int max_tokens = 4096;
  std::size_t max_result_chars = 24000;  // tool result text sent to the model is cut here
};

// One lock decision reported by the server in _meta["larder/decision"].
struct LockDecision {
  std::string lock;
  std::string decision;
  std::string reason;
};

struct ToolStep {
  std::string server;
  std::string tool;
  std::string model_name;    // the name the model used
  nlohmann::json arguments;  // as the model sent them (never holds a token)
  std::optional<std::string> sql;
  bool called = false;  // false: rejected locally (malformed input, unknown tool)
  bool is_error = false;
  std::string text;           // redacted text the model received
  nlohmann::json structured;  // redacted structuredContent (null if none)
  std::vector<LockDecision> decisions;
  bool token_switched = false;
};

enum class AgentStatus { Answered, MaxSteps, MaxTokens, Refused, ProviderError, Aborted, Cancelled };
const char* to_string(AgentStatus status);

struct AgentRun {
  AgentStatus status = AgentStatus::Answered;
  std::string answer;  // the model's final text (partial for MaxTokens)
  std::vector<ToolStep> steps;
  int model_turns = 0;
  Usage usage;
  std::optional<Error> error;  // ProviderError / Aborted / Cancelled
};

// Tool schema as shown to the model: `biscuit_token` removed from properties and required.
// Returns true in `had_token` if it was there.
nlohmann::json strip_token_from_schema(const nlohmann::json& schema, bool* had_token = nullptr);

// Reads _meta["larder/decision"] (an object or an array of objects).
std::vector<LockDecision> decisions_from_meta(const nlohmann::json& meta);

class Agent {
 public:
  Agent(Provider& provider, ToolHost& host, std::shared_ptr<TokenStore> tokens, AgentOptions options,
        Redactor secrets = {});
  ~Agent();

  // Lists every server's tools and fetches the schema context; call once before ask().
  Result<void> prepare();
  // Answers one question. The conversation is kept, so follow-up questions (REPL) see the
  // earlier turns; a run that does not end in an answer leaves the conversation unchanged.
  // When `cancel` fires (Ctrl-C), the model request or tool call in flight is abandoned and
  // the run ends Cancelled.
  AgentRun ask(const std::string& question, const CancellationToken& cancel = CancellationToken());
  void reset_conversation();

  // Called after each tool step (for --verbose live output).
  std::function<void(const ToolStep&)> on_step;
  // What the agent waits for, as a person would read it ("waiting for the model (NAME)",
  // "running pg_query"), each time that changes; "" when ask() returns.
  std::function<void(const std::string&)> on_progress;

  const std::vector<ToolDefinition>& tools() const { return tool_defs_; }
  const std::string& system_prompt() const { return system_prompt_; }

 private:
  struct ToolEntry;
  ToolStep run_tool(const ToolCall& call, ToolResult& result, const CancellationToken& cancel);
  void progress(const std::string& what) const {
    if (on_progress) on_progress(what);
  }
  Redactor current_redactor() const;

  Provider& provider_;
  ToolHost& host_;
  std::shared_ptr<TokenStore> tokens_;
  AgentOptions options_;
  Redactor secrets_;
  std::vector<ToolDefinition> tool_defs_;
  std::map<std::string, std::unique_ptr<ToolEntry>> entries_;  // by model-facing name
  std::string system_prompt_;
  std::vector<Message> conversation_;
};

}  // namespace larder::agent
