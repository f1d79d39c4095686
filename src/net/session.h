// Internal to larder_net: one connection (net/session.cpp holds the Session<kTls> that does the
// work). Connection life:  [TLS handshake] -> await bytes (idle_timeout) -> read request
// (request_timeout) -> handler on a worker -> write response -> await bytes ... or, for a
// streamed response, chunked writes until the handler closes the stream or the client leaves.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <list>
#include <memory>
#include <optional>
#include <string>

#include "net/http.h"
#include "net/server.h"

namespace larder::net {

class StreamImpl;

// What the server, a Responder and a ResponseStream ask of a connection; each call posts to the
// connection's strand.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void start() = 0;  // the handshake (TLS) or the first request
  virtual void post_response(HttpResponse response) = 0;
  virtual void post_stream_start(int status, HeaderList headers, std::shared_ptr<StreamImpl> stream) = 0;
  virtual void post_stream_data(std::string data) = 0;
  virtual void post_stream_end() = 0;
  virtual void begin_shutdown() = 0;
  virtual void force_close() = 0;
  virtual void evict() = 0;  // closes the connection if it is still in its handshake

  // Admission state, guarded by Server::Impl::mu: the place in the server's list of
  // handshakes (oldest first) while not yet authenticated, or counted as established.
  std::optional<std::list<SessionBase*>::iterator> handshake_slot;
  bool established = false;
};

// A connection just accepted (its socket on its own strand), not yet started: the server
// registers it, then calls start().
std::shared_ptr<SessionBase> make_session(Server::Impl& server, boost::asio::ip::tcp::socket socket,
                                          std::string remote, bool tls);

}  // namespace larder::net
