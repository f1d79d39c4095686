#include "policy/setup.h"

namespace larder::policy {

namespace {
constexpr auto kSetupTimeout = std::chrono::seconds(120);
}  // namespace

Result<Plan> setup_database(const db::ConnParams& admin, const Policy& policy, const SetupOptions& options) {
  auto deadline = db::Clock::now() + kSetupTimeout;
  if (options.database.empty()) return Error{"db.config", "empty database name", ""};

  auto maintenance = admin;
  if (!maintenance.get("dbname") || *maintenance.get("dbname") == options.database)
    maintenance.set("dbname", "postgres");
  auto conn = maintenance.connect(deadline);
  if (!conn) return conn.error();
  auto exists = db::exec_params(conn->get(), "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
                                {options.database}, deadline);
  if (!exists) return exists.error();
  if (PQntuples(exists->get()) == 0) {
    // CREATE DATABASE takes an identifier, not a parameter.
    const std::string sql =
        "CREATE DATABASE " + quote_ident(options.database) + " ENCODING 'UTF8' TEMPLATE template0";
    if (auto e = db::exec_script(conn->get(), sql, deadline); !e) return e.error();
  }
  conn->reset();

  auto target = admin;
  target.set("dbname", options.database);
  auto dbconn = target.connect(deadline);
  if (!dbconn) return dbconn.error();
  PGconn* c = dbconn->get();
  // Our own database: nobody but the roles the policy names connects, and no role may
  // create objects in public (the grants themselves come from apply).
  if (auto e =
          db::exec_script(c,
                          "BEGIN;"
                          "DO $db$ BEGIN EXECUTE pg_catalog.format('REVOKE ALL ON DATABASE %I FROM PUBLIC', "
                          "pg_catalog.current_database()); END $db$;"
                          "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
                          deadline);
      !e) {
    (void)db::exec_script(c, "ROLLBACK", deadline);
    return Error{"db.setup", "closing the database to PUBLIC: " + e.error().message, e.error().detail};
  }
  if (!options.schema_sql.empty()) {
    if (auto e = db::exec_script(c, options.schema_sql, deadline); !e) {
      (void)db::exec_script(c, "ROLLBACK", deadline);
      return Error{"db.setup", "the example's schema: " + e.error().message, e.error().detail};
    }
  }
  if (auto e = db::exec_script(c, "COMMIT", deadline); !e) return e.error();
  ApplyOptions ao;
  ao.query_password = options.query_password;
  ao.writer_password = options.writer_password;
  return apply(policy, c, ao, deadline);
}

}  // namespace larder::policy
