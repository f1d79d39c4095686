#include "support/pg_bouncer.h"

#include "support/process_support.h"
#include "support/wait.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <tuple>

namespace larder::test {

namespace fs = std::filesystem;

namespace {
constexpr const char* kPgBouncer = "/usr/sbin/pgbouncer";

// A pgbouncer.ini / auth_file string: double quotes, any inner double quote doubled.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

// A libpq connection string value for [databases] (single quotes, backslash-escaped).
std::string conn_value(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

void write_file(const fs::path& path, const std::string& text, const std::string& run_as) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("PgBouncer: cannot write " + path.string());
  }
  ::chmod(path.c_str(), 0600);
  if (auto r = db::give_to_server_user(path, run_as); !r)
    throw std::runtime_error("PgBouncer: " + r.error().message);
}
}  // namespace

PgBouncer::PgBouncer(const PgCluster& primary, const PgStandby* standby)
    : PgBouncer(primary, standby, Options{}) {}

PgBouncer::PgBouncer(const PgCluster& primary, const PgStandby* standby, Options options)
    : primary_(primary), standby_(standby), options_(options), run_as_(primary.state().run_as) {
  if (::access(kPgBouncer, X_OK) != 0)
    throw std::runtime_error(std::string("PgBouncer: ") + kPgBouncer + " not found (scripts/install-deps)");
  const char* tmp = std::getenv("LARDER_PG_TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/larder-pgbouncer-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("PgBouncer: mkdtemp failed for " + pattern);
  root_ = pattern;
  ::chmod(root_.c_str(), 0700);
  // pgbouncer switches to the server user before it reads its auth_file.
  if (auto r = db::give_to_server_user(root_, run_as_); !r) {
    std::error_code ec;
    fs::remove_all(root_, ec);
    throw std::runtime_error("PgBouncer: " + r.error().message);
  }
  std::tie(watchdog_pid_, watchdog_fd_) = start_watchdog(root_.string(), (root_ / "pid").string(), "TERM");
  try {
    std::string last_log;
    for (int attempt = 0; attempt < 4; ++attempt) {
      auto port = db::find_free_port();
      if (!port) throw std::runtime_error("PgBouncer: " + port.error().message);
      port_ = *port;
      write_config();
      if (spawn()) return;
      last_log = file_tail(log_file());
      if (last_log.find("Address already in use") == std::string::npos) break;  // not a lost port race
    }
    throw std::runtime_error("PgBouncer: pgbouncer did not start; its log ends:\n" + last_log);
  } catch (...) {
    stop();
    std::error_code ec;
    fs::remove_all(root_, ec);
    stop_watchdog(watchdog_pid_, watchdog_fd_);
    throw;
  }
}

PgBouncer::~PgBouncer() {
  stop();
  std::error_code ec;
  fs::remove_all(root_, ec);
  stop_watchdog(watchdog_pid_, watchdog_fd_);
}

std::string PgBouncer::extra_users() const {
  std::string out;
  for (const auto& [user, password] : options_.extra_users)
    out += quoted(user) + " " + quoted(password) + "\n";
  return out;
}

void PgBouncer::write_config() {
  const db::ClusterState& p = primary_.state();
  std::string dbs = "[databases]\n";
  dbs += p.database + " = host=127.0.0.1 port=" + std::to_string(p.port) +
         " dbname=" + conn_value(p.database) + "\n";
  if (standby_ != nullptr)
    dbs += p.database + "_standby = host=127.0.0.1 port=" + std::to_string(standby_->port()) +
           " dbname=" + conn_value(p.database) + "\n";
  const fs::path auth = root_ / "userlist.txt";
  write_file(auth,
             quoted(p.admin_user) + " " + quoted(p.admin_password) + "\n" + quoted(p.query_user) + " " +
                 quoted(p.query_password) + "\n" + quoted(p.writer_user) + " " + quoted(p.writer_password) +
                 "\n" + extra_users(),
             run_as_);
  std::string ini = dbs +
                    "\n[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\n"
                    "listen_port = " +
                    std::to_string(port_) +
                    "\n"
                    "unix_socket_dir =\n"  // no socket in /tmp
                    // The clusters store SCRAM-SHA-256 verifiers; with plain-text passwords in
                    // the auth_file pgbouncer can both verify clients and log in to the server.
                    "auth_type = scram-sha-256\n"
                    "auth_file = " +
                    auth.string() +
                    "\n"
                    "pool_mode = transaction\n"
                    // Transaction pooling: nothing of a session survives its transaction, so
                    // no reset query (DISCARD ALL) between clients.
                    "server_reset_query =\n"
                    // PgBouncer refuses a client whose startup packet carries a parameter it
                    // does not know ("unsupported startup parameter"). libpq sends `options`
                    // when a connection sets it — db::Database does, for search_path and
                    // standard_conforming_strings — and JDBC-style clients send
                    // extra_float_digits. Ignoring them lets those clients in, but the values
                    // are dropped: the server never sees them.
                    "ignore_startup_parameters = extra_float_digits,options\n"
                    "max_client_conn = " +
                    std::to_string(options_.max_client_conn) +
                    "\n"
                    "default_pool_size = " +
                    std::to_string(options_.default_pool_size) +
                    "\n"
                    "server_login_retry = 1\n"  // default 15 s: a restarted server would stay unreachable
                    "server_connect_timeout = 5\n"
                    // PgBouncer completes a client's login only once it has a server
                    // connection (it relays the server's parameters), so with the server down
                    // a new client waits client_login_timeout (default 60 s) and a query in an
                    // open client waits query_wait_timeout (default 120 s): short, for tests.
                    "client_login_timeout = 10\n"
                    "query_wait_timeout = 10\n"
                    "log_connections = 0\n"
                    "log_disconnections = 0\n";
  write_file(root_ / "pgbouncer.ini", ini, run_as_);
}

bool PgBouncer::spawn() {
  const std::string ini = (root_ / "pgbouncer.ini").string();
  const std::string log = log_file();
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) throw std::runtime_error("PgBouncer: cannot open " + log);
  std::vector<std::string> args = {kPgBouncer};
  if (::geteuid() == 0) {  // pgbouncer refuses to run as root: -u switches user at startup
    args.push_back("-u");
    args.push_back(run_as_.empty() ? "postgres" : run_as_);
  }
  args.push_back(ini);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    throw std::runtime_error("PgBouncer: fork failed");
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    if (::chdir("/") != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;
  {  // for the watchdog
    std::ofstream out(root_ / "pid", std::ios::trunc);
    out << pid << "\n";
  }
  bool exited = false;
  const bool settled = wait_until(
      [&] {
        int status = 0;
        exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
        return exited || port_accepts(port_);
      },
      std::chrono::seconds(15), std::chrono::milliseconds(20));
  if (exited) {
    pid_ = -1;
    return false;
  }
  if (settled) return true;
  stop();
  return false;
}

void PgBouncer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);  // 1.18: immediate shutdown
  int status = 0;
  if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) != 0; }, std::chrono::seconds(10))) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

