// `larder db setup`: a database for Larder on a server where we are the administrator (the
// embedded cluster, a test or a fresh server): creates the database when missing, closes it
// to PUBLIC, runs an example's schema, and applies the policy file (policy/apply.h).
// On an existing database of your own, use `larder policy apply` instead: it changes nothing
// but what the policy file declares.
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "policy/apply.h"
#include "policy/policy.h"

#include <optional>
#include <string>

namespace larder::policy {

struct SetupOptions {
  std::string database;
  std::string schema_sql;  // run as the administrator before apply (an example's schema.sql); may be empty
  // New passwords for the login roles; nullopt leaves a role's password unchanged.
  std::optional<std::string> query_password;
  std::optional<std::string> writer_password;
};

// `admin` may name any database on the server (e.g. postgres); setup connects to the
// maintenance database to create `options.database`, then to it for the rest.
Result<Plan> setup_database(const db::ConnParams& admin, const Policy& policy, const SetupOptions& options);

}  // namespace larder::policy
