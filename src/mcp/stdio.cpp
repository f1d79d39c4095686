#include "mcp/stdio.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <variant>

#include "mcp/thread_pool.h"

namespace larder::mcp {

bool LineWriter::send(const json& message) {
  return write_line(message.dump(-1, ' ', false, json::error_handler_t::replace));
}

bool LineWriter::write_line(std::string line) {
  if (filter_ && !filter_(line)) return true;
  line += '\n';
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      closed_ = true;
      return false;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

void LineWriter::mark_closed() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

LineReader::Status LineReader::next(std::string* line) {
  while (true) {
    std::size_t nl = buffer_.find('\n', scan_from_);
    if (nl != std::string::npos) {
      if (skipping_ || nl > max_line_) {
        buffer_.erase(0, nl + 1);
        scan_from_ = 0;
        skipping_ = false;
        return Status::kOversized;
      }
      *line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      scan_from_ = 0;
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return Status::kLine;
    }
    scan_from_ = buffer_.size();
    if (buffer_.size() > max_line_) {
      // Drop what we have; keep dropping until the newline that ends this record.
      skipping_ = true;
      buffer_.clear();
      scan_from_ = 0;
    }
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::kError;
    }
    if (n == 0) {
      if (!buffer_.empty() && !skipping_) {
        *line = std::move(buffer_);
        buffer_.clear();
        scan_from_ = 0;
        return Status::kLine;
      }
      return Status::kEof;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

StdioServerTransport::StdioServerTransport(Server& server, int in_fd, int out_fd, StdioOptions options)
    : server_(server),
      in_fd_(in_fd),
      options_(std::move(options)),
      writer_(std::make_shared<LineWriter>(out_fd, options_.filter)) {}

larder::Result<void> StdioServerTransport::run() {
  auto session = server_.create_session(nullptr);
  session->set_general(writer_);
  Origin origin;
  origin.related = writer_;
  origin.transport = "stdio";
  LineReader reader(in_fd_, options_.max_line);
  std::string line;
  larder::Result<void> outcome;
  while (true) {
    auto status = reader.next(&line);
    if (status == LineReader::Status::kEof) break;
    if (status == LineReader::Status::kError) {
      outcome = larder::make_error("mcp.stdio", "reading the input failed");
      break;
    }
    if (status == LineReader::Status::kOversized) {
      const auto e = RpcError::invalid_request("message exceeds the maximum line length");
      server_.report_refused(origin, e);
      writer_->send(make_error_response(nullptr, e));
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto parsed = parse_json(line, server_.options().max_json_depth);
    if (auto* err = std::get_if<RpcError>(&parsed)) {
      server_.report_refused(origin, *err);
      writer_->send(make_error_response(nullptr, *err));
      continue;
    }
    json value = std::move(std::get<json>(parsed));
    const bool needs_worker =
        value.is_array() || (value.is_object() && value.contains("method") && value.contains("id"));
    if (!needs_worker) {
      // Notifications and responses are cheap and must not queue behind blocked handlers
      // (a handler may be waiting for exactly this response).
      if (auto r = server_.handle(session, value, origin)) writer_->send(*r);
      continue;
    }
    {
      std::unique_lock lock(mutex_);
      if (options_.max_in_flight > 0 && in_flight_ >= options_.max_in_flight) {
        lock.unlock();
        const auto e = RpcError{
            error_code::kBusy, "too many requests in flight; retry when one has been answered", std::nullopt};
        server_.report_refused(origin, e);
        writer_->send(make_error_response(value.is_object() ? value["id"] : json(nullptr), e));
        continue;
      }
      ++in_flight_;
    }
    Origin request_origin = origin;
    request_origin.cancellation = CancellationToken();
    bool posted = server_.pool().post([this, session, value = std::move(value), request_origin] {
      if (auto r = server_.handle(session, value, request_origin)) writer_->send(*r);
      std::lock_guard lock(mutex_);
      if (--in_flight_ == 0) idle_.notify_all();
    });
    if (!posted) {
      std::lock_guard lock(mutex_);
      --in_flight_;
      break;
    }
  }
  {
    // Give running handlers a bounded time to finish and answer.
    std::unique_lock lock(mutex_);
    idle_.wait_for(lock, std::chrono::seconds(10), [this] { return in_flight_ == 0; });
  }
  server_.remove_session(session->id());
  return outcome;
}

}  // namespace larder::mcp
