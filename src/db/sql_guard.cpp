// SqlGuard: libpg_query parse -> JSON parse tree -> allow-list walk.
//
// How the walk stays fail-closed: libpg_query prints every parse-tree node as a one-key
// object {"NodeType": {fields...}}; embedded structs (Alias, TypeName, WindowDef in FuncCall,
// the larg/rarg of a set operation) are printed without that wrapper, with lower-case keys.
// The walker visits every object and array of the tree. A wrapped node must be one of the
// types listed in kPlainNodes or handled explicitly below, or the query is refused, so a node
// type we did not think of cannot slip through. Relations, functions, casts, column
// references and statements get their own checks wherever they appear.
//
// Stack safety: PostgreSQL's grammar keeps left-associative operator chains ("1+1+1+...")
// off the bison stack, so a 100 kB query can parse into a tree tens of thousands of levels
// deep, and libpg_query's recursive JSON writer then needs far more stack than a normal
// thread has. Inputs above kInlineParseBytes are therefore parsed on a helper thread with a
// stack sized for the input; our own recursion is bounded by a depth pre-scan of the JSON
// text (before nlohmann parses it) and by max_nesting_depth during the walk.
#include "db/sql_guard.h"

#include <pg_query.h>
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "db/sql_guard_lists.h"

namespace larder::db {
namespace {

using json = nlohmann::json;

constexpr std::size_t kInlineParseBytes = 4096;
constexpr int kMaxParamNumber = 65535;  // libpq's limit on bind parameters

// Thrown inside the walker only; check() turns it into the Result's Error.
struct Refusal {
  Error error;
};

[[noreturn]] void refuse(std::string message) {
  throw Refusal{make_error("sql_guard.rejected", std::move(message))};
}

[[noreturn]] void refuse_shape(const std::string& what) {
  throw Refusal{make_error("sql_guard.internal",
                           "unexpected parse tree shape (" + what + "); query refused")};
}

// ---------------------------------------------------------------------------------------
// Input checks

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

// Deepest {/[ nesting of a JSON text, stopping early once `limit` is passed.
int json_depth_exceeding(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// libpg_query calls (results always freed, also when copying throws)

struct ParseOutcome {
  bool ok = false;
  std::string tree;     // JSON parse tree
  std::string message;  // parser error
  int cursorpos = 0;    // 1-based character position of the error, 0 if unknown
};

ParseOutcome parse_now(const std::string& sql) {
  struct Holder {
    PgQueryParseResult r;
    ~Holder() { pg_query_free_parse_result(r); }
  } h{pg_query_parse(sql.c_str())};
  ParseOutcome out;
  if (h.r.error != nullptr) {
    out.message = h.r.error->message != nullptr ? h.r.error->message : "unknown parse error";
    out.cursorpos = h.r.error->cursorpos;
  } else if (h.r.parse_tree != nullptr) {
    out.ok = true;
    out.tree = h.r.parse_tree;
  } else {
    out.message = "parser returned no tree";
  }
  return out;
}

struct ParseJob {
  const std::string* sql = nullptr;
  ParseOutcome outcome;
  bool failed = false;  // an exception (allocation) escaped parse_now
};

extern "C" void* parse_job_main(void* arg) {
  auto* job = static_cast<ParseJob*>(arg);
  try {
    job->outcome = parse_now(*job->sql);
  } catch (...) {
    job->failed = true;
  }
  // libpg_query frees this thread's memory context when the thread exits.
  return nullptr;
}

Result<ParseOutcome> parse(const std::string& sql) {
  if (sql.size() <= kInlineParseBytes) return parse_now(sql);
  // Worst case about two input bytes per tree level and a few hundred bytes of parser stack
  // per level; reserve generously (address space only, pages are touched on demand).
  const std::size_t stack_bytes = (std::size_t{64} << 20) + sql.size() * 1024;
  ParseJob job;
  job.sql = &sql;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) {
    return make_error("sql_guard.internal", "cannot start the SQL parser thread; query refused");
  }
  int rc = pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_t thread{};
  if (rc == 0) rc = pthread_create(&thread, &attr, parse_job_main, &job);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    return make_error("sql_guard.internal",
                      "cannot start the SQL parser thread (error " + std::to_string(rc) +
                          "); query refused");
  }
  pthread_join(thread, nullptr);
  if (job.failed) {
    return make_error("sql_guard.internal", "out of memory while parsing; query refused");
  }
  return std::move(job.outcome);
}

std::string normalize(const std::string& sql) {
  struct Holder {
    PgQueryNormalizeResult r;
    ~Holder() { pg_query_free_normalize_result(r); }
  } h{pg_query_normalize(sql.c_str())};
  if (h.r.error != nullptr || h.r.normalized_query == nullptr) return {};
  return h.r.normalized_query;
}

std::string fingerprint(const std::string& sql) {
  struct Holder {
    PgQueryFingerprintResult r;
    ~Holder() { pg_query_free_fingerprint_result(r); }
  } h{pg_query_fingerprint(sql.c_str())};
  if (h.r.error != nullptr || h.r.fingerprint_str == nullptr) return {};
  return h.r.fingerprint_str;
}

// ---------------------------------------------------------------------------------------
// The walk

bool is_node(const json& j) {
  if (!j.is_object() || j.size() != 1) return false;
  const std::string& key = j.begin().key();
  return !key.empty() && key[0] >= 'A' && key[0] <= 'Z';
}

// Nodes that are harmless in themselves; their children are still walked.
const std::set<std::string, std::less<>>& plain_nodes() {
  static const std::set<std::string, std::less<>> kPlainNodes = {
      "ResTarget",   "A_Star",       "Integer",      "Float",         "Boolean",
      "BitString",   "List",         "A_Const",      "BoolExpr",      "NullTest",
      "BooleanTest", "CaseExpr",     "CaseWhen",     "CoalesceExpr",  "MinMaxExpr",
      "CollateClause", "A_ArrayExpr", "A_Indices",   "RowExpr",       "WindowDef",
      "GroupingSet", "GroupingFunc", "JoinExpr",     "RangeSubselect",
      "TypeCast",    "CTESearchClause", "CTECycleClause", "String",        "NamedArgExpr",
  };
  return kPlainNodes;
}

const std::set<std::string, std::less<>>& select_fields() {
  static const std::set<std::string, std::less<>> kFields = {
      "distinctClause", "intoClause",  "targetList",  "fromClause",   "whereClause",
      "groupClause",    "groupDistinct", "havingClause", "windowClause", "valuesLists",
      "sortClause",     "limitOffset", "limitCount",  "limitOption",  "lockingClause",
      "withClause",     "op",          "all",         "larg",         "rarg",
  };
  return kFields;
}

bool is_system_column(std::string_view name) {
  static constexpr std::string_view kSystem[] = {"ctid", "xmin", "xmax",
                                                 "cmin", "cmax", "tableoid"};
  return std::find(std::begin(kSystem), std::end(kSystem), name) != std::end(kSystem);
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += '.';
    s += n;
  }
  return s;
}

