// libmcp's cancellation token is base's (base/cancellation.h): the same type cancels a
// server handler and a client request.
#pragma once

#include "base/cancellation.h"

namespace larder::mcp {
using larder::CancellationToken;
}  // namespace larder::mcp
