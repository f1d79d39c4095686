// The differential oracle: on both examples (healthcare, saas), for many seeded random token
// contexts and a corpus of queries, the rows and values Larder returns — with the SQL guard on
// and with it off — equal what the superuser computes by applying the policy file's rules
// directly. Any extra row, missing row or unmasked value fails.
//
// The oracle is independent of the SQL Larder generates (src/policy/apply.cpp): it runs as the
// superuser (no row-level security) in one transaction per (context, query), creates TEMP
// VIEWS named like each exposed table (an unqualified name resolves to pg_temp first), each
// written here from the parsed policy::Policy model — the declared columns, masked ones
// computed from the mask's definition (docs/policy.md) unless the context's unmask rights name
// them, and a WHERE clause that is the rules themselves (the context's values as escaped
// literals, join paths as a plain EXISTS over the hop tables, `when` lists checked here) —
// then runs the corpus query text unchanged, then ROLLBACK.
//
// Also here: the forgery battery with the guard off against the generic (fact-based) context,
// on both examples: the sealed context emptied, replaced or edited, Larder's private tables
// and context function written or read, the rule functions called directly, SET ROLE, and a
// sealed context captured in one request replayed in another under another context. None may
// yield a row (or a clear value) beyond what the oracle computes for the current context. It
// runs with the query connections on the primary, on a streaming hot standby, and through
// PgBouncer in transaction mode (docs/database.md, "The request context").
//
// And the oracle is not vacuous: every corpus query returns rows under some context, and locks
// loosened by hand (a permissive policy of someone else's, a mask showing more, a `when` list
// with one more value) make the differential run fail (ZzTheOracleCatchesPlantedLeaks).
//
// The seed is fixed and printed; LARDER_ORACLE_SEED=<n> replays another.
#include "db/database.h"
#include "examples/healthcare/generate.h"
#include "examples/saas/generate.h"
#include "policy/apply.h"
#include "policy/policy.h"
#include "support/pg_bouncer.h"
#include "support/pg_cluster.h"
#include "support/pg_standby.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace larder::test {
namespace {

constexpr std::uint32_t kDefaultOracleSeed = 20250701;
constexpr std::size_t kRandomContexts = 40;  // per example, plus the fixed edge cases
constexpr std::size_t kMinCorpus = 25;       // queries per example, at least
constexpr std::size_t kMaxReportedFailures = 25;

std::uint32_t oracle_seed() {
  if (const char* s = std::getenv("LARDER_ORACLE_SEED"); s != nullptr && *s != '\0')
    return static_cast<std::uint32_t>(std::strtoul(s, nullptr, 10));
  return kDefaultOracleSeed;
}

db::Clock::time_point soon(int seconds = 60) {
  return db::Clock::now() + std::chrono::seconds(seconds);
}

// ---------------------------------------------------------------------------------------
// Results as multisets of rows

using Row = std::vector<std::optional<std::string>>;

struct Table {
  std::vector<std::string> columns;
  std::vector<Row> rows;
};

Table from_pg(const PGresult* r) {
  Table t;
  const int fields = PQnfields(r);
  for (int c = 0; c < fields; ++c) t.columns.emplace_back(PQfname(r, c));
  for (int i = 0; i < PQntuples(r); ++i) {
    Row row;
    for (int c = 0; c < fields; ++c) {
      if (PQgetisnull(r, i, c) != 0) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(r, i, c), static_cast<std::size_t>(PQgetlength(r, i, c))));
      }
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

Table from_larder(const db::QueryResult& r) {
  Table t;
  for (const auto& c : r.columns) t.columns.push_back(c.name);
  t.rows = r.rows;
  return t;
}

// Columns in name order (stable: duplicate names keep their order), rows sorted. NULL sorts
// before every value and differs from ''.
Table normalized(const Table& in) {
  std::vector<std::size_t> order(in.columns.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return in.columns[a] < in.columns[b]; });
  Table out;
  for (std::size_t i : order) out.columns.push_back(in.columns[i]);
  for (const auto& row : in.rows) {
    Row r;
    for (std::size_t i : order) r.push_back(i < row.size() ? row[i] : std::nullopt);
    out.rows.push_back(std::move(r));
  }
  std::sort(out.rows.begin(), out.rows.end());
  return out;
}

std::string show(const Row& row) {
  std::string s = "(";
  for (std::size_t i = 0; i < row.size(); ++i)
    s += (i ? " | " : "") + (row[i] ? *row[i] : std::string("NULL"));
  return s + ")";
}

std::string show_columns(const std::vector<std::string>& cols) {
  std::string s;
  for (const auto& c : cols) s += (s.empty() ? "" : ", ") + c;
  return "[" + s + "]";
}

// "" when `larder` and `oracle` hold the same columns and the same multiset of rows; otherwise
// what differs: the rows only Larder returned (extra: a leak) and the rows it lacks (missing).
std::string difference(const Table& larder_in, const Table& oracle_in) {
  const Table larder = normalized(larder_in);
  const Table oracle = normalized(oracle_in);
  std::ostringstream out;
  if (larder.columns != oracle.columns) {
    out << "columns differ: larder " << show_columns(larder.columns) << ", oracle "
        << show_columns(oracle.columns);
    return out.str();
  }
  std::vector<Row> extra, missing;
  std::set_difference(larder.rows.begin(), larder.rows.end(), oracle.rows.begin(), oracle.rows.end(),
                      std::back_inserter(extra));
  std::set_difference(oracle.rows.begin(), oracle.rows.end(), larder.rows.begin(), larder.rows.end(),
                      std::back_inserter(missing));
  if (extra.empty() && missing.empty()) return "";
  out << "larder " << larder.rows.size() << " rows, oracle " << oracle.rows.size() << " rows; columns "
      << show_columns(larder.columns) << "\n  " << extra.size()
      << " EXTRA row(s) (Larder returned, the rules do not allow)";
  for (std::size_t i = 0; i < extra.size() && i < 5; ++i) out << "\n    + " << show(extra[i]);
  out << "\n  " << missing.size() << " missing row(s) (the rules allow, Larder did not return)";
  for (std::size_t i = 0; i < missing.size() && i < 5; ++i) out << "\n    - " << show(missing[i]);
  return out.str();
}

// ---------------------------------------------------------------------------------------
// Token contexts

struct Context {
  std::map<std::string, std::vector<std::string>> facts;  // one-argument facts
  std::vector<std::string> unmask;                        // right("unmask", ...) values

  const std::vector<std::string>& values(const std::string& fact) const {
    static const std::vector<std::string> none;
    auto it = facts.find(fact);
    return it == facts.end() ? none : it->second;
  }
  bool unmasks(const std::string& right) const {
    return std::find(unmask.begin(), unmask.end(), right) != unmask.end();
  }
  db::RequestContext request(bool guard) const {
    db::RequestContext ctx;
    for (const auto& [name, vals] : facts)
      for (const auto& v : vals) ctx.add(name, v);
    ctx.unmask = unmask;
    ctx.guard_enabled = guard;
    ctx.max_rows = 1'000'000;
    ctx.max_bytes = 256u << 20;
    ctx.deadline = soon(30);
    return ctx;
  }
  std::string describe() const {
    std::string s = "{";
    for (const auto& [name, vals] : facts) {
      s += name + "=[";
      for (std::size_t i = 0; i < vals.size(); ++i) s += (i ? ", " : "") + ("'" + vals[i] + "'");
      s += "] ";
    }
    s += "unmask=[";
    for (std::size_t i = 0; i < unmask.size(); ++i) s += (i ? ", " : "") + ("'" + unmask[i] + "'");
    return s + "]}";
  }
};

std::size_t below(std::mt19937& rng, std::size_t n) {
  return n == 0 ? 0 : static_cast<std::size_t>(rng() % n);
}
bool chance(std::mt19937& rng, unsigned percent) {
  return rng() % 100 < percent;
}