std::string locking_name(const std::string& strength) {
  if (strength == "LCS_FORKEYSHARE") return "FOR KEY SHARE";
  if (strength == "LCS_FORSHARE") return "FOR SHARE";
  if (strength == "LCS_FORNOKEYUPDATE") return "FOR NO KEY UPDATE";
  return "FOR UPDATE";
}

class Walker {
 public:
  Walker(const GuardPolicy& policy, GuardedQuery& out) : policy_(policy), out_(out) {}

  void statement(const json& stmt) {
    if (!is_node(stmt)) refuse_shape("statement");
    const std::string& type = stmt.begin().key();
    if (type != "SelectStmt") {
      refuse("statement type " + type + " is not allowed: only one SELECT");
    }
    node(stmt);
  }

 private:
  // One FROM-list entry: `name` is what the query calls it (alias or relation name);
  // `relation` is the schema-qualified base relation, empty for subqueries, CTEs, functions.
  struct FromItem {
    std::string name;
    std::string relation;
  };
  struct Scope {
    std::vector<FromItem> items;
    std::set<std::string> outputs;  // output column names of this SELECT
    bool outputs_visible = false;   // inside ORDER BY / GROUP BY: names may be outputs
    bool barrier = false;           // set operation: names refer to its output only
  };

  class DepthGuard {
   public:
    DepthGuard(int& depth, int max) : depth_(depth) {
      if (++depth_ > max) {
        throw Refusal{make_error("sql_guard.limit", "query nesting depth exceeds " +
                                                         std::to_string(max) +
                                                         "; simplify the query")};
      }
    }
    ~DepthGuard() { --depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    int& depth_;
  };

