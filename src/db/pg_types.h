// PostgreSQL values as Larder answers them: the names of the built-in types, a text-format
// value as a JSON value, and what a value costs in the JSON answer (the result's byte cap is
// counted in those bytes, before the JSON is built).
#pragma once

#include <libpq-fe.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace larder::db {

// JSON value of one text-format PostgreSQL value of type `oid`.
nlohmann::json pg_value_to_json(unsigned oid, const std::optional<std::string>& text);
// Built-in type name for `oid` ("" if not a common built-in type).
std::string builtin_type_name(unsigned oid);

// What a value costs in the JSON answer besides its bytes: quotes, colon, comma.
inline constexpr std::size_t kJsonFieldOverhead = 6;
// Bytes of `text` as a JSON string's contents: quotes and backslashes are escaped with one more
// byte, control characters with up to five more (\u00XX).
std::size_t json_text_bytes(const char* text, std::size_t n);
// A column name in the JSON answer: once in the column list, and next to each of its values.
inline std::size_t json_name_bytes(std::string_view name) {
  return name.size() + kJsonFieldOverhead;
}
// Value `field` of `row` of a result as a JSON string's contents (4 for null).
std::size_t json_value_bytes(const PGresult* r, int row, int field);

}  // namespace larder::db
