// larder::obs logging: the process's log lines as a person reads them (text) or as a log
// pipeline reads them (JSON lines: one object per line with "time", "level" and either "msg"
// or an event's own fields), at a configured level, to stderr or a file. Built on spdlog:
// every spdlog call anywhere in Larder goes through the format chosen here.
//
// Structured events (log_event) carry fields, never free text from a request: callers pass
// what identifies a call (ids, names from a closed set, outcomes, numbers), not tokens,
// queries, parameter values or rows.
#pragma once

#include <spdlog/common.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace larder::obs {

enum class LogFormat { kText, kJson };

// How the process logs ([log] format, level).
struct LogOptions {
  LogFormat format = LogFormat::kText;
  spdlog::level::level_enum level = spdlog::level::info;
};

// "text" | "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view name);
// "trace", "debug", "info", "warn", "error", "critical", "off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

// Replaces the default logger: `format`, `level`, appending to `file` (created 0600) or, when
// empty, stderr. Returns the system's reason when the file cannot be opened ("" on success).
std::string configure_logging(LogFormat format, spdlog::level::level_enum level,
                              const std::string& file = "");
LogFormat log_format();

// One event: JSON → {"time","level","event":<event>, ...fields}; text → "<event> k=v k=v".
void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::json& fields);

}  // namespace larder::obs
