#include "db/connection.h"

#include <openssl/rand.h>
#include <poll.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace larder::db {

namespace {

std::string trim_message(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string code_for_sqlstate(std::string_view state) {
  if (state.size() != 5) return "db.query_error";
  if (state == "57014") return "db.timeout";
  if (state == "42501") return "db.permission_denied";
  if (state == "25006") return "db.read_only";
  if (state.substr(0, 2) == "08" || state == "57P01" || state == "57P02" || state == "57P03" ||
      state == "53300")
    return "db.unavailable";
  if (state.substr(0, 2) == "28") return "db.auth";
  if (state.substr(0, 2) == "42") return "db.invalid_query";
  if (state.substr(0, 2) == "22") return "db.data_error";
  if (state.substr(0, 2) == "54") return "db.limit";
  return "db.query_error";
}

std::string_view sqlstate_class_name(std::string_view state) {
  // PostgreSQL 15, Appendix A.
  static constexpr std::pair<std::string_view, std::string_view> kClasses[] = {
      {"00", "successful completion"},
      {"01", "warning"},
      {"02", "no data"},
      {"03", "SQL statement not yet complete"},
      {"08", "connection exception"},
      {"09", "triggered action exception"},
      {"0A", "feature not supported"},
      {"0B", "invalid transaction initiation"},
      {"0F", "locator exception"},
      {"0L", "invalid grantor"},
      {"0P", "invalid role specification"},
      {"0Z", "diagnostics exception"},
      {"20", "case not found"},
      {"21", "cardinality violation"},
      {"22", "data exception"},
      {"23", "integrity constraint violation"},
      {"24", "invalid cursor state"},
      {"25", "invalid transaction state"},
      {"26", "invalid SQL statement name"},
      {"27", "triggered data change violation"},
      {"28", "invalid authorization specification"},
      {"2B", "dependent privilege descriptors still exist"},
      {"2D", "invalid transaction termination"},
      {"2F", "SQL routine exception"},
      {"34", "invalid cursor name"},
      {"38", "external routine exception"},
      {"39", "external routine invocation exception"},
      {"3B", "savepoint exception"},
      {"3D", "invalid catalog name"},
      {"3F", "invalid schema name"},
      {"40", "transaction rollback"},
      {"42", "syntax error or access rule violation"},
      {"44", "WITH CHECK OPTION violation"},
      {"53", "insufficient resources"},
      {"54", "program limit exceeded"},
      {"55", "object not in prerequisite state"},
      {"57", "operator intervention"},
      {"58", "system error"},
      {"72", "snapshot failure"},
      {"F0", "configuration file error"},
      {"HV", "foreign data wrapper error"},
      {"P0", "PL/pgSQL error"},
      {"XX", "internal error"},
  };
  if (state.size() == 5)
    for (const auto& [prefix, name] : kClasses)
      if (state.substr(0, 2) == prefix) return name;
  return "unknown class";
}

std::string_view sqlstate_summary(std::string_view state) {
  static constexpr std::pair<std::string_view, std::string_view> kStates[] = {
      {"22P02", "a value in the query could not be converted to the requested type"},
      {"22003", "a numeric value is out of range for its type"},
      {"22012", "division by zero"},
      {"22001", "a string value is too long for its type"},
      {"22007", "a date or time value has an invalid format"},
      {"22008", "a date or time value is out of range"},
      {"22015", "an interval value is out of range"},
      {"2201B", "a regular expression is invalid"},
      {"2201E", "an argument of a logarithm or power function is invalid"},
      {"22023", "a function argument has an invalid value"},
      {"22004", "a null value is not allowed here"},
      {"22021", "a value is not valid in its character encoding"},
      {"22025", "an escape sequence is invalid"},
      {"2202E", "an array subscript is out of range"},
      {"22026", "a string value has the wrong length"},
      {"21000", "a subquery used as an expression returned more than one row"},
      {"42601", "the query has a syntax error"},
      {"42703", "a column named in the query does not exist"},
      {"42P01", "a table named in the query does not exist"},
      {"42883", "no function or operator matches the given name and argument types"},
      {"42804", "an expression has the wrong data type"},
      {"42846", "a value cannot be cast to the requested type"},
      {"42P18", "the data type of a parameter or expression could not be determined"},
      {"42725", "a function or operator call is ambiguous"},
      {"42702", "a column reference is ambiguous"},
      {"42803", "a column must appear in GROUP BY or be used in an aggregate function"},
      {"42P02", "the query uses a parameter for which no value was given"},
      {"42P10", "a column reference is invalid here"},
      {"42P19", "a recursive query is invalid"},
      {"42P20", "a window function is used incorrectly"},
      {"42809", "an object in the query is of the wrong kind"},
      {"42501", "permission denied: the query role may read only what it was granted"},
      {"08P01", "the parameters do not match the query (number or format)"},
      {"0A000", "the query uses a feature PostgreSQL does not support in this form"},
      {"25006", "the transaction is read-only"},
      {"25P02", "an earlier statement of the request failed"},
      {"26000", "a prepared statement was missing"},
      {"40001", "the transaction could not be serialized"},
      {"40P01", "a deadlock was detected"},
      {"53200", "the database ran out of memory for this query"},
      {"53100", "the database ran out of disk space for this query"},
      {"53400", "the query exceeded a configured resource limit"},
      {"54000", "the query exceeds a database limit (too complex, or a value too large)"},
      {"54001", "the query is too complex for the database"},
      {"55P03", "a lock could not be obtained in time"},
      {"57014", "the statement was cancelled"},
      {"57P01", "the database server is shutting down"},
      {"XX000", "the database reported an internal error"},
  };
  for (const auto& [code, text] : kStates)
    if (code == state) return text;
  return {};
}

Error withheld_error(std::string code, std::string_view sqlstate, std::string_view fallback,
                     std::optional<long> position) {
  std::string msg = "database error ";
  if (sqlstate.size() == 5) {
    msg.append(sqlstate).append(" (").append(sqlstate_class_name(sqlstate)).append("): ");
  } else {
    msg += "(no SQLSTATE): ";
  }
  std::string_view summary = sqlstate_summary(sqlstate);
  msg.append(summary.empty() ? fallback : summary);
  if (position && *position > 0) msg += " (at character " + std::to_string(*position) + " of the query)";
  msg += "; the database's own message is withheld because it may contain row data";
  return make_error(std::move(code), std::move(msg));
}

Error withheld_error(const PGresult* result, std::string code, std::string_view fallback,
                     std::size_t position_offset) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::optional<long> position;
  if (const char* p = result != nullptr ? PQresultErrorField(result, PG_DIAG_STATEMENT_POSITION) : nullptr) {
    long n = 0;
    auto [end, ec] = std::from_chars(p, p + std::strlen(p), n);
    if (ec == std::errc() && *end == '\0' && n > 0 && static_cast<std::size_t>(n) > position_offset)
      position = static_cast<long>(static_cast<std::size_t>(n) - position_offset);
  }
  return withheld_error(std::move(code), state != nullptr ? std::string_view(state) : std::string_view(),
                        fallback, position);
}

Result<ConnParams> ConnParams::parse(std::string_view conninfo) {
  std::string copy(conninfo);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(copy.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err != nullptr ? trim_message(err) : "out of memory";
    if (err != nullptr) PQfreemem(err);
    return make_error("db.config", "invalid database connection string: " + msg);
  }
  ConnParams p;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && o->val[0] != '\0') p.kv_.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(opts);
  return p;
}

