#include "db/database.h"

#include "db/context_seal.h"
#include "db/plan_redaction.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace larder::db {

namespace {

constexpr const char* kBind = "larder_bind";
constexpr const char* kSetContext = "larder_set_context";

// The request's settings, all transaction-local (ROLLBACK undoes them; nothing stays on a
// backend a pooler hands to someone else): the sealed context, the statement_timeout
// backstop, and how the server reads the SQL (as the guard's parser did).
constexpr const char* kSetContextSql =
    "SELECT pg_catalog.set_config('larder.context', $1::text, true), "
    "pg_catalog.set_config('statement_timeout', $2::text, true), "
    "pg_catalog.set_config('search_path', $3::text, true), "
    "pg_catalog.set_config('standard_conforming_strings', 'on', true)";

constexpr std::size_t kMaxContextValues = 256;
constexpr std::size_t kMaxCachedStatements = 128;
constexpr std::size_t kMaxCachedStatementBytes = 16 * 1024;
constexpr std::size_t kMaxContextValueBytes = 512;

// The cost ceiling: EXPLAIN's prefix, and the per-session cache of its verdicts.
constexpr const char* kCostPrefix = "EXPLAIN (FORMAT JSON) ";
constexpr std::size_t kMaxCachedCosts = 256;
constexpr std::size_t kMaxCostKeyBytes = 64 * 1024;
// Statistics change (ANALYZE): a verdict is re-checked after this long.
constexpr std::chrono::minutes kCostVerdictTtl{5};

// The steps of the query connection's pipeline.
enum class Step { context, prepare, cost, user, rollback };

// The cache key of a cost verdict: the context, the SQL, the parameters (length-prefixed).
std::string cost_cache_key(const std::string& context, std::string_view sql,
                           const std::vector<Param>& params) {
  std::string key = context;
  key.append(1, '\0').append(std::to_string(sql.size())).append(1, ':').append(sql);
  for (const auto& p : params) {
    if (!p) {
      key.append("|n");
    } else {
      key.append("|").append(std::to_string(p->size())).append(1, ':').append(*p);
    }
  }
  return key;
}

// The estimate is shown to its order of magnitude only: the exact figure, scaled by a factor
// the caller chooses, would give the planner's row estimate for the caller's filter over the
// whole table (finding 8 through another door).
Error too_costly(double cost, double ceiling) {
  std::string estimate = std::isfinite(cost) ? "~" + format_cost_magnitude(cost) : std::string();
  if (estimate.empty())
    return make_error(
        kTooCostlyError,
        "refused: the planner's cost estimate could not be read, so it cannot be checked against the "
        "ceiling " +
            format_cost(ceiling) + " ([database] max_query_cost); the query did not run");
  return make_error(kTooCostlyError,
                    "refused: the planner estimates cost " + estimate + ", above the ceiling " +
                        format_cost(ceiling) +
                        " ([database] max_query_cost); the query did not run. Narrow it (filters, "
                        "joins on keys, LIMIT) or aggregate in fewer steps");
}

// A connection failure as callers see it: without libpq's message, which after a failed
// statement repeats the server's error text.
Error connection_failed(std::string_view what) {
  return make_error("db.unavailable",
                    "database unavailable: " + std::string(what) +
                        ": the connection to PostgreSQL failed (it will be re-established on the "
                        "next call)");
}

// Opening a connection failed: the details (host, role, the server's authentication or startup
// message — never a statement's) go to our log for the operator; the caller gets the code.
Error connect_failed(const Error& e, const char* role, Availability* availability) {
  if (availability != nullptr) {
    availability->failed(
        make_error(e.code, std::string("connecting as the ") + role + " role failed: " + e.message));
  } else {
    spdlog::warn("database: connecting as the {} role failed: {}", role, e.message);
  }
  return make_error(e.code, std::string("database unavailable: cannot connect to PostgreSQL as the ") + role +
                                " role (" + e.code + "; the reason is in Larder's log)");
}

Result<void> prepare(PGconn* conn, const char* name, const char* sql, Clock::time_point deadline) {
  PgResult r(PQprepare(conn, name, sql, 0, nullptr));
  (void)deadline;
  if (!r) return connection_failed("preparing Larder's session statements");
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    return withheld_error(r.get(), code_for_sqlstate(state != nullptr ? state : ""),
                          "preparing Larder's session statements failed");
  }
  return {};
}

// The context's facts as the sealed value carries them: {"<fact>": ["v", ...] or [["v1", "v2"], ...],
// "$unmask": ["right", ...]} (a std::map, so the same context always encodes to the same bytes:
// the cost cache keys on them).
Result<std::string> encode_context(const RequestContext& ctx) {
  nlohmann::json facts = nlohmann::json::object();
  std::size_t values = 0;
  auto check = [&values](const std::string& v, const std::string& what) -> Result<void> {
    if (++values > kMaxContextValues)
      return make_error("db.bad_context", "too many values in the request context");
    if (v.size() > kMaxContextValueBytes)
      return make_error("db.bad_context", what + " value longer than 512 bytes");
    if (v.find('\0') != std::string::npos)
      return make_error("db.bad_context", what + " value contains a NUL byte");
    return {};
  };
  for (const auto& [name, tuples] : ctx.facts) {
    if (name.empty() || name[0] == '$')
      return make_error("db.bad_context", "a context fact name is empty or reserved");
    // One-argument tuples as a flat array of strings (the rule functions read them with
    // jsonb_array_elements_text and `?|`), wider ones as arrays.
    nlohmann::json list = nlohmann::json::array();
    for (const auto& tuple : tuples) {
      if (tuple.empty()) return make_error("db.bad_context", name + " has an empty tuple");
      if (tuple.size() != tuples.front().size())
        return make_error("db.bad_context", name + " has tuples of different arities");
      for (const auto& v : tuple)
        if (auto r = check(v, name); !r) return r.error();
      if (tuple.size() == 1) {
        list.push_back(tuple[0]);
      } else {
        list.push_back(tuple);
      }
    }
    facts[name] = std::move(list);
  }
  if (!ctx.unmask.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& v : ctx.unmask) {
      if (auto r = check(v, "unmask"); !r) return r.error();
      list.push_back(v);
    }
    facts["$unmask"] = std::move(list);
  }
  try {
    return facts.dump();  // strict: invalid UTF-8 throws
  } catch (const nlohmann::json::exception&) {
    return make_error("db.bad_context", "a request context value is not valid UTF-8");
  }
}

}  // namespace

