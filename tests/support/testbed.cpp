#include "support/testbed.h"

#include "gate/taint_ledger.h"

#include <unistd.h>

#include <stdexcept>

namespace larder::test {

namespace fs = std::filesystem;

namespace {

template <typename T>
void must(const Result<T>& r, const std::string& what) {
  if (!r) throw std::runtime_error("Testbed: " + what + ": " + r.error().message);
}

}  // namespace

Testbed::Testbed(Options options) : options_(options) {
  dir_ = fs::temp_directory_path() / ("larder-testbed-" + std::to_string(::getpid()) + "-" +
                                      std::to_string(reinterpret_cast<uintptr_t>(this)));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  cluster_ = std::make_unique<PgCluster>(PgCluster::Options{options.rows});

  auto admin = db::ConnParams::parse(cluster_->admin_url());
  if (!admin) throw std::runtime_error("Testbed: admin URL: " + admin.error().message);
  auto password = db::random_hex(16);
  if (!password) throw std::runtime_error("Testbed: " + password.error().message);
  must(gate::apply_gate_setup(*admin, *password), "taint ledger setup");
  ledger_ = *admin;
  ledger_.set("user", gate::kGateRole).set("password", *password);
  using Path = Options::Path;
  if (options.path == Path::replica || options.path == Path::replica_pgbouncer) {
    standby_ = std::make_unique<PgStandby>(*cluster_);
    if (!standby_->wait_caught_up()) throw std::runtime_error("Testbed: the standby did not catch up");
  }
  if (options.path == Path::pgbouncer || options.path == Path::replica_pgbouncer) {
    PgBouncer::Options bo;
    bo.extra_users = {{gate::kGateRole, *password}};
    bouncer_ = std::make_unique<PgBouncer>(*cluster_, standby_.get(), bo);
  }

  certs_ = (dir_ / "certs").string();
  rogue_ = (dir_ / "rogue").string();
  must(tools::ensure_demo_pki(certs_, rogue_, "Testbed CA"), "certificates");

  // The external compliance API, standing in on loopback: records whatever reaches it.
  net::ServerConfig rc;
  rc.plain_http = true;
  auto receiver =
      net::Server::create(rc, [this](const net::HttpRequest& req, std::shared_ptr<net::Responder> out) {
        {
          std::lock_guard lock(mu_);
          received_.push_back(req.body);
        }
        out->respond({200, {{"Content-Type", "application/json"}}, R"({"compliant":true})"});
      });
  if (!receiver) throw std::runtime_error("Testbed: receiver: " + receiver.error().message);
  receiver_ = std::move(*receiver);
  must(receiver_->start(), "receiver start");
}

const char* Testbed::path_name(Options::Path path) {
  switch (path) {
    case Options::Path::direct:
      return "direct";
    case Options::Path::pgbouncer:
      return "pgbouncer";
    case Options::Path::replica:
      return "replica";
    case Options::Path::replica_pgbouncer:
      return "replica_pgbouncer";
  }
  return "?";
}

Testbed::~Testbed() {
  db.reset();
  compliance.reset();
  if (receiver_) receiver_->stop();
  bouncer_.reset();
  standby_.reset();
  cluster_.reset();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

tools::ServeConfig Testbed::config(const std::string& audience,
                                   const std::map<std::string, gate::DataFlow>& tools,
                                   const std::string& compliance_api) const {
  tools::ServeConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.gate.audience = audience;
  c.tls.cert_file = certs_ + "/server/" + audience + ".crt";
  c.tls.key_file = certs_ + "/server/" + audience + ".key";
  c.tls.client_ca_file = certs_ + "/ca.crt";
  c.tls.crl_file = certs_ + "/crl.pem";
  c.gate.root_keys = {{1, root_.public_key().to_string()}};
  c.database_mode = "url";
  c.database_url = cluster_->query_url();
  c.database_writer_url = cluster_->writer_url();
  c.database_ledger_url = ledger_.to_uri();
  if (standby_) {
    c.database_replica_urls = {standby_->query_url()};
    c.database.max_replica_lag = options_.max_replica_lag;
  }
  if (bouncer_) {
    c.database.transaction_pooler = true;
    c.database_url = bouncer_->url_for(c.database_url);
    c.database_writer_url = bouncer_->url_for(c.database_writer_url);
    c.database_ledger_url = bouncer_->url_for(c.database_ledger_url);
    for (auto& r : c.database_replica_urls) r = bouncer_->url_for(r);
  }
  for (const auto& [name, flow] : tools) c.tools.push_back(name);
  c.tool_classes = tools;
  c.audit.path = (dir_ / ("audit-" + audience + ".jsonl")).string();
  c.compliance.api_url = compliance_api;
  c.limits.worker_threads = options_.worker_threads;
  return c;
}

tools::ServeConfig Testbed::db_config() const {
  return config("larder-db", {{"pg_query", gate::DataFlow::kSensitiveRead},
                              {"pg_metadata", gate::DataFlow::kSensitiveRead},
                              {"pg_explain", gate::DataFlow::kNeutral}});
}

tools::ServeConfig Testbed::compliance_config() const {
  return config("larder-compliance", {{"hipaa_compliance_check", gate::DataFlow::kEgress}},
                "http://127.0.0.1:" + std::to_string(receiver_->port()) + "/check");
}

std::unique_ptr<tools::LarderService> Testbed::start(const tools::ServeConfig& config) {
  auto service = tools::LarderService::start(config);
  if (!service) throw std::runtime_error("Testbed: " + config.gate.audience + ": " + service.error().message);
  return std::move(*service);
}

void Testbed::start_servers() {
  db.reset();
  compliance.reset();
  db = start(db_config());
  compliance = start(compliance_config());
}

std::string Testbed::db_url() const {
  return db ? "https://127.0.0.1:" + std::to_string(db->port()) + "/mcp" : std::string();
}

std::string Testbed::compliance_url() const {
  return compliance ? "https://127.0.0.1:" + std::to_string(compliance->port()) + "/mcp" : std::string();
}

tools::DemoEnvironment Testbed::environment() const {
  tools::DemoEnvironment env;
  env.db_url = db_url();
  env.compliance_url = compliance_url();
  tools::use_demo_pki(env, certs_, rogue_);
  env.root = root_.private_key();
  env.audit_log = (dir_ / "audit-larder-db.jsonl").string();
  env.compliance_received = [this] { return received(); };
  auto ledger = std::make_shared<gate::TaintLedger>(ledger_, gate::TaintLedger::Options{});
  env.revoke = [ledger](const std::string& id) { return ledger->revoke(id, "testbed"); };
  return env;
}

std::vector<std::string> Testbed::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

std::string Testbed::busiest_hospital() const {
  return cluster_->admin_scalar(
      R"(SELECT "Hospital" FROM health_records GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)");
}

}  // namespace larder::test
