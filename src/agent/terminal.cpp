#include "agent/terminal.h"

#include "agent/render.h"

#include <fcntl.h>
#include <histedit.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cwchar>
#include <optional>

namespace larder::agent {

std::size_t terminal_columns(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    char* end = nullptr;
    long n = std::strtol(columns, &end, 10);
    if (end != columns && *end == '\0' && n > 0 && n < 100000) return static_cast<std::size_t>(n);
  }
  return 80;
}

// ---------------------------------------------------------------- SIGINT → self-pipe

namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_pending{0};
struct sigaction g_previous {};
std::atomic<bool> g_installed{false};

static_assert(std::atomic<int>::is_always_lock_free, "the SIGINT handler needs a lock-free counter");

extern "C" void on_sigint(int) {
  const int saved = errno;
  g_pending.fetch_add(1, std::memory_order_relaxed);
  const char byte = 'i';
  // Non-blocking: a full pipe already says "interrupted".
  [[maybe_unused]] ssize_t n = ::write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

InterruptHandler::InterruptHandler() {
  if (g_installed.exchange(true)) return;  // one at a time
  if (::pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_installed = false;
    return;
  }
  g_pending = 0;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // other threads' system calls carry on; poll() still wakes
  if (::sigaction(SIGINT, &sa, &g_previous) != 0) {
    ::close(g_pipe[0]);
    ::close(g_pipe[1]);
    g_pipe[0] = g_pipe[1] = -1;
    g_installed = false;
    return;
  }
  ok_ = true;
}

InterruptHandler::~InterruptHandler() {
  if (!ok_) return;
  ::sigaction(SIGINT, &g_previous, nullptr);
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
  g_pipe[0] = g_pipe[1] = -1;
  g_installed = false;
}

int InterruptHandler::fd() const {
  return ok_ ? g_pipe[0] : -1;
}

void InterruptHandler::suspend() {
  if (ok_) ::sigaction(SIGINT, &g_previous, nullptr);
}

void InterruptHandler::resume() {
  if (!ok_) return;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
}

int InterruptHandler::take() {
  if (!ok_) return 0;
  char buf[64];
  while (::read(g_pipe[0], buf, sizeof buf) > 0) {
  }
  return g_pending.exchange(0);
}

// ---------------------------------------------------------------- libedit

struct LineEditor::Impl {
  EditLine* el = nullptr;
  ::History* hist = nullptr;
  InterruptHandler* interrupts = nullptr;
  std::string prompt;
  std::mbstate_t mb{};
  bool interrupted = false;

  ~Impl() {
    if (el) el_end(el);
    if (hist) history_end(hist);
  }

  static Impl* of(EditLine* el) {
    void* data = nullptr;
    el_get(el, EL_CLIENTDATA, &data);
    return static_cast<Impl*>(data);
  }

  static char* prompt_of(EditLine* el) { return const_cast<char*>(of(el)->prompt.c_str()); }

  // libedit's read function: waits on stdin and on the interrupt pipe, so a Ctrl-C ends
  // el_gets() (a -1 with EINTR) instead of being lost in a restarted read().
  static int read_char(EditLine* el, wchar_t* out) {
    Impl* self = of(el);
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0},
                       {self->interrupts ? self->interrupts->fd() : -1, POLLIN, 0}};
      int n = ::poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (fds[1].revents & POLLIN) {
        self->interrupts->take();  // consumed here: the next read must not see it again
        self->interrupted = true;
        errno = EINTR;
        return -1;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        char c;
        ssize_t r = ::read(STDIN_FILENO, &c, 1);
        if (r == 0) return 0;
        if (r < 0) {
          if (errno == EINTR || errno == EAGAIN) continue;
          return -1;
        }
        wchar_t wc = 0;
        std::size_t k = std::mbrtowc(&wc, &c, 1, &self->mb);
        if (k == static_cast<std::size_t>(-2)) continue;  // more bytes of this character
        if (k == static_cast<std::size_t>(-1)) {          // not a character here: skip it
          self->mb = std::mbstate_t{};
          continue;
        }
        *out = wc;
        return 1;
      }
    }
  }
};

LineEditor::LineEditor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LineEditor::~LineEditor() = default;

std::unique_ptr<LineEditor> LineEditor::open(const char* program, InterruptHandler* interrupts) {
  if (!::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO)) return nullptr;
  // libedit decodes keys and encodes lines in the locale's character set (UTF-8 questions).
  std::setlocale(LC_CTYPE, "");
  auto impl = std::make_unique<Impl>();
  impl->interrupts = interrupts;
  impl->el = el_init(program, stdin, stdout, stderr);
  impl->hist = history_init();
  if (!impl->el || !impl->hist) return nullptr;
  HistEvent ev;
  ::history(impl->hist, &ev, H_SETSIZE, 1000);
  ::history(impl->hist, &ev, H_SETUNIQUE, 1);
  el_set(impl->el, EL_CLIENTDATA, impl.get());
  el_set(impl->el, EL_EDITOR, "emacs");
  el_set(impl->el, EL_SIGNAL, 0);  // our SIGINT handler, not libedit's (which re-raises to the group)
  el_set(impl->el, EL_PROMPT, &Impl::prompt_of);
  el_set(impl->el, EL_HIST, ::history, impl->hist);
  el_set(impl->el, EL_GETCFN, &Impl::read_char);
  el_source(impl->el, nullptr);  // ~/.editrc, as other libedit programs
  return std::unique_ptr<LineEditor>(new LineEditor(std::move(impl)));
}

