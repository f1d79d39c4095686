// libpq plumbing shared by the rest of libdb: owning handles, connection parameters, and
// deadline-aware execution. Every statement that carries a value uses typed parameters
// (PQexecParams and friends); nothing here builds SQL from values.
#pragma once

#include "base/encoding.h"
#include "base/result.h"

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace larder::db {

using Clock = std::chrono::steady_clock;

struct PgConnCloser {
  void operator()(PGconn* c) const noexcept {
    if (c != nullptr) PQfinish(c);
  }
};
struct PgResultClearer {
  void operator()(PGresult* r) const noexcept {
    if (r != nullptr) PQclear(r);
  }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;
using PgResult = std::unique_ptr<PGresult, PgResultClearer>;

// A text-format query parameter; nullopt is SQL NULL.
using Param = std::optional<std::string>;

// Connection parameters as libpq keyword/value pairs. Parsed from a URI
// ("postgresql://user:pw@127.0.0.1:5432/db") or a "key=value ..." string; never
// concatenated into a connection string by hand.
class ConnParams {
 public:
  ConnParams() = default;
  static Result<ConnParams> parse(std::string_view conninfo);

  ConnParams& set(std::string key, std::string value);
  std::optional<std::string> get(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& pairs() const { return kv_; }

  // "key='value' ..." with libpq quoting; for handing to psql/pgbench (may contain a password).
  std::string to_conninfo() const;
  // postgresql:// URI with percent-encoded parts (may contain a password).
  std::string to_uri() const;
  // The same without the password, for logs and messages.
  std::string describe() const;

  // Opens a connection; fails with db.unavailable (server unreachable) or db.auth.
  Result<PgConn> connect(Clock::time_point deadline) const;

 private:
  std::vector<std::pair<std::string, std::string>> kv_;
};

// An Error from a failed connection or result: code from the SQLSTATE class
// (db.unavailable, db.permission_denied, db.read_only, db.timeout, db.query_error, ...).
// The message quotes the server's text: for Larder's own setup and admin commands only —
// never for anything a client sees (withheld_error below).
Error error_from_result(const PGresult* result, PGconn* conn, std::string_view what);
Error error_from_connection(PGconn* conn, std::string_view what);

// Larder's code for a SQLSTATE (db.unavailable for class 08 and shutdowns, db.timeout for
// 57014, db.invalid_query for class 42, ...; db.query_error otherwise).
std::string code_for_sqlstate(std::string_view sqlstate);
// PostgreSQL's name for the class of a SQLSTATE ("22P02" -> "data exception"); "unknown class".
std::string_view sqlstate_class_name(std::string_view sqlstate);
// Our own sentence for a common SQLSTATE ("22012" -> "division by zero"); "" when we have none.
std::string_view sqlstate_summary(std::string_view sqlstate);

// An error the server raised, as a client may see it: `code`, the SQLSTATE, its class and a
// sentence written by us — never the server's message, detail, hint or context, which quote
// values (finding 1: `invalid input syntax for type integer: "<every visible row>"`):
//   database error 22P02 (data exception): a value in the query could not be converted to the
//   requested type; the database's own message is withheld because it may contain row data
// `fallback` is the sentence for a SQLSTATE without a summary. `position` (1-based character
// offset in the statement, from the query text, never from data) is named when given.
Error withheld_error(std::string code, std::string_view sqlstate, std::string_view fallback,
                     std::optional<long> position = std::nullopt);
// The same for a failed result: its SQLSTATE and position (minus `position_offset`, the bytes
// of a prefix Larder put before the caller's text). Without a SQLSTATE: "no SQLSTATE".
Error withheld_error(const PGresult* result, std::string code, std::string_view fallback,
                     std::size_t position_offset = 0);

// True when the connection can no longer be used (server gone, protocol broken).
bool connection_broken(PGconn* conn);
// For an idle connection about to be used without a prior round trip: reads whatever its
// socket already holds (a shutdown's FATAL message, EOF) without waiting. False when the
// server has gone away (or anything unexpected is pending).
bool idle_connection_usable(PGconn* conn);

// Waits until PQgetResult would not block, or the deadline passes. Returns false when the
// deadline passed (nothing consumed beyond what arrived) or the connection failed.
enum class WaitOutcome { ready, deadline, failed };
WaitOutcome wait_readable(PGconn* conn, Clock::time_point deadline);

// Runs one statement with text parameters and waits (bounded by the deadline) for its
// single result. On deadline the statement is cancelled at the protocol level and an error
// db.timeout is returned; the caller should then discard the connection.
Result<PgResult> exec_params(PGconn* conn, std::string_view sql, const std::vector<Param>& params,
                             Clock::time_point deadline);

// The same for a statement prepared on this connection (PQprepare) under `name`.
Result<PgResult> exec_prepared(PGconn* conn, const std::string& name, const std::vector<Param>& params,
                               Clock::time_point deadline);

// Runs SQL without parameters (may hold several statements: setup scripts only).
Result<void> exec_script(PGconn* conn, std::string_view sql, Clock::time_point deadline);

// A text[] literal ('{"a","b"}') for passing string lists as one typed parameter.
// Rejects values containing NUL bytes (PostgreSQL text cannot hold them).
Result<std::string> encode_text_array(const std::vector<std::string>& values);

// "id" -> "\"id\"", doubling any double quote: an identifier as SQL text (for DDL, which takes
// no parameters, and search_path lists). Values never go this way: they are parameters.
std::string quote_ident(std::string_view name);
std::string quote_qualified(std::string_view schema, std::string_view name);

// 2*n lowercase hex characters of cryptographically random bytes (OpenSSL RAND_bytes).
Result<std::string> random_hex(std::size_t bytes);

}  // namespace larder::db
