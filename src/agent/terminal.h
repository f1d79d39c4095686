// `larder ask` at a terminal: Ctrl-C (SIGINT turned into a byte on a self-pipe), the line
// editor (libedit: editing keys, Up/Down through the history), the progress line on stderr
// while the model or a tool works, and the terminal's width for tables. Nothing here runs
// unless the program asks for it (AskOptions: line_editing, handle_interrupts, progress),
// so `run_ask` over plain streams (tests, pipes) stays as it was.
#pragma once

#include "base/cancellation.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace larder::agent {

// Columns of the terminal on `fd` (TIOCGWINSZ), else $COLUMNS, else 80.
std::size_t terminal_columns(int fd);

// While an InterruptHandler lives, SIGINT does not end the program: the handler (async-
// signal-safe: it only bumps an atomic counter and writes one byte to a non-blocking pipe)
// makes interrupt_fd() readable. One at a time; the previous disposition comes back after.
class InterruptHandler {
 public:
  InterruptHandler();
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;

  bool ok() const { return ok_; }
  int fd() const;  // readable while an interrupt is pending
  // Consumes the pending interrupts; returns how many there were.
  int take();
  // While suspended SIGINT has its previous disposition again (a prompt read without the
  // line editor: Ctrl-C there ends the program, as before `larder ask` handled it).
  void suspend();
  void resume();

 private:
  bool ok_ = false;
};

// The prompt: libedit in emacs mode (arrows, Ctrl-A/E/K/W, ~/.editrc), Up/Down through the
// history. Reads stdin and draws on stdout, both terminals.
class LineEditor {
 public:
  enum class Status { Line, EndOfInput, Interrupted };

  // nullptr when stdin or stdout is not a terminal. `interrupts` (may be null) makes Ctrl-C
  // end the read with Status::Interrupted.
  static std::unique_ptr<LineEditor> open(const char* program, InterruptHandler* interrupts);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // Status::Interrupted: `line` holds what had been typed (the caller decides: discard it,
  // or leave when it was empty).
  Status read(const std::string& prompt, std::string* line);
  void add_history(const std::string& line);

  struct Impl;

 private:
  explicit LineEditor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs beside one question: a Ctrl-C cancels it (`cancel`), a second one asks the program
// to leave (and leaves after a grace period if the question still has not stopped), and —
// with `progress` — stderr shows what the agent waits for and for how long, redrawn every
// 250 ms on one line and erased (\r ESC[K) when the question ends.
class QuestionWatch {
 public:
  QuestionWatch(CancellationToken cancel, InterruptHandler* interrupts, bool progress, std::size_t width);
  ~QuestionWatch();
  QuestionWatch(const QuestionWatch&) = delete;
  QuestionWatch& operator=(const QuestionWatch&) = delete;

  void set(const std::string& what);  // thread-safe; "" hides the line
  void stop();                        // idempotent; erases the line
  bool interrupted() const { return interrupts_seen_.load() > 0; }
  bool exit_requested() const { return interrupts_seen_.load() > 1; }

 private:
  void loop();
  void draw(bool final);

  CancellationToken cancel_;
  InterruptHandler* interrupts_;
  bool progress_;
  std::size_t width_;
  std::mutex mutex_;
  int wake_[2] = {-1, -1};  // stop() writes here so the watch does not sleep out its 250 ms
  std::string what_;
  std::chrono::steady_clock::time_point since_;
  bool drawn_ = false;
  bool stopping_ = false;
  std::atomic<int> interrupts_seen_{0};
  std::thread thread_;
};

}  // namespace larder::agent
