// No example's table or column name appears in src/: Larder reads an example only through its
// policy file, and `larder demo` runs whatever the example's demo (examples/<name>/demo.cpp)
// says. Every name comes from the examples' own policy files, parsed by the real parser: the
// tables, every listed, masked and hidden column, and the declared tools. Names shorter than
// four characters and a few ordinary words Larder's own code uses ("name", "email", ...) are
// not checked; everything else must appear in no src/**/*.{cpp,h,in}, as a whole word, with
// the same case (the healthcare columns "Hospital" or "Patient Name" are checked; the fact
// hospital of the default token profiles is not a column).
#include "examples/examples.h"
#include "policy/policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace larder {
namespace {

namespace fs = std::filesystem;

// Ordinary words: a column may be called that without naming the example.
const std::set<std::string> kCommonWords = {"name",  "plan",  "number", "total",    "paid", "email",
                                            "phone", "price", "amount", "quantity", "users"};

struct Name {
  std::string text;
  std::string what;  // "healthcare: column health_records.\"Hospital\""
};

std::vector<Name> example_names() {
  std::vector<Name> names;
  std::set<std::string> seen;
  auto add = [&](const std::string& text, const std::string& what) {
    if (text.size() >= 4 && !kCommonWords.count(text) && seen.insert(text).second)
      names.push_back({text, what});
  };
  for (const auto& e : examples::all()) {
    auto p = policy::parse(e.policy, "<example " + e.name + ">/policy.toml");
    EXPECT_TRUE(p.ok()) << e.name << ": " << p.error().message;
    if (!p) continue;
    for (const auto& r : p->relations) {
      add(r.name, e.name + ": table " + r.qualified());
      for (const auto& c : r.columns) add(c.name, e.name + ": column " + r.name + "." + c.name);
      for (const auto& h : r.hidden) add(h, e.name + ": hidden column " + r.name + "." + h);
    }
    for (const auto& t : p->tools) add(t.name, e.name + ": declared tool " + t.name);
  }
  return names;
}

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// The 1-based lines of `text` where `name` occurs as a whole word (not inside a longer identifier).
std::vector<int> occurrences(const std::string& text, const std::string& name) {
  std::vector<int> lines;
  for (std::size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    const bool starts = at == 0 || !word_char(text[at - 1]) || !word_char(name.front());
    const std::size_t end = at + name.size();
    const bool ends = end == text.size() || !word_char(text[end]) || !word_char(name.back());
    if (starts && ends)
      lines.push_back(1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n')));
  }
  return lines;
}

TEST(NamesOutsideExamples, TheCheckFindsWholeWordsWithTheirCase) {
  EXPECT_EQ(occurrences("a\nSELECT * FROM health_records;\n", "health_records"), std::vector<int>{2});
  EXPECT_EQ(occurrences(R"(WHERE "Patient Name" = $1)", "Patient Name"), std::vector<int>{1});
  EXPECT_TRUE(occurrences("health_records_archive", "health_records").empty());
  EXPECT_TRUE(occurrences("my_tenant_id", "tenant_id").empty());
  EXPECT_TRUE(occurrences("hospital(\"x\")", "Hospital").empty());
  EXPECT_EQ(occurrences("(\"Hospital\")", "Hospital"), std::vector<int>{1});
}

TEST(NamesOutsideExamples, EveryExampleDeclaresNamesToCheck) {
  const auto names = example_names();
  std::set<std::string> texts;
  for (const auto& n : names) texts.insert(n.text);
  for (const char* expected :
       {"health_records", "Patient Name", "Medical Condition", "Hospital", "invoice_lines", "tenant_id",
        "internal_notes", "customers", "unpaid_invoices"}) {
    EXPECT_TRUE(texts.count(expected)) << expected << " is not among the names checked";
  }
}

TEST(NamesOutsideExamples, NoTableOrColumnOfAnExampleAppearsInSrc) {
  const fs::path src = fs::path(LARDER_SOURCE_DIR) / "src";
  ASSERT_TRUE(fs::is_directory(src)) << src;
  const auto names = example_names();
  ASSERT_FALSE(names.empty());
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = entry.path().extension().string();
    if (ext != ".cpp" && ext != ".h" && ext != ".in") continue;
    ++files;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const std::string where = fs::relative(entry.path(), LARDER_SOURCE_DIR).string();
    for (const auto& n : names) {
      for (int line : occurrences(text, n.text)) {
        ADD_FAILURE() << where << ":" << line << ": \"" << n.text << "\" (" << n.what
                      << ") — move what names it into examples/<name>/, or name no example";
      }
    }
  }
  EXPECT_GT(files, 100u) << "src/ looks empty";
}

}  // namespace
}  // namespace larder
