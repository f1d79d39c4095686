// Reading a policy file (policy.h): shape, identifiers, types and cross-references that need
// no database. Errors name the file, the line and the key.
#include "base/files.h"
#include "base/time.h"
#include "policy/policy.h"

#include "base/encoding.h"

#include <openssl/evp.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace larder::policy {

std::string_view to_string(ValueType type) {
  switch (type) {
    case ValueType::kText:
      return "text";
    case ValueType::kInteger:
      return "integer";
    case ValueType::kBigint:
      return "bigint";
    case ValueType::kUuid:
      return "uuid";
    case ValueType::kDate:
      return "date";
    case ValueType::kBoolean:
      return "boolean";
  }
  return "text";
}

std::string_view pg_type(ValueType type) {
  return to_string(type);
}

std::string_view to_string(MaskKind kind) {
  switch (kind) {
    case MaskKind::kEmail:
      return "email";
    case MaskKind::kLast4:
      return "last4";
    case MaskKind::kRedact:
      return "redact";
  }
  return "redact";
}

namespace {

std::optional<ValueType> parse_type(std::string_view s) {
  for (auto t : {ValueType::kText, ValueType::kInteger, ValueType::kBigint, ValueType::kUuid,
                 ValueType::kDate, ValueType::kBoolean}) {
    if (to_string(t) == s) return t;
  }
  return std::nullopt;
}

std::optional<MaskKind> parse_mask(std::string_view s) {
  for (auto k : {MaskKind::kEmail, MaskKind::kLast4, MaskKind::kRedact}) {
    if (to_string(k) == s) return k;
  }
  return std::nullopt;
}

template <class Int>
bool parses_as(std::string_view text) {
  if (text.empty()) return false;
  const char* b = text.data();
  const char* e = b + text.size();
  if (*b == '+') return false;
  Int v{};
  auto [p, ec] = std::from_chars(b, e, v);
  return ec == std::errc() && p == e;
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

bool valid_value(ValueType type, std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return false;
  switch (type) {
    case ValueType::kText:
      return true;
    case ValueType::kInteger:
      return parses_as<std::int32_t>(text);
    case ValueType::kBigint:
      return parses_as<std::int64_t>(text);
    case ValueType::kBoolean:
      return text == "true" || text == "false";
    case ValueType::kUuid: {
      if (text.size() != 36) return false;
      for (std::size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !is_hex(text[i])) return false;
      }
      return true;
    }
    case ValueType::kDate: {
      if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
      int y = 0, m = 0, d = 0;
      if (!parses_as<int>(text.substr(0, 4)) || !parses_as<int>(text.substr(5, 2)) ||
          !parses_as<int>(text.substr(8, 2)))
        return false;
      std::from_chars(text.data(), text.data() + 4, y);
      std::from_chars(text.data() + 5, text.data() + 7, m);
      std::from_chars(text.data() + 8, text.data() + 10, d);
      return y >= 1 && m >= 1 && d >= 1 &&
             is_civil_date(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
    }
  }
  return false;
}

std::string Where::describe() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  if (!key.empty()) out += ": " + key;
  return out;
}

Error policy_error(const Where& where, const std::string& what) {
  return Error{"policy.invalid", where.describe() + ": " + what, ""};
}

std::string Relation::short_name() const {
  return schema == "public" ? name : qualified();
}

bool Relation::masked() const {
  return std::any_of(columns.begin(), columns.end(), [](const Column& c) { return c.mask.has_value(); });
}

const Column* Relation::column(std::string_view n) const {
  for (const auto& c : columns) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

const Relation* Policy::relation(std::string_view n) const {
  for (const auto& r : relations) {
    if (r.qualified() == n || r.short_name() == n) return &r;
  }
  return nullptr;
}

const Fact* Policy::fact(std::string_view n) const {
  for (const auto& f : facts) {
    if (f.name == n) return &f;
  }
  return nullptr;
}

std::set<std::string> Policy::guard_relations() const {
  std::set<std::string> out;
  for (const auto& r : relations) out.insert(r.masked() ? view_schema + "." + r.name : r.qualified());
  return out;
}

std::vector<std::string> Policy::search_path() const {
  std::vector<std::string> out;
  if (std::any_of(relations.begin(), relations.end(), [](const Relation& r) { return r.masked(); }))
    out.push_back(view_schema);
  out.push_back("public");
  return out;
}

const Relation* Policy::behind(std::string_view guard_relation) const {
  for (const auto& r : relations) {
    if (r.masked() ? guard_relation == view_schema + "." + r.name : guard_relation == r.qualified())
      return &r;
  }
  return nullptr;
}

std::vector<std::string> Policy::dimensions() const {
  std::vector<std::string> out;
  for (const auto& f : facts) out.push_back(f.name);
  std::sort(out.begin(), out.end());
  return out;
}

db::GuardPolicy guard_policy(const Policy& policy) {
  db::GuardPolicy g;
  g.allowed_relations = policy.guard_relations();
  g.search_path = policy.search_path();
  return g;
}

namespace {

constexpr std::size_t kMaxIdentifierBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

bool datalog_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  if (!(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '_';
  });
}

// Tool names as MCP hosts accept them.
bool tool_identifier(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// Predicates the server asserts or reserves: a policy fact may not reuse them — the server's
// own, and those the taint and revocation machinery use.
const std::set<std::string>& reserved_facts() {
  static const std::set<std::string> names = [] {
    std::set<std::string> n(server_predicates().begin(), server_predicates().end());
    n.insert({"right", "sensitive_data", "revocation_id"});
    return n;
  }();
  return names;
}

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Where at(const toml::node* n, const std::string& key) const {
    return Where{file_, n != nullptr ? static_cast<int>(n->source().begin.line) : 0, key};
  }

  Result<void> only(const toml::table& t, const std::string& key,
                    std::initializer_list<std::string_view> allowed) {
    for (const auto& [k, v] : t) {
      const std::string_view name = k.str();
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string choices;
        for (auto a : allowed) choices += (choices.empty() ? "" : ", ") + std::string(a);
        const std::string full = key.empty() ? std::string(name) : key + "." + std::string(name);
        return policy_error(at(&v, full), "unknown key (valid keys: " + choices + ")");
      }
    }
    return {};
  }

  Result<std::string> string(const toml::node& n, const std::string& key) const {
    const auto* s = n.as_string();
    if (s == nullptr) return policy_error(at(&n, key), "must be a string");
    if (s->get().find('\0') != std::string::npos) return policy_error(at(&n, key), "contains a NUL byte");
    return s->get();
  }

  Result<std::vector<std::string>> strings(const toml::node& n, const std::string& key) const {
    const auto* a = n.as_array();
    if (a == nullptr) return policy_error(at(&n, key), "must be an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < a->size(); ++i) {
      auto s = string(*a->get(i), key + "[" + std::to_string(i) + "]");
      if (!s) return s.error();
      out.push_back(std::move(*s));
    }
    return out;
  }

  Result<std::string> identifier(const toml::node& n, const std::string& key) const {
    auto s = string(n, key);
    if (!s) return s;
    if (s->empty() || s->size() > kMaxIdentifierBytes)
      return policy_error(at(&n, key), "must be a PostgreSQL name of 1 to 63 bytes");
    return s;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

// "[schema.]name" -> {schema, name}; names may hold spaces; at most one dot outside quotes is
// not parsed here: a key with a dot is split at its first dot.
std::pair<std::string, std::string> split_relation(const std::string& key) {
  auto dot = key.find('.');
  if (dot == std::string::npos) return {"public", key};
  return {key.substr(0, dot), key.substr(dot + 1)};
}

Result<ValueType> type_of(Reader& rd, const toml::node& n, const std::string& key) {
  auto s = rd.string(n, key);
  if (!s) return s.error();
  auto t = parse_type(*s);
  if (!t)
    return policy_error(rd.at(&n, key), "unknown type \"" + *s +
                                            "\" (valid types: text, integer, bigint, uuid, date, boolean)");
  return *t;
}

Result<Hop> parse_hop(Reader& rd, const toml::node& n, const std::string& key) {
  auto s = rd.string(n, key);
  if (!s) return s.error();
  // "column -> [schema.]relation.column"
  auto arrow = s->find("->");
  auto trim = [](std::string v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(v.begin());
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    return v;
  };
  const std::string form = "write a hop as \"<column> -> <table>.<column>\" (e.g. \"order_id -> orders.id\")";
  if (arrow == std::string::npos) return policy_error(rd.at(&n, key), form);
  Hop h;
  h.column = trim(s->substr(0, arrow));
  std::string target = trim(s->substr(arrow + 2));
  auto last = target.rfind('.');
  if (h.column.empty() || last == std::string::npos || last == 0 || last + 1 == target.size())
    return policy_error(rd.at(&n, key), form);
  h.target = target.substr(last + 1);
  auto [schema, name] = split_relation(target.substr(0, last));
  h.relation = schema + "." + name;
  h.where = rd.at(&n, key);
  return h;
}

Result<RowRule> parse_rule(Reader& rd, const toml::table& t, const std::string& key) {
  if (auto r = rd.only(t, key, {"column", "columns", "fact", "via", "when"}); !r) return r.error();
  RowRule rule;
  rule.where = rd.at(&t, key);
  const toml::node* column = t.get("column");
  const toml::node* columns = t.get("columns");
  if ((column != nullptr) == (columns != nullptr))
    return policy_error(rule.where, "a row rule names exactly one of column = \"...\" or columns = [...]");
  if (column != nullptr) {
    auto c = rd.identifier(*column, key + ".column");
    if (!c) return c.error();
    rule.columns.push_back(*c);
  } else {
    const auto* a = columns->as_array();
    if (a == nullptr || a->empty())
      return policy_error(rd.at(columns, key + ".columns"), "must be a non-empty array of column names");
    for (std::size_t i = 0; i < a->size(); ++i) {
      auto c = rd.identifier(*a->get(i), key + ".columns[" + std::to_string(i) + "]");
      if (!c) return c.error();
      rule.columns.push_back(*c);
    }
  }
  const toml::node* fact = t.get("fact");
  if (fact == nullptr) return policy_error(rule.where, "a row rule needs fact = \"<fact name>\"");
  auto f = rd.string(*fact, key + ".fact");
  if (!f) return f.error();
  rule.fact = *f;
  if (const toml::node* via = t.get("via")) {
    const auto* a = via->as_array();
    if (a == nullptr || a->empty())
      return policy_error(rd.at(via, key + ".via"),
                          "must be a non-empty array of hops \"<column> -> <table>.<column>\"");
    for (std::size_t i = 0; i < a->size(); ++i) {
      auto h = parse_hop(rd, *a->get(i), key + ".via[" + std::to_string(i) + "]");
      if (!h) return h.error();
      rule.via.push_back(std::move(*h));
    }
  }
  if (const toml::node* when = t.get("when")) {
    const auto* w = when->as_table();
    const std::string wkey = key + ".when";
    if (w == nullptr)
      return policy_error(rd.at(when, wkey), "must be a table { fact = \"...\", any_of = [...] }");
    if (auto r = rd.only(*w, wkey, {"fact", "any_of"}); !r) return r.error();
    const toml::node* wf = w->get("fact");
    const toml::node* wa = w->get("any_of");
    if (wf == nullptr || wa == nullptr)
      return policy_error(rd.at(when, wkey), "needs both fact = \"...\" and any_of = [...]");
    auto name = rd.string(*wf, wkey + ".fact");
    if (!name) return name.error();
    auto values = rd.strings(*wa, wkey + ".any_of");
    if (!values) return values.error();
    if (values->empty()) return policy_error(rd.at(wa, wkey + ".any_of"), "must list at least one value");
    rule.when_fact = *name;
    rule.when_any_of = std::move(*values);
  }
  return rule;
}

Result<Relation> parse_relation(Reader& rd, const std::string& rel_key, const toml::table& t) {
  const std::string key = "tables." + rel_key;
  if (auto r = rd.only(
          t, key,
          {"description", "sensitivity", "public", "columns", "hidden", "masked", "descriptions", "rows"});
      !r)
    return r.error();
  Relation rel;
  std::tie(rel.schema, rel.name) = split_relation(rel_key);
  rel.where = rd.at(&t, key);
  if (rel.schema.empty() || rel.name.empty() || rel.schema.size() > kMaxIdentifierBytes ||
      rel.name.size() > kMaxIdentifierBytes || rel_key.find('\0') != std::string::npos)
    return policy_error(
        rel.where,
        "a table is named [tables.<name>] or [tables.\"<schema>.<name>\"] (names of 1 to 63 bytes)");
  if (rel.schema == "pg_catalog" || rel.schema == "information_schema" || rel.schema.rfind("pg_", 0) == 0 ||
      rel.schema.rfind("larder_", 0) == 0)
    return policy_error(rel.where, "schema " + rel.schema + " cannot be exposed (system or Larder's own)");
  if (const toml::node* d = t.get("description")) {
    auto s = rd.string(*d, key + ".description");
    if (!s) return s.error();
    rel.description = *s;
  }
  if (const toml::node* p = t.get("public")) {
    if (!p->is_boolean()) return policy_error(rd.at(p, key + ".public"), "must be true or false");
    rel.everyone = p->as_boolean()->get();
    if (rel.everyone) rel.sensitivity = Sensitivity::kPublic;
  }
  if (const toml::node* s = t.get("sensitivity")) {
    auto v = rd.string(*s, key + ".sensitivity");
    if (!v) return v.error();
    if (*v == "sensitive") {
      rel.sensitivity = Sensitivity::kSensitive;
    } else if (*v == "public") {
      rel.sensitivity = Sensitivity::kPublic;
    } else {
      return policy_error(rd.at(s, key + ".sensitivity"),
                          "must be \"sensitive\" or \"public\" (got \"" + *v + "\")");
    }
  }
  std::set<std::string> seen;
  auto claim = [&](const std::string& col, const toml::node* n, const std::string& k,
                   const char* as) -> Result<void> {
    if (col.empty() || col.size() > kMaxIdentifierBytes)
      return policy_error(rd.at(n, k), "must be a column name of 1 to 63 bytes");
    if (!seen.insert(col).second)
      return policy_error(rd.at(n, k),
                          "column \"" + col + "\" is declared twice (it is " + as +
                              " here and listed earlier): a column is readable, masked or hidden, once");
    return {};
  };
  if (const toml::node* c = t.get("columns")) {
    const auto* a = c->as_array();
    if (a == nullptr) return policy_error(rd.at(c, key + ".columns"), "must be an array of column names");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string k = key + ".columns[" + std::to_string(i) + "]";
      auto s = rd.string(*a->get(i), k);
      if (!s) return s.error();
      if (auto r = claim(*s, a->get(i), k, "readable"); !r) return r.error();
      Column col;
      col.name = *s;
      col.where = rd.at(a->get(i), k);
      rel.columns.push_back(std::move(col));
    }
  }
  if (const toml::node* m = t.get("masked")) {
    const auto* mt = m->as_table();
    if (mt == nullptr)
      return policy_error(rd.at(m, key + ".masked"),
                          "must be a table of <column> = \"email\" | \"last4\" | \"redact\"");
    for (const auto& [k, v] : *mt) {
      const std::string name(k.str());
      const std::string mk = key + ".masked." + name;
      if (auto r = claim(name, &v, mk, "masked"); !r) return r.error();
      Column col;
      col.name = name;
      col.where = rd.at(&v, mk);
      std::string kind;
      if (v.is_string()) {
        kind = v.as_string()->get();
      } else if (const auto* spec = v.as_table()) {
        if (auto r = rd.only(*spec, mk, {"mask", "unmask_right"}); !r) return r.error();
        const toml::node* kn = spec->get("mask");
        if (kn == nullptr) return policy_error(col.where, "needs mask = \"email\" | \"last4\" | \"redact\"");
        auto s = rd.string(*kn, mk + ".mask");
        if (!s) return s.error();
        kind = *s;
        if (const toml::node* u = spec->get("unmask_right")) {
          auto s2 = rd.string(*u, mk + ".unmask_right");
          if (!s2) return s2.error();
          if (s2->empty()) return policy_error(rd.at(u, mk + ".unmask_right"), "must not be empty");
          col.unmask_right = *s2;
        }
      } else {
        return policy_error(
            col.where, "must be \"email\", \"last4\" or \"redact\", or { mask = ..., unmask_right = ... }");
      }
      col.mask = parse_mask(kind);
      if (!col.mask)
        return policy_error(col.where, "unknown mask \"" + kind + "\" (valid masks: email, last4, redact)");
      if (col.unmask_right.empty()) col.unmask_right = rel.short_name() + "." + name;
      rel.columns.push_back(std::move(col));
    }
  }
  if (const toml::node* h = t.get("hidden")) {
    const auto* a = h->as_array();
    if (a == nullptr) return policy_error(rd.at(h, key + ".hidden"), "must be an array of column names");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string k = key + ".hidden[" + std::to_string(i) + "]";
      auto s = rd.string(*a->get(i), k);
      if (!s) return s.error();
      if (auto r = claim(*s, a->get(i), k, "hidden"); !r) return r.error();
      rel.hidden.push_back(*s);
    }
  }
  if (rel.columns.empty())
    return policy_error(rel.where, "exposes no column: list the readable ones in columns = [...]");
  if (const toml::node* d = t.get("descriptions")) {
    const auto* dt = d->as_table();
    if (dt == nullptr)
      return policy_error(rd.at(d, key + ".descriptions"), "must be a table of <column> = \"description\"");
    for (const auto& [k, v] : *dt) {
      const std::string name(k.str());
      const std::string dk = key + ".descriptions." + name;
      auto s = rd.string(v, dk);
      if (!s) return s.error();
      auto it = std::find_if(rel.columns.begin(), rel.columns.end(),
                             [&](const Column& c) { return c.name == name; });
      if (it == rel.columns.end())
        return policy_error(rd.at(&v, dk), "describes \"" + name +
                                               "\", which is not a readable or masked column of this table");
      it->description = *s;
    }
  }
  if (const toml::node* rows = t.get("rows")) {
    const auto* a = rows->as_array();
    if (a == nullptr)
      return policy_error(rd.at(rows, key + ".rows"), "must be an array of tables: [[tables.<name>.rows]]");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string k = key + ".rows[" + std::to_string(i) + "]";
      const auto* rt = a->get(i)->as_table();
      if (rt == nullptr) return policy_error(rd.at(a->get(i), k), "must be a table");
      auto rule = parse_rule(rd, *rt, k);
      if (!rule) return rule.error();
      rel.rules.push_back(std::move(*rule));
    }
  }
  if (rel.everyone && !rel.rules.empty())
    return policy_error(rel.where,
                        "is public (every row to every valid token) and also has row rules: keep one");
  return rel;
}

