// `larder ask "question"` / `larder ask -i`: plain-language questions answered by an LLM
// through Larder's MCP tools (see docs/agent.md and src/agent/ask.h for exit statuses).
#include "agent/ask.h"
#include "cli/command.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace {

void define_ask(CLI::App& app, larder::cli::Action& selected) {
  auto options = std::make_shared<larder::agent::AskOptions>();
  auto* cmd = app.add_subcommand("ask", "Ask a question in plain language; an LLM writes the SQL and runs it through MCP");
  cmd->add_option("question", options->question, "The question (omit with -i)");
  cmd->add_flag("-i,--interactive", options->interactive, "Interactive mode: a prompt with history (.larder/ask_history)");
  cmd->add_flag("--show-sql", options->show_sql, "Print the SQL the model wrote");
  cmd->add_option("--max-steps", options->max_steps, "Most model turns per question (1-100)")->capture_default_str();
  cmd->add_option("--model", options->model, "Model name (default: LARDER_MODEL or the provider's default)");
  cmd->add_option("--provider", options->provider, "LLM API: anthropic or openai (OpenAI-compatible, e.g. a local llama.cpp)")
      ->check(CLI::IsMember({"anthropic", "openai"}));
  cmd->add_option("--base-url", options->base_url, "API base URL, e.g. http://127.0.0.1:8080/v1 for a local server");
  cmd->add_flag("-v,--verbose", options->verbose, "Show each tool call and the lock decisions the server reports");
  cmd->add_flag("--json", options->json, "Print one JSON object per question instead of text");
  cmd->add_option("--config", options->config_path, "mcpServers JSON file (default .larder/mcp.json)");
  cmd->add_option("--token", options->token, "Biscuit token, or @file (default: BISCUIT_TOKEN)");
  cmd->callback([&selected, options] {
    selected = [options] {
      auto logger = spdlog::stderr_logger_mt("larder-ask");
      logger->set_pattern("larder ask: %v");
      logger->set_level(options->verbose ? spdlog::level::debug : spdlog::level::warn);
      spdlog::set_default_logger(logger);
      options->color = !options->json && isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
      return larder::agent::run_ask(*options, larder::agent::default_tool_host_factory(), std::cin, std::cout, std::cerr);
    };
  });
}

}  // namespace

LARDER_REGISTER_COMMAND("ask", 50, define_ask);
