// `larder demo [--example NAME]`: the whole four-lock story on this machine in one command —
// embedded PostgreSQL with one of the example databases (`larder db init --example NAME`:
// schema, policy file, synthetic data), a CA with server and client certificates (plus a
// rogue CA), a Biscuit root key, the database server and the compliance server (both with
// `[policy] example = "NAME"`), the example's tokens — then every scenario of the example's
// demo (examples/examples.h, Demo; the framework: tools/demo_scenarios.h), each printed with
// its request, outcome and deciding lock. Servers keep running afterwards unless --once.
// Nothing here knows an example's tables, columns or people: the example's Demo says.
//
// Every long-lived part is its own process, started in its own session and stopped by its
// pid file: the two `larder serve` servers, the stand-in for the external compliance API
// (`larder demo compliance-api`, the egress target; it records what reaches it) and, when
// the example has recorded answers, the recorded-response model (`larder demo fake-model`,
// for the printed `larder ask` line when no API key is set). So egress and `larder ask` keep
// answering after the demo process ends.
#include "agent/config.h"
#include "agent/fake_llm_server.h"
#include "base/files.h"
#include "base/text.h"
#include "biscuit/token/token.h"
#include "cli/command.h"
#include "cli/report.h"
#include "connect/host_config.h"
#include "db/cluster.h"
#include "db/config.h"
#include "db/connection.h"
#include "examples/examples.h"
#include "gate/taint_ledger.h"
#include "gate/token_profile.h"
#include "net/pki.h"
#include "net/server.h"
#include "tools/demo_scenarios.h"
#include "tools/serve_config.h"
#include "tools/service.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace larder::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The example `larder demo` runs without --example (also `larder db init`'s default).
constexpr const char* kDefaultExample = "healthcare";

struct DemoOptions {
  std::string example = kDefaultExample;
  std::string dir;  // default: .larder for the default example, .larder-<example> for another
  bool once = false;
  bool no_color = false;
  std::size_t rows = 0;             // 0: the example's default
  std::vector<std::string> params;  // NAME=VALUE: a value for the demo tokens' {NAME}
  uint16_t port = 0;                // larder-db; 0 = a free port
  uint16_t compliance_port = 0;     // larder-compliance; 0 = a free port
  uint16_t model_port = 0;          // the recorded-response model; 0 = a free port
};

// The hidden helpers the demo runs as processes beside the servers.
struct HelperOptions {
  uint16_t port = 0;
  std::string port_file;
  std::string record;  // compliance-api: JSON lines {"body": ...}, one per request received
  std::string example = kDefaultExample;  // fake-model: whose recorded answers
};

struct Style {
  bool color;
  std::string c(const char* code, const std::string& s) const {
    return color ? std::string("\033[") + code + "m" + s + "\033[0m" : s;
  }
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

// Starts `larder <args...>` in its own session, output to `log`, and waits for it to write
// `port_file`; then records its pid in `pid_file`. `what` names it in messages.
Result<pid_t> spawn_child(const std::string& what, std::vector<std::string> args,
                          const std::string& port_file, const std::string& pid_file, const std::string& log) {
  fs::remove(port_file);
  std::vector<std::string> argv{self_exe()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // Nothing else of ours reaches the child: Asio's sockets are not close-on-exec, and a
  // child holding them would keep them alive.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error("demo", "cannot start " + what + ": " + std::strerror(rc));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(port_file, ec) && fs::file_size(port_file, ec) > 0) {
      std::ofstream(pid_file) << pid << "\n";
      return pid;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      auto read = read_file(log);
      std::string content = read ? std::move(*read) : std::string("(its log could not be read)");
      if (content.size() > 2000) content = content.substr(content.size() - 2000);
      return make_error("demo", what + " exited before it listened:\n" + content);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGTERM);
  return make_error("demo", what + " did not start within 60 s (see " + log + ")");
}

// Writes `port` to `path` whole (a reader never sees a partial number).
void write_port_file(const std::string& path, uint16_t port) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::error_code ec;
  fs::rename(tmp, path, ec);
}

// SIGTERM/SIGINT for the helper processes.
std::atomic<bool> g_stop{false};
void on_stop_signal(int) {
  g_stop = true;
}
void wait_for_stop_signal() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
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

