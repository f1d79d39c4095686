#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <string_view>

#include "db/sql_guard.h"
#include "db/sql_guard_lists.h"

namespace larder::db {

std::set<std::string> default_allowed_functions() {
  return {
      // aggregates
      "count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "variance",
      "var_pop", "var_samp", "percentile_cont", "percentile_disc", "mode", "string_agg",
      "array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "bool_and",
      "bool_or", "every", "bit_and", "bit_or", "corr", "covar_pop", "covar_samp", "regr_avgx",
      "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx",
      "regr_sxy", "regr_syy",
      // window functions (rank & co. are also hypothetical-set aggregates)
      "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
      "first_value", "last_value", "nth_value",
      // math
      "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power",
      "pow", "exp", "ln", "log", "log10", "mod", "div", "pi", "degrees", "radians",
      "width_bucket", "random", "gcd", "lcm", "factorial", "scale", "min_scale", "trim_scale",
      "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sind", "cosd", "tand",
      // string
      "lower", "upper", "initcap", "length", "char_length", "character_length",
      "octet_length", "bit_length", "substring", "substr", "trim", "btrim", "ltrim", "rtrim",
      "replace", "concat", "concat_ws", "position", "strpos", "split_part", "left", "right",
      "lpad", "rpad", "repeat", "reverse", "translate", "overlay", "starts_with", "format",
      "to_hex", "md5", "ascii", "chr", "quote_ident", "quote_literal", "quote_nullable",
      "regexp_replace", "regexp_match", "regexp_matches", "regexp_split_to_array",
      "regexp_split_to_table", "regexp_count", "regexp_instr", "regexp_like", "regexp_substr",
      "string_to_array", "string_to_table", "array_to_string", "normalize", "is_normalized",
      "similar_to_escape", "similar_escape", "num_nulls", "num_nonnulls",
      // date/time
      "date_trunc", "date_part", "extract", "date_bin", "age", "now", "clock_timestamp",
      "statement_timestamp", "transaction_timestamp", "to_char", "to_date", "to_timestamp",
      "to_number", "make_date", "make_time", "make_timestamp", "make_timestamptz",
      "make_interval", "justify_days", "justify_hours", "justify_interval", "isfinite",
      "timezone", "overlaps", "generate_series",
      // JSON
      "to_json", "to_jsonb", "row_to_json", "array_to_json", "json_build_object",
      "jsonb_build_object", "json_build_array", "jsonb_build_array", "json_object",
      "jsonb_object", "json_array_length", "jsonb_array_length", "json_extract_path",
      "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text", "json_each",
      "jsonb_each", "json_each_text", "jsonb_each_text", "json_array_elements",
      "jsonb_array_elements", "json_array_elements_text", "jsonb_array_elements_text",
      "json_object_keys", "jsonb_object_keys", "json_typeof", "jsonb_typeof", "jsonb_set",
      "jsonb_insert", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_pretty",
      "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
      "jsonb_path_exists", "jsonb_path_match", "json_to_record", "jsonb_to_record",
      "json_to_recordset", "jsonb_to_recordset",
      // arrays
      "array_length", "array_lower", "array_upper", "array_ndims", "array_dims", "cardinality",
      "unnest", "array_position", "array_positions", "array_remove", "array_replace",
      "array_append", "array_prepend", "array_cat", "array_fill",
      // function-style casts to ordinary types: date(x), numeric(x), ...
      "date", "text", "numeric", "int2", "int4", "int8", "float4", "float8", "bool",
      "timestamp", "timestamptz", "time", "interval", "varchar",
  };
}

namespace guard_lists {

namespace {

constexpr std::array<std::string_view, 24> kDeniedNames = {
    "set_config",      "current_setting", "nextval",          "setval",
    "currval",         "lastval",         "setseed",          "version",
    "query_to_xml",    "query_to_xml_and_xmlschema",           "query_to_xmlschema",
    "table_to_xml",    "table_to_xmlschema",                   "table_to_xml_and_xmlschema",
    "cursor_to_xml",   "cursor_to_xmlschema",                  "current_database",
    "current_schema",  "current_schemas", "current_user",     "session_user",
    "current_query",   "inet_server_addr",                     "inet_client_addr",
};

constexpr std::array<std::string_view, 9> kDeniedPrefixes = {
    "pg_",            // pg_sleep*, pg_read_*, pg_ls_*, pg_terminate_backend, pg_advisory_*, ...
    "lo_",            // large objects: lo_import, lo_export, lo_get, ...
    "dblink",         // dblink, dblink_exec, dblink_connect, ...
    "txid_",          // transaction ids and snapshots
    "schema_to_xml",  // catalog dumps
    "database_to_xml",
    "xml",            // xmlparse & co. (libxml2), xpath below
    "xpath",
    "has_",           // privilege probes: has_table_privilege, ...
};

constexpr std::array<std::string_view, 37> kCastTypes = {
    "bool",    "boolean",   "int2",        "int4",     "int8",    "smallint", "integer",
    "int",     "bigint",    "numeric",     "decimal",  "float4",  "float8",   "real",
    "text",    "varchar",   "bpchar",      "char",     "date",    "time",     "timetz",
    "timestamp", "timestamptz", "interval", "json",    "jsonb",   "uuid",     "bytea",
    "money",   "inet",      "cidr",        "macaddr",  "bit",     "varbit",   "jsonpath",
    "name",    "character",
};

}  // namespace

bool is_always_denied_function(std::string_view name) {
  if (std::find(kDeniedNames.begin(), kDeniedNames.end(), name) != kDeniedNames.end()) {
    return true;
  }
  return std::any_of(kDeniedPrefixes.begin(), kDeniedPrefixes.end(),
                     [&](std::string_view p) { return name.substr(0, p.size()) == p; });
}

bool is_allowed_cast_type(std::string_view name) {
  return std::find(kCastTypes.begin(), kCastTypes.end(), name) != kCastTypes.end();
}

}  // namespace guard_lists
}  // namespace larder::db
