// Cooperative cancellation: the one who waits polls `cancelled()` or registers a callback;
// whoever decides to stop calls `cancel()`. Copies share one state. Used by the MCP server
// (a handler is cancelled when the client sends notifications/cancelled or closes the
// response stream) and by `larder ask` (Ctrl-C cancels the question: the model request,
// the retry waits and the MCP tool calls in flight).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace larder {

class CancellationToken {
 public:
  CancellationToken() : state_(std::make_shared<State>()) {}

  bool cancelled() const { return state_->cancelled.load(std::memory_order_acquire); }
  // Runs `callback` once when cancelled (immediately, on this thread, if already cancelled).
  void on_cancel(std::function<void()> callback) const {
    {
      std::lock_guard lock(state_->mutex);
      if (!state_->cancelled.load(std::memory_order_acquire)) {
        state_->callbacks.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }
  // Marks cancelled and runs the registered callbacks once. Idempotent.
  void cancel() const {
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(state_->mutex);
      if (state_->cancelled.exchange(true, std::memory_order_acq_rel)) return;
      callbacks.swap(state_->callbacks);
    }
    for (auto& cb : callbacks) cb();
  }

 private:
  struct State {
    std::atomic<bool> cancelled{false};
    std::mutex mutex;
    std::vector<std::function<void()>> callbacks;
  };
  std::shared_ptr<State> state_;
};

}  // namespace larder