// Stops the children and waits for them (--once, and when the demo fails half-way).
void stop_children(const std::vector<pid_t>& children) {
  for (pid_t c : children) ::kill(c, SIGTERM);
  for (pid_t c : children) waitpid(c, nullptr, 0);
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
  if (auto r = net::pki::write_file(path + ".pub", pair.public_key().to_string() + "\n", 0644); !r)
    return r.error();
  return pair.private_key();
}

std::string server_toml(const std::string& audience, const std::string& example, uint16_t port,
                        const std::string& certs, const std::string& dir, const std::string& public_key,
                        const std::vector<std::string>& tools, const std::string& classes,
                        const std::string& compliance_url) {
  std::ostringstream t;
  t << "# Written by `larder demo`.\n[server]\nhost = \"127.0.0.1\"\nport = " << port << "\naudience = \""
    << audience << "\"\n\n"
    << "[tls]\ncert = \"" << certs << "/server/" << audience << ".crt\"\nkey = \"" << certs << "/server/"
    << audience << ".key\"\nclient_ca = \"" << certs << "/ca.crt\"\ncrl = \"" << certs << "/crl.pem\"\n\n"
    << "[biscuit]\nroot_keys = [{ id = 1, public_key = \"" << public_key << "\" }]\n"
    << "require_binding = true   # tokens must be bound to a client certificate\n"
    << "require_expiry = true    # and must expire\n\n"
    << "[database]\nmode = \"embedded\"\ndir = \"" << dir << "\"\n\n"
    << "[policy]\nexample = \"" << example << "\"   # the policy file `larder db init --example` applied\n\n"
    << "[tools]\nenabled = [";
  for (std::size_t i = 0; i < tools.size(); ++i) t << (i ? ", " : "") << "\"" << tools[i] << "\"";
  t << "]\nclasses = { " << classes << " }\n\n[audit]\npath = \"" << dir << "/audit/" << audience
    << ".jsonl\"\n";
  if (!compliance_url.empty()) t << "\n[compliance]\napi_url = \"" << compliance_url << "\"\n";
  return t.str();
}

// `larder demo compliance-api`: a loopback stand-in for the external compliance API (plain
// HTTP on 127.0.0.1), the egress target of hipaa_compliance_check. It answers every request
// and appends its body to the record file, which the scenarios read to check that no
// patient data got out. Runs until SIGTERM/SIGINT.
int run_compliance_api(const HelperOptions& o) {
  auto record = std::make_shared<std::ofstream>(o.record, std::ios::app);
  if (o.record.empty() || !*record) {
    std::cerr << "larder demo compliance-api: cannot append to --record " << o.record << "\n";
    return 2;
  }
  auto mu = std::make_shared<std::mutex>();
  net::ServerConfig config;
  config.host = "127.0.0.1";
  config.port = o.port;
  config.plain_http = true;
  auto server = net::Server::create(
      config, [record, mu](const net::HttpRequest& request, std::shared_ptr<net::Responder> out) {
        {
          std::lock_guard lock(*mu);
          *record << json{{"body", request.body}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"
                  << std::flush;
        }
        out->respond({200, {{"Content-Type", "application/json"}}, R"({"received":true})"});
      });
  if (!server) {
    std::cerr << "larder demo compliance-api: " << server.error().message << "\n";
    return 1;
  }
  if (auto started = (*server)->start(); !started) {
    std::cerr << "larder demo compliance-api: cannot listen on 127.0.0.1:" << o.port << ": "
              << started.error().message << "\n";
    return 1;
  }
  write_port_file(o.port_file, (*server)->port());
  std::cerr << "larder demo compliance-api: listening on http://127.0.0.1:" << (*server)->port()
            << "/check\n";
  (*server)->run_until_signal();
  return 0;
}

// `larder demo fake-model`: the recorded-response model (agent/fake_llm_server.h) on
// 127.0.0.1, replaying the example demo's script for every conversation, so the printed
// `larder ask` line answers without an API key. Runs until SIGTERM/SIGINT.
int run_fake_model(const HelperOptions& o) {
  auto example = examples::find(o.example);
  if (!example) {
    std::cerr << "larder demo fake-model: " << example.error().message << "\n";
    return 2;
  }
  const examples::Demo& demo = (*example)->demo;
  if (demo.model_script.empty()) {
    std::cerr << "larder demo fake-model: the " << o.example << " example has no recorded answers\n";
    return 2;
  }
  testing::FakeLlmServer model(testing::FakeLlmServer::Api::Anthropic);
  std::string error;
  if (!model.load_script_text(std::string(demo.model_script), demo.model_script_name, &error)) {
    std::cerr << "larder demo fake-model: " << error << "\n";
    return 1;
  }
  model.set_repeat(true);
  if (!model.start(&error, o.port)) {
    std::cerr << "larder demo fake-model: " << error << " (choose another --model-port)\n";
    return 1;
  }
  write_port_file(o.port_file, model.port());
  std::cerr << "larder demo fake-model: recorded Anthropic responses (" << demo.model_script_name << ") on "
            << model.base_url() << "\n";
  wait_for_stop_signal();
  model.stop();
  return 0;
}

// The bodies the compliance API has recorded (one JSON line each).
std::vector<std::string> recorded_bodies(const std::string& record) {
  std::vector<std::string> bodies;
  std::ifstream in(record);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("body") && j["body"].is_string())
      bodies.push_back(j["body"].get<std::string>());
  }
  return bodies;
}

