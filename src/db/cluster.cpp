#include "db/cluster.h"
#include "base/files.h"

#include "base/json.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace larder::db {

namespace fs = std::filesystem;

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

const char* runuser_path() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"})
    if (::access(p, X_OK) == 0) return p;
  return nullptr;
}

bool port_is_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;  // as the server binds: TIME_WAIT leftovers of a previous run do not count
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string tail(const std::string& text, std::size_t max = 2000) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

// "" when the file cannot be read: its absence is what the callers report.
std::string read_file_text(const fs::path& p) {
  auto text = read_file(p.string());
  return text ? std::move(*text) : std::string();
}

}  // namespace

std::string default_server_user() {
  return ::geteuid() == 0 ? "postgres" : "";
}

Result<void> give_to_server_user(const fs::path& path, const std::string& run_as) {
  if (run_as.empty()) return {};
  passwd* pw = ::getpwnam(run_as.c_str());
  if (pw == nullptr)
    return make_error("db.cluster", "system user '" + run_as + "' does not exist (install postgresql-15)");
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
    return make_error("db.cluster", "cannot chown " + path.string() + " to " + run_as + ": " + errno_text());
  return {};
}

Result<ProcessOutcome> run_process(const std::vector<std::string>& argv_in, const std::string& run_as) {
  if (argv_in.empty()) return make_error("db.process", "empty command");
  std::vector<std::string> argv;
  if (!run_as.empty() && ::geteuid() == 0) {
    const char* ru = runuser_path();
    if (ru == nullptr)
      return make_error("db.process", "runuser not found; cannot run PostgreSQL as " + run_as);
    argv = {ru, "-u", run_as, "--"};
  }
  argv.insert(argv.end(), argv_in.begin(), argv_in.end());

  char out_path[] = "/tmp/larder-proc-XXXXXX";
  int out_fd = ::mkstemp(out_path);
  if (out_fd < 0) return make_error("db.process", std::string("mkstemp: ") + errno_text());
  ::unlink(out_path);

  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_fd);
    return make_error("db.process", std::string("fork: ") + errno_text());
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::close_range(3, ~0U, 0);  // the server must not inherit our sockets or files
    if (::chdir("/") != 0) _exit(126);
    ::execv(cargv[0], cargv.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      ::close(out_fd);
      return make_error("db.process", std::string("waitpid: ") + errno_text());
    }
  }
  ProcessOutcome outcome;
  outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ::lseek(out_fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_fd, buf, sizeof buf)) > 0) outcome.output.append(buf, static_cast<std::size_t>(n));
  ::close(out_fd);
  if (outcome.status == 127) return make_error("db.process", "cannot execute " + argv_in[0]);
  return outcome;
}

Result<int> find_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return make_error("db.cluster", "socket: " + errno_text());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return make_error("db.cluster", "bind 127.0.0.1:0: " + errno_text());
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

ConnParams ClusterState::admin(const std::string& dbname) const {
  ConnParams p;
  p.set("host", host).set("port", std::to_string(port)).set("dbname", dbname);
  p.set("user", admin_user).set("password", admin_password);
  return p;
}

ConnParams ClusterState::query() const {
  ConnParams p;
  p.set("host", host).set("port", std::to_string(port)).set("dbname", database);
  p.set("user", query_user).set("password", query_password);
  return p;
}

ConnParams ClusterState::writer() const {
  ConnParams p;
  p.set("host", host).set("port", std::to_string(port)).set("dbname", database);
  p.set("user", writer_user).set("password", writer_password);
  return p;
}

std::string ClusterState::log_file() const {
  return (fs::path(data_dir) / "larder-server.log").string();
}

nlohmann::json ClusterState::to_json() const {
  return {{"data_dir", data_dir},
          {"bin_dir", bin_dir},
          {"host", host},
          {"port", port},
          {"database", database},
          {"run_as", run_as},
          {"admin_user", admin_user},
          {"admin_password", admin_password},
          {"query_password", query_password},
          {"writer_password", writer_password},
          {"query_user", query_user},
          {"writer_user", writer_user},
          {"example", example}};
}

