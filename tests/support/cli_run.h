// Runs a shell command line and collects what it printed and its exit status: how the CLI
// tests run the built `larder` binary (header-only, so they need no test library).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace larder::test {

struct CliRun {
  int status;       // the exit status, or -1 when killed by a signal
  std::string out;  // what the command wrote to stdout (redirections in `command` decide more)
};

// `text` as one single-quoted shell word.
inline std::string shell_quote(const std::string& text) {
  std::string q = "'";
  for (char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline CliRun run_shell(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

}  // namespace larder::test
