#include "mcp/uri_template.h"

#include <gtest/gtest.h>

namespace larder::mcp {
namespace {

std::string expand(const char* t, const std::map<std::string, UriValue>& vars) {
  auto parsed = UriTemplate::parse(t);
  EXPECT_TRUE(parsed.ok()) << t;
  return parsed.ok() ? parsed->expand(vars) : "";
}

// Examples from RFC 6570 §1.2 / §3.2.
const std::map<std::string, UriValue> kVars = {
    {"var", "value"},
    {"hello", "Hello World!"},
    {"path", "/foo/bar"},
    {"empty", ""},
    {"x", "1024"},
    {"y", "768"},
    {"list", UriValue::of_list({"red", "green", "blue"})},
    {"keys", UriValue::of_map({{"semi", ";"}, {"dot", "."}, {"comma", ","}})},
};

TEST(UriTemplate, Level1To4Expansion) {
  EXPECT_EQ(expand("{var}", kVars), "value");
  EXPECT_EQ(expand("{hello}", kVars), "Hello%20World%21");
  EXPECT_EQ(expand("{+hello}", kVars), "Hello%20World!");
  EXPECT_EQ(expand("{+path}/here", kVars), "/foo/bar/here");
  EXPECT_EQ(expand("X{#var}", kVars), "X#value");
  EXPECT_EQ(expand("map?{x,y}", kVars), "map?1024,768");
  EXPECT_EQ(expand("{x,hello,y}", kVars), "1024,Hello%20World%21,768");
  EXPECT_EQ(expand("X{.x,y}", kVars), "X.1024.768");
  EXPECT_EQ(expand("{/var,x}/here", kVars), "/value/1024/here");
  EXPECT_EQ(expand("{;x,y,empty}", kVars), ";x=1024;y=768;empty");
  EXPECT_EQ(expand("{?x,y,empty}", kVars), "?x=1024&y=768&empty=");
  EXPECT_EQ(expand("?fixed=yes{&x}", kVars), "?fixed=yes&x=1024");
  EXPECT_EQ(expand("{var:3}", kVars), "val");
  EXPECT_EQ(expand("{list}", kVars), "red,green,blue");
  EXPECT_EQ(expand("{list*}", kVars), "red,green,blue");
  EXPECT_EQ(expand("{keys}", kVars), "semi,%3B,dot,.,comma,%2C");
  EXPECT_EQ(expand("{keys*}", kVars), "semi=%3B,dot=.,comma=%2C");
  EXPECT_EQ(expand("{/list*,path:4}", kVars), "/red/green/blue/%2Ffoo");
  EXPECT_EQ(expand("{?keys*}", kVars), "?semi=%3B&dot=.&comma=%2C");
  EXPECT_EQ(expand("{;list*}", kVars), ";list=red;list=green;list=blue");
  EXPECT_EQ(expand("{undefined}x", kVars), "x");
}

TEST(UriTemplate, RejectsMalformedTemplates) {
  for (const char* t : {"{", "}", "a{b", "{}", "{=x}", "{a b}", "{x:0}", "{x:abc}", "{x:12345}"}) {
    EXPECT_FALSE(UriTemplate::parse(t).ok()) << t;
  }
}

TEST(UriTemplate, MatchesConcreteUrisBack) {
  auto t = UriTemplate::parse("test://template/{id}/data");
  ASSERT_TRUE(t.ok());
  std::map<std::string, std::string> vars;
  ASSERT_TRUE(t->match("test://template/123/data", &vars));
  EXPECT_EQ(vars["id"], "123");
  EXPECT_FALSE(t->match("test://template/1/2/data", &vars));
  EXPECT_FALSE(t->match("test://template/123/other", &vars));

  auto q = UriTemplate::parse("db://{schema}/{table}{?limit,offset}");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->match("db://public/patients?limit=10&offset=5", &vars));
  EXPECT_EQ(vars["schema"], "public");
  EXPECT_EQ(vars["table"], "patients");
  EXPECT_EQ(vars["limit"], "10");
  EXPECT_EQ(vars["offset"], "5");
  vars.clear();
  ASSERT_TRUE(q->match("db://public/patients", &vars));
  EXPECT_EQ(vars.count("limit"), 0u);

  auto p = UriTemplate::parse("file://{+path}");
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->match("file://a/b/c%20d.txt", &vars));
  EXPECT_EQ(vars["path"], "a/b/c d.txt");

  auto s = UriTemplate::parse("x{/segments*}");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->match("x/a/b/c", &vars));
  EXPECT_EQ(vars["segments"], "a,b,c");

  auto e = UriTemplate::parse("user/{name}");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->match("user/Erin%20oRTEga", &vars));
  EXPECT_EQ(vars["name"], "Erin oRTEga");
}

TEST(UriTemplate, ExpandThenMatchRoundTrips) {
  auto t = UriTemplate::parse("app://{a}/{b}{?c}");
  ASSERT_TRUE(t.ok());
  std::string uri = t->expand({{"a", "x y"}, {"b", "z/w"}, {"c", "1&2"}});
  std::map<std::string, std::string> vars;
  ASSERT_TRUE(t->match(uri, &vars)) << uri;
  EXPECT_EQ(vars["a"], "x y");
  EXPECT_EQ(vars["b"], "z/w");
  EXPECT_EQ(vars["c"], "1&2");
}

}  // namespace
}  // namespace larder::mcp
