// Shared fixture for the db integration tests: one throwaway cluster per test binary.
#pragma once

#include "db/database.h"
#include "examples/healthcare/generate.h"
#include "support/pg_cluster.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace larder::test {

inline PgCluster*& shared_cluster() {
  static PgCluster* cluster = nullptr;
  return cluster;
}

class DbEnvironment : public ::testing::Environment {
 public:
  explicit DbEnvironment(std::size_t rows) : rows_(rows) {}
  void SetUp() override {
    PgCluster::Options o;
    o.seed_rows = rows_;
    shared_cluster() = new PgCluster(o);
  }
  void TearDown() override {
    delete shared_cluster();
    shared_cluster() = nullptr;
  }

 private:
  std::size_t rows_;
};

// Runs SQL as the superuser on the healthcare database; returns the first value of row 0.
inline std::string admin_scalar(const std::string& sql, const std::vector<db::Param>& params = {}) {
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = shared_cluster()->state().admin().connect(deadline);
  if (!conn) throw std::runtime_error(conn.error().message);
  auto r = db::exec_params(conn->get(), sql, params, deadline);
  if (!r) throw std::runtime_error(r.error().message + " in: " + sql);
  if (PQntuples(r->get()) == 0 || PQgetisnull(r->get(), 0, 0)) return "";
  return PQgetvalue(r->get(), 0, 0);
}

// The healthcare policy's facts: patient_name(name) selects a patient's own admissions;
// role(r) with r in {clinician, doctor, nurse} plus hospital(h) selects a hospital's.
inline db::RequestContext patient_ctx(std::vector<std::string> names) {
  db::RequestContext c;
  for (auto& n : names) c.add("patient_name", std::move(n));
  c.guard_enabled = false;
  return c;
}

inline db::RequestContext clinician_ctx(std::vector<std::string> roles, std::vector<std::string> hospitals) {
  db::RequestContext c;
  for (auto& r : roles) c.add("role", std::move(r));
  for (auto& h : hospitals) c.add("hospital", std::move(h));
  c.guard_enabled = false;
  return c;
}

}  // namespace larder::test
