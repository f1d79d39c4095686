#include "mcp/thread_pool.h"

#include <spdlog/spdlog.h>

#include <exception>

namespace larder::mcp {

ThreadPool::ThreadPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  workers_.reserve(threads);
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this, w = workers_[i].get()] { run(*w); });
}

ThreadPool::~ThreadPool() {
  shutdown();
}

bool ThreadPool::post(std::function<void()> task) {
  Worker* woken = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (!idle_.empty()) {
      woken = idle_.back();
      idle_.pop_back();
      woken->task = std::move(task);
      woken->has_task = true;
    } else {
      tasks_.push_back(std::move(task));
    }
  }
  if (woken) woken->cv.notify_one();
  return true;
}

void ThreadPool::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    tasks_.clear();
    idle_.clear();
  }
  for (auto& w : workers_) w->cv.notify_all();
  for (auto& t : threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id())
      t.join();
    else if (t.joinable())
      t.detach();
  }
  threads_.clear();
}

void ThreadPool::run(Worker& worker) {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    std::function<void()> task;
    if (worker.has_task) {
      task = std::move(worker.task);
      worker.has_task = false;
    } else if (!tasks_.empty()) {
      task = std::move(tasks_.front());
      tasks_.pop_front();
    } else {
      idle_.push_back(&worker);
      worker.cv.wait(lock, [&] { return stopping_ || worker.has_task; });
      continue;
    }
    lock.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("mcp: task failed: {}", e.what());
    } catch (...) {
      spdlog::error("mcp: task failed with an unknown exception");
    }
    task = nullptr;  // destroyed outside the lock
    lock.lock();
  }
}

}  // namespace larder::mcp
