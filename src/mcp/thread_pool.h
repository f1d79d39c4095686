// A fixed pool of worker threads running queued tasks (libmcp internal). A task goes to the
// worker that became idle last, so that under light load one worker's caches stay warm
// (its stack, its malloc arena) instead of every task waking a different, cold thread; tasks
// that find no idle worker queue in FIFO order.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace larder::mcp {

class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads);
  ~ThreadPool();  // drains nothing: pending tasks are dropped, running ones finish
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Returns false after shutdown.
  bool post(std::function<void()> task);
  void shutdown();

 private:
  struct Worker {
    std::condition_variable cv;
    std::function<void()> task;  // handed over by post()
    bool has_task = false;
  };
  void run(Worker& worker);

  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;  // most recently idle last
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

}  // namespace larder::mcp
