// Attacks on the promises that must hold across many Larder instances (docs/deployment.md,
// "Many instances"): two `larder serve` processes for the same audience on one database, the
// taint ledger, revocation list and audit anchors reached through PgBouncer in transaction
// mode (no session state survives a transaction there). A token tainted on one instance, or
// revoked through one, is refused by the other in the very next call; each instance's audit
// log verifies against its own anchor.
#include "attack_env.h"
#include "support/wait.h"

#include "biscuit/token/token.h"
#include "gate/audit_log.h"
#include "support/cli_run.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace larder::attack {
namespace {

namespace fs = std::filesystem;
using test::CliRun;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// A TOML basic string.
std::string toml(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void stop_pid(pid_t pid) {
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) return;
  if (!test::wait_until([pid] { return ::kill(pid, 0) != 0; }, std::chrono::seconds(10),
                        std::chrono::milliseconds(50)))
    ::kill(pid, SIGKILL);
}

pid_t read_pid(const fs::path& file) {
  try {
    return static_cast<pid_t>(std::stol(slurp(file)));
  } catch (const std::exception&) {
    return -1;
  }
}

const std::string kLarder = std::string(LARDER_BINARY_DIR) + "/larder";

// Two instances of larder-db (every tool, the egress one included), one database, the ledger
// through one PgBouncer in transaction mode with ONE server connection: both instances'
// ledger statements interleave on it, so any session state (a named prepared statement, a
// SET, a LISTEN) one of them left behind would be found — or missed — by the other.
class InstancesAttack : public ::testing::Test {
 protected:
  struct Instance {
    fs::path config, audit;
    pid_t pid = -1;
    std::string url;
  };

  static void SetUpTestSuite() {
    dir_ = bed().dir() / "instances";
    fs::create_directories(dir_);
    start_pgbouncer();
    for (const char* name : {"a", "b"}) {
      Instance& i = std::string(name) == "a" ? a_ : b_;
      i = start_instance(name);
    }
  }

  static void TearDownTestSuite() {
    stop_pid(a_.pid);
    stop_pid(b_.pid);
    stop_pid(read_pid(dir_ / "pgbouncer" / "pgbouncer.pid"));
  }

  static void start_pgbouncer() {
    if (::access("/usr/sbin/pgbouncer", X_OK) != 0) {
      throw std::runtime_error(
          "PgBouncer is not installed (/usr/sbin/pgbouncer): scripts/install-deps installs it");
    }
    const db::ConnParams& ledger = bed().ledger();
    pgbouncer_port_ = free_port();
    // PgBouncer refuses to run as root: then it runs as the user PostgreSQL runs as
    // (db/cluster.cpp), in a directory of its own that user may write.
    const fs::path own = dir_ / "pgbouncer";
    fs::create_directories(own);
    std::string run_as;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr)
        throw std::runtime_error("running as root and there is no user postgres to run PgBouncer as");
      if (::chown(own.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("cannot chown " + own.string());
      run_as = "/usr/sbin/runuser -u postgres -- ";
    }
    write(dir_ / "userlist.txt", "\"larder_gate\" \"\"\n");
    write(dir_ / "pgbouncer.ini",
          "[databases]\n"
          "* = host=" +
              std::string(ledger.get("host").value_or("127.0.0.1")) +
              " port=" + std::string(ledger.get("port").value_or("5432")) +
              " user=larder_gate password=" + std::string(ledger.get("password").value_or("")) +
              "\n"
              "[pgbouncer]\n"
              "listen_addr = 127.0.0.1\n"
              "listen_port = " +
              std::to_string(pgbouncer_port_) +
              "\n"
              "unix_socket_dir =\n"
              "auth_type = trust\n"
              "auth_file = " +
              (dir_ / "userlist.txt").string() +
              "\n"
              "pool_mode = transaction\n"
              "default_pool_size = 1\n"
              "max_client_conn = 64\n"
              "logfile = " +
              (own / "pgbouncer.log").string() +
              "\n"
              "pidfile = " +
              (own / "pgbouncer.pid").string() + "\n");
    auto r = test::run_shell(run_as + "/usr/sbin/pgbouncer -d " +
                             test::shell_quote((dir_ / "pgbouncer.ini").string()) + " 2>&1");
    if (r.status != 0)
      throw std::runtime_error("pgbouncer did not start: " + r.out + slurp(own / "pgbouncer.log"));
    test::wait_until([&] { return read_pid(own / "pgbouncer.pid") > 0; }, std::chrono::seconds(5),
                     std::chrono::milliseconds(50));
  }

  static std::string ledger_url() {
    return "postgresql://larder_gate@127.0.0.1:" + std::to_string(pgbouncer_port_) + "/" +
           std::string(bed().ledger().get("dbname").value_or("healthcare"));
  }

  // The same audience, CA, root key and tools; its own port and audit log.
  static Instance start_instance(const std::string& name) {
    Instance i = configure(name, "");
    const CliRun r = launch(i, name);
    if (r.status != 0) throw std::runtime_error("larder serve (" + name + ") did not start: " + r.out);
    i.pid = read_pid(dir_ / (name + ".pid"));
    i.url = "https://127.0.0.1:" + std::to_string(std::stoi(slurp(dir_ / (name + ".port")))) + "/mcp";
    return i;
  }

