#include "mcp/json_schema.h"

#include <gtest/gtest.h>

namespace larder::mcp {
namespace {

TEST(JsonSchema, ValidatesArguments) {
  auto s = JsonSchema::compile(nlohmann::json::parse(
      R"({"type":"object","properties":{"sql":{"type":"string","minLength":1},"limit":{"type":"integer","minimum":1}},"required":["sql"]})"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->validate(nlohmann::json::parse(R"({"sql":"select 1","limit":5})")).ok());
  auto missing = s->validate(nlohmann::json::parse(R"({"limit":5})"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("sql"), std::string::npos);
  EXPECT_FALSE(s->validate(nlohmann::json::parse(R"({"sql":"x","limit":0})")).ok());
  EXPECT_FALSE(s->validate(nlohmann::json::parse(R"({"sql":7})")).ok());
  EXPECT_FALSE(s->validate(nlohmann::json::parse(R"([1])")).ok());
}

TEST(JsonSchema, Accepts2020_12DocumentsWithDefs) {
  auto doc =
      nlohmann::json::parse(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
    "$defs":{"address":{"type":"object","properties":{"city":{"type":"string"}}}},
    "properties":{"address":{"$ref":"#/$defs/address"}},"additionalProperties":false})");
  auto s = JsonSchema::compile(doc);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->document(), doc);  // echoed unchanged, $schema included
  EXPECT_TRUE(s->validate(nlohmann::json::parse(R"({"address":{"city":"Paris"}})")).ok());
  EXPECT_FALSE(s->validate(nlohmann::json::parse(R"({"address":{"city":1}})")).ok());
  EXPECT_FALSE(s->validate(nlohmann::json::parse(R"({"other":1})")).ok());
}

TEST(JsonSchema, RejectsMalformedSchemas) {
  EXPECT_FALSE(JsonSchema::compile(nlohmann::json(5)).ok());
  EXPECT_FALSE(JsonSchema::compile(nlohmann::json::parse(R"({"type":5})")).ok());
  EXPECT_FALSE(
      JsonSchema::compile(nlohmann::json::parse(R"({"properties":{"a":{"$ref":"#/nowhere"}}})")).ok());
}

}  // namespace
}  // namespace larder::mcp
