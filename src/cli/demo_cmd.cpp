// `larder demo`: the whole four-lock story on this machine in one command — embedded
// PostgreSQL with the synthetic healthcare records, a CA with server and client
// certificates (plus a rogue CA), a Biscuit root key and tokens, the database server and
// the compliance server — then every scenario of tools/demo_scenarios.h, each printed with
// its request, outcome and deciding lock. Servers keep running afterwards unless --once.
#include "biscuit/token/token.h"
#include "cli/command.h"
#include "cli/report.h"
#include "db/cluster.h"
#include "db/config.h"
#include "db/connection.h"
#include "gate/config.h"
#include "gate/taint_ledger.h"
#include "net/pki.h"
#include "net/server.h"
#include "tools/demo_scenarios.h"
#include "tools/service.h"

#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <thread>

extern char** environ;

namespace larder::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct DemoOptions {
  std::string dir = ".larder";
  bool once = false;
  bool no_color = false;
  std::size_t rows = 55500;
  std::string nurse_hospital;
};

struct Style {
  bool color;
  std::string c(const char* code, const std::string& s) const { return color ? std::string("\033[") + code + "m" + s + "\033[0m" : s; }
  std::string bold(const std::string& s) const { return c("1", s); }
  std::string green(const std::string& s) const { return c("32", s); }
  std::string red(const std::string& s) const { return c("31", s); }
  std::string dim(const std::string& s) const { return c("2", s); }
  std::string cyan(const std::string& s) const { return c("36", s); }
};

std::string self_exe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("larder") : p.string();
}

// Runs `larder <args...>` to completion with output passed through; returns its status.
int run_self(const std::vector<std::string>& args) {
  std::vector<std::string> argv{self_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ) != 0) return 127;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// Starts `larder serve` in its own session, output to `log`; waits for its port file.
Result<pid_t> spawn_server(const std::string& config, const std::string& port_file, const std::string& pid_file,
                           const std::string& log) {
  fs::remove(port_file);
  std::vector<std::string> argv{self_exe(), "serve", "--config", config, "--port-file", port_file, "--pid-file", pid_file};
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // Nothing else of ours reaches the server: Asio's sockets (e.g. the stand-in compliance
  // API's listener) are not close-on-exec, and a server holding them would keep them alive.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("demo", "cannot start larder serve");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(port_file) && fs::file_size(port_file) > 0) return pid;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      std::ifstream in(log);
      std::string content((std::istreambuf_iterator<char>(in)), {});
      if (content.size() > 2000) content = content.substr(content.size() - 2000);
      return make_error("demo", "larder serve --config " + config + " exited:\n" + content);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  return make_error("demo", "larder serve --config " + config + " did not start within 60 s (see " + log + ")");
}

int read_port(const std::string& port_file) {
  std::ifstream in(port_file);
  int port = 0;
  in >> port;
  return port;
}

void stop_pid_file(const std::string& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  if (in >> pid && pid > 1) ::kill(pid, SIGTERM);
}

Result<biscuit::PrivateKey> ensure_root_key(const std::string& path) {
  if (fs::exists(path)) {
    std::ifstream in(path);
    std::string text;
    in >> text;
    auto key = biscuit::PrivateKey::from_string(text);
    if (!key) return make_error("demo", path + ": " + key.error().message);
    return *key;
  }
  auto pair = biscuit::KeyPair::generate();
  if (auto r = net::pki::write_file(path, pair.private_key().to_string() + "\n", 0600); !r) return r.error();
  if (auto r = net::pki::write_file(path + ".pub", pair.public_key().to_string() + "\n", 0644); !r) return r.error();
  return pair.private_key();
}

std::string server_toml(const std::string& audience, const std::string& certs, const std::string& dir,
                        const std::string& public_key, const std::vector<std::string>& tools,
                        const std::string& classes, const std::string& compliance_url) {
  std::ostringstream t;
  t << "# Written by `larder demo`.\n[server]\nhost = \"127.0.0.1\"\nport = 0\naudience = \"" << audience << "\"\n\n"
    << "[tls]\ncert = \"" << certs << "/server/" << audience << ".crt\"\nkey = \"" << certs << "/server/" << audience
    << ".key\"\nclient_ca = \"" << certs << "/ca.crt\"\ncrl = \"" << certs << "/crl.pem\"\n\n"
    << "[biscuit]\nroot_keys = [{ id = 1, public_key = \"" << public_key << "\" }]\n\n"
    << "[database]\nmode = \"embedded\"\ndir = \"" << dir << "\"\n\n[tools]\nenabled = [";
  for (std::size_t i = 0; i < tools.size(); ++i) t << (i ? ", " : "") << "\"" << tools[i] << "\"";
  t << "]\nclasses = { " << classes << " }\n\n[audit]\npath = \"" << dir << "/audit/" << audience << ".jsonl\"\n";
  if (!compliance_url.empty()) t << "\n[compliance]\napi_url = \"" << compliance_url << "\"\n";
  return t.str();
}