  // Writes instance `name`'s configuration; `audit_extra`: more [audit] lines.
  static Instance configure(const std::string& name, const std::string& audit_extra) {
    Instance i;
    const std::string certs = bed().certs();
    i.config = dir_ / ("larder-" + name + ".toml");
    i.audit = dir_ / ("audit-" + name + ".jsonl");
    write(
        i.config,
        "[server]\nhost = \"127.0.0.1\"\nport = 0\naudience = \"larder-db\"\n"
        "[tls]\ncert = " +
            toml(certs + "/server/larder-db.crt") + "\nkey = " + toml(certs + "/server/larder-db.key") +
            "\nclient_ca = " + toml(certs + "/ca.crt") + "\ncrl = " + toml(certs + "/crl.pem") +
            "\n"
            "[biscuit]\nroot_keys = [{ id = 1, public_key = " +
            toml(bed().root().public_key().to_string()) +
            " }]\n"
            "[database]\nmode = \"url\"\nurl = " +
            toml(bed().cluster().query_url()) + "\nwriter_url = " + toml(bed().cluster().writer_url()) +
            "\nledger_url = " + toml(ledger_url()) +
            "\n"
            "[tools]\nenabled = [\"pg_query\", \"pg_metadata\", \"pg_explain\", \"hipaa_compliance_check\"]\n"
            "classes = { pg_query = \"sensitive-read\", pg_metadata = \"sensitive-read\", pg_explain = "
            "\"neutral\", hipaa_compliance_check = \"egress\" }\n"
            "[audit]\npath = " +
            toml(i.audit.string()) + "\n" + audit_extra + "[limits]\nworker_threads = 4\n");
    return i;
  }

  // `larder serve --background` for a configured instance: returns once it listens (status 0)
  // or has said why it cannot start.
  static CliRun launch(const Instance& i, const std::string& name) {
    auto r = test::run_shell(test::shell_quote(kLarder) + " serve --background -c " +
                             test::shell_quote(i.config.string()) + " --pid-file " +
                             test::shell_quote((dir_ / (name + ".pid")).string()) + " --port-file " +
                             test::shell_quote((dir_ / (name + ".port")).string()) + " --log-file " +
                             test::shell_quote((dir_ / (name + ".log")).string()) + " 2>&1");
    r.out += slurp(dir_ / (name + ".log"));
    return r;
  }

  static fs::path dir_;
  static int pgbouncer_port_;
  static Instance a_, b_;
};
fs::path InstancesAttack::dir_;
int InstancesAttack::pgbouncer_port_ = 0;
InstancesAttack::Instance InstancesAttack::a_, InstancesAttack::b_;

const nlohmann::json kRead = {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}};

// Instance B has just said "clean" for the lineage; A taints it; B's very next egress call
// with the pre-read copy of the token must be refused from the ledger, not from B's memory.
TEST_F(InstancesAttack, ATokenTaintedOnOneInstanceIsRefusedForEgressOnAnotherInTheNextCall) {
  const std::string token = fresh_patient_token();
  auto on_a = connect(a_.url, token);
  auto on_b = connect(b_.url, token);
  const auto clean = call(*on_b, "hipaa_compliance_check", {{"text", "nothing read yet"}});
  ASSERT_EQ(refused_lock(clean), "") << "a clean lineage passes egress: " << clean.dump();

  const auto read = call(*on_a, "pg_query", kRead);
  ASSERT_EQ(refused_lock(read), "") << read.dump();

  const auto before = bed().received().size();
  const auto out = call(*on_b, "hipaa_compliance_check", {{"text", text_of(read)}});
  EXPECT_EQ(refused_lock(out), "taint") << out.dump();
  EXPECT_EQ(bed().received().size(), before) << "the external API was reached from instance B";
}

// B has just admitted the token (and, before the fix, remembered "not revoked" for 5 s);
// the token's lineage is revoked through A's configuration; B's very next call refuses it.
TEST_F(InstancesAttack, ARevokedTokenIsRefusedByTheOtherInstanceInTheNextCall) {
  const std::string token = fresh_patient_token();
  auto on_a = connect(a_.url, token);
  auto on_b = connect(b_.url, token);
  const nlohmann::json explain = {{"query", R"(SELECT count(*) FROM health_records)"}};
  ASSERT_EQ(refused_lock(call(*on_a, "pg_explain", explain)), "");
  ASSERT_EQ(refused_lock(call(*on_b, "pg_explain", explain)), "");

  const fs::path token_file = dir_ / "revoked.token";
  write(token_file, token + "\n");
  auto revoked = test::run_shell(test::shell_quote(kLarder) + " biscuit revoke --config " +
                                 test::shell_quote(a_.config.string()) + " @" +
                                 test::shell_quote(token_file.string()) + " 2>&1");
  ASSERT_EQ(revoked.status, 0) << revoked.out;

  for (auto* client : {on_b.get(), on_a.get()}) {
    const auto r = call(*client, "pg_explain", explain);
    EXPECT_EQ(refused_lock(r), "biscuit") << r.dump();
    EXPECT_NE(text_of(r).find("revoked"), std::string::npos) << r.dump();
  }
  // And the attenuated copies of the lineage (e.g. a tainted one handed back earlier) too.
  const auto q = call(*on_b, "pg_query", kRead);
  EXPECT_EQ(refused_lock(q), "biscuit") << q.dump();
}