// Whether `larder ask` would find an API key (environment or ./.env, as ask reads them).
bool api_key_available() {
  auto env = agent::load_environment(".env");
  agent::Environment e = env ? *env : agent::Environment{};
  for (const char* name : {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}) {
    if (!e.get_or(name, "").empty()) return true;
  }
  return false;
}

// The example's tokens with the --param values applied: each NAME=VALUE replaces the value of
// {NAME} in every token whose profile has that placeholder (and one must).
Result<std::vector<examples::DemoToken>> demo_tokens(const examples::Demo& demo, const db::ConnParams& admin,
                                                     const std::vector<std::string>& overrides) {
  auto tokens = demo.tokens(admin);
  if (!tokens) return tokens.error();
  for (auto& t : *tokens) {
    if (auto valid = gate::validate_profile(t.profile); !valid) return valid.error();
  }
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      return make_error("config.invalid", "--param " + o + ": write NAME=VALUE");
    const std::string name = o.substr(0, eq);
    bool used = false;
    std::set<std::string> known;
    for (auto& t : *tokens) {
      known.insert(t.profile.params.begin(), t.profile.params.end());
      if (std::binary_search(t.profile.params.begin(), t.profile.params.end(), name)) {
        t.params[name] = o.substr(eq + 1);
        used = true;
      }
    }
    if (!used) {
      std::string have;
      for (const auto& k : known) have += (have.empty() ? "" : ", ") + k;
      return make_error("config.invalid", "--param " + name + ": no token of this demo has {" + name +
                                              "} (they have " + (have.empty() ? std::string("none") : have) +
                                              ")");
    }
  }
  return tokens;
}