// A loopback stand-in for the external compliance API: records what it is sent.
struct ComplianceReceiver {
  std::mutex mu;
  std::vector<std::string> bodies;
  std::unique_ptr<net::Server> server;
};

Result<std::unique_ptr<ComplianceReceiver>> start_receiver() {
  auto receiver = std::make_unique<ComplianceReceiver>();
  net::ServerConfig config;
  config.host = "127.0.0.1";
  config.plain_http = true;
  ComplianceReceiver* r = receiver.get();
  auto server = net::Server::create(config, [r](const net::HttpRequest& request, std::shared_ptr<net::Responder> out) {
    {
      std::lock_guard lock(r->mu);
      r->bodies.push_back(request.body);
    }
    out->respond({200, {{"Content-Type", "application/json"}}, R"({"received":true})"});
  });
  if (!server) return server.error();
  if (auto s = (*server)->start(); !s) return s.error();
  receiver->server = std::move(*server);
  return receiver;
}

std::string first_hospital(const db::ClusterState& state) {
  auto conn = state.admin().connect(db::Clock::now() + std::chrono::seconds(10));
  if (!conn) return "Sullivan-Johnson";
  auto r = db::exec_params(conn->get(),
                           "SELECT \"Hospital\" FROM health_records GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1", {},
                           db::Clock::now() + std::chrono::seconds(10));
  if (!r || PQntuples(r->get()) == 0) return "Sullivan-Johnson";
  return PQgetvalue(r->get(), 0, 0);
}

// Where the cluster's data lives. PostgreSQL runs as the `postgres` user when we are root,
// and that user must be able to reach its data directory: inside the state directory when
// every ancestor is traversable by others, else under /var/lib/larder (a checkout in
// /root, mode 0700, is the usual case).
std::string pg_data_dir(const fs::path& state_dir) {
  bool traversable = true;
  if (::geteuid() == 0) {
    for (fs::path p = state_dir.parent_path(); !p.empty(); p = p.parent_path()) {
      struct stat st{};
      if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) traversable = false;
      if (p == p.root_path()) break;
    }
  }
  if (traversable) return (state_dir / "pg").string();
  fs::path base = "/var/lib/larder";
  std::error_code ec;
  fs::create_directories(base, ec);
  ::chmod(base.c_str(), 0711);
  return (base / ("demo-" + std::to_string(std::hash<std::string>{}(state_dir.string())) + "-pg")).string();
}

