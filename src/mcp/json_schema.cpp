#include "mcp/json_schema.h"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <exception>
#include <sstream>

namespace larder::mcp {

struct JsonSchema::Impl {
  nlohmann::json document;
  valijson::Schema schema;
};

namespace {

// valijson rejects `$schema` URIs it does not know; strip the keyword (recursively only at the
// root, which is where it is allowed) before parsing. The stored document keeps it.
nlohmann::json for_valijson(const nlohmann::json& schema) {
  nlohmann::json copy = schema;
  if (copy.is_object()) copy.erase("$schema");
  return copy;
}

}  // namespace

larder::Result<JsonSchema> JsonSchema::compile(const nlohmann::json& schema) {
  if (!schema.is_object() && !schema.is_boolean()) {
    return larder::make_error("mcp.schema", "a JSON Schema must be an object or a boolean");
  }
  auto impl = std::make_shared<Impl>();
  impl->document = schema;
  try {
    nlohmann::json parsed = for_valijson(schema);
    if (parsed.is_boolean())
      parsed =
          parsed.get<bool>() ? nlohmann::json::object() : nlohmann::json{{"not", nlohmann::json::object()}};
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(parsed);
    parser.populateSchema(adapter, impl->schema);
  } catch (const std::exception& e) {
    return larder::make_error("mcp.schema", std::string("cannot compile JSON Schema: ") + e.what());
  }
  JsonSchema out;
  out.impl_ = std::move(impl);
  return out;
}

larder::Result<void> JsonSchema::validate(const nlohmann::json& instance) const {
  valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(instance);
  bool ok = false;
  try {
    ok = validator.validate(impl_->schema, adapter, &results);
  } catch (const std::exception& e) {
    return larder::make_error("mcp.schema.invalid", std::string("validation failed: ") + e.what());
  }
  if (ok) return {};
  std::ostringstream out;
  valijson::ValidationResults::Error error;
  bool first = true;
  int shown = 0;
  while (results.popError(error) && shown < 8) {
    // valijson reports the failing keyword chain; the innermost (last popped) entries are the
    // most specific, but every entry names a location, so keep a few.
    std::string where;
    for (const auto& part : error.context) where += part == "<root>" ? "" : part;
    if (!first) out << "; ";
    out << (where.empty() ? "/" : where) << ": " << error.description;
    first = false;
    ++shown;
  }
  return larder::make_error("mcp.schema.invalid", out.str());
}

const nlohmann::json& JsonSchema::document() const {
  return impl_->document;
}

}  // namespace larder::mcp