void PgBouncer::start() {
  if (pid_ > 0) return;
  if (!wait_port_bindable(port_))
    throw std::runtime_error("PgBouncer: port " + std::to_string(port_) + " stays taken after a stop");
  write_config();
  if (!spawn())
    throw std::runtime_error("PgBouncer: pgbouncer did not start; its log ends:\n" + file_tail(log_file()));
}

void PgBouncer::restart() {
  stop();
  start();
}

db::ConnParams PgBouncer::params_for(const db::ConnParams& params) const {
  db::ConnParams out = params;
  const std::string port = params.get("port").value_or("");
  const std::string database = params.get("dbname").value_or(primary_.state().database);
  if (standby_ != nullptr && port == std::to_string(standby_->port())) {
    out.set("dbname", database + "_standby");
  } else if (port != std::to_string(primary_.port())) {
    throw std::runtime_error("PgBouncer: " + params.describe() + " is neither the primary nor the standby");
  }
  out.set("host", "127.0.0.1").set("port", std::to_string(port_));
  return out;
}

std::string PgBouncer::url_for(const std::string& url) const {
  auto parsed = db::ConnParams::parse(url);
  if (!parsed) throw std::runtime_error("PgBouncer: bad URL: " + parsed.error().message);
  return params_for(*parsed).to_uri();
}

}  // namespace larder::test
