// AuditSyslog: ships each audit record to the local syslog daemon as well (rsyslog,
// syslog-ng, journald), so a copy leaves the host's disk as the records are written.
//
// Each record goes as one datagram to the daemon's unix socket (/dev/log), in the form
// syslog(3) sends: "<86>larder-audit[<pid>]: <the JSON line>" — facility authpriv, severity
// info, so it lands in the daemon's access-restricted log (/var/log/auth.log, or journald with
// SYSLOG_FACILITY=10). syslog(3) itself is not used: its socket cannot be chosen (tests bind
// their own), and its openlog() state is process-wide.
//
// The file stays the record of truth: a copy the daemon does not take (no daemon, a full
// queue) is logged once and does not refuse the call; the next record is sent again.
#pragma once

#include <sys/un.h>

#include <mutex>
#include <string>
#include <string_view>

namespace larder::gate {

class AuditSyslog {
 public:
  explicit AuditSyslog(std::string socket_path = "/dev/log", std::string tag = "larder-audit");
  ~AuditSyslog();
  AuditSyslog(const AuditSyslog&) = delete;
  AuditSyslog& operator=(const AuditSyslog&) = delete;

  // Sends one record; false when the daemon did not take it.
  bool send(std::string_view line);

 private:
  std::string socket_path_;
  std::string tag_;
  std::mutex mu_;
  int fd_ = -1;
  bool failing_ = false;
};

}  // namespace larder::gate