// `count` distinct entries of `from`, in random order.
std::vector<std::string> draw(std::mt19937& rng, std::vector<std::string> from, std::size_t count) {
  std::vector<std::string> out;
  while (out.size() < count && !from.empty()) {
    const std::size_t i = below(rng, from.size());
    out.push_back(from[i]);
    from.erase(from.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The oracle

std::string ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string qualified_sql(const std::string& qualified) {
  const auto dot = qualified.find('.');
  return ident(qualified.substr(0, dot)) + "." + ident(qualified.substr(dot + 1));
}

// A masked value as docs/policy.md defines the masks, written here without Larder's functions.
std::string mask_sql(policy::MaskKind kind, const std::string& v) {
  switch (kind) {
    case policy::MaskKind::kEmail:  // first character, "***", the '@' and what follows
      return "CASE WHEN position('@' IN " + v + ") > 1 THEN substring(" + v +
             " FROM 1 FOR 1) || '***' || substring(" + v + " FROM position('@' IN " + v + ")) WHEN " + v +
             " IS NULL THEN NULL ELSE '***' END";
    case policy::MaskKind::kLast4:  // "****" and the last four characters, or "****"
      return "CASE WHEN char_length(" + v + ") > 4 THEN '****' || substring(" + v + " FROM char_length(" + v +
             ") - 3) WHEN " + v + " IS NULL THEN NULL ELSE '****' END";
    case policy::MaskKind::kRedact:
      return "CASE WHEN " + v + " IS NULL THEN NULL ELSE '***' END";
  }
  return "NULL";
}

class Oracle {
 public:
  explicit Oracle(const PgCluster& cluster) : policy_(cluster.policy()) {
    auto c = cluster.state().admin().connect(soon());
    if (!c) throw std::runtime_error("oracle: admin connection: " + c.error().message);
    conn_ = std::move(*c);
    // The session's temporary schema, made once and committed: otherwise every rolled-back
    // transaction would create (and drop) it again.
    if (auto t = db::exec_script(conn_.get(), "CREATE TEMP TABLE oracle_anchor (x integer)", soon()); !t)
      throw std::runtime_error("oracle: " + t.error().message);
    // The column order Larder exposes: the masking view's for a masked table, the table's
    // own (its declared columns) otherwise. Values are compared by column name anyway.
    for (const auto& rel : policy_.relations) {
      const bool masked = rel.masked();
      const Table cols = admin(
          "SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = "
          "(pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident($2))::regclass "
          "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
          {masked ? policy_.view_schema : rel.schema, rel.name});
      for (const auto& row : cols.rows) {
        if (rel.column(*row[0]) != nullptr) order_[rel.qualified()].push_back(*row[0]);
      }
      if (order_[rel.qualified()].size() != rel.columns.size())
        throw std::runtime_error("oracle: " + rel.qualified() + " does not expose its declared columns");
    }
  }

  const policy::Policy& policy() const { return policy_; }

  // Runs `sql` as the superuser and returns its rows; throws on failure (test code).
  Table admin(const std::string& sql, const std::vector<db::Param>& params = {}) {
    auto r = db::exec_params(conn_.get(), sql, params, soon());
    if (!r) throw std::runtime_error("oracle: admin query failed: " + r.error().message + ": " + sql);
    return from_pg(r->get());
  }

  std::string literal(std::string_view v) const {
    char* s = PQescapeLiteral(conn_.get(), v.data(), v.size());
    if (s == nullptr) throw std::runtime_error("oracle: PQescapeLiteral failed");
    std::string out(s);
    PQfreemem(s);
    return out;
  }

  // The context's values of `fact`, as typed literals: "('a'::uuid), ..."; "" when none.
  std::string value_list(const Context& ctx, const std::string& fact) const {
    const policy::Fact* f = policy_.fact(fact);
    if (f == nullptr || f->args.size() != 1)
      throw std::runtime_error("oracle: only one-argument facts are modelled (" + fact + ")");
    std::string list;
    for (const auto& v : ctx.values(fact))
      list += (list.empty() ? "" : ", ") + literal(v) + "::" + std::string(policy::pg_type(f->args[0]));
    return list;
  }

  // Whether the rule's `when` condition holds for the context.
  static bool applies(const policy::RowRule& rule, const Context& ctx) {
    if (rule.when_fact.empty()) return true;
    for (const auto& v : ctx.values(rule.when_fact))
      if (std::find(rule.when_any_of.begin(), rule.when_any_of.end(), v) != rule.when_any_of.end())
        return true;
    return false;
  }

  // The rows of `rel` (alias t) the rules let the context see, as a predicate.
  std::string row_filter(const policy::Relation& rel, const Context& ctx) const {
    if (rel.everyone) return "true";
    std::string terms;
    for (const auto& rule : rel.rules) {
      if (rule.columns.size() != 1)
        throw std::runtime_error("oracle: only one-column rules are modelled (" + rel.qualified() + ")");
      if (!applies(rule, ctx)) continue;
      const std::string list = value_list(ctx, rule.fact);
      if (list.empty()) continue;
      std::string term;
      if (rule.via.empty()) {
        term = "t." + ident(rule.columns[0]) + " IN (" + list + ")";
      } else {
        // The path from this row to a row whose column matches a value: every hop table read
        // whole (the superuser has no row-level security).
        std::string from = qualified_sql(rule.via[0].relation) + " AS h1";
        for (std::size_t i = 1; i < rule.via.size(); ++i) {
          const std::string prev = "h" + std::to_string(i), next = "h" + std::to_string(i + 1);
          from += " JOIN " + qualified_sql(rule.via[i].relation) + " AS " + next + " ON " + next + "." +
                  ident(rule.via[i].target) + " = " + prev + "." + ident(rule.via[i].column);
        }
        const std::string last = "h" + std::to_string(rule.via.size());
        term = "EXISTS (SELECT 1 FROM " + from + " WHERE h1." + ident(rule.via[0].target) + " = t." +
               ident(rule.via[0].column) + " AND " + last + "." + ident(rule.columns[0]) + " IN (" + list +
               "))";
      }
      terms += (terms.empty() ? "" : " OR ") + ("(" + term + ")");
    }
    return terms.empty() ? "false" : terms;
  }

  // CREATE TEMP VIEW statements for every exposed table, for this context.
  std::string views_sql(const Context& ctx) const {
    std::string sql;
    for (const auto& rel : policy_.relations) {
      if (rel.schema != "public")
        throw std::runtime_error("oracle: a temp view can shadow only an unqualified (public) name");
      std::string select;
      for (const auto& name : order_.at(rel.qualified())) {
        const policy::Column* c = rel.column(name);
        std::string expr = "t." + ident(name);
        if (c->mask) {
          expr += "::text";
          if (!ctx.unmasks(c->unmask_right)) expr = mask_sql(*c->mask, expr);
        }
        select += (select.empty() ? "" : ", ") + expr + " AS " + ident(name);
      }
      sql += "CREATE TEMP VIEW " + ident(rel.name) + " AS SELECT " + select + " FROM " +
             qualified_sql(rel.qualified()) + " AS t WHERE " + row_filter(rel, ctx) + ";\n";
    }
    return sql;
  }

  // One (context, query): BEGIN, the views, the query text unchanged, ROLLBACK.
  Result<Table> run(const std::string& views, const std::string& sql,
                    const std::vector<db::Param>& params = {}) {
    if (auto b = db::exec_script(conn_.get(), "BEGIN;\n" + views, soon()); !b) {
      (void)db::exec_script(conn_.get(), "ROLLBACK", soon());
      return b.error();
    }
    auto r = db::exec_params(conn_.get(), sql, params, soon());
    if (auto e = db::exec_script(conn_.get(), "ROLLBACK", soon()); !e) return e.error();
    if (!r) return r.error();
    return from_pg(r->get());
  }
  Table must_run(const Context& ctx, const std::string& sql) {
    auto r = run(views_sql(ctx), sql);
    if (!r) throw std::runtime_error("oracle: " + r.error().message + ": " + sql);
    return *r;
  }

  // The values rule function number `n` (larder_ctx.r<n>, numbered over the file's rules in
  // order) may return for the context: the fact's values when the rule applies, or for a join
  // path the first hop's keys whose path ends at a matching row.
  std::set<std::string> rule_values(std::size_t n, const Context& ctx) {
    std::size_t id = 0;
    for (const auto& rel : policy_.relations) {
      for (const auto& rule : rel.rules) {
        if (++id != n) continue;
        std::set<std::string> out;
        const std::string list = value_list(ctx, rule.fact);
        if (!applies(rule, ctx) || list.empty()) return out;
        std::string sql;
        if (rule.via.empty()) {
          sql = "SELECT DISTINCT x::text FROM (VALUES " + [&] {
            std::string rows;
            for (const auto& v : ctx.values(rule.fact)) {
              rows += (rows.empty() ? "(" : ", (") + literal(v) +
                      "::" + std::string(policy::pg_type(policy_.fact(rule.fact)->args[0])) + ")";
            }
            return rows;
          }() + ") AS v(x)";
        } else {
          std::string from = qualified_sql(rule.via[0].relation) + " AS h1";
          for (std::size_t i = 1; i < rule.via.size(); ++i) {
            from += " JOIN " + qualified_sql(rule.via[i].relation) + " AS h" + std::to_string(i + 1) +
                    " ON h" + std::to_string(i + 1) + "." + ident(rule.via[i].target) + " = h" +
                    std::to_string(i) + "." + ident(rule.via[i].column);
          }
          sql = "SELECT DISTINCT h1." + ident(rule.via[0].target) + "::text FROM " + from + " WHERE h" +
                std::to_string(rule.via.size()) + "." + ident(rule.columns[0]) + " IN (" + list + ")";
        }
        for (const auto& row : admin(sql).rows) out.insert(*row[0]);
        return out;
      }
    }
    throw std::runtime_error("oracle: no rule number " + std::to_string(n));
  }

  std::size_t rule_count() const {
    std::size_t n = 0;
    for (const auto& rel : policy_.relations) n += rel.rules.size();
    return n;
  }

  // The masked columns in the file's order (larder_ctx.unmasked(n) numbers them so).
  std::vector<const policy::Column*> masked_columns() const {
    std::vector<const policy::Column*> out;
    for (const auto& rel : policy_.relations)
      for (const auto& c : rel.columns)
        if (c.mask) out.push_back(&c);
    return out;
  }

 private:
  const policy::Policy& policy_;
  db::PgConn conn_;
  std::map<std::string, std::vector<std::string>> order_;
};

// Clear values of masked columns, with the rights that unmask them: a cell of Larder's answer
// equal to one of them, under a context without any of its rights, is a leak whatever the
// oracle says (a second, cruder check of the masks).
class ClearValues {
 public:
  explicit ClearValues(Oracle& oracle) {
    for (const auto& rel : oracle.policy().relations) {
      for (const auto& c : rel.columns) {
        if (!c.mask) continue;
        const std::string v = "t." + ident(c.name) + "::text";
        const Table t = oracle.admin("SELECT DISTINCT " + v + " FROM " + qualified_sql(rel.qualified()) +
                                     " AS t WHERE " + v + " IS DISTINCT FROM (" + mask_sql(*c.mask, v) + ")");
        for (const auto& row : t.rows)
          if (row[0]) rights_[*row[0]].insert(c.unmask_right);
      }
    }
  }
  std::size_t size() const { return rights_.size(); }
  // The first cell that is a clear value the context may not read; nullopt when none.
  std::optional<std::string> leak(const Table& t, const Context& ctx) const {
    for (const auto& row : t.rows) {
      for (const auto& cell : row) {
        if (!cell) continue;
        auto it = rights_.find(*cell);
        if (it == rights_.end()) continue;
        bool allowed = false;
        for (const auto& r : it->second) allowed |= ctx.unmasks(r);
        if (!allowed) return *cell;
      }
    }
    return std::nullopt;
  }

 private:
  std::unordered_map<std::string, std::set<std::string>> rights_;
};

// ---------------------------------------------------------------------------------------
// The differential run

struct Query {
  std::string sql;
  bool guard_may_refuse = false;  // the SQL guard may refuse it (guard on); guard off must run it
};

struct Counts {
  std::size_t contexts = 0, queries = 0;
  std::size_t compared_guard_on = 0, compared_guard_off = 0, refused_guard_on = 0;
  std::size_t oracle_rows = 0, mismatches = 0;
  double seconds = 0, oracle_seconds = 0, larder_seconds = 0;
};

// `quiet`: count the mismatches without failing the test (the planted-leak self-test).
Counts differential(PgCluster& cluster, const std::string& example, const std::vector<Context>& contexts,
                    const std::vector<Query>& corpus, bool quiet = false) {
  const auto start = std::chrono::steady_clock::now();
  Oracle oracle(cluster);
  ClearValues clear(oracle);
  db::Database database(cluster.database_config(2));
  Counts n;
  n.contexts = contexts.size();
  n.queries = corpus.size();
  auto fail = [&](const std::string& what) {
    if (++n.mismatches <= kMaxReportedFailures && !quiet) ADD_FAILURE() << example << ": " << what;
  };
  std::vector<std::size_t> rows_per_query(corpus.size(), 0);
  for (std::size_t ci = 0; ci < contexts.size(); ++ci) {
    const Context& ctx = contexts[ci];
    const std::string views = oracle.views_sql(ctx);
    const std::string where = "context #" + std::to_string(ci) + " " + ctx.describe();
    for (std::size_t qi = 0; qi < corpus.size(); ++qi) {
      const Query& q = corpus[qi];
      auto t0 = std::chrono::steady_clock::now();
      auto expected = oracle.run(views, q.sql);
      n.oracle_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!expected) {
        fail("the oracle cannot run the query (a corpus or oracle bug): " + expected.error().message +
             "\n  " + q.sql);
        continue;
      }
      n.oracle_rows += expected->rows.size();
      rows_per_query[qi] += expected->rows.size();
      for (bool guard : {true, false}) {
        const std::string label =
            std::string(guard ? "guard ON" : "guard OFF") + ", " + where + "\n  " + q.sql;
        t0 = std::chrono::steady_clock::now();
        auto got = database.query(ctx.request(guard), q.sql);
        n.larder_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!got) {
          if (guard && q.guard_may_refuse && got.error().code.rfind("sql_guard", 0) == 0) {
            ++n.refused_guard_on;
            continue;
          }
          fail("Larder refused or failed [" + got.error().code + "] " + got.error().message + "; " + label);
          continue;
        }
        if (got->truncated) {
          fail("truncated answer; " + label);
          continue;
        }
        ++(guard ? n.compared_guard_on : n.compared_guard_off);
        const Table actual = from_larder(*got);
        if (auto d = difference(actual, *expected); !d.empty()) fail("MISMATCH, " + label + "\n  " + d);
        if (auto l = clear.leak(actual, ctx)) fail("CLEAR VALUE '" + *l + "' returned; " + label);
      }
    }
  }
  // Not vacuous: every query returns rows under some context.
  for (std::size_t qi = 0; qi < corpus.size() && !quiet; ++qi)
    EXPECT_GT(rows_per_query[qi], 0u) << example << ": no context gives this query a row: " << corpus[qi].sql;
  n.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return n;
}

void report(const std::string& example, std::uint32_t seed, const Counts& n) {
  std::printf(
      "[oracle] %s: seed %u; %zu contexts x %zu queries; compared guard ON %zu, guard OFF %zu (guard-on "
      "refusals allowed and seen: %zu); %zu oracle rows; %zu mismatches; %.1f s (oracle %.1f s, Larder %.1f "
      "s)\n",
      example.c_str(), seed, n.contexts, n.queries, n.compared_guard_on, n.compared_guard_off,
      n.refused_guard_on, n.oracle_rows, n.mismatches, n.seconds, n.oracle_seconds, n.larder_seconds);
  std::fflush(stdout);
  ::testing::Test::RecordProperty(example + "_seed", std::to_string(seed));
  ::testing::Test::RecordProperty(example + "_contexts", std::to_string(n.contexts));
  ::testing::Test::RecordProperty(example + "_queries", std::to_string(n.queries));
  ::testing::Test::RecordProperty(example + "_compared_guard_on", std::to_string(n.compared_guard_on));
  ::testing::Test::RecordProperty(example + "_compared_guard_off", std::to_string(n.compared_guard_off));
  ::testing::Test::RecordProperty(example + "_refused_guard_on", std::to_string(n.refused_guard_on));
}

void expect_designed_counts(const Counts& n, std::size_t may_refuse) {
  EXPECT_GE(n.contexts, kRandomContexts);
  EXPECT_GE(n.queries, kMinCorpus);
  // Guard off: every (context, query) compared; guard on: all but the allowed refusals.
  EXPECT_EQ(n.compared_guard_off, n.contexts * n.queries);
  EXPECT_GE(n.compared_guard_on, n.contexts * (n.queries - may_refuse));
  EXPECT_EQ(n.compared_guard_on + n.refused_guard_on, n.contexts * n.queries);
  EXPECT_GT(n.oracle_rows, 0u);
  EXPECT_EQ(n.mismatches, 0u);
}

std::size_t may_refuse(const std::vector<Query>& corpus) {
  return static_cast<std::size_t>(
      std::count_if(corpus.begin(), corpus.end(), [](const Query& q) { return q.guard_may_refuse; }));
}

// ---------------------------------------------------------------------------------------
// The forgery battery (guard off, the generic fact-based context)

struct Battery {
  Context current;      // the request's own context
  Context other;        // another token's: its sealed context is captured and replayed
  std::string table;    // a protected table
  std::string witness;  // columns of `table` (alias t) that identify rows and carry masked values
};

enum class Expect {
  kFails,        // the statement must fail
  kWithin,       // fails, or each row (the witness columns) is one the oracle gives the context
  kRuleValues,   // fails, or the values are a subset of what the rule allows the context
  kRuleExact,    // exactly what the rule allows the context
  kUnmaskedOwn,  // larder_ctx.unmasked(i): never true where the context lacks the right
  kHarmless,     // anything; the requests after it are checked (as after every attack)
};

struct Attack {
  Attack(std::string s, Expect e, std::size_t r = 0) : sql(std::move(s)), expect(e), rule(r) {}
  std::string sql;
  Expect expect;
  std::size_t rule = 0;  // kRuleValues, kRuleExact
  std::vector<db::Param> params;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The context's facts as Larder seals them ({"fact": ["v"], "$unmask": ["r"]}), as a SQL string
// literal: what a forger would write.
std::string forged_facts(const Context& ctx) {
  std::string j = "{";
  for (const auto& [name, vals] : ctx.facts) {
    j += (j.size() > 1 ? ", " : "") + json_string(name) + ": [";
    for (std::size_t i = 0; i < vals.size(); ++i) j += (i ? ", " : "") + json_string(vals[i]);
    j += "]";
  }
  if (!ctx.unmask.empty()) {
    j += (j.size() > 1 ? ", " : "") + std::string("\"$unmask\": [");
    for (std::size_t i = 0; i < ctx.unmask.size(); ++i) j += (i ? ", " : "") + json_string(ctx.unmask[i]);
    j += "]";
  }
  j += "}";
  std::string lit = "'";
  for (char c : j) {
    if (c == '\'') lit += '\'';
    lit += c;
  }
  return lit + "'::jsonb";
}

struct BatteryCounts {
  std::size_t attacks = 0, refused = 0, answered = 0, failures = 0;
};

class BatteryRun {
 public:
  BatteryRun(PgCluster& cluster, const Battery& b) : b_(b), oracle_(cluster) {
    witness_sql_ = "SELECT " + b.witness + " FROM " + b.table + " AS t";
    witness_ = normalized(oracle_.must_run(b.current, witness_sql_));
    empty_count_ =
        oracle_.must_run(Context{}, "SELECT count(*) FROM " + b.table).rows.at(0).at(0).value_or("?");
    witness_names_ = witness_.columns;
  }

  std::vector<Attack> forgeries() const {
    const policy::Policy& p = oracle_.policy();
    const std::string w = b_.witness, t = b_.table + " AS t", f = forged_facts(b_.other);
    // The current request's own sealed value, edited: more facts, another key id, a later deadline.
    const std::string edited_facts =
        "pg_catalog.regexp_replace(pg_catalog.current_setting('larder.context'), '\"f\":.*}$', '\"f\":' || " +
        f + "::text || '}')";
    const std::string edited_key =
        "pg_catalog.regexp_replace(pg_catalog.current_setting('larder.context'), "
        "'larder-ctx-v1\\.[0-9]+\\.', "
        "'larder-ctx-v1.2.')";
    const std::string edited_deadline =
        "pg_catalog.regexp_replace(pg_catalog.current_setting('larder.context'), '\"e\":[0-9]+', "
        "'\"e\":99999999999999999')";
    std::vector<Attack> a = {
        // The sealed context emptied or replaced, before or while the table is read.
        {"SELECT set_config('larder.context', '', false) AS s, " + w + " FROM " + t, Expect::kWithin},
        {"SELECT " + w + " FROM " + t + " WHERE set_config('larder.context', 'x', true) IS NOT NULL",
         Expect::kWithin},
        {"SELECT " + w + " FROM " + t + ", (SELECT set_config('larder.context', '', true)) AS s",
         Expect::kWithin},
        {"WITH f AS MATERIALIZED (SELECT set_config('larder.context', repeat('a', 64) || '.larder-ctx-v1.1.' "
         "|| " +
             f + "::text, true)) SELECT " + w + " FROM f, " + t,
         Expect::kWithin},
        // Edited in place: the tag no longer covers it.
        {"SELECT " + w + " FROM " + t + ", (SELECT set_config('larder.context', " + edited_facts +
             ", true)) AS s",
         Expect::kWithin},
        {"WITH f AS MATERIALIZED (SELECT set_config('larder.context', " + edited_facts + ", true)) SELECT " +
             w + " FROM f, " + t,
         Expect::kWithin},
        {"SELECT " + w + " FROM " + t + ", (SELECT set_config('larder.context', " + edited_key +
             ", true)) AS s",
         Expect::kWithin},
        {"SELECT " + w + " FROM " + t + ", (SELECT set_config('larder.context', " + edited_deadline +
             ", true)) AS s",
         Expect::kWithin},
        {"SELECT set_config('row_security', 'off', true) AS s, " + w + " FROM " + t, Expect::kWithin},
        // Writing the keys: one of one's own, or changing the real one; replacing the verifier.
        {"INSERT INTO larder_private.context_keys (id, key, ipad, opad) VALUES (2, sha256('k'), "
         "decode(repeat('36', 64), 'hex'), decode(repeat('5c', 64), 'hex'))",
         Expect::kFails},
        {"UPDATE larder_private.context_keys SET key = sha256('k'), ipad = decode(repeat('36', 64), 'hex')",
         Expect::kFails},
        {"DELETE FROM larder_private.context_keys", Expect::kFails},
        {"WITH u AS (UPDATE larder_private.context_keys SET key = sha256('k') RETURNING 1) SELECT " + w +
             " FROM " + t,
         Expect::kFails},
        {"CREATE OR REPLACE FUNCTION larder_private.context() RETURNS jsonb LANGUAGE sql AS $$ SELECT " + f +
             " $$",
         Expect::kFails},
        {"CREATE FUNCTION pg_temp.pg_backend_pid() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$",
         Expect::kHarmless},
        // Reading the context machinery.
        {"SELECT larder_private.context()", Expect::kFails},
        {"SELECT * FROM larder_private.context()", Expect::kFails},
        {"SELECT * FROM larder_private.context_keys", Expect::kFails},
        {"SELECT id, key FROM larder_private.context_keys", Expect::kFails},
        {"SELECT * FROM larder_private.rule_values", Expect::kFails},
        {"SELECT * FROM larder_private.masks", Expect::kFails},
        {"SELECT * FROM larder_private.applied", Expect::kFails},
        {"INSERT INTO larder_private.rule_values (rule, vals) VALUES (1, '{patient}')", Expect::kFails},
        {"INSERT INTO larder_private.masks (id, unmask_right) VALUES (99, '')", Expect::kFails},
        {"UPDATE larder_private.masks SET unmask_right = ''", Expect::kFails},
        // Becoming another role.
        {"SET ROLE " + ident(p.roles.owner), Expect::kFails},
        {"SET ROLE " + ident(p.roles.views), Expect::kFails},
        {"SET ROLE " + ident(p.roles.writer), Expect::kFails},
        {"SET SESSION AUTHORIZATION postgres", Expect::kFails},
        {"SELECT set_config('role', " + oracle_.literal(p.roles.owner) + ", true) AS s, " + w + " FROM " + t,
         Expect::kFails},
        {"SELECT set_config('role', " + oracle_.literal(p.roles.views) + ", true) AS s, " + w + " FROM " + t,
         Expect::kFails},
        {"ALTER FUNCTION larder_ctx.r1() SECURITY INVOKER", Expect::kFails},
    };
    // The base table behind a masking view is not readable at all; an unmasked table is read
    // under its row-level security.
    const policy::Relation* rel = p.relation(b_.table);
    a.push_back({"SELECT " + w + " FROM " + qualified_sql(rel->qualified()) + " AS t",
                 rel->masked() ? Expect::kFails : Expect::kWithin});
    // The rule functions called directly: this request's values only.
    for (std::size_t n = 1; n <= oracle_.rule_count(); ++n) {
      const std::string fn = "larder_ctx.r" + std::to_string(n) + "()";
      a.push_back({"SELECT x::text AS v FROM unnest(" + fn + ") AS x", Expect::kRuleExact, n});
      a.push_back({"SELECT x::text AS v FROM (SELECT set_config('larder.context', " + edited_facts +
                       ", true)) AS s, unnest(" + fn + ") AS x",
                   Expect::kRuleValues, n});
    }
    a.push_back({unmasked_sql(), Expect::kUnmaskedOwn});
    return a;
  }

  // Replays of a sealed context captured in a request under the other context: $1.
  std::vector<Attack> replays(const std::string& sealed) const {
    const std::string w = b_.witness, t = b_.table + " AS t";
    std::vector<Attack> a = {
        {"SELECT s.x, " + w + " FROM " + t + ", (SELECT set_config('larder.context', $1, true) AS x) AS s",
         Expect::kWithin},
        {"SELECT " + w + " FROM " + t + " WHERE set_config('larder.context', $1, true) IS NOT NULL",
         Expect::kWithin},
        {"WITH f AS MATERIALIZED (SELECT set_config('larder.context', $1, true) AS s) SELECT " + w +
             " FROM f, " + t,
         Expect::kWithin},
        {"SELECT set_config('larder.context', $1, false) AS s", Expect::kHarmless},
        {"SELECT s.x, m.* FROM (SELECT set_config('larder.context', $1, true) AS x) AS s, (" +
             unmasked_sql() + ") AS m",
         Expect::kUnmaskedOwn},
    };
    for (std::size_t n = 1; n <= oracle_.rule_count(); ++n) {
      a.push_back(
          {"SELECT x::text AS v FROM (SELECT set_config('larder.context', $1, true)) AS s, "
           "unnest(larder_ctx.r" +
               std::to_string(n) + "()) AS x",
           Expect::kRuleValues, n});
    }
    for (auto& x : a) x.params = {sealed};
    return a;
  }

  // Runs one attack under the current context (guard off) and checks it; then checks that the
  // session it ran on is left harmless.
  void run(db::Database& database, const Attack& attack, BatteryCounts& n) {
    ++n.attacks;
    auto r = database.query(b_.current.request(false), attack.sql, attack.params);
    const std::string label = "attack under " + b_.current.describe() + ":\n  " + attack.sql;
    auto fail = [&](const std::string& what) {
      ++n.failures;
      ADD_FAILURE() << what << "; " << label;
    };
    if (!r) {
      ++n.refused;
      if (attack.expect == Expect::kRuleExact) fail("the rule function failed: " + r.error().message);
    } else {
      ++n.answered;
      const Table got = from_larder(*r);
      switch (attack.expect) {
        case Expect::kFails:
          fail("the statement ran (" + r->command + ", " + std::to_string(r->rows.size()) + " rows)");
          break;
        case Expect::kHarmless:
          break;
        case Expect::kWithin: {
          if (auto bad = outside_witness(got)) fail("a row beyond the context: " + *bad);
          break;
        }
        case Expect::kRuleValues:
        case Expect::kRuleExact: {
          const std::set<std::string> allowed = oracle_.rule_values(attack.rule, b_.current);
          std::set<std::string> seen;
          for (const auto& row : got.rows) seen.insert(row.at(0).value_or("NULL"));
          for (const auto& v : seen)
            if (allowed.count(v) == 0)
              fail("rule " + std::to_string(attack.rule) + " returned '" + v + "' beyond the context");
          if (attack.expect == Expect::kRuleExact && seen != allowed)
            fail("rule " + std::to_string(attack.rule) + " returned " + std::to_string(seen.size()) +
                 " values, the rules allow " + std::to_string(allowed.size()));
          break;
        }
        case Expect::kUnmaskedOwn: {
          const auto masks = oracle_.masked_columns();
          for (const auto& row : got.rows) {
            for (std::size_t i = 0; i < got.columns.size(); ++i) {
              const std::string& name = got.columns[i];
              if (name.size() < 2 || name[0] != 'm' ||
                  name.find_first_not_of("0123456789", 1) != std::string::npos)
                continue;
              const std::size_t id = std::stoul(name.substr(1));
              const bool may =
                  id >= 1 && id <= masks.size() && b_.current.unmasks(masks[id - 1]->unmask_right);
              if (row[i] && *row[i] == "t" && !may)
                fail("unmasked(" + std::to_string(id) + ") is true without the right");
              if (attack.params.empty() && row[i] && *row[i] != (may ? "t" : "f"))
                fail("unmasked(" + std::to_string(id) + ") is " + *row[i]);
            }
          }
          break;
        }
      }
    }
    after(database, label, n);
  }

  // The next requests on the session see exactly their own rows.
  void after(db::Database& database, const std::string& label, BatteryCounts& n) {
    auto mine = database.query(b_.current.request(false), witness_sql_);
    if (!mine) {
      ++n.failures;
      ADD_FAILURE() << "the context's own read failed after: " << label << ": " << mine.error().message;
    } else if (auto d = difference(from_larder(*mine), witness_); !d.empty()) {
      ++n.failures;
      ADD_FAILURE() << "the context's own read differs from the oracle after: " << label << "\n  " << d;
    }
    auto none = database.query(Context{}.request(false), "SELECT count(*) FROM " + b_.table);
    if (!none || none->rows.at(0).at(0).value_or("?") != empty_count_) {
      ++n.failures;
      ADD_FAILURE() << "the empty context sees "
                    << (none ? none->rows.at(0).at(0).value_or("?") : none.error().message)
                    << " rows (oracle: " << empty_count_ << ") after: " << label;
    }
  }

  // Captures the sealed context of a request under the other context.
  std::string capture(db::Database& database) {
    auto r = database.query(b_.other.request(false), "SELECT current_setting('larder.context') AS n");
    if (!r || r->rows.size() != 1 || !r->rows[0][0]) {
      ADD_FAILURE() << "cannot capture the context: " << (r ? std::string("no row") : r.error().message);
      return "";
    }
    return *r->rows[0][0];
  }

  std::size_t witness_rows() const { return witness_.rows.size(); }
  std::size_t other_rows() { return oracle_.must_run(b_.other, witness_sql_).rows.size(); }

 private:
  std::string unmasked_sql() const {
    std::string sql = "SELECT ";
    const std::size_t masks = std::max<std::size_t>(1, oracle_.masked_columns().size());
    for (std::size_t i = 1; i <= masks; ++i)
      sql +=
          (i > 1 ? ", " : "") + ("larder_ctx.unmasked(" + std::to_string(i) + ") AS m" + std::to_string(i));
    return sql;
  }

  // The first row of `got` (projected on the witness columns) that is not among the oracle's
  // rows for the context (as a multiset); nullopt when every row is.
  std::optional<std::string> outside_witness(const Table& got) const {
    std::vector<std::size_t> at;
    for (const auto& name : witness_names_) {
      auto it = std::find(got.columns.begin(), got.columns.end(), name);
      if (it == got.columns.end()) {
        if (got.rows.empty()) return std::nullopt;
        return "column " + name + " missing from a non-empty answer";
      }
      at.push_back(static_cast<std::size_t>(it - got.columns.begin()));
    }
    std::map<Row, std::size_t> allowed;
    for (const auto& row : witness_.rows) ++allowed[row];
    for (const auto& row : got.rows) {
      Row projected;
      for (std::size_t i : at) projected.push_back(row[i]);
      auto it = allowed.find(projected);
      if (it == allowed.end() || it->second == 0) return show(projected);
      --it->second;
    }
    return std::nullopt;
  }

  Battery b_;
  Oracle oracle_;
  std::string witness_sql_;
  Table witness_;  // normalized: columns in name order
  std::vector<std::string> witness_names_;
  std::string empty_count_;
};

// Where the battery's query connections go: the primary, a hot standby, or PgBouncer.
using ConfigFor = std::function<db::DatabaseConfig(std::size_t pool_size)>;

BatteryCounts forgery_battery(PgCluster& cluster, const Battery& b, const std::string& example,
                              const ConfigFor& config_for = {}) {
  const auto start = std::chrono::steady_clock::now();
  const ConfigFor config =
      config_for ? config_for : [&](std::size_t n) { return cluster.database_config(n); };
  BatteryRun run(cluster, b);
  // Meaningful only when the other context sees more than the current one.
  EXPECT_GT(run.other_rows(), run.witness_rows()) << example << ": the battery's contexts do not differ";
  BatteryCounts n;
  {
    db::Database one(config(1));  // one session: every attack hits the same backend
    for (const auto& a : run.forgeries()) run.run(one, a, n);
  }
  // Replay: the sealed context of a request under the other context, (1) on another session
  // (another backend), (2) on the same session in a later transaction.
  db::Database first(config(1));
  db::Database second(config(1));
  const std::string sealed = run.capture(first);
  EXPECT_GT(sealed.size(), 80u) << example;
  for (const auto& a : run.replays(sealed)) run.run(second, a, n);
  const std::string again = run.capture(first);
  EXPECT_NE(again, sealed) << example << ": two requests were sealed alike";
  for (const auto& a : run.replays(again)) run.run(first, a, n);
  // And under several sessions, whichever backend a request lands on.
  db::Database pool(config(4));
  const std::string pooled = run.capture(pool);
  for (int i = 0; i < 3; ++i)
    for (const auto& a : run.replays(pooled)) run.run(pool, a, n);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "[oracle] %s forgery battery (guard off): %zu attacks, %zu refused, %zu answered within the context, "
      "%zu failures; current context sees %zu witness rows; %.1f s\n",
      example.c_str(), n.attacks, n.refused, n.answered, n.failures, run.witness_rows(), seconds);
  std::fflush(stdout);
  ::testing::Test::RecordProperty(example + "_forgery_attacks", std::to_string(n.attacks));
  return n;
}

// ---------------------------------------------------------------------------------------
// saas

std::vector<Query> saas_corpus() {
  return {
      {"SELECT * FROM tenants"},
      {"SELECT * FROM users"},
      {"SELECT * FROM customers"},
      {"SELECT * FROM invoices"},
      {"SELECT * FROM invoice_lines"},
      {"SELECT * FROM products"},
      // Joins: inner, two hops from lines to customers, left, self-join on a masked column.
      {"SELECT c.name, c.email, i.number, i.total FROM customers c JOIN invoices i ON i.customer_id = c.id "
       "WHERE i.total > 500"},
      {"SELECT l.id, l.amount, i.number, c.tenant_id, c.phone FROM invoice_lines l JOIN invoices i ON i.id "
       "= l.invoice_id JOIN customers c ON c.id = i.customer_id WHERE l.quantity >= 3"},
      {"SELECT c.id, c.email, count(i.id) AS n FROM customers c LEFT JOIN invoices i ON i.customer_id = "
       "c.id GROUP BY c.id, c.email"},
      {"SELECT a.id AS a, b.id AS b, a.email FROM customers a JOIN customers b ON a.email = b.email AND "
       "a.id < b.id"},
      {"SELECT u.full_name, u.email, u.is_admin, t.name, t.plan FROM users u JOIN tenants t ON t.id = "
       "u.tenant_id"},
      // Counts per tenant, aggregates with GROUP BY / HAVING.
      {"SELECT t.name, (SELECT count(*) FROM customers c WHERE c.tenant_id = t.id) AS customers, (SELECT "
       "count(*) FROM users u WHERE u.tenant_id = t.id) AS users FROM tenants t"},
      {"SELECT c.tenant_id, count(DISTINCT c.id) AS customers, count(DISTINCT i.id) AS invoices, "
       "count(l.id) AS lines FROM customers c LEFT JOIN invoices i ON i.customer_id = c.id LEFT JOIN "
       "invoice_lines l ON l.invoice_id = i.id GROUP BY c.tenant_id"},
      {"SELECT c.tenant_id, count(*) AS n, sum(i.total) AS s, min(i.issued_on) AS first FROM invoices i "
       "JOIN customers c ON c.id = i.customer_id GROUP BY c.tenant_id HAVING count(*) > 10"},
      {"SELECT count(*) AS n, sum(amount) AS s, max(quantity) AS q FROM invoice_lines"},
      {"SELECT email, count(*) AS n FROM customers GROUP BY email HAVING count(*) > 1"},
      {"SELECT extract(year FROM issued_on) AS y, paid, count(*) AS n, sum(total) AS s FROM invoices GROUP "
       "BY 1, 2"},
      // CTEs, recursive too.
      {"WITH totals AS (SELECT customer_id, sum(total) AS s FROM invoices GROUP BY customer_id) SELECT "
       "c.name, c.email, t.s FROM totals t JOIN customers c ON c.id = t.customer_id WHERE t.s > 1000"},
      {"WITH m AS MATERIALIZED (SELECT id, email, phone FROM customers) SELECT id, phone FROM m WHERE "
       "email LIKE '%example.com'"},
      {"WITH RECURSIVE chain(id, depth) AS (SELECT id, 1 FROM customers WHERE id <= 40 UNION ALL SELECT "
       "c.id, ch.depth + 1 FROM chain ch JOIN customers c ON c.id = ch.id + 1 WHERE ch.depth < 6) SELECT "
       "id, depth FROM chain"},
      // Window functions (total orders inside the window).
      {"SELECT id, tenant_id, email, row_number() OVER (PARTITION BY tenant_id ORDER BY email, id) AS rn "
       "FROM customers"},
      {"SELECT i.id, i.customer_id, sum(i.total) OVER (PARTITION BY i.customer_id ORDER BY i.issued_on, "
       "i.id) AS running, lag(i.number) OVER (PARTITION BY i.customer_id ORDER BY i.issued_on, i.id) AS "
       "previous FROM invoices i"},
      // Correlated and uncorrelated subqueries, EXISTS / IN.
      {"SELECT c.id, c.name FROM customers c WHERE (SELECT count(*) FROM invoices i WHERE i.customer_id = "
       "c.id AND NOT i.paid) >= 2"},
      {"SELECT id, total FROM invoices WHERE total > (SELECT avg(total) FROM invoices)"},
      {"SELECT p.sku, p.name FROM products p WHERE EXISTS (SELECT 1 FROM invoice_lines l WHERE "
       "l.product_id = p.id AND l.quantity > 4)"},
      {"SELECT id, number FROM invoices WHERE customer_id IN (SELECT id FROM customers WHERE email LIKE "
       "'m%')"},
      {"SELECT count(*) AS orphans FROM invoices i WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id "
       "= i.customer_id)"},
      {"SELECT count(*) AS orphans FROM invoice_lines l WHERE l.invoice_id NOT IN (SELECT id FROM invoices)"},
      // Set operations.
      {"SELECT email AS contact FROM customers UNION SELECT email FROM users"},
      {"SELECT tenant_id FROM customers INTERSECT SELECT tenant_id FROM users"},
      {"SELECT id FROM customers WHERE id % 3 = 0 EXCEPT SELECT i.customer_id FROM invoices i JOIN "
       "customers c ON c.id = i.customer_id WHERE c.id % 2 = 0"},
      {"SELECT split_part(email, '@', 2) AS domain FROM customers UNION ALL SELECT split_part(email, '@', "
       "2) FROM users"},
      // LATERAL, DISTINCT, ORDER BY (with LIMIT under a total order).
      {"SELECT c.id, c.email, last.number, last.issued_on FROM customers c CROSS JOIN LATERAL (SELECT "
       "i.number, i.issued_on FROM invoices i WHERE i.customer_id = c.id ORDER BY i.issued_on DESC, i.id "
       "DESC LIMIT 1) AS last"},
      {"SELECT DISTINCT split_part(email, '@', 2) AS domain FROM customers"},
      {"SELECT id, email, phone FROM customers ORDER BY email, id"},
      {"SELECT id, email FROM customers ORDER BY email DESC, id LIMIT 10"},
      // Filters, casts and functions on masked columns.
      {"SELECT id, email FROM customers WHERE email LIKE 'm%'"},
      {"SELECT id, phone FROM customers WHERE phone LIKE '%4_'"},
      {"SELECT id, length(email) AS len, upper(email) AS up, right(phone, 4) AS tail, email::varchar(8) AS "
       "short, md5(email) AS h FROM customers"},
      {"SELECT tenant_id, string_agg(email, ',' ORDER BY email, id) AS emails FROM users GROUP BY tenant_id"},
      {"SELECT row_to_json(c) AS j FROM customers c"},
      // The public catalogue joined to the protected lines.
      {"SELECT p.sku, count(l.id) AS n, sum(l.quantity) AS units, sum(l.amount) AS revenue FROM products p "
       "LEFT JOIN invoice_lines l ON l.product_id = p.id GROUP BY p.sku"},
      {"SELECT p.name, i.number, l.quantity FROM invoice_lines l JOIN products p ON p.id = l.product_id "
       "JOIN invoices i ON i.id = l.invoice_id WHERE p.price > 100 AND l.quantity > 3"},
  };
}

const std::vector<std::string> kSaasRights = {"customers.email", "customers.phone", "users.email"};
const std::vector<std::string> kSaasJunkRights = {
    "Customers.Email",
    "customers.email ",
    "customers.internal_notes",
    "customers",
    "customers.*",
    "*",
    "products.name",
    "users.email'; --",
    "tenants.name",
    "",
};
constexpr const char* kNoSuchTenant = "00000000-0000-4000-8000-000000000000";

std::vector<Context> saas_contexts(std::mt19937& rng) {
  std::vector<std::string> tenants;
  for (const auto& t : examples::saas::kTenants) tenants.emplace_back(t.id);
  std::vector<Context> out;
  // Fixed edge cases: nothing; one tenant; two with every right; a tenant that does not exist.
  out.push_back({});
  out.push_back({{{"tenant", {examples::saas::kAcmeTenant}}}, {}});
  out.push_back({{{"tenant", {examples::saas::kAcmeTenant, examples::saas::kGlobexTenant}}}, kSaasRights});
  out.push_back({{{"tenant", {kNoSuchTenant}}}, kSaasRights});
  for (std::size_t i = 0; i < kRandomContexts; ++i) {
    Context c;
    auto ts = draw(rng, tenants, below(rng, 4));
    if (chance(rng, 10)) ts.emplace_back(kNoSuchTenant);
    if (!ts.empty()) c.facts["tenant"] = ts;
    for (const auto& r : kSaasRights)
      if (chance(rng, 40)) c.unmask.push_back(r);
    if (chance(rng, 30))
      for (const auto& r : draw(rng, kSaasJunkRights, 1 + below(rng, 2))) c.unmask.push_back(r);
    if (chance(rng, 15)) c.facts["role"] = {"admin"};  // a fact the file does not declare
    out.push_back(std::move(c));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// healthcare

std::vector<Query> healthcare_corpus() {
  return {
      {"SELECT * FROM health_records"},
      {"SELECT count(*) AS n FROM health_records"},
      {"SELECT \"Patient Name\", count(*) AS n FROM health_records GROUP BY 1"},
      {"SELECT \"Hospital\", count(*) AS n, sum(\"Billing Amount\") AS s FROM health_records GROUP BY "
       "\"Hospital\" HAVING count(*) > 1"},
      {"SELECT \"Medical Condition\", round(avg(\"Age\"), 4) AS age, max(\"Billing Amount\") AS most FROM "
       "health_records GROUP BY 1"},
      {"SELECT a.id AS a, b.id AS b, a.\"Patient Name\" FROM health_records a JOIN health_records b ON "
       "a.\"Patient Name\" = b.\"Patient Name\" AND a.id < b.id"},
      {"SELECT count(*) AS pairs FROM health_records a, health_records b WHERE a.\"Hospital\" = "
       "b.\"Hospital\""},
      {"SELECT h.id, x.id AS other FROM health_records h LEFT JOIN health_records x ON x.\"Doctor\" = "
       "h.\"Doctor\" AND x.id <> h.id"},
      {"SELECT id, \"Patient Name\", rank() OVER (PARTITION BY \"Hospital\" ORDER BY \"Billing Amount\" "
       "DESC, id) AS r FROM health_records"},
      {"SELECT id, lag(\"Date of Admission\") OVER (PARTITION BY \"Patient Name\" ORDER BY "
       "\"Date of Admission\", id) AS previous, count(*) OVER (PARTITION BY \"Patient Name\") AS stays "
       "FROM health_records"},
      {"WITH stays AS (SELECT \"Patient Name\" AS p, \"Discharge Date\" - \"Date of Admission\" AS days "
       "FROM health_records) SELECT p, max(days) AS longest, min(days) AS shortest FROM stays GROUP BY p"},
      {"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT n.i, "
       "count(h.id) AS rooms FROM n LEFT JOIN health_records h ON h.\"Room Number\" % 5 = n.i - 1 GROUP "
       "BY n.i"},
      {"SELECT h.id FROM health_records h WHERE h.\"Billing Amount\" > (SELECT avg(x.\"Billing Amount\") "
       "FROM health_records x WHERE x.\"Hospital\" = h.\"Hospital\")"},
      {"SELECT count(*) AS n FROM health_records WHERE \"Age\" > (SELECT avg(\"Age\") FROM health_records)"},
      {"SELECT DISTINCT \"Hospital\" FROM health_records h WHERE EXISTS (SELECT 1 FROM health_records x "
       "WHERE x.\"Hospital\" = h.\"Hospital\" AND x.\"Patient Name\" <> h.\"Patient Name\")"},
      {"SELECT id FROM health_records WHERE \"Patient Name\" IN (SELECT \"Patient Name\" FROM "
       "health_records WHERE \"Medical Condition\" = 'Diabetes')"},
      {"SELECT \"Doctor\" AS who FROM health_records UNION SELECT \"Patient Name\" FROM health_records"},
      {"SELECT \"Hospital\" FROM health_records WHERE \"Admission Type\" = 'Emergency' INTERSECT SELECT "
       "\"Hospital\" FROM health_records WHERE \"Admission Type\" = 'Elective'"},
      {"SELECT \"Blood Type\" FROM health_records EXCEPT ALL SELECT \"Blood Type\" FROM health_records "
       "WHERE \"Age\" > 50"},
      {"SELECT DISTINCT h.\"Patient Name\", last.d FROM health_records h CROSS JOIN LATERAL (SELECT "
       "max(x.\"Date of Admission\") AS d FROM health_records x WHERE x.\"Patient Name\" = "
       "h.\"Patient Name\") AS last"},
      {"SELECT DISTINCT ON (\"Hospital\") \"Hospital\", id, \"Billing Amount\" FROM health_records ORDER "
       "BY \"Hospital\", \"Billing Amount\" DESC, id"},
      {"SELECT id, \"Patient Name\" FROM health_records ORDER BY \"Billing Amount\" DESC, id LIMIT 5"},
      {"SELECT id, \"Hospital\" FROM health_records WHERE lower(\"Patient Name\") = lower('Erin Ortega')"},
      {"SELECT \"Patient Name\", \"Hospital\" FROM health_records WHERE \"Patient Name\" ILIKE '%an%'"},
      {"SELECT id, \"Billing Amount\"::int AS b, to_char(\"Date of Admission\", 'YYYY-MM') AS m, "
       "upper(\"Doctor\") AS d, length(\"Medication\") AS l FROM health_records"},
      {"SELECT \"Hospital\", percentile_cont(0.5) WITHIN GROUP (ORDER BY \"Billing Amount\") AS median "
       "FROM health_records GROUP BY 1"},
      {"SELECT \"Patient Name\", json_agg(\"Medication\" ORDER BY id) AS meds FROM health_records GROUP BY "
       "1"},
      {"SELECT CASE WHEN \"Age\" < 30 THEN 'young' WHEN \"Age\" < 60 THEN 'mid' ELSE 'old' END AS band, "
       "count(*) AS n FROM health_records GROUP BY 1"},
      {"SELECT s.h, s.n FROM (SELECT \"Hospital\" AS h, count(DISTINCT \"Patient Name\") AS n FROM "
       "health_records GROUP BY 1) AS s WHERE s.n >= 1"},
      {"SELECT count(*) AS n FROM health_records WHERE \"Hospital\" = 'Cook PLC'"},
      {"SELECT \"Hospital\", string_agg(DISTINCT \"Doctor\", '; ' ORDER BY \"Doctor\") AS doctors FROM "
       "health_records GROUP BY 1"},
      {"SELECT \"Gender\", \"Blood Type\", count(*) AS n FROM health_records GROUP BY ROLLUP (\"Gender\", "
       "\"Blood Type\")"},
      {"SELECT row_to_json(h) AS j FROM health_records h"},
  };
}

const std::vector<std::string> kRoles = {"nurse", "doctor", "clinician", "patient", "admin"};
const std::vector<std::string> kNonClinical = {"patient", "admin"};

std::vector<Context> healthcare_contexts(std::mt19937& rng, Oracle& oracle) {
  std::vector<std::string> names, hospitals;
  for (const auto& row :
       oracle.admin("SELECT DISTINCT \"Patient Name\" FROM public.health_records ORDER BY 1").rows)
    names.push_back(*row[0]);
  for (const auto& row :
       oracle.admin("SELECT DISTINCT \"Hospital\" FROM public.health_records ORDER BY 1").rows)
    hospitals.push_back(*row[0]);
  // Names and hospitals that match no row exactly (case, a trailing space, quotes).
  const std::vector<std::string> fake_names = {"Nobody O'Neil", "erin ortega", "Erin oRTEga ",
                                               "x\",\"Erin oRTEga"};
  const std::string fake_hospital = "St. Mary's \"Annex\"";
  auto name = [&] {
    const std::size_t r = below(rng, 100);
    if (r < 25) return std::string(r % 2 == 0 ? examples::kErinOrtega : examples::kDavidAnderson);
    if (r < 35) return fake_names[below(rng, fake_names.size())];
    return names[below(rng, names.size())];
  };
  auto hospital = [&] { return chance(rng, 10) ? fake_hospital : hospitals[below(rng, hospitals.size())]; };
  auto names_of = [&](std::size_t k) {
    std::vector<std::string> out;
    while (out.size() < k) {
      std::string n = name();
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    return out;
  };
  auto hospitals_of = [&](std::size_t k) {
    std::vector<std::string> out;
    while (out.size() < k) {
      std::string h = hospital();
      if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
    }
    return out;
  };
  std::vector<Context> out;
  // Fixed edge cases.
  out.push_back({});
  out.push_back({{{"patient_name", {examples::kErinOrtega}}}, {}});
  out.push_back({{{"hospital", {"Cook PLC"}}, {"role", {"doctor"}}}, {}});
  out.push_back({{{"hospital", {"Cook PLC"}}, {"role", {"patient", "admin"}}}, {}});
  out.push_back({{{"role", {"nurse"}}}, {}});
  for (std::size_t i = 0; i < kRandomContexts; ++i) {
    Context c;
    if (auto ns = names_of(below(rng, 4)); !ns.empty()) c.facts["patient_name"] = ns;
    const bool no_clinical_role = i % 5 == 4;  // hospitals but no clinical role
    if (auto hs = hospitals_of(no_clinical_role ? 1 + below(rng, 2) : below(rng, 3)); !hs.empty())
      c.facts["hospital"] = hs;
    if (auto rs = draw(rng, no_clinical_role ? kNonClinical : kRoles, below(rng, 3)); !rs.empty())
      c.facts["role"] = rs;
    if (chance(rng, 10)) c.unmask = {"health_records.Patient Name"};  // no mask to unmask: nothing changes
    out.push_back(std::move(c));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The tests

class SaasOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgCluster::Options o;
    o.example = "saas";
    o.seed_rows = 1500;  // invoices
    cluster_ = new PgCluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static PgCluster* cluster_;
};
PgCluster* SaasOracle::cluster_ = nullptr;

class HealthcareOracle : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgCluster::Options o;
    o.example = "healthcare";
    o.seed_rows = 3000;
    cluster_ = new PgCluster(o);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static PgCluster* cluster_;
};
PgCluster* HealthcareOracle::cluster_ = nullptr;

TEST_F(SaasOracle, LarderReturnsExactlyWhatTheRulesAllowForRandomContexts) {
  const std::uint32_t seed = oracle_seed();
  std::mt19937 rng(seed);
  const auto contexts = saas_contexts(rng);
  const auto corpus = saas_corpus();
  const Counts n = differential(*cluster_, "saas", contexts, corpus);
  report("saas", seed, n);
  expect_designed_counts(n, may_refuse(corpus));
}

TEST_F(HealthcareOracle, LarderReturnsExactlyWhatTheRulesAllowForRandomContexts) {
  const std::uint32_t seed = oracle_seed();
  std::mt19937 rng(seed);
  Oracle oracle(*cluster_);
  const auto contexts = healthcare_contexts(rng, oracle);
  const auto corpus = healthcare_corpus();
  const Counts n = differential(*cluster_, "healthcare", contexts, corpus);
  report("healthcare", seed, n);
  expect_designed_counts(n, may_refuse(corpus));
}

TEST_F(SaasOracle, TheOracleItselfSeesTheRules) {
  // The oracle is not vacuous: a tenant sees some of its own rows and none of another's; the
  // masks apply and the rights lift them.
  Oracle oracle(*cluster_);
  const Context acme{{{"tenant", {examples::saas::kAcmeTenant}}}, {}};
  const Context acme_clear{{{"tenant", {examples::saas::kAcmeTenant}}}, {"customers.email"}};
  EXPECT_GT(oracle.must_run(acme, "SELECT * FROM invoice_lines").rows.size(), 100u);
  EXPECT_EQ(oracle
                .must_run(acme, "SELECT count(*) FROM customers WHERE tenant_id <> '" +
                                    std::string(examples::saas::kAcmeTenant) + "'")
                .rows[0][0],
            "0");
  EXPECT_EQ(oracle.must_run(acme, "SELECT email FROM customers WHERE id = 1").rows[0][0], "m***@example.com");
  EXPECT_EQ(oracle.must_run(acme_clear, "SELECT email FROM customers WHERE id = 1").rows[0][0],
            examples::saas::kAcmeCustomerEmail);
  EXPECT_EQ(oracle.must_run(acme_clear, "SELECT phone FROM customers WHERE id = 1").rows[0][0], "****0142");
  EXPECT_EQ(oracle.must_run(Context{}, "SELECT count(*) FROM products").rows[0][0],
            std::to_string(examples::saas::kProductCount));
  EXPECT_EQ(oracle.must_run(Context{}, "SELECT count(*) FROM invoices").rows[0][0], "0");
}

TEST_F(HealthcareOracle, TheOracleItselfSeesTheRules) {
  Oracle oracle(*cluster_);
  const Context erin{{{"patient_name", {examples::kErinOrtega}}}, {}};
  EXPECT_GE(std::stoul(*oracle.must_run(erin, "SELECT count(*) FROM health_records").rows[0][0]), 5u);
  const Context doctor{{{"hospital", {"Cook PLC"}}, {"role", {"doctor"}}}, {}};
  const Context janitor{{{"hospital", {"Cook PLC"}}, {"role", {"patient"}}}, {}};
  EXPECT_GT(std::stoul(*oracle.must_run(doctor, "SELECT count(*) FROM health_records").rows[0][0]), 0u);
  EXPECT_EQ(oracle.must_run(janitor, "SELECT count(*) FROM health_records").rows[0][0], "0");
}

Battery saas_battery() {
  Battery b;
  b.current = {{{"tenant", {examples::saas::kGlobexTenant}}}, {}};
  b.other = {{{"tenant", {examples::saas::kAcmeTenant, examples::saas::kGlobexTenant}}}, kSaasRights};
  b.table = "customers";
  b.witness = "t.id, t.tenant_id, t.email, t.phone";
  return b;
}

Battery healthcare_battery() {
  Battery b;
  // David, with a hospital but no clinical role: his own rows only. The other token adds Erin
  // and makes the hospital's rows visible (doctor).
  b.current = {
      {{"patient_name", {examples::kDavidAnderson}}, {"hospital", {"Cook PLC"}}, {"role", {"patient"}}}, {}};
  b.other = {{{"patient_name", {examples::kDavidAnderson, examples::kErinOrtega}},
              {"hospital", {"Cook PLC"}},
              {"role", {"doctor"}}},
             {}};
  b.table = "health_records";
  b.witness = "t.id, t.\"Patient Name\", t.\"Hospital\", t.\"Billing Amount\"";
  return b;
}

// The battery with the query connections on a streaming hot standby of the cluster, through
// PgBouncer (transaction mode) to the primary, and through PgBouncer to the standby. Nothing is
// written for a request, so a standby serves it; a sealed value is worthless on any other
// backend, which is what a transaction pooler hands out.
void forgery_battery_on_every_path(PgCluster& cluster, const Battery& b, const std::string& example) {
  PgStandby standby(cluster);
  PgBouncer bouncer(cluster, &standby);
  const db::ClusterState& st = standby.state();
  const BatteryCounts on_standby =
      forgery_battery(cluster, b, example + " on a hot standby", [&](std::size_t n) {
        auto c = cluster.database_config(n);
        c.query = st.query();
        c.writer = st.writer();
        return c;
      });
  EXPECT_EQ(on_standby.failures, 0u);
  EXPECT_GE(on_standby.attacks, 50u);
  const BatteryCounts via_bouncer =
      forgery_battery(cluster, b, example + " through PgBouncer", [&](std::size_t n) {
        auto c = cluster.database_config(n);
        c.query = bouncer.params_for(cluster.state().query());
        c.writer = bouncer.params_for(cluster.state().writer());
        c.transaction_pooler = true;
        return c;
      });
  EXPECT_EQ(via_bouncer.failures, 0u);
  EXPECT_GE(via_bouncer.attacks, 50u);
  const BatteryCounts bouncer_standby =
      forgery_battery(cluster, b, example + " through PgBouncer to the standby", [&](std::size_t n) {
        auto c = cluster.database_config(n);
        c.query = bouncer.params_for(st.query());
        c.writer = bouncer.params_for(st.writer());
        c.transaction_pooler = true;
        return c;
      });
  EXPECT_EQ(bouncer_standby.failures, 0u);
}

TEST_F(SaasOracle, ForgeryBatteryWithTheGuardOffAgainstTheGenericContext) {
  const BatteryCounts n = forgery_battery(*cluster_, saas_battery(), "saas");
  EXPECT_GE(n.attacks, 60u);
  EXPECT_EQ(n.failures, 0u);
}

TEST_F(HealthcareOracle, ForgeryBatteryWithTheGuardOffAgainstTheGenericContext) {
  const BatteryCounts n = forgery_battery(*cluster_, healthcare_battery(), "healthcare");
  EXPECT_GE(n.attacks, 50u);
  EXPECT_EQ(n.failures, 0u);
}

TEST_F(SaasOracle, ForgeryBatteryOnAHotStandbyAndThroughPgBouncer) {
  forgery_battery_on_every_path(*cluster_, saas_battery(), "saas");
}

TEST_F(HealthcareOracle, ForgeryBatteryOnAHotStandbyAndThroughPgBouncer) {
  forgery_battery_on_every_path(*cluster_, healthcare_battery(), "healthcare");
}

// ---------------------------------------------------------------------------------------
// The oracle catches planted leaks: each lock loosened by hand (as the superuser) makes the
// differential run fail; the policy is applied again afterwards.

void admin_exec(const PgCluster& cluster, const std::string& sql) {
  auto c = cluster.state().admin().connect(soon());
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r = db::exec_script(c->get(), sql, soon());
  ASSERT_TRUE(r.ok()) << sql << ": " << r.error().message;
}

void reapply(const PgCluster& cluster) {
  auto c = cluster.state().admin().connect(soon());
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r = policy::apply(cluster.policy(), c->get(), {}, soon(120));
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto d = policy::check(cluster.policy(), c->get(), soon());
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->empty()) << d->front();
}

struct Plant {
  std::string what;
  std::string sql;   // loosens a lock
  std::string undo;  // before the policy is applied again
};

void expect_caught(PgCluster& cluster, const std::string& example, const std::vector<Context>& contexts,
                   const std::vector<Query>& corpus, const std::vector<Plant>& plants) {
  for (const auto& p : plants) {
    admin_exec(cluster, p.sql);
    const Counts n = differential(cluster, example, contexts, corpus, true);
    EXPECT_GT(n.mismatches, 0u) << "the oracle did not notice: " << p.what;
    std::printf("[oracle] %s planted leak \"%s\": %zu mismatches found\n", example.c_str(), p.what.c_str(),
                n.mismatches);
    if (!p.undo.empty()) admin_exec(cluster, p.undo);
    reapply(cluster);
  }
  const Counts clean = differential(cluster, example, contexts, corpus, true);
  EXPECT_EQ(clean.mismatches, 0u) << "the policy was not restored";
}

TEST_F(SaasOracle, ZzTheOracleCatchesPlantedLeaks) {
  std::mt19937 rng(oracle_seed());
  auto contexts = saas_contexts(rng);
  contexts.resize(10);
  const std::vector<Query> corpus = {{"SELECT * FROM invoice_lines"},
                                     {"SELECT id, phone, email FROM customers"}};
  expect_caught(
      *cluster_, "saas", contexts, corpus,
      {
          {"a permissive policy of someone else's on invoice_lines",
           "CREATE POLICY planted ON public.invoice_lines FOR SELECT TO larder_query USING (id % 97 = 0)",
           "DROP POLICY planted ON public.invoice_lines"},
          {"a last4 mask that shows five characters",
           "CREATE OR REPLACE FUNCTION larder_ctx.mask_last4(v text) RETURNS text LANGUAGE sql IMMUTABLE "
           "RETURN '****' || pg_catalog.right(v, 5)",
           ""},
          {"an email mask that shows two characters",
           "CREATE OR REPLACE FUNCTION larder_ctx.mask_email(v text) RETURNS text LANGUAGE sql IMMUTABLE "
           "RETURN pg_catalog.left(v, 2) || '***' || pg_catalog.substr(v, pg_catalog.strpos(v, '@'))",
           ""},
      });
}

TEST_F(HealthcareOracle, ZzTheOracleCatchesPlantedLeaks) {
  std::mt19937 rng(oracle_seed());
  Oracle oracle(*cluster_);
  auto contexts = healthcare_contexts(rng, oracle);
  contexts.resize(10);
  // The number of the rule with a `when` list (larder_ctx.r<n> reads larder_private.rule_values).
  std::size_t when_rule = 0, id = 0;
  for (const auto& rel : cluster_->policy().relations) {
    for (const auto& rule : rel.rules) {
      ++id;
      if (!rule.when_fact.empty() && when_rule == 0) when_rule = id;
    }
  }
  ASSERT_GT(when_rule, 0u);
  const std::string rule = std::to_string(when_rule);
  const std::vector<Query> corpus = {{"SELECT * FROM health_records"},
                                     {"SELECT count(*) AS n FROM health_records"}};
  expect_caught(
      *cluster_, "healthcare", contexts, corpus,
      {
          {"\"patient\" added to the when list of the hospital rule",
           "UPDATE larder_private.rule_values SET vals = vals || 'patient'::text WHERE rule = " + rule,
           "UPDATE larder_private.rule_values SET vals = array_remove(vals, 'patient') WHERE rule = " + rule},
          {"a permissive policy of someone else's",
           "CREATE POLICY planted ON public.health_records FOR SELECT TO patients USING (\"Age\" = 44)",
           "DROP POLICY planted ON public.health_records"},
      });
}

}  // namespace
}  // namespace larder::test
