#include "support/process_support.h"

#include "support/wait.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace larder::test {

std::pair<pid_t, int> start_watchdog(const std::string& root, const std::string& pid_file,
                                     const std::string& signal_name) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, -1};
  const char* script =
      "read -r line; [ \"$line\" = done ] && exit 0; "
      "pid=$(head -n 1 \"$2\" 2>/dev/null) && kill -\"$3\" \"$pid\" 2>/dev/null; "
      "sleep 1; rm -rf \"$1\"";
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {-1, -1};
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::setsid();    // out of the test's process group: a group kill leaves it to clean up
    ::dup2(fds[0], 0);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    ::close_range(3, ~0U, 0);
    ::execl("/bin/sh", "sh", "-c", script, "sh", root.c_str(), pid_file.c_str(), signal_name.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  return {pid, fds[1]};
}

void stop_watchdog(pid_t pid, int fd) {
  if (fd < 0) return;
  (void)!::write(fd, "done\n", 5);
  ::close(fd);
  ::waitpid(pid, nullptr, 0);
}

bool port_bindable(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

bool wait_port_bindable(int port, std::chrono::milliseconds timeout) {
  return wait_until([port] { return port_bindable(port); }, timeout, std::chrono::milliseconds(50));
}

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string file_tail(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

}  // namespace larder::test
