// Small text helpers shared across modules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace larder {

// {"a", "b"} -> "a, b" (messages that list names).
inline std::string join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

}  // namespace larder
