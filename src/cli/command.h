// The `larder` program is a set of subcommands (biscuit, certs, db, serve, ask, demo), each
// defined in its own `<name>_cmd.cpp` next to main.cpp. A subcommand file registers itself
// with LARDER_REGISTER_COMMAND; main.cpp knows none of them by name, so modules add
// commands without touching shared files.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace larder::cli {

// A subcommand's action, chosen during parsing and run after it; returns the exit status.
using Action = std::function<int()>;

// Adds a subcommand to `app`. When the user selects it, the parse callback stores the
// action to run in `selected`.
using CommandDefinition = void (*)(CLI::App& app, Action& selected);

struct CommandEntry {
  const char* name;
  int order;  // position in `larder --help`
  CommandDefinition define;
};

std::vector<CommandEntry>& command_table();

struct CommandRegistration {
  CommandRegistration(const char* name, int order, CommandDefinition define) {
    command_table().push_back({name, order, define});
  }
};

#define LARDER_REGISTER_COMMAND(name, order, define)                               \
  static ::larder::cli::CommandRegistration larder_command_registration_##define { \
    name, order, define                                                            \
  }

}  // namespace larder::cli
