#include "policy/apply.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace larder::policy {

namespace {

using db::Clock;
using db::Param;

// ---------------------------------------------------------------------------------------
// Catalog access

struct Rows {
  db::PgResult res;
  int size() const { return PQntuples(res.get()); }
  std::string at(int row, int col) const { return PQgetvalue(res.get(), row, col); }
  bool null(int row, int col) const { return PQgetisnull(res.get(), row, col) != 0; }
};

Result<Rows> select(PGconn* conn, std::string_view sql, const std::vector<Param>& params,
                    Clock::time_point deadline) {
  auto r = db::exec_params(conn, sql, params, deadline);
  if (!r) return r.error();
  return Rows{std::move(*r)};
}

struct LiveColumn {
  std::string name;
  std::string type;  // format_type
  unsigned type_oid = 0;
};

struct LiveRelation {
  bool exists = false;
  std::string oid;
  char kind = 'r';
  bool rls = false, force = false;
  std::string owner;
  bool owned_by_me = false;  // current_user may act as the owner
  bool security_invoker = false;
  std::vector<LiveColumn> columns;
  const LiveColumn* column(std::string_view n) const {
    for (const auto& c : columns) {
      if (c.name == n) return &c;
    }
    return nullptr;
  }
};

Result<LiveRelation> read_relation(PGconn* conn, const std::string& schema, const std::string& name,
                                   Clock::time_point deadline) {
  LiveRelation rel;
  auto r = select(conn,
                  "SELECT c.oid::text, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity, "
                  "pg_catalog.pg_get_userbyid(c.relowner), "
                  "pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE'), "
                  "coalesce('security_invoker=true' = ANY (c.reloptions) OR 'security_invoker=on' = ANY "
                  "(c.reloptions), false) "
                  "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE n.nspname = $1 AND c.relname = $2",
                  {schema, name}, deadline);
  if (!r) return r.error();
  if (r->size() == 0) return rel;
  rel.exists = true;
  rel.oid = r->at(0, 0);
  rel.kind = r->at(0, 1).empty() ? 'r' : r->at(0, 1)[0];
  rel.rls = r->at(0, 2) == "t";
  rel.force = r->at(0, 3) == "t";
  rel.owner = r->at(0, 4);
  rel.owned_by_me = r->at(0, 5) == "t";
  rel.security_invoker = r->at(0, 6) == "t";
  auto cols = select(
      conn,
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid::text "
      "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum",
      {rel.oid}, deadline);
  if (!cols) return cols.error();
  for (int i = 0; i < cols->size(); ++i)
    rel.columns.push_back(
        {cols->at(i, 0), cols->at(i, 1), static_cast<unsigned>(std::stoul(cols->at(i, 2)))});
  return rel;
}

// The type OIDs a fact type matches (text also matches varchar).
bool type_matches(ValueType t, unsigned oid) {
  switch (t) {
    case ValueType::kText:
      return oid == 25 || oid == 1043;
    case ValueType::kInteger:
      return oid == 23;
    case ValueType::kBigint:
      return oid == 20;
    case ValueType::kUuid:
      return oid == 2950;
    case ValueType::kDate:
      return oid == 1082;
    case ValueType::kBoolean:
      return oid == 16;
  }
  return false;
}

bool is_table(char kind) {
  return kind == 'r' || kind == 'p';
}

// ---------------------------------------------------------------------------------------
// What the file means, checked against the catalog

struct RuleInfo {
  const Relation* relation = nullptr;
  const RowRule* rule = nullptr;
  int id = 0;                      // global rule number: function larder_ctx.r<id>, policy larder_r<id>
  std::string local_type;          // type of the matched local column (array cast in the policy)
  std::vector<std::string> types;  // arity > 1 without via: the columns' types
};

struct Model {
  const Policy* policy = nullptr;
  std::map<std::string, LiveRelation> live;  // qualified -> catalog
  std::vector<RuleInfo> rules;
  // hop relation -> columns the owner role must read (join paths)
  std::map<std::string, std::set<std::string>> owner_reads;
  std::vector<std::pair<int, std::string>> masks;  // mask id -> unmask right
  std::map<std::string, int> mask_ids;             // "<qualified>.<column>" -> id
};

Result<const LiveRelation*> live_relation(Model& m, PGconn* conn, const std::string& qualified,
                                          const Where& where, Clock::time_point deadline) {
  auto it = m.live.find(qualified);
  if (it == m.live.end()) {
    auto dot = qualified.find('.');
    auto rel = read_relation(conn, qualified.substr(0, dot), qualified.substr(dot + 1), deadline);
    if (!rel) return rel.error();
    it = m.live.emplace(qualified, std::move(*rel)).first;
  }
  if (!it->second.exists)
    return policy_error(
        where, "relation " + qualified + " does not exist in this database (check the name and schema)");
  return &it->second;
}

Result<Model> build_model(const Policy& p, PGconn* conn, Clock::time_point deadline) {
  Model m;
  m.policy = &p;
  int next_rule = 0;
  int next_mask = 0;
  for (const auto& rel : p.relations) {
    auto live = live_relation(m, conn, rel.qualified(), rel.where, deadline);
    if (!live) return live.error();
    const LiveRelation& lr = **live;
    if (!is_table(lr.kind) && lr.kind != 'v')
      return policy_error(rel.where, rel.qualified() + " is not a table or a view");
    if (lr.kind == 'v') {
      if (!lr.security_invoker)
        return policy_error(rel.where,
                            "view " + rel.qualified() +
                                " must be created WITH (security_invoker = true), so the row-level security "
                                "of the tables it reads applies to the agent");
      if (!rel.rules.empty() || rel.everyone)
        return policy_error(rel.where,
                            "a view has no rows of its own: put the row rules on the tables it reads");
    }
    for (const auto& c : rel.columns) {
      if (lr.column(c.name) == nullptr)
        return policy_error(c.where, "column \"" + c.name + "\" does not exist in " + rel.qualified());
    }
    for (const auto& h : rel.hidden) {
      if (lr.column(h) == nullptr)
        return policy_error(rel.where, "hidden column \"" + h + "\" does not exist in " + rel.qualified());
    }
    for (const auto& c : rel.columns) {
      if (!c.mask) continue;
      m.mask_ids[rel.qualified() + "." + c.name] = ++next_mask;
      m.masks.emplace_back(next_mask, c.unmask_right);
    }
    for (const auto& rule : rel.rules) {
      RuleInfo info;
      info.relation = &rel;
      info.rule = &rule;
      info.id = ++next_rule;
      const Fact* fact = p.fact(rule.fact);
      // Walk the path: each hop's column on the current relation, its target on the next.
      std::string current = rel.qualified();
      const LiveRelation* cur = &lr;
      for (std::size_t i = 0; i < rule.via.size(); ++i) {
        const Hop& hop = rule.via[i];
        const LiveColumn* from = cur->column(hop.column);
        if (from == nullptr)
          return policy_error(hop.where,
                              "join path: column \"" + hop.column + "\" does not exist in " + current);
        auto next = live_relation(m, conn, hop.relation, hop.where, deadline);
        if (!next) return next.error();
        const LiveColumn* to = (*next)->column(hop.target);
        if (to == nullptr)
          return policy_error(hop.where,
                              "join path: column \"" + hop.target + "\" does not exist in " + hop.relation);
        if (from->type_oid != to->type_oid)
          return policy_error(hop.where, "join path: " + current + "." + hop.column + " is " + from->type +
                                             " but " + hop.relation + "." + hop.target + " is " + to->type);
        if (i == 0) info.local_type = from->type;
        if (i > 0) m.owner_reads[current].insert(hop.column);
        m.owner_reads[hop.relation].insert(hop.target);
        current = hop.relation;
        cur = *next;
      }
      for (std::size_t i = 0; i < rule.columns.size(); ++i) {
        const LiveColumn* col = cur->column(rule.columns[i]);
        if (col == nullptr)
          return policy_error(rule.where, "column \"" + rule.columns[i] + "\" does not exist in " + current);
        if (!type_matches(fact->args[i], col->type_oid))
          return policy_error(rule.where, "fact \"" + rule.fact + "\" is " +
                                              std::string(to_string(fact->args[i])) + " (" +
                                              fact->where.describe() + ") but column " + current + ".\"" +
                                              rule.columns[i] + "\" is " + col->type);
        if (!rule.via.empty()) m.owner_reads[current].insert(rule.columns[i]);
        if (rule.via.empty()) {
          if (rule.columns.size() == 1) info.local_type = col->type;
          info.types.push_back(col->type);
        }
      }
      m.rules.push_back(std::move(info));
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// SQL text

std::string q(std::string_view s) {
  return quote_ident(s);
}

std::string rel_sql(const std::string& qualified) {
  auto dot = qualified.find('.');
  return quote_qualified(qualified.substr(0, dot), qualified.substr(dot + 1));
}

std::string column_list(const std::vector<std::string>& cols) {
  std::string out;
  for (const auto& c : cols) out += (out.empty() ? "" : ", ") + q(c);
  return out;
}

// The request's context as the rule functions read it: larder_private.context(), the facts
// of the sealed value Larder set for this transaction (docs/database.md, "The request
// context"), verified — or NULL, and then no rule matches. A FROM item `c` with column facts.
constexpr const char* kContextItem = "(SELECT larder_private.context() AS facts) c";
constexpr const char* kContextLive = " WHERE c.facts IS NOT NULL";

// The rule's `when` as a join and a condition on the row `c`: its fact has a value in the
// rule's list (one row of larder_private.rule_values, written from the file as a parameter).
// "" without a `when`.
std::string when_join(const RuleInfo& r) {
  if (r.rule->when_fact.empty()) return "";
  return " JOIN larder_private.rule_values rv ON rv.rule = " + std::to_string(r.id);
}
std::string when_condition(const RuleInfo& r) {
  if (r.rule->when_fact.empty()) return "";
  return " AND (c.facts -> '" + r.rule->when_fact + "') ?| rv.vals";
}

// The tuples of the rule's fact in the request, typed `types` (one per argument): a SELECT
// over the context row, gated by the rule's `when`. Fact names are checked identifiers. A
// one-argument fact is a flat array of strings in the row, a wider one an array of arrays.
std::string fact_tuples(const RuleInfo& r, const std::vector<std::string>& types) {
  const std::string where = kContextLive;
  const std::string ctx = kContextItem + when_join(r);
  if (types.size() == 1) {
    return "SELECT e.x::" + types[0] + " FROM " + ctx +
           ", pg_catalog.jsonb_array_elements_text(c.facts -> '" + r.rule->fact + "') AS e(x)" + where +
           when_condition(r);
  }
  std::string sel;
  for (std::size_t i = 0; i < types.size(); ++i)
    sel += (i ? ", " : "") + std::string("(e.v ->> ") + std::to_string(i) + ")::" + types[i];
  return "SELECT " + sel + " FROM " + ctx + ", pg_catalog.jsonb_array_elements(c.facts -> '" + r.rule->fact +
         "') AS e(v)" + where + when_condition(r);
}

// Rule n's function: one query per call (PL/pgSQL caches its plan per session), run as the
// owner. Without a live context row it returns nothing.
std::string rule_function(const Policy& p, const RuleInfo& r) {
  const RowRule& rule = *r.rule;
  const Fact& fact = *p.fact(rule.fact);
  std::ostringstream s;
  const std::string name = "larder_ctx.r" + std::to_string(r.id);
  const std::string header = "LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED";
  if (rule.via.empty() && rule.columns.size() > 1) {
    // A tuple fact: the rows of its tuples, typed like the columns.
    std::string cols;
    for (std::size_t i = 0; i < r.types.size(); ++i)
      cols += (i ? ", " : "") + std::string("v") + std::to_string(i) + " " + r.types[i];
    s << "CREATE OR REPLACE FUNCTION " << name << "()\nRETURNS TABLE (" << cols << ")\n"
      << header << " ROWS 10\nSET search_path = pg_catalog, pg_temp\nAS $fn$\nBEGIN\n  RETURN QUERY "
      << fact_tuples(r, r.types) << ";\nEND\n$fn$";
    return s.str();
  }
  const std::string& type = r.local_type;
  s << "CREATE OR REPLACE FUNCTION " << name << "()\nRETURNS " << type << "[]\n"
    << header << "\nSET search_path = pg_catalog, pg_temp\nAS $fn$\nDECLARE\n  result " << type
    << "[];\nBEGIN\n";
  std::vector<std::string> fact_types;
  for (auto t : fact.args) fact_types.emplace_back(pg_type(t));
  if (rule.via.empty()) {
    s << "  SELECT ARRAY(" << fact_tuples(r, {type}) << ") INTO result;\n";
  } else {
    // The join path, read as the owner (which sees every row of the hop tables): the first
    // hop's target values whose path ends at a row matching the fact.
    std::string from = rel_sql(rule.via[0].relation) + " h1";
    for (std::size_t i = 1; i < rule.via.size(); ++i) {
      from += " JOIN " + rel_sql(rule.via[i].relation) + " h" + std::to_string(i + 1) + " ON h" +
              std::to_string(i) + "." + q(rule.via[i].column) + " = h" + std::to_string(i + 1) + "." +
              q(rule.via[i].target);
    }
    const std::string last = "h" + std::to_string(rule.via.size());
    std::string match;
    if (rule.columns.size() == 1) {
      match = last + "." + q(rule.columns[0]) + " = ANY (ARRAY(" + fact_tuples(r, fact_types) + "))";
    } else {
      std::string lhs;
      for (std::size_t i = 0; i < rule.columns.size(); ++i)
        lhs += (i ? ", " : "") + last + "." + q(rule.columns[i]);
      match = "(" + lhs + ") IN (" + fact_tuples(r, fact_types) + ")";
    }
    // (Duplicates are harmless to `= ANY`; not sorting them away saves a quarter of the time.)
    s << "  SELECT ARRAY(SELECT h1." << q(rule.via[0].target) << "\n    FROM " << from << "\n   WHERE "
      << match << ") INTO result;\n";
  }
  s << "  RETURN COALESCE(result, '{}');\nEND\n$fn$";
  return s.str();
}

std::string rule_predicate(const RuleInfo& r) {
  const RowRule& rule = *r.rule;
  const std::string fn = "larder_ctx.r" + std::to_string(r.id) + "()";
  if (rule.via.empty() && rule.columns.size() > 1)
    return "((" + column_list(rule.columns) + ") IN (SELECT * FROM " + fn + "))";
  // The function runs once per query (an InitPlan) and `= ANY` of its array is an index
  // condition. For a join path the array holds every first-hop key the context reaches: its
  // cost grows with them (docs/policy.md, "What a rule costs").
  const std::string local = rule.via.empty() ? rule.columns[0] : rule.via[0].column;
  return "(" + q(local) + " = ANY ((SELECT " + fn + ")::" + r.local_type + "[]))";
}

std::string mask_expression(const Column& c, int id) {
  const std::string col = "t." + q(c.name);
  std::string fn;
  switch (*c.mask) {
    case MaskKind::kEmail:
      fn = "larder_ctx.mask_email";
      break;
    case MaskKind::kLast4:
      fn = "larder_ctx.mask_last4";
      break;
    case MaskKind::kRedact:
      fn = "larder_ctx.mask_redact";
      break;
  }
  return "CASE WHEN (SELECT larder_ctx.unmasked(" + std::to_string(id) + ")) THEN " + col + "::text ELSE " +
         fn + "(" + col + "::text) END AS " + q(c.name);
}

constexpr const char* kMaskFunctions[] = {
    R"(CREATE OR REPLACE FUNCTION larder_ctx.mask_email(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN v IS NULL THEN NULL
            WHEN pg_catalog.strpos(v, '@') > 1 THEN pg_catalog.left(v, 1) || '***' || pg_catalog.substr(v, pg_catalog.strpos(v, '@'))
            ELSE '***' END)",
    R"(CREATE OR REPLACE FUNCTION larder_ctx.mask_last4(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN v IS NULL THEN NULL
            WHEN pg_catalog.length(v) <= 4 THEN '****'
            ELSE '****' || pg_catalog.right(v, 4) END)",
    R"(CREATE OR REPLACE FUNCTION larder_ctx.mask_redact(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN v IS NULL THEN NULL ELSE '***' END)",
};

constexpr const char* kUnmasked = R"(CREATE OR REPLACE FUNCTION larder_ctx.unmasked(mask integer)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RETURN EXISTS (SELECT 1
                   FROM larder_private.masks m
                  WHERE m.id = mask
                    AND (larder_private.context() -> '$unmask') ? m.unmask_right);
END
$fn$)";

