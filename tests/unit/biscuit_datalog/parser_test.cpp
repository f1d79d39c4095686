// Parser: grammar details, precedence (checked through the op list and printing), typed
// parameters, error positions, and hostile input that must fail cleanly.
#include <gtest/gtest.h>

#include <chrono>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"

namespace biscuit::datalog {
namespace {

std::string roundtrip_block(const std::string& text) {
  auto src = parse_block_source(text);
  if (!src) return "error: " + src.error().to_string();
  return print_block_source(*src);
}

TEST(Parser, ElementsAndComments) {
  auto src = parse_authorizer_source(R"(
    // a comment
    user("alice");   /* block
    comment */ right($u, "read") <- user($u), $u.length() > 0 trusting authority;
    check if user("alice") or user("bob");
    check all role($r), $r == "admin";
    reject if banned(true);
    allow if right("alice", "read");
    DENY IF true
  )");
  ASSERT_TRUE(src.ok()) << src.error().to_string();
  EXPECT_EQ(src->facts.size(), 1u);
  ASSERT_EQ(src->rules.size(), 1u);
  EXPECT_EQ(src->rules[0].scopes.size(), 1u);
  ASSERT_EQ(src->checks.size(), 3u);
  EXPECT_EQ(src->checks[0].queries.size(), 2u);
  EXPECT_EQ(src->checks[1].kind, CheckKind::All);
  EXPECT_EQ(src->checks[2].kind, CheckKind::Reject);
  ASSERT_EQ(src->policies.size(), 2u);
  EXPECT_EQ(src->policies[1].kind, PolicyKind::Deny);
  EXPECT_EQ(print_authorizer_code(*src),
            "user(\"alice\");\n\n"
            "right($u, \"read\") <- user($u), $u.length() > 0 trusting authority;\n\n"
            "check if user(\"alice\") or user(\"bob\");\n"
            "check all role($r), $r == \"admin\";\n"
            "reject if banned(true);\n\n"
            "allow if right(\"alice\", \"read\");\n"
            "deny if true;\n");
}

TEST(Parser, TrustingIsAWholeWord) {
  // Found by fuzz_datalog_parser: printing puts facts first, so a fact named trusting*
  // must not be read back as a block-level scope.
  const std::string printed = roundtrip_block("check if true; trustingread(0);");
  EXPECT_EQ(printed, "trustingread(0);\ncheck if true;\n");
  EXPECT_EQ(roundtrip_block(printed), printed);
  EXPECT_EQ(roundtrip_block("check if trusting_x(1) trusting authority;"),
            "check if trusting_x(1) trusting authority;\n");
  // Found by the 10-minute fuzz_datalog_parser run: a fact named exactly `trusting`, printed
  // first, must read back as that fact (a scope list never starts with '(').
  const std::string exact = roundtrip_block("check if 1 !== 0;\ntrusting(1);");
  EXPECT_EQ(exact, "trusting(1);\ncheck if 1 !== 0;\n");
  EXPECT_EQ(roundtrip_block(exact), exact);
  EXPECT_EQ(roundtrip_block("trusting (1);"), "trusting(1);\n");
  EXPECT_EQ(roundtrip_block("trusting authority;\ntrusting(1);"), "trusting authority;\ntrusting(1);\n");
}

TEST(Parser, BlockScopesAndPolicyRefusal) {
  EXPECT_EQ(roundtrip_block("trusting authority, previous; check if a(1);"),
            "trusting authority, previous;\ncheck if a(1);\n");
  auto bad = parse_block_source("allow if true;");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("policies"), std::string::npos);
}

TEST(Parser, PrecedenceMatchesTheReference) {
  auto ops_of = [](const std::string& text) {
    auto e = parse_expression(text);
    EXPECT_TRUE(e.ok()) << text << ": " << (e ? "" : e.error().to_string());
    return e ? e->ops.size() : 0u;
  };
  // 1 + 2 * 3 - 4 / 2 => 1 2 3 * + 4 2 / -
  auto e = parse_expression("1 + 2 * 3 - 4 / 2");
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->ops.size(), 9u);
  EXPECT_EQ(std::get<ast::Binary>(e->ops[4].v).op, BinaryOp::Add);
  EXPECT_EQ(std::get<ast::Binary>(e->ops[8].v).op, BinaryOp::Sub);
  // `!` negates an additive expression: !a + b == !(a + b)
  auto n = parse_expression("!$a + $b");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::get<ast::Unary>(n->ops.back().v).op, UnaryOp::Negate);
  // && binds tighter than ||, right side is a closure
  auto l = parse_expression("true || false && true");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(std::get<ast::Binary>(l->ops.back().v).op, BinaryOp::LazyOr);
  EXPECT_TRUE(std::holds_alternative<ast::Closure>(l->ops[1].v));
  // ^ is looser than | which is looser than &
  auto b = parse_expression("1 | 2 ^ 3 & 4");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(std::get<ast::Binary>(b->ops.back().v).op, BinaryOp::BitwiseXor);
  // comparisons are not associative
  EXPECT_FALSE(parse_expression("1 < 2 < 3").ok());
  // try_or wraps its receiver in a closure
  auto t = parse_expression("$x.length().try_or(0)");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->ops.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<ast::Closure>(t->ops[0].v));
  EXPECT_EQ(std::get<ast::Closure>(t->ops[0].v).ops.size(), 2u);
  EXPECT_GT(ops_of("{1,2}.any($x -> $x > 1)"), 0u);
}

