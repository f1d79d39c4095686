// `larder serve --config larder.toml`: one Larder MCP server (database or compliance),
// running until SIGTERM/SIGINT.
#include "cli/command.h"
#include "cli/report.h"
#include "gate/config.h"
#include "tools/service.h"

#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <memory>

namespace {

struct ServeOptions {
  std::string config = "larder.toml";
  std::string pid_file;
  std::string port_file;
};

// Every connection, pending or authenticated, is a descriptor: raise the soft limit to the
// hard one (often 1024 → 524288) and say so if the configured limits still do not fit. (The
// server also gives back a pending handshake's descriptor when accept runs out of them.)
void raise_descriptor_limit(const larder::gate::ServeConfig& c) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  const rlim_t wanted = c.max_connections + c.max_handshakes + 2 * c.worker_threads + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted) {
    spdlog::warn(
        "larder serve: the descriptor limit ({}) is below max_connections + max_handshakes + "
        "database connections ({}); raise it (ulimit -n, LimitNOFILE=) or lower [limits]",
        static_cast<unsigned long long>(lim.rlim_cur), static_cast<unsigned long long>(wanted));
  }
}

int run_serve(const ServeOptions& o) {
  auto config = larder::gate::load_serve_config(o.config);
  if (!config) return larder::cli::report("serve", config.error());
  raise_descriptor_limit(*config);
  auto service = larder::tools::LarderService::start(*config);
  if (!service) return larder::cli::report("serve", service.error());
  if (!o.port_file.empty()) {
    std::ofstream(o.port_file) << (*service)->port() << "\n";
  }
  if (!o.pid_file.empty()) {
    std::ofstream(o.pid_file) << ::getpid() << "\n";
  }
  (*service)->run_until_signal();
  spdlog::info("larder serve: stopped");
  return 0;
}

void define_serve(CLI::App& app, larder::cli::Action& selected) {
  auto opts = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand("serve", "Run a Larder MCP server (mTLS + Biscuit + SQL guard + RLS)");
  serve->add_option("-c,--config", opts->config, "TOML configuration file")->capture_default_str();
  serve->add_option("--pid-file", opts->pid_file, "Write the process id here once listening");
  serve->add_option("--port-file", opts->port_file, "Write the listening port here once listening (port 0 = any)");
  serve->callback([&selected, opts] { selected = [opts] { return run_serve(*opts); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("serve", 40, define_serve);