// Each instance anchors its own log under its own id (default: audience@host:path), so the
// two anchors never overwrite each other and `larder audit verify` passes on both logs.
TEST_F(InstancesAttack, EachInstancesAuditLogVerifiesAgainstItsOwnAnchor) {
  const std::string token = fresh_patient_token();
  for (const auto* i : {&a_, &b_, &a_, &a_, &b_}) {
    auto client = connect(i->url, token);
    (void)call(*client, "pg_explain", {{"query", R"(SELECT count(*) FROM health_records)"}});
  }
  const std::string id_a = gate::default_audit_anchor_id("larder-db", a_.audit.string());
  const std::string id_b = gate::default_audit_anchor_id("larder-db", b_.audit.string());
  ASSERT_NE(id_a, id_b);
  // Wait for both anchors to hold something, then verify each log against its own.
  test::wait_until(
      [&] {
        return bed().cluster().admin_scalar(
                   "SELECT count(*) FROM larder_gate.audit_anchors WHERE log_id = ANY($1::text[])",
                   {"{\"" + id_a + "\",\"" + id_b + "\"}"}) == "2";
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  for (const auto* i : {&a_, &b_}) {
    auto v = test::run_shell(test::shell_quote(kLarder) + " audit verify --config " +
                             test::shell_quote(i->config.string()) + " 2>&1");
    EXPECT_EQ(v.status, 0) << v.out;
    EXPECT_NE(v.out.find("anchored in PostgreSQL"), std::string::npos) << v.out;
  }
}

// The configuration of instance A copied to a new instance C, explicit anchor id and all:
// C's log would be anchored under A's id, and both logs would then fail verification. C
// refuses to start, saying why and what to change; A's log still verifies.
TEST_F(InstancesAttack, AnInstanceReusingAnotherInstancesAnchorIdRefusesToStart) {
  auto client = connect(a_.url, fresh_patient_token());
  (void)call(*client, "pg_explain", {{"query", R"(SELECT count(*) FROM health_records)"}});
  const std::string id_a = gate::default_audit_anchor_id("larder-db", a_.audit.string());
  test::wait_until(
      [&] {
        return !bed()
                    .cluster()
                    .admin_scalar("SELECT seq FROM larder_gate.audit_anchors WHERE log_id = $1", {id_a})
                    .empty();
      },
      std::chrono::seconds(10), std::chrono::milliseconds(50));
  Instance c = configure("c", "anchor_id = " + toml(id_a) + "\n");
  const CliRun r = launch(c, "c");
  if (r.status == 0) stop_pid(read_pid(dir_ / "c.pid"));
  EXPECT_NE(r.status, 0) << "an instance started with another instance's audit anchor id: " << r.out;
  EXPECT_NE(r.out.find("anchor_id"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("its own [audit] anchor_id"), std::string::npos) << r.out;

  auto v = test::run_shell(test::shell_quote(kLarder) + " audit verify --config " +
                           test::shell_quote(a_.config.string()) + " 2>&1");
  EXPECT_EQ(v.status, 0) << v.out;
}

// An instance whose log rotates every few records and keeps two rotated files (issue #17,
// item 5): the chain and the anchor go on across files, `larder audit verify --config` passes;
// the oldest file kept deleted, it fails.
TEST_F(InstancesAttack, ARotatedLogVerifiesAgainstItsAnchorAndADeletedFileFails) {
  Instance r = configure("r", "rotate_bytes = 4096\nkeep_files = 2\n");
  const CliRun started = launch(r, "r");
  ASSERT_EQ(started.status, 0) << started.out;
  r.pid = read_pid(dir_ / "r.pid");
  r.url = "https://127.0.0.1:" + std::to_string(std::stoi(slurp(dir_ / "r.port"))) + "/mcp";
  {
    auto client = connect(r.url, fresh_patient_token());
    for (int i = 0; i < 30; ++i)
      (void)call(*client, "pg_explain", {{"query", R"(SELECT count(*) FROM health_records)"}});
  }
  stop_pid(r.pid);  // the last anchor write happens on the way out
  const auto files = gate::rotated_audit_files(r.audit.string());
  ASSERT_EQ(files.size(), 2u);
  const std::string verify =
      test::shell_quote(kLarder) + " audit verify --config " + test::shell_quote(r.config.string()) + " 2>&1";
  auto v = test::run_shell(verify);
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find("anchored in PostgreSQL"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("deleted by retention"), std::string::npos) << v.out;

  fs::remove(files.front().second);
  auto tampered = test::run_shell(verify);
  EXPECT_EQ(tampered.status, 1) << tampered.out;
  EXPECT_NE(tampered.out.find("no retention record"), std::string::npos) << tampered.out;
}

}  // namespace
}  // namespace larder::attack