// The request context (docs/database.md, "The request context"). Larder sets, inside the
// request's transaction, set_config('larder.context', <tag>.<message>, true) where
//   message = 'larder-ctx-v1.' || key id || '.' || {"b": [pid, xact_us], "e": until_us, "f": facts}
//   tag     = hex(HMAC-SHA256(key, message)), the key a row of larder_private.context_keys
// that the query role cannot read. The value counts only in the transaction it was made for
// (the backend's pid and the transaction's start, in microseconds since the epoch: no other
// transaction, on this server or through any pooler, has both) and only until `e` on the
// server's clock. HMAC from sha256 alone (RFC 2104 with the pads precomputed), so no
// extension is needed. An absent value is no context (NULL: no rule matches); a present
// value that fails any check raises SQLSTATE LX001 — the request fails, nothing is read.
constexpr const char* kContextFunction = R"(CREATE OR REPLACE FUNCTION larder_private.context()
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v text := pg_catalog.current_setting('larder.context', true);
  msg text;
  kid text;
  k larder_private.context_keys%ROWTYPE;
  doc jsonb;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  msg := pg_catalog.substr(v, 66);
  kid := pg_catalog.split_part(msg, '.', 2);
  IF pg_catalog.length(v) < 66 OR pg_catalog.substr(v, 65, 1) <> '.'
     OR pg_catalog.split_part(msg, '.', 1) <> 'larder-ctx-v1' OR kid !~ '^[0-9]{1,9}$' THEN
    RAISE EXCEPTION USING ERRCODE = 'LX001', MESSAGE = 'larder: the request context is malformed';
  END IF;
  SELECT * INTO k FROM larder_private.context_keys WHERE id = kid::integer;
  IF NOT FOUND OR pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.left(v, 64), 'UTF8'))
      <> pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.encode(pg_catalog.sha256(k.opad ||
           pg_catalog.sha256(k.ipad || pg_catalog.convert_to(msg, 'UTF8'))), 'hex'), 'UTF8')) THEN
    RAISE EXCEPTION USING ERRCODE = 'LX001', MESSAGE = 'larder: the request context is not signed by a current key';
  END IF;
  doc := pg_catalog.substr(msg, pg_catalog.length(kid) + 16)::jsonb;
  IF (doc -> 'b' ->> 0)::integer IS DISTINCT FROM pg_catalog.pg_backend_pid()
     OR (doc -> 'b' ->> 1)::bigint IS DISTINCT FROM
        (EXTRACT(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint THEN
    RAISE EXCEPTION USING ERRCODE = 'LX001', MESSAGE = 'larder: the request context belongs to another transaction';
  END IF;
  IF (doc ->> 'e')::bigint IS NULL
     OR (doc ->> 'e')::bigint < (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint THEN
    RAISE EXCEPTION USING ERRCODE = 'LX001', MESSAGE = 'larder: the request context has expired';
  END IF;
  RETURN doc -> 'f';
END
$fn$)";

// A new context key, made on the server (gen_random_uuid: PostgreSQL's strong random source)
// with its HMAC pads precomputed, under the next id. With `only_if_none`, only when the table
// is empty (apply makes the first key; `larder policy rotate-key` the next ones).
std::string context_key_sql(bool only_if_none) {
  return std::string(R"(DO $do$
DECLARE
  k bytea;
  i bytea;
  o bytea;
BEGIN
)") +
         (only_if_none
              ? "  IF EXISTS (SELECT 1 FROM larder_private.context_keys) THEN\n    RETURN;\n  END IF;\n"
              : "") +
         R"(  k := pg_catalog.sha256(pg_catalog.convert_to(gen_random_uuid()::text || gen_random_uuid()::text ||
                                               gen_random_uuid()::text, 'UTF8'));
  i := k || pg_catalog.decode(pg_catalog.repeat('00', 32), 'hex');
  o := i;
  FOR j IN 0..63 LOOP
    i := pg_catalog.set_byte(i, j, pg_catalog.get_byte(i, j) # 54);
    o := pg_catalog.set_byte(o, j, pg_catalog.get_byte(o, j) # 92);
  END LOOP;
  INSERT INTO larder_private.context_keys (id, key, ipad, opad)
  SELECT COALESCE(pg_catalog.max(id), 0) + 1, k, i, o FROM larder_private.context_keys;
END
$do$)";
}

// Fingerprints of what apply makes, read back by check: Larder's policies (anywhere), the
// functions of larder_ctx and larder_private, the masking views, the contents of the `when`
// lists and unmask rights (a row added by hand widens a rule), the session settings of the
// query and writer roles. $1 = the view schema, $2 and $3 = the query and writer roles.
constexpr const char* kFingerprints = R"(
SELECT 'policy ' || p.polrelid::regclass::text || ' ' || p.polname,
       pg_catalog.md5(pg_catalog.concat_ws('|', p.polpermissive, p.polcmd,
         pg_catalog.array_to_string(ARRAY(SELECT r::regrole::text FROM pg_catalog.unnest(p.polroles) AS r ORDER BY 1), ','),
         pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)))
  FROM pg_catalog.pg_policy p
 WHERE p.polname LIKE 'larder\_%'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text,
       pg_catalog.md5(pg_catalog.concat_ws('|', p.prosrc, p.prosecdef, p.proowner::regrole::text,
         pg_catalog.array_to_string(p.proconfig, ','), p.proacl::text, pg_catalog.pg_get_function_result(p.oid)))
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('larder_ctx', 'larder_private')
UNION ALL
SELECT 'view ' || c.oid::regclass::text,
       pg_catalog.md5(pg_catalog.concat_ws('|', pg_catalog.pg_get_viewdef(c.oid), c.relowner::regrole::text,
         c.reloptions::text, c.relacl::text))
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relkind = 'v'
UNION ALL
SELECT 'contents of larder_private.rule_values',
       pg_catalog.md5(coalesce(pg_catalog.string_agg(v.rule::text || ':' || v.vals::text, ',' ORDER BY v.rule), ''))
  FROM larder_private.rule_values v
