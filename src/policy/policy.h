// The policy file: what an agent may see of one PostgreSQL database (docs/policy.md).
//
// One TOML file declares, per exposed table, the columns an agent may read, the columns it
// reads only masked, the row rules that select rows from facts proven by the token, the
// sensitivity class for taint, descriptions, and the declared query tools. Every lock is
// built from it: the SQL guard's allow-list, the authorizer's table/column facts, the query
// role's column privileges, the RLS policies and their context, pg_metadata, resources and
// prompts (policy/apply.h turns it into SQL; the gate and the tools read it directly).
//
// parse() checks everything that does not need the database: the file's shape, identifiers,
// types, duplicate relations, a column both masked and hidden, facts used with two arities,
// rules naming undeclared facts. What needs the catalog (unknown relation or column, a type
// that does not match its column, a join path whose columns do not exist) is checked by
// policy::plan. Every error names the file, the line and the key.
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "db/sql_guard.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace larder::policy {

// The predicates the server asserts on every call (time, tool, the client certificate's
// identity, ...): the one list. A token holding any of them is refused (gate::reserved_
// predicates), a policy file may not declare a fact of that name, and the default Datalog
// policy (data/policies/default.datalog) names them all.
const std::vector<std::string>& server_predicates();

// The types a fact's values (and a declared tool's parameters) may have.
enum class ValueType { kText, kInteger, kBigint, kUuid, kDate, kBoolean };
std::string_view to_string(ValueType type);
// PostgreSQL's name for the type (format_type spelling): "text", "integer", "bigint", ...
std::string_view pg_type(ValueType type);
// True when `text` is a valid literal of `type` in PostgreSQL's text input format (the form
// the context carries): integers in range, canonical uuids, YYYY-MM-DD dates, true/false.
bool valid_value(ValueType type, std::string_view text);

// How a masked column reads without the unmask right.
enum class MaskKind { kEmail, kLast4, kRedact };
std::string_view to_string(MaskKind kind);

// Where a declaration sits in the file, for errors: "policy.toml:12: tables.accounts.rows[1].fact".
struct Where {
  std::string file;
  int line = 0;
  std::string key;
  std::string describe() const;
};
// An error at `where`: code "policy.invalid", message "<file>:<line>: <key>: <what>".
Error policy_error(const Where& where, const std::string& what);

struct Fact {
  std::string name;             // Datalog predicate, e.g. "tenant"
  std::vector<ValueType> args;  // one entry per argument
  Where where;
};

// One hop of a join path: this relation's `column` references `relation`.`target` .
struct Hop {
  std::string column;
  std::string relation;  // schema-qualified
  std::string target;
  Where where;
};

struct RowRule {
  // Columns of the relation the path ends at (the rule's own relation when `via` is empty),
  // matched against the fact's tuples: one column per fact argument.
  std::vector<std::string> columns;
  std::string fact;
  std::vector<Hop> via;
  // The rule applies only when the token also proves `when_fact(v)` for some v in `when_any_of`.
  std::string when_fact;
  std::vector<std::string> when_any_of;
  Where where;
};

struct Column {
  std::string name;
  std::string description;
  std::optional<MaskKind> mask;
  std::string unmask_right;  // right("unmask", <this>): default "<table>.<column>"
  Where where;
};

enum class Sensitivity { kSensitive, kPublic };

struct Relation {
  std::string schema;  // "public" unless the key says otherwise
  std::string name;
  std::string description;
  Sensitivity sensitivity = Sensitivity::kSensitive;
  bool everyone = false;            // `public = true`: every valid token reads every row
  std::vector<Column> columns;      // readable, masked ones included, in file order
  std::vector<std::string> hidden;  // declared unreadable
  std::vector<RowRule> rules;       // OR-ed
  Where where;

  std::string qualified() const { return schema + "." + name; }
  // The name tokens and the agent use: "accounts" for public.accounts, "billing.x" otherwise.
  std::string short_name() const;
  bool masked() const;
  const Column* column(std::string_view name) const;
};

struct ToolParam {
  std::string name;
  ValueType type = ValueType::kText;
  std::string description;
  bool required = true;
};

// A named, parameterized SELECT served as an MCP tool; $1.. bind params in order.
struct QueryTool {
  std::string name;
  std::string description;
  std::string sql;
  std::vector<ToolParam> params;
  Where where;
};

struct Roles {
  std::string query = "larder_query";            // runs agents' SQL (LOGIN)
  std::string writer = "larder_context_writer";  // writes the RLS context (LOGIN)
  std::string owner = "larder_owner";            // owns the context machinery (NOLOGIN)
  std::string views = "larder_views";            // owns the masking views (NOLOGIN)
};

struct Policy {
  std::string file;    // where it was read from ("<builtin:healthcare>" for a compiled-in example)
  std::string digest;  // SHA-256 hex of the file's bytes (drift: the file changed since apply)
  Roles roles;
  // Schema of the masking views; it comes before "public" in the query role's search_path,
  // so an unqualified name reads the masked view of a table with masked columns.
  std::string view_schema = "larder_masked";
  bool pg_query = true;  // free-form SQL (pg_query, pg_explain); false: declared tools only
  std::vector<Fact> facts;
  std::vector<Relation> relations;
  std::vector<QueryTool> tools;

  const Relation* relation(std::string_view qualified_or_short) const;
  const Fact* fact(std::string_view name) const;
  // What the SQL guard allows: base tables without masked columns, and the masking views.
  std::set<std::string> guard_relations() const;
  // The schemas an unqualified name is looked up in, in order (the session's search_path
  // after pg_catalog): view_schema first when some relation is masked, then "public".
  std::vector<std::string> search_path() const;
  // The policy relation behind a name the guard reported ("larder_masked.accounts" ->
  // public.accounts); null when none.
  const Relation* behind(std::string_view guard_relation) const;
  // The fact names the RLS context carries (every declared fact), sorted.
  std::vector<std::string> dimensions() const;
};

// The SQL guard's policy for this file: its relations (masking views for tables with masked
// columns), its search path, the default functions.
db::GuardPolicy guard_policy(const Policy& policy);

// Reads and checks a policy file. `display_name` is what errors call the file.
Result<Policy> parse(std::string_view text, const std::string& display_name);
Result<Policy> load(const std::string& path);

// Identifiers from the policy file enter DDL only quoted (DDL takes no parameters; values
// never do, see apply.h): the database layer's quoting (db/connection.h).
using db::quote_ident;
using db::quote_qualified;

}  // namespace larder::policy
