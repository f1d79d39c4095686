#include "gate/audit_syslog.h"

#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace larder::gate {

AuditSyslog::AuditSyslog(std::string socket_path, std::string tag)
    : socket_path_(std::move(socket_path)), tag_(std::move(tag)) {}

AuditSyslog::~AuditSyslog() {
  if (fd_ >= 0) ::close(fd_);
}

bool AuditSyslog::send(std::string_view line) {
  std::lock_guard lock(mu_);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) {
    if (!failing_) spdlog::error("audit syslog: the socket path {} is too long", socket_path_);
    failing_ = true;
    return false;
  }
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const std::string message = "<" + std::to_string(LOG_AUTHPRIV | LOG_INFO) + ">" + tag_ + "[" +
                              std::to_string(::getpid()) + "]: " + std::string(line);
  ssize_t sent = -1;
  if (fd_ >= 0) {
    do {
      sent = ::sendto(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                      reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    } while (sent < 0 && errno == EINTR);
  }
  if (sent != static_cast<ssize_t>(message.size())) {
    if (!failing_) {
      spdlog::error("audit syslog: {} does not take the audit records ({}); they are still in the audit log",
                    socket_path_, fd_ < 0 || sent >= 0 ? "short write" : std::strerror(errno));
    }
    failing_ = true;
    return false;
  }
  if (failing_) spdlog::warn("audit syslog: {} takes the audit records again", socket_path_);
  failing_ = false;
  return true;
}

}  // namespace larder::gate
