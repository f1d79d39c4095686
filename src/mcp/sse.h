// Server-Sent Events framing (the text/event-stream format) for both directions.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace larder::mcp {

// One event: "id: …\nevent: …\nretry: …\ndata: …\n\n". Empty id/event are omitted, retry < 0
// is omitted; multi-line data becomes several data: lines.
std::string format_sse_event(std::string_view id, std::string_view event, std::string_view data,
                             std::int64_t retry_ms = -1);

struct SseEvent {
  std::string id;
  std::string event;  // "message" when the stream did not name it
  std::string data;
  std::int64_t retry_ms = -1;
};

// Incremental parser: feed() arbitrary chunks; the callback runs for each complete event
// (events without data are reported too, so a priming event's id is seen). Lines beyond
// `max_event_bytes` make feed() return false.
class SseParser {
 public:
  explicit SseParser(std::function<void(const SseEvent&)> on_event, std::size_t max_event_bytes = 64u << 20)
      : on_event_(std::move(on_event)), max_(max_event_bytes) {}
  bool feed(std::string_view chunk);
  const std::string& last_event_id() const { return last_id_; }

 private:
  void line(std::string_view l);
  std::function<void(const SseEvent&)> on_event_;
  std::size_t max_;
  std::string buffer_;
  SseEvent current_;
  bool has_data_ = false;
  bool has_fields_ = false;
  std::string last_id_;
};

}  // namespace larder::mcp