Result<ClusterState> ClusterState::from_json(const nlohmann::json& j) {
  try {
    ClusterState s;
    s.data_dir = j.at("data_dir").get<std::string>();
    s.bin_dir = j.value("bin_dir", std::string(kDefaultPgBinDir));
    s.host = j.value("host", std::string("127.0.0.1"));
    s.port = j.at("port").get<int>();
    s.database = j.value("database", std::string(kDatabaseName));
    s.run_as = j.value("run_as", std::string());
    s.admin_user = j.value("admin_user", std::string("postgres"));
    s.admin_password = j.at("admin_password").get<std::string>();
    s.query_password = j.at("query_password").get<std::string>();
    s.writer_password = j.at("writer_password").get<std::string>();
    s.query_user = j.value("query_user", std::string(kQueryRole));
    s.writer_user = j.value("writer_user", std::string(kContextWriterRole));
    s.example = j.value("example", std::string());
    if (s.host != "127.0.0.1" && s.host != "::1" && s.host != "localhost")
      return make_error("db.state", "state file host must be loopback, got " + s.host);
    return s;
  } catch (const nlohmann::json::exception& e) {
    return make_error("db.state", std::string("malformed cluster state: ") + e.what());
  }
}

Result<void> ClusterState::save(const fs::path& path) const {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("db.state", "cannot write " + tmp.string() + ": " + errno_text());
  ::fchmod(fd, 0600);
  std::string text = to_json().dump(2) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::fsync(fd) == 0) && ok;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error("db.state", "cannot write " + path.string() + ": " + errno_text());
  return {};
}

Result<ClusterState> ClusterState::load(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return make_error("db.state", "no cluster state at " + path.string() + " (run `larder db init` first)");
  if ((st.st_mode & 077) != 0)
    return make_error("db.state",
                      path.string() + " is readable by others; it holds passwords (chmod 600 it)");
  auto doc = parse_json_bounded(read_file_text(path));
  if (!doc) return make_error("db.state", "cannot parse " + path.string() + ": " + doc.error().message);
  try {
    return from_json(*doc);
  } catch (const nlohmann::json::exception& e) {
    return make_error("db.state", "cannot parse " + path.string() + ": " + e.what());
  }
}

