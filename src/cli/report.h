// How every `larder` subcommand ends: one place that turns an Error into what the user
// reads and the exit status (base/exit_status.h: the table in README.md and `larder --help`).
//
// The message is the Error's own sentence (what failed, and what to do); the underlying
// library's words — an OpenSSL error chain, libpq's message — are its `detail`, printed only
// with the global `--verbose`.
#pragma once

#include "base/exit_status.h"
#include "base/result.h"

#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

namespace larder::cli {

// The global `--verbose` flag (main.cpp sets it).
inline bool& verbose() {
  static bool on = false;
  return on;
}

// Prints "larder <who>: <message>" (and the detail with --verbose) to stderr; returns the
// exit status of `e`.
inline int report(std::string_view who, const Error& e) {
  const std::string prefix = who.empty() ? std::string("larder: ") : "larder " + std::string(who) + ": ";
  std::cerr << prefix << e.message << "\n";
  if (verbose() && !e.detail.empty()) std::cerr << prefix << "detail: " << e.detail << "\n";
  return exit_status::for_error(e);
}

// The same for a failure whose status the subcommand chose from the table itself.
inline int report(std::string_view who, const std::string& message, int status) {
  std::cerr << (who.empty() ? std::string("larder: ") : "larder " + std::string(who) + ": ") << message
            << "\n";
  return status;
}

// A failure thrown from inside a subcommand; main.cpp (or the subcommand) reports it.
struct Failure {
  Error error;
};

// Why `path` (`what`: "audit log", "token file", ...) cannot be read: file.not_found or
// file.unreadable, in the user's words.
inline Error file_error(std::string_view what, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_error("file.not_found", std::string(what) + " " + path + ": not found (no such file)");
  }
  const int saved = errno;
  return make_error("file.unreadable", std::string(what) + " " + path + ": cannot read it (" +
                                           std::strerror(saved ? saved : EACCES) + ")");
}

}  // namespace larder::cli