LineEditor::Status LineEditor::read(const std::string& prompt, std::string* line) {
  Impl& im = *impl_;
  im.prompt = prompt;
  im.interrupted = false;
  im.mb = std::mbstate_t{};
  line->clear();
  el_resize(im.el);  // the window may have changed while a question ran
  int count = 0;
  const char* text = el_gets(im.el, &count);
  if (im.interrupted) {
    const LineInfo* li = el_line(im.el);
    if (li && li->lastchar > li->buffer)
      line->assign(li->buffer, static_cast<std::size_t>(li->lastchar - li->buffer));
    el_reset(im.el);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    return Status::Interrupted;
  }
  if (text == nullptr || count <= 0) return Status::EndOfInput;
  line->assign(text, static_cast<std::size_t>(count));
  while (!line->empty() && (line->back() == '\n' || line->back() == '\r')) line->pop_back();
  return Status::Line;
}

void LineEditor::add_history(const std::string& line) {
  HistEvent ev;
  ::history(impl_->hist, &ev, H_ENTER, line.c_str());
}

// ---------------------------------------------------------------- progress and Ctrl-C

namespace {

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

QuestionWatch::QuestionWatch(CancellationToken cancel, InterruptHandler* interrupts, bool progress,
                             std::size_t width)
    : cancel_(std::move(cancel)),
      interrupts_(interrupts && interrupts->ok() ? interrupts : nullptr),
      progress_(progress),
      width_(width == 0 ? 80 : width),
      since_(std::chrono::steady_clock::now()) {
  if (interrupts_) interrupts_->take();  // a Ctrl-C typed before the question is not for it
  if ((interrupts_ || progress_) && ::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) == 0)
    thread_ = std::thread([this] { loop(); });
}

QuestionWatch::~QuestionWatch() {
  stop();
  for (int fd : wake_)
    if (fd >= 0) ::close(fd);
}

void QuestionWatch::set(const std::string& what) {
  std::lock_guard lock(mutex_);
  if (what != what_) since_ = std::chrono::steady_clock::now();
  what_ = what;
}

void QuestionWatch::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  if (wake_[1] >= 0) {
    const char byte = 's';
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &byte, 1);
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  draw(true);
}

// Called with mutex_ held.
void QuestionWatch::draw(bool final) {
  if (!progress_) return;
  if (final || what_.empty() || interrupts_seen_.load() > 0) {
    if (drawn_) write_all(STDERR_FILENO, "\r\x1b[K");
    drawn_ = false;
    if (final || what_.empty()) return;
  }
  static const char kSpin[] = {'|', '/', '-', '\\'};
  auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since_);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, " %.1fs", static_cast<double>(elapsed.count()) / 1000.0);
  std::string text = std::string(1, kSpin[(elapsed.count() / 250) % 4]) + " " +
                     (interrupts_seen_.load() > 0 ? "cancelling: " : "") + what_ + seconds +
                     (interrupts_seen_.load() > 0 ? "" : "  (Ctrl-C cancels)");
  // One column short of the width: a line that fills the last column would wrap, and \r
  // could no longer erase it.
  text = truncate_to_width(text, width_ > 1 ? width_ - 1 : 1);
  write_all(STDERR_FILENO, "\r\x1b[K" + text);
  drawn_ = true;
}

void QuestionWatch::loop() {
  using clock = std::chrono::steady_clock;
  std::optional<clock::time_point> leave_by;  // after a second Ctrl-C
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    draw(false);
    lock.unlock();
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {interrupts_ ? interrupts_->fd() : -1, POLLIN, 0}};
    int n = ::poll(fds, 2, progress_ || leave_by ? 250 : -1);
    if (n > 0 && (fds[1].revents & POLLIN)) {
      const int got = std::max(interrupts_->take(), 1);
      const int seen = interrupts_seen_.fetch_add(got) + got;
      cancel_.cancel();  // here, not in the handler: the callbacks wake the waiting MCP request
      if (seen > 1 && !leave_by) leave_by = clock::now() + std::chrono::seconds(3);
    }
    lock.lock();
    if (leave_by && clock::now() >= *leave_by && !stopping_) {
      // The question did not stop after two Ctrl-C: leave anyway.
      write_all(STDERR_FILENO, "\r\x1b[K\nlarder ask: interrupted\n");
      std::_Exit(130);
    }
  }
}

}  // namespace larder::agent
