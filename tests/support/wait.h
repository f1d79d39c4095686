// Waiting in tests: on the event itself, never a bare sleep and never a spin without a deadline.
//   test::Event      a one-shot latch with a timed wait, set by the thread that sees the event
//                    (a handler, a callback, a server's hook);
//   test::wait_until where nothing can signal (another process, a server's state read over
//                    the wire): polls a condition until it holds or a deadline passes.
// Both return false on timeout, so a test says what never happened:
//   ASSERT_TRUE(test::wait_until([&] { return set.pick().has_value(); }, 15s)) << "no replica came up";
// A sleep stays only where time passing is the point (a server that reads the wall clock, a
// rate limit's window, pacing a flood), with a comment saying so.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace larder::test {

// Polls `done()` every `poll` until it returns true (then true) or `timeout` has passed (then
// false, after one last look).
template <typename Done>
bool wait_until(Done&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return static_cast<bool>(done());
}

// A one-shot event: set() once it happened; wait_for() returns as soon as it has (true), or
// after `timeout` (false).
class Event {
 public:
  void set() {
    {
      std::lock_guard lock(mu_);
      set_ = true;
    }
    cv_.notify_all();
  }
  bool is_set() const {
    std::lock_guard lock(mu_);
    return set_;
  }
  bool wait_for(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return set_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace larder::test
