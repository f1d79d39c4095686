// A bounded, thread-safe least-recently-used map: the verified-token cache of lock 2 and the
// SQL guard's verdict cache. Values are shared, immutable results (shared_ptr<const T>), so a
// hit hands out the cached object without copying it under the lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace larder {

template <typename Value>
class LruCache {
 public:
  using Ptr = std::shared_ptr<const Value>;

  explicit LruCache(std::size_t capacity) : capacity_(capacity) {}
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // The cached value (now the most recent), or null; counts the hit or miss. The key is not
  // copied: a hit costs no allocation.
  Ptr find(std::string_view key) const {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) {
      ++misses_;
      return nullptr;
    }
    order_.splice(order_.begin(), order_, it->second);
    ++hits_;
    return it->second->second;
  }

  // Adds `value` unless `key` is present; the least recently used entries beyond the capacity
  // are dropped. A capacity of 0 caches nothing.
  void insert(const std::string& key, Ptr value) {
    if (capacity_ == 0) return;
    std::lock_guard lock(mu_);
    if (index_.count(key) != 0) return;
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    while (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  struct Stats {
    std::uint64_t hits = 0, misses = 0;
    std::size_t entries = 0;
  };
  Stats stats() const {
    std::lock_guard lock(mu_);
    return Stats{hits_, misses_, order_.size()};
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  mutable std::list<std::pair<std::string, Ptr>> order_;  // most recent first
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  std::unordered_map<std::string, typename std::list<std::pair<std::string, Ptr>>::iterator, Hash,
                     std::equal_to<>>
      index_;
  mutable std::uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace larder