  // --- generic traversal ---

  void value(const json& v) {
    if (v.is_array()) {
      for (const auto& e : v) value(e);
    } else if (v.is_object()) {
      if (v.empty()) return;  // NULL list element
      if (is_node(v)) {
        node(v);
      } else {
        embedded_struct(v);
      }
    }
  }

  void embedded_struct(const json& s) {
    // An unwrapped RangeVar (only DML/INTO use one) is still a relation reference.
    if (s.contains("relname")) range_var(s);
    fields(s);
  }

  // `type_use` words the refusal of a bad TypeName field: "type cast to" or "column type".
  void fields(const json& body, const char* type_use = "type cast to") {
    if (!body.is_object()) refuse_shape("node body");
    for (const auto& [key, v] : body.items()) {
      if (key == "typeName" && v.is_object()) {
        type_name(v, type_use);
      } else {
        value(v);
      }
    }
  }

  void node(const json& n) {
    const std::string& type = n.begin().key();
    const json& body = n.begin().value();
    if (!body.is_object()) refuse_shape(type);
    DepthGuard guard(depth_, policy_.max_nesting_depth);

    if (type == "SelectStmt") return select(body);
    if (type == "ColumnRef") return column_ref(body);
    if (type == "FuncCall") {
      func_call(body);
      return fields(body);
    }
    if (type == "TypeName") return type_name(body, "type");
    if (type == "ColumnDef") return fields(body, "column type");
    if (type == "RangeVar") {
      range_var(body);
      return fields(body);
    }
    if (type == "ParamRef") return param_ref(body);
    if (type == "SQLValueFunction") return sql_value_function(body);
    if (type == "RangeFunction") {
      if (body.value("is_rowsfrom", false)) refuse("ROWS FROM is not allowed");
      return fields(body);
    }
    if (type == "RangeTableSample") {
      tablesample_method(body);
      return fields(body);
    }
    if (type == "A_Expr") {
      operator_name(body, "name");
      return fields(body);
    }
    if (type == "SortBy") {
      operator_name(body, "useOp");
      return fields(body);
    }
    if (type == "SubLink") {
      operator_name(body, "operName");
      return fields(body);
    }
    if (type == "A_Indirection") {
      indirection(body);
      return fields(body);
    }
    if (type == "LockingClause") {
      refuse(locking_name(body.value("strength", std::string())) +
             " locking clause is not allowed");
    }
    if (type == "IntoClause") refuse("SELECT INTO is not allowed");
    if (type == "WithClause" || type == "CommonTableExpr") refuse_shape(type + " outside SELECT");
    if (plain_nodes().count(type) != 0) return fields(body);
    refuse("construct " + type + " is not allowed");
  }

  // --- SELECT and its scopes ---

  void select(const json& s) {
    for (const auto& [key, v] : s.items()) {
      (void)v;
      if (select_fields().count(key) == 0) refuse("SELECT clause " + key + " is not allowed");
    }
    if (s.contains("intoClause")) refuse("SELECT INTO is not allowed");
    if (s.contains("lockingClause")) {
      std::string strength;
      const json& lc = s["lockingClause"];
      if (lc.is_array() && !lc.empty() && is_node(lc[0])) {
        strength = lc[0].begin().value().value("strength", std::string());
      }
      refuse(locking_name(strength) + " locking clause is not allowed");
    }

    const std::size_t cte_mark = ctes_.size();
    if (s.contains("withClause")) with_clause(s["withClause"]);

    const std::string op = s.value("op", std::string("SETOP_NONE"));
    if (op != "SETOP_NONE") {
      if (!s.contains("larg") || !s.contains("rarg")) refuse_shape("set operation");
      set_operand(s["larg"]);
      set_operand(s["rarg"]);
      Scope scope;
      scope.barrier = true;
      scopes_.push_back(std::move(scope));
      for (const char* key : {"sortClause", "limitCount", "limitOffset"}) {
        if (s.contains(key)) value(s[key]);
      }
      scopes_.pop_back();
      ctes_.resize(cte_mark);
      return;
    }

    Scope scope;
    if (s.contains("fromClause")) {
      for (const auto& item : s["fromClause"]) collect_from(item, scope.items);
    }
    if (s.contains("targetList")) {
      for (const auto& t : s["targetList"]) {
        if (is_node(t) && t.begin().key() == "ResTarget") {
          const json& rt = t.begin().value();
          if (rt.contains("name") && rt["name"].is_string()) {
            scope.outputs.insert(rt["name"].get<std::string>());
          }
        }
      }
    }
    scopes_.push_back(std::move(scope));
    for (const char* key : {"fromClause", "targetList", "whereClause", "havingClause",
                            "windowClause", "valuesLists", "distinctClause", "limitCount",
                            "limitOffset"}) {
      if (s.contains(key)) value(s[key]);
    }
    for (const char* key : {"groupClause", "sortClause"}) {
      if (!s.contains(key)) continue;
      scopes_.back().outputs_visible = true;
      value(s[key]);
      scopes_.back().outputs_visible = false;
    }
    scopes_.pop_back();
    ctes_.resize(cte_mark);
  }