ConnParams& ConnParams::set(std::string key, std::string value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
  return *this;
}

std::optional<std::string> ConnParams::get(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return v;
  return std::nullopt;
}

std::string ConnParams::to_conninfo() const {
  std::string out;
  for (const auto& [k, v] : kv_) {
    if (!out.empty()) out.push_back(' ');
    out += k;
    out += "='";
    for (char c : v) {
      if (c == '\'' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('\'');
  }
  return out;
}

std::string ConnParams::to_uri() const {
  std::string out = "postgresql://";
  auto user = get("user");
  auto password = get("password");
  if (user) {
    out += percent_encode(*user);
    if (password) out += ":" + percent_encode(*password);
    out += "@";
  }
  auto host = get("hostaddr");
  if (!host) host = get("host");
  out += host ? *host : "127.0.0.1";
  if (auto port = get("port")) out += ":" + *port;
  out += "/";
  if (auto db = get("dbname")) out += percent_encode(*db);
  std::string query;
  for (const auto& [k, v] : kv_) {
    if (k == "user" || k == "password" || k == "host" || k == "hostaddr" || k == "port" || k == "dbname")
      continue;
    query += query.empty() ? "?" : "&";
    query += percent_encode(k) + "=" + percent_encode(v);
  }
  return out + query;
}

std::string ConnParams::describe() const {
  std::string out;
  for (const auto& [k, v] : kv_) {
    if (k == "password") continue;
    if (!out.empty()) out.push_back(' ');
    out += k + "=" + v;
  }
  return out;
}

Result<PgConn> ConnParams::connect(Clock::time_point deadline) const {
  auto remaining = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now()).count();
  // libpq treats connect_timeout < 2 as 2.
  std::string timeout = std::to_string(std::clamp<long long>(remaining + 1, 2, 30));
  std::vector<const char*> keys;
  std::vector<const char*> values;
  bool has_timeout = false;
  for (const auto& [k, v] : kv_) {
    if (k == "connect_timeout") has_timeout = true;
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  if (!has_timeout) {
    keys.push_back("connect_timeout");
    values.push_back(timeout.c_str());
  }
  keys.push_back("application_name");
  values.push_back("larder");
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConn conn(PQconnectdbParams(keys.data(), values.data(), 0));
  if (!conn) return make_error("db.unavailable", "out of memory while connecting to PostgreSQL");
  // Server notices (e.g. "there is no transaction in progress") are not for our stderr.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string msg = trim_message(PQerrorMessage(conn.get()));
    bool auth = msg.find("authentication") != std::string::npos || msg.find("password") != std::string::npos;
    return make_error(auth ? "db.auth" : "db.unavailable",
                      "cannot connect to PostgreSQL (" + describe() + "): " + msg);
  }
  return conn;
}

Error error_from_connection(PGconn* conn, std::string_view what) {
  std::string msg = conn != nullptr ? trim_message(PQerrorMessage(conn)) : "no connection";
  return make_error("db.unavailable", std::string(what) + ": PostgreSQL connection failed: " + msg +
                                          " (the connection will be re-established on the next call)");
}

Error error_from_result(const PGresult* result, PGconn* conn, std::string_view what) {
  if (result == nullptr) return error_from_connection(conn, what);
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  std::string msg = primary != nullptr ? primary : trim_message(PQresultErrorMessage(result));
  if (msg.empty()) msg = PQresStatus(PQresultStatus(result));
  if (state == nullptr) {
    if (connection_broken(conn)) return error_from_connection(conn, what);
    return make_error("db.query_error", std::string(what) + ": " + msg);
  }
  std::string code = code_for_sqlstate(state);
  return make_error(code, std::string(what) + ": " + msg + " (SQLSTATE " + state + ")");
}

bool connection_broken(PGconn* conn) {
  return conn == nullptr || PQstatus(conn) != CONNECTION_OK;
}

bool idle_connection_usable(PGconn* conn) {
  for (int reads = 0; reads < 4; ++reads) {
    if (connection_broken(conn) || PQisBusy(conn) != 0) return false;
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    if (pfd.fd < 0) return false;
    const int rc = ::poll(&pfd, 1, 0);
    if (rc == 0) return true;  // nothing pending: the server has said nothing since the last call
    if (rc < 0 && errno != EINTR) return false;
    if (PQconsumeInput(conn) == 0) return false;  // EOF or error: the server is gone
  }
  return false;  // still talking while idle: not a connection to trust with a request
}

WaitOutcome wait_readable(PGconn* conn, Clock::time_point deadline) {
  // PQisBusy parses what is already buffered; only read the socket when that is not enough
  // (reading eagerly would grow libpq's buffer without bound in single-row mode).
  while (true) {
    if (PQisBusy(conn) == 0) return WaitOutcome::ready;
    auto now = Clock::now();
    if (now >= deadline) return WaitOutcome::deadline;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd pfd{PQsocket(conn), POLLIN, 0};
    if (pfd.fd < 0) return WaitOutcome::failed;
    int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(ms, 1000 * 60)));
    if (rc < 0 && errno != EINTR) return WaitOutcome::failed;
    if (PQconsumeInput(conn) == 0) return WaitOutcome::failed;
  }
}

