#include "obs/log.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>

namespace larder::obs {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

// Marks a message that log_event built: the rest is the fields of a JSON object, unbraced.
constexpr char kEventMark = '\x1e';

void append_time(spdlog::memory_buf_t& dest, spdlog::log_clock::time_point t) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  const std::time_t tt = spdlog::log_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  const auto n =
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  dest.append(buf, buf + n);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    dest.append(std::string_view("{\"time\":\""));
    append_time(dest, msg.time);
    dest.append(std::string_view("\",\"level\":\""));
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    dest.push_back('"');
    if (!text.empty() && text.front() == kEventMark) {
      if (text.size() > 1) {
        dest.push_back(',');
        dest.append(text.data() + 1, text.data() + text.size());
      }
    } else {
      const std::string escaped =
          nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      dest.append(std::string_view(",\"msg\":"));
      dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// key=value for the text format: strings quoted only when they hold a space or a quote.
std::string text_value(const nlohmann::json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    const bool plain = !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
      return static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '=' || c == 0x7f;
    });
    if (plain) return s;
  }
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  static const std::pair<std::string_view, spdlog::level::level_enum> names[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},       {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn},      {"error", spdlog::level::err},
      {"err", spdlog::level::err},     {"critical", spdlog::level::critical}, {"off", spdlog::level::off}};
  for (const auto& [n, l] : names) {
    if (name == n) return l;
  }
  return std::nullopt;
}

std::string configure_logging(LogFormat format, spdlog::level::level_enum level, const std::string& file) {
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty()) {
    logger = std::make_shared<spdlog::logger>("larder", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
      ::chmod(file.c_str(), 0600);
      logger = std::make_shared<spdlog::logger>("larder", std::move(sink));
    } catch (const spdlog::spdlog_ex& e) {
      return e.what();
    }
  }
  if (format == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  }
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  g_format.store(format);
  spdlog::set_default_logger(std::move(logger));
  return "";
}

LogFormat log_format() {
  return g_format.load();
}

void log_event(spdlog::level::level_enum level, std::string_view event, const nlohmann::json& fields) {
  if (!spdlog::default_logger_raw()->should_log(level)) return;
  if (g_format.load() == LogFormat::kJson) {
    nlohmann::json j = fields.is_object() ? fields : nlohmann::json::object();
    j["event"] = std::string(event);
    std::string body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    body.front() = kEventMark;  // the opening brace; the formatter supplies its own
    body.pop_back();            // the closing brace
    spdlog::log(level, "{}", body);
    return;
  }
  std::string line(event);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      if (v.is_null()) continue;
      line += ' ';
      line += k;
      line += '=';
      line += text_value(v);
    }
  }
  spdlog::log(level, "{}", line);
}

}  // namespace larder::obs
