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
// stack sized for the input; our own recursion is bounded by the JSON reader's depth limit
// (sql_guard_tree.h) and by max_nesting_depth during the walk.
#include "db/sql_guard.h"

#include <pg_query.h>
#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "db/sql_guard_lists.h"
#include "db/sql_guard_tree.h"

namespace larder::db {
namespace {

// Up to this size the parse runs on the caller's thread: at most ~1000 tree levels, about
// 350 kB of libpg_query stack. Larger inputs get a helper thread with a sized stack.
constexpr std::size_t kInlineParseBytes = 2048;
constexpr int kMaxParamNumber = 65535;  // libpq's limit on bind parameters

// Thrown inside the walker only; check() turns it into the Result's Error.
struct Refusal {
  Error error;
};

[[noreturn]] void refuse(std::string message) {
  throw Refusal{make_error("sql_guard.rejected", std::move(message))};
}

[[noreturn]] void refuse_shape(const std::string& what) {
  throw Refusal{
      make_error("sql_guard.internal", "unexpected parse tree shape (" + what + "); query refused")};
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
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
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
                      "cannot start the SQL parser thread (error " + std::to_string(rc) + "); query refused");
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

using guard_tree::Document;
using guard_tree::Value;

// Nodes that are harmless in themselves; their children are still walked.
bool is_plain_node(std::string_view type) {
  static constexpr std::string_view kPlainNodes[] = {
      "ResTarget", "A_Star",       "Integer",      "Float",           "Boolean",        "BitString",
      "List",      "A_Const",      "BoolExpr",     "NullTest",        "BooleanTest",    "CaseExpr",
      "CaseWhen",  "CoalesceExpr", "MinMaxExpr",   "CollateClause",   "A_ArrayExpr",    "A_Indices",
      "RowExpr",   "WindowDef",    "GroupingSet",  "GroupingFunc",    "JoinExpr",       "RangeSubselect",
      "TypeCast",  "String",       "NamedArgExpr", "CTESearchClause", "CTECycleClause",
  };
  return std::find(std::begin(kPlainNodes), std::end(kPlainNodes), type) != std::end(kPlainNodes);
}

bool is_select_field(std::string_view key) {
  static constexpr std::string_view kFields[] = {
      "distinctClause", "intoClause",   "targetList",    "fromClause",  "whereClause", "groupClause",
      "groupDistinct",  "havingClause", "windowClause",  "valuesLists", "sortClause",  "limitOffset",
      "limitCount",     "limitOption",  "lockingClause", "withClause",  "op",          "all",
      "larg",           "rarg",
  };
  return std::find(std::begin(kFields), std::end(kFields), key) != std::end(kFields);
}

bool is_system_column(std::string_view name) {
  static constexpr std::string_view kSystem[] = {"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"};
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

std::string locking_name(std::string_view strength) {
  if (strength == "LCS_FORKEYSHARE") return "FOR KEY SHARE";
  if (strength == "LCS_FORSHARE") return "FOR SHARE";
  if (strength == "LCS_FORNOKEYUPDATE") return "FOR NO KEY UPDATE";
  return "FOR UPDATE";
}

class Walker {
 public:
  Walker(const Document& doc, const GuardPolicy& policy, GuardedQuery& out)
      : doc_(doc), policy_(policy), out_(out) {}

  void statement(const Value& stmt) {
    if (!is_node(stmt)) refuse_shape("statement");
    const std::string_view type = type_of(stmt);
    if (type != "SelectStmt") {
      refuse("statement type " + std::string(type) + " is not allowed: only one SELECT");
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
    std::unordered_map<std::string, std::size_t> by_name;  // item name -> first index
    std::vector<std::string> base_relations;               // distinct, in FROM order
    std::set<std::string, std::less<>> outputs;            // output column names of this SELECT
    bool outputs_visible = false;                          // inside ORDER BY / GROUP BY: names may be outputs
    bool barrier = false;                                  // set operation: names refer to its output only

    // Indexes `items` so a query with thousands of FROM items and column references stays
    // linear.
    void index() {
      for (std::size_t i = 0; i < items.size(); ++i) {
        by_name.emplace(items[i].name, i);
        const std::string& rel = items[i].relation;
        if (!rel.empty() &&
            std::find(base_relations.begin(), base_relations.end(), rel) == base_relations.end()) {
          base_relations.push_back(rel);
        }
      }
    }
  };

  class DepthGuard {
   public:
    DepthGuard(int& depth, int max) : depth_(depth) {
      if (++depth_ > max) {
        throw Refusal{make_error("sql_guard.limit", "query nesting depth exceeds " + std::to_string(max) +
                                                        "; simplify the query")};
      }
    }
    ~DepthGuard() { --depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    int& depth_;
  };

  // --- tree access ---

  // A wrapped parse-tree node: {"NodeType": {...}}.
  bool is_node(const Value& v) const {
    if (!v.is_object() || v.size() != 1) return false;
    const std::string_view key = doc_.key(v, 0);
    return !key.empty() && key[0] >= 'A' && key[0] <= 'Z';
  }
  std::string_view type_of(const Value& n) const { return doc_.key(n, 0); }
  const Value& body_of(const Value& n) const { return doc_.child(n, 0); }
  const Value* get(const Value& body, std::string_view key) const { return doc_.find(body, key); }

  std::string_view str_field(const Value& body, std::string_view key) const {
    const Value* v = get(body, key);
    if (v == nullptr) return {};
    if (!v->is_string()) refuse_shape(std::string(key));
    return v->str();
  }
  bool bool_field(const Value& body, std::string_view key) const {
    const Value* v = get(body, key);
    if (v == nullptr) return false;
    if (!v->is_bool()) refuse_shape(std::string(key));
    return v->boolean();
  }

  // --- generic traversal ---

  void value(const Value& v) {
    if (v.is_array()) {
      for (std::size_t i = 0; i < v.size(); ++i) value(doc_.child(v, i));
    } else if (v.is_object()) {
      if (v.size() == 0) return;  // NULL list element
      if (is_node(v)) {
        node(v);
      } else {
        embedded_struct(v);
      }
    }
  }

  void embedded_struct(const Value& s) {
    // An unwrapped RangeVar (only DML/INTO use one) is still a relation reference.
    if (get(s, "relname") != nullptr) range_var(s);
    fields(s);
  }

  // `type_use` words the refusal of a bad TypeName field: "type cast to" or "column type".
  void fields(const Value& body, const char* type_use = "type cast to") {
    if (!body.is_object()) refuse_shape("node body");
    for (std::size_t i = 0; i < body.size(); ++i) {
      const Value& v = doc_.child(body, i);
      if (doc_.key(body, i) == "typeName" && v.is_object()) {
        type_name(v, type_use);
      } else {
        value(v);
      }
    }
  }

  void node(const Value& n) {
    const std::string_view type = type_of(n);
    const Value& body = body_of(n);
    if (!body.is_object()) refuse_shape(std::string(type));
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
      if (bool_field(body, "is_rowsfrom")) refuse("ROWS FROM is not allowed");
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
      refuse(locking_name(str_field(body, "strength")) + " locking clause is not allowed");
    }
    if (type == "IntoClause") refuse("SELECT INTO is not allowed");
    if (type == "WithClause" || type == "CommonTableExpr") {
      refuse_shape(std::string(type) + " outside SELECT");
    }
    if (is_plain_node(type)) return fields(body);
    refuse("construct " + std::string(type) + " is not allowed");
  }

  // --- SELECT and its scopes ---

  void select(const Value& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::string_view key = doc_.key(s, i);
      if (!is_select_field(key)) refuse("SELECT clause " + std::string(key) + " is not allowed");
    }
    if (get(s, "intoClause") != nullptr) refuse("SELECT INTO is not allowed");
    if (const Value* lc = get(s, "lockingClause"); lc != nullptr) {
      std::string_view strength;
      if (lc->is_array() && lc->size() > 0 && is_node(doc_.child(*lc, 0))) {
        strength = str_field(body_of(doc_.child(*lc, 0)), "strength");
      }
      refuse(locking_name(strength) + " locking clause is not allowed");
    }

    const std::size_t cte_mark = ctes_.size();
    if (const Value* w = get(s, "withClause"); w != nullptr) with_clause(*w);

    const std::string_view op = str_field(s, "op");
    if (!op.empty() && op != "SETOP_NONE") {
      const Value* larg = get(s, "larg");
      const Value* rarg = get(s, "rarg");
      if (larg == nullptr || rarg == nullptr) refuse_shape("set operation");
      // A set operation carries only its operands, ORDER BY and LIMIT; anything else would
      // go unwalked below, so refuse it.
      for (const char* key : {"targetList", "fromClause", "whereClause", "groupClause", "havingClause",
                              "windowClause", "valuesLists", "distinctClause"}) {
        if (get(s, key) != nullptr) refuse_shape(std::string("set operation with ") + key);
      }
      set_operand(*larg);
      set_operand(*rarg);
      Scope scope;
      scope.barrier = true;
      scopes_.push_back(std::move(scope));
      for (const char* key : {"sortClause", "limitCount", "limitOffset"}) {
        if (const Value* v = get(s, key)) value(*v);
      }
      scopes_.pop_back();
      pop_ctes(cte_mark);
      return;
    }
    if (get(s, "larg") != nullptr || get(s, "rarg") != nullptr) refuse_shape("set operands");

    Scope scope;
    if (const Value* from = get(s, "fromClause"); from != nullptr) {
      if (!from->is_array()) refuse_shape("FROM list");
      for (std::size_t i = 0; i < from->size(); ++i) collect_from(doc_.child(*from, i), scope.items);
      scope.index();
    }
    if (const Value* targets = get(s, "targetList"); targets != nullptr && targets->is_array()) {
      for (std::size_t i = 0; i < targets->size(); ++i) {
        const Value& t = doc_.child(*targets, i);
        if (is_node(t) && type_of(t) == "ResTarget") {
          const std::string_view name = str_field(body_of(t), "name");
          if (!name.empty()) scope.outputs.emplace(name);
        }
      }
    }
    scopes_.push_back(std::move(scope));
    for (const char* key : {"fromClause", "targetList", "whereClause", "havingClause", "windowClause",
                            "valuesLists", "distinctClause", "limitCount", "limitOffset"}) {
      if (const Value* v = get(s, key)) value(*v);
    }
    for (const char* key : {"groupClause", "sortClause"}) {
      const Value* v = get(s, key);
      if (v == nullptr) continue;
      scopes_.back().outputs_visible = true;
      value(*v);
      scopes_.back().outputs_visible = false;
    }
    scopes_.pop_back();
    pop_ctes(cte_mark);
  }

  void set_operand(const Value& arg) {
    if (!arg.is_object()) refuse_shape("set operand");
    if (is_node(arg)) return value(arg);  // wrapped form
    DepthGuard guard(depth_, policy_.max_nesting_depth);
    select(arg);
  }

  void with_clause(const Value& w) {
    const Value* list = w.is_object() ? get(w, "ctes") : nullptr;
    if (list == nullptr || !list->is_array()) refuse_shape("WITH");
    const bool recursive = bool_field(w, "recursive");
    std::vector<std::pair<std::string, const Value*>> ctes;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Value& c = doc_.child(*list, i);
      if (!is_node(c) || type_of(c) != "CommonTableExpr") refuse_shape("WITH entry");
      const Value& cte = body_of(c);
      const std::string_view name = str_field(cte, "ctename");
      if (name.empty()) refuse_shape("CTE name");
      ctes.emplace_back(std::string(name), &cte);
    }
    // WITH RECURSIVE: every CTE sees all of them; plain WITH: each sees the earlier ones.
    if (recursive) {
      for (const auto& c : ctes) push_cte(c.first);
    }
    for (const auto& [name, cte] : ctes) {
      const Value* query = get(*cte, "ctequery");
      if (query == nullptr || !is_node(*query)) refuse_shape("CTE query");
      const std::string_view type = type_of(*query);
      if (type == "InsertStmt" || type == "UpdateStmt" || type == "DeleteStmt" || type == "MergeStmt") {
        refuse("data-modifying WITH is not allowed (" + std::string(type) + " in WITH " + name + ")");
      }
      if (type != "SelectStmt") refuse("WITH query type " + std::string(type) + " is not allowed");
      for (std::size_t i = 0; i < cte->size(); ++i) {
        const Value& v = doc_.child(*cte, i);
        if (doc_.key(*cte, i) == "ctequery") {
          node(v);
        } else {
          value(v);
        }
      }
      if (!recursive) push_cte(name);
    }
  }

  bool is_cte(std::string_view name) const {
    const auto it = cte_counts_.find(std::string(name));
    return it != cte_counts_.end() && it->second > 0;
  }
  void push_cte(const std::string& name) {
    ctes_.push_back(name);
    ++cte_counts_[name];
  }
  void pop_ctes(std::size_t mark) {
    while (ctes_.size() > mark) {
      --cte_counts_[ctes_.back()];
      ctes_.pop_back();
    }
  }

  // Records what a FROM item makes visible; the checks happen when the item is walked.
  void collect_from(const Value& item, std::vector<FromItem>& items) {
    if (!is_node(item)) return;
    const std::string_view type = type_of(item);
    const Value& body = body_of(item);
    std::string alias;
    if (const Value* a = get(body, "alias"); a != nullptr && a->is_object()) {
      alias = std::string(str_field(*a, "aliasname"));
    }
    if (type == "RangeVar") {
      const std::string relname(str_field(body, "relname"));
      const std::string_view schema = str_field(body, "schemaname");
      std::string relation;
      if (!schema.empty()) {
        relation = std::string(schema) + "." + relname;
      } else if (!is_cte(relname)) {
        relation = resolve(relname);
      }
      items.push_back({alias.empty() ? relname : alias, relation});
    } else if (type == "JoinExpr") {
      if (const Value* l = get(body, "larg")) collect_from(*l, items);
      if (const Value* r = get(body, "rarg")) collect_from(*r, items);
      if (!alias.empty()) items.push_back({alias, ""});
    } else if (type == "RangeTableSample") {
      if (const Value* r = get(body, "relation")) collect_from(*r, items);
    } else if (!alias.empty()) {
      items.push_back({alias, ""});
    }
  }

  // --- relations ---

  // An unqualified name, as the server's search_path resolves it: the first schema of the
  // policy's search path where it names an allowed relation (the session's search_path is
  // pg_catalog, then the same list; unqualified pg_* names are refused before this).
  std::string resolve(const std::string& relname) const {
    for (const auto& schema : policy_.search_path) {
      std::string candidate = schema + "." + relname;
      if (policy_.allowed_relations.count(candidate) != 0) return candidate;
    }
    return (policy_.search_path.empty() ? std::string("public") : policy_.search_path.back()) + "." + relname;
  }

  void range_var(const Value& rv) {
    const std::string relname(str_field(rv, "relname"));
    const std::string schema(str_field(rv, "schemaname"));
    const std::string_view catalog = str_field(rv, "catalogname");
    if (!catalog.empty()) {
      refuse("relation " + std::string(catalog) + "." + schema + "." + relname +
             " is not allowed: database-qualified names are refused");
    }
    if (schema.empty() && is_cte(relname)) return;
    const std::string written = schema.empty() ? relname : schema + "." + relname;
    if (schema.empty() && relname.rfind("pg_", 0) == 0) {
      refuse("relation " + written + " is not allowed");
    }
    const std::string qualified = schema.empty() ? resolve(relname) : written;
    if (policy_.allowed_relations.count(qualified) == 0) {
      refuse("relation " + written + " is not allowed");
    }
    out_.relations.insert(qualified);
  }

  // --- columns ---

  std::vector<std::string> string_list(const Value* list, bool* star) const {
    std::vector<std::string> names;
    if (list == nullptr) return names;
    if (!list->is_array()) refuse_shape("name list");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Value& f = doc_.child(*list, i);
      if (!is_node(f)) refuse_shape("name list entry");
      const std::string_view t = type_of(f);
      if (t == "String") {
        names.emplace_back(str_field(body_of(f), "sval"));
      } else if (t == "A_Star" && star != nullptr) {
        *star = true;
      } else {
        refuse_shape("name list entry " + std::string(t));
      }
    }
    return names;
  }

