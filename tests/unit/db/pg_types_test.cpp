// Unit tests of db/pg_types.h: type names, values as JSON, and their size in the JSON answer.
#include "db/pg_types.h"

#include <gtest/gtest.h>

#include <string>

using namespace larder::db;

TEST(PgValues, JsonConversionByType) {
  EXPECT_EQ(pg_value_to_json(23, std::string("42")), 42);
  EXPECT_EQ(pg_value_to_json(20, std::string("-9000000000")), -9000000000LL);
  EXPECT_EQ(pg_value_to_json(16, std::string("t")), true);
  EXPECT_EQ(pg_value_to_json(1700, std::string("12.50")), 12.5);
  EXPECT_EQ(pg_value_to_json(1700, std::string("NaN")), "NaN");
  EXPECT_EQ(pg_value_to_json(3802, std::string("{\"a\":1}"))["a"], 1);
  EXPECT_EQ(pg_value_to_json(25, std::string("x")), "x");
  EXPECT_TRUE(pg_value_to_json(25, std::nullopt).is_null());
  EXPECT_EQ(pg_value_to_json(23, std::string("12abc")), "12abc");
  EXPECT_EQ(builtin_type_name(1082), "date");
  EXPECT_EQ(builtin_type_name(99999), "");
}

TEST(PgValues, OutOfRangeAndMalformedValuesStayText) {
  EXPECT_EQ(pg_value_to_json(20, std::string("99999999999999999999")), "99999999999999999999");
  EXPECT_EQ(pg_value_to_json(701, std::string("Infinity")), "Infinity");
  EXPECT_EQ(pg_value_to_json(16, std::string("f")), false);
  EXPECT_EQ(pg_value_to_json(114, std::string("not json")), "not json");
  // json nested deeper than half the nesting budget stays text.
  std::string deep(1000, '[');
  deep += std::string(1000, ']');
  EXPECT_TRUE(pg_value_to_json(3802, deep).is_string());
}

TEST(JsonSize, EscapesCountTheirExtraBytes) {
  EXPECT_EQ(json_text_bytes("", 0), 0u);
  EXPECT_EQ(json_text_bytes("abc", 3), 3u);
  EXPECT_EQ(json_text_bytes("a\"b", 3), 4u);  // \"
  EXPECT_EQ(json_text_bytes("a\\b", 3), 4u);  // \\.
  EXPECT_EQ(json_text_bytes("a\nb", 3), 8u);  // \u000a at most
  EXPECT_EQ(json_text_bytes("\x01", 1), 6u);
  const std::string value = "r\xC3\xA9sum\xC3\xA9";  // UTF-8 is copied as is
  EXPECT_EQ(json_text_bytes(value.data(), value.size()), value.size());
  EXPECT_EQ(json_name_bytes("name"), 4 + kJsonFieldOverhead);
}