  void set_operand(const json& arg) {
    if (!arg.is_object()) refuse_shape("set operand");
    if (is_node(arg)) return value(arg);  // wrapped form
    DepthGuard guard(depth_, policy_.max_nesting_depth);
    select(arg);
  }

  void with_clause(const json& w) {
    if (!w.is_object() || !w.contains("ctes") || !w["ctes"].is_array()) refuse_shape("WITH");
    const bool recursive = w.value("recursive", false);
    std::vector<std::pair<std::string, const json*>> ctes;
    for (const auto& c : w["ctes"]) {
      if (!is_node(c) || c.begin().key() != "CommonTableExpr") refuse_shape("WITH entry");
      const json& cte = c.begin().value();
      if (!cte.contains("ctename") || !cte["ctename"].is_string()) refuse_shape("CTE name");
      ctes.emplace_back(cte["ctename"].get<std::string>(), &cte);
    }
    // WITH RECURSIVE: every CTE sees all of them; plain WITH: each sees the earlier ones.
    if (recursive) {
      for (const auto& c : ctes) ctes_.push_back(c.first);
    }
    for (const auto& [name, cte] : ctes) {
      if (!cte->contains("ctequery") || !is_node((*cte)["ctequery"])) refuse_shape("CTE query");
      const json& query = (*cte)["ctequery"];
      const std::string& type = query.begin().key();
      if (type == "InsertStmt" || type == "UpdateStmt" || type == "DeleteStmt" ||
          type == "MergeStmt") {
        refuse("data-modifying WITH is not allowed (" + type + " in WITH " + name + ")");
      }
      if (type != "SelectStmt") refuse("WITH query type " + type + " is not allowed");
      for (const auto& [key, v] : cte->items()) {
        if (key == "ctequery") {
          node(v);
        } else {
          value(v);
        }
      }
      if (!recursive) ctes_.push_back(name);
    }
  }

  bool is_cte(const std::string& name) const {
    return std::find(ctes_.begin(), ctes_.end(), name) != ctes_.end();
  }

  // Records what a FROM item makes visible; the checks happen when the item is walked.
  void collect_from(const json& item, std::vector<FromItem>& items) {
    if (!is_node(item)) return;
    const std::string& type = item.begin().key();
    const json& body = item.begin().value();
    std::string alias;
    if (body.contains("alias") && body["alias"].is_object()) {
      alias = body["alias"].value("aliasname", std::string());
    }
    if (type == "RangeVar") {
      const std::string relname = body.value("relname", std::string());
      const std::string schema = body.value("schemaname", std::string());
      std::string relation;
      if (!schema.empty()) {
        relation = schema + "." + relname;
      } else if (!is_cte(relname)) {
        relation = "public." + relname;
      }
      items.push_back({alias.empty() ? relname : alias, relation});
    } else if (type == "JoinExpr") {
      if (body.contains("larg")) collect_from(body["larg"], items);
      if (body.contains("rarg")) collect_from(body["rarg"], items);
      if (!alias.empty()) items.push_back({alias, ""});
    } else if (type == "RangeTableSample") {
      if (body.contains("relation")) collect_from(body["relation"], items);
    } else if (!alias.empty()) {
      items.push_back({alias, ""});
    }
  }

