// `larder serve --config larder.toml`: one Larder MCP server (database or compliance),
// running until SIGTERM/SIGINT; SIGHUP reloads the configuration (docs/operations.md, "Reload"). With
// --background it detaches once it listens (or reports why it could not start), logging to a file and writing
// its pid beside the audit log. With --check-config it reads and checks the configuration and every file it
// names (tools::check_config), says "configuration OK" or why not, and exits: nothing listens and PostgreSQL
// is not contacted (packages and images run it before a start).
#include "cli/command.h"
#include "cli/report.h"
#include "obs/log.h"
#include "tools/serve_config.h"
#include "tools/service.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace {

struct ServeOptions {
  std::string config = "larder.toml";
  std::string pid_file;
  std::string port_file;
  std::string admin_port_file;
  std::string log_file;
  bool background = false;
  bool allow_drift = false;
  bool check_config = false;
};

// Every connection, pending or authenticated, is a descriptor: raise the soft limit to the
// hard one (often 1024 → 524288) and say so if the configured limits still do not fit. (The
// server also gives back a pending handshake's descriptor when accept runs out of them.)
void raise_descriptor_limit(const larder::tools::ServeConfig& c) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  const rlim_t wanted = c.limits.max_connections + c.limits.max_handshakes + 2 * c.limits.worker_threads + 64;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted) {
    spdlog::warn(
        "larder serve: the descriptor limit ({}) is below max_connections + max_handshakes + "
        "database connections ({}); raise it (ulimit -n, LimitNOFILE=) or lower [limits]",
        static_cast<unsigned long long>(lim.rlim_cur), static_cast<unsigned long long>(wanted));
  }
}

// --background: the parent waits on a pipe until the child listens ("ok <port>") or says
// why it cannot ("error <message>"); the child detaches (setsid) and logs to a file.
struct Detached {
  int report_fd = -1;  // child: where to say "ok"/"error"; -1 in the foreground
};

int detach(const ServeOptions& o, const larder::tools::ServeConfig& config, Detached& d) {
  namespace fs = std::filesystem;
  const fs::path beside = fs::path(config.audit.path).parent_path();
  const std::string log =
      o.log_file.empty() ? (beside / (config.gate.audience + ".log")).string() : o.log_file;
  const std::string& pid = o.pid_file;  // run_serve sets its default
  int fds[2];
  if (::pipe(fds) != 0) {
    std::cerr << "larder serve: cannot start in the background (pipe)\n";
    return -1;
  }
  std::cout.flush();
  pid_t child = ::fork();
  if (child < 0) {
    std::cerr << "larder serve: cannot start in the background (fork)\n";
    return -1;
  }
  if (child == 0) {
    ::close(fds[0]);
    ::setsid();
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || in < 0) {
      std::string m = "error cannot open the log file " + log;
      (void)!::write(fds[1], m.data(), m.size());
      ::_exit(1);
    }
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    d.report_fd = fds[1];
    return 0;  // the child goes on to serve
  }
  ::close(fds[1]);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    said.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (said.rfind("ok ", 0) == 0) {
    std::istringstream words(said.substr(3));
    std::string port, admin_port;
    words >> port >> admin_port;
    std::cout << "larder serve: " << config.gate.audience << " listening on https://" << config.host << ":"
              << port << "/mcp (pid " << child << ", log " << log << ")\n";
    if (!admin_port.empty() && admin_port != "0") {
      std::cout << "  health and metrics: " << (config.admin_tls ? "https://" : "http://")
                << config.admin.listener.host << ":" << admin_port << "/readyz, /metrics (port in "
                << o.admin_port_file << ")\n";
    }
    std::cout << "  stop it with: kill $(cat " << pid << ")\n";
    return 1;  // the parent is done
  }
  ::waitpid(child, nullptr, 0);
  std::cerr << "larder serve: "
            << (said.rfind("error ", 0) == 0 ? said.substr(6) : "the server exited at start-up") << " (log "
            << log << ")\n";
  return -1;
}

void report(const Detached& d, const std::string& message) {
  if (d.report_fd < 0) return;
  (void)!::write(d.report_fd, message.data(), message.size());
  ::close(d.report_fd);
}

