#include "mcp/sse.h"

namespace larder::mcp {

std::string format_sse_event(std::string_view id, std::string_view event, std::string_view data,
                             std::int64_t retry_ms) {
  std::string out;
  out.reserve(data.size() + 64);
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  if (!event.empty()) {
    out += "event: ";
    out += event;
    out += '\n';
  }
  if (retry_ms >= 0) {
    out += "retry: ";
    out += std::to_string(retry_ms);
    out += '\n';
  }
  std::size_t start = 0;
  while (true) {
    std::size_t nl = data.find('\n', start);
    out += "data: ";
    out += data.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

bool SseParser::feed(std::string_view chunk) {
  buffer_.append(chunk);
  std::size_t start = 0;
  while (true) {
    std::size_t nl = buffer_.find_first_of("\r\n", start);
    if (nl == std::string::npos) break;
    if (buffer_[nl] == '\r' && nl + 1 == buffer_.size()) break;  // maybe the first half of \r\n
    line(std::string_view(buffer_.data() + start, nl - start));
    start = nl + 1;
    if (buffer_[nl] == '\r' && buffer_[start] == '\n') ++start;
  }
  buffer_.erase(0, start);
  return buffer_.size() + current_.data.size() <= max_;
}

void SseParser::line(std::string_view l) {
  if (l.empty()) {
    if (has_fields_) {
      if (current_.event.empty()) current_.event = "message";
      if (!current_.id.empty()) last_id_ = current_.id;
      on_event_(current_);
    }
    current_ = SseEvent{};
    has_data_ = false;
    has_fields_ = false;
    return;
  }
  if (l[0] == ':') return;  // comment / keep-alive
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  has_fields_ = true;
  if (field == "data") {
    if (has_data_) current_.data += '\n';
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  } else if (field == "id") {
    current_.id = std::string(value);
  } else if (field == "retry") {
    try {
      current_.retry_ms = std::stoll(std::string(value));
    } catch (const std::exception&) {
    }
  }
}

}  // namespace larder::mcp