UNION ALL
SELECT 'contents of larder_private.masks',
       pg_catalog.md5(coalesce(pg_catalog.string_agg(m.id::text || ':' || m.unmask_right, ',' ORDER BY m.id), ''))
  FROM larder_private.masks m
UNION ALL
SELECT 'settings of role ' || r.rolname, pg_catalog.md5(pg_catalog.array_to_string(s.setconfig, ','))
  FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
 WHERE s.setdatabase = 0 AND r.rolname IN ($2, $3)
)";

// Copies COMMENT ON TABLE/COLUMN from larder.comment_source to the view larder.comment_target
// (both set as parameters just before, transaction-local).
constexpr const char* kCopyComments = R"(DO $comments$
DECLARE
  src regclass := pg_catalog.current_setting('larder.comment_source')::regclass;
  dst regclass := pg_catalog.current_setting('larder.comment_target')::regclass;
  r record;
BEGIN
  IF pg_catalog.obj_description(src, 'pg_class') IS NOT NULL THEN
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', dst, pg_catalog.obj_description(src, 'pg_class'));
  END IF;
  FOR r IN SELECT a.attname, pg_catalog.col_description(src, a.attnum) AS d
             FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = src AND a.attnum > 0 AND NOT a.attisdropped
              AND pg_catalog.col_description(src, a.attnum) IS NOT NULL
              AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute v WHERE v.attrelid = dst AND v.attname = a.attname)
  LOOP
    EXECUTE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', dst, r.attname, r.d);
  END LOOP;
