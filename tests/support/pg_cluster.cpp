#include "support/pg_cluster.h"

#include "examples/examples.h"
#include "examples/healthcare/generate.h"
#include "policy/setup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <tuple>

namespace larder::test {

namespace fs = std::filesystem;

namespace {
[[noreturn]] void fail(const std::string& what, const Error& e) {
  throw std::runtime_error("PgCluster: " + what + ": [" + e.code + "] " + e.message);
}

// A test killed mid-run (a timeout, Ctrl-C, a crash) never reaches the destructor, and
// pg_ctl's server outlives it. A watchdog in its own session waits on a pipe only this
// process writes: "done" means the destructor cleaned up; end of file without it means the
// test died, and the watchdog stops the server (SIGQUIT: immediate shutdown) and removes the
// directory. Returns the watchdog's pid and the pipe's write end (-1 when none could start).
std::pair<pid_t, int> start_watchdog(const std::string& root) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, -1};
  const char* script =
      "read -r line; [ \"$line\" = done ] && exit 0; "
      "pid=$(head -n 1 \"$1/data/postmaster.pid\" 2>/dev/null) && kill -QUIT \"$pid\" 2>/dev/null; "
      "sleep 1; rm -rf \"$1\"";
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {-1, -1};
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::setsid();    // out of the test's process group: a group kill leaves it to clean up
    ::dup2(fds[0], 0);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::close_range(3, ~0U, 0);
    ::execl("/bin/sh", "sh", "-c", script, "sh", root.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  return {pid, fds[1]};
}

void stop_watchdog(pid_t pid, int fd) {
  if (fd < 0) return;
  (void)!::write(fd, "done\n", 5);
  ::close(fd);
  ::waitpid(pid, nullptr, 0);
}
}  // namespace

PgCluster::PgCluster() : PgCluster(Options{}) {}

PgCluster::PgCluster(Options options) {
  // /tmp is world-traversable, so the postgres user can reach a 0711 directory inside it.
  const char* tmp = std::getenv("LARDER_PG_TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/larder-pg-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("PgCluster: mkdtemp failed for " + pattern);
  root_ = pattern;
  ::chmod(root_.c_str(), 0711);
  std::tie(watchdog_pid_, watchdog_fd_) = start_watchdog(root_.string());
  try {
    db::ClusterOptions co;
    co.durable = false;
    co.max_connections = options.max_connections;
    auto st = db::EmbeddedCluster::init(root_ / "data", co);
    if (!st) fail("initdb", st.error());
    state_ = *st;
    start();
    auto example = examples::find(options.example);
    if (!example) fail("example", example.error());
    auto parsed = policy::parse((*example)->policy, "<example " + (*example)->name + ">/policy.toml");
    if (!parsed) fail("policy", parsed.error());
    policy_ = std::move(*parsed);
    state_.example = (*example)->name;
    state_.database = (*example)->name;
    state_.query_user = policy_.roles.query;
    state_.writer_user = policy_.roles.writer;
    policy::SetupOptions so;
    so.database = state_.database;
    so.schema_sql = std::string((*example)->schema);
    so.query_password = state_.query_password;
    so.writer_password = state_.writer_password;
    if (auto r = policy::setup_database(state_.admin("postgres"), policy_, so); !r) fail("setup", r.error());
    if (options.seed_rows > 0) {
      auto rep = (*example)->seed(state_.admin(), options.seed_rows,
                                  options.seed != 0 ? options.seed : (*example)->default_seed);
      if (!rep) fail("seed", rep.error());
      seed_seconds_ = static_cast<double>(rep->total_time.count()) / 1000.0;
    }
  } catch (...) {
    if (running_) (void)db::EmbeddedCluster::stop(state_, true);
    std::error_code ec;
    fs::remove_all(root_, ec);
    stop_watchdog(watchdog_pid_, watchdog_fd_);
    throw;
  }
}

PgCluster::~PgCluster() {
  if (running_) (void)db::EmbeddedCluster::stop(state_, true);
  std::error_code ec;
  fs::remove_all(root_, ec);
  stop_watchdog(watchdog_pid_, watchdog_fd_);
}

std::string PgCluster::admin_scalar(const std::string& sql, const std::vector<db::Param>& params) const {
  const auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = state_.admin().connect(deadline);
  if (!conn) fail("admin connection", conn.error());
  auto r = db::exec_params(conn->get(), sql, params, deadline);
  if (!r) fail("admin query", r.error());
  if (PQntuples(r->get()) == 0 || PQnfields(r->get()) == 0) return "";
  return PQgetvalue(r->get(), 0, 0);
}

db::DatabaseConfig PgCluster::database_config(std::size_t pool_size) const {
  db::DatabaseConfig c;
  c.query = state_.query();
  c.writer = state_.writer();
  c.pool_size = pool_size;
  c.guard_policy = policy::guard_policy(policy_);
  return c;
}

void PgCluster::stop(bool immediate) {
  if (!running_) return;
  if (auto r = db::EmbeddedCluster::stop(state_, immediate); !r) fail("stop", r.error());
  running_ = false;
}

void PgCluster::start() {
  if (running_) return;
  // The same port, as promised: wait (briefly) until it can be bound the way the server binds
  // it — a restart right after a stop may find it held a moment longer (a socket of the old
  // server still closing, or another process's ephemeral socket); otherwise
  // EmbeddedCluster::start would move the cluster and every client would lose it.
  auto bindable = [](int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  };
  for (int i = 0; i < 200 && state_.port != 0 && !bindable(state_.port); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (auto r = db::EmbeddedCluster::start(state_); !r) fail("start", r.error());
  running_ = true;
}

}  // namespace larder::test