  // --- relations ---

  void range_var(const json& rv) {
    const std::string relname = rv.value("relname", std::string());
    const std::string schema = rv.value("schemaname", std::string());
    const std::string catalog = rv.value("catalogname", std::string());
    if (!catalog.empty()) {
      refuse("relation " + catalog + "." + schema + "." + relname +
             " is not allowed: database-qualified names are refused");
    }
    if (schema.empty() && is_cte(relname)) return;
    const std::string written = schema.empty() ? relname : schema + "." + relname;
    if (schema.empty() && relname.rfind("pg_", 0) == 0) {
      refuse("relation " + written + " is not allowed");
    }
    const std::string qualified = schema.empty() ? "public." + relname : written;
    if (policy_.allowed_relations.count(qualified) == 0) {
      refuse("relation " + written + " is not allowed");
    }
    out_.relations.insert(qualified);
  }

  // --- columns ---

  static std::vector<std::string> string_list(const json& list, bool* star) {
    std::vector<std::string> names;
    if (!list.is_array()) refuse_shape("name list");
    for (const auto& f : list) {
      if (!is_node(f)) refuse_shape("name list entry");
      const std::string& t = f.begin().key();
      if (t == "String") {
        names.push_back(f.begin().value().value("sval", std::string()));
      } else if (t == "A_Star" && star != nullptr) {
        *star = true;
      } else {
        refuse_shape("name list entry " + t);
      }
    }
    return names;
  }

  void refuse_function_notation(const std::string& written, const std::string& last) {
    if (guard_lists::is_always_denied_function(last)) {
      refuse("column reference " + written + " is not allowed: " + last +
             " is a denied function name");
    }
  }

  void column_ref(const json& body) {
    bool star = false;
    std::vector<std::string> names = string_list(body.value("fields", json::array()), &star);
    if (!star && names.empty()) refuse_shape("empty column reference");
    if (!star) {
      const std::string& last = names.back();
      if (is_system_column(last)) refuse("system column " + last + " is not allowed");
      if (names.size() >= 2) refuse_function_notation(join_names(names), last);
    }

    if (star && names.empty()) {  // SELECT *
      attribute_all(nearest_items_scope(), "*");
      return;
    }
    if (!star && names.size() == 1) {
      const std::string& name = names[0];
      if (!scopes_.empty() && scopes_.back().outputs_visible &&
          scopes_.back().outputs.count(name) != 0) {
        return;  // ORDER BY / GROUP BY output column
      }
      if (const FromItem* item = find_item(name); item != nullptr) {
        // Whole-row reference (row_to_json(h)): every column of a base relation is read;
        // for a subquery or CTE its own columns were recorded when it was walked.
        if (!item->relation.empty()) attribute(item->relation, "*");
        return;
      }
      attribute_all(nearest_items_scope(), name);
      return;
    }
    // Qualified: [alias, col] | [schema, table, col] | [db, schema, table, col].
    const std::string column = star ? "*" : names.back();
    const std::size_t qual = star ? names.size() : names.size() - 1;
    if (qual == 1) {
      if (const FromItem* item = find_item(names[0]); item != nullptr && !item->relation.empty()) {
        attribute(item->relation, column);
      }
    } else if (qual >= 2) {
      const std::string relation = names[qual - 2] + "." + names[qual - 1];
      if (out_.relations.count(relation) != 0 || policy_.allowed_relations.count(relation) != 0) {
        attribute(relation, column);
      }
    }
  }