END
$comments$)";

struct Admin {
  bool superuser = false;
  bool createrole = false;
  std::string user;
  std::string database;
  bool owns_database = false;
};

Result<Admin> read_admin(PGconn* conn, Clock::time_point deadline) {
  auto r = select(conn,
                  "SELECT r.rolsuper, r.rolcreaterole, current_user, pg_catalog.current_database(), "
                  "pg_catalog.pg_has_role(current_user, d.datdba, 'USAGE') "
                  "FROM pg_catalog.pg_roles r, pg_catalog.pg_database d "
                  "WHERE r.rolname = current_user AND d.datname = pg_catalog.current_database()",
                  {}, deadline);
  if (!r) return r.error();
  if (r->size() != 1) return Error{"policy.apply", "cannot read the administrator's role", ""};
  return Admin{r->at(0, 0) == "t", r->at(0, 1) == "t", r->at(0, 2), r->at(0, 3), r->at(0, 4) == "t"};
}

Result<std::set<std::string>> existing_roles(PGconn* conn, const Roles& roles, Clock::time_point deadline) {
  auto r = select(conn, "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname IN ($1, $2, $3, $4)",
                  {roles.query, roles.writer, roles.owner, roles.views}, deadline);
  if (!r) return r.error();
  std::set<std::string> out;
  for (int i = 0; i < r->size(); ++i) out.insert(r->at(i, 0));
  return out;
}

// One plan in the making: what every step reads (the file, the database as found, the
// administrator's role) and the plan the steps add statements, removals and notes to.
class Planner {
 public:
  Planner(const Policy& p, PGconn* conn, Clock::time_point deadline, const Admin& admin, const Model& model)
      : p(p), conn(conn), deadline(deadline), admin(&admin), model(&model), roles(p.roles) {}

  Result<Plan> run() && {
    if (auto r = owns_exposed_tables(); !r) return r.error();
    if (auto r = roles_and_memberships(); !r) return r.error();
    schemas();
    if (auto r = context_machinery(); !r) return r.error();
    if (auto r = functions(); !r) return r.error();
    if (auto r = unexposed(); !r) return r.error();
    relations();
    masking_views();
    catalog_views();
    record();
    return std::move(out);
  }

 private:
  const Policy& p;
  PGconn* conn;
  Clock::time_point deadline;
  const Admin* admin;
  const Model* model;
  const Roles& roles;
  Plan out;

  void add(std::string sql, std::vector<Param> params = {}) {
    out.statements.push_back({std::move(sql), std::move(params)});
  }

  // A non-superuser administrator must own every exposed table.
  Result<void> owns_exposed_tables() {
    for (const auto& [qualified, lr] : model->live) {
      if (!admin->superuser && !lr.owned_by_me && p.relation(qualified) != nullptr)
        return Error{"policy.privileges",
                     qualified + " is owned by " + lr.owner + ", and " + admin->user +
                         " is neither that role (nor a member of it) nor a superuser: apply must own the "
                         "exposed tables",
                     ""};
    }
    return {};
  }

  // 1. Larder's four roles, their attributes and settings, and their memberships.
  Result<void> roles_and_memberships() {
    auto have = existing_roles(conn, roles, deadline);
    if (!have) return have.error();
    const std::vector<std::pair<std::string, bool>> role_list = {
        {roles.query, true}, {roles.writer, true}, {roles.owner, false}, {roles.views, false}};
    for (const auto& [name, login] : role_list) {
      if (have->count(name) == 0) add("CREATE ROLE " + q(name) + (login ? " LOGIN" : " NOLOGIN"));
      if (admin->superuser) {
        add("ALTER ROLE " + q(name) + (login ? " LOGIN" : " NOLOGIN") +
            " NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS" +
            (login ? " CONNECTION LIMIT 200" : ""));
      } else {
        add("ALTER ROLE " + q(name) + (login ? " LOGIN" : " NOLOGIN") + " NOCREATEDB NOCREATEROLE NOINHERIT" +
            (login ? " CONNECTION LIMIT 200" : ""));
      }
    }
    if (!admin->superuser) {
      auto attrs = select(conn,
                          "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname IN ($1, $2, $3, $4) "
                          "AND (rolsuper OR rolbypassrls OR rolreplication)",
                          {roles.query, roles.writer, roles.owner, roles.views}, deadline);
      if (!attrs) return attrs.error();
      if (attrs->size() > 0)
        return Error{
            "policy.privileges",
            "role " + attrs->at(0, 0) +
                " is a superuser, bypasses row-level security or may replicate: a superuser must remove that "
                "(ALTER ROLE ... NOSUPERUSER NOBYPASSRLS NOREPLICATION)",
            ""};
    }
    // The same search_path Larder's sessions set (policy.search_path()), so a psql session as
    // the query role resolves names as the agent's queries do.
    std::string search_path;
    for (const auto& schema : p.search_path()) search_path += (search_path.empty() ? "" : ", ") + q(schema);
    add("ALTER ROLE " + q(roles.query) + " SET search_path = " + search_path);
    for (const char* setting : {"default_transaction_read_only = on", "statement_timeout = '60s'",
                                "idle_in_transaction_session_timeout = '60s'", "lock_timeout = '5s'"})
      add("ALTER ROLE " + q(roles.query) + " SET " + setting);
    if (admin->superuser) {
      for (const auto& role : {roles.query, roles.writer}) {
        for (const char* setting :
             {"log_min_messages = 'fatal'", "log_min_error_statement = 'panic'", "log_statement = 'none'",
              "log_min_duration_statement = -1", "log_min_duration_sample = -1",
              "log_parameter_max_length = 0", "log_parameter_max_length_on_error = 0"})
          add("ALTER ROLE " + q(role) + " SET " + setting);
      }
    } else {
      out.notes.push_back(
          "not a superuser: the per-role log settings (log_min_messages = fatal, log_statement = none, ...) "
          "for " +
          roles.query + " and " + roles.writer +
          " are not set; set them on the server so no statement or value of theirs is logged");
    }
    // Memberships: Larder's roles are members of nothing, and nobody is a member of the query
    // or writer roles; a non-superuser administrator is a member of owner and views (it must be,
    // to give them objects).
    auto members = select(
        conn,
        "SELECT g.rolname, u.rolname FROM pg_catalog.pg_auth_members am "
        "JOIN pg_catalog.pg_roles g ON g.oid = am.roleid JOIN pg_catalog.pg_roles u ON u.oid = am.member "
        "WHERE u.rolname IN ($1, $2, $3, $4) OR g.rolname IN ($1, $2)",
        {roles.query, roles.writer, roles.owner, roles.views}, deadline);
    if (!members) return members.error();
    for (int i = 0; i < members->size(); ++i) {
      add("REVOKE " + q(members->at(i, 0)) + " FROM " + q(members->at(i, 1)) + " CASCADE");
      out.removals.push_back("membership of " + members->at(i, 1) + " in " + members->at(i, 0));
    }
    if (!admin->superuser) {
      add("GRANT " + q(roles.owner) + " TO " + q(admin->user));
      add("GRANT " + q(roles.views) + " TO " + q(admin->user));
    }
    return {};
  }

