#include "agent/render.h"

#include <gtest/gtest.h>

namespace larder::agent {
namespace {

using nlohmann::json;

TEST(Width, Utf8Aware) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("é"), 1u);          // precomposed
  EXPECT_EQ(display_width("e\u0301"), 1u);    // e + combining acute
  EXPECT_EQ(display_width("日本"), 4u);       // wide
  EXPECT_EQ(display_width("🙂"), 2u);
  EXPECT_EQ(display_width("\xff\xfe"), 2u);   // invalid bytes count as U+FFFD each
  EXPECT_EQ(display_width(""), 0u);
}

TEST(Width, Truncation) {
  EXPECT_EQ(truncate_to_width("hello", 10), "hello");
  EXPECT_EQ(truncate_to_width("hello world", 6), "hello…");
  EXPECT_EQ(display_width(truncate_to_width("hello world", 6)), 6u);
  EXPECT_EQ(truncate_to_width("日本語テキスト", 5), "日本…");  // never splits a wide char
  EXPECT_EQ(truncate_to_width("abc", 0), "");
  EXPECT_EQ(truncate_to_width("abcdef", 1), "…");
}

json sample() {
  return {{"columns", {{{"name", "name"}, {"type", "text"}}, {{"name", "age"}, {"type", "int4"}}, {{"name", "note"}, {"type", "text"}}}},
          {"rows",
           {{{"name", "Erin oRTEga"}, {"age", 43}, {"note", nullptr}},
            {{"name", "Zoë"}, {"age", 7}, {"note", "日本"}}}},
          {"row_count", 2},
          {"truncated", false}};
}

TEST(Table, AlignedColumns) {
  std::string t = render_table(sample(), RenderOptions{});
  EXPECT_EQ(t,
            " name        | age | note\n"
            "-------------+-----+------\n"
            " Erin oRTEga |  43 | NULL\n"
            " Zoë         |   7 | 日本\n"
            "(2 rows)\n");
}

TEST(Table, WideCellsAreCut) {
  json s = sample();
  s["rows"][0]["name"] = std::string(100, 'x');
  RenderOptions o;
  o.max_column_width = 10;
  std::string t = render_table(s, o);
  EXPECT_NE(t.find(std::string(9, 'x') + "…"), std::string::npos) << t;
  EXPECT_EQ(t.find(std::string(11, 'x')), std::string::npos);
}

TEST(Table, TruncatedAndSingleRow) {
  json s = sample();
  s["rows"].erase(1);
  s["row_count"] = 1;
  s["truncated"] = true;
  EXPECT_NE(render_table(s, RenderOptions{}).find("(1 row; truncated by the server: showing 1)"), std::string::npos);
}

TEST(Table, ControlCharactersCannotDriveTheTerminal) {
  json s = {{"columns", {{{"name", "x"}, {"type", "text"}}}}, {"rows", {{{"x", "a\x1b[31mred\nnext"}}}}, {"row_count", 1}};
  std::string t = render_table(s, RenderOptions{});
  EXPECT_EQ(t.find('\x1b'), std::string::npos);
  EXPECT_NE(t.find("\\nnext"), std::string::npos);
}

TEST(Table, ArrayRowsAndNoColumns) {
  json s = {{"columns", {"a", "b"}}, {"rows", {{1, "x"}}}};
  EXPECT_NE(render_table(s, RenderOptions{}).find(" 1 | x"), std::string::npos);
  json inferred = {{"rows", {{{"k", "v"}}}}};
  EXPECT_NE(render_table(inferred, RenderOptions{}).find(" k\n"), std::string::npos);
  EXPECT_EQ(render_table(json("text"), RenderOptions{}), "");
  EXPECT_EQ(render_table(json{{"rows", json::array()}}, RenderOptions{}), "(0 rows)\n");
}

TEST(Table, ColourOnlyWhenAsked) {
  RenderOptions o;
  EXPECT_EQ(render_table(sample(), o).find('\x1b'), std::string::npos);
  o.color = true;
  EXPECT_NE(render_table(sample(), o).find("\x1b[1m"), std::string::npos);
}

AgentRun sample_run() {
  AgentRun run;
  ToolStep ok;
  ok.server = "larder-db";
  ok.tool = "pg_query";
  ok.arguments = {{"sql", "SELECT 1"}};
  ok.sql = "SELECT 1";
  ok.called = true;
  ok.structured = sample();
  ok.decisions = {{"biscuit", "allow", "policy read"}, {"rls", "deny", "hospital mismatch"}};
  ok.token_switched = true;
  ToolStep bad;
  bad.server = "compliance";
  bad.tool = "send_report";
  bad.is_error = true;
  bad.called = true;
  bad.text = "taint: refused";
  run.steps = {ok, bad};
  run.answer = "Two patients.";
  return run;
}

TEST(Run, TextOutput) {
  RenderOptions o;
  std::string plain = render_run(sample_run(), o);
  EXPECT_EQ(plain.find("SELECT 1"), std::string::npos);  // no --show-sql
  EXPECT_EQ(plain.find("lock"), std::string::npos);      // no --verbose
  EXPECT_NE(plain.find("error from compliance/send_report: taint: refused"), std::string::npos);
  EXPECT_NE(plain.find("Two patients."), std::string::npos);
  o.show_sql = true;
  o.verbose = true;
  std::string full = render_run(sample_run(), o);
  EXPECT_NE(full.find("SQL (larder-db/pg_query):\nSELECT 1"), std::string::npos) << full;
  EXPECT_NE(full.find("lock biscuit: allow — policy read"), std::string::npos) << full;
  EXPECT_NE(full.find("lock rls: deny — hospital mismatch"), std::string::npos);
  EXPECT_NE(full.find("token: switched"), std::string::npos);
}

TEST(Run, Json) {
  AgentRun run = sample_run();
  run.status = AgentStatus::MaxSteps;
  run.error = make_error("agent.max_steps", "too many");
  json j = run_to_json(run);
  EXPECT_EQ(j["status"], "max_steps");
  EXPECT_EQ(j["steps"][0]["sql"], "SELECT 1");
  EXPECT_EQ(j["steps"][0]["result"]["row_count"], 2);
  EXPECT_EQ(j["steps"][0]["decisions"][1]["lock"], "rls");
  EXPECT_EQ(j["steps"][1]["error"], "taint: refused");
  EXPECT_EQ(j["error"]["code"], "agent.max_steps");
  EXPECT_NE(render_run(run, RenderOptions{}).find("error: too many"), std::string::npos);
}

}  // namespace
}  // namespace larder::agent