  const FromItem* find_item(const std::string& name) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      for (const auto& item : s->items) {
        if (item.name == name) return &item;
      }
      if (s->barrier) break;
    }
    return nullptr;
  }

  // The innermost scope with base relations (unqualified names may be outer references).
  const Scope* nearest_items_scope() const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      if (s->barrier) return nullptr;
      for (const auto& item : s->items) {
        if (!item.relation.empty()) return &*s;
      }
      if (!s->items.empty()) return nullptr;  // derived tables only: columns come from them
    }
    return nullptr;
  }

  void attribute_all(const Scope* scope, const std::string& column) {
    if (scope == nullptr) return;
    for (const auto& item : scope->items) {
      if (!item.relation.empty()) attribute(item.relation, column);
    }
  }

  void attribute(const std::string& relation, const std::string& column) {
    // Only relations the walk accepted are reported (a name that failed the relation check
    // has already refused the query).
    if (policy_.allowed_relations.count(relation) != 0) out_.columns[relation].insert(column);
  }

  void indirection(const json& body) {
    if (!body.contains("indirection") || !body["indirection"].is_array()) return;
    for (const auto& e : body["indirection"]) {
      if (is_node(e) && e.begin().key() == "String") {
        const std::string field = e.begin().value().value("sval", std::string());
        if (is_system_column(field)) refuse("system column " + field + " is not allowed");
        refuse_function_notation("(...)." + field, field);
      }
    }
  }

  // --- functions, operators, types, parameters ---

  void func_call(const json& body) {
    std::vector<std::string> names = string_list(body.value("funcname", json::array()), nullptr);
    if (names.empty()) refuse_shape("function name");
    const std::string written = join_names(names);
    if (names.size() > 2) {
      refuse("function " + written + " is not allowed: database-qualified names are refused");
    }
    if (names.size() == 2 && names[0] != "pg_catalog" && names[0] != "public") {
      refuse("function " + written + " is not allowed: schema " + names[0] +
             " is not pg_catalog or public");
    }
    const std::string& fname = names.back();
    if (guard_lists::is_always_denied_function(fname) ||
        policy_.allowed_functions.count(fname) == 0) {
      refuse("function " + written + " is not allowed");
    }
  }

  void operator_name(const json& body, const char* key) {
    if (!body.contains(key)) return;
    std::vector<std::string> names = string_list(body[key], nullptr);
    if (names.size() > 1 && (names.size() > 2 || names[0] != "pg_catalog")) {
      refuse("operator " + join_names(names) + " is not allowed: only pg_catalog operators");
    }
  }

  void type_name(const json& body, const char* use) {
    std::vector<std::string> names = string_list(body.value("names", json::array()), nullptr);
    if (names.empty()) refuse_shape("type name");
    const std::string written = join_names(names);
    if (body.value("setof", false)) refuse("SETOF " + written + " is not allowed");
    if (body.value("pct_type", false)) refuse("%TYPE reference is not allowed");
    const bool schema_ok = names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog");
    if (!schema_ok || !guard_lists::is_allowed_cast_type(names.back())) {
      refuse(std::string(use) + " " + written + " is not allowed");
    }
    if (body.contains("typmods")) value(body["typmods"]);
  }

  void param_ref(const json& body) {
    const json& number = body.value("number", json(0));
    if (!number.is_number_integer()) refuse_shape("parameter number");
    const auto n = number.get<std::int64_t>();
    if (n < 1 || n > kMaxParamNumber) {
      refuse("parameter $" + std::to_string(n) + " is out of range (1.." +
             std::to_string(kMaxParamNumber) + ")");
    }
    out_.param_count = std::max(out_.param_count, static_cast<int>(n));
  }

  void sql_value_function(const json& body) {
    const std::string op = body.value("op", std::string());
    static const std::set<std::string, std::less<>> kAllowed = {
        "SVFOP_CURRENT_DATE",      "SVFOP_CURRENT_TIME",  "SVFOP_CURRENT_TIME_N",
        "SVFOP_CURRENT_TIMESTAMP", "SVFOP_CURRENT_TIMESTAMP_N", "SVFOP_LOCALTIME",
        "SVFOP_LOCALTIME_N",       "SVFOP_LOCALTIMESTAMP", "SVFOP_LOCALTIMESTAMP_N",
    };
    if (kAllowed.count(op) == 0) {
      const std::string name = op.rfind("SVFOP_", 0) == 0 ? op.substr(6) : op;
      refuse(name + " is not allowed");
    }
  }

  void tablesample_method(const json& body) {
    std::vector<std::string> names = string_list(body.value("method", json::array()), nullptr);
    const bool ok = !names.empty() &&
                    (names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog")) &&
                    (names.back() == "bernoulli" || names.back() == "system");
    if (!ok) refuse("TABLESAMPLE method " + join_names(names) + " is not allowed");
  }

  const GuardPolicy& policy_;
  GuardedQuery& out_;
  std::vector<Scope> scopes_;
  std::vector<std::string> ctes_;  // CTE names visible at this point of the walk
  int depth_ = 0;
};

