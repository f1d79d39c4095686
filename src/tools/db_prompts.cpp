#include "tools/db_prompts.h"

namespace larder::tools {

namespace {

constexpr std::size_t kMaxArgBytes = 20'000;

struct PromptSpec {
  const char* name;
  const char* description;
  bool needs_sql;
};

const PromptSpec kPrompts[] = {
    {"generate_sql", "Write one PostgreSQL SELECT that answers a natural-language question about the data",
     false},
    {"validate_nl", "Decide whether a natural-language question can be answered from the schema", false},
    {"justify_sql", "Explain whether a SQL query correctly answers a natural-language question", true},
    {"generate_vega", "Write a Vega-Lite specification that visualises the result of a SQL query", true},
};

Result<std::string> string_arg(const nlohmann::json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end() || !it->is_string())
    return make_error("tools.bad_arguments", std::string("'") + key + "' (a string) is required");
  auto v = it->get<std::string>();
  if (v.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error("tools.bad_arguments", std::string("'") + key + "' is empty");
  if (v.size() > kMaxArgBytes)
    return make_error("tools.bad_arguments", std::string("'") + key + "' is too long");
  return v;
}

}  // namespace

std::string describe_schema(const nlohmann::json& structure, const std::string& notes) {
  std::string out = "Database: " + structure.value("database", std::string()) + " (PostgreSQL 15)\n";
  for (const auto& s : structure.value("schemas", nlohmann::json::array())) {
    for (const auto& t : s.value("tables", nlohmann::json::array())) {
      out += "\nTable " + s.value("name", std::string()) + "." + t.value("name", std::string());
      if (t.contains("comment")) out += " -- " + t.value("comment", std::string());
      out += " (columns):\n";
      for (const auto& c : t.value("columns", nlohmann::json::array())) {
        out += "  \"" + c.value("name", std::string()) + "\" " + c.value("type", std::string());
        if (c.contains("comment")) out += " -- " + c.value("comment", std::string());
        out += "\n";
      }
    }
  }
  out += "\nNotes:\n" + notes +
         "- Write column names with spaces or capital letters in double quotes, e.g. \"Order Date\".\n"
         "- Row-level security already limits the rows to those the caller may see; do not add filters for "
         "that.\n"
         "- Only single read-only SELECT statements are accepted; pass values as $1, $2 parameters.\n";
  return out;
}

std::string policy_notes(const policy::Policy& policy) {
  std::string out;
  for (const auto& rel : policy.relations) {
    std::string line = "- " + rel.short_name();
    if (!rel.description.empty()) line += ": " + rel.description;
    if (rel.everyone) line += " (every row is readable)";
    out += line + "\n";
    for (const auto& c : rel.columns) {
      if (c.mask) {
        out += "  - \"" + c.name + "\" is masked (" + std::string(policy::to_string(*c.mask)) +
               ") unless your token may unmask it; filtering or sorting on it uses the masked value.\n";
      } else if (!c.description.empty()) {
        out += "  - \"" + c.name + "\": " + c.description + "\n";
      }
    }
  }
  return out;
}

nlohmann::json DbPrompts::list() {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : kPrompts) {
    nlohmann::json args = nlohmann::json::array();
    args.push_back(
        {{"name", "nl_query"}, {"description", "The question, in natural language"}, {"required", true}});
    if (p.needs_sql)
      args.push_back({{"name", "sql_query"}, {"description", "The SQL query"}, {"required", true}});
    out.push_back({{"name", p.name}, {"description", p.description}, {"arguments", std::move(args)}});
  }
  return out;
}

Result<std::string> DbPrompts::schema_description(const db::RequestContext& ctx) {
  auto s = resources_.structure(ctx);
  if (!s) return s.error();
  return describe_schema(*s, notes_);
}

Result<nlohmann::json> DbPrompts::get(const db::RequestContext& ctx, const std::string& name,
                                      const nlohmann::json& args) {
  const PromptSpec* spec = nullptr;
  for (const auto& p : kPrompts)
    if (name == p.name) spec = &p;
  if (spec == nullptr) return make_error("tools.not_found", "unknown prompt '" + name + "'");
  if (!args.is_object()) return make_error("tools.bad_arguments", "prompt arguments must be an object");
  auto nl = string_arg(args, "nl_query");
  if (!nl) return nl.error();
  std::string sql;
  if (spec->needs_sql) {
    auto s = string_arg(args, "sql_query");
    if (!s) return s.error();
    sql = *s;
  }
  auto schema = schema_description(ctx);
  if (!schema) return schema.error();

  std::string text;
  if (name == "generate_sql") {
    text =
        "You translate questions into PostgreSQL.\n\n" + *schema +
        "\nWrite exactly one PostgreSQL SELECT statement that answers the question below. Reply with the SQL "
        "only, no explanation, no Markdown fences.\n\nQuestion: " +
        *nl + "\n";
  } else if (name == "validate_nl") {
    text = "You check whether a question can be answered from a database.\n\n" + *schema +
           "\nCan the question below be answered with a single SELECT over these tables and columns? Reply "
           "with a "
           "JSON object {\"answerable\": true|false, \"reason\": \"...\", \"columns\": [the columns "
           "needed]}.\n\n"
           "Question: " +
           *nl + "\n";
  } else if (name == "justify_sql") {
    text = "You review SQL written to answer a question.\n\n" + *schema +
           "\nDoes the SQL below correctly and completely answer the question? Explain step by step which "
           "tables, columns, filters and aggregates it uses and whether they match the question; end with "
           "a verdict line 'VERDICT: correct' or 'VERDICT: incorrect — <why>'.\n\nQuestion: " +
           *nl + "\n\nSQL:\n" + sql + "\n";
  } else {  // generate_vega
    text =
        "You design charts.\n\n" + *schema +
        "\nThe SQL below answers the question. Write a Vega-Lite v5 JSON specification that visualises its "
        "result. Use the SQL's output column names as field names; the data will be supplied as "
        "{\"values\": [...rows...]} under \"data\". Reply with the JSON only.\n\nQuestion: " +
        *nl + "\n\nSQL:\n" + sql + "\n";
  }
  return nlohmann::json{
      {"description", spec->description},
      {"messages",
       nlohmann::json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", text}}}}})}};
}

}  // namespace larder::tools
