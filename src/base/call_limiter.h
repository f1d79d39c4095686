// CallLimiter: per-key limits on calls in flight (concurrency) and on calls per second (a
// token bucket with a burst), for any key a caller names — a client certificate's SHA-256,
// a token lineage. Thread-safe. The number of keys tracked is bounded: beyond `max_keys` the
// least recently used key with no call in flight is forgotten (its bucket starts full again
// if it comes back); a key with calls in flight is never forgotten, so its count cannot be
// reset, and the bound is exceeded only while more keys than that are busy at once.
//
//   CallLimiter limiter({.max_concurrent = 16, .rate_per_second = 100, .burst = 200});
//   auto permit = limiter.try_acquire(key);
//   if (!permit) return refuse(limiter.describe(permit, "this client certificate"), permit.retry_after());
//   ... run the call; the slot is freed when `permit` is released or destroyed ...
//
// A refusal for concurrency spends no token; a refusal for rate takes no slot.
// reconfigure() changes the limits of a running limiter (a configuration reload): calls in
// flight keep their slots and count against the new concurrency limit; buckets are capped at
// the new burst.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace larder {

class CallLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;  // injectable for tests

  struct Options {
    std::size_t max_concurrent = 0;  // calls of one key in flight at once; 0 = no limit
    double rate_per_second = 0;      // sustained calls per second of one key; 0 = no limit
    double burst = 1;                // bucket size: calls a rested key may make at once (>= 1)
    std::size_t max_keys = 10000;    // keys tracked (>= 1)
  };

  enum class Limit { kNone, kConcurrency, kRate };

 private:
  struct Entry {
    std::string key;
    std::atomic<std::size_t> in_flight{0};
    double tokens = 0;  // guarded by the limiter's mutex
    Clock::time_point refilled{};
  };

 public:
  // The answer of try_acquire. Admitted: holds one concurrency slot of its key until
  // release() or destruction (move-only). Refused: says which limit and when to try again.
  // A default-constructed Permit is admitted and holds nothing (for "no limit applies").
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept { *this = std::move(other); }
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        release();
        entry_ = std::move(other.entry_);
        refused_ = std::exchange(other.refused_, Limit::kNone);
        retry_after_ = other.retry_after_;
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

    bool admitted() const { return refused_ == Limit::kNone; }
    explicit operator bool() const { return admitted(); }
    Limit refused_by() const { return refused_; }
    // When refused: how long until a retry may be admitted (for concurrency, a hint).
    std::chrono::milliseconds retry_after() const { return retry_after_; }
    // Ends the call's hold on its slot; idempotent. The entry outlives the limiter if needed.
    void release() {
      if (auto e = std::move(entry_)) e->in_flight.fetch_sub(1, std::memory_order_acq_rel);
    }

   private:
    friend class CallLimiter;
    std::shared_ptr<Entry> entry_;
    Limit refused_ = Limit::kNone;
    std::chrono::milliseconds retry_after_{0};
  };

  explicit CallLimiter(Options options, Now now = nullptr)
      : options_(normalized(options)), now_(std::move(now)), enabled_(is_enabled(options_)) {
    if (!now_) now_ = [] { return Clock::now(); };
  }
  CallLimiter(const CallLimiter&) = delete;
  CallLimiter& operator=(const CallLimiter&) = delete;

  Options options() const {
    std::lock_guard lock(mu_);
    return options_;
  }
  bool enabled() const { return enabled_.load(std::memory_order_acquire); }

  // New limits from now on (see above); keys already tracked keep their calls in flight.
  void reconfigure(Options options) {
    std::lock_guard lock(mu_);
    options_ = normalized(options);
    for (auto& entry : order_) entry->tokens = std::min(entry->tokens, options_.burst);
    enabled_.store(is_enabled(options_), std::memory_order_release);
  }

  Permit try_acquire(std::string_view key) {
    Permit permit;
    if (!enabled()) {
      admitted_.fetch_add(1, std::memory_order_relaxed);
      return permit;
    }
    std::lock_guard lock(mu_);
    if (!is_enabled(options_)) {  // reconfigured meanwhile
      admitted_.fetch_add(1, std::memory_order_relaxed);
      return permit;
    }
    std::shared_ptr<Entry> entry = lookup(key);
    if (options_.max_concurrent > 0 &&
        entry->in_flight.load(std::memory_order_acquire) >= options_.max_concurrent) {
      ++refused_concurrency_;
      permit.refused_ = Limit::kConcurrency;
      permit.retry_after_ = std::chrono::seconds(1);
      return permit;
    }
    if (options_.rate_per_second > 0) {
      const Clock::time_point now = now_();
      if (now > entry->refilled) {
        const double elapsed = std::chrono::duration<double>(now - entry->refilled).count();
        entry->tokens = std::min(options_.burst, entry->tokens + elapsed * options_.rate_per_second);
        entry->refilled = now;
      }
      if (entry->tokens < 1.0) {
        ++refused_rate_;
        permit.refused_ = Limit::kRate;
        const double wait_ms = std::ceil((1.0 - entry->tokens) * 1000.0 / options_.rate_per_second);
        permit.retry_after_ = std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, wait_ms)));
        return permit;
      }
      entry->tokens -= 1.0;
    }
    entry->in_flight.fetch_add(1, std::memory_order_acq_rel);
    permit.entry_ = std::move(entry);
    admitted_.fetch_add(1, std::memory_order_relaxed);
    return permit;
  }

  // The refusal in words, naming the limit and its value: "too many concurrent calls for
  // <subject> (limit 16)", "too many calls per second for <subject> (limit 100/s, burst
  // 200)". Empty for an admitted permit.
  std::string describe(const Permit& permit, std::string_view subject) const {
    std::lock_guard lock(mu_);
    switch (permit.refused_by()) {
      case Limit::kNone:
        return {};
      case Limit::kConcurrency:
        return "too many concurrent calls for " + std::string(subject) + " (limit " +
               std::to_string(options_.max_concurrent) + ")";
      case Limit::kRate:
        return "too many calls per second for " + std::string(subject) + " (limit " +
               number(options_.rate_per_second) + "/s, burst " + number(options_.burst) + ")";
    }
    return {};
  }

  struct Stats {
    std::uint64_t admitted = 0;
    std::uint64_t refused_concurrency = 0;
    std::uint64_t refused_rate = 0;
    std::uint64_t keys_forgotten = 0;  // idle keys dropped to stay within max_keys
    std::size_t keys = 0;              // keys tracked now
  };
  Stats stats() const {
    std::lock_guard lock(mu_);
    return Stats{admitted_.load(std::memory_order_relaxed), refused_concurrency_, refused_rate_, forgotten_,
                 order_.size()};
  }

 private:
  using Order = std::list<std::shared_ptr<Entry>>;  // most recently used first

  // The key's entry, now the most recent; a new key starts with a full bucket and may make
  // room by forgetting the least recently used idle keys.
  std::shared_ptr<Entry> lookup(std::string_view key) {
    if (auto it = index_.find(key); it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return *it->second;
    }
    while (order_.size() >= options_.max_keys) {
      auto victim = std::find_if(order_.rbegin(), order_.rend(), [](const std::shared_ptr<Entry>& e) {
        return e->in_flight.load(std::memory_order_acquire) == 0;
      });
      if (victim == order_.rend()) break;  // every key is busy: exceed the bound rather than reset one
      index_.erase((*victim)->key);
      order_.erase(std::next(victim).base());
      ++forgotten_;
    }
    auto entry = std::make_shared<Entry>();
    entry->key = std::string(key);
    entry->tokens = options_.burst;
    entry->refilled = now_();
    order_.push_front(entry);
    index_.emplace(entry->key, order_.begin());
    return entry;
  }

  static Options normalized(Options o) {
    o.burst = std::max(1.0, o.burst);
    o.rate_per_second = std::max(0.0, o.rate_per_second);
    o.max_keys = std::max<std::size_t>(1, o.max_keys);
    return o;
  }
  static bool is_enabled(const Options& o) { return o.max_concurrent > 0 || o.rate_per_second > 0; }

  static std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };

  Options options_;  // guarded by mu_
  Now now_;
  std::atomic<bool> enabled_;
  mutable std::mutex mu_;
  Order order_;
  std::unordered_map<std::string, Order::iterator, Hash, std::equal_to<>> index_;
  std::atomic<std::uint64_t> admitted_{0};
  std::uint64_t refused_concurrency_ = 0, refused_rate_ = 0, forgotten_ = 0;
};

}  // namespace larder