TEST(Parser, PrintsBackExactly) {
  const char* exprs[] = {
      "1 + 2 * 3 - 4 / 2 === 5",
      "!(false && \"x\".intersection(\"x\"))",
      "(true || false) && true",
      "{1, 2, 3}.any($p -> $p > 1 && {3, 4, 5}.any($q -> $p == $q))",
      "((true === 12).try_or(true === 12)).try_or(true)",
      "(2023-12-28T00:00:00Z).type() == \"date\"",
      "{\"a\": 1, \"b\": 2}.all($kv -> $kv.get(0) != \"c\" && $kv.get(1) < 3)",
      "\"a\".extern::test(\"a\") == \"equal strings\"",
      "true.extern::test()",
      "[1, 2, \"a\"].get(2) == \"a\"",
      "hex:12abcd !== hex:12ab",
      "-9223372036854775808 - 1 !== 0",
      "{,}.length() === 0",
      "{1: \"A\", \"a\": 1, \"b\": 2}.get(\"a\") == 1",
  };
  for (const char* text : exprs) {
    auto e = parse_expression(text);
    ASSERT_TRUE(e.ok()) << text << ": " << e.error().to_string();
    EXPECT_EQ(print(*e), text);
  }
}

TEST(Parser, TermLiterals) {
  auto t = [](const std::string& s) {
    auto r = parse_term(s);
    return r ? print(*r) : "error: " + r.error().message;
  };
  EXPECT_EQ(t("\"a\\\"b\\\\c\\nd\""), "\"a\\\"b\\\\c\nd\"");
  EXPECT_EQ(t("2023-12-28T10:20:30Z"), "2023-12-28T10:20:30Z");
  EXPECT_EQ(t("2023-12-28T10:20:30.123+02:00"), "2023-12-28T08:20:30Z");
  EXPECT_EQ(t("hex:DEADbeef"), "hex:deadbeef");
  EXPECT_EQ(t("{3, 1, 2, 1}"), "{1, 2, 3}");
  EXPECT_EQ(t("{\"b\", \"a\"}"), "{\"a\", \"b\"}");
  EXPECT_EQ(t("{\"b\": 1, 2: true, \"a\": [1, {3}]}"), "{2: true, \"a\": [1, {3}], \"b\": 1}");
  EXPECT_EQ(t("{}"), "{}");
  EXPECT_EQ(t("{,}"), "{,}");
  EXPECT_EQ(t("[]"), "[]");
  EXPECT_EQ(t("null"), "null");
  EXPECT_EQ(t("{x}"), "{x}");
  EXPECT_EQ(t("-42"), "-42");
  EXPECT_EQ(t("$var_1:x"), "$var_1:x");
  EXPECT_NE(t("{1, \"a\"}").find("same type"), std::string::npos);
  EXPECT_NE(t("{{1}}").find("sets"), std::string::npos);
  EXPECT_NE(t("{$x}").find("variables"), std::string::npos);
  EXPECT_NE(t("[$x]").find("variables"), std::string::npos);
  EXPECT_NE(t("hex:abc").find("odd"), std::string::npos);
  EXPECT_NE(t("9223372036854775808").find("range"), std::string::npos);
  EXPECT_NE(t("\"bad \\t escape\"").find("escape"), std::string::npos);
  EXPECT_EQ(t("1969-12-31T23:59:59Z").rfind("error", 0), 0u);  // before the epoch
  EXPECT_EQ(t("2023-02-29T00:00:00Z").rfind("error", 0), 0u);  // not a leap year
}