struct Database::Session {
  PgConn query;
  std::uint64_t generation = 0;
  std::size_t target = 0;  // 0 = the primary (`query`), i + 1 = replicas[i]
  bool reused = false;
  // The model's SQL, prepared once per session (text -> statement name), so repeated queries
  // skip parse and plan like pgbench -M prepared. Bounded; beyond it SQL runs unnamed.
  std::unordered_map<std::string, std::string> statements;
  std::uint64_t statement_seq = 0;
  // Cost-ceiling verdicts (cost_cache_key -> the planner's estimate, until when it is trusted).
  struct CostVerdict {
    double cost = 0;
    Clock::time_point until{};
  };
  std::unordered_map<std::string, CostVerdict> costs;
};

// ---------------------------------------------------------------------------------------
// Results

nlohmann::json QueryResult::to_json() const {
  nlohmann::json cols = nlohmann::json::array();
  for (const auto& c : columns) cols.push_back({{"name", c.name}, {"type", c.type}});
  nlohmann::json out_rows = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json obj = nlohmann::json::object();
    for (std::size_t i = 0; i < row.size() && i < columns.size(); ++i)
      obj[columns[i].name] = pg_value_to_json(columns[i].oid, row[i]);
    out_rows.push_back(std::move(obj));
  }
  return {{"columns", std::move(cols)},
          {"rows", std::move(out_rows)},
          {"row_count", rows.size()},
          {"truncated", truncated}};
}

// ---------------------------------------------------------------------------------------
// Pool

Database::Database(DatabaseConfig config) : config_(std::move(config)) {
  if (config_.pool_size == 0) config_.pool_size = 1;
  // The server must read the SQL exactly as the guard's parser did (docs/sql-guard.md): every
  // transaction sets search_path and standard_conforming_strings (kSetContextSql). Directly
  // connected sessions also start with them; a transaction pooler (PgBouncer) refuses the
  // `options` start-up parameter and would hand the session settings to other clients anyway.
  search_path_ = "pg_catalog";
  for (const auto& schema : config_.guard_policy.search_path) search_path_ += "," + quote_ident(schema);
  std::string options;
  if (!config_.transaction_pooler) {
    std::string escaped;  // libpq's options string needs spaces and backslashes escaped
    for (char c : search_path_) {
      if (c == ' ' || c == '\\') escaped += '\\';
      escaped += c;
    }
    options = "-c search_path=" + escaped + " -c standard_conforming_strings=on";
  }
  targets_.push_back(config_.query);
  for (const auto& r : config_.replicas) targets_.push_back(r);
  for (auto& t : targets_) {
    t.set("client_encoding", "UTF8");
    if (!options.empty()) t.set("options", options);
  }
  config_.query = targets_[0];
  generations_.assign(targets_.size(), 0);
  guard_ = std::make_unique<SqlGuard>(config_.guard_policy);
  if (!config_.replicas.empty()) {
    ReplicaSetOptions ro;
    ro.max_lag = config_.max_replica_lag;
    ro.probe_interval = config_.replica_probe_interval;
    ro.probe_timeout = std::max(std::chrono::milliseconds(500),
                                std::min(config_.max_replica_lag, std::chrono::milliseconds(2000)));
    replica_set_ = std::make_unique<ReplicaSet>(
        targets_[0], std::vector<ConnParams>(targets_.begin() + 1, targets_.end()), ro);
  }
}

Database::~Database() = default;

Result<std::unique_ptr<Database::Session>> Database::open_session(std::size_t target,
                                                                  Clock::time_point deadline) {
  auto s = std::make_unique<Session>();
  s->target = target;
  auto q = targets_[target].connect(deadline);
  if (!q) {
    // A replica's outage is the replica set's to report; the primary's is the database's.
    if (target > 0) return connect_failed(q.error(), "query (a replica)", nullptr);
    return connect_failed(q.error(), "query", config_.availability.get());
  }
  if (target == 0 && config_.availability) config_.availability->succeeded();
  s->query = std::move(*q);
  // Through a transaction pooler a named statement would be prepared on one server backend
  // and executed on another: everything runs unnamed there.
  if (!config_.transaction_pooler) {
    if (auto r = prepare(s->query.get(), kBind, kBindTransactionSql, deadline); !r) return r.error();
    if (auto r = prepare(s->query.get(), kSetContext, kSetContextSql, deadline); !r) return r.error();
  }
  return s;
}

std::size_t Database::pick_target() {
  if (!replica_set_) return 0;
  auto r = replica_set_->pick();
  return r ? *r + 1 : 0;
}

std::vector<ReplicaSet::Status> Database::replica_status() const {
  return replica_set_ ? replica_set_->status() : std::vector<ReplicaSet::Status>{};
}

Result<ContextKey> Database::context_key(Clock::time_point deadline) {
  std::optional<ContextKey> cached;
  {
    std::lock_guard lock(key_mu_);
    if (key_ && Clock::now() - key_read_at_ < kContextKeyRefresh) return *key_;
    cached = key_;
  }
  auto fresh = read_context_key(deadline);
  if (!fresh && cached) {
    // The key still in the table keeps working (on the replicas too, while the primary is
    // away): a failed refresh is not this request's problem. Tried again in 5 s.
    spdlog::warn("database: reading the request-context key again failed ({}); sealing with key {}",
                 fresh.error().message, cached->id);
    std::lock_guard lock(key_mu_);
    key_read_at_ = Clock::now() - kContextKeyRefresh + std::chrono::seconds(5);
    return *cached;
  }
  if (!fresh) return fresh.error();
  std::lock_guard lock(key_mu_);
  key_ = *fresh;
  key_read_at_ = Clock::now();
  return *fresh;
}

