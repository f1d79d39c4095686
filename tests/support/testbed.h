// Testbed: a whole Larder installation in one process, for e2e tests and benchmarks — a
// throwaway PostgreSQL (PgCluster) with the taint ledger, a PKI (our CA with server
// certificates larder-db and larder-compliance and client certificates claude-client and
// other-client, plus a rogue CA's claude-client), a Biscuit root key, a loopback stand-in
// for the external compliance API that records what reaches it, and the two servers as
// `larder serve` assembles them (tools::LarderService). Failures throw std::runtime_error.
#pragma once

#include "biscuit/crypto/keys.h"
#include "db/connection.h"
#include "net/server.h"
#include "support/pg_bouncer.h"
#include "support/pg_cluster.h"
#include "support/pg_standby.h"
#include "tools/demo_scenarios.h"
#include "tools/serve_config.h"
#include "tools/service.h"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace larder::test {

class Testbed {
 public:
  struct Options {
    std::size_t rows = 3000;         // seeded health_records rows
    std::size_t worker_threads = 4;  // per server
    // How the servers reach PostgreSQL (docs/deployment.md): directly; through PgBouncer in
    // transaction mode (query, context key and ledger); with a streaming hot standby serving
    // the queries (the ledger on the primary); or both (every role through PgBouncer).
    enum class Path { direct, pgbouncer, replica, replica_pgbouncer };
    Path path = Path::direct;
    std::chrono::milliseconds max_replica_lag{1000};
  };
  static const char* path_name(Options::Path path);
  explicit Testbed(Options options);  // cluster, ledger, PKI, receiver; no server yet
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // A server for `audience` with `tools` (name → data-flow class): its certificate, our CA
  // and CRL, the root key (id 1), the cluster's roles and the ledger, an audit log here.
  tools::ServeConfig config(const std::string& audience, const std::map<std::string, gate::DataFlow>& tools,
                            const std::string& compliance_api = "") const;
  tools::ServeConfig db_config() const;          // larder-db: pg_query, pg_metadata (sensitive), pg_explain
  tools::ServeConfig compliance_config() const;  // larder-compliance: hipaa_compliance_check → the receiver
  static std::unique_ptr<tools::LarderService> start(const tools::ServeConfig& config);  // throws

  // Starts (or restarts) the database server and the compliance server.
  void start_servers();
  std::unique_ptr<tools::LarderService> db, compliance;

  // What the demo scenarios and clients need: the servers' URLs, certificates, the root key,
  // the receiver's log and the revocation list.
  tools::DemoEnvironment environment() const;
  std::string db_url() const;
  std::string compliance_url() const;

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& certs() const { return certs_; }  // our CA's store (ca.crt, crl.pem, client/, server/)
  const biscuit::KeyPair& root() const { return root_; }
  PgCluster& cluster() { return *cluster_; }
  PgStandby* standby() { return standby_.get(); }  // null unless the path has a replica
  PgBouncer* bouncer() { return bouncer_.get(); }  // null unless the path has PgBouncer
  const db::ConnParams& ledger() const { return ledger_; }
  std::vector<std::string> received() const;  // request bodies the compliance API got
  std::string busiest_hospital() const;       // the hospital with the most records

 private:
  Options options_;
  std::filesystem::path dir_;
  std::string certs_, rogue_;
  biscuit::KeyPair root_ = biscuit::KeyPair::generate();
  std::unique_ptr<PgCluster> cluster_;
  std::unique_ptr<PgStandby> standby_;
  std::unique_ptr<PgBouncer> bouncer_;
  db::ConnParams ledger_;
  std::unique_ptr<net::Server> receiver_;
  mutable std::mutex mu_;
  std::vector<std::string> received_;
};

}  // namespace larder::test