// Where the cluster's data lives. PostgreSQL runs as the `postgres` user when we are root,
// and that user must be able to reach its data directory: inside the state directory when
// every ancestor is traversable by others, else under /var/lib/larder (a checkout in
// /root, mode 0700, is the usual case).
std::string pg_data_dir(const fs::path& state_dir) {
  bool traversable = true;
  if (::geteuid() == 0) {
    for (fs::path p = state_dir.parent_path(); !p.empty(); p = p.parent_path()) {
      struct stat st {};
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
  auto found = examples::find(o.example);
  if (!found) return die(found.error().message);
  const examples::Example& example = **found;
  const examples::Demo& demo = example.demo;
  if (!demo.tokens || !demo.scenarios) return die("the " + example.name + " example has no demo");
  auto started = std::chrono::steady_clock::now();
  const fs::path dir = fs::absolute(!o.dir.empty()                    ? o.dir
                                    : example.name == kDefaultExample ? ".larder"
                                                                      : ".larder-" + example.name);
  std::error_code ec;
  fs::create_directories(dir / "audit", ec);
  fs::create_directories(dir / "logs", ec);
  fs::create_directories(dir / "tokens", ec);
  ::chmod(dir.c_str(), 0711);

  std::cout << s.bold("larder demo --example " + example.name) << ": " << example.description << "\n";
  for (const auto& line : demo.banner) std::cout << "  " << line << "\n";

  // 1. PostgreSQL with the example: its schema, its policy file applied, its data.
  step("embedded PostgreSQL 15 with the " + example.name + " example (`larder db init --example " +
       example.name + "`)");
  if (!fs::exists(db::state_file_path(dir))) {
    std::vector<std::string> init = {"db",         "--state-dir",    dir.string(), "init",
                                     "--data-dir", pg_data_dir(dir), "--example",  example.name};
    if (o.rows != 0) {
      init.push_back("--rows");
      init.push_back(std::to_string(o.rows));
    }
    if (int rc = run_self(init); rc != 0)
      return die("`larder db init --example " + example.name + "` failed");
  } else {
    auto existing = db::ClusterState::load(db::state_file_path(dir));
    if (!existing) return die(existing.error().message);
    const std::string has = existing->example.empty() ? kDefaultExample : existing->example;
    if (has != example.name) {
      return die(dir.string() + " holds the " + has + " example's database, not the " + example.name +
                 " example's: choose another --dir (or `larder demo --example " + has + "`)");
    }
    if (int rc = run_self({"db", "--state-dir", dir.string(), "start"}); rc != 0) {
      return die("`larder db start` failed");
    }
  }
  auto state = db::ClusterState::load(db::state_file_path(dir));
  if (!state) return die(state.error().message);

  // 2. Certificates.
  step("certificate authority, server and client certificates (+ a rogue CA)");
  const std::string certs = (dir / "certs").string();
  const std::string rogue = (dir / "rogue-ca").string();
  if (auto r = tools::ensure_demo_pki(certs, rogue, "Larder Demo CA"); !r) return die(r.error().message);
  std::cout << "  CA " << certs
            << "/ca.crt; servers larder-db, larder-compliance; clients claude-client, other-client;\n"
            << "  rogue CA " << rogue << "/ca.crt with its own claude-client\n";

  // 3. Root key.
  step("Biscuit root key (id 1)");
  auto root = ensure_root_key((dir / "root.key").string());
  if (!root) return die(root.error().message);
  std::cout << "  public key " << root->public_key().to_string() << "\n";

  // 4. Servers, each its own process: the stand-in compliance API and the recorded-response
  // model first (the compliance server's configuration names the API's URL), then both
  // `larder serve` instances.
  const bool recorded_model = !demo.model_script.empty();
  step(std::string("database server (larder-db), compliance server (larder-compliance), ") +
       (recorded_model ? "their helpers" : "the compliance API stand-in"));
  const std::vector<std::string> names = {"larder-db", "larder-compliance", "compliance-api", "fake-model"};
  for (const auto& n : names) stop_pid_file((dir / (n + ".pid")).string());
  auto file = [&](const std::string& n, const char* ext) { return (dir / (n + ext)).string(); };
  auto log_of = [&](const std::string& n) { return (dir / "logs" / (n + ".log")).string(); };
  std::vector<pid_t> children;
  std::vector<std::string> running;  // the pid files of what keeps running
  auto fail = [&](const std::string& what) {
    stop_children(children);
    return die(what);
  };
  const std::string record = (dir / "compliance-api.jsonl").string();
  auto api =
      spawn_child("larder demo compliance-api",
                  {"demo", "compliance-api", "--port", "0", "--port-file", file("compliance-api", ".port"),
                   "--record", record},
                  file("compliance-api", ".port"), file("compliance-api", ".pid"), log_of("compliance-api"));
  if (!api) return fail(api.error().message);
  children.push_back(*api);
  const std::string api_url =
      "http://127.0.0.1:" + std::to_string(read_port(file("compliance-api", ".port"))) + "/check";
  std::string model_url;
  pid_t model_pid = 0;
  if (recorded_model) {
    auto model = spawn_child("larder demo fake-model",
                             {"demo", "fake-model", "--example", example.name, "--port",
                              std::to_string(o.model_port), "--port-file", file("fake-model", ".port")},
                             file("fake-model", ".port"), file("fake-model", ".pid"), log_of("fake-model"));
    if (!model) return fail(model.error().message);
    children.push_back(*model);
    model_pid = *model;
    model_url = "http://127.0.0.1:" + std::to_string(read_port(file("fake-model", ".port")));
  }

  const std::string pub = root->public_key().to_string();
  std::ofstream(dir / "larder-db.toml") << server_toml(
      "larder-db", example.name, o.port, certs, dir.string(), pub, {"pg_query", "pg_explain", "pg_metadata"},
      "pg_query = \"sensitive-read\", pg_explain = \"neutral\", pg_metadata = \"sensitive-read\"", "");
  std::ofstream(dir / "larder-compliance.toml")
      << server_toml("larder-compliance", example.name, o.compliance_port, certs, dir.string(), pub,
                     {tools::kEgressTool}, std::string(tools::kEgressTool) + " = \"egress\"", api_url);
  int ports[2] = {0, 0};
  int admin_ports[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const std::string& n = names[i];
    fs::remove(file(n, ".admin.port"));
    auto pid = spawn_child("larder serve --config " + file(n, ".toml"),
                           {"serve", "--config", file(n, ".toml"), "--port-file", file(n, ".port"),
                            "--admin-port-file", file(n, ".admin.port"), "--pid-file", file(n, ".pid")},
                           file(n, ".port"), file(n, ".pid"), log_of(n));
    if (!pid) return fail(pid.error().message);
    children.push_back(*pid);
    running.push_back(file(n, ".pid"));
    ports[i] = read_port(file(n, ".port"));
    admin_ports[i] = read_port(file(n, ".admin.port"));
    std::cout << "  " << n << " on https://127.0.0.1:" << ports[i] << "/mcp (pid " << *pid
              << "; metrics http://127.0.0.1:" << admin_ports[i] << "/metrics)\n";
  }
  running.push_back(file("compliance-api", ".pid"));
  std::cout << "  compliance API stand-in on " << api_url << " (pid " << *api << ", records to " << record
            << ")\n";
  if (recorded_model) {
    running.push_back(file("fake-model", ".pid"));
    std::cout << "  recorded-response model on " << model_url << " (pid " << model_pid << ")\n";
  }

  // 5. Tokens and client configuration.
  tools::DemoEnvironment env;
  env.db_url = "https://127.0.0.1:" + std::to_string(ports[0]) + "/mcp";
  env.compliance_url = "https://127.0.0.1:" + std::to_string(ports[1]) + "/mcp";
  tools::use_demo_pki(env, certs, rogue);
  env.root = *root;
  env.audit_log = (dir / "audit" / "larder-db.jsonl").string();
  env.admin = state->admin();
  // What reached the compliance API during this run (the record outlives runs).
  const std::size_t already = recorded_bodies(record).size();
  env.compliance_received = [record, already] {
    auto bodies = recorded_bodies(record);
    return std::vector<std::string>(
        bodies.begin() + static_cast<std::ptrdiff_t>(std::min(already, bodies.size())), bodies.end());
  };
  tools::ServeConfig ledger_config;
  ledger_config.database_dir = dir.string();
  auto ledger_params = tools::ledger_connection(ledger_config);
  if (!ledger_params) return fail(ledger_params.error().message);
  auto ledger = std::make_shared<gate::TaintLedger>(*ledger_params, gate::TaintLedger::Options{});
  env.revoke = [ledger](const std::string& id) { return ledger->revoke(id, "revoked by larder demo"); };

  step("tokens");
  auto wanted = demo_tokens(demo, state->admin(), o.params);
  if (!wanted) return fail(wanted.error().message);
  examples::MintedTokens tokens;
  for (const auto& t : *wanted) {
    biscuit::Params params;
    for (const auto& [name, value] : t.params) params.string(name, value);
    auto minted = tools::issue_demo_token(env, t.profile, params);
    if (!minted) return fail("token " + t.name + ": " + minted.error().message);
    tokens[t.name] = *minted;
    (void)net::pki::write_file((dir / "tokens" / (t.name + ".b64")).string(), *minted + "\n", 0600);
    std::string rights;
    for (const auto& r : t.profile.rights) rights += (rights.empty() ? "" : ", ") + r;
    std::cout << "  " << t.name << ": " << t.label << "\n"
              << "      " << s.dim("rights: " + rights) << "\n";
  }
  std::cout << "  each bound to claude-client's certificate and both audiences, expiring in 30 days; in "
            << (dir / "tokens").string() << "\n";
  json mcp_config = {
      {"mcpServers",
       {{"larder-db",
         {{"url", env.db_url},
          {"tls", {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}}}}},
        {"compliance",
         {{"url", env.compliance_url},
          {"tls", {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}}}}}}}};
  (void)net::pki::write_file((dir / "mcp.json").string(), mcp_config.dump(2) + "\n", 0600);

  // 6. The scenarios.
  step("scenarios");
  int failed = 0;
  auto outcomes = demo.scenarios(env, tokens, [&](const tools::ScenarioOutcome& out) {
    std::string mark = out.expected ? s.green("PASS") : s.red("FAIL");
    std::cout << "  " << mark << "  " << s.bold(out.name) << "\n"
              << "        " << s.dim("request: ") << out.request << "\n"
              << "        " << s.dim("outcome: ") << out.outcome << "\n"
              << "        " << s.dim("lock:    ") << s.cyan(out.lock) << "\n";
    if (!out.expected) ++failed;
  });
  auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
  std::cout << "\n"
            << (failed == 0
                    ? s.green("all " + std::to_string(outcomes.size()) + " scenarios behaved as required")
                    : s.red(std::to_string(failed) + " of " + std::to_string(outcomes.size()) +
                            " scenarios did NOT behave as required"))
            << " (" << seconds << " s)\n";
  std::cout << "scenarios: " << (outcomes.size() - failed) << " passed, " << failed << " failed\n";

  if (o.once) {
    stop_children(children);
    return failed == 0 ? 0 : 1;
  }
  const std::string larder = shell_word(self_exe());
  const std::string mcp_json = shell_word((dir / "mcp.json").string());
  const std::string token_file = (dir / "tokens" / (demo.try_token + ".b64")).string();
  const std::string token_arg = shell_word("@" + token_file);
  std::string stop = "kill";
  for (const auto& f : running) stop += " $(cat " + shell_word(f) + ")";
  std::cout << "\n"
            << s.bold("The servers keep running (each its own process):") << "\n"
            << "  larder-db          " << env.db_url << "   (log " << log_of("larder-db") << ")\n"
            << "  larder-compliance  " << env.compliance_url << "   (log " << log_of("larder-compliance")
            << ")\n"
            << "  compliance API     " << api_url << "   (the egress target; what reached it: " << record
            << ")\n";
  if (recorded_model) {
    std::cout << "  recorded model     " << model_url << "   (answers the line below without an API key)\n";
  }
  std::cout << "  stop them with:    " << stop << "\n\n" << s.bold("Try them:") << "\n";
  if (api_key_available()) {
    std::cout << "  " << larder << " ask --config " << mcp_json << " --token " << token_arg << " "
              << shell_word(demo.question) << "\n";
  } else if (recorded_model) {
    std::cout << "  ANTHROPIC_API_KEY=recorded-responses " << larder
              << " ask --provider anthropic --base-url " << model_url << " --config " << mcp_json
              << " --token " << token_arg << " --show-sql " << shell_word(demo.question) << "\n"
              << "    (no ANTHROPIC_API_KEY or OPENAI_API_KEY is set: the recorded model answers this "
                 "question with "
                 "recorded replies; its SQL really runs through the four locks. With a key, drop the key and "
                 "--base-url.)\n";
  } else {
    std::cout
        << "  " << larder << " ask --config " << mcp_json << " --token " << token_arg << " --show-sql "
        << shell_word(demo.question) << "\n"
        << "    (set ANTHROPIC_API_KEY or OPENAI_API_KEY first: this example has no recorded answers)\n";
  }
  const json request = {{"jsonrpc", "2.0"},
                        {"id", 1},
                        {"method", "tools/call"},
                        {"params",
                         {{"name", "pg_query"},
                          {"arguments", {{"query", demo.try_sql}}},
                          {"_meta",
                           {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                            {"io.modelcontextprotocol/clientCapabilities", json::object()}}}}}};
  std::cout
      << "  curl --cacert " << env.ca_file << " --cert " << env.claude.cert << " --key " << env.claude.key
      << " \\\n"
      << "       -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n"
      << "       -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: pg_query' "
         "\\\n"
      << "       -H \"Authorization: Bearer $(cat " << token_file << ")\" \\\n"
      << "       -d " << shell_word(request.dump()) << " " << env.db_url << "\n";
  // An MCP host reaches both servers through `larder connect`, which holds the key and token.
  auto launch = connect::connect_command(self_exe(), (dir / "mcp.json").string(), token_file);
  std::string snippet = connect::host_snippet(connect::Host::kClaudeDesktop, launch), indented;
  for (std::size_t at = 0; at < snippet.size();) {
    const auto nl = snippet.find('\n', at);
    indented += "    " + snippet.substr(at, nl - at + 1);
    at = nl == std::string::npos ? snippet.size() : nl + 1;
  }
  std::cout << "  Claude Desktop (claude_desktop_config.json; for claude-code, cursor or vscode: " << larder
            << " connect --print-config HOST --config " << mcp_json << " --token " << token_arg << "):\n"
            << indented << "  MCP Inspector: npx @modelcontextprotocol/inspector --cli " << larder
            << " -- connect --config " << mcp_json << " --token " << token_arg << " --method tools/list\n";
  return failed == 0 ? 0 : 1;
}

