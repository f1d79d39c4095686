#include "agent/schema_check.h"

namespace larder::agent {

using nlohmann::json;

namespace {

bool has_type(const json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (v.is_number_float()) {
      double d = v.get<double>();
      return d == static_cast<double>(static_cast<long long>(d));
    }
    return false;
  }
  return true;  // unknown type names do not reject
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void check(const json& v, const json& schema, const std::string& path, std::vector<std::string>& out,
           int depth) {
  if (depth > 32 || !schema.is_object()) return;
  if (schema.contains("type")) {
    const json& t = schema["type"];
    bool ok = true;
    std::string wanted;
    if (t.is_string()) {
      ok = has_type(v, t.get<std::string>());
      wanted = t.get<std::string>();
    } else if (t.is_array()) {
      ok = false;
      for (const auto& one : t) {
        if (!one.is_string()) continue;
        if (!wanted.empty()) wanted += " or ";
        wanted += one.get<std::string>();
        ok = ok || has_type(v, one.get<std::string>());
      }
    }
    if (!ok) {
      out.push_back(path + ": must be " + wanted + ", got " + v.type_name());
      return;
    }
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) out.push_back(path + ": must be one of " + schema["enum"].dump());
  }
  if (schema.contains("const") && schema["const"] != v)
    out.push_back(path + ": must be " + schema["const"].dump());
  if (v.is_number()) {
    double d = v.get<double>();
    if (schema.contains("minimum") && schema["minimum"].is_number() && d < schema["minimum"].get<double>())
      out.push_back(path + ": must be >= " + schema["minimum"].dump());
    if (schema.contains("maximum") && schema["maximum"].is_number() && d > schema["maximum"].get<double>())
      out.push_back(path + ": must be <= " + schema["maximum"].dump());
    if (schema.contains("exclusiveMinimum") && schema["exclusiveMinimum"].is_number() &&
        d <= schema["exclusiveMinimum"].get<double>())
      out.push_back(path + ": must be > " + schema["exclusiveMinimum"].dump());
    if (schema.contains("exclusiveMaximum") && schema["exclusiveMaximum"].is_number() &&
        d >= schema["exclusiveMaximum"].get<double>())
      out.push_back(path + ": must be < " + schema["exclusiveMaximum"].dump());
  }
  if (v.is_string()) {
    size_t n = utf8_length(v.get_ref<const std::string&>());
    if (schema.contains("minLength") && schema["minLength"].is_number_unsigned() &&
        n < schema["minLength"].get<size_t>())
      out.push_back(path + ": must be at least " + schema["minLength"].dump() + " characters");
    if (schema.contains("maxLength") && schema["maxLength"].is_number_unsigned() &&
        n > schema["maxLength"].get<size_t>())
      out.push_back(path + ": must be at most " + schema["maxLength"].dump() + " characters");
  }
  if (v.is_array()) {
    if (schema.contains("minItems") && schema["minItems"].is_number_unsigned() &&
        v.size() < schema["minItems"].get<size_t>())
      out.push_back(path + ": must have at least " + schema["minItems"].dump() + " items");
    if (schema.contains("maxItems") && schema["maxItems"].is_number_unsigned() &&
        v.size() > schema["maxItems"].get<size_t>())
      out.push_back(path + ": must have at most " + schema["maxItems"].dump() + " items");
    if (schema.contains("items") && schema["items"].is_object())
      for (size_t i = 0; i < v.size(); ++i)
        check(v[i], schema["items"], path + "[" + std::to_string(i) + "]", out, depth + 1);
  }
  if (v.is_object()) {
    const json* props =
        schema.contains("properties") && schema["properties"].is_object() ? &schema["properties"] : nullptr;
    if (schema.contains("required") && schema["required"].is_array())
      for (const auto& r : schema["required"])
        if (r.is_string() && !v.contains(r.get<std::string>()))
          out.push_back(path + ": missing required property '" + r.get<std::string>() + "'");
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props && props->contains(it.key())) {
        check(it.value(), (*props)[it.key()], path + "." + it.key(), out, depth + 1);
      } else if (schema.contains("additionalProperties")) {
        const json& extra = schema["additionalProperties"];
        if (extra.is_boolean() && !extra.get<bool>())
          out.push_back(path + ": unexpected property '" + it.key() + "'");
        else if (extra.is_object())
          check(it.value(), extra, path + "." + it.key(), out, depth + 1);
      }
    }
  }
}

}  // namespace

std::vector<std::string> check_against_schema(const json& value, const json& schema) {
  std::vector<std::string> out;
  check(value, schema, "$", out, 0);
  return out;
}

}  // namespace larder::agent
