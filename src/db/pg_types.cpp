#include "db/pg_types.h"

#include "base/json.h"

#include <charconv>
#include <cmath>

namespace larder::db {

std::string builtin_type_name(unsigned oid) {
  switch (oid) {
    case 16:
      return "boolean";
    case 17:
      return "bytea";
    case 18:
      return "\"char\"";
    case 19:
      return "name";
    case 20:
      return "bigint";
    case 21:
      return "smallint";
    case 23:
      return "integer";
    case 25:
      return "text";
    case 26:
      return "oid";
    case 114:
      return "json";
    case 142:
      return "xml";
    case 650:
      return "cidr";
    case 700:
      return "real";
    case 701:
      return "double precision";
    case 705:
      return "unknown";
    case 790:
      return "money";
    case 869:
      return "inet";
    case 1000:
      return "boolean[]";
    case 1005:
      return "smallint[]";
    case 1007:
      return "integer[]";
    case 1009:
      return "text[]";
    case 1015:
      return "character varying[]";
    case 1016:
      return "bigint[]";
    case 1021:
      return "real[]";
    case 1022:
      return "double precision[]";
    case 1042:
      return "character";
    case 1043:
      return "character varying";
    case 1082:
      return "date";
    case 1083:
      return "time without time zone";
    case 1114:
      return "timestamp without time zone";
    case 1115:
      return "timestamp without time zone[]";
    case 1182:
      return "date[]";
    case 1184:
      return "timestamp with time zone";
    case 1185:
      return "timestamp with time zone[]";
    case 1186:
      return "interval";
    case 1231:
      return "numeric[]";
    case 1266:
      return "time with time zone";
    case 1560:
      return "bit";
    case 1562:
      return "bit varying";
    case 1700:
      return "numeric";
    case 2205:
      return "regclass";
    case 2249:
      return "record";
    case 2278:
      return "void";
    case 2950:
      return "uuid";
    case 3802:
      return "jsonb";
    case 3807:
      return "jsonb[]";
    default:
      return "";
  }
}

nlohmann::json pg_value_to_json(unsigned oid, const std::optional<std::string>& text) {
  if (!text) return nullptr;
  const std::string& v = *text;
  switch (oid) {
    case 16:
      return v == "t";
    case 20:
    case 21:
    case 23:
    case 26: {
      long long n = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec == std::errc() && p == v.data() + v.size()) return n;
      return v;
    }
    case 700:
    case 701:
    case 1700: {
      double d = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
      if (ec == std::errc() && p == v.data() + v.size() && std::isfinite(d)) return d;
      return v;  // NaN, Infinity, or beyond double range: keep the exact text
    }
    case 114:
    case 3802: {
      // The value lands a few levels down in a tool result (rows[i].column): half the nesting
      // budget keeps the result readable by clients that bound theirs at kMaxJsonDepth; a
      // deeper value (json/jsonb nest as deep as the query makes them) stays text.
      auto j = parse_json_bounded(v, kMaxJsonDepth / 2);
      if (!j) return v;
      return std::move(*j);
    }
    default:
      return v;
  }
}

// Bytes of `text` as a JSON string's contents: quotes and backslashes are escaped with one more
// byte, control characters with up to five more (\u00XX).
std::size_t json_text_bytes(const char* text, std::size_t n) {
  std::size_t extra = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20) {
      extra += 5;
    } else if (c == '"' || c == '\\') {
      extra += 1;
    }
  }
  return n + extra;
}

std::size_t json_value_bytes(const PGresult* r, int row, int field) {
  if (PQgetisnull(r, row, field)) return 4;  // null
  return json_text_bytes(PQgetvalue(r, row, field), static_cast<std::size_t>(PQgetlength(r, row, field)));
}

}  // namespace larder::db