void define_demo(CLI::App& app, Action& selected) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run the four-lock demo: PostgreSQL, certificates, tokens, both servers, every scenario");
  std::string names;
  for (const auto& e : examples::all()) names += (names.empty() ? "" : ", ") + e.name;
  demo->add_option("--example", o->example, "Example database: " + names)->capture_default_str();
  demo->add_option(
      "--dir", o->dir,
      "State directory (default: .larder for the healthcare example, .larder-<example> for another)");
  demo->add_flag("--once", o->once, "Stop the servers when the scenarios are done");
  demo->add_flag("--no-color", o->no_color, "Plain output even on a terminal");
  demo->add_option("--rows", o->rows, "Rows of synthetic data on first run (default: the example's)");
  demo->add_option(
      "--param", o->params,
      "NAME=VALUE: the value of {NAME} in the demo's tokens instead of the example's (repeatable)");
  demo->add_option("--port", o->port, "Port of the database server (larder-db); default: a free one");
  demo->add_option("--compliance-port", o->compliance_port,
                   "Port of the compliance server (larder-compliance); default: a free one");
  demo->add_option("--model-port", o->model_port, "Port of the recorded-response model; default: a free one");
  demo->require_subcommand(0, 1);

  // The helpers the demo starts beside the servers (hidden: the demo runs them).
  auto api = std::make_shared<HelperOptions>();
  CLI::App* api_cmd =
      demo->add_subcommand("compliance-api", "Stand-in for the external compliance API (run by the demo)");
  api_cmd->group("");
  api_cmd->add_option("--port", api->port, "Port on 127.0.0.1 (0: a free one)");
  api_cmd->add_option("--port-file", api->port_file, "Write the listening port here");
  api_cmd->add_option("--record", api->record, "Append each request body here (JSON lines)")->required();
  api_cmd->callback([&selected, api] { selected = [api] { return run_compliance_api(*api); }; });

  auto model = std::make_shared<HelperOptions>();
  CLI::App* model_cmd =
      demo->add_subcommand("fake-model", "Recorded-response model for `larder ask` (run by the demo)");
  model_cmd->group("");
  model_cmd->add_option("--port", model->port, "Port on 127.0.0.1 (0: a free one)");
  model_cmd->add_option("--port-file", model->port_file, "Write the listening port here");
  model_cmd->add_option("--example", model->example, "Whose recorded answers")->capture_default_str();
  model_cmd->callback([&selected, model] { selected = [model] { return run_fake_model(*model); }; });

  demo->callback([&selected, o, demo] {
    if (!demo->get_subcommands().empty()) return;  // a helper was selected
    selected = [o] { return run_demo(*o); };
  });
}

}  // namespace

LARDER_REGISTER_COMMAND("demo", 70, define_demo);

}  // namespace larder::cli
