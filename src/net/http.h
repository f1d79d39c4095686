// The HTTP vocabulary shared by net/ (which parses and writes the bytes) and its users
// (mcp/ transports). No Beast or Asio types appear here.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include "base/text.h"

#include "net/peer_identity.h"

namespace larder::net {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup of the first header called `name`.
std::optional<std::string> find_header(const HeaderList& headers, std::string_view name);
// A header field we may send or accept: the name an RFC 9110 token, the value free of CR, LF
// and NUL.
bool valid_header_field(std::string_view name, std::string_view value);

struct HttpRequest {
  std::string method;                                              // "GET", "POST", ...
  std::string target;                                              // raw target "/mcp?x=1"
  std::string path;                                                // "/mcp"
  std::string query;                                               // "x=1"
  HeaderList headers;                                              // in order, names as received
  std::optional<std::string> header(std::string_view name) const;  // case-insensitive, first match
  std::string body;
  std::string remote_address;                // "127.0.0.1:54321"
  std::shared_ptr<const PeerIdentity> peer;  // null only on a plain-HTTP (loopback dev) listener
  bool tls = false;
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;  // Content-Length is computed by the server; do not set it
  std::string body;
};

// A server-sent-events / chunked stream. Thread-safe; writes are queued in order.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual bool write(std::string data) = 0;  // raw bytes (caller formats SSE lines); false once closed
  virtual void close() = 0;                  // ends the response (final chunk)
  virtual bool is_closed() const = 0;        // client went away or closed
  virtual void on_close(std::function<void()> callback) = 0;  // runs once when the stream ends for any reason
};

// Handed to the handler; exactly one of respond() or start_stream() must be called, from any
// thread, any time. A Responder dropped without either answers 500. A second call is ignored
// (start_stream then returns an already-closed stream).
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void respond(HttpResponse response) = 0;
  virtual std::shared_ptr<ResponseStream> start_stream(int status, HeaderList headers) = 0;
};

// Called on a worker thread (never on the I/O thread), so handlers may block (DB queries).
// An exception escaping the handler answers 500 (if nothing was answered yet).
using HttpHandler = std::function<void(const HttpRequest&, std::shared_ptr<Responder>)>;

}  // namespace larder::net