int run_demo(const DemoOptions& o) {
  const Style s{!o.no_color && ::isatty(1)};
  auto step = [&](const std::string& what) { std::cout << s.bold("==> " + what) << "\n" << std::flush; };
  auto die = [&](const std::string& what) {
    std::cerr << s.red("larder demo: " + what) << "\n";
    return exit_status::kRefused;
  };
  auto started = std::chrono::steady_clock::now();
  const fs::path dir = fs::absolute(o.dir);
  std::error_code ec;
  fs::create_directories(dir / "audit", ec);
  fs::create_directories(dir / "logs", ec);
  fs::create_directories(dir / "tokens", ec);
  ::chmod(dir.c_str(), 0711);

  // 1. PostgreSQL with the data.
  step("embedded PostgreSQL 15 with the synthetic healthcare records");
  if (!fs::exists(db::state_file_path(dir))) {
    if (int rc = run_self({"db", "--state-dir", dir.string(), "init", "--data-dir", pg_data_dir(dir), "--rows",
                           std::to_string(o.rows)});
        rc != 0) {
      return die("`larder db init` failed");
    }
  } else if (int rc = run_self({"db", "--state-dir", dir.string(), "start"}); rc != 0) {
    return die("`larder db start` failed");
  }
  auto state = db::ClusterState::load(db::state_file_path(dir));
  if (!state) return die(state.error().message);

  // 2. Certificates.
  step("certificate authority, server and client certificates (+ a rogue CA)");
  const std::string certs = (dir / "certs").string();
  const std::string rogue = (dir / "rogue-ca").string();
  if (auto r = tools::ensure_demo_pki(certs, rogue, "Larder Demo CA"); !r) return die(r.error().message);
  std::cout << "  CA " << certs << "/ca.crt; servers larder-db, larder-compliance; clients claude-client, other-client;\n"
            << "  rogue CA " << rogue << "/ca.crt with its own claude-client\n";

  // 3. Root key.
  step("Biscuit root key (id 1)");
  auto root = ensure_root_key((dir / "root.key").string());
  if (!root) return die(root.error().message);
  std::cout << "  public key " << root->public_key().to_string() << "\n";

  // 4. Servers.
  step("database server (larder-db) and compliance server (larder-compliance)");
  auto receiver = start_receiver();
  if (!receiver) return die(receiver.error().message);
  std::string receiver_url = "http://127.0.0.1:" + std::to_string((*receiver)->server->port()) + "/check";
  for (const char* name : {"larder-db", "larder-compliance"}) stop_pid_file((dir / (std::string(name) + ".pid")).string());
  const std::string pub = root->public_key().to_string();
  std::ofstream(dir / "larder-db.toml")
      << server_toml("larder-db", certs, dir.string(), pub, {"pg_query", "pg_explain", "pg_metadata"},
                     "pg_query = \"sensitive-read\", pg_explain = \"neutral\", pg_metadata = \"sensitive-read\"", "");
  std::ofstream(dir / "larder-compliance.toml")
      << server_toml("larder-compliance", certs, dir.string(), pub, {"hipaa_compliance_check"},
                     "hipaa_compliance_check = \"egress\"", receiver_url);
  std::vector<pid_t> children;
  int ports[2] = {0, 0};
  int i = 0;
  for (const char* name : {"larder-db", "larder-compliance"}) {
    std::string n(name);
    auto pid = spawn_server((dir / (n + ".toml")).string(), (dir / (n + ".port")).string(),
                            (dir / (n + ".pid")).string(), (dir / "logs" / (n + ".log")).string());
    if (!pid) {
      for (pid_t c : children) ::kill(c, SIGTERM);
      return die(pid.error().message);
    }
    children.push_back(*pid);
    ports[i] = read_port((dir / (n + ".port")).string());
    std::cout << "  " << n << " on https://127.0.0.1:" << ports[i] << "/mcp (pid " << *pid << ")\n";
    ++i;
  }

  // 5. Tokens and client configuration.
  tools::DemoEnvironment env;
  env.db_url = "https://127.0.0.1:" + std::to_string(ports[0]) + "/mcp";
  env.compliance_url = "https://127.0.0.1:" + std::to_string(ports[1]) + "/mcp";
  tools::use_demo_pki(env, certs, rogue);
  env.root = *root;
  env.audit_log = (dir / "audit" / "larder-db.jsonl").string();
  ComplianceReceiver* rec = receiver->get();
  std::size_t already = 0;
  {
    std::lock_guard lock(rec->mu);
    already = rec->bodies.size();
  }
  env.compliance_received = [rec, already] {
    std::lock_guard lock(rec->mu);
    return std::vector<std::string>(rec->bodies.begin() + static_cast<std::ptrdiff_t>(already), rec->bodies.end());
  };
  gate::ServeConfig ledger_config;
  ledger_config.database_dir = dir.string();
  auto ledger_params = tools::ledger_connection(ledger_config);
  if (!ledger_params) return die(ledger_params.error().message);
  auto ledger = std::make_shared<gate::TaintLedger>(*ledger_params, gate::TaintLedger::Options{});
  env.revoke = [ledger](const std::string& id) { return ledger->revoke(id, "revoked by larder demo"); };

  step("tokens");
  std::string hospital = o.nurse_hospital.empty() ? first_hospital(*state) : o.nurse_hospital;
  auto tokens = tools::mint_demo_tokens(env, hospital);
  if (!tokens) return die(tokens.error().message);
  for (auto [name, value] : {std::pair{"erin", &tokens->erin}, std::pair{"david", &tokens->david},
                             std::pair{"nurse", &tokens->nurse}}) {
    (void)net::pki::write_file((dir / "tokens" / (std::string(name) + ".b64")).string(), *value + "\n", 0600);
  }
  std::cout << "  Erin oRTEga (patient), DAvID AndErSON (patient), nurse at " << hospital
            << " — each bound to claude-client's certificate and both audiences; in " << (dir / "tokens").string()
            << "\n";
  json mcp_config = {{"mcpServers",
                      {{"larder-db", {{"url", env.db_url}, {"tls", {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}}}}},
                       {"compliance",
                        {{"url", env.compliance_url}, {"tls", {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}}}}}}}};
  (void)net::pki::write_file((dir / "mcp.json").string(), mcp_config.dump(2) + "\n", 0600);

  // 6. The scenarios.
  step("scenarios");
  int failed = 0;
  auto outcomes = tools::run_demo_scenarios(env, *tokens, [&](const tools::ScenarioOutcome& out) {
    std::string mark = out.expected ? s.green("PASS") : s.red("FAIL");
    std::cout << "  " << mark << "  " << s.bold(out.name) << "\n"
              << "        " << s.dim("request: ") << out.request << "\n"
              << "        " << s.dim("outcome: ") << out.outcome << "\n"
              << "        " << s.dim("lock:    ") << s.cyan(out.lock) << "\n";
    if (!out.expected) ++failed;
  });
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  std::cout << "\n" << (failed == 0 ? s.green("all " + std::to_string(outcomes.size()) + " scenarios behaved as required")
                                    : s.red(std::to_string(failed) + " of " + std::to_string(outcomes.size()) +
                                            " scenarios did NOT behave as required"))
            << " (" << seconds << " s)\n";
  std::cout << "scenarios: " << (outcomes.size() - failed) << " passed, " << failed << " failed\n";

  if (o.once) {
    for (pid_t c : children) ::kill(c, SIGTERM);
    for (pid_t c : children) waitpid(c, nullptr, 0);
    return failed == 0 ? 0 : 1;
  }
  std::cout << "\n" << s.bold("The servers keep running:") << "\n"
            << "  larder-db          " << env.db_url << "   (log " << (dir / "logs/larder-db.log").string() << ")\n"
            << "  larder-compliance  " << env.compliance_url << "\n"
            << "  stop them with:    kill $(cat " << (dir / "larder-db.pid").string() << ") $(cat "
            << (dir / "larder-compliance.pid").string() << ")\n\n"
            << s.bold("Try them:") << "\n"
            << "  larder ask --config " << (dir / "mcp.json").string() << " --token @" << (dir / "tokens/erin.b64").string()
            << " \"Show me all medical records for patient Erin oRTEga\"   (needs ANTHROPIC_API_KEY)\n"
            << "  curl --cacert " << env.ca_file << " --cert " << env.claude.cert << " --key " << env.claude.key << " \\\n"
            << "       -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n"
            << "       -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: pg_query' \\\n"
            << "       -H \"Authorization: Bearer $(cat " << (dir / "tokens/erin.b64").string() << ")\" \\\n"
            << "       -d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"pg_query\",\"arguments\":{\"query\":\"SELECT count(*) FROM health_records\"},"
               "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}' "
            << env.db_url << "\n"
            << "  MCP Inspector: see docs/security-model.md (it needs the client certificate: NODE_EXTRA_CA_CERTS + an mTLS agent)\n"
            << "  Note: the stand-in compliance API lived in this process; egress calls now report it unreachable.\n";
  return failed == 0 ? 0 : 1;
}

void define_demo(CLI::App& app, Action& selected) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "Run the four-lock demo: PostgreSQL, certificates, tokens, both servers, every scenario");
  demo->add_option("--dir", o->dir, "State directory")->capture_default_str();
  demo->add_flag("--once", o->once, "Stop the servers when the scenarios are done");
  demo->add_flag("--no-color", o->no_color, "Plain output even on a terminal");
  demo->add_option("--rows", o->rows, "Rows of synthetic data on first run")->capture_default_str();
  demo->add_option("--nurse-hospital", o->nurse_hospital, "Hospital the nurse token is scoped to (default: the largest)");
  demo->callback([&selected, o] { selected = [o] { return run_demo(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("demo", 70, define_demo);

}  // namespace larder::cli