  // 2. CONNECT on the database; the private, context and view schemas; USAGE on the exposed ones.
  void schemas() {
    add("GRANT CONNECT ON DATABASE " + q(admin->database) + " TO " + q(roles.query) + ", " + q(roles.writer));
    add("CREATE SCHEMA IF NOT EXISTS larder_private AUTHORIZATION " + q(roles.owner));
    add("ALTER SCHEMA larder_private OWNER TO " + q(roles.owner));
    add("REVOKE ALL ON SCHEMA larder_private FROM PUBLIC");
    add("GRANT USAGE ON SCHEMA larder_private TO " + q(roles.writer));
    add("CREATE SCHEMA IF NOT EXISTS larder_ctx AUTHORIZATION " + q(roles.owner));
    add("ALTER SCHEMA larder_ctx OWNER TO " + q(roles.owner));
    add("REVOKE ALL ON SCHEMA larder_ctx FROM PUBLIC");
    add("GRANT USAGE ON SCHEMA larder_ctx TO " + q(roles.query) + ", " + q(roles.views));
    std::set<std::string> schemas;
    for (const auto& [qualified, lr] : model->live) schemas.insert(qualified.substr(0, qualified.find('.')));
    for (const auto& s : schemas)
      add("GRANT USAGE ON SCHEMA " + q(s) + " TO " + q(roles.query) + ", " + q(roles.views) + ", " +
          q(roles.owner));
    const bool any_masked =
        std::any_of(p.relations.begin(), p.relations.end(), [](const Relation& r) { return r.masked(); });
    if (any_masked) {
      add("CREATE SCHEMA IF NOT EXISTS " + q(p.view_schema) + " AUTHORIZATION " + q(roles.views));
      add("ALTER SCHEMA " + q(p.view_schema) + " OWNER TO " + q(roles.views));
      add("REVOKE ALL ON SCHEMA " + q(p.view_schema) + " FROM PUBLIC");
      add("GRANT USAGE ON SCHEMA " + q(p.view_schema) + " TO " + q(roles.query));
    }
  }

  // 3. The context keys and the tables the rule functions and the start-up check read.
  Result<void> context_machinery() {
    // The context machinery: the keys that seal a request's context (docs/database.md), read
    //    by the context writer (the server loads them at start) and by the SECURITY DEFINER
    //    context function, never by the query role. The context table of earlier versions
    //    (a row per query backend, written on a second connection) is dropped: nothing in it
    //    outlives a request.
    auto old_ctx =
        select(conn,
               "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
               "c.relnamespace WHERE n.nspname = 'larder_private' AND c.relname = 'request_context'",
               {}, deadline);
    if (!old_ctx) return old_ctx.error();
    if (old_ctx->size() > 0) {
      add("DROP TABLE larder_private.request_context CASCADE");
      out.removals.push_back("larder_private.request_context (the context row of earlier versions)");
    }
    add("CREATE TABLE IF NOT EXISTS larder_private.context_keys (\n"
        "  id         integer PRIMARY KEY CHECK (id > 0),\n"
        "  key        bytea NOT NULL CHECK (pg_catalog.length(key) = 32),\n"
        "  ipad       bytea NOT NULL CHECK (pg_catalog.length(ipad) = 64),\n"
        "  opad       bytea NOT NULL CHECK (pg_catalog.length(opad) = 64),\n"
        "  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()\n)");
    add("ALTER TABLE larder_private.context_keys OWNER TO " + q(roles.owner));
    add("REVOKE ALL ON larder_private.context_keys FROM PUBLIC");
    add("GRANT SELECT (id, key) ON larder_private.context_keys TO " + q(roles.writer));
    add(context_key_sql(true));
    // The `when` lists, one row per rule (rewritten by every apply; an older layout is replaced).
    add("DROP TABLE IF EXISTS larder_private.rule_values");
    add("CREATE TABLE larder_private.rule_values (rule integer PRIMARY KEY, vals text[] NOT NULL)");
    add("CREATE TABLE IF NOT EXISTS larder_private.masks (id integer PRIMARY KEY, unmask_right text NOT "
        "NULL)");
    add("CREATE TABLE IF NOT EXISTS larder_private.applied (object text PRIMARY KEY, fingerprint text NOT "
        "NULL)");
    for (const char* t : {"rule_values", "masks", "applied"}) {
      add(std::string("ALTER TABLE larder_private.") + t + " OWNER TO " + q(roles.owner));
      add(std::string("REVOKE ALL ON larder_private.") + t + " FROM PUBLIC");
    }
    // The server's start-up check runs as the writer: it reads the record and the fingerprinted tables.
    add("GRANT SELECT ON larder_private.applied, larder_private.rule_values, larder_private.masks TO " +
        q(roles.writer));
    for (const auto& r : model->rules) {
      if (r.rule->when_any_of.empty()) continue;
      auto list = db::encode_text_array(r.rule->when_any_of);
      if (!list) return list.error();
      add("INSERT INTO larder_private.rule_values (rule, vals) VALUES ($1::integer, $2::text[])",
          {std::to_string(r.id), *list});
    }
    add("DELETE FROM larder_private.masks");
    for (const auto& [id, right] : model->masks)
      add("INSERT INTO larder_private.masks (id, unmask_right) VALUES ($1::integer, $2::text)",
          {std::to_string(id), right});
    return {};
  }

  // 3. (cont.) Every function, policy and view of Larder's dropped, and the functions made again.
  Result<void> functions() {
    // Functions: drop every function of larder_ctx/larder_private this file does not define
    // (rules removed, an older layout), then (re)create the ones it does.
    std::set<std::string> wanted = {"larder_private.context()", "larder_ctx.unmasked(integer)",
                                    "larder_ctx.mask_email(text)", "larder_ctx.mask_last4(text)",
                                    "larder_ctx.mask_redact(text)"};
    for (const auto& r : model->rules) wanted.insert("larder_ctx.r" + std::to_string(r.id) + "()");
    auto fns =
        select(conn,
               "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
               "ON n.oid = p.pronamespace WHERE n.nspname IN ('larder_ctx', 'larder_private') ORDER BY 1",
               {}, deadline);
    if (!fns) return fns.error();
    // All of them are dropped and made again (a rule whose column type changed needs a new
    // return type, which CREATE OR REPLACE cannot give), after the policies and views that
    // call them.
    std::vector<std::string> drop_functions;
    for (int i = 0; i < fns->size(); ++i) drop_functions.push_back(fns->at(i, 0));
    // Policies of Larder's on every table of the database, dropped before the functions they call.
    auto ours = select(conn,
                       "SELECT p.polrelid::regclass::text, p.polname, n.nspname || '.' || c.relname FROM "
                       "pg_catalog.pg_policy p "
                       "JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN pg_catalog.pg_namespace n ON "
                       "n.oid = c.relnamespace "
                       "WHERE p.polname LIKE 'larder\\_%' ORDER BY 1, 2",
                       {}, deadline);
    if (!ours) return ours.error();
    for (int i = 0; i < ours->size(); ++i) {
      add("DROP POLICY IF EXISTS " + q(ours->at(i, 1)) + " ON " + rel_sql(ours->at(i, 2)));
      if (p.relation(ours->at(i, 2)) == nullptr && model->owner_reads.count(ours->at(i, 2)) == 0)
        out.removals.push_back("policy " + ours->at(i, 1) + " on " + ours->at(i, 2) +
                               " (the table is no longer exposed)");
    }
    // Masking views are rebuilt (their columns may change): drop them first.
    auto views = select(conn,
                        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid "
                        "= c.relnamespace "
                        "WHERE n.nspname = $1 AND c.relkind = 'v' ORDER BY 1",
                        {p.view_schema}, deadline);
    if (!views) return views.error();
    for (int i = 0; i < views->size(); ++i) {
      add("DROP VIEW IF EXISTS " + quote_qualified(p.view_schema, views->at(i, 0)));
      bool kept = false;
      for (const auto& rel : p.relations) kept |= rel.masked() && rel.name == views->at(i, 0);
      if (!kept) out.removals.push_back("view " + p.view_schema + "." + views->at(i, 0));
    }
    for (const auto& f : drop_functions) {
      add("DROP FUNCTION IF EXISTS " + f);
      if (wanted.count(f) == 0) out.removals.push_back("function " + f);
    }
    for (const char* m : kMaskFunctions) add(m);
    add(kContextFunction);
    add("ALTER FUNCTION larder_private.context() OWNER TO " + q(roles.owner));
    add("REVOKE ALL ON FUNCTION larder_private.context() FROM PUBLIC");  // called by the owner's functions
                                                                         // only
    add(kUnmasked);
    for (const char* sig : {"larder_ctx.mask_email(text)", "larder_ctx.mask_last4(text)",
                            "larder_ctx.mask_redact(text)", "larder_ctx.unmasked(integer)"}) {
      add(std::string("ALTER FUNCTION ") + sig + " OWNER TO " + q(roles.owner));
      add(std::string("REVOKE ALL ON FUNCTION ") + sig + " FROM PUBLIC");
      // A view's functions are called with the privileges of the user of the view, not its
      // owner's: the query role executes the masks (and learns from unmasked() only whether
      // its own token unmasks a column).
      add(std::string("GRANT EXECUTE ON FUNCTION ") + sig + " TO " + q(roles.query) + ", " + q(roles.views));
    }
    for (const auto& r : model->rules) {
      const std::string sig = "larder_ctx.r" + std::to_string(r.id) + "()";
      add(rule_function(p, r));
      add("ALTER FUNCTION " + sig + " OWNER TO " + q(roles.owner));
      add("REVOKE ALL ON FUNCTION " + sig + " FROM PUBLIC");
      add("GRANT EXECUTE ON FUNCTION " + sig + " TO " + q(roles.query) + ", " + q(roles.views));
    }
    return {};
  }

