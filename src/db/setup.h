// Applies Larder's roles, schema, context mechanism and RLS policies (data/sql) to a server,
// idempotently, as an administrator (a superuser). Creates the database when missing.
#pragma once

#include "base/result.h"
#include "db/connection.h"

#include <optional>
#include <string>

namespace larder::db {

struct SetupOptions {
  std::string database = "healthcare";
  // New passwords for the login roles; nullopt leaves a role's password unchanged.
  std::optional<std::string> query_password;
  std::optional<std::string> writer_password;
};

// `admin` may name any database on the server (e.g. postgres); setup connects to the
// maintenance database for the cluster-wide parts and to `options.database` for the rest.
Result<void> apply_setup(const ConnParams& admin, const SetupOptions& options);

}  // namespace larder::db
