// The four locks end to end, in-process: a real PostgreSQL (throwaway cluster), a real PKI,
// the database server and the compliance server (two LarderService instances sharing the
// taint ledger), our MCP client over mTLS — and every scenario of the demo.
#include "gate/taint_ledger.h"
#include "net/pki.h"
#include "net/server.h"
#include "support/pg_cluster.h"
#include "tools/demo_scenarios.h"
#include "tools/service.h"
#include "mcp/client.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>

namespace larder {
namespace {

namespace fs = std::filesystem;

class FourLocks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("larder-e2e-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cluster_ = std::make_unique<test::PgCluster>(test::PgCluster::Options{3000});
    auto admin = db::ConnParams::parse(cluster_->admin_url());
    ASSERT_TRUE(admin.ok());
    ASSERT_TRUE(gate::apply_gate_setup(*admin, std::string("e2e-ledger")).ok());
    ledger_url_ = *admin;
    ledger_url_.set("user", gate::kGateRole).set("password", "e2e-ledger");

    certs_ = (dir_ / "certs").string();
    net::pki::CertStore store(certs_);
    ASSERT_TRUE(store.init("E2E CA").ok());
    for (const char* server : {"larder-db", "larder-compliance"}) {
      net::pki::CertSpec spec;
      spec.kind = net::pki::CertKind::kServer;
      spec.common_name = server;
      spec.sans = {"IP:127.0.0.1", "DNS:localhost"};
      ASSERT_TRUE(store.issue(spec, server).ok());
    }
    for (const char* client : {"claude-client", "other-client"}) {
      net::pki::CertSpec spec;
      spec.common_name = client;
      ASSERT_TRUE(store.issue(spec, client).ok());
    }
    ASSERT_TRUE(store.write_crl().ok());
    rogue_ = (dir_ / "rogue").string();
    net::pki::CertStore rogue(rogue_);
    ASSERT_TRUE(rogue.init("Rogue CA").ok());
    net::pki::CertSpec spec;
    spec.common_name = "claude-client";
    ASSERT_TRUE(rogue.issue(spec, "claude-client").ok());

    // The external compliance API, standing in on loopback.
    net::ServerConfig rc;
    rc.plain_http = true;
    auto receiver = net::Server::create(rc, [this](const net::HttpRequest& req, std::shared_ptr<net::Responder> out) {
      {
        std::lock_guard lock(mu_);
        received_.push_back(req.body);
      }
      out->respond({200, {{"Content-Type", "application/json"}}, "{}"});
    });
    ASSERT_TRUE(receiver.ok());
    receiver_ = std::move(*receiver);
    ASSERT_TRUE(receiver_->start().ok());

    db_ = start("larder-db", {"pg_query", "pg_explain", "pg_metadata"},
                {{"pg_query", gate::DataFlow::kSensitiveRead}, {"pg_metadata", gate::DataFlow::kSensitiveRead},
                 {"pg_explain", gate::DataFlow::kNeutral}},
                "");
    compliance_ = start("larder-compliance", {"hipaa_compliance_check"},
                        {{"hipaa_compliance_check", gate::DataFlow::kEgress}},
                        "http://127.0.0.1:" + std::to_string(receiver_->port()) + "/check");
    ASSERT_TRUE(db_ && compliance_);
  }

  void TearDown() override {
    db_.reset();
    compliance_.reset();
    if (receiver_) receiver_->stop();
    cluster_.reset();
    fs::remove_all(dir_);
  }

  gate::ServeConfig config(const std::string& audience, std::vector<std::string> tools,
                           std::map<std::string, gate::DataFlow> classes, const std::string& api) {
    gate::ServeConfig c;
    c.host = "127.0.0.1";
    c.port = 0;
    c.audience = audience;
    c.tls_cert = certs_ + "/server/" + audience + ".crt";
    c.tls_key = certs_ + "/server/" + audience + ".key";
    c.tls_client_ca = certs_ + "/ca.crt";
    c.tls_crl = certs_ + "/crl.pem";
    c.root_keys = {{1, root_.public_key().to_string()}};
    c.database_mode = "url";
    c.database_url = cluster_->query_url();
    c.database_writer_url = cluster_->writer_url();
    c.database_ledger_url = ledger_url_.to_uri();
    c.tools = std::move(tools);
    c.tool_classes = std::move(classes);
    c.audit_path = (dir_ / ("audit-" + audience + ".jsonl")).string();
    c.compliance_api_url = api;
    c.worker_threads = 4;
    return c;
  }