std::string syntax_message(const ParseOutcome& p, std::string_view sql) {
  std::string msg = "SQL syntax error: " + p.message;
  if (p.cursorpos > 0) {
    // cursorpos counts characters from 1; report line and column too.
    int line = 1;
    int column = 1;
    int chars = 0;
    for (std::size_t i = 0; i < sql.size() && chars < p.cursorpos - 1; ++i) {
      const auto c = static_cast<unsigned char>(sql[i]);
      if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
      ++chars;
      if (c == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    msg += " at position " + std::to_string(p.cursorpos) + " (line " + std::to_string(line) +
           ", column " + std::to_string(column) + ")";
  }
  return msg;
}

Result<GuardedQuery> check_impl(const GuardPolicy& policy, std::string_view sql_view) {
  if (sql_view.size() > policy.max_query_bytes) {
    return make_error("sql_guard.limit", "query is " + std::to_string(sql_view.size()) +
                                             " bytes; the limit is " +
                                             std::to_string(policy.max_query_bytes));
  }
  if (sql_view.find('\0') != std::string_view::npos) {
    return make_error("sql_guard.limit", "query contains a NUL byte");
  }
  if (!valid_utf8(sql_view)) {
    return make_error("sql_guard.limit", "query is not valid UTF-8");
  }
  const std::string sql(sql_view);

  Result<ParseOutcome> parsed = parse(sql);
  if (!parsed) return parsed.error();
  if (!parsed->ok) return make_error("sql_guard.syntax", syntax_message(*parsed, sql_view));

  // Each tree level costs at most a few JSON levels; refuse before building the DOM.
  const int json_limit = 4 * std::max(policy.max_nesting_depth, 1) + 16;
  if (json_depth_exceeding(parsed->tree, json_limit) != 0) {
    return make_error("sql_guard.limit", "query nesting depth exceeds " +
                                             std::to_string(policy.max_nesting_depth) +
                                             "; simplify the query");
  }
  json tree = json::parse(parsed->tree, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded() || !tree.is_object()) {
    return make_error("sql_guard.internal", "parse tree is not readable; query refused");
  }
  const auto stmts_it = tree.find("stmts");
  if (stmts_it == tree.end() || !stmts_it->is_array()) {
    return make_error("sql_guard.internal", "parse tree has no statement list; query refused");
  }
  const json& stmts = *stmts_it;
  if (stmts.empty()) {
    return make_error("sql_guard.rejected", "no statement found: send exactly one SELECT");
  }
  if (stmts.size() > 1) {
    return make_error("sql_guard.rejected", std::to_string(stmts.size()) +
                                                " statements found: only one is allowed");
  }
  const json& raw = stmts[0];
  if (!raw.is_object() || !raw.contains("stmt")) {
    return make_error("sql_guard.internal", "statement without a body; query refused");
  }

  GuardedQuery out;
  try {
    Walker walker(policy, out);
    walker.statement(raw["stmt"]);
  } catch (const Refusal& r) {
    return r.error;
  } catch (const json::exception& e) {
    return make_error("sql_guard.internal",
                      std::string("unexpected parse tree shape (") + e.what() + "); query refused");
  }

  // A qualified column can name an allowed relation the query never reads from (PostgreSQL
  // would reject it); report only relations that are really in a FROM list.
  for (auto it = out.columns.begin(); it != out.columns.end();) {
    it = out.relations.count(it->first) != 0 ? std::next(it) : out.columns.erase(it);
  }

  out.normalized_sql = normalize(sql);
  out.fingerprint = fingerprint(sql);
  if (out.fingerprint.empty()) {
    return make_error("sql_guard.internal", "cannot fingerprint the query; query refused");
  }
  if (out.normalized_sql.empty()) out.normalized_sql = sql;
  return out;
}

}  // namespace

SqlGuard::SqlGuard(GuardPolicy policy) : policy_(std::move(policy)) {}

Result<GuardedQuery> SqlGuard::check(std::string_view sql) const {
  try {
    return check_impl(policy_, sql);
  } catch (const std::bad_alloc&) {
    return make_error("sql_guard.internal", "out of memory while checking the query; refused");
  }
}

}  // namespace larder::db