namespace {

bool flush_all(PGconn* conn, Clock::time_point deadline) {
  while (true) {
    int rc = PQflush(conn);
    if (rc == 0) return true;
    if (rc < 0) return false;
    auto now = Clock::now();
    if (now >= deadline) return false;
    pollfd pfd{PQsocket(conn), POLLOUT | POLLIN, 0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    ::poll(&pfd, 1, static_cast<int>(std::min<long long>(ms, 60000)));
    if ((pfd.revents & POLLIN) != 0 && PQconsumeInput(conn) == 0) return false;
  }
}

// Drains every remaining result of the current command; returns the last error, if any.
Result<PgResult> collect_single(PGconn* conn, Clock::time_point deadline, std::string_view what) {
  PgResult last;
  bool cancelled = false;
  Clock::time_point wait_until = deadline;
  while (true) {
    auto outcome = wait_readable(conn, wait_until);
    if (outcome == WaitOutcome::failed) return error_from_connection(conn, what);
    if (outcome == WaitOutcome::deadline) {
      if (cancelled) return make_error("db.timeout", std::string(what) + ": no answer after cancel");
      if (PGcancel* c = PQgetCancel(conn)) {
        char buf[256];
        PQcancel(c, buf, sizeof buf);
        PQfreeCancel(c);
      }
      cancelled = true;
      wait_until = Clock::now() + std::chrono::seconds(2);
      continue;
    }
    PgResult r(PQgetResult(conn));
    if (!r) break;
    auto st = PQresultStatus(r.get());
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
      return make_error("db.protocol", std::string(what) + ": unexpected COPY");
    if (last && PQresultStatus(last.get()) == PGRES_FATAL_ERROR) continue;  // keep first error
    last = std::move(r);
  }
  if (cancelled)
    return make_error("db.timeout", std::string(what) + ": deadline exceeded; statement cancelled");
  if (!last) return error_from_connection(conn, what);
  auto st = PQresultStatus(last.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return error_from_result(last.get(), conn, what);
  return last;
}

}  // namespace

Result<PgResult> exec_params(PGconn* conn, std::string_view sql, const std::vector<Param>& params,
                             Clock::time_point deadline) {
  std::string query(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(conn, query.c_str(), static_cast<int>(params.size()), nullptr,
                        values.empty() ? nullptr : values.data(), nullptr, nullptr, 0) == 0)
    return error_from_connection(conn, "sending statement");
  if (!flush_all(conn, deadline)) return error_from_connection(conn, "sending statement");
  return collect_single(conn, deadline, "statement");
}

Result<PgResult> exec_prepared(PGconn* conn, const std::string& name, const std::vector<Param>& params,
                               Clock::time_point deadline) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryPrepared(conn, name.c_str(), static_cast<int>(params.size()),
                          values.empty() ? nullptr : values.data(), nullptr, nullptr, 0) == 0)
    return error_from_connection(conn, "sending statement");
  if (!flush_all(conn, deadline)) return error_from_connection(conn, "sending statement");
  return collect_single(conn, deadline, "statement");
}

Result<void> exec_script(PGconn* conn, std::string_view sql, Clock::time_point deadline) {
  std::string query(sql);
  if (PQsendQuery(conn, query.c_str()) == 0) return error_from_connection(conn, "sending script");
  if (!flush_all(conn, deadline)) return error_from_connection(conn, "sending script");
  auto r = collect_single(conn, deadline, "script");
  if (!r) return r.error();
  return {};
}

Result<std::string> encode_text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  bool first = true;
  for (const auto& v : values) {
    if (v.find('\0') != std::string::npos)
      return make_error("db.bad_context", "context values must not contain NUL bytes");
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char c : v) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

Result<std::string> random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
    return make_error("db.entropy", "OpenSSL RAND_bytes failed: no randomness available");
  return hex_encode(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string quote_qualified(std::string_view schema, std::string_view name) {
  return quote_ident(schema) + "." + quote_ident(name);
}

}  // namespace larder::db
