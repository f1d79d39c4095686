// `larder ask "question"` / `larder ask -i`: plain-language questions answered by an LLM
// through Larder's MCP tools (see docs/agent.md and src/agent/ask.h for exit statuses).
#include "agent/ask.h"
#include "agent/terminal.h"
#include "cli/command.h"
#include "db/config.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <cstdlib>
#include <iostream>
#include <memory>

namespace {

void define_ask(CLI::App& app, larder::cli::Action& selected) {
  auto options = std::make_shared<larder::agent::AskOptions>();
  options->state_dir = larder::db::kDefaultStateDir;  // the state directory every command shares
  auto* cmd = app.add_subcommand(
      "ask", "Ask a question in plain language; an LLM writes the SQL and runs it through MCP");
  cmd->add_option("question", options->question, "The question (omit with -i)");
  cmd->add_flag(
      "-i,--interactive", options->interactive,
      "Interactive mode: a prompt with line editing and history (<state-dir>/ask_history, mode 0600)");
  cmd->add_flag("--show-sql", options->show_sql, "Print the SQL the model wrote");
  cmd->add_option("--max-steps", options->max_steps, "Most model turns per question (1-100)")
      ->capture_default_str();
  cmd->add_option("--model", options->model, "Model name (default: LARDER_MODEL or the provider's default)");
  cmd->add_option("--provider", options->provider,
                  "LLM API: anthropic or openai (OpenAI-compatible, e.g. a local llama.cpp)")
      ->check(CLI::IsMember({"anthropic", "openai"}));
  cmd->add_option("--base-url", options->base_url,
                  "API base URL, e.g. http://127.0.0.1:8080/v1 for a local server");
  cmd->add_flag("-v,--verbose", options->verbose,
                "Show each tool call and the lock decisions the server reports");
  cmd->add_flag("--json", options->json, "Print one JSON object per question instead of text");
  cmd->add_option("--state-dir", options->state_dir,
                  "Larder's state directory: mcp.json and ask_history live there")
      ->capture_default_str();
  cmd->add_option("--config", options->config_path, "mcpServers JSON file (default <state-dir>/mcp.json)");
  cmd->add_option("--token", options->token,
                  "Biscuit token, or @file (default: BISCUIT_TOKEN); required unless --no-token");
  cmd->add_flag("--no-token", options->no_token, "Send no token (only for MCP servers that need none)");
  auto no_history = std::make_shared<bool>(false);
  cmd->add_flag("--no-history", *no_history, "-i keeps no history file (also LARDER_ASK_HISTORY=off)");
  cmd->add_flag("--wide", options->wide, "Do not fit tables to the terminal; print every cell in full");
  cmd->callback([&selected, options, no_history] {
    options->history = !*no_history;
    selected = [options] {
      auto logger = spdlog::stderr_logger_mt("larder-ask");
      logger->set_pattern("larder ask: %v");
      logger->set_level(options->verbose ? spdlog::level::debug : spdlog::level::warn);
      spdlog::set_default_logger(logger);
      const bool out_tty = isatty(STDOUT_FILENO), in_tty = isatty(STDIN_FILENO),
                 err_tty = isatty(STDERR_FILENO);
      options->color = !options->json && out_tty && std::getenv("NO_COLOR") == nullptr;
      // At a terminal: its width (TIOCGWINSZ), else $COLUMNS, else 80. Into a pipe or file:
      // $COLUMNS when set, else no fitting (scripts get whole rows). --wide turns fitting off.
      const char* columns = std::getenv("COLUMNS");
      options->width = out_tty || (columns != nullptr && *columns != '\0')
                           ? larder::agent::terminal_columns(STDOUT_FILENO)
                           : 0;
      options->line_editing = in_tty && out_tty;
      options->handle_interrupts = true;
      options->progress = err_tty;
      return larder::agent::run_ask(*options, larder::agent::default_tool_host_factory(), std::cin, std::cout,
                                    std::cerr);
    };
  });
}

}  // namespace

LARDER_REGISTER_COMMAND("ask", 50, define_ask);
