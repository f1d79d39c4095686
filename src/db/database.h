// Database: runs LLM-written SQL as the restricted query role, under the caller's RLS
// context, in a read-only transaction, within a deadline and result caps.
//
// The pool holds sessions, one query connection each (role of the policy's [roles] query),
// to PostgreSQL directly or through a transaction-mode pooler (PgBouncer). One call:
//   guard → round trip 1: BEGIN READ ONLY; the backend's pid and the transaction's start →
//   round trip 2: set_config('larder.context', <sealed context>, true) (+ statement_timeout
//   backstop, search_path, standard_conforming_strings, all LOCAL); <sql> (single-row mode,
//   rows/bytes caps; guard-checked SQL is prepared once per session and reused, except through
//   a pooler); ROLLBACK.
// The sealed context is the request's facts, bound to that pid and transaction start and to a
// deadline, under an HMAC-SHA256 tag keyed by larder_private.context_keys — which the context
// writer role reads once (the server keeps the key) and the query role cannot read. The rule
// functions verify it (larder_private.context(), docs/database.md): it works on a hot standby
// and through a pooler (nothing is written), and a value is worthless outside its transaction.
// Guard-checked SQL is first EXPLAINed in the same transaction and refused above
// config().max_query_cost before it runs (the verdict is cached per session, per text and
// parameters). Errors never carry the server's text (it quotes row values): once the SQL was
// sent, every error has code "db.statement" and a fixed message naming the SQLSTATE.
// ROLLBACK (never COMMIT) undoes any SET the SQL may have made. A watchdog in the wait loop
// sends a protocol-level cancel (PQcancel) at the deadline, whatever the session's
// statement_timeout says; a cancelled or broken session is closed, never reused. Any
// connection failure invalidates every idle session, so a restarted server is picked up on
// the next call.
#pragma once

#include "base/result.h"
#include "db/availability.h"
#include "db/connection.h"
#include "db/context_seal.h"
#include "db/pg_types.h"
#include "db/replica_set.h"
#include "db/request_context.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "db/sql_guard.h"

namespace larder::db {

struct Column {
  std::string name;
  std::string type;  // PostgreSQL type name, e.g. "integer", "text", "numeric", "date"
  unsigned oid = 0;
};

struct QueryResult {
  std::vector<Column> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // text values; nullopt = NULL
  bool truncated = false;
  std::string command;  // command tag of the statement, e.g. "SELECT 3"

