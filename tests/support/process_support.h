// Process plumbing shared by the throwaway servers of the test support library (PgCluster,
// PgStandby, PgBouncer): a watchdog that stops a server when the test process dies without
// running its destructor, a wait for a port to become bindable again, and the tail of a log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>

namespace larder::test {

// A test killed mid-run (a timeout, Ctrl-C, a crash) never reaches the destructor, and a
// server started by it outlives it. A watchdog in its own session waits on a pipe only this
// process writes: "done" means the destructor cleaned up; end of file without it means the
// test died, and the watchdog sends `signal_name` (e.g. "QUIT", "TERM") to the pid on the
// first line of `pid_file`, waits a second and removes `root`. Returns the watchdog's pid and
// the pipe's write end (-1 when none could start).
std::pair<pid_t, int> start_watchdog(const std::string& root, const std::string& pid_file,
                                     const std::string& signal_name);
// Tells the watchdog that cleanup happened and reaps it.
void stop_watchdog(pid_t pid, int fd);

// True when 127.0.0.1:port can be bound the way a server binds it (SO_REUSEADDR).
bool port_bindable(int port);
// Waits (up to `timeout`) until port_bindable(port): a restart right after a stop may find
// the port held a moment longer. Returns whether it became bindable.
bool wait_port_bindable(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// True when something accepts TCP connections on 127.0.0.1:port.
bool port_accepts(int port);

// The last `max` bytes of a file ("" when it cannot be read).
std::string file_tail(const std::string& path, std::size_t max = 3000);

}  // namespace larder::test
