// UTC timestamps as RFC 3339 text, the one format Larder writes into records and SQL
// parameters: "2026-11-27T05:14:49Z", or "2026-11-27T05:14:49.123Z" with milliseconds.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace larder {

inline std::string rfc3339_utc(std::chrono::system_clock::time_point t, bool milliseconds = false) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  if (milliseconds) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  }
  return buf;
}

}  // namespace larder