TEST(Parser, FactsRulesValidation) {
  EXPECT_FALSE(parse_fact("f($x)").ok());
  EXPECT_FALSE(parse_fact("f()").ok());
  EXPECT_TRUE(parse_rule("h() <- f($x)").ok());
  auto unbound = parse_rule("h($y) <- f($x)");
  ASSERT_FALSE(unbound.ok());
  EXPECT_NE(unbound.error().message.find("$y"), std::string::npos);
  ParseOptions lenient;
  lenient.validate_rule_variables = false;
  EXPECT_TRUE(parse_rule("h($y) <- f($x)", lenient).ok());
  EXPECT_TRUE(parse_fact("  ns::fact_123(\"hello é\t😁\") ;").ok());
}

TEST(Parser, ErrorPositions) {
  auto r = parse_block_source("f(1);\ncheck if g(1), ;\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Error::Code::Parse);
  EXPECT_EQ(r.error().line, 2u);
  EXPECT_GT(r.error().column, 1u);
  auto s = parse_block_source("f(\"unterminated);");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("unterminated"), std::string::npos);
  EXPECT_EQ(s.error().column, 3u);
  auto c = parse_block_source("f(1); /* never closed");
  ASSERT_FALSE(c.ok());
  auto m = parse_expression("1.frobnicate(2)");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("frobnicate"), std::string::npos);
}

