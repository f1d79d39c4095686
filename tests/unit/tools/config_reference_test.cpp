// docs/configuration.md is the reference of larder.toml: every key the parser accepts has a
// row there, and every row names a key the parser accepts.
#include "tools/serve_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace larder::tools {
namespace {

std::set<std::string> documented_keys() {
  std::ifstream in(std::string(LARDER_SOURCE_DIR) + "/docs/configuration.md");
  std::set<std::string> keys;
  const std::regex row(R"(^\| `([a-z_.<>\[\]]+)` \|)");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, row)) keys.insert(m[1]);
  }
  return keys;
}

std::string join(const std::set<std::string>& s) {
  std::ostringstream out;
  for (const auto& k : s) out << "\n  " << k;
  return out.str();
}

TEST(ConfigReference, EveryKeyIsDocumentedAndEveryDocumentedKeyExists) {
  const auto documented = documented_keys();
  ASSERT_GT(documented.size(), 40u) << "docs/configuration.md not found or without key rows";
  const auto code = config_keys();
  const std::set<std::string> known(code.begin(), code.end());
  std::set<std::string> undocumented, unknown;
  for (const auto& k : known) {
    if (!documented.count(k)) undocumented.insert(k);
  }
  for (const auto& k : documented) {
    if (!known.count(k)) unknown.insert(k);
  }
  EXPECT_TRUE(undocumented.empty()) << "keys the parser accepts but docs/configuration.md does not document:"
                                    << join(undocumented);
  EXPECT_TRUE(unknown.empty()) << "keys docs/configuration.md documents but the parser refuses:"
                               << join(unknown);
}

}  // namespace
}  // namespace larder::tools
