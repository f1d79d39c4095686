// Protocol revisions libmcp speaks, and the small vocabulary shared by server and client.
//
// Legacy revisions (2024-11-05 .. 2025-11-25) open a session with `initialize`; the modern
// revision 2026-07-28 is stateless: every request carries its version in
// params._meta["io.modelcontextprotocol/protocolVersion"]. A server built on libmcp serves
// both eras side by side ("dual-era").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace larder::mcp {

inline constexpr std::string_view kVersion2024_11_05 = "2024-11-05";
inline constexpr std::string_view kVersion2025_03_26 = "2025-03-26";
inline constexpr std::string_view kVersion2025_06_18 = "2025-06-18";
inline constexpr std::string_view kVersion2025_11_25 = "2025-11-25";
inline constexpr std::string_view kVersion2026_07_28 = "2026-07-28";

// Legacy (initialize-based) revisions, oldest first. The last one is what we offer when a
// client asks for a version we do not know.
const std::vector<std::string>& legacy_versions();
// Every revision we serve, newest first (what server/discover and
// UnsupportedProtocolVersionError advertise).
const std::vector<std::string>& supported_versions();

bool is_legacy_version(std::string_view v);
bool is_modern_version(std::string_view v);
// Revision dates compare as strings; "a is at least b".
inline bool version_at_least(std::string_view a, std::string_view b) {
  return a >= b;
}

// `_meta` keys of the modern revision.
namespace meta_key {
inline constexpr std::string_view kProtocolVersion = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view kClientInfo = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view kClientCapabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view kServerInfo = "io.modelcontextprotocol/serverInfo";
inline constexpr std::string_view kLogLevel = "io.modelcontextprotocol/logLevel";
inline constexpr std::string_view kSubscriptionId = "io.modelcontextprotocol/subscriptionId";
}  // namespace meta_key

// RFC 5424 severities used by MCP logging, least severe first.
enum class LogLevel { kDebug, kInfo, kNotice, kWarning, kError, kCritical, kAlert, kEmergency };
std::optional<LogLevel> parse_log_level(std::string_view name);
std::string_view log_level_name(LogLevel level);

// Name and version of an implementation (serverInfo / clientInfo).
struct Implementation {
  std::string name;
  std::string version;
  std::string title;  // optional
};

}  // namespace larder::mcp