TEST(Parser, HostileInputFailsCleanlyAndQuickly) {
  const auto start = std::chrono::steady_clock::now();
  // Deep nesting of every recursive construct.
  for (const char* open : {"(", "[", "{\"k\": ", "!", "{1}.any($x -> "}) {
    std::string deep = "check if ";
    for (int i = 0; i < 10000; ++i) deep += open;
    auto r = parse_block_source(deep);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("nesting"), std::string::npos) << open;
  }
  // Within the limit: fine.
  std::string ok = "check if ";
  for (int i = 0; i < 30; ++i) ok += "(";
  ok += "true";
  for (int i = 0; i < 30; ++i) ok += ")";
  EXPECT_TRUE(parse_block_source(ok).ok());
  // Invalid UTF-8 anywhere, incl. overlong and surrogate encodings.
  for (const std::string& bad : {std::string("f(\"\xff\");"), std::string("f(\"\xc0\xaf\");"),
                                 std::string("f(\"\xed\xa0\x80\");"), std::string("f(\"\xe2\x82\");")}) {
    auto r = parse_block_source(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("UTF-8"), std::string::npos);
  }
  // Huge numbers, long operator chains, long tokens without delimiters.
  EXPECT_FALSE(parse_block_source("f(99999999999999999999999999999999);").ok());
  std::string chain = "check if 1";
  for (int i = 0; i < 20000; ++i) chain += "+1";
  // Beyond the default expression size limit (limits_test.cpp); the parser itself copes.
  EXPECT_EQ(parse_block_source(chain).error().code, Error::Code::LimitExceeded);
  ParseOptions unlimited;
  unlimited.limits = SizeLimits::unlimited();
  auto big = parse_block_source(chain, unlimited);
  ASSERT_TRUE(big.ok()) << big.error().to_string();
  EXPECT_EQ(print(big->checks[0]).size(), chain.size() + 20000 * 2);
  std::string dates(200000, '2');
  EXPECT_FALSE(parse_block_source("f(" + dates + ");").ok());
  std::string dashes = "check if ";
  for (int i = 0; i < 50000; ++i) dashes += "2020-";
  EXPECT_FALSE(parse_block_source(dashes).ok());
  // Size limit.
  ParseOptions small;
  small.max_input_bytes = 10;
  EXPECT_FALSE(parse_block_source("f(1); f(2); f(3);", small).ok());
  // Odd bytes.
  EXPECT_FALSE(parse_block_source(std::string("f(1)\0;", 6)).ok());
  EXPECT_FALSE(parse_block_source("$").ok());
  EXPECT_FALSE(parse_block_source("check if").ok());
  EXPECT_FALSE(parse_block_source("f(1) <-").ok());
  EXPECT_FALSE(parse_block_source("check if 1.").ok());
  EXPECT_FALSE(parse_block_source("check if {").ok());
  EXPECT_FALSE(parse_block_source("check if \"").ok());
  EXPECT_FALSE(parse_block_source("check if a($x) trusting").ok());
  EXPECT_FALSE(parse_block_source("check if a($x) trusting ed25519/00").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

TEST(Parser, TypedParameters) {
  auto src = parse_block_source(
      "user({name}); check if time($t), $t < {expiry}; check if role($r), {roles}.contains($r);"
      "check if m({{k}: 1}) trusting {key};");
  ASSERT_TRUE(src.ok()) << src.error().to_string();
  EXPECT_EQ(ast::unbound_parameters(*src), (std::vector<std::string>{"expiry", "k", "key", "name", "roles"}));

  ast::Source partial = *src;
  ast::Params p;
  p.terms["name"] = ast::Term::string("alice\"), admin(\"x");  // cannot inject anything
  auto st = ast::apply_parameters(partial, p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Error::Code::UnboundParameter);
  EXPECT_NE(st.error().message.find("{expiry}"), std::string::npos);

  p.terms["expiry"] = ast::Term::date(1700000000);
  p.terms["roles"] = ast::Term::set({ast::Term::string("b"), ast::Term::string("a")});
  p.terms["k"] = ast::Term::string("key");
  auto key = parse_public_key("ed25519/acdd6d5b53bfee478bf689f8e012fe7988bf755e3d7c5152947abc149bc20189");
  ASSERT_TRUE(key.ok());
  p.keys["key"] = *key;
  p.terms["unused"] = ast::Term::integer(1);
  ASSERT_TRUE(ast::apply_parameters(*src, p).ok());
  EXPECT_TRUE(ast::unbound_parameters(*src).empty());
  auto block = build_block(*src, SymbolTable());
  ASSERT_TRUE(block.ok()) << block.error().to_string();
  SymbolTable t;
  t.extend(block->symbols);
  t.extend_keys(block->public_keys);
  EXPECT_EQ(print_block_code(*block, t),
            "user(\"alice\\\"), admin(\\\"x\");\n"
            "check if time($t), $t < 2023-11-14T22:13:20Z;\n"
            "check if role($r), {\"a\", \"b\"}.contains($r);\n"
            "check if m({\"key\": 1}) trusting "
            "ed25519/acdd6d5b53bfee478bf689f8e012fe7988bf755e3d7c5152947abc149bc20189;\n");
  EXPECT_EQ(block->facts.size(), 1u);  // still exactly one fact
  EXPECT_EQ(block->version, 4u);

  // Variables are not values.
  ast::Source again = *parse_block_source("user({name});");
  ast::Params bad;
  bad.terms["name"] = ast::Term::variable("x");
  EXPECT_EQ(ast::apply_parameters(again, bad).error().code, Error::Code::InvalidParameter);
  // A map key parameter must be an integer or a string.
  ast::Source mk = *parse_block_source("f({{k}: 1});");
  ast::Params badkey;
  badkey.terms["k"] = ast::Term::boolean(true);
  EXPECT_EQ(ast::apply_parameters(mk, badkey).error().code, Error::Code::InvalidParameter);
  // Unbound parameters cannot be interned.
  ast::Source unbound = *parse_block_source("user({name});");
  EXPECT_EQ(build_block(unbound, SymbolTable()).error().code, Error::Code::UnboundParameter);
}

TEST(Parser, InterningOrderFollowsTheReference) {
  // Sets intern in text order (sorted by string), maps key before value, closures params
  // before body, block scopes last.
  auto src = parse_block_source(
      "trusting ed25519/acdd6d5b53bfee478bf689f8e012fe7988bf755e3d7c5152947abc149bc20189;"
      "f({\"zz\", \"read\", \"aa\"}); g({\"k\": \"v\"});"
      "h($x) <- f($x), $x.any($p -> $p == \"w\");");
  ASSERT_TRUE(src.ok()) << src.error().to_string();
  auto block = build_block(*src, SymbolTable());
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(block->symbols, (std::vector<std::string>{"f", "aa", "zz", "g", "k", "v", "h", "x", "p", "w"}));
  EXPECT_EQ(block->public_keys.size(), 1u);
  EXPECT_EQ(block->version, 6u);
  SymbolTable t;
  t.extend(block->symbols);
  t.extend_keys(block->public_keys);
  // Printing orders set strings by symbol id: the default symbol "read" comes first.
  EXPECT_EQ(print_fact(block->facts[0], t), "f({\"read\", \"aa\", \"zz\"})");
}

TEST(Parser, Versions) {
  auto version = [](const std::string& code) {
    auto src = parse_block_source(code);
    EXPECT_TRUE(src.ok()) << code;
    return build_block(*src, SymbolTable())->version;
  };
  EXPECT_EQ(version("f(1); check if f($x), $x > 0;"), 3u);
  EXPECT_EQ(version("check if f([1, 2]), {\"a\": 1}.get(\"a\") === 1;"), 3u);
  EXPECT_EQ(version("check if f(1) trusting authority;"), 4u);
  EXPECT_EQ(version("check all f($x), $x > 0;"), 4u);
  EXPECT_EQ(version("check if 1 | 2 === 3;"), 4u);
  EXPECT_EQ(version("check if 1 !== 2;"), 4u);
  EXPECT_EQ(version("check if 1 == 1;"), 6u);
  EXPECT_EQ(version("reject if f(1);"), 6u);
  EXPECT_EQ(version("f(null);"), 6u);
  EXPECT_EQ(version("check if true && true;"), 6u);
  EXPECT_EQ(version("check if 1.type() === \"integer\";"), 6u);

  auto block = build_block(*parse_block_source("check if 1 == 1;"), SymbolTable());
  EXPECT_FALSE(check_version(*block, 5).ok());
  EXPECT_TRUE(check_version(*block, 6).ok());
  EXPECT_FALSE(check_version(*block, 7).ok());
  EXPECT_FALSE(check_version(*block, 2).ok());
}

// Calendar arithmetic at the edges: leap days (divisible by 4, not by 100 unless by 400), year
// and month boundaries, offsets that cross midnight, and the epoch as the floor. Parsing and
// printing agree on every date.
TEST(Parser, DatesAtCalendarEdges) {
  struct Case {
    const char* text;
    uint64_t seconds;
  };
  const Case cases[] = {
      {"1970-01-01T00:00:00Z", 0},           {"1970-01-01T00:00:01Z", 1},
      {"1970-12-31T23:59:59Z", 31535999},    {"1972-02-29T00:00:00Z", 68169600},
      {"1999-12-31T23:59:59Z", 946684799},   {"2000-02-29T12:00:00Z", 951825600},
      {"2000-03-01T00:00:00Z", 951868800},   {"2023-12-28T00:00:00Z", 1703721600},
      {"2024-02-29T00:00:00Z", 1709164800},  {"2024-03-01T00:00:00Z", 1709251200},
      {"2024-12-31T23:59:59Z", 1735689599},  {"2025-01-01T00:00:00Z", 1735689600},
      {"2100-02-28T23:59:59Z", 4107542399},  {"2100-03-01T00:00:00Z", 4107542400},
      {"2400-02-29T00:00:00Z", 13574563200}, {"9999-12-31T23:59:59Z", 253402300799},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_rfc3339(c.text), std::optional<uint64_t>(c.seconds)) << c.text;
    EXPECT_EQ(format_date(c.seconds), c.text) << c.seconds;
  }
  // Not dates: a leap day of a common year (1900 and 2100 are not leap years), day 0, day
  // 31 of a 30-day month, month 13.
  for (const char* bad :
       {"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2024-01-00T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-02-30T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
  // Before 1970 is refused, unless an offset brings the instant to the epoch or later.
  EXPECT_FALSE(parse_rfc3339("1969-12-31T23:59:59Z").has_value());
  EXPECT_FALSE(parse_rfc3339("1960-02-29T00:00:00Z").has_value());
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:00:00-01:00"), std::optional<uint64_t>(0));
  EXPECT_EQ(parse_rfc3339("1969-12-31T19:30:00-04:30"), std::optional<uint64_t>(0));
  // Offsets move the instant across day, month and year boundaries.
  EXPECT_EQ(parse_rfc3339("2025-01-01T01:00:00+02:00"), std::optional<uint64_t>(1735689600 - 3600));
  EXPECT_EQ(parse_rfc3339("2024-02-28T23:00:00-01:00"), std::optional<uint64_t>(1709164800));
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00.999Z"), std::optional<uint64_t>(1709164800));
  // Past what a date can print.
  EXPECT_EQ(format_date(253402300800ULL), "<invalid date>");
}

}  // namespace
}  // namespace biscuit::datalog