Result<ContextKey> Database::read_context_key(Clock::time_point deadline) {
  auto w = config_.writer.connect(deadline);
  if (!w) return connect_failed(w.error(), "context writer", config_.availability.get());
  auto r = exec_params(w->get(), kContextKeySql, {}, deadline);
  const char* fix =
      "run `larder policy apply` (it makes the key and lets the context writer read it; docs/database.md)";
  if (!r) {
    spdlog::warn("database: reading the request-context key as the context writer failed: {}",
                 r.error().message);
    if (r.error().code == "db.unavailable") return connection_failed("reading the request-context key");
    return make_error("db.no_context_key", std::string("the context writer cannot read a request-context key "
                                                       "(larder_private.context_keys): ") +
                                               fix);
  }
  if (PQntuples(r->get()) != 1) {
    return make_error("db.no_context_key",
                      std::string("the database has no request-context key (larder_private.context_keys is "
                                  "empty): ") +
                          fix);
  }
  auto key = parse_context_key(PQgetvalue(r->get(), 0, 0), PQgetvalue(r->get(), 0, 1));
  if (!key)
    return make_error("db.no_context_key", std::string("the request-context key is malformed: ") + fix);
  return *key;
}

void Database::forget_context_key() {
  std::lock_guard lock(key_mu_);
  key_.reset();
}

Result<std::unique_ptr<Database::Session>> Database::acquire(std::size_t target, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  while (true) {
    // An idle session of this target (the most recently used first); stale ones are dropped.
    for (std::size_t i = idle_.size(); i-- > 0;) {
      if (idle_[i]->target != target) continue;
      auto s = std::move(idle_[i]);
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
      if (s->generation == generations_[target] && !connection_broken(s->query.get())) {
        s->reused = true;
        return s;
      }
      --open_;  // stale (server restarted, or broken): drop it
      ++discarded_;
    }
    // The pool is full of other targets' idle sessions: close the oldest to make room.
    if (open_ >= config_.pool_size && !idle_.empty()) {
      idle_.erase(idle_.begin());
      --open_;
      ++discarded_;
    }
    if (open_ < config_.pool_size) {
      ++open_;
      std::uint64_t gen = generations_[target];
      lock.unlock();
      auto s = open_session(target, deadline);
      lock.lock();
      if (!s) {
        --open_;
        cv_.notify_one();
        return s.error();
      }
      ++created_;
      (*s)->generation = gen;
      return s;
    }
    ++waiting_;
    const bool timed_out = cv_.wait_until(lock, deadline) == std::cv_status::timeout;
    --waiting_;
    if (timed_out && idle_.empty() && open_ >= config_.pool_size) {
      ++wait_timeouts_;
      return make_error("db.timeout", "deadline exceeded waiting for a database session (pool of " +
                                          std::to_string(config_.pool_size) + " busy)");
    }
  }
}

void Database::release(std::unique_ptr<Session> session, bool healthy) {
  std::lock_guard lock(mu_);
  if (healthy && session->generation == generations_[session->target] &&
      !connection_broken(session->query.get()) && PQtransactionStatus(session->query.get()) == PQTRANS_IDLE) {
    idle_.push_back(std::move(session));
  } else {
    --open_;
    ++discarded_;
    session.reset();
  }
  cv_.notify_one();
}

void Database::invalidate_idle(std::size_t target) {
  std::lock_guard lock(mu_);
  ++generations_[target];
  for (std::size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i]->target != target) continue;
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    ++discarded_;
    --open_;
  }
  cv_.notify_all();
}

PoolStats Database::stats() const {
  std::lock_guard lock(mu_);
  PoolStats s;
  s.open_sessions = open_;
  s.idle_sessions = idle_.size();
  s.waiting = waiting_;
  s.wait_timeouts = wait_timeouts_;
  s.sessions_created = created_;
  s.sessions_discarded = discarded_;
  s.watchdog_cancels = watchdog_cancels_.load();
  s.cost_checks = cost_checks_.load();
  s.cost_refusals = cost_refusals_.load();
  s.replica_calls = replica_calls_.load();
  s.replica_failovers = replica_failovers_.load();
  return s;
}

Result<void> Database::check_connectivity(Clock::time_point deadline) {
  if (auto key = context_key(deadline); !key) return key.error();
  auto s = acquire(0, deadline);
  if (!s) return s.error();
  release(std::move(*s), true);
  return {};
}

Result<void> Database::ping(Clock::time_point deadline) {
  auto s = acquire(0, deadline);
  if (!s) return s.error();
  auto r = exec_params((*s)->query.get(), "SELECT 1", {}, deadline);
  release(std::move(*s), r.ok());
  if (!r) return make_error(r.error().code, "the query role's session does not answer: " + r.error().message);
  return {};
}

std::string Database::type_name(PGconn* conn, unsigned oid, Clock::time_point deadline) {
  std::string name = builtin_type_name(oid);
  if (!name.empty()) return name;
  {
    std::lock_guard lock(types_mu_);
    if (auto it = types_.find(oid); it != types_.end()) return it->second;
  }
  if (conn != nullptr && !connection_broken(conn) && PQtransactionStatus(conn) == PQTRANS_IDLE) {
    auto r =
        exec_params(conn, "SELECT pg_catalog.format_type($1::oid, NULL)", {std::to_string(oid)}, deadline);
    if (r && PQntuples(r->get()) == 1 && !PQgetisnull(r->get(), 0, 0)) {
      name = PQgetvalue(r->get(), 0, 0);
      std::lock_guard lock(types_mu_);
      types_[oid] = name;
      return name;
    }
  }
  return "oid " + std::to_string(oid);
}