Result<QueryTool> parse_tool(Reader& rd, const std::string& name, const toml::node& n) {
  const std::string key = "tools." + name;
  const auto* t = n.as_table();
  if (t == nullptr) return policy_error(rd.at(&n, key), "must be a table");
  if (auto r = rd.only(*t, key, {"description", "sql", "params"}); !r) return r.error();
  QueryTool tool;
  tool.name = name;
  tool.where = rd.at(&n, key);
  if (!tool_identifier(name))
    return policy_error(tool.where, "a tool name is 1 to 64 letters, digits, '_' or '-'");
  const toml::node* d = t->get("description");
  const toml::node* s = t->get("sql");
  if (d == nullptr || s == nullptr)
    return policy_error(tool.where, "a tool needs description = \"...\" and sql = \"SELECT ...\"");
  auto desc = rd.string(*d, key + ".description");
  if (!desc) return desc.error();
  auto sql = rd.string(*s, key + ".sql");
  if (!sql) return sql.error();
  tool.description = *desc;
  tool.sql = *sql;
  if (const toml::node* p = t->get("params")) {
    const auto* a = p->as_array();
    if (a == nullptr)
      return policy_error(rd.at(p, key + ".params"), "must be an array of tables: [[tools.<name>.params]]");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string k = key + ".params[" + std::to_string(i) + "]";
      const auto* pt = a->get(i)->as_table();
      if (pt == nullptr)
        return policy_error(rd.at(a->get(i), k), "must be a table { name, type, description }");
      if (auto r = rd.only(*pt, k, {"name", "type", "description", "required"}); !r) return r.error();
      ToolParam param;
      const toml::node* pn = pt->get("name");
      const toml::node* ty = pt->get("type");
      if (pn == nullptr || ty == nullptr)
        return policy_error(rd.at(pt, k), "a parameter needs name and type");
      auto pname = rd.string(*pn, k + ".name");
      if (!pname) return pname.error();
      if (!tool_identifier(*pname) || *pname == "biscuit_token")
        return policy_error(
            rd.at(pn, k + ".name"),
            "a parameter name is 1 to 64 letters, digits, '_' or '-' (and not biscuit_token)");
      if (!seen.insert(*pname).second)
        return policy_error(rd.at(pn, k + ".name"), "parameter \"" + *pname + "\" is declared twice");
      param.name = *pname;
      auto type = type_of(rd, *ty, k + ".type");
      if (!type) return type.error();
      param.type = *type;
      if (const toml::node* pd = pt->get("description")) {
        auto v = rd.string(*pd, k + ".description");
        if (!v) return v.error();
        param.description = *v;
      }
      if (const toml::node* req = pt->get("required")) {
        if (!req->is_boolean()) return policy_error(rd.at(req, k + ".required"), "must be true or false");
        param.required = req->as_boolean()->get();
      }
      tool.params.push_back(std::move(param));
    }
  }
  return tool;
}

}  // namespace

