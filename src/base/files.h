// Reading a whole file: the one way Larder's modules do it.
#pragma once

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "base/result.h"

namespace larder {

// The file's bytes. An error says which file and why ("cannot read <path>: No such file or
// directory"), with code "file.not_found" when it does not exist and "file.unreadable"
// otherwise (exit_status::for_error maps them to 3 and 4).
inline Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return make_error(err == ENOENT ? "file.not_found" : "file.unreadable",
                      "cannot read " + path + ": " + std::strerror(err));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error("file.unreadable", "cannot read " + path + ": a read error");
  return ss.str();
}

}  // namespace larder
