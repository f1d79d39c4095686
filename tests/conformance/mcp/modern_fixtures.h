#pragma once
#include "mcp/server.h"
namespace larder::mcp {
// Registers the tools and prompts the 2026-07-28 (stateless) conformance scenarios call.
void register_modern_fixtures(Server& server);
}  // namespace larder::mcp
