// Expression evaluation: every operator, the lenient/strict equality split, laziness,
// closures, try_or, extern calls and every error kind.
#include <gtest/gtest.h>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/evaluate.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"

namespace biscuit::datalog {
namespace {

using Kind = ExecutionError::Kind;

struct Eval {
  SymbolTable symbols;
  ExternFunctions externs;

  // Evaluates `text`; returns the printed result or "error:<Kind>".
  std::string operator()(const std::string& text) {
    auto parsed = parse_expression(text);
    if (!parsed) return "parse:" + parsed.error().to_string();
    auto e = intern(*parsed, symbols);
    if (!e) return "intern:" + e.error().message;
    TemporarySymbols temp(symbols);
    auto r = evaluate(*e, {}, temp, &externs);
    if (!r) return std::string("error:") + r.error().kind_name();
    // Print against the overlay: temporary strings resolve through a copy of the table.
    if (r->is(TermKind::String)) return "\"" + std::string(*temp.lookup(r->as_string())) + "\"";
    return print_term(*r, symbols);
  }
};

struct Case {
  const char* expr;
  const char* expected;
};

void run_cases(const std::vector<Case>& cases) {
  Eval eval;
  for (const auto& c : cases) EXPECT_EQ(eval(c.expr), c.expected) << c.expr;
}

TEST(Evaluate, IntegerArithmeticAndComparison) {
  run_cases({
      {"1 + 2 * 3 - 4 / 2", "5"},
      {"7 / 2", "3"},
      {"-7 / 2", "-3"},
      {"1 < 2", "true"},
      {"2 > 1", "true"},
      {"1 <= 1", "true"},
      {"2 >= 3", "false"},
      {"9223372036854775807 + 1", "error:Overflow"},
      {"-9223372036854775808 - 1", "error:Overflow"},
      {"10000000000 * 10000000000", "error:Overflow"},
      {"1 / 0", "error:DivideByZero"},
      {"-9223372036854775808 / -1", "error:DivideByZero"},
      {"9 & 10", "8"},
      {"9 | 1", "9"},
      {"9 ^ 10", "3"},
      {"1 | 2 ^ 3", "0"},
      {"1 + true", "error:InvalidType"},
      {"1 < \"a\"", "error:InvalidType"},
  });
}

TEST(Evaluate, StrictAndLenientEquality) {
  run_cases({
      {"1 === 1", "true"},
      {"1 !== 2", "true"},
      {"1 === true", "error:InvalidType"},
      {"1 !== \"a\"", "error:InvalidType"},
      {"null === null", "true"},
      {"null === 1", "error:InvalidType"},
      {"1 == true", "false"},
      {"1 != true", "true"},
      {"null == null", "true"},
      {"null != 1", "true"},
      {"\"a\" == \"a\"", "true"},
      {"hex:aa == hex:aa", "true"},
      {"{1, 2} === {2, 1}", "true"},
      {"[1, 2] == [1, 2]", "true"},
      {"[1, 2] != [2, 1]", "true"},
      {"{\"a\": 1} == {\"a\": 1}", "true"},
      {"2020-01-01T00:00:00Z == 2020-01-01T00:00:00Z", "true"},
      {"2020-01-01T00:00:00Z < 2021-01-01T00:00:00Z", "true"},
      {"2020-01-01T01:00:00+01:00 === 2020-01-01T00:00:00Z", "true"},
  });
}

TEST(Evaluate, Strings) {
  run_cases({
      {"\"hello world\".starts_with(\"hello\")", "true"},
      {"\"hello world\".ends_with(\"world\")", "true"},
      {"\"hello\".ends_with(\"hello world\")", "false"},
      {"\"aaabde\".contains(\"abd\")", "true"},
      {"\"aaabde\".matches(\"a*c?.e\")", "true"},
      {"\"file1\".matches(\"file[0-9]+.txt\")", "false"},
      {"\"xfile123.txt\".matches(\"file[0-9]+.txt\")", "true"},
      {"\"abc\".matches(\"(\")", "false"},
      {"\"é\".length()", "2"},
      {"\"\".length()", "0"},
      {"\"aaa\" + \"b\" + \"de\" === \"aaabde\"", "true"},
      {"\"aaa\" + \"b\"", "\"aaab\""},
      {"\"a\".contains(1)", "error:InvalidType"},
      {"\"a\".starts_with(1)", "error:InvalidType"},
  });
}

TEST(Evaluate, SetsArraysMaps) {
  run_cases({
      {"{1, 2}.contains(2)", "true"},
      {"{1, 2}.contains({2})", "true"},
      {"{1, 2}.contains({2, 3})", "false"},
      {"{1, 2}.contains(null)", "error:InvalidType"},
      {"{1, 2}.intersection({2, 3})", "{2}"},
      {"{1, 2}.union({2, 3})", "{1, 2, 3}"},
      {"{1, 2, 3}.length()", "3"},
      {"{,}.length()", "0"},
      {"{1}.union(1)", "error:InvalidType"},
      {"[1, 2, 1].length()", "3"},
      {"[\"a\", \"b\", \"c\"].contains(\"c\")", "true"},
      {"[1, 2, 3].starts_with([1, 2])", "true"},
      {"[4, 5, 6].ends_with([6])", "true"},
      {"[4, 5, 6].ends_with([4, 5, 6, 7])", "false"},
      {"[1, 2, \"a\"].get(2)", "\"a\""},
      {"[1, 2].get(3)", "null"},
      {"[1, 2].get(-1)", "null"},
      {"{\"a\": 1, \"b\": 2}.length()", "2"},
      {"{\"a\": 1, \"b\": 2}.contains(\"b\")", "true"},
      {"{1: \"A\", \"a\": 1}.contains(1)", "true"},
      {"{1: \"A\", \"a\": 1}.contains(true)", "false"},
      {"{1: \"A\", \"a\": 1}.get(\"a\")", "1"},
      {"{1: \"A\", \"a\": 1}.get(1)", "\"A\""},
      {"{1: \"A\", \"a\": 1}.get(\"c\")", "null"},
      {"{1: \"A\"}.get(true)", "error:InvalidType"},
      {"{\"user\": {\"id\": 1, \"roles\": [\"admin\"]}}.get(\"user\").get(\"roles\").contains(\"admin\")",
       "true"},
      {"hex:aabb.length()", "2"},
      {"true.length()", "error:InvalidType"},
  });
}

TEST(Evaluate, BooleansLazinessClosures) {
  run_cases({
      {"!false", "true"},
      {"!1", "error:InvalidType"},
      {"true && false", "false"},
      {"false || true", "true"},
      {"false && \"x\".intersection(\"x\")", "false"},
      {"true || \"x\".intersection(\"x\")", "true"},
      {"true && \"x\".intersection(\"x\")", "error:InvalidType"},
      {"1 && true", "error:InvalidType"},
      {"{1, 2, 3}.all($p -> $p > 0)", "true"},
      {"{1, 2, 3}.all($p -> $p == 2)", "false"},
      {"{1, 2, 3}.any($p -> $p > 2)", "true"},
      {"{,}.any($p -> $p > 2)", "false"},
      {"{,}.all($p -> $p > 2)", "true"},
      {"{1, 2, 3}.any($p -> $p > 1 && {3, 4, 5}.any($q -> $p == $q))", "true"},
      {"[1, 2, 3].all($p -> $p > 0)", "true"},
      {"{\"a\": 1, \"b\": 2}.all($kv -> $kv.get(0) != \"c\" && $kv.get(1) < 3)", "true"},
      {"{1: \"A\", \"a\": 1}.any($kv -> $kv.get(0) == 1 && $kv.get(1) == \"A\")", "true"},
      {"{1, 2}.all($p -> $p)", "error:InvalidType"},
      {"1.any($p -> true)", "error:InvalidType"},
      {"{\"true\"}.any($p -> {\"true\"}.all($p -> $p))", "error:ShadowedVariable"},
      {"(true === 12).try_or(true)", "true"},
      {"((true === 12).try_or(true === 12)).try_or(true)", "true"},
      {"(true == 12).try_or(true)", "false"},
      {"true.try_or(true === 12)", "error:InvalidType"},
      {"(1 / 0).try_or(7)", "7"},
      {"$unknown > 1", "error:UnknownVariable"},
  });
}

TEST(Evaluate, TypeOf) {
  run_cases({
      {"1.type()", "\"integer\""},
      {"\"a\".type()", "\"string\""},
      {"(2023-12-28T00:00:00Z).type()", "\"date\""},
      {"hex:aa.type()", "\"bytes\""},
      {"true.type()", "\"bool\""},
      {"{false, true}.type()", "\"set\""},
      {"null.type()", "\"null\""},
      {"[1].type()", "\"array\""},
      {"{\"a\": true}.type()", "\"map\""},
  });
}

TEST(Evaluate, ExternFunctions) {
  Eval eval;
  eval.externs["test"] = [](const ast::Term& l,
                            const std::optional<ast::Term>& r) -> Expected<ast::Term, std::string> {
    if (!r) return l;
    if (l.is(ast::TermKind::String) && r->is(ast::TermKind::String)) {
      return ast::Term::string(l.as_string() == r->as_string() ? "equal strings" : "different strings");
    }
    return std::string("bad arguments");
  };
  EXPECT_EQ(eval("true.extern::test()"), "true");
  EXPECT_EQ(eval("\"a\".extern::test(\"a\")"), "\"equal strings\"");
  EXPECT_EQ(eval("\"a\".extern::test(\"b\")"), "\"different strings\"");
  EXPECT_EQ(eval("1.extern::test(2)"), "error:ExternEvalError");
  EXPECT_EQ(eval("1.extern::nope()"), "error:UndefinedExtern");

  TemporarySymbols temp(eval.symbols);
  auto e = intern(*parse_expression("1.extern::missing(2)"), eval.symbols);
  auto r = evaluate(*e, {}, temp, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, Kind::UndefinedExtern);
  EXPECT_EQ(r.error().name, "missing");
}

TEST(Evaluate, MalformedOpListsFailCleanly) {
  SymbolTable symbols;
  TemporarySymbols temp(symbols);
  auto run = [&](std::vector<Op> ops) { return evaluate(Expression{std::move(ops)}, {}, temp, nullptr); };
  EXPECT_EQ(run({}).error().kind, Kind::InvalidStack);
  EXPECT_EQ(run({Op{Unary{UnaryOp::Negate, 0}}}).error().kind, Kind::InvalidStack);
  EXPECT_EQ(run({Op{Term::integer(1)}, Op{Binary{BinaryOp::Add, 0}}}).error().kind, Kind::InvalidStack);
  EXPECT_EQ(run({Op{Term::integer(1)}, Op{Term::integer(1)}}).error().kind, Kind::InvalidStack);
  EXPECT_EQ(run({Op{Closure{{}, {Op{Term::boolean(true)}}}}}).error().kind, Kind::InvalidStack);
  // Eager boolean operators (only in old tokens).
  auto r = run({Op{Term::boolean(true)}, Op{Term::boolean(false)}, Op{Binary{BinaryOp::Or, 0}}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->as_bool());
  EXPECT_EQ(print_expression(
                Expression{{Op{Term::boolean(true)}, Op{Term::boolean(false)}, Op{Binary{BinaryOp::And, 0}}}},
                symbols),
            "true &&! false");
  // A string id that is not in the table.
  auto u = run({Op{Term::string(99999)}, Op{Unary{UnaryOp::Length, 0}}});
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().kind, Kind::UnknownSymbol);
  EXPECT_EQ(u.error().id, 99999u);
}

TEST(Evaluate, ConcatenatedStringsAreInternedInTheOverlayOnly) {
  SymbolTable symbols;
  auto e = intern(*parse_expression("\"ab\" + \"cd\" === \"abcd\""), symbols);
  const std::size_t before = symbols.size();
  TemporarySymbols temp(symbols);
  auto r = evaluate(*e, {}, temp, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->as_bool());
  EXPECT_EQ(symbols.size(), before);
}

}  // namespace
}  // namespace biscuit::datalog
