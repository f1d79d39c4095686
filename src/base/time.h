// UTC timestamps as RFC 3339 text, the one format Larder writes into records and SQL
// parameters: "2026-11-27T05:14:49Z", or "2026-11-27T05:14:49.123Z" with milliseconds; and
// read back (parse_rfc3339_utc). Calendar questions (is_civil_date) go to <chrono>.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace larder {

// Whether year-month-day names a day of the (proleptic Gregorian) calendar: 2024-02-29 does,
// 2023-02-29, 2100-02-29 and 2024-04-31 do not.
inline bool is_civil_date(int year, unsigned month, unsigned day) {
  return std::chrono::year_month_day(std::chrono::year(year), std::chrono::month(month),
                                     std::chrono::day(day))
      .ok();
}

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

// The inverse of rfc3339_utc: "2026-11-27T05:14:49Z" or with fractional seconds (which are
// dropped); nullopt for any other text.
inline std::optional<std::chrono::system_clock::time_point> parse_rfc3339_utc(std::string_view text) {
  if (text.size() < 20 || text.back() != 'Z') return std::nullopt;
  std::tm tm{};
  char sep = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &sep,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 7 ||
      sep != 'T' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(secs);
}

}  // namespace larder