  std::unique_ptr<tools::LarderService> start(const std::string& audience, std::vector<std::string> tools,
                                              std::map<std::string, gate::DataFlow> classes, const std::string& api) {
    auto service = tools::LarderService::start(config(audience, std::move(tools), std::move(classes), api));
    EXPECT_TRUE(service.ok()) << (service.ok() ? "" : service.error().message);
    return service.ok() ? std::move(*service) : nullptr;
  }

  tools::DemoEnvironment environment() {
    tools::DemoEnvironment env;
    env.db_url = "https://127.0.0.1:" + std::to_string(db_->port()) + "/mcp";
    env.compliance_url = "https://127.0.0.1:" + std::to_string(compliance_->port()) + "/mcp";
    env.ca_file = certs_ + "/ca.crt";
    env.claude = {certs_ + "/client/claude-client.crt", certs_ + "/client/claude-client.key"};
    env.other = {certs_ + "/client/other-client.crt", certs_ + "/client/other-client.key"};
    env.rogue = {rogue_ + "/client/claude-client.crt", rogue_ + "/client/claude-client.key"};
    env.root = root_.private_key();
    env.audit_log = (dir_ / "audit-larder-db.jsonl").string();
    env.compliance_received = [this] {
      std::lock_guard lock(mu_);
      return received_;
    };
    auto ledger = std::make_shared<gate::TaintLedger>(ledger_url_, gate::TaintLedger::Options{});
    env.revoke = [ledger](const std::string& id) { return ledger->revoke(id, "e2e"); };
    return env;
  }

  std::string busiest_hospital() {
    auto admin = db::ConnParams::parse(cluster_->admin_url());
    auto conn = admin->connect(db::Clock::now() + std::chrono::seconds(5));
    auto r = db::exec_params(conn->get(), "SELECT \"Hospital\" FROM health_records GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
                             {}, db::Clock::now() + std::chrono::seconds(5));
    return PQgetvalue(r->get(), 0, 0);
  }

  fs::path dir_;
  std::string certs_, rogue_;
  biscuit::KeyPair root_ = biscuit::KeyPair::generate();
  std::unique_ptr<test::PgCluster> cluster_;
  db::ConnParams ledger_url_;
  std::unique_ptr<net::Server> receiver_;
  std::mutex mu_;
  std::vector<std::string> received_;
  std::unique_ptr<tools::LarderService> db_, compliance_;
};

TEST_F(FourLocks, EveryDemoScenarioBehavesAsRequired) {
  auto env = environment();
  auto tokens = tools::mint_demo_tokens(env, busiest_hospital());
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  auto outcomes = tools::run_demo_scenarios(env, *tokens, nullptr);
  ASSERT_GE(outcomes.size(), 20u);
  for (const auto& o : outcomes) {
    EXPECT_TRUE(o.expected) << o.name << "\n  request: " << o.request << "\n  outcome: " << o.outcome
                            << "\n  lock: " << o.lock;
  }
}

TEST_F(FourLocks, TaintSurvivesARestartOfTheEgressServer) {
  auto env = environment();
  auto tokens = tools::mint_demo_tokens(env, busiest_hospital());
  ASSERT_TRUE(tokens.ok());
  auto outcomes = tools::run_demo_scenarios(env, *tokens, nullptr);  // taints Erin's lineage
  compliance_.reset();
  compliance_ = start("larder-compliance", {"hipaa_compliance_check"},
                      {{"hipaa_compliance_check", gate::DataFlow::kEgress}}, "");
  ASSERT_TRUE(compliance_);
  net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  auto client = mcp::Client::connect_http("https://127.0.0.1:" + std::to_string(compliance_->port()) + "/mcp", tls);
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto r = (*client)->call_tool("hipaa_compliance_check", {{"text", "hello"}, {"biscuit_token", tokens->erin}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->value("isError", false));
  EXPECT_EQ((*r)["_meta"]["larder/decision"]["lock"], "taint");
}

}  // namespace
}  // namespace larder