  // 4. Tables exposed before and no longer named: their privileges revoked.
  Result<void> unexposed() {
    auto previous =
        select(conn,
               "SELECT substr(object, 10) FROM larder_private.applied WHERE object LIKE 'relation %' "
               "AND to_regclass('larder_private.applied') IS NOT NULL",
               {}, deadline);
    if (previous) {
      for (int i = 0; i < previous->size(); ++i) {
        const std::string rel = previous->at(i, 0);
        if (p.relation(rel) != nullptr) continue;
        auto dot = rel.find('.');
        auto lr = read_relation(conn, rel.substr(0, dot), rel.substr(dot + 1), deadline);
        if (!lr) return lr.error();
        if (!lr->exists) continue;
        add("REVOKE ALL ON " + rel_sql(rel) + " FROM " + q(roles.query) + ", " + q(roles.views) + ", " +
            q(roles.owner));
        out.removals.push_back("every privilege of " + roles.query + ", " + roles.views + " and " +
                               roles.owner + " on " + rel +
                               " (no longer exposed; its row-level security stays on)");
      }
    } else {
      // No record yet (first apply): the statement failed inside no transaction; nothing to do.
    }
    return {};
  }

  // 5. Exposed relations: privileges, row-level security, one policy per row rule, join paths.
  void relations() {
    const std::string both = q(roles.query) + ", " + q(roles.views);
    for (const auto& rel : p.relations) {
      const LiveRelation& lr = model->live.at(rel.qualified());
      const std::string t = rel_sql(rel.qualified());
      if (is_table(lr.kind)) {
        add("ALTER TABLE " + t + " ENABLE ROW LEVEL SECURITY");
        add("ALTER TABLE " + t + " FORCE ROW LEVEL SECURITY");
      }
      add("REVOKE ALL ON " + t + " FROM " + q(roles.query) + ", " + q(roles.views) + ", " + q(roles.owner) +
          ", " + q(roles.writer));
      std::vector<std::string> cols;
      for (const auto& c : rel.columns) cols.push_back(c.name);
      if (rel.masked()) {
        add("GRANT SELECT (" + column_list(cols) + ") ON " + t + " TO " + q(roles.views));
      } else {
        add("GRANT SELECT (" + column_list(cols) + ") ON " + t + " TO " + q(roles.query));
      }
      if (!is_table(lr.kind)) continue;
      if (rel.everyone)
        add("CREATE POLICY larder_public ON " + t + " AS PERMISSIVE FOR SELECT TO " + both + " USING (true)");
      for (const auto& r : model->rules) {
        if (r.relation != &rel) continue;
        add("CREATE POLICY larder_r" + std::to_string(r.id) + " ON " + t + " AS PERMISSIVE FOR SELECT TO " +
            both + " USING " + rule_predicate(r));
      }
      if (!rel.everyone && rel.rules.empty())
        out.notes.push_back(rel.qualified() +
                            " has no row rule and is not public: no token sees any of its rows");
      if (lr.owner != "postgres")
        out.notes.push_back(
            rel.qualified() + " is owned by " + lr.owner +
            ": with FORCE ROW LEVEL SECURITY that role sees only the rows a policy grants it; if an "
            "application connects as " +
            lr.owner +
            ", give it its own policy (check accepts policies "
            "that name neither Larder's roles nor PUBLIC)");
    }
    // Join paths: the owner role reads the hop columns of every row.
    for (const auto& [rel, cols] : model->owner_reads) {
      const std::string t = rel_sql(rel);
      if (p.relation(rel) == nullptr) add("REVOKE ALL ON " + t + " FROM " + q(roles.owner));
      add("GRANT SELECT (" + column_list({cols.begin(), cols.end()}) + ") ON " + t + " TO " + q(roles.owner));
      add("CREATE POLICY larder_join_paths ON " + t + " AS PERMISSIVE FOR SELECT TO " + q(roles.owner) +
          " USING (true)");
    }
  }

  // 5. (cont.) One security-barrier view per masked relation.
  void masking_views() {
    for (const auto& rel : p.relations) {
      if (!rel.masked()) continue;
      std::string select_list;
      for (const auto& c : rel.columns) {
        if (!select_list.empty()) select_list += ",\n       ";
        select_list += c.mask ? mask_expression(c, model->mask_ids.at(rel.qualified() + "." + c.name))
                              : "t." + q(c.name);
      }
      const std::string v = quote_qualified(p.view_schema, rel.name);
      add("CREATE VIEW " + v + " WITH (security_barrier = true) AS\nSELECT " + select_list + "\n  FROM " +
          rel_sql(rel.qualified()) + " AS t");
      add("ALTER VIEW " + v + " OWNER TO " + q(roles.views));
      // The base table's COMMENT ON (table and columns) onto the view, so the agent's catalog
      // descriptions stay: the names travel as parameters, the server's format() quotes them.
      add("SELECT pg_catalog.set_config('larder.comment_source', $1, true), "
          "pg_catalog.set_config('larder.comment_target', $2, true)",
          {rel_sql(rel.qualified()), v});
      add(kCopyComments);
      add("REVOKE ALL ON " + v + " FROM PUBLIC");
      add("GRANT SELECT ON " + v + " TO " + q(roles.query));
    }
  }

  // 6. Catalog views that show other sessions' data or planner statistics.
  void catalog_views() {
    // (whatever row-level security says)
    if (admin->superuser) {
      add("REVOKE SELECT ON pg_catalog.pg_stats, pg_catalog.pg_stats_ext, pg_catalog.pg_stats_ext_exprs FROM "
          "PUBLIC");
      add("REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC");
      add("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC");
      add("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC");
      add("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC");
    } else {
      out.notes.push_back(
          "not a superuser: pg_stats and pg_stat_activity stay readable by PUBLIC; pg_stats shows the most "
          "common values of the columns the query role may read. A superuser should REVOKE SELECT ON "
          "pg_catalog.pg_stats, pg_stats_ext, pg_stats_ext_exprs, pg_stat_activity FROM PUBLIC");
    }
  }