int run_serve(ServeOptions o) {
  auto config = larder::tools::load_serve_config(o.config);
  if (!config) return larder::cli::report("serve", config.error());
  if (o.allow_drift) {
    // The flag is the acknowledgement: the start logs the warning and every difference.
    config->allow_drift = true;
    config->insecure_acknowledged.push_back("policy_drift");
  }
  if (o.check_config) {
    if (auto ok = larder::tools::check_config(*config); !ok) return larder::cli::report("serve", ok.error());
    for (const auto& warning : larder::tools::insecure_warnings(*config))
      std::cout << "larder serve: INSECURE: " << warning << "\n";
    std::cout << "larder serve: " << o.config << ": configuration OK (" << config->gate.audience << ", "
              << (config->plain_http ? "http" : "https") << "://" << config->host << ":" << config->port
              << "; the database was not contacted)\n";
    return 0;
  }
  Detached detached;
  if (o.background) {
    const auto beside = std::filesystem::path(config->audit.path).parent_path();
    if (o.pid_file.empty()) o.pid_file = (beside / (config->gate.audience + ".pid")).string();
    if (o.admin_port_file.empty() && config->admin_enabled)
      o.admin_port_file = (beside / (config->gate.audience + ".admin.port")).string();
    int r = detach(o, *config, detached);
    if (r < 0) return larder::exit_status::kUnavailable;
    if (r > 0) return 0;
  }
  // [log]: the format and level every line from here on is written in (stderr; in the
  // background, stderr is the log file).
  larder::obs::configure_logging(config->log.format, config->log.level);
  raise_descriptor_limit(*config);
  // A SIGHUP before the server takes it (while starting) must not end the process.
  std::signal(SIGHUP, SIG_IGN);
  auto service = larder::tools::LarderService::start(*config);
  if (!service) {
    report(detached, "error " + service.error().message);
    return larder::cli::report("serve", service.error());
  }
  // The admin port first: a supervisor waiting for the MCP port file finds both.
  if (!o.admin_port_file.empty()) {
    if ((*service)->admin_port() == 0) {
      spdlog::warn("larder serve: --admin-port-file {}: the admin listener is off ([admin] enabled = false)",
                   o.admin_port_file);
    } else {
      std::ofstream(o.admin_port_file) << (*service)->admin_port() << "\n";
    }
  }
  if (!o.port_file.empty()) {
    std::ofstream(o.port_file) << (*service)->port() << "\n";
  }
  if (!o.pid_file.empty()) {
    std::ofstream(o.pid_file) << ::getpid() << "\n";
  }
  report(detached,
         "ok " + std::to_string((*service)->port()) + " " + std::to_string((*service)->admin_port()));
  // SIGHUP (`larder reload --pid-file`): the file read again, as at start; each outcome is
  // written beside the pid file as <pid-file>.reload for `larder reload` to report.
  larder::tools::ReloadSource reload;
  std::error_code ec;
  const std::string config_path = std::filesystem::absolute(o.config, ec).string();
  reload.load_config = [path = ec ? o.config : config_path, allow_drift = o.allow_drift]() {
    auto next = larder::tools::load_serve_config(path);
    if (next && allow_drift) {
      next->allow_drift = true;
      next->insecure_acknowledged.push_back("policy_drift");
    }
    return next;
  };
  if (!o.pid_file.empty()) reload.status_file = o.pid_file + ".reload";
  (*service)->run_until_signal(std::move(reload));
  spdlog::info("larder serve: stopped");
  return 0;
}

void define_serve(CLI::App& app, larder::cli::Action& selected) {
  auto opts = std::make_shared<ServeOptions>();
  CLI::App* serve = app.add_subcommand("serve", "Run a Larder MCP server (mTLS + Biscuit + SQL guard + RLS)");
  serve->add_option("-c,--config", opts->config, "TOML configuration file")->capture_default_str();
  serve->add_option("--pid-file", opts->pid_file, "Write the process id here once listening");
  serve->add_option("--port-file", opts->port_file,
                    "Write the listening port here once listening (port 0 = any)");
  serve->add_option("--admin-port-file", opts->admin_port_file,
                    "Write the admin listener's port (/healthz, /readyz, /metrics) here once listening");
  serve->add_flag("--background", opts->background,
                  "Detach once listening (pid, log and admin port beside the audit log, as "
                  "<audience>.pid/.log/.admin.port)");
  serve->add_option("--log-file", opts->log_file, "With --background: log here");
  serve->add_flag("--allow-drift", opts->allow_drift,
                  "Serve even when the database differs from the policy file (`larder policy check`); "
                  "every difference is logged as a warning");
  serve->add_flag("--check-config", opts->check_config,
                  "Check the configuration and every file it names (certificates, keys, policies), "
                  "then exit: 0 and \"configuration OK\", or the problem; nothing listens and the "
                  "database is not contacted");
  serve->callback([&selected, opts] { selected = [opts] { return run_serve(*opts); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("serve", 40, define_serve);
