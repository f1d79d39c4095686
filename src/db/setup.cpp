#include "db/setup.h"

#include "db/sql_assets.h"

namespace larder::db {

namespace {

constexpr auto kSetupTimeout = std::chrono::seconds(120);

Result<void> set_password(PGconn* conn, const std::string& role, const std::string& password,
                          Clock::time_point deadline) {
  // The verifier is computed client side (the clear password never reaches the server) and
  // quoted by the server's format(%L) — no value is concatenated into SQL here.
  char* verifier = PQencryptPasswordConn(conn, password.c_str(), role.c_str(), "scram-sha-256");
  if (verifier == nullptr) return error_from_connection(conn, "encrypting a role password");
  std::string v(verifier);
  PQfreemem(verifier);
  auto r = exec_params(conn,
                       "SELECT pg_catalog.set_config('larder.setup_role', $1, true), "
                       "pg_catalog.set_config('larder.setup_verifier', $2, true)",
                       {role, v}, deadline);
  if (!r) return r.error();
  return exec_script(conn,
                     "DO $pw$ BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', "
                     "pg_catalog.current_setting('larder.setup_role'), "
                     "pg_catalog.current_setting('larder.setup_verifier')); END $pw$",
                     deadline);
}

Result<void> in_transaction(PGconn* conn, Clock::time_point deadline, auto&& body) {
  if (auto r = exec_script(conn, "BEGIN", deadline); !r) return r;
  auto r = body();
  if (!r) {
    (void)exec_script(conn, "ROLLBACK", deadline);
    return r;
  }
  return exec_script(conn, "COMMIT", deadline);
}

}  // namespace

Result<void> apply_setup(const ConnParams& admin, const SetupOptions& options) {
  auto deadline = Clock::now() + kSetupTimeout;
  if (options.database.empty()) return make_error("db.config", "empty database name");

  auto maintenance = admin;
  if (!maintenance.get("dbname") || *maintenance.get("dbname") == options.database)
    maintenance.set("dbname", "postgres");
  auto conn = maintenance.connect(deadline);
  if (!conn) return conn.error();

  auto su = exec_params(conn->get(), "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
                        {}, deadline);
  if (!su) return su.error();
  if (PQntuples(su->get()) != 1 || std::string(PQgetvalue(su->get(), 0, 0)) != "t")
    return make_error("db.setup", "setup needs a superuser admin connection (" + admin.describe() + ")");

  const auto& assets = setup_sql_assets();
  auto r = in_transaction(conn->get(), deadline, [&]() -> Result<void> {
    for (const auto& a : assets) {
      if (a.name.rfind("01_", 0) != 0) continue;
      if (auto e = exec_script(conn->get(), a.sql, deadline); !e)
        return make_error("db.setup", std::string(a.name) + ": " + e.error().message);
    }
    if (options.query_password)
      if (auto e = set_password(conn->get(), "patients", *options.query_password, deadline); !e) return e;
    if (options.writer_password)
      if (auto e = set_password(conn->get(), "larder_context_writer", *options.writer_password, deadline); !e)
        return e;
    return {};
  });
  if (!r) return r;

  auto exists = exec_params(conn->get(), "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
                            {options.database}, deadline);
  if (!exists) return exists.error();
  if (PQntuples(exists->get()) == 0) {
    // CREATE DATABASE takes an identifier, not a parameter: quote it with libpq.
    char* ident = PQescapeIdentifier(conn->get(), options.database.c_str(), options.database.size());
    if (ident == nullptr) return error_from_connection(conn->get(), "quoting the database name");
    std::string sql = std::string("CREATE DATABASE ") + ident + " OWNER larder_owner ENCODING 'UTF8' TEMPLATE template0";
    PQfreemem(ident);
    if (auto e = exec_script(conn->get(), sql, deadline); !e) return e;
  }
  conn->reset();

  auto target = admin;
  target.set("dbname", options.database);
  auto dbconn = target.connect(deadline);
  if (!dbconn) return dbconn.error();
  return in_transaction(dbconn->get(), deadline, [&]() -> Result<void> {
    for (const auto& a : assets) {
      if (a.name.rfind("01_", 0) == 0) continue;
      if (auto e = exec_script(dbconn->get(), a.sql, deadline); !e)
        return make_error("db.setup", std::string(a.name) + ": " + e.error().message);
    }
    return {};
  });
}

}  // namespace larder::db
