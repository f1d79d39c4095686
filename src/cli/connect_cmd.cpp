// `larder connect`: the stdio MCP server an MCP host launches, fronting Larder servers over
// mTLS and holding the certificate key and the Biscuit token (src/connect, docs/connect.md).
// `--print-config HOST` prints the snippet that adds it to a host instead.
#include "agent/config.h"
#include "base/exit_status.h"
#include "cli/command.h"
#include "connect/bridge.h"
#include "connect/host_config.h"
#include "db/config.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>

namespace {

namespace fs = std::filesystem;

struct ConnectOptions {
  std::string state_dir = larder::db::kDefaultStateDir;
  std::string config_path;
  std::string token;
  bool no_token = false;
  std::string token_state_dir;  // empty: connect::default_state_dir()
  bool no_token_state = false;
  std::string print_config;
  std::string name = "larder";
  std::string log_file;
  bool verbose = false;
  std::size_t max_in_flight = 32;
  std::size_t page_size = 100;
};

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("larder") : p.string();
}

int fail(const larder::Error& e, bool verbose) {
  std::cerr << "larder connect: " << e.message << "\n";
  if (verbose && !e.detail.empty()) std::cerr << "larder connect: detail: " << e.detail << "\n";
  return larder::exit_status::for_error(e);
}

int run_connect(const ConnectOptions& o) {
  // stdout carries JSON-RPC only: every log line goes to stderr (the host's log) or a file.
  std::shared_ptr<spdlog::logger> logger;
  try {
    logger = o.log_file.empty() ? spdlog::stderr_logger_mt("larder-connect")
                                : spdlog::basic_logger_mt("larder-connect", o.log_file);
  } catch (const spdlog::spdlog_ex& e) {
    std::cerr << "larder connect: cannot open the log file " << o.log_file << ": " << e.what() << "\n";
    return larder::exit_status::kUsage;
  }
  logger->set_pattern(o.log_file.empty() ? "larder connect: %v" : "%Y-%m-%dT%H:%M:%S.%e %l %v");
  logger->set_level(o.verbose ? spdlog::level::debug : spdlog::level::warn);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);

  auto env = larder::agent::load_environment(".env");
  if (!env.ok()) return fail(env.error(), o.verbose);
  auto config = larder::agent::resolve_mcp_config(o.config_path, o.state_dir, *env);
  if (!config.ok()) return fail(config.error(), o.verbose);

  if (!o.print_config.empty()) {
    auto host = larder::connect::parse_host(o.print_config);
    if (!host.ok()) return fail(host.error(), o.verbose);
    if (o.token.empty() || o.token[0] != '@')
      return fail(
          larder::make_error("config.token",
                             "--print-config needs --token @FILE: the snippet names the token's file, "
                             "so the host's configuration never holds the token itself"),
          o.verbose);
    if (auto token = larder::agent::resolve_token(o.token, false, *env); !token.ok())
      return fail(token.error(), o.verbose);
    const std::string config_path =
        o.config_path.empty() ? (fs::path(o.state_dir) / "mcp.json").string() : o.config_path;
    auto command = larder::connect::connect_command(self_exe(), config_path, o.token.substr(1));
    command.name = o.name;
    std::cout << larder::connect::host_snippet(*host, command);
    return larder::exit_status::kOk;
  }

  auto token = larder::agent::resolve_token(o.token, o.no_token, *env);
  if (!token.ok()) return fail(token.error(), o.verbose);
  larder::connect::BridgeOptions bo;
  bo.config = std::move(*config);
  bo.token = *token;
  bo.max_in_flight = o.max_in_flight;
  bo.page_size = o.page_size;
  if (!o.no_token_state && !token->empty())
    bo.token_state = larder::connect::token_state_path(
        o.token_state_dir.empty() ? larder::connect::default_state_dir() : o.token_state_dir, *token);
  auto bridge = larder::connect::Bridge::start(std::move(bo));
  if (!bridge.ok()) return fail(bridge.error(), o.verbose);
  // A host that goes away closes the pipe: writes fail instead of killing the process.
  std::signal(SIGPIPE, SIG_IGN);
  auto served = (*bridge)->serve_stdio(0, 1);
  if (!served.ok()) return fail(served.error(), o.verbose);
  return larder::exit_status::kOk;
}

void define_connect(CLI::App& app, larder::cli::Action& selected) {
  auto o = std::make_shared<ConnectOptions>();
  auto* cmd = app.add_subcommand(
      "connect",
      "Serve Larder to an MCP host (Claude Desktop, Claude Code, Cursor, VS Code) on stdio; holds the "
      "certificate key and the token");
  cmd->add_option("--config", o->config_path, "mcpServers JSON file with tls (default <state-dir>/mcp.json)");
  cmd->add_option("--state-dir", o->state_dir, "Larder's state directory (where mcp.json is looked for)")
      ->capture_default_str();
  cmd->add_option("--token", o->token, "Biscuit token, or @file (default: BISCUIT_TOKEN)");
  cmd->add_flag("--no-token", o->no_token, "Send no token (only for MCP servers that need none)");
  cmd->add_option("--token-state", o->token_state_dir,
                  "Directory keeping the lineage's current token, mode 0600 (default $XDG_STATE_HOME/larder "
                  "or ~/.local/state/larder)");
  cmd->add_flag("--no-token-state", o->no_token_state,
                "Keep the current token in memory only (a restart starts again from --token)");
  cmd->add_option(
      "--print-config", o->print_config,
      "Print the snippet that adds this bridge to HOST: claude-desktop, claude-code, cursor, vscode");
  cmd->add_option("--name", o->name, "The server's name in the host's configuration")->capture_default_str();
  cmd->add_option("--max-in-flight", o->max_in_flight,
                  "Host requests running at once; more are answered busy")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--page-size", o->page_size, "Items per page of the lists the host receives")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--log-file", o->log_file, "Write logs here instead of stderr");
  cmd->add_flag("-v,--verbose", o->verbose, "Log each reconnect and token switch, and library error details");
  cmd->callback([&selected, o] { selected = [o] { return run_connect(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("connect", 55, define_connect);