namespace {

// Opens the request's transaction in pipeline mode: BEGIN READ ONLY and kBindTransactionSql, one round
// trip. Nothing of the caller's has been sent yet, so a failure here is safe to retry on a
// fresh session. The connection is left in pipeline mode, inside the transaction.
Result<TransactionBinding> bind_transaction(PGconn* q, bool named, Clock::time_point deadline) {
  if (PQenterPipelineMode(q) != 1) return connection_failed("opening the request's transaction");
  const bool sent =
      PQsendQueryParams(q, "BEGIN TRANSACTION READ ONLY", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
      (named ? PQsendQueryPrepared(q, kBind, 0, nullptr, nullptr, nullptr, 0) == 1
             : PQsendQueryParams(q, kBindTransactionSql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1) &&
      PQpipelineSync(q) == 1 && PQflush(q) == 0;
  if (!sent) return connection_failed("opening the request's transaction");
  std::optional<TransactionBinding> binding;
  std::optional<Error> failure;
  while (true) {
    auto outcome = wait_readable(q, deadline);
    if (outcome == WaitOutcome::failed) return connection_failed("opening the request's transaction");
    if (outcome == WaitOutcome::deadline)
      return make_error("db.timeout", "deadline exceeded opening the request's transaction");
    PgResult r(PQgetResult(q));
    if (!r) continue;  // end of one statement's results
    auto st = PQresultStatus(r.get());
    if (st == PGRES_PIPELINE_SYNC) break;
    if (st == PGRES_TUPLES_OK && PQntuples(r.get()) == 1 && PQnfields(r.get()) == 3) {
      binding = TransactionBinding{PQgetvalue(r.get(), 0, 0), PQgetvalue(r.get(), 0, 1),
                                   std::atoll(PQgetvalue(r.get(), 0, 2))};
    } else if ((st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) && !failure) {
      const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      failure = withheld_error(r.get(), code_for_sqlstate(state != nullptr ? state : ""),
                               "opening the request's transaction failed");
    }
  }
  if (failure) return *failure;
  if (!binding || binding->pid.empty() || binding->xact_us.empty())
    return make_error("db.unavailable", "database unavailable: the server's answer to BEGIN was unreadable");
  return *binding;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Execution

Result<QueryResult> Database::query(const RequestContext& ctx, std::string_view sql,
                                    const std::vector<Param>& params) {
  if (ctx.guard_enabled)
    if (auto checked = check_sql(sql); !checked) return checked.error();
  // Only guard-checked SQL is prepared and cached (unchecked SQL could DEALLOCATE), and only
  // it is held to the cost ceiling (unchecked SQL, tests only, may not be one statement).
  RunOptions options;
  options.cacheable = ctx.guard_enabled;
  if (ctx.guard_enabled) options.cost_sql = sql;
  return run(ctx, sql, params, options);
}

Result<QueryResult> Database::query(const RequestContext& ctx, const GuardedQuery& checked,
                                    const std::vector<Param>& params) {
  if (checked.issuer() != guard_.get())
    return make_error("sql_guard.internal",
                      "the query was not checked by this database's SQL guard; refused");
  RunOptions options;
  options.cacheable = true;
  options.cost_sql = checked.sql();
  return run(ctx, checked.sql(), params, options);
}

Result<nlohmann::json> Database::explain(const RequestContext& ctx, std::string_view sql,
                                         const std::vector<Param>& params, bool analyze) {
  if (ctx.guard_enabled)
    if (auto checked = check_sql(sql); !checked) return checked.error();
  return run_explain(ctx, sql, params, analyze, ctx.guard_enabled);
}

Result<nlohmann::json> Database::explain(const RequestContext& ctx, const GuardedQuery& checked,
                                         const std::vector<Param>& params, bool analyze) {
  if (checked.issuer() != guard_.get())
    return make_error("sql_guard.internal",
                      "the query was not checked by this database's SQL guard; refused");
  return run_explain(ctx, checked.sql(), params, analyze, true);
}

Result<nlohmann::json> Database::run_explain(const RequestContext& ctx, std::string_view sql,
                                             const std::vector<Param>& params, bool analyze, bool guarded) {
  // The guard admitted exactly one plain SELECT; only then is the fixed prefix added.
  const std::string_view prefix = analyze ? "EXPLAIN (ANALYZE, FORMAT JSON) " : "EXPLAIN (FORMAT JSON) ";
  std::string text(prefix);
  text.append(sql);
  RunOptions options;
  options.cacheable = guarded;
  options.position_offset = prefix.size();
  if (analyze && guarded) options.cost_sql = sql;  // ANALYZE runs it: the same ceiling as query()
  auto r = run(ctx, text, params, options);
  if (!r) return r.error();
  if (r->rows.size() != 1 || r->rows[0].size() != 1 || !r->rows[0][0])
    return make_error(kStatementError,
                      "database error: EXPLAIN returned no plan within the result's byte limit");
  auto plan = nlohmann::json::parse(*r->rows[0][0], nullptr, false);
  if (plan.is_discarded())
    return make_error(kStatementError, "database error: EXPLAIN returned a plan that is not JSON");
  return redact_plan(plan);
}

Result<void> Database::check_sql(std::string_view sql) const {
  auto checked = guard_->check(sql);
  if (!checked) return checked.error();
  return {};
}

Result<QueryResult> Database::query_trusted(const RequestContext& ctx, std::string_view sql,
                                            const std::vector<Param>& params) {
  RunOptions options;
  options.cacheable = true;
  return run(ctx, sql, params, options);
}

namespace {

// How soon a caller's cancel reaches a running statement.
constexpr std::chrono::milliseconds kCancelPoll{50};

// Reads pipeline results with a watchdog: at the deadline it sends a protocol-level cancel
// (the server's own statement_timeout, which the SQL could change, is only a backstop).
class PipelineReader {
 public:
  PipelineReader(PGconn* conn, Clock::time_point deadline, std::chrono::milliseconds grace,
                 std::atomic<std::uint64_t>& cancels, CancellationToken caller, CancellationToken stopping)
      : conn_(conn),
        wait_until_(deadline),
        grace_(grace),
        cancels_(cancels),
        caller_(std::move(caller)),
        stopping_(std::move(stopping)) {}

  // False when the connection failed or the server did not answer a cancel in time.
  bool next(PgResult& out) {
    // The deadline holds even while results stream in without pause; so does the caller's cancel.
    if (Clock::now() >= wait_until_) {
      if (cancelled_) return false;
      cancel(true);
    }
    check_callers();
    while (true) {
      // Waits in slices, so that a caller's cancel is seen within kCancelPoll.
      const auto slice = cancelled_ ? wait_until_ : std::min(wait_until_, Clock::now() + kCancelPoll);
      auto outcome = wait_readable(conn_, slice);
      if (outcome == WaitOutcome::failed) return false;
      if (outcome == WaitOutcome::deadline) {
        if (check_callers()) continue;
        if (Clock::now() < wait_until_) continue;
        if (cancelled_) return false;
        cancel(true);
        continue;
      }
      out.reset(PQgetResult(conn_));
      return true;
    }
  }

  // The caller gave up, or the server is stopping: cancels the statement (once); true when it did.
  bool check_callers() {
    if (cancelled_) return false;
    if (stopping_.cancelled()) {
      cancel(false);
      server_stopping_ = true;
      return true;
    }
    if (caller_.cancelled()) {
      cancel(false);
      caller_gave_up_ = true;
      return true;
    }
    return false;
  }
  bool caller_gave_up() const { return caller_gave_up_; }
  bool server_stopping() const { return server_stopping_; }

  void cancel(bool for_deadline) {
    if (cancelled_) return;
    if (PGcancel* c = PQgetCancel(conn_)) {
      char buf[256];
      PQcancel(c, buf, sizeof buf);
      PQfreeCancel(c);
    }
    cancelled_ = true;
    deadline_hit_ = for_deadline;
    if (for_deadline) cancels_.fetch_add(1);
    wait_until_ = Clock::now() + grace_;
  }

  bool cancelled() const { return cancelled_; }
  bool deadline_hit() const { return deadline_hit_; }

 private:
  PGconn* conn_;
  Clock::time_point wait_until_;
  std::chrono::milliseconds grace_;
  std::atomic<std::uint64_t>& cancels_;
  CancellationToken caller_;
  CancellationToken stopping_;
  bool cancelled_ = false;
  bool deadline_hit_ = false;
  bool caller_gave_up_ = false;
  bool server_stopping_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Step 4: the call's statements on the query connection, in pipeline mode.
//
// Without a cost check, one round trip:
//   set context; [PREPARE]; the SQL; ROLLBACK; Sync.
// With one (guard-checked SQL whose verdict this session has not cached), two, in one
// transaction under the same context:
//   set context; [PREPARE]; EXPLAIN the SQL; Sync — then either
//   the SQL; ROLLBACK; Sync — or, above the ceiling, ROLLBACK; Sync.
// From the first flush on, the SQL may have reached the server: every failure is db.statement,
// with a fixed message (the server's text may quote row values).
class Database::Call {
 public:
  Call(Database& db, Session& session, const RequestContext& ctx, Clock::time_point deadline,
       std::string_view sql, const std::vector<Param>& params, const RunOptions& options)
      : db_(db),
        session_(session),
        q_(session.query.get()),
        ctx_(ctx),
        deadline_(deadline),
        sql_(sql),
        params_(params),
        options_(options),
        reader_(q_, deadline, db.config_.cancel_grace, db.watchdog_cancels_, ctx.cancel, ctx.stopping),
        drain_limit_(10 * ctx.max_rows + 10'000) {}

  // The cost ceiling (guard-checked SQL): this session's verdict on the same text, parameters
  // and context while it is fresh; otherwise execute() EXPLAINs the SQL first.
  void check_cost_cache(const std::string& context) {
    if (db_.config_.max_query_cost <= 0 || options_.cost_sql.empty()) return;
    cost_key_ = cost_cache_key(context, options_.cost_sql, params_);
    auto it = session_.costs.find(cost_key_);
    if (it == session_.costs.end() || it->second.until <= Clock::now()) {
      check_cost_ = true;
      return;
    }
    if (it->second.cost > db_.config_.max_query_cost) {
      db_.cost_refusals_.fetch_add(1);
      failure_ = too_costly(it->second.cost, db_.config_.max_query_cost);
    }
  }

  void execute(const std::string& sealed) {
    if (!failure_) {
      choose_statement();
      bind_values(sealed);
      run_batches();
    }
    if (reader_.cancelled()) healthy_ = false;  // a late cancel must never hit a later request
  }

  // The session's prepared-statement cache after the call.
  void keep_statement() {
    if (prepared_ok_) session_.statements.emplace(std::string(sql_), prepared_name_);
    if (statement_missing_) {
      session_.statements.clear();
      healthy_ = false;
    }
  }

  QueryResult& result() { return result_; }
  const std::optional<Error>& failure() const { return failure_; }
  bool healthy() const { return healthy_; }
  bool context_refused() const { return context_refused_; }

 private:
  // The statement the SQL runs as: this session's prepared one, one to prepare now, or unnamed.
  void choose_statement() {
    sql_text_ = std::string(sql_);
    if (auto it = session_.statements.find(sql_text_); it != session_.statements.end()) {
      statement_ = it->second;
    } else if (options_.cacheable && !db_.config_.transaction_pooler &&
               session_.statements.size() < kMaxCachedStatements &&
               sql_text_.size() <= kMaxCachedStatementBytes) {
      statement_ = "larder_q" + std::to_string(++session_.statement_seq);
      need_prepare_ = true;
    }
    prepared_name_ = need_prepare_ ? statement_ : "";
    if (check_cost_) cost_text_ = std::string(kCostPrefix).append(options_.cost_sql);
  }

  // The parameters of the caller's SQL and of the context step.
  void bind_values(const std::string& sealed) {
    for (const auto& p : params_) values_.push_back(p ? p->c_str() : nullptr);
    const auto statement_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()) +
        db_.config_.cancel_grace;
    timeout_text_ = std::to_string(std::max<long long>(1, statement_timeout.count()));
    context_params_ = {sealed.c_str(), timeout_text_.c_str(), db_.search_path_.c_str()};
  }

  void run_batches() {
    std::vector<Step> first = {Step::context};
    if (need_prepare_) first.push_back(Step::prepare);
    if (check_cost_) {
      first.push_back(Step::cost);
    } else {
      first.push_back(Step::user);
      first.push_back(Step::rollback);
    }
    if (PQenterPipelineMode(q_) != 1 || !send_batch(first)) {
      failure_ =
          make_error(kStatementError,
                     "database error: the connection to PostgreSQL failed while the statement was sent (it "
                     "will be re-established on the next call)");
      healthy_ = false;
      return;
    }
    if (read_batch(first) && check_cost_) run_after_cost_check();
    leave_pipeline();
  }

  // The second round trip of a cost check: the SQL unless the estimate is above the ceiling,
  // then ROLLBACK.
  void run_after_cost_check() {
    std::vector<Step> second;
    if (!failure_) {
      db_.cost_checks_.fetch_add(1);
      // An estimate that cannot be read counts as infinite (fail closed).
      const double cost = measured_cost_ ? *measured_cost_ : std::numeric_limits<double>::infinity();
      if (cost_key_.size() <= kMaxCostKeyBytes) {
        if (session_.costs.size() >= kMaxCachedCosts) session_.costs.clear();
        session_.costs[cost_key_] = Session::CostVerdict{cost, Clock::now() + kCostVerdictTtl};
      }
      if (cost > db_.config_.max_query_cost) {
        db_.cost_refusals_.fetch_add(1);
        failure_ = too_costly(cost, db_.config_.max_query_cost);
      } else {
        second.push_back(Step::user);
      }
    }
    second.push_back(Step::rollback);
    if (!send_batch(second)) {
      healthy_ = false;
      if (!failure_)
        failure_ =
            make_error(kStatementError,
                       "database error: the connection to PostgreSQL failed while the statement was sent "
                       "(it will be re-established on the next call)");
      return;
    }
    (void)read_batch(second);
  }

  // Back to a plain connection outside any transaction, or unhealthy.
  void leave_pipeline() {
    if (healthy_ && PQexitPipelineMode(q_) != 1) healthy_ = false;
    if (healthy_ && PQtransactionStatus(q_) != PQTRANS_IDLE) {
      auto rb = exec_script(q_, "ROLLBACK", Clock::now() + db_.config_.cancel_grace);
      if (!rb) healthy_ = false;
    }
  }

  bool send_step(Step step) {
    const int n_values = static_cast<int>(values_.size());
    const char* const* value_ptr = values_.empty() ? nullptr : values_.data();
    switch (step) {
      case Step::context:
        return db_.config_.transaction_pooler
                   ? PQsendQueryParams(q_, kSetContextSql, 3, nullptr, context_params_.data(), nullptr,
                                       nullptr, 0) == 1
                   : PQsendQueryPrepared(q_, kSetContext, 3, context_params_.data(), nullptr, nullptr, 0) ==
                         1;
      case Step::prepare:
        return PQsendPrepare(q_, statement_.c_str(), sql_text_.c_str(), n_values, nullptr) == 1;
      case Step::cost:
        return PQsendQueryParams(q_, cost_text_.c_str(), n_values, nullptr, value_ptr, nullptr, nullptr, 0) ==
               1;
      case Step::user:
        return statement_.empty() ? PQsendQueryParams(q_, sql_text_.c_str(), n_values, nullptr, value_ptr,
                                                      nullptr, nullptr, 0) == 1
                                  : PQsendQueryPrepared(q_, statement_.c_str(), n_values, value_ptr, nullptr,
                                                        nullptr, 0) == 1;
      case Step::rollback:
        return PQsendQueryParams(q_, "ROLLBACK", 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    }
    return false;
  }

  bool send_batch(const std::vector<Step>& steps) {
    for (Step step : steps)
      if (!send_step(step)) return false;
    return PQpipelineSync(q_) == 1 && PQflush(q_) == 0;
  }

  // Reads one batch's results up to its sync marker. False when the session is unusable.
  bool read_batch(const std::vector<Step>& steps) {
    std::size_t index = 0;
    if (steps.front() == Step::user) PQsetSingleRowMode(q_);  // before any read of its results
    while (true) {
      PgResult r;
      if (!reader_.next(r)) {
        healthy_ = false;  // the session is closed: that also ends the server-side transaction
        note_reader_failure();
        return false;
      }
      if (!r) {
        ++index;
        if (index < steps.size() && steps[index] == Step::user) PQsetSingleRowMode(q_);
        if (index > steps.size()) return unexpected_state();
        continue;
      }
      auto st = PQresultStatus(r.get());
      if (st == PGRES_PIPELINE_SYNC) {
        if (index == steps.size()) return true;
        return unexpected_state();
      }
      if (index >= steps.size()) return unexpected_state();
      if (!take_result(r.get(), st, steps[index])) return false;
    }
  }

  bool unexpected_state() {
    healthy_ = false;
    if (!failure_) failure_ = make_error(kStatementError, "database error: unexpected pipeline state");
    return false;
  }

  // The reader gave up: the connection failed, or a cancel was not answered in time.
  void note_reader_failure() {
    // We cancelled a runaway result ourselves after the caps were reached and it did not wind
    // down within the grace period: the rows kept are complete as a truncated answer.
    if (cap_cancel_ && result_.truncated && !reader_.deadline_hit() && !failure_) return;
    if (reader_.server_stopping())
      failure_ = make_error(kStatementError, std::string("database error: ") + kStoppingReason +
                                                 ", and the server did not answer the cancel in time");
    else if (reader_.caller_gave_up())
      failure_ = make_error(kStatementError,
                            "database error: the caller cancelled the call, and the server did not answer "
                            "the cancel in time");
    else if (reader_.deadline_hit())
      failure_ =
          make_error(kStatementError,
                     "database error: deadline exceeded, and the server did not answer the cancel in time");
    else if (!failure_)
      failure_ = make_error(kStatementError,
                            "database error: the connection to PostgreSQL failed while the statement ran (it "
                            "will be re-established on the next call)");
  }

  // One result of `step`. False when the session is unusable.
  bool take_result(PGresult* r, ExecStatusType st, Step step) {
    switch (st) {
      case PGRES_SINGLE_TUPLE:
      case PGRES_TUPLES_OK:
        if (step == Step::user) {
          take_columns(r);
          take_rows(r);
          if (st == PGRES_TUPLES_OK) take_command_tag(r);
        } else if (step == Step::cost && PQntuples(r) == 1 && PQnfields(r) == 1 && !PQgetisnull(r, 0, 0)) {
          measured_cost_ = plan_total_cost(
              std::string_view(PQgetvalue(r, 0, 0), static_cast<std::size_t>(PQgetlength(r, 0, 0))));
        }
        return true;
      case PGRES_COMMAND_OK:
        if (step == Step::prepare) prepared_ok_ = true;
        if (step == Step::user) take_command_tag(r);
        return true;
      case PGRES_FATAL_ERROR:
        if (!failure_) note_error(r, step);
        return true;
      case PGRES_PIPELINE_ABORTED:
        return true;  // an earlier statement failed; its error is already recorded
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        healthy_ = false;
        if (!failure_) failure_ = make_error(kStatementError, "database error: COPY is not allowed");
        return false;
      default:
        if (!failure_) failure_ = statement_failure(r, step);
        return true;
    }
  }

  void take_command_tag(PGresult* r) {
    const char* tag = PQcmdStatus(r);
    result_.command = tag != nullptr ? tag : "";
  }

  // The first error of the call, as the caller hears it.
  void note_error(const PGresult* r, Step step) {
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const bool was_cancel = state != nullptr && std::string_view(state) == "57014";
    if (state != nullptr && std::string_view(state) == kContextRefusedSqlstate) context_refused_ = true;
    // Our cached statement was deallocated (only unguarded SQL can do that).
    if (state != nullptr && std::string_view(state) == "26000") statement_missing_ = true;
    if (was_cancel && reader_.deadline_hit()) {
      failure_ = make_error(kStatementError,
                            "database error 57014 (operator intervention): deadline exceeded, the query was "
                            "cancelled by the watchdog");
    } else if (was_cancel && reader_.server_stopping()) {
      failure_ =
          make_error(kStatementError, std::string("database error 57014 (operator intervention): ") +
                                          kStoppingReason + ", and the statement was cancelled with it");
    } else if (was_cancel && reader_.caller_gave_up()) {
      failure_ = make_error(kStatementError,
                            "database error 57014 (operator intervention): the caller cancelled the "
                            "call, and the statement was cancelled with it");
    } else if (was_cancel && cap_cancel_) {
      // We cancelled it ourselves after the caps were reached: a truncated answer.
    } else if (context_refused_) {
      failure_ = make_error("db.bad_context",
                            "database error LX001: the database refused the request context (a key "
                            "rotated or re-made since this server read it, or a context set by the "
                            "query itself); the key is read again on the next call");
    } else {
      failure_ = statement_failure(r, step);
    }
  }

  Error statement_failure(const PGresult* r, Step step) const {
    const bool caller_text = step == Step::prepare || step == Step::user || step == Step::cost;
    const std::size_t offset =
        step == Step::cost ? std::string_view(kCostPrefix).size() : options_.position_offset;
    return withheld_error(
        r, kStatementError,
        caller_text ? "the query failed" : "a statement of the request's transaction failed",
        caller_text ? offset : std::string::npos);
  }

  void take_columns(const PGresult* r) {
    if (columns_known_) return;
    columns_known_ = true;
    const int n = PQnfields(r);
    for (int i = 0; i < n; ++i) {
      Column c;
      c.name = PQfname(r, i);
      c.oid = PQftype(r, i);
      bytes_ += json_name_bytes(c.name);
      result_.columns.push_back(std::move(c));
    }
  }

  // Rows within ctx.max_rows and ctx.max_bytes (as the JSON answer counts them); past them the
  // result is truncated, and a server that keeps producing rows is cancelled.
  void take_rows(const PGresult* r) {
    const int nf = PQnfields(r);
    for (int row = 0; row < PQntuples(r); ++row) {
      if (result_.truncated) {
        ++extra_rows_;
        if (extra_rows_ > drain_limit_ && !reader_.cancelled()) {
          reader_.cancel(false);  // stop the server producing rows nobody will read
          cap_cancel_ = true;
        }
        continue;
      }
      // What the row costs in the JSON answer: each value next to its column name.
      std::size_t row_bytes = 2;
      for (int f = 0; f < nf; ++f)
        row_bytes +=
            json_name_bytes(result_.columns[static_cast<std::size_t>(f)].name) + json_value_bytes(r, row, f);
      if (result_.rows.size() >= ctx_.max_rows || bytes_ + row_bytes > ctx_.max_bytes) {
        result_.truncated = true;
        ++extra_rows_;
        continue;
      }
      bytes_ += row_bytes;
      std::vector<std::optional<std::string>> values_out;
      values_out.reserve(static_cast<std::size_t>(nf));
      for (int f = 0; f < nf; ++f) {
        if (PQgetisnull(r, row, f)) {
          values_out.emplace_back(std::nullopt);
        } else {
          values_out.emplace_back(
              std::string(PQgetvalue(r, row, f), static_cast<std::size_t>(PQgetlength(r, row, f))));
        }
      }
      result_.rows.push_back(std::move(values_out));
    }
  }

  Database& db_;
  Session& session_;
  PGconn* q_;
  const RequestContext& ctx_;
  Clock::time_point deadline_;
  std::string_view sql_;
  const std::vector<Param>& params_;
  const RunOptions& options_;
  PipelineReader reader_;

  // What is sent.
  std::string sql_text_;
  std::string statement_;      // "" = unnamed
  std::string prepared_name_;  // statement prepared by this call ("" if none)
  bool need_prepare_ = false;
  bool check_cost_ = false;
  std::string cost_key_;
  std::string cost_text_;
  std::vector<const char*> values_;
  std::string timeout_text_;
  std::array<const char*, 3> context_params_{};

  // What came back.
  QueryResult result_;
  std::optional<Error> failure_;
  bool healthy_ = true;
  bool cap_cancel_ = false;
  bool prepared_ok_ = false;
  bool statement_missing_ = false;
  bool context_refused_ = false;
  std::optional<double> measured_cost_;
  bool columns_known_ = false;
  std::size_t bytes_ = 0;
  std::size_t extra_rows_ = 0;
  const std::size_t drain_limit_;
};

// ---------------------------------------------------------------------------------------
// One call, step by step

Result<QueryResult> Database::run(const RequestContext& ctx, std::string_view sql,
                                  const std::vector<Param>& params, const RunOptions& options) {
  // 1. What can be refused before anything is sent; the context's facts, the key to seal them.
  const auto deadline =
      ctx.deadline == Clock::time_point{} ? Clock::now() + config_.default_timeout : ctx.deadline;
  if (auto valid = check_request(ctx, sql, params, deadline); !valid) return valid.error();
  auto context = encode_context(ctx);
  if (!context) return context.error();
  auto key = context_key(deadline);
  if (!key) return key.error();
  // 2. A session inside the request's read-only transaction, on a replica or the primary.
  auto transaction = begin_transaction(deadline);
  if (!transaction) return transaction.error();
  // 3. The context sealed to that transaction.
  const std::string sealed = seal_for_call(*key, transaction->binding, deadline, *context);
  // 4. The cost ceiling, then the SQL, its rows within the caps, ROLLBACK.
  Call call(*this, *transaction->session, ctx, deadline, sql, params, options);
  call.check_cost_cache(*context);
  call.execute(sealed);
  call.keep_statement();
  // 5. Column type names, the session back to the pool (or closed), the answer.
  return finish(std::move(*transaction), call);
}

// Step 1: what can be refused before anything is sent.
Result<void> Database::check_request(const RequestContext& ctx, std::string_view sql,
                                     const std::vector<Param>& params, Clock::time_point deadline) const {
  if (Clock::now() >= deadline)
    return make_error("db.timeout", "deadline already passed before the query started");
  if (ctx.max_rows == 0 && ctx.max_bytes == 0)
    return make_error("db.bad_request", "max_rows and max_bytes are both 0");
  if (sql.find('\0') != std::string_view::npos)
    return make_error("db.bad_request", "SQL contains a NUL byte");
  for (const auto& p : params)
    if (p && p->find('\0') != std::string::npos)
      return make_error("db.bad_request", "a parameter contains a NUL byte");
  return {};
}

// Step 2: a session, and the request's transaction on it: BEGIN READ ONLY and the backend's pid
// and transaction start, which the context is sealed to (one round trip).
// The target: a replica that is up and fresh enough, else the primary. A replica that fails
// before anything of the caller's was sent is reported to the replica set and the request moves
// on (another replica, or the primary): it sees nothing of it.
Result<Database::Transaction> Database::begin_transaction(Clock::time_point deadline) {
  std::size_t target = pick_target();
  for (int attempt = 0;; ++attempt) {
    auto s = acquire(target, deadline);
    const bool may_move =
        target > 0 && Clock::now() < deadline && attempt <= static_cast<int>(targets_.size());
    if (!s && may_move) {
      replica_set_->report_failure(target - 1);
      ++replica_failovers_;
      target = pick_target();
      continue;
    }
    if (!s) return s.error();
    std::unique_ptr<Session> session = std::move(*s);
    auto b = bind_transaction(session->query.get(), !config_.transaction_pooler, deadline);
    if (b) {
      if (target > 0) ++replica_calls_;
      return Transaction{std::move(session), std::move(*b), target};
    }
    const bool broken = connection_broken(session->query.get()) || b.error().code == "db.unavailable";
    const bool reused = session->reused;
    release(std::move(session), false);
    if (broken) invalidate_idle(target);
    if (broken && may_move) {
      replica_set_->report_failure(target - 1);
      ++replica_failovers_;
      target = pick_target();
      continue;
    }
    // A session that sat idle may have lost its server (a restart): nothing of the caller's
    // was sent, so retry once on a fresh one.
    if (broken && reused && attempt == 0) continue;
    return b.error();
  }
}

// Step 3: the context, sealed to this transaction, valid until the deadline (and the grace a
// cancel gets).
std::string Database::seal_for_call(const ContextKey& key, const TransactionBinding& binding,
                                    Clock::time_point deadline, const std::string& context) const {
  const auto remaining =
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now() + config_.cancel_grace);
  return seal_context(key, binding, binding.now_us + std::max<long long>(1, remaining.count()), context);
}

// Step 5: column type names (built-ins are static; others looked up once, outside the
// request), the session back to the pool (or closed), and the answer.
Result<QueryResult> Database::finish(Transaction transaction, Call& call) {
  QueryResult& result = call.result();
  PGconn* q = transaction.session->query.get();
  for (auto& c : result.columns)
    c.type = type_name(call.healthy() ? q : nullptr, c.oid, Clock::now() + config_.cancel_grace);

  if (call.context_refused()) forget_context_key();
  const bool broken = connection_broken(q);
  release(std::move(transaction.session), call.healthy());
  if (broken) {
    invalidate_idle(transaction.target);
    // A replica that died mid-request: this request fails (its SQL was sent), the next ones go
    // elsewhere until a probe finds it up again.
    if (transaction.target > 0) replica_set_->report_failure(transaction.target - 1);
  }
  if (call.failure()) return *call.failure();
  return std::move(result);
}

}  // namespace larder::db
