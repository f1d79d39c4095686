#include "mcp/protocol.h"

#include <algorithm>
#include <array>

namespace larder::mcp {

const std::vector<std::string>& legacy_versions() {
  static const std::vector<std::string> v = {std::string(kVersion2024_11_05), std::string(kVersion2025_03_26),
                                             std::string(kVersion2025_06_18),
                                             std::string(kVersion2025_11_25)};
  return v;
}

const std::vector<std::string>& supported_versions() {
  static const std::vector<std::string> v = {std::string(kVersion2026_07_28), std::string(kVersion2025_11_25),
                                             std::string(kVersion2025_06_18), std::string(kVersion2025_03_26),
                                             std::string(kVersion2024_11_05)};
  return v;
}

bool is_legacy_version(std::string_view v) {
  const auto& l = legacy_versions();
  return std::find(l.begin(), l.end(), v) != l.end();
}

bool is_modern_version(std::string_view v) {
  return v == kVersion2026_07_28;
}

namespace {
constexpr std::array<std::string_view, 8> kLevelNames = {"debug", "info",     "notice", "warning",
                                                         "error", "critical", "alert",  "emergency"};
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
    if (kLevelNames[i] == name) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) {
  return kLevelNames[static_cast<std::size_t>(level)];
}

}  // namespace larder::mcp