Result<ClusterState> EmbeddedCluster::init(const fs::path& data_dir_in, const ClusterOptions& options) {
  std::error_code ec;
  fs::path data_dir = fs::absolute(data_dir_in, ec);
  if (ec) return make_error("db.cluster", "bad data directory " + data_dir_in.string());
  if (fs::exists(data_dir / "PG_VERSION"))
    return make_error("db.cluster", data_dir.string() + " already holds a cluster (use `larder db start`)");
  if (fs::exists(data_dir) && !fs::is_empty(data_dir, ec))
    return make_error("db.cluster", data_dir.string() + " exists and is not empty");
  fs::path initdb = fs::path(options.bin_dir) / "initdb";
  if (::access(initdb.c_str(), X_OK) != 0)
    return make_error("db.cluster", "initdb not found at " + initdb.string() + " (install postgresql-15)");

  ClusterState state;
  state.data_dir = data_dir.string();
  state.bin_dir = options.bin_dir;
  state.port = options.port;
  state.run_as = default_server_user();
  for (std::string* pw : {&state.admin_password, &state.query_password, &state.writer_password}) {
    auto r = random_hex(24);
    if (!r) return r.error();
    *pw = *r;
  }

  fs::create_directories(data_dir.parent_path(), ec);
  if (!fs::exists(data_dir)) {
    if (::mkdir(data_dir.c_str(), 0700) != 0)
      return make_error("db.cluster", "cannot create " + data_dir.string() + ": " + errno_text());
  }
  ::chmod(data_dir.c_str(), 0700);
  if (auto r = give_to_server_user(data_dir, state.run_as); !r) return r.error();

  // The superuser password goes to initdb through a 0600 file readable by the server user.
  fs::path pwfile = data_dir.parent_path() / (".larder-initdb-pw-" + data_dir.filename().string());
  {
    int fd = ::open(pwfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return make_error("db.cluster", "cannot write " + pwfile.string() + ": " + errno_text());
    std::string line = state.admin_password + "\n";
    bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!ok) return make_error("db.cluster", "cannot write " + pwfile.string());
  }
  if (auto r = give_to_server_user(pwfile, state.run_as); !r) {
    fs::remove(pwfile, ec);
    return r.error();
  }
  std::vector<std::string> argv = {initdb.string(),
                                   "-D",
                                   data_dir.string(),
                                   "-U",
                                   state.admin_user,
                                   "--auth=scram-sha-256",
                                   "--pwfile=" + pwfile.string(),
                                   "-E",
                                   "UTF8",
                                   "--locale=C"};
  if (!options.durable) argv.push_back("--no-sync");
  auto outcome = run_process(argv, state.run_as);
  fs::remove(pwfile, ec);
  if (!outcome) return outcome.error();
  if (outcome->status != 0)
    return make_error(
        "db.cluster",
        "initdb failed (status " + std::to_string(outcome->status) + "): " + tail(outcome->output) +
            (state.run_as.empty()
                 ? ""
                 : " — the server user '" + state.run_as + "' must be able to reach " + data_dir.string()));

  std::ofstream conf(data_dir / "postgresql.conf", std::ios::app);
  conf << "\n# ---- added by larder db init ----\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = ''\n"
       << "max_connections = " << options.max_connections << "\n"
       << "password_encryption = 'scram-sha-256'\n"
       << "logging_collector = off\n"
       << "log_min_messages = warning\n"
       << "log_min_error_statement = panic\n"  // statements may hold patient names: keep them out of logs
       << "log_parameter_max_length = 0\n"     // and so may their parameters
       << "log_parameter_max_length_on_error = 0\n"
       << "log_line_prefix = '%m [%p] %q%u@%d '\n"
       << "shared_buffers = 128MB\n";
  if (!options.durable) conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
  conf.close();
  if (!conf) return make_error("db.cluster", "cannot append to postgresql.conf");
  return state;
}

Result<void> EmbeddedCluster::start(ClusterState& state) {
  fs::path pg_ctl = fs::path(state.bin_dir) / "pg_ctl";
  std::string last_output;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (state.port == 0 || !port_is_free(state.port)) {
      auto port = find_free_port();
      if (!port) return port.error();
      state.port = *port;
    }
    auto outcome = run_process({pg_ctl.string(), "-D", state.data_dir, "-l", state.log_file(), "-w", "-t",
                                "60", "-o", "-p " + std::to_string(state.port), "start"},
                               state.run_as);
    if (!outcome) return outcome.error();
    if (outcome->status == 0) return {};
    last_output = outcome->output;
    std::string log = read_file_text(state.log_file());
    last_output += "\n" + tail(log, 1500);
    if (log.find("could not bind") == std::string::npos &&
        log.find("Address already in use") == std::string::npos)
      break;
    state.port = 0;  // lost the race for the port: pick another
  }
  return make_error("db.cluster", "pg_ctl start failed: " + tail(last_output));
}

Result<void> EmbeddedCluster::stop(const ClusterState& state, bool immediate) {
  fs::path pg_ctl = fs::path(state.bin_dir) / "pg_ctl";
  auto outcome = run_process({pg_ctl.string(), "-D", state.data_dir, "-m", immediate ? "immediate" : "fast",
                              "-w", "-t", "60", "stop"},
                             state.run_as);
  if (!outcome) return outcome.error();
  if (outcome->status != 0) return make_error("db.cluster", "pg_ctl stop failed: " + tail(outcome->output));
  return {};
}

Result<bool> EmbeddedCluster::running(const ClusterState& state) {
  fs::path pg_ctl = fs::path(state.bin_dir) / "pg_ctl";
  auto outcome = run_process({pg_ctl.string(), "-D", state.data_dir, "status"}, state.run_as);
  if (!outcome) return outcome.error();
  if (outcome->status == 0) return true;
  if (outcome->status == 3) return false;
  return make_error("db.cluster", "pg_ctl status: " + tail(outcome->output));
}

}  // namespace larder::db
