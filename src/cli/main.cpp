// `larder`: one program, several subcommands (see command.h). Exceptions stop here: every
// library reports errors as values, and this edge turns them into a message and exit status.
#include "cli/command.h"

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
  CLI::App app{"larder: an MCP server that lets AI agents query PostgreSQL behind four locks "
               "(mTLS, Biscuit, database privileges, row-level security)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "larder 0.1.0");
  auto& table = command_table();
  std::sort(table.begin(), table.end(), [](const CommandEntry& a, const CommandEntry& b) { return a.order < b.order; });
  Action selected;
  for (const auto& entry : table) entry.define(app, selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!selected) {
    std::cerr << app.help();
    return 2;
  }
  try {
    return selected();
  } catch (const std::exception& e) {
    std::cerr << "larder: " << e.what() << "\n";
    return 1;
  }
}
