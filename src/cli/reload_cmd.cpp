// `larder reload --pid-file <file>`: asks a running `larder serve` to reload its configuration
// (SIGHUP to the pid in the file) and reports the outcome the server wrote to
// <file>.reload: "reloaded (generation N)", with the settings that need a restart, or why the
// reload was refused (the configuration in force keeps serving; exit 1). Waits at most
// --timeout seconds for the server's answer (exit 5 without one). A pid file naming a process
// that is not larder (stale) is refused (exit 1) without a signal.
#include "base/exit_status.h"
#include "base/files.h"
#include "base/json.h"
#include "cli/command.h"
#include "cli/report.h"

#include <signal.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

namespace {

struct ReloadOptions {
  std::string pid_file;
  double timeout_s = 10;
};

// The last outcome the server wrote (attempt 0 when none yet).
nlohmann::json read_status(const std::string& file) {
  auto text = larder::read_file(file);
  if (!text) return nlohmann::json{{"attempt", 0}};
  auto parsed = larder::parse_json_bounded(*text);
  if (!parsed || !parsed->is_object() || !parsed->contains("attempt")) return nlohmann::json{{"attempt", 0}};
  return std::move(*parsed);
}

uint64_t attempt_of(const nlohmann::json& status) {
  const auto& a = status["attempt"];
  return a.is_number_unsigned() ? a.get<uint64_t>() : 0;
}

int run_reload(const ReloadOptions& o) {
  using larder::exit_status::kRefused;
  using larder::exit_status::kUnavailable;
  using larder::exit_status::kUsage;
  auto text = larder::read_file(o.pid_file);
  if (!text) return larder::cli::report("reload", larder::cli::file_error("pid file", o.pid_file));
  long pid = 0;
  try {
    pid = std::stol(*text);
  } catch (const std::exception&) {
    pid = 0;
  }
  if (pid <= 1) {
    return larder::cli::report(
        "reload", o.pid_file + " holds no process id (`larder serve --pid-file` writes it)", kUsage);
  }
  // A stale pid file may name another program by now: signal only a larder process.
  if (auto cmdline = larder::read_file("/proc/" + std::to_string(pid) + "/cmdline"); cmdline) {
    const std::string program = cmdline->substr(0, cmdline->find('\0'));
    const std::string name = std::filesystem::path(program).filename().string();
    if (name.rfind("larder", 0) != 0) {
      return larder::cli::report("reload",
                                 "process " + std::to_string(pid) + " (from " + o.pid_file +
                                     ") is not a larder process (it runs " + (name.empty() ? "?" : name) +
                                     "); the pid file is stale: is `larder serve` running?",
                                 kRefused);
    }
  }
  const std::string status_file = o.pid_file + ".reload";
  const uint64_t before = attempt_of(read_status(status_file));
  if (::kill(static_cast<pid_t>(pid), SIGHUP) != 0) {
    return larder::cli::report("reload",
                               "cannot signal process " + std::to_string(pid) + " (from " + o.pid_file +
                                   "): " + std::strerror(errno) + "; is `larder serve` running?",
                               kUnavailable);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  for (;;) {
    auto status = read_status(status_file);
    if (attempt_of(status) > before) {
      const uint64_t generation = status.value("generation", uint64_t{0});
      if (!status.value("ok", false)) {
        return larder::cli::report("reload",
                                   "refused: " + status.value("error", std::string("(no cause given)")) +
                                       "; the configuration in force (generation " +
                                       std::to_string(generation) + ") keeps serving",
                                   kRefused);
      }
      std::cout << "larder reload: reloaded (generation " << generation << ")\n";
      if (status.contains("restart_needed") && status["restart_needed"].is_array()) {
        for (const auto& key : status["restart_needed"]) {
          if (key.is_string())
            std::cout << "larder reload: " << key.get<std::string>()
                      << " changed; it takes effect at the next restart\n";
        }
      }
      return 0;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return larder::cli::report(
          "reload",
          "process " + std::to_string(pid) + " was signalled but wrote no outcome to " + status_file +
              " within " + std::to_string(static_cast<int>(o.timeout_s)) +
              " s; its log says whether it reloaded (was it started with this --pid-file?)",
          kUnavailable);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void define_reload(CLI::App& app, larder::cli::Action& selected) {
  auto opts = std::make_shared<ReloadOptions>();
  CLI::App* reload =
      app.add_subcommand("reload", "Reload a running server's configuration (SIGHUP) and report the outcome");
  reload->add_option("--pid-file", opts->pid_file, "The pid file `larder serve --pid-file` wrote")
      ->required();
  reload->add_option("--timeout", opts->timeout_s, "Seconds to wait for the server's outcome")
      ->capture_default_str();
  reload->callback([&selected, opts] { selected = [opts] { return run_reload(*opts); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("reload", 41, define_reload);
