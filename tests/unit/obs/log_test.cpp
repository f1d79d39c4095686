// larder::obs logging: JSON lines (one object per line, events with their fields, messages
// escaped) and the text format's key=value (values that could forge a line are quoted).
#include "obs/log.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace larder::obs {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  spdlog::default_logger()->flush();
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() / ("larder-log-" + std::to_string(::getpid()) + ".log"))
                .string();
    std::filesystem::remove(path_);
  }
  void TearDown() override {
    configure_logging(LogFormat::kText, spdlog::level::info);
    std::filesystem::remove(path_);
  }
  std::string path_;
};

TEST_F(LogTest, JsonLinesAreOneObjectEachWithEventsSpliced) {
  ASSERT_EQ(configure_logging(LogFormat::kJson, spdlog::level::debug, path_), "");
  spdlog::info("plain \"quoted\"\nsecond line \x01");
  log_event(spdlog::level::info, "call", {{"request_id", "0123456789abcdef"}, {"rows", 3}});
  spdlog::trace("below the level");
  const auto lines = lines_of(path_);
  ASSERT_EQ(lines.size(), 2u);
  const auto a = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(a["level"], "info");
  EXPECT_EQ(a["msg"], "plain \"quoted\"\nsecond line \x01");
  EXPECT_EQ(a["time"].get<std::string>().back(), 'Z');
  const auto b = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(b["event"], "call");
  EXPECT_EQ(b["request_id"], "0123456789abcdef");
  EXPECT_EQ(b["rows"], 3);
  EXPECT_FALSE(b.contains("msg"));
}

TEST_F(LogTest, TextValuesThatCouldForgeALineAreQuoted) {
  ASSERT_EQ(configure_logging(LogFormat::kText, spdlog::level::info, path_), "");
  log_event(spdlog::level::info, "call", {{"tool", "pg_query"}, {"client", "evil\nfake=line"}});
  const auto lines = lines_of(path_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" call "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" tool=pg_query"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" client=\"evil\\nfake=line\""), std::string::npos) << lines[0];
}

TEST_F(LogTest, FormatsAndLevelsParseFromTheirNames) {
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("xml"));
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_FALSE(parse_log_level("loud"));
  EXPECT_NE(configure_logging(LogFormat::kJson, spdlog::level::info, "/dev/null/x.log"), "");
}

}  // namespace
}  // namespace larder::obs