  // {columns:[{name,type}], rows:[{name:value}], row_count, truncated} with JSON-typed
  // values (numbers, booleans, json) where the column type allows.
  nlohmann::json to_json() const;
};

struct DatabaseConfig {
  ConnParams query;   // role patients
  ConnParams writer;  // role larder_context_writer: reads the request-context key, once
  std::size_t pool_size = 8;
  std::chrono::milliseconds default_timeout{10'000};
  std::chrono::milliseconds cancel_grace{2'000};  // wait after a cancel before dropping the session
  // `query` reaches PostgreSQL through a transaction-mode pooler (PgBouncer): no named
  // prepared statements, no session settings ([database] transaction_pooler).
  bool transaction_pooler = false;
  // What the guard allows, and the session's search_path: from the policy file
  // (policy::guard_policy). Default: no relation at all.
  GuardPolicy guard_policy;
  // Guard-checked SQL whose planner cost estimate (EXPLAIN's root "Total Cost") exceeds this
  // is refused before it runs, with code db.too_costly. 0 = no ceiling.
  double max_query_cost = 1e7;
  // Where connection failures and recoveries are reported (logged once per outage); null:
  // each failed connection is logged.
  std::shared_ptr<Availability> availability;
  // Hot-standby read replicas ([database] replicas): `query`'s role on each, directly or
  // through the same kind of pooler. Requests go to a replica that is up and at most
  // max_replica_lag behind (round robin; db::ReplicaSet), else to `query`. The context key is
  // read through `writer` (the primary) and replicates.
  std::vector<ConnParams> replicas;
  std::chrono::milliseconds max_replica_lag{1000};
  std::chrono::milliseconds replica_probe_interval{200};
};

struct PoolStats {
  std::size_t open_sessions = 0;
  std::size_t idle_sessions = 0;
  std::size_t waiting = 0;          // requests waiting for a session now (the pool is busy)
  std::uint64_t wait_timeouts = 0;  // requests refused after waiting until their deadline
  std::uint64_t sessions_created = 0;
  std::uint64_t sessions_discarded = 0;
  std::uint64_t watchdog_cancels = 0;
  std::uint64_t cost_checks = 0;        // EXPLAINs run for the cost ceiling (cache misses)
  std::uint64_t cost_refusals = 0;      // statements refused by it
  std::uint64_t replica_calls = 0;      // requests that ran on a replica
  std::uint64_t replica_failovers = 0;  // requests moved off a replica that failed before the SQL was sent
};

// The codes of Database's errors:
//   before anything was sent: db.timeout (deadline, pool wait), db.bad_request, db.bad_context,
//     db.unavailable / db.auth (no connection), db.entropy, sql_guard.* (the guard refused);
//   db.too_costly: the planner's estimate is above max_query_cost; the SQL did not run;
//   db.statement: the SQL was sent and may have run against data — a server-raised error
//     (SQLSTATE and class in the message, never the server's text), the deadline's cancel,
//     a connection lost mid-statement, an unreadable answer. The messages differ per kind.
inline constexpr const char* kStatementError = "db.statement";
inline constexpr const char* kTooCostlyError = "db.too_costly";
// Why a statement was cancelled when the server stopped (RequestContext::stopping).
inline constexpr const char* kStoppingReason =
    "the server is stopping and its drain time ([server] drain_timeout_ms) ran out";

class Database {
 public:
  explicit Database(DatabaseConfig config);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs LLM-written SQL: SQL guard (when ctx.guard_enabled) then the protected path.
  // Parameters are bound with PQexecParams only.
  Result<QueryResult> query(const RequestContext& ctx, std::string_view sql,
                            const std::vector<Param>& params = {});
  // Runs SQL this database's guard already accepted (guard().check), without a second parse.
  // A GuardedQuery from any other guard is refused (sql_guard.internal).
  Result<QueryResult> query(const RequestContext& ctx, const GuardedQuery& checked,
                            const std::vector<Param>& params = {});

  // The SQL guard of this database's policy (config().guard_policy).
  const SqlGuard& guard() const { return *guard_; }
  // Only the SQL guard: Ok when the text is one allowed SELECT. explain() checks the bare
  // query with it before prefixing EXPLAIN.
  Result<void> check_sql(std::string_view sql) const;

  // EXPLAIN (FORMAT JSON) of one SELECT, redacted to the plan's shape (redact_plan: no
  // estimates, costs or statistics). analyze = true runs it (EXPLAIN ANALYZE: actual times,
  // rows of nodes past every filter), under the cost ceiling like query(): a sensitive read.
  // The text is checked by the guard when ctx.guard_enabled.
  Result<nlohmann::json> explain(const RequestContext& ctx, std::string_view sql,
                                 const std::vector<Param>& params, bool analyze);
  Result<nlohmann::json> explain(const RequestContext& ctx, const GuardedQuery& checked,
                                 const std::vector<Param>& params, bool analyze);

  // Larder's own fixed SQL (catalog introspection for resources): the same path — query
  // role, RLS context, read-only, deadline, caps — without the guard.
  Result<QueryResult> query_trusted(const RequestContext& ctx, std::string_view sql,
                                    const std::vector<Param>& params = {});

  // Reads the context key (as the context writer) and opens one session (as the query role).
  Result<void> check_connectivity(std::chrono::steady_clock::time_point deadline);
  // One round trip on a pooled query session ("SELECT 1"): readiness.
  Result<void> ping(std::chrono::steady_clock::time_point deadline);

  PoolStats stats() const;
  // The replicas' health and lag (empty without replicas); the primary's probe error.
  std::vector<ReplicaSet::Status> replica_status() const;
  const DatabaseConfig& config() const { return config_; }

  struct Session;

 private:
  // The newest request-context key, read as the context writer and kept for
  // kContextKeyRefresh; forgotten when the server refuses a context (LX001), so a key rotated
  // or re-made since is picked up on the next call.
  Result<ContextKey> context_key(Clock::time_point deadline);
  Result<ContextKey> read_context_key(Clock::time_point deadline);
  void forget_context_key();

  // Sessions are per target: 0 = `query` (the primary), i + 1 = replicas[i].
  Result<std::unique_ptr<Session>> acquire(std::size_t target, Clock::time_point deadline);
  void release(std::unique_ptr<Session> session, bool healthy);
  Result<std::unique_ptr<Session>> open_session(std::size_t target, Clock::time_point deadline);
  void invalidate_idle(std::size_t target);
  std::size_t pick_target();
  struct RunOptions {
    bool cacheable = false;           // prepare once per session, execute by name afterwards
    std::string_view cost_sql;        // guard-checked SQL to EXPLAIN against max_query_cost first
    std::size_t position_offset = 0;  // bytes Larder put before the caller's text (EXPLAIN)
  };
  Result<QueryResult> run(const RequestContext& ctx, std::string_view sql, const std::vector<Param>& params,
                          const RunOptions& options);
  // The steps of run(), in order: check_request, encode_context, context_key,
  // begin_transaction, seal_for_call, then a Call (database.cpp) checks the cost ceiling and
  // executes, and finish() names the column types and releases the session.
  struct Transaction {  // a session inside the request's read-only transaction
    std::unique_ptr<Session> session;
    TransactionBinding binding;
    std::size_t target = 0;  // as acquire()
  };
  class Call;
  Result<void> check_request(const RequestContext& ctx, std::string_view sql,
                             const std::vector<Param>& params, Clock::time_point deadline) const;
  Result<Transaction> begin_transaction(Clock::time_point deadline);
  std::string seal_for_call(const ContextKey& key, const TransactionBinding& binding,
                            Clock::time_point deadline, const std::string& context) const;
  Result<QueryResult> finish(Transaction transaction, Call& call);
  Result<nlohmann::json> run_explain(const RequestContext& ctx, std::string_view sql,
                                     const std::vector<Param>& params, bool analyze, bool guarded);
  std::string type_name(PGconn* conn, unsigned oid, Clock::time_point deadline);

  DatabaseConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ConnParams> targets_;  // query, then the replicas
  std::unique_ptr<ReplicaSet> replica_set_;
  std::vector<std::unique_ptr<Session>> idle_;
  std::size_t open_ = 0;
  std::vector<std::uint64_t> generations_;  // per target
  std::atomic<std::uint64_t> replica_calls_{0};
  std::atomic<std::uint64_t> replica_failovers_{0};
  std::uint64_t created_ = 0;
  std::uint64_t discarded_ = 0;
  std::size_t waiting_ = 0;  // in acquire(), waiting for a session (under mu_)
  std::uint64_t wait_timeouts_ = 0;
  std::atomic<std::uint64_t> watchdog_cancels_{0};
  std::atomic<std::uint64_t> cost_checks_{0};
  std::atomic<std::uint64_t> cost_refusals_{0};
  std::unique_ptr<SqlGuard> guard_;
  std::string search_path_;  // pg_catalog, then the policy's schemas, quoted
  std::mutex key_mu_;
  std::optional<ContextKey> key_;
  Clock::time_point key_read_at_{};
  std::mutex types_mu_;
  std::unordered_map<unsigned, std::string> types_;
};

}  // namespace larder::db
