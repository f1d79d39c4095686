#include "base/json.h"

#include <gtest/gtest.h>

#include <string>

namespace larder {
namespace {

std::string nested_arrays(std::size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

std::string nested_objects(std::size_t depth) {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += "{\"a\":";
  out += "1";
  out += std::string(depth, '}');
  return out;
}

TEST(JsonDepth, CountsArraysAndObjects) {
  EXPECT_EQ(json_nesting_depth("1"), 0u);
  EXPECT_EQ(json_nesting_depth("\"x\""), 0u);
  EXPECT_EQ(json_nesting_depth("[]"), 1u);
  EXPECT_EQ(json_nesting_depth("{}"), 1u);
  EXPECT_EQ(json_nesting_depth(R"({"a":[{"b":1}],"c":[]})"), 3u);
  EXPECT_EQ(json_nesting_depth("[[],[[]],[]]"), 3u);
  EXPECT_EQ(json_nesting_depth(nested_arrays(150000)), 150000u);
}

TEST(JsonDepth, BracketsInsideStringsDoNotCount) {
  EXPECT_EQ(json_nesting_depth(R"({"s":"[[[[{{{{"})"), 1u);
  EXPECT_EQ(json_nesting_depth(R"(["\"[[[[", 1])"), 1u);     // an escaped quote does not end the string
  EXPECT_EQ(json_nesting_depth(R"(["\\", [[1]]])"), 3u);     // an escaped backslash does not escape the quote
  EXPECT_EQ(json_nesting_depth(R"(["\u005b\u007b"])"), 1u);  // escaped brackets are characters
  EXPECT_EQ(json_nesting_depth(R"({"k[[[":"]]]}"})"), 1u);   // in keys too
}

TEST(JsonDepth, StopsCountingAboveTheLimitAndNeverUnderflows) {
  EXPECT_EQ(json_nesting_depth(nested_arrays(1000), 64), 65u);
  EXPECT_EQ(json_nesting_depth("]]]]}}}[", 64), 1u);
}

TEST(ParseJsonBounded, AcceptsExactlyTheLimit) {
  auto at = parse_json_bounded(nested_arrays(kMaxJsonDepth));
  ASSERT_TRUE(at.ok()) << at.error().message;
  auto objects = parse_json_bounded(nested_objects(kMaxJsonDepth));
  ASSERT_TRUE(objects.ok()) << objects.error().message;
  EXPECT_EQ(kMaxJsonDepth, 64u);
}

TEST(ParseJsonBounded, RefusesOneLevelMore) {
  for (const auto& text : {nested_arrays(kMaxJsonDepth + 1), nested_objects(kMaxJsonDepth + 1)}) {
    auto over = parse_json_bounded(text);
    ASSERT_FALSE(over.ok());
    EXPECT_EQ(over.error().code, "json.too_deep");
    EXPECT_EQ(over.error().message, "JSON nested deeper than 64 levels");
  }
}

TEST(ParseJsonBounded, RefusesTheFindingsBodyWithoutBuildingIt) {
  // Finding 3: 150,000 levels inside an otherwise ordinary JSON-RPC request.
  const std::string body =
      R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":)" + nested_arrays(150000) + "}}";
  auto r = parse_json_bounded(body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "json.too_deep");
  // Unbalanced (never closed) nesting is refused the same way.
  EXPECT_EQ(parse_json_bounded(std::string(150000, '{')).error().code, "json.too_deep");
}

TEST(ParseJsonBounded, DeepStructuresInsideStringsAreJustStrings) {
  const std::string deep = nested_arrays(10000) + nested_objects(10000);
  nlohmann::json doc = {{"sql", deep}};
  auto r = parse_json_bounded(doc.dump());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["sql"], deep);
}

TEST(ParseJsonBounded, OtherLimitsAndInvalidText) {
  EXPECT_TRUE(parse_json_bounded("[[1]]", 2).ok());
  EXPECT_EQ(parse_json_bounded("[[[1]]]", 2).error().message, "JSON nested deeper than 2 levels");
  EXPECT_TRUE(parse_json_bounded("7", 0).ok());
  EXPECT_EQ(parse_json_bounded("[", 64).error().code, "json.invalid");
  EXPECT_EQ(parse_json_bounded("{} x").error().code, "json.invalid");
  EXPECT_EQ(parse_json_bounded("").error().code, "json.invalid");
  EXPECT_EQ(parse_json_bounded("not json").error().message, "not valid JSON");
}

}  // namespace
}  // namespace larder
