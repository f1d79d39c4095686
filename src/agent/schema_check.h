// A small JSON Schema check for tool arguments the model produced, covering the keywords
// MCP tool schemas use in practice (type, properties, required, additionalProperties,
// enum, const, minimum/maximum, minLength/maxLength, items, minItems/maxItems). Unknown
// keywords are ignored: the server validates again with the full schema; this check only
// lets the agent hand the model a precise error without a round trip.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace larder::agent {

// Returns one message per violation ("$.limit: must be <= 1000"); empty when valid.
std::vector<std::string> check_against_schema(const nlohmann::json& value, const nlohmann::json& schema);

}  // namespace larder::agent
