// From a policy file to a database: `larder policy plan | apply | check` (docs/policy.md).
//
// plan() reads the catalog as the administrator, checks what the file names against it
// (unknown relation or column, a fact type that does not match its column, a join path
// whose columns do not exist or differ in type: errors with file, line and key) and writes
// the statements that make the database match the file:
//   - the four roles (query and context writer LOGIN, owner and views NOLOGIN), their
//     attributes and session settings, and no membership in any role;
//   - per exposed table: RLS enabled and FORCEd, table privileges reset, SELECT on exactly
//     the readable columns for the query role (for a table with masked columns: for the views
//     role, and a security-barrier view in view_schema that masks them, for the query role);
//   - the context machinery: larder_private.context_keys (the keys that seal a request's
//     context, readable by the context writer, never by the query role), larder_private.context()
//     (verifies the sealed value Larder sets in the request's transaction and returns its
//     facts), one SECURITY DEFINER function per row rule returning the values the rule allows
//     for this request, and the masking functions;
//   - one permissive SELECT policy per rule (OR-ed), `USING (true)` for a public table.
// Identifiers from the file enter the SQL quoted (quote_ident); values (a `when` list, the
// unmask rights) only as parameters of INSERTs into larder_private tables.
//
// apply() runs the plan in one transaction: all of it or nothing. It records fingerprints of
// what it made (policies, functions, views, the file's digest) in larder_private.applied;
// check() compares the live database with the file and those fingerprints and names every
// difference. When check() finds nothing, plan() has nothing to do and apply() runs nothing.
//
// A superuser runs everything. A role with CREATEROLE that owns the exposed tables (and may
// create schemas in the database) runs all but the superuser-only parts, which plan()
// lists as notes: role attributes only a superuser may set, per-role log settings, and
// revoking pg_stats from PUBLIC.
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "policy/policy.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace larder::policy {

struct Statement {
  std::string sql;
  std::vector<db::Param> params;
};

struct Plan {
  std::vector<Statement> statements;  // in order, one transaction
  std::vector<std::string> removals;  // what the statements drop or revoke, in words
  std::vector<std::string> notes;     // what this administrator cannot do, and warnings
  bool up_to_date = false;            // check() found nothing: no statement to run

  // The SQL as `larder policy plan` prints it (parameters shown as comments).
  std::string render() const;
};

// Reads the catalog through `admin` (a connection to the target database).
Result<Plan> plan(const Policy& policy, PGconn* admin, db::Clock::time_point deadline);

struct ApplyOptions {
  // New passwords for the login roles; nullopt leaves a password unchanged.
  std::optional<std::string> query_password;
  std::optional<std::string> writer_password;
};

// plan() then its statements in one transaction on `admin` (a connection to the target
// database); a failure rolls everything back. Returns the plan it ran.
Result<Plan> apply(const Policy& policy, PGconn* admin, const ApplyOptions& options,
                   db::Clock::time_point deadline);

// Every difference between the live database and the file, in words; empty when none.
// Runs as any role that can read the catalog (the server uses the context writer).
Result<std::vector<std::string>> check(const Policy& policy, PGconn* conn, db::Clock::time_point deadline);

// Request-context keys (docs/database.md, "Rotating the context key"). add_context_key makes
// a new key under the next id and returns it; servers seal with the newest key they have read
// (they read it again at least every db::kContextKeyRefresh) and the database accepts every key
// in the table. retire_context_keys then deletes every older key, but only once the newest is
// at least `min_age` old (otherwise nothing, and newest_age says how old it is).
Result<int> add_context_key(PGconn* admin, db::Clock::time_point deadline);
struct RetiredKeys {
  int retired = 0;
  int newest = 0;
  std::chrono::seconds newest_age{0};
};
Result<RetiredKeys> retire_context_keys(PGconn* admin, std::chrono::seconds min_age,
                                        db::Clock::time_point deadline);

}  // namespace larder::policy
