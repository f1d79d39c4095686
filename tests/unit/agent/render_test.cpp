#include "agent/render.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace larder::agent {
namespace {

using nlohmann::json;

TEST(Width, Utf8Aware) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("é"), 1u);        // precomposed
  EXPECT_EQ(display_width("e\u0301"), 1u);  // e + combining acute
  EXPECT_EQ(display_width("日本"), 4u);     // wide
  EXPECT_EQ(display_width("🙂"), 2u);
  EXPECT_EQ(display_width("\xff\xfe"), 2u);  // invalid bytes count as U+FFFD each
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
  return {{"columns",
           {{{"name", "name"}, {"type", "text"}},
            {{"name", "age"}, {"type", "int4"}},
            {{"name", "note"}, {"type", "text"}}}},
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
  EXPECT_NE(render_table(s, RenderOptions{}).find("(1 row; truncated by the server: showing 1)"),
            std::string::npos);
}

TEST(Table, ControlCharactersCannotDriveTheTerminal) {
  json s = {{"columns", {{{"name", "x"}, {"type", "text"}}}},
            {"rows", {{{"x", "a\x1b[31mred\nnext"}}}},
            {"row_count", 1}};
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

// ---- fitting the terminal (larder ask at 40, 80 and 200 columns) ----

// Every line of `text` is at most `width` columns and valid UTF-8 (no sequence was cut).
void expect_fits(const std::string& text, std::size_t width) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    EXPECT_LE(display_width(line), width) << "[" << line << "] in\n" << text;
    for (size_t i = 0; i < line.size();) {
      unsigned char c = static_cast<unsigned char>(line[i]);
      size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
      ASSERT_NE(n, 0u) << "a cut UTF-8 sequence in [" << line << "]";
      ASSERT_LE(i + n, line.size()) << "a cut UTF-8 sequence at the end of [" << line << "]";
      for (size_t k = 1; k < n; ++k) ASSERT_EQ(static_cast<unsigned char>(line[i + k]) & 0xC0, 0x80) << line;
      i += n;
    }
    start = end + 1;
  }
}

json wide_table() {
  json cols = json::array();
  for (const char* n : {"Patient Name", "Age", "Medical Condition", "Doctor", "Hospital", "Notes"})
    cols.push_back({{"name", n}, {"type", std::string(n) == "Age" ? "int4" : "text"}});
  json rows = json::array();
  rows.push_back(
      {{"Patient Name", "Erin oRTEga"},
       {"Age", 43},
       {"Medical Condition", "Diabetes"},
       {"Doctor", "Dr. Ünal Çelik-Øvergård"},
       {"Hospital", "東京総合病院 (Tokyo General Hospital)"},
       {"Notes", "患者は安定しています 🙂 follow-up in two weeks; señora prefers mornings"}});
  rows.push_back({{"Patient Name", "Zoë Åkesson"},
                  {"Age", 7},
                  {"Medical Condition", "Asthma"},
                  {"Doctor", "Dr. Smith"},
                  {"Hospital", "St. Mary's"},
                  {"Notes", nullptr}});
  return {{"columns", cols}, {"rows", rows}, {"row_count", 2}, {"truncated", true}};
}

TEST(Fit, TablesFit40_80_200Columns) {
  for (std::size_t width : {40u, 80u, 200u}) {
    SCOPED_TRACE("width " + std::to_string(width));
    RenderOptions o;
    o.width = width;
    std::string t = render_table(wide_table(), o);
    expect_fits(t, width);
    EXPECT_NE(t.find("(2 rows"), std::string::npos) << t;
  }
}

TEST(Fit, EightyColumnsKeepsTheTableShapeAndCutsWithAnEllipsis) {
  RenderOptions o;
  o.width = 80;
  std::string t = render_table(wide_table(), o);
  EXPECT_NE(t.find(" Patient Name"), std::string::npos) << t;  // still a table, one line per row
  EXPECT_NE(t.find("…"), std::string::npos) << t;              // wide cells were cut
  EXPECT_NE(t.find("Erin oRTEga"), std::string::npos) << t;    // narrow ones were not
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 5) << t;     // header, rule, 2 rows, footer
}

TEST(Fit, TwoHundredColumnsShowsTheTableWhole) {
  RenderOptions o;
  o.width = 200;
  std::string t = render_table(wide_table(), o);
  EXPECT_NE(t.find("東京総合病院 (Tokyo General Hospital)"), std::string::npos) << t;
  EXPECT_NE(t.find("Dr. Ünal Çelik-Øvergård"), std::string::npos) << t;
}

TEST(Fit, FortyColumnsPrintsRecordByRecord) {
  RenderOptions o;
  o.width = 40;
  std::string t = render_table(wide_table(), o);
  EXPECT_NE(t.find("-[ record 1 ]"), std::string::npos) << t;
  EXPECT_NE(t.find("-[ record 2 ]"), std::string::npos) << t;
  EXPECT_NE(t.find(" Age"), std::string::npos) << t;
  EXPECT_NE(t.find("| 43"), std::string::npos) << t;
  EXPECT_NE(t.find("NULL"), std::string::npos) << t;
}

TEST(Fit, WideMeansNoLimit) {
  RenderOptions o;
  o.width = 0;
  o.max_column_width = 0;  // --wide
  std::string t = render_table(wide_table(), o);
  EXPECT_NE(t.find("患者は安定しています 🙂 follow-up in two weeks; señora prefers mornings"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("…"), std::string::npos) << t;
}

TEST(Fit, WideCharactersAreNeverSplit) {
  // Only wide characters, cut at odd widths: the cut falls between them, never inside one.
  json s = {{"columns", {{{"name", "x"}, {"type", "text"}}, {{"name", "y"}, {"type", "text"}}}},
            {"rows",
             {{{"x", std::string(60, 'a')},
               {"y", "日本語のテキストがここに長く続きます日本語のテキストがここに長く続きます"}}}}};
  for (std::size_t width : {21u, 40u, 41u, 79u, 80u}) {
    RenderOptions o;
    o.width = width;
    expect_fits(render_table(s, o), width);
  }
}

TEST(Fit, AnswersAndErrorsAreWrapped) {
  AgentRun run;
  run.answer =
      "Erin oRTEga was admitted three times; the most recent admission (2023) was for diabetes at "
      "東京総合病院, "
      "and every test result came back normal.";
  ToolStep step;
  step.server = "larder-db";
  step.tool = "pg_query";
  step.is_error = true;
  step.text =
      "lock taint: the token already read sensitive data, so egress tools refuse it (see "
      "docs/security-model.md)";
  run.steps.push_back(step);
  for (std::size_t width : {40u, 80u}) {
    RenderOptions o;
    o.width = width;
    std::string text = render_run(run, o);
    expect_fits(text, width);
    EXPECT_NE(text.find("every test"), std::string::npos) << text;
  }
  EXPECT_EQ(wrap_to_width("a b", 0), "a b");
  EXPECT_EQ(wrap_to_width("aaaa bbbb cccc", 9), "aaaa bbbb\ncccc");
  EXPECT_EQ(wrap_to_width("abcdefghij", 4), "abcd\nefgh\nij");
  EXPECT_EQ(wrap_to_width("日本語", 3), "日\n本\n語");
}

}  // namespace
}  // namespace larder::agent