  // 7. The record check() compares against.
  void record() {
    // Fingerprints render names (regclass, view definitions) by the session's search_path:
    // pinned, so apply (any administrator) and check (the writer, which may not use public)
    // see the same text.
    add("SET LOCAL search_path = pg_catalog");
    add("DELETE FROM larder_private.applied");
    add("INSERT INTO larder_private.applied (object, fingerprint) VALUES ('file', $1::text)", {p.digest});
    for (const auto& rel : p.relations)
      add("INSERT INTO larder_private.applied (object, fingerprint) VALUES ($1::text, '')",
          {"relation " + rel.qualified()});
    add(std::string("INSERT INTO larder_private.applied (object, fingerprint) SELECT * FROM (") +
            kFingerprints + ") AS f ON CONFLICT (object) DO UPDATE SET fingerprint = EXCLUDED.fingerprint",
        {p.view_schema, roles.query, roles.writer});
  }
};

}  // namespace

std::string Plan::render() const {
  std::ostringstream out;
  if (up_to_date) {
    out << "-- The database matches the policy file: nothing to do.\n";
  } else {
    out << "BEGIN;\n";
    for (const auto& s : statements) {
      out << s.sql << ";\n";
      for (std::size_t i = 0; i < s.params.size(); ++i) {
        out << "--   $" << i + 1 << " = " << (s.params[i] ? "'" + *s.params[i] + "'" : std::string("NULL"))
            << "\n";
      }
    }
    out << "COMMIT;\n";
  }
  if (!removals.empty()) {
    out << "\n-- Removes:\n";
    for (const auto& r : removals) out << "--   " << r << "\n";
  }
  if (!notes.empty()) {
    out << "\n-- Notes:\n";
    for (const auto& n : notes) out << "--   " << n << "\n";
  }
  return out.str();
}

Result<Plan> plan(const Policy& p, PGconn* conn, Clock::time_point deadline) {
  auto admin = read_admin(conn, deadline);
  if (!admin) return admin.error();
  if (!admin->superuser && !admin->createrole)
    return Error{"policy.privileges",
                 "role " + admin->user +
                     " can neither create roles nor is a superuser: `larder policy apply` needs a role with "
                     "CREATEROLE "
                     "that owns the exposed tables (docs/policy.md, \"Privileges\")",
                 ""};
  auto model = build_model(p, conn, deadline);
  if (!model) return model.error();
  auto out = Planner(p, conn, deadline, *admin, *model).run();
  if (!out) return out.error();
  auto drift = check(p, conn, deadline);
  if (drift && drift->empty()) {
    out->up_to_date = true;
    out->removals.clear();
  }
  return out;
}

Result<Plan> apply(const Policy& p, PGconn* conn, const ApplyOptions& options, Clock::time_point deadline) {
  auto pl = plan(p, conn, deadline);
  if (!pl) return pl;
  const bool passwords = options.query_password || options.writer_password;
  if (pl->up_to_date && !passwords) return pl;
  if (auto r = db::exec_script(conn, "BEGIN", deadline); !r) return r.error();
  auto fail = [&](const Error& e, const std::string& what) -> Error {
    (void)db::exec_script(conn, "ROLLBACK", deadline);
    return Error{"policy.apply", "apply failed, nothing was changed: " + what + ": " + e.message, e.detail};
  };
  if (!pl->up_to_date) {
    for (const auto& s : pl->statements) {
      auto r = db::exec_params(conn, s.sql, s.params, deadline);
      if (!r) return fail(r.error(), s.sql.substr(0, s.sql.find('\n')));
    }
  }
  for (auto [role, pw] : {std::pair{&p.roles.query, &options.query_password},
                          std::pair{&p.roles.writer, &options.writer_password}}) {
    if (!*pw) continue;
    // The verifier is computed here (the clear password never reaches the server) and quoted
    // by the server's format(%L).
    char* verifier = PQencryptPasswordConn(conn, (*pw)->c_str(), role->c_str(), "scram-sha-256");
    if (verifier == nullptr)
      return fail(db::error_from_connection(conn, "encrypting a password"), "password");
    std::string v(verifier);
    PQfreemem(verifier);
    auto r = db::exec_params(conn,
                             "SELECT pg_catalog.set_config('larder.setup_role', $1, true), "
                             "pg_catalog.set_config('larder.setup_verifier', $2, true)",
                             {*role, v}, deadline);
    if (!r) return fail(r.error(), "password");
    if (auto e = db::exec_script(conn,
                                 "DO $pw$ BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', "
                                 "pg_catalog.current_setting('larder.setup_role'), "
                                 "pg_catalog.current_setting('larder.setup_verifier')); END $pw$",
                                 deadline);
        !e)
      return fail(e.error(), "password");
  }
  if (auto r = db::exec_script(conn, "COMMIT", deadline); !r) return fail(r.error(), "COMMIT");
  return pl;
}

namespace {
Result<std::vector<std::string>> check_pinned(const Policy& p, PGconn* conn, Clock::time_point deadline);
}  // namespace

Result<std::vector<std::string>> check(const Policy& p, PGconn* conn, Clock::time_point deadline) {
  // Read-only, with the search_path pinned as apply pinned it when it recorded the fingerprints.
  // In the caller's transaction, its search_path is restored after.
  const bool own = PQtransactionStatus(conn) == PQTRANS_IDLE;
  std::string saved;
  if (own) {
    if (auto r = db::exec_script(conn, "BEGIN READ ONLY", deadline); !r) return r.error();
  } else {
    auto path = select(conn, "SELECT pg_catalog.current_setting('search_path')", {}, deadline);
    if (!path) return path.error();
    saved = path->at(0, 0);
  }
  if (auto r = db::exec_script(conn, "SET LOCAL search_path = pg_catalog", deadline); !r) {
    if (own) (void)db::exec_script(conn, "ROLLBACK", deadline);
    return r.error();
  }
  auto out = check_pinned(p, conn, deadline);
  if (own) {
    (void)db::exec_script(conn, "ROLLBACK", deadline);
  } else if (PQtransactionStatus(conn) == PQTRANS_INTRANS) {
    if (auto r = select(conn, "SELECT pg_catalog.set_config('search_path', $1, true)", {saved}, deadline); !r)
      return r.error();
  }
  return out;
}

