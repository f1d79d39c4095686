// `larder`: one program, several subcommands (see command.h). Exceptions stop here: every
// library reports errors as values, and this edge turns them into a message and exit status
// (cli/report.h: the one table, base/exit_status.h).
#include "cli/command.h"
#include "cli/report.h"

#include <algorithm>
#include <exception>
#include <iostream>

namespace larder::cli {
std::vector<CommandEntry>& command_table() {
  static std::vector<CommandEntry> table;
  return table;
}
}  // namespace larder::cli

int main(int argc, char** argv) {
  using namespace larder::cli;
  CLI::App app{
      "larder: an MCP server that lets AI agents query PostgreSQL behind four locks "
      "(mTLS, Biscuit, database privileges, row-level security)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "larder " LARDER_VERSION);
  app.add_flag(
      "--verbose", verbose(),
      "On failure, also print the underlying library's error (OpenSSL, libpq, ...); give it before the "
      "subcommand");
  app.footer(larder::exit_status::kTable);
  auto& table = command_table();
  std::sort(table.begin(), table.end(),
            [](const CommandEntry& a, const CommandEntry& b) { return a.order < b.order; });
  Action selected;
  for (const auto& entry : table) entry.define(app, selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every parse error is a usage error (the table's 2).
    return app.exit(e) == 0 ? larder::exit_status::kOk : larder::exit_status::kUsage;
  }
  if (!selected) {
    std::cerr << app.help();
    return larder::exit_status::kUsage;
  }
  try {
    return selected();
  } catch (const Failure& f) {
    return report("", f.error);
  } catch (const std::exception& e) {
    std::cerr << "larder: " << e.what() << "\n";
    return larder::exit_status::kRefused;
  }
}
