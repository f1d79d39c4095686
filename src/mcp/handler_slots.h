// libmcp: at most N handlers running at once on the threads that hand them in, without a
// thread pool of its own. The HTTP transport runs a request's handler on the net worker that
// holds the request (one hop); a request over the limit is queued, and the calling worker
// returns at once, so a few workers beyond the limit stay free for what must not wait behind
// handlers: notifications/cancelled, a client's answers to server requests, stream closes.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace larder::mcp {

class HandlerSlots {
 public:
  explicit HandlerSlots(std::size_t limit) : limit_(limit == 0 ? 1 : limit) {}
  HandlerSlots(const HandlerSlots&) = delete;
  HandlerSlots& operator=(const HandlerSlots&) = delete;

  // Runs `work` on this thread when a slot is free; else queues it, to run on the thread of
  // the next handler that finishes (in arrival order), and returns at once.
  void run(std::function<void()> work) {
    {
      std::lock_guard lock(mu_);
      if (running_ >= limit_) {
        queued_.push_back(std::move(work));
        return;
      }
      ++running_;
    }
    for (;;) {
      try {
        work();
      } catch (...) {
        std::lock_guard lock(mu_);
        --running_;  // the slot is given back; the queue is taken up by the next run()
        throw;
      }
      std::lock_guard lock(mu_);
      if (queued_.empty()) {
        --running_;
        return;
      }
      work = std::move(queued_.front());
      queued_.pop_front();
    }
  }

 private:
  std::mutex mu_;
  const std::size_t limit_;
  std::size_t running_ = 0;
  std::deque<std::function<void()>> queued_;
};

}  // namespace larder::mcp
