// stdio transport: newline-delimited JSON-RPC over a pair of file descriptors
// (stdin/stdout of a server process, or the pipes to a spawned one). One Session per
// process for the legacy era; modern (stateless) requests are served without one.
// Diagnostics go to stderr, never to the message stream.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "mcp/server.h"

namespace larder::mcp {

// Rewrites one outgoing line in place before it is written (e.g. a last check that no
// secret leaves the process); returns false to drop the line.
using LineFilter = std::function<bool(std::string& line)>;

// Writes one JSON message per line to a file descriptor; thread-safe.
class LineWriter : public Outbound {
 public:
  explicit LineWriter(int fd, LineFilter filter = {}) : fd_(fd), filter_(std::move(filter)) {}
  bool send(const json& message) override;
  bool write_line(std::string line);
  void mark_closed();

 private:
  int fd_;
  LineFilter filter_;
  std::mutex mutex_;
  bool closed_ = false;
};

// Reads newline-delimited records from a file descriptor. Lines longer than `max_line`
// are reported as oversized (and skipped up to the next newline).
class LineReader {
 public:
  explicit LineReader(int fd, std::size_t max_line = 16u << 20) : fd_(fd), max_line_(max_line) {}
  enum class Status { kLine, kOversized, kEof, kError };
  Status next(std::string* line);

 private:
  int fd_;
  std::size_t max_line_;
  std::string buffer_;
  std::size_t scan_from_ = 0;
  bool skipping_ = false;
};

struct StdioOptions {
  // Requests running or queued at once; one more is answered error_code::kBusy at once
  // (a flood costs a bounded amount of memory and the peer learns to slow down).
  std::size_t max_in_flight = 64;
  std::size_t max_line = 16u << 20;  // bytes per message; longer ones are refused unparsed
  LineFilter filter;                 // applied to every line written
};

class StdioServerTransport {
 public:
  StdioServerTransport(Server& server, int in_fd = 0, int out_fd = 1, StdioOptions options = {});
  // Serves until end of input; waits for in-flight handlers before returning.
  larder::Result<void> run();

 private:
  Server& server_;
  int in_fd_;
  StdioOptions options_;
  std::shared_ptr<LineWriter> writer_;
  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t in_flight_ = 0;
};

}  // namespace larder::mcp
