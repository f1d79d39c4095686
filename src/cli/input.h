// A subcommand's inputs: the whole contents of a file named on the command line (`-` is
// stdin), and text with surrounding whitespace removed (keys and tokens pasted from files).
#pragma once

#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/files.h"

namespace larder::cli {

// The file's bytes, or stdin's for "-"; nullopt when the file cannot be opened.
inline std::optional<std::string> read_input(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return std::move(*text);
}

// "a,b,,c" -> {"a", "b", "c"}: comma-separated command-line lists, empty items dropped.
inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

inline std::string trim_space(std::string s) {
  auto space = [](char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v';
  };
  while (!s.empty() && space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

}  // namespace larder::cli