Result<Policy> parse(std::string_view text, const std::string& display_name) {
  Reader rd(display_name);
  toml::table root;
  try {
    root = toml::parse(text, display_name);
  } catch (const toml::parse_error& e) {
    return Error{
        "policy.invalid",
        display_name + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()), ""};
  }
  Policy p;
  p.file = display_name;
  p.digest = sha256_hex(text);
  if (auto r = rd.only(root, "", {"roles", "options", "facts", "tables", "tools"}); !r) return r.error();

  if (const toml::node* n = root.get("roles")) {
    const auto* t = n->as_table();
    if (t == nullptr) return policy_error(rd.at(n, "roles"), "must be a table");
    if (auto r = rd.only(*t, "roles", {"query", "writer", "owner", "views"}); !r) return r.error();
    for (auto [k, v] : {std::pair{"query", &p.roles.query}, std::pair{"writer", &p.roles.writer},
                        std::pair{"owner", &p.roles.owner}, std::pair{"views", &p.roles.views}}) {
      if (const toml::node* s = t->get(k)) {
        auto id = rd.identifier(*s, std::string("roles.") + k);
        if (!id) return id.error();
        if (id->rfind("pg_", 0) == 0)
          return policy_error(rd.at(s, std::string("roles.") + k),
                              "role names starting with pg_ are reserved");
        *v = *id;
      }
    }
    std::set<std::string> distinct{p.roles.query, p.roles.writer, p.roles.owner, p.roles.views};
    if (distinct.size() != 4) return policy_error(rd.at(n, "roles"), "the four roles must be distinct");
  }
  if (const toml::node* n = root.get("options")) {
    const auto* t = n->as_table();
    if (t == nullptr) return policy_error(rd.at(n, "options"), "must be a table");
    if (auto r = rd.only(*t, "options", {"pg_query", "view_schema"}); !r) return r.error();
    if (const toml::node* q = t->get("pg_query")) {
      if (!q->is_boolean()) return policy_error(rd.at(q, "options.pg_query"), "must be true or false");
      p.pg_query = q->as_boolean()->get();
    }
    if (const toml::node* s = t->get("view_schema")) {
      auto id = rd.identifier(*s, "options.view_schema");
      if (!id) return id.error();
      p.view_schema = *id;
    }
  }
  if (const toml::node* n = root.get("facts")) {
    const auto* t = n->as_table();
    if (t == nullptr)
      return policy_error(rd.at(n, "facts"), "must be a table of <fact> = \"<type>\" or [\"<type>\", ...]");
    for (const auto& [k, v] : *t) {
      Fact f;
      f.name = std::string(k.str());
      const std::string key = "facts." + f.name;
      f.where = rd.at(&v, key);
      if (!datalog_identifier(f.name))
        return policy_error(f.where,
                            "a fact name is a Datalog identifier: lower-case letters, digits and '_'");
      if (reserved_facts().count(f.name) != 0)
        return policy_error(
            f.where, "\"" + f.name + "\" is a predicate the server asserts or reserves; pick another name");
      if (v.is_array()) {
        const auto* a = v.as_array();
        if (a->empty()) return policy_error(f.where, "a fact has at least one argument");
        for (std::size_t i = 0; i < a->size(); ++i) {
          auto ty = type_of(rd, *a->get(i), key + "[" + std::to_string(i) + "]");
          if (!ty) return ty.error();
          f.args.push_back(*ty);
        }
      } else {
        auto ty = type_of(rd, v, key);
        if (!ty) return ty.error();
        f.args.push_back(*ty);
      }
      p.facts.push_back(std::move(f));
    }
  }
  if (const toml::node* n = root.get("tables")) {
    const auto* t = n->as_table();
    if (t == nullptr) return policy_error(rd.at(n, "tables"), "must be a table of [tables.<name>]");
    for (const auto& [k, v] : *t) {
      const auto* rt = v.as_table();
      if (rt == nullptr) return policy_error(rd.at(&v, "tables." + std::string(k.str())), "must be a table");
      auto rel = parse_relation(rd, std::string(k.str()), *rt);
      if (!rel) return rel.error();
      for (const auto& other : p.relations) {
        if (other.qualified() == rel->qualified()) {
          // Tables come in key order, not file order: name the later one.
          const bool later = rel->where.line >= other.where.line;
          const Where& second = later ? rel->where : other.where;
          const Where& first = later ? other.where : rel->where;
          return policy_error(second, "table " + rel->qualified() + " is declared twice (first at line " +
                                          std::to_string(first.line) + ")");
        }
        if (rel->masked() && other.masked() && other.name == rel->name)
          return policy_error(rel->where,
                              "two tables named " + rel->name +
                                  " have masked columns; their masking views would share one name");
      }
      p.relations.push_back(std::move(*rel));
    }
  }
  if (p.relations.empty())
    return policy_error(Where{display_name, 0, "tables"}, "the file exposes no table: add [tables.<name>]");
  if (const toml::node* n = root.get("tools")) {
    const auto* t = n->as_table();
    if (t == nullptr) return policy_error(rd.at(n, "tools"), "must be a table of [tools.<name>]");
    for (const auto& [k, v] : *t) {
      auto tool = parse_tool(rd, std::string(k.str()), v);
      if (!tool) return tool.error();
      p.tools.push_back(std::move(*tool));
    }
  }

  // Cross-references: every fact a rule uses is declared, with the arity it is used with.
  std::set<std::string> used;
  for (auto& rel : p.relations) {
    for (std::size_t i = 0; i < rel.rules.size(); ++i) {
      auto& rule = rel.rules[i];
      const Fact* f = p.fact(rule.fact);
      if (f == nullptr)
        return policy_error(rule.where,
                            "fact \"" + rule.fact + "\" is not declared: add it under [facts] with its type");
      if (f->args.size() != rule.columns.size())
        return policy_error(rule.where, "fact \"" + rule.fact + "\" has " + std::to_string(f->args.size()) +
                                            " argument(s) (" + f->where.describe() +
                                            ") but is matched against " +
                                            std::to_string(rule.columns.size()) + " column(s) here");
      used.insert(rule.fact);
      if (!rule.when_fact.empty()) {
        const Fact* w = p.fact(rule.when_fact);
        if (w == nullptr)
          return policy_error(
              rule.where, "when names fact \"" + rule.when_fact + "\", which is not declared under [facts]");
        if (w->args.size() != 1)
          return policy_error(rule.where, "fact \"" + rule.when_fact + "\" has " +
                                              std::to_string(w->args.size()) + " arguments (" +
                                              w->where.describe() + ") but when uses it with one");
        for (const auto& v : rule.when_any_of) {
          if (!valid_value(w->args[0], v))
            return policy_error(
                rule.where, "when.any_of value \"" + v + "\" is not a " + std::string(to_string(w->args[0])));
        }
        used.insert(rule.when_fact);
      }
      for (const auto& hop : rule.via) {
        if (hop.relation == rel.qualified() && &hop == &rule.via.front() && hop.column == hop.target)
          return policy_error(hop.where, "a hop must lead to another row");
      }
    }
  }
  for (const auto& f : p.facts) {
    if (used.count(f.name) == 0)
      return policy_error(f.where, "fact \"" + f.name + "\" is declared but no row rule uses it");
  }
  if (!p.pg_query && p.tools.empty())
    return policy_error(
        Where{display_name, 0, "options.pg_query"},
        "pg_query is off and no [tools.<name>] is declared: the agent would have nothing to call");
  return p;
}

Result<Policy> load(const std::string& path) {
  auto read = read_file(path);
  if (!read)
    return Error{"policy.io", "cannot read the policy file " + path + ": check the path ([policy] file)", ""};
  const std::string text = std::move(*read);
  if (text.size() > 4 * 1024 * 1024) return Error{"policy.invalid", path + ": larger than 4 MiB", ""};
  return parse(text, path);
}

const std::vector<std::string>& server_predicates() {
  static const std::vector<std::string> names = {"time",
                                                 "tool",
                                                 "resource",
                                                 "prompt",
                                                 "operation",
                                                 "server_audience",
                                                 "tool_egress",
                                                 "table",
                                                 "column",
                                                 "mtls_client",
                                                 "client_cert_cn",
                                                 "client_cert_sha256",
                                                 "client_cert_spki_sha256",
                                                 "client_cert_issuer",
                                                 "client_cert_san",
                                                 "client_cert_serial"};
  return names;
}

}  // namespace larder::policy