  static void refuse_function_notation(const std::string& written, const std::string& last) {
    if (guard_lists::is_always_denied_function(last)) {
      refuse("column reference " + written + " is not allowed: " + last + " is a denied function name");
    }
  }

  void column_ref(const Value& body) {
    bool star = false;
    const std::vector<std::string> names = string_list(get(body, "fields"), &star);
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
      if (!scopes_.empty() && scopes_.back().outputs_visible && scopes_.back().outputs.count(name) != 0) {
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
      attribute(names[qual - 2] + "." + names[qual - 1], column);
    }
  }

  const FromItem* find_item(const std::string& name) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      if (auto it = s->by_name.find(name); it != s->by_name.end()) return &s->items[it->second];
      if (s->barrier) break;
    }
    return nullptr;
  }

  // The innermost scope with base relations (unqualified names may be outer references).
  const Scope* nearest_items_scope() const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s) {
      if (s->barrier) return nullptr;
      if (!s->base_relations.empty()) return &*s;
      if (!s->items.empty()) return nullptr;  // derived tables only: columns come from them
    }
    return nullptr;
  }

  void attribute_all(const Scope* scope, const std::string& column) {
    if (scope == nullptr) return;
    for (const auto& relation : scope->base_relations) attribute(relation, column);
  }

  void attribute(const std::string& relation, const std::string& column) {
    // Relations outside the policy refuse the query when their FROM item is walked; entries
    // for relations not in any FROM list are dropped at the end.
    if (policy_.allowed_relations.count(relation) != 0) out_.columns[relation].insert(column);
  }

  void indirection(const Value& body) {
    const Value* list = get(body, "indirection");
    if (list == nullptr || !list->is_array()) return;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Value& e = doc_.child(*list, i);
      if (is_node(e) && type_of(e) == "String") {
        const std::string field(str_field(body_of(e), "sval"));
        if (is_system_column(field)) refuse("system column " + field + " is not allowed");
        refuse_function_notation("(...)." + field, field);
      }
    }
  }

  // --- functions, operators, types, parameters ---

  void func_call(const Value& body) {
    const std::vector<std::string> names = string_list(get(body, "funcname"), nullptr);
    if (names.empty()) refuse_shape("function name");
    const std::string written = join_names(names);
    if (names.size() > 2) {
      refuse("function " + written + " is not allowed: database-qualified names are refused");
    }
    if (names.size() == 2 && names[0] != "pg_catalog" && names[0] != "public") {
      refuse("function " + written + " is not allowed: schema " + names[0] + " is not pg_catalog or public");
    }
    const std::string& fname = names.back();
    if (guard_lists::is_always_denied_function(fname) || policy_.allowed_functions.count(fname) == 0) {
      refuse("function " + written + " is not allowed");
    }
  }

  void operator_name(const Value& body, std::string_view key) {
    const std::vector<std::string> names = string_list(get(body, key), nullptr);
    if (names.size() > 1 && (names.size() > 2 || names[0] != "pg_catalog")) {
      refuse("operator " + join_names(names) + " is not allowed: only pg_catalog operators");
    }
  }

  void type_name(const Value& body, const char* use) {
    const std::vector<std::string> names = string_list(get(body, "names"), nullptr);
    if (names.empty()) refuse_shape("type name");
    const std::string written = join_names(names);
    if (bool_field(body, "setof")) refuse("SETOF " + written + " is not allowed");
    if (bool_field(body, "pct_type")) refuse("%TYPE reference is not allowed");
    const bool schema_ok = names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog");
    if (!schema_ok || !guard_lists::is_allowed_cast_type(names.back())) {
      refuse(std::string(use) + " " + written + " is not allowed");
    }
    if (const Value* typmods = get(body, "typmods")) value(*typmods);
  }

  void param_ref(const Value& body) {
    const Value* number = get(body, "number");
    std::int64_t n = 0;  // libpg_query omits zero-valued fields
    if (number != nullptr) {
      if (!number->is_integer()) refuse_shape("parameter number");
      n = number->integer();
    }
    if (n < 1 || n > kMaxParamNumber) {
      refuse("parameter $" + std::to_string(n) + " is out of range (1.." + std::to_string(kMaxParamNumber) +
             ")");
    }
    out_.param_count = std::max(out_.param_count, static_cast<int>(n));
  }

  void sql_value_function(const Value& body) {
    const std::string_view op = str_field(body, "op");
    static constexpr std::string_view kAllowed[] = {
        "SVFOP_CURRENT_DATE",      "SVFOP_CURRENT_TIME",        "SVFOP_CURRENT_TIME_N",
        "SVFOP_CURRENT_TIMESTAMP", "SVFOP_CURRENT_TIMESTAMP_N", "SVFOP_LOCALTIME",
        "SVFOP_LOCALTIME_N",       "SVFOP_LOCALTIMESTAMP",      "SVFOP_LOCALTIMESTAMP_N",
    };
    if (std::find(std::begin(kAllowed), std::end(kAllowed), op) == std::end(kAllowed)) {
      const std::string_view name = op.substr(0, 6) == "SVFOP_" ? op.substr(6) : op;
      refuse(std::string(name) + " is not allowed");
    }
  }

  void tablesample_method(const Value& body) {
    const std::vector<std::string> names = string_list(get(body, "method"), nullptr);
    const bool ok = !names.empty() &&
                    (names.size() == 1 || (names.size() == 2 && names[0] == "pg_catalog")) &&
                    (names.back() == "bernoulli" || names.back() == "system");
    if (!ok) refuse("TABLESAMPLE method " + join_names(names) + " is not allowed");
  }

  const Document& doc_;
  const GuardPolicy& policy_;
  GuardedQuery& out_;
  std::vector<Scope> scopes_;
  std::vector<std::string> ctes_;                    // CTE names visible at this point of the walk (a stack)
  std::unordered_map<std::string, int> cte_counts_;  // name -> times on the stack
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
    msg += " at position " + std::to_string(p.cursorpos) + " (line " + std::to_string(line) + ", column " +
           std::to_string(column) + ")";
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

  // Each tree level costs at most a few JSON levels; deeper JSON is refused while reading.
  const int json_limit = 4 * std::max(policy.max_nesting_depth, 1) + 16;
  Document doc;
  if (!doc.parse(std::move(parsed->tree), json_limit)) {
    if (doc.too_deep()) {
      return make_error(
          "sql_guard.limit",
          "query nesting depth exceeds " + std::to_string(policy.max_nesting_depth) + "; simplify the query");
    }
    return make_error("sql_guard.internal",
                      "parse tree is not readable (" + doc.error() + "); query refused");
  }
  const Value& root = doc.root();
  if (!root.is_object() || doc.find(root, "version") == nullptr) {
    return make_error("sql_guard.internal", "parse tree has no version; query refused");
  }
  const Value* stmts = doc.find(root, "stmts");
  if (stmts != nullptr && !stmts->is_array()) {
    return make_error("sql_guard.internal", "parse tree has no statement list; query refused");
  }
  const std::size_t n_stmts = stmts == nullptr ? 0 : stmts->size();
  if (n_stmts == 0) {
    // Empty text, only comments or only semicolons.
    return make_error("sql_guard.rejected", "no statement found: send exactly one SELECT");
  }
  if (n_stmts > 1) {
    return make_error("sql_guard.rejected",
                      std::to_string(n_stmts) + " statements found: only one is allowed");
  }
  const Value& raw = doc.child(*stmts, 0);
  const Value* stmt = raw.is_object() ? doc.find(raw, "stmt") : nullptr;
  if (stmt == nullptr) {
    return make_error("sql_guard.internal", "statement without a body; query refused");
  }

  GuardedQuery out;
  try {
    Walker walker(doc, policy, out);
    walker.statement(*stmt);
  } catch (const Refusal& r) {
    return r.error;
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

SqlGuard::SqlGuard(GuardPolicy policy)
    : policy_(std::move(policy)),
      verdicts_(std::make_unique<LruCache<GuardedQuery>>(policy_.verdict_cache_entries)) {}

Result<GuardedQuery> SqlGuard::check(std::string_view sql) const {
  constexpr std::size_t kMaxCachedText = 16 * 1024;
  try {
    const bool cacheable = sql.size() <= kMaxCachedText && policy_.verdict_cache_entries > 0;
    if (cacheable) {
      if (auto hit = verdicts_->find(sql)) return GuardedQuery(*hit);
    }
    auto checked = check_impl(policy_, sql);
    if (checked) {
      checked->sql_ = std::string(sql);
      checked->issuer_ = this;
      if (cacheable) verdicts_->insert(checked->sql_, std::make_shared<const GuardedQuery>(*checked));
    }
    return checked;
  } catch (const std::bad_alloc&) {
    return make_error("sql_guard.internal", "out of memory while checking the query; refused");
  }
}

}  // namespace larder::db
