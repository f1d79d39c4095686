// Attacks on the database outage: PostgreSQL stops while a client with a valid certificate
// and token keeps calling. Every call must be refused as lock `database` with one fixed
// reason — the revocation-list and taint-ledger lookups included — without telling the client
// where the database lives (host, port, database, user, libpq's message); nothing proceeds
// without its revocation and taint checks, nothing is tainted by a refusal, and the server
// says so in its log once when the outage starts and once when it ends.
//
// The outage gets its own installation (a second Testbed with its own cluster), so stopping
// PostgreSQL here does not disturb the shared one the other attacks use.
#include "attack_env.h"
#include "support/wait.h"

#include "mcp/jsonrpc.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

namespace larder::attack {
namespace {

constexpr const char* kReason = "database unavailable, retry later";

// Every line the process logs while the test runs.
class CapturedLog : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard lock(this->mutex_);
    return lines_;
  }
  std::size_t count(const std::string& needle) {
    auto all = lines();
    return static_cast<std::size_t>(std::count_if(
        all.begin(), all.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; }));
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    lines_.emplace_back(std::string(spdlog::level::to_string_view(msg.level).data()) + " " +
                        std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

struct Call {
  std::string url, tool;
  nlohmann::json arguments;
};

}  // namespace

TEST(OutageAttack, ADatabaseOutageIsRefusedAsTheDatabaseLockWithoutItsAddressAndLoggedOnce) {
  test::Testbed own{test::Testbed::Options{200, 2}};
  own.start_servers();
  const tools::DemoEnvironment e = own.environment();
  const net::TlsClientConfig tls{e.ca_file, e.claude.cert, e.claude.key, "", false};
  const db::ClusterState& where = own.cluster().state();

  auto log = std::make_shared<CapturedLog>();
  auto logger = spdlog::default_logger();
  logger->sinks().push_back(log);
  const auto old_level = logger->level();
  logger->set_level(spdlog::level::info);
  struct Restore {
    std::shared_ptr<spdlog::logger> logger;
    std::shared_ptr<CapturedLog> sink;
    spdlog::level::level_enum level;
    ~Restore() {
      auto& sinks = logger->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), sink), sinks.end());
      logger->set_level(level);
    }
  } restore{logger, log, old_level};

  // A token that has read (its lineage is tainted and known to the server), and one that
  // will only ever call during the outage.
  const std::string reader = fresh_patient_token_in(e, e.claude);
  const std::string quiet = fresh_patient_token_in(e, e.claude);
  auto db_reader = connect_with(e.db_url, reader, tls);
  auto db_quiet = connect_with(e.db_url, quiet, tls);
  auto egress_quiet = connect_with(e.compliance_url, quiet, tls);
  ASSERT_EQ(refused_lock(call(*db_reader, "pg_query", {{"query", "SELECT count(*) FROM health_records"}})),
            "");

  // A fast shutdown: clients are cut off at once, and nothing committed is lost (the test
  // cluster runs without fsync; an immediate stop could lose the ledger role's password).
  own.cluster().stop(/*immediate=*/false);

  const std::vector<std::string> forbidden = {where.host,
                                              std::to_string(where.port),
                                              where.database,
                                              where.admin_user,
                                              "patients",
                                              "larder_gate",
                                              "larder_context_writer",
                                              "libpq",
                                              "connection to server",
                                              "Connection refused",
                                              "revocation list",
                                              "taint ledger"};
  auto expect_outage_refusal = [&](mcp::Client& client, const std::string& tool,
                                   const nlohmann::json& arguments) {
    auto r = call(client, tool, arguments);
    const std::string all = r.dump();
    EXPECT_EQ(refused_lock(r), "database") << tool << ": " << all;
    EXPECT_EQ(r["_meta"]["larder/decision"].value("reason", ""), kReason) << tool << ": " << all;
    EXPECT_NE(text_of(r).find(kReason), std::string::npos) << tool << ": " << all;
    for (const auto& word : forbidden) {
      EXPECT_EQ(all.find(word), std::string::npos) << tool << " tells the client '" << word << "': " << all;
    }
  };
  // Every tool, twice each ("every time"): the reader's lineage is cached as tainted and its
  // revocation answer may be too, so its calls reach the database path; the quiet token's
  // need the revocation list and the taint ledger.
  for (int round = 0; round < 2; ++round) {
    expect_outage_refusal(*db_reader, "pg_query", {{"query", "SELECT count(*) FROM health_records"}});
    expect_outage_refusal(*db_quiet, "pg_query", {{"query", "SELECT count(*) FROM health_records"}});
    expect_outage_refusal(*db_quiet, "pg_explain", {{"query", "SELECT count(*) FROM health_records"}});
    expect_outage_refusal(*db_quiet, "pg_metadata", {{"query", "SELECT \"Hospital\" FROM health_records"}});
    expect_outage_refusal(*egress_quiet, "hipaa_compliance_check", {{"text", "nothing sensitive"}});
    // A resource read and a prompt: JSON-RPC error -32003 with the decision as data.
    for (auto r : {db_quiet->read_resource("pgmcp://healthcare/schemas/public/tables/health_records/sample"),
                   db_quiet->get_prompt("generate_sql", {{"nl_query", "admissions per hospital"}})}) {
      ASSERT_FALSE(r.ok()) << r->dump();
      EXPECT_EQ(r.error().code, "mcp.rpc." + std::to_string(mcp::error_code::kRefused)) << r.error().message;
      auto data = nlohmann::json::parse(r.error().detail.empty() ? "null" : r.error().detail, nullptr, false);
      ASSERT_TRUE(data.is_object()) << r.error().message;
      EXPECT_EQ(data.value("lock", ""), "database") << data.dump();
      EXPECT_EQ(data.value("reason", ""), kReason) << data.dump();
      for (const auto& word : forbidden) {
        EXPECT_EQ((r.error().message + r.error().detail).find(word), std::string::npos)
            << "a refused read tells the client '" << word << "': " << r.error().message << " "
            << r.error().detail;
      }
    }
  }
  EXPECT_TRUE(own.received().empty()) << "an egress call proceeded without its taint check";
  EXPECT_EQ(log->count("larder-db: PostgreSQL is unreachable"), 1u);
  EXPECT_EQ(log->count("larder-compliance: PostgreSQL is unreachable"), 1u);
  EXPECT_EQ(log->count("PostgreSQL is reachable again"), 0u);

  const int port = where.port;
  own.cluster().start();
  ASSERT_EQ(own.cluster().port(), port)
      << "the cluster came back on another port: the servers cannot follow it";
  ASSERT_EQ(own.cluster().admin_scalar("SELECT 1"), "1");  // the database is back
  // Until the server has seen the database again (and caught its audit anchor up), a call may
  // still be refused for the outage; nothing else may refuse it.
  auto until_recovered = [](const std::function<nlohmann::json()>& attempt) {
    nlohmann::json r;
    test::wait_until(
        [&] {
          r = attempt();
          return !(refused_lock(r) == "database" ||
                   text_of(r).find("audit log unavailable") != std::string::npos);
        },
        std::chrono::seconds(30), std::chrono::milliseconds(100));
    return r;
  };
  // The quiet token never read: its refusals tainted nothing, so egress accepts it.
  auto egress = until_recovered([&] {
    return call(*egress_quiet, "hipaa_compliance_check", {{"text", "nothing sensitive"}});
  });
  EXPECT_EQ(refused_lock(egress), "") << egress.dump();
  EXPECT_EQ(own.received().size(), 1u);
  auto read = until_recovered([&] {
    return call(*db_quiet, "pg_query", {{"query", "SELECT count(*) FROM health_records"}});
  });
  EXPECT_EQ(refused_lock(read), "") << read.dump();
  EXPECT_EQ(refused_lock(call(*db_reader, "pg_explain", {{"query", "SELECT 1"}})), "");

  EXPECT_EQ(log->count("larder-db: PostgreSQL is unreachable"), 1u);
  EXPECT_EQ(log->count("larder-compliance: PostgreSQL is unreachable"), 1u);
  EXPECT_EQ(log->count("larder-db: PostgreSQL is reachable again"), 1u);
  EXPECT_EQ(log->count("larder-compliance: PostgreSQL is reachable again"), 1u);
  for (const auto& line : log->lines()) {
    if (line.find("PostgreSQL is unreachable") != std::string::npos) {
      EXPECT_EQ(line.rfind("warning ", 0), 0u) << line;
      EXPECT_NE(line.find(std::to_string(where.port)), std::string::npos)
          << "the operator needs libpq's details: " << line;
    }
    if (line.find("PostgreSQL is reachable again") != std::string::npos) {
      EXPECT_EQ(line.rfind("info ", 0), 0u) << line;
    }
  }
}

}  // namespace larder::attack
