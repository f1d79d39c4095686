// SqlGuard — the allow-list check every LLM-written query passes before it reaches PostgreSQL.
//
// The SQL is parsed with libpg_query (PostgreSQL 15's own grammar), and the raw parse tree is
// walked with an allow-list: only node types known to be harmless inside one SELECT are
// accepted, every function must be on the policy's function list, every relation on the
// policy's relation list, and every cast must target an ordinary data type. Anything the
// walker does not know is refused, so a parser feature we have not thought about fails closed.
//
// What is refused (the error names the construct):
//   - more or fewer than one statement; any statement but SELECT (INSERT/UPDATE/DELETE/MERGE,
//     DDL, SET/RESET/SHOW, COPY, DO, CALL, EXPLAIN, LISTEN, PREPARE, EXECUTE, BEGIN, ...);
//   - data-modifying WITH, SELECT INTO, FOR UPDATE/SHARE locking clauses, ROWS FROM, XML
//     constructs, CURRENT_USER-style session functions;
//   - functions not on GuardPolicy::allowed_functions, or always denied (set_config,
//     current_setting, pg_*, lo_*, dblink*, txid_*, nextval/setval, *_to_xml, ...; see
//     docs/sql-guard.md), or qualified with a schema other than pg_catalog/public;
//   - relations not on GuardPolicy::allowed_relations (catalogs, information_schema,
//     unqualified pg_* names), database-qualified names, system columns (ctid, xmin, ...);
//   - casts to types outside the ordinary-type list (regclass, regproc, oid, xml, ...);
//   - input larger than max_query_bytes, nesting deeper than max_nesting_depth, NUL bytes,
//     invalid UTF-8.
//
// The guard is one lock among four: the query still runs as a restricted role, in a read-only
// transaction with timeouts, under Row-Level Security. The DB layer must keep
// standard_conforming_strings=on, client_encoding=UTF8 and search_path=pg_catalog,public so
// that the server reads the text exactly as libpg_query did (docs/sql-guard.md).
//
// Thread safety: check() is const; its only state is the verdict cache (an LruCache of
// accepted texts, internally locked: a verdict depends only on the text and the policy), so
// one SqlGuard may serve all threads.
// It uses up to ~0.5 MB of the calling thread's stack (queries over 2 kB are parsed on a
// helper thread with its own, larger stack), so do not call it on small coroutine stacks.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/lru_cache.h"
#include "base/result.h"

namespace larder::db {

// Functions a query may call when the policy does not say otherwise: aggregates, window
// functions, math, string, date/time, JSON and array functions used by analytics SQL.
// Always-denied functions (see above) are refused even if a policy lists them.
std::set<std::string> default_allowed_functions();

struct GuardPolicy {
  // Schema-qualified relation names, e.g. {"public.orders"}. A query's unqualified
  // name resolves to schema "public" (names starting with "pg_" are refused when unqualified,
  // since PostgreSQL would look them up in pg_catalog first).
  std::set<std::string> allowed_relations;
  // Where an unqualified name is looked up, in order (after pg_catalog): the schema of the
  // masking views first when there are some, then public (policy::Policy::search_path). The
  // database session uses the same search_path.
  std::vector<std::string> search_path = {"public"};
  // Lower-case function names (as PostgreSQL folds them). Callable unqualified or qualified
  // with pg_catalog or public.
  std::set<std::string> allowed_functions = default_allowed_functions();
  std::size_t max_query_bytes = 100000;
  // Maximum depth of nested parse-tree nodes (expressions, subqueries, clauses).
  int max_nesting_depth = 64;
  // Accepted texts remembered (LRU) so a repeated query is not parsed again: the verdict is a
  // function of the text and this policy only. Texts over 16 KiB are always parsed. 0 = off.
  std::size_t verdict_cache_entries = 512;
};

class SqlGuard;

// A query the guard accepted: its text and what it touches (the audit log and the taint
// ledger read this). Only SqlGuard::check makes one, so code handed a GuardedQuery runs SQL
// that was checked, by the guard it names, without parsing it again.
struct GuardedQuery {
  const std::string& sql() const { return sql_; }     // the text exactly as checked
  const SqlGuard* issuer() const { return issuer_; }  // the guard that accepted it

  std::string normalized_sql;       // pg_query_normalize form: constants replaced by $n
  std::string fingerprint;          // pg_query_fingerprint, 16 hex digits; same shape => same value
  std::set<std::string> relations;  // schema-qualified base relations ("public.orders")
  // relation -> columns referenced; "*" when every column is read (SELECT *, t.*, whole-row
  // references). Best effort: an unqualified column that cannot be tied to one relation
  // without the catalog is listed under every base relation of its FROM list.
  std::map<std::string, std::set<std::string>> columns;
  int param_count = 0;  // highest $n referenced (0: none)

 private:
  friend class SqlGuard;
  std::string sql_;
  const SqlGuard* issuer_ = nullptr;
};

class SqlGuard {
 public:
  explicit SqlGuard(GuardPolicy policy);

  // Accepts exactly one safe SELECT or explains why not. Error codes:
  //   "sql_guard.syntax"   the text does not parse (message carries the position)
  //   "sql_guard.limit"    too large, too deeply nested, NUL byte, invalid UTF-8
  //   "sql_guard.rejected" parses but uses a refused construct (message names it)
  //   "sql_guard.internal" the parser could not be run (resources); fail closed
  larder::Result<GuardedQuery> check(std::string_view sql) const;

  const GuardPolicy& policy() const { return policy_; }
  LruCache<GuardedQuery>::Stats cache_stats() const { return verdicts_->stats(); }

 private:
  GuardPolicy policy_;
  std::unique_ptr<LruCache<GuardedQuery>> verdicts_;
};

}  // namespace larder::db
