// libmcp internal: the row type of the server's method table (methods.cpp holds the table,
// server.cpp's dispatch reads it), and the signal a handler's request_client throws past it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mcp/server.h"

namespace larder::mcp {

// Thrown by request_client in the stateless era when the client did not declare the
// capability a request needs; answered with MissingRequiredClientCapabilityError (-32021).
struct MissingCapabilitySignal {
  std::string capability;
  std::string method;
};

// Every built-in JSON-RPC method, one row each. A request whose row does not apply (a method
// of the other era, or one whose capability the server does not advertise) is looked up
// among the methods added with add_method, and is "Method not found" when it is not there
// either. A notification without a row goes to ServerOptions::on_notification. `initialize`
// has no row: the lifecycle answers it before dispatch (answer_request).
struct Server::Method {
  enum Era : unsigned { kLegacy = 1, kModern = 2, kEveryEra = kLegacy | kModern };
  enum Kind { kRequest, kNotification };
  using RequestHandler = HandlerResult (*)(Server&, RequestContext&);
  using NotificationHandler = void (*)(Server&, const std::shared_ptr<Session>&, const Message&);

  std::string_view name;
  std::string_view capability;  // the server capability it needs ("" for none)
  unsigned eras;                // the protocol revisions it exists in: legacy (initialize) and/or modern
  Kind kind;
  RequestHandler request = nullptr;
  NotificationHandler notification = nullptr;
  bool cacheable = false;  // modern era: a complete result carries ttlMs and cacheScope

  bool exists_in(bool modern) const { return (eras & (modern ? kModern : kLegacy)) != 0; }
  // A request this row serves under `modern`, given the server's capabilities.
  bool serves(bool modern, const json& capabilities) const {
    return kind == kRequest && exists_in(modern) &&
           (capability.empty() || capabilities.contains(std::string(capability)));
  }
};

}  // namespace larder::mcp