namespace {

Result<std::vector<std::string>> check_pinned(const Policy& p, PGconn* conn, Clock::time_point deadline) {
  std::vector<std::string> drift;
  const Roles& roles = p.roles;
  // Every statement here reads; a savepoint-free read in the caller's transaction is fine.
  auto applied = select(conn,
                        "SELECT object, fingerprint FROM larder_private.applied "
                        "WHERE to_regclass('larder_private.applied') IS NOT NULL",
                        {}, deadline);
  std::map<std::string, std::string> stored;
  if (!applied) {
    // The table does not exist (the statement fails at parse time) or cannot be read.
    drift.push_back(
        "the policy has never been applied to this database (larder_private.applied is missing or "
        "unreadable): run `larder policy apply`");
    return drift;
  } else {
    for (int i = 0; i < applied->size(); ++i) stored[applied->at(i, 0)] = applied->at(i, 1);
    if (stored.empty()) {
      drift.push_back("the policy has never been applied to this database: run `larder policy apply`");
    } else if (stored["file"] != p.digest) {
      drift.push_back("the policy file " + p.file + " changed since the last `larder policy apply`");
    }
  }
  // Fingerprints of Larder's objects.
  auto live = select(conn, kFingerprints, {p.view_schema, roles.query, roles.writer}, deadline);
  if (!live) return live.error();
  std::map<std::string, std::string> now;
  for (int i = 0; i < live->size(); ++i) now[live->at(i, 0)] = live->at(i, 1);
  if (!stored.empty()) {
    for (const auto& [object, fp] : now) {
      auto it = stored.find(object);
      if (it == stored.end()) {
        drift.push_back(object + " was added by hand (apply did not make it)");
      } else if (it->second != fp) {
        drift.push_back(object + " was changed by hand");
      }
    }
    for (const auto& [object, fp] : stored) {
      if (object == "file" || object.rfind("relation ", 0) == 0) continue;
      if (now.count(object) == 0) drift.push_back(object + " was dropped by hand");
    }
  }
  // The keys that seal request contexts: without one, no request can prove its context.
  auto keys =
      select(conn,
             "SELECT CASE WHEN pg_catalog.to_regclass('larder_private.context_keys') IS NULL THEN 'missing' "
             "WHEN pg_catalog.has_column_privilege('larder_private.context_keys', 'key', 'SELECT') "
             "THEN 'readable' ELSE 'unreadable' END",
             {}, deadline);
  if (!keys) return keys.error();
  if (keys->at(0, 0) == "readable") {
    auto count = select(conn, "SELECT pg_catalog.count(*) FROM larder_private.context_keys", {}, deadline);
    if (!count) return count.error();
    if (count->at(0, 0) == "0")
      drift.push_back("larder_private.context_keys holds no key: run `larder policy apply` to make one");
  } else if (keys->at(0, 0) == "missing" && !stored.empty()) {
    drift.push_back(
        "larder_private.context_keys is missing (the policy was applied by an earlier version): run `larder "
        "policy apply`");
  }
  // Per exposed relation: RLS on and forced, no other policy that reaches the agent, no
  // undeclared column.
  std::set<std::string> exposed = p.guard_relations();
  for (const auto& rel : p.relations) {
    auto lr = read_relation(conn, rel.schema, rel.name, deadline);
    if (!lr) return lr.error();
    if (!lr->exists) {
      drift.push_back("relation " + rel.qualified() + " no longer exists");
      continue;
    }
    if (is_table(lr->kind)) {
      if (!lr->rls) drift.push_back("row-level security is disabled on " + rel.qualified());
      if (!lr->force) drift.push_back("row-level security is not FORCEd on " + rel.qualified());
    }
    for (const auto& c : lr->columns) {
      bool declared = rel.column(c.name) != nullptr ||
                      std::find(rel.hidden.begin(), rel.hidden.end(), c.name) != rel.hidden.end();
      if (!declared)
        drift.push_back(
            "column " + rel.qualified() + ".\"" + c.name +
            "\" is not in the policy file (a new column?): declare it in columns, masked or hidden");
    }
    auto foreign =
        select(conn,
               "SELECT p.polname FROM pg_catalog.pg_policy p WHERE p.polrelid = $1::oid "
               "AND p.polname NOT LIKE 'larder\\_%' AND (p.polroles @> ARRAY[0::oid] "
               "OR p.polroles && ARRAY(SELECT oid FROM pg_catalog.pg_roles WHERE rolname IN ($2, $3)))",
               {lr->oid, roles.query, roles.views}, deadline);
    if (!foreign) return foreign.error();
    for (int i = 0; i < foreign->size(); ++i)
      drift.push_back(
          "policy " + foreign->at(i, 0) + " on " + rel.qualified() +
          " applies to the agent's roles or PUBLIC and is not Larder's: it would widen what the agent "
          "sees (restrict it TO your application's roles, or drop it)");
    if (!rel.masked()) {
      auto cols = select(
          conn,
          "SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum > 0 "
          "AND NOT a.attisdropped AND pg_catalog.has_column_privilege($2, a.attrelid, a.attnum, 'SELECT')",
          {lr->oid, roles.query}, deadline);
      if (!cols) return cols.error();
      for (int i = 0; i < cols->size(); ++i) {
        const Column* c = rel.column(cols->at(i, 0));
        if (c == nullptr)
          drift.push_back(roles.query + " can read column " + rel.qualified() + ".\"" + cols->at(i, 0) +
                          "\", which the policy file does not list as readable");
      }
    }
  }
  // Everything the query role can touch in this database, beyond pg_catalog and
  // information_schema: exactly the exposed relations, SELECT only.
  auto reach = select(
      conn,
      "SELECT n.nspname || '.' || c.relname, "
      "pg_catalog.has_table_privilege($1, c.oid, 'SELECT') OR pg_catalog.has_any_column_privilege($1, c.oid, "
      "'SELECT'), "
      "pg_catalog.has_table_privilege($1, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') "
      "OR pg_catalog.has_any_column_privilege($1, c.oid, 'INSERT, UPDATE, REFERENCES') "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') "
      "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
      "AND n.nspname NOT LIKE 'pg\\_temp%'",
      {roles.query}, deadline);
  if (!reach) {
    if (reach.error().message.find("does not exist") != std::string::npos ||
        reach.error().code == "db.invalid_query") {
      drift.push_back("role " + roles.query + " does not exist: run `larder policy apply`");
      return drift;
    }
    return reach.error();
  }
  for (int i = 0; i < reach->size(); ++i) {
    const std::string rel = reach->at(i, 0);
    if (reach->at(i, 1) == "t" && exposed.count(rel) == 0)
      drift.push_back(roles.query + " can read " + rel +
                      ", which the policy file does not expose (a GRANT, a default "
                      "privilege or a grant to PUBLIC)");
    if (reach->at(i, 2) == "t") drift.push_back(roles.query + " may write to " + rel);
  }
  // The agent's roles: no superuser, no RLS bypass, members of nothing.
  auto attrs =
      select(conn,
             "SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname IN ($1, $2, $3) AND (r.rolsuper OR "
             "r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR EXISTS "
             "(SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid))",
             {roles.query, roles.writer, roles.views}, deadline);
  if (!attrs) return attrs.error();
  for (int i = 0; i < attrs->size(); ++i)
    drift.push_back(
        "role " + attrs->at(i, 0) +
        " has a privileged attribute (superuser, bypassrls, createrole, createdb, replication) or is a "
        "member of another role");
  return drift;
}

}  // namespace

Result<int> add_context_key(PGconn* admin, Clock::time_point deadline) {
  if (auto r = db::exec_script(admin, "BEGIN", deadline); !r) return r.error();
  auto fail = [&](const Error& e) -> Error {
    (void)db::exec_script(admin, "ROLLBACK", deadline);
    return Error{"policy.rotate_key",
                 "no key was added: " + e.message +
                     " (run `larder policy apply` first; the role needs to own larder_private.context_keys)",
                 e.detail};
  };
  if (auto r = db::exec_script(admin, context_key_sql(false), deadline); !r) return fail(r.error());
  auto id =
      db::exec_params(admin, "SELECT pg_catalog.max(id) FROM larder_private.context_keys", {}, deadline);
  if (!id) return fail(id.error());
  if (auto r = db::exec_script(admin, "COMMIT", deadline); !r) return fail(r.error());
  return std::atoi(PQgetvalue(id->get(), 0, 0));
}

Result<RetiredKeys> retire_context_keys(PGconn* admin, std::chrono::seconds min_age,
                                        Clock::time_point deadline) {
  auto r = db::exec_params(
      admin,
      "WITH newest AS (SELECT id, created_at FROM larder_private.context_keys ORDER BY id DESC LIMIT 1), "
      "gone AS (DELETE FROM larder_private.context_keys k USING newest n WHERE k.id < n.id AND "
      "n.created_at <= pg_catalog.now() - $1::integer * interval '1 second' RETURNING k.id) "
      "SELECT (SELECT pg_catalog.count(*) FROM gone), n.id, "
      "(EXTRACT(epoch FROM pg_catalog.now() - n.created_at))::bigint FROM newest n",
      {std::to_string(min_age.count())}, deadline);
  if (!r) return Error{"policy.retire_keys", "no key was retired: " + r.error().message, r.error().detail};
  if (PQntuples(r->get()) != 1)
    return Error{"policy.retire_keys", "there is no request-context key: run `larder policy apply`", ""};
  RetiredKeys out;
  out.retired = std::atoi(PQgetvalue(r->get(), 0, 0));
  out.newest = std::atoi(PQgetvalue(r->get(), 0, 1));
  out.newest_age = std::chrono::seconds(std::atoll(PQgetvalue(r->get(), 0, 2)));
  return out;
}

}  // namespace larder::policy
