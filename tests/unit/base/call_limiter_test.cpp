// CallLimiter: per-key concurrency and token-bucket rate, a bounded number of keys (the least
// recently used idle one forgotten first), thread-safe. Time comes from an injected clock:
// no test sleeps.
#include "base/call_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace larder {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand.
struct FakeClock {
  CallLimiter::Clock::time_point now = CallLimiter::Clock::time_point{} + 1000h;
  CallLimiter::Now fn() {
    return [this] { return now; };
  }
};

CallLimiter::Options concurrency(std::size_t n) {
  CallLimiter::Options o;
  o.max_concurrent = n;
  return o;
}

CallLimiter::Options rate(double per_second, double burst) {
  CallLimiter::Options o;
  o.rate_per_second = per_second;
  o.burst = burst;
  return o;
}

TEST(CallLimiter, WithoutLimitsEveryCallIsAdmittedAndNothingIsTracked) {
  CallLimiter limiter(CallLimiter::Options{});
  EXPECT_FALSE(limiter.enabled());
  std::vector<CallLimiter::Permit> held;
  for (int i = 0; i < 1000; ++i) {
    held.push_back(limiter.try_acquire("k"));
    ASSERT_TRUE(held.back());
  }
  EXPECT_EQ(limiter.stats().keys, 0u);
  EXPECT_EQ(limiter.stats().admitted, 1000u);
}

TEST(CallLimiter, ADefaultPermitIsAdmittedAndHoldsNothing) {
  CallLimiter::Permit p;
  EXPECT_TRUE(p);
  EXPECT_EQ(p.refused_by(), CallLimiter::Limit::kNone);
  p.release();  // harmless
}

TEST(CallLimiter, ConcurrencyIsCountedPerKeyUntilThePermitIsReleased) {
  CallLimiter limiter(concurrency(2));
  auto a1 = limiter.try_acquire("a");
  auto a2 = limiter.try_acquire("a");
  ASSERT_TRUE(a1);
  ASSERT_TRUE(a2);
  auto a3 = limiter.try_acquire("a");
  EXPECT_FALSE(a3);
  EXPECT_EQ(a3.refused_by(), CallLimiter::Limit::kConcurrency);
  EXPECT_GE(a3.retry_after(), 1ms);

  auto b1 = limiter.try_acquire("b");  // another key is not affected
  EXPECT_TRUE(b1);

  a1.release();
  a1.release();  // idempotent: frees one slot, not two
  auto a4 = limiter.try_acquire("a");
  EXPECT_TRUE(a4);
  EXPECT_FALSE(limiter.try_acquire("a"));
  {
    auto moved = std::move(a4);  // the slot travels with the permit
    EXPECT_FALSE(limiter.try_acquire("a"));
  }  // ... and is freed when the permit is destroyed
  EXPECT_TRUE(limiter.try_acquire("a"));

  auto s = limiter.stats();
  EXPECT_EQ(s.refused_concurrency, 3u);
  EXPECT_EQ(s.refused_rate, 0u);
  EXPECT_EQ(s.keys, 2u);
}

TEST(CallLimiter, MoveAssignmentReleasesTheSlotItOverwrites) {
  CallLimiter limiter(concurrency(1));
  auto a = limiter.try_acquire("a");
  auto b = limiter.try_acquire("b");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  a = std::move(b);  // a's slot on "a" is freed, b's on "b" is now a's
  EXPECT_TRUE(limiter.try_acquire("a"));
  EXPECT_FALSE(limiter.try_acquire("b"));
}

TEST(CallLimiter, TokenBucketAllowsTheBurstThenTheRate) {
  FakeClock clock;
  CallLimiter limiter(rate(10, 3), clock.fn());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire("a")) << i;
  auto refused = limiter.try_acquire("a");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.refused_by(), CallLimiter::Limit::kRate);
  EXPECT_EQ(refused.retry_after(), 100ms);  // one token every 100 ms

  clock.now += 50ms;  // half a token
  auto half = limiter.try_acquire("a");
  EXPECT_FALSE(half);
  EXPECT_EQ(half.retry_after(), 50ms);
  clock.now += 50ms;
  EXPECT_TRUE(limiter.try_acquire("a"));
  EXPECT_FALSE(limiter.try_acquire("a"));

  clock.now += 1h;  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire("a")) << i;
  EXPECT_FALSE(limiter.try_acquire("a"));

  EXPECT_TRUE(limiter.try_acquire("b"));  // buckets are per key
  auto s = limiter.stats();
  EXPECT_EQ(s.refused_rate, 4u);
  EXPECT_EQ(s.admitted, 8u);
}

TEST(CallLimiter, AClockThatGoesBackDoesNotMintTokens) {
  FakeClock clock;
  CallLimiter limiter(rate(1, 1), clock.fn());
  EXPECT_TRUE(limiter.try_acquire("a"));
  clock.now -= 10s;
  EXPECT_FALSE(limiter.try_acquire("a"));
  clock.now += 10s;
  EXPECT_FALSE(limiter.try_acquire("a"));
  clock.now += 1s;
  EXPECT_TRUE(limiter.try_acquire("a"));
}

TEST(CallLimiter, AConcurrencyRefusalSpendsNoToken) {
  FakeClock clock;
  CallLimiter::Options o = rate(1, 2);
  o.max_concurrent = 1;
  CallLimiter limiter(o, clock.fn());
  auto held = limiter.try_acquire("a");
  ASSERT_TRUE(held);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(limiter.try_acquire("a").refused_by(), CallLimiter::Limit::kConcurrency);
  held.release();
  EXPECT_TRUE(limiter.try_acquire("a"));  // the second token of the burst is still there
  EXPECT_EQ(limiter.try_acquire("a").refused_by(), CallLimiter::Limit::kRate);
}

TEST(CallLimiter, TheLeastRecentlyUsedIdleKeyIsForgottenBeyondMaxKeys) {
  FakeClock clock;
  CallLimiter::Options o = rate(1, 1);
  o.max_keys = 2;
  CallLimiter limiter(o, clock.fn());
  EXPECT_TRUE(limiter.try_acquire("a"));
  EXPECT_TRUE(limiter.try_acquire("b"));
  EXPECT_FALSE(limiter.try_acquire("a"));  // "a" is now the most recent (and out of tokens)
  EXPECT_TRUE(limiter.try_acquire("c"));   // forgets "b"
  auto s = limiter.stats();
  EXPECT_EQ(s.keys, 2u);
  EXPECT_EQ(s.keys_forgotten, 1u);
  EXPECT_FALSE(limiter.try_acquire("a"));  // "a" was kept: still no token
  EXPECT_TRUE(limiter.try_acquire("b"));   // "b" starts afresh (and forgets "c")
  EXPECT_EQ(limiter.stats().keys_forgotten, 2u);
}

TEST(CallLimiter, AKeyWithCallsInFlightIsNeverForgotten) {
  CallLimiter::Options o = concurrency(1);
  o.max_keys = 1;
  CallLimiter limiter(o);
  auto a = limiter.try_acquire("a");
  ASSERT_TRUE(a);
  auto b = limiter.try_acquire("b");  // "a" is busy: tracked beyond max_keys rather than forgotten
  ASSERT_TRUE(b);
  EXPECT_EQ(limiter.stats().keys, 2u);
  EXPECT_FALSE(limiter.try_acquire("a"));  // its count survived
  a.release();
  b.release();
  EXPECT_TRUE(limiter.try_acquire("c"));  // back within the bound once keys are idle
  EXPECT_EQ(limiter.stats().keys, 1u);
}

TEST(CallLimiter, APermitMayOutliveItsLimiter) {
  CallLimiter::Permit p;
  {
    CallLimiter limiter(concurrency(1));
    p = limiter.try_acquire("a");
    ASSERT_TRUE(p);
  }
  p.release();
}

TEST(CallLimiter, DescribeNamesTheLimitAndItsValue) {
  FakeClock clock;
  CallLimiter::Options o = rate(100, 200);
  o.max_concurrent = 1;
  CallLimiter limiter(o, clock.fn());
  auto held = limiter.try_acquire("a");
  auto busy = limiter.try_acquire("a");
  EXPECT_EQ(limiter.describe(busy, "this client certificate"),
            "too many concurrent calls for this client certificate (limit 1)");
  held.release();
  for (int i = 0; i < 199; ++i) ASSERT_TRUE(limiter.try_acquire("a"));
  auto fast = limiter.try_acquire("a");
  EXPECT_EQ(limiter.describe(fast, "this client certificate"),
            "too many calls per second for this client certificate (limit 100/s, burst 200)");
  EXPECT_EQ(limiter.describe(held, "x"), "");
}

// A configuration reload: new limits apply to the next call; calls in flight keep their
// slots and count against the new limit; a bucket is capped at the new burst; limits can be
// turned on and off.
TEST(CallLimiter, ReconfigureAppliesToTheNextCall) {
  FakeClock clock;
  CallLimiter limiter(rate(100, 100), clock.fn());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.try_acquire("a"));
  limiter.reconfigure(rate(1, 2));
  EXPECT_TRUE(limiter.try_acquire("a"));
  EXPECT_TRUE(limiter.try_acquire("a"));
  auto refused = limiter.try_acquire("a");
  EXPECT_EQ(refused.refused_by(), CallLimiter::Limit::kRate);
  EXPECT_EQ(limiter.describe(refused, "k"), "too many calls per second for k (limit 1/s, burst 2)");

  limiter.reconfigure(concurrency(2));
  auto one = limiter.try_acquire("b");
  auto two = limiter.try_acquire("b");
  ASSERT_TRUE(one && two);
  limiter.reconfigure(concurrency(1));  // both stay in flight, and count
  EXPECT_EQ(limiter.try_acquire("b").refused_by(), CallLimiter::Limit::kConcurrency);
  one.release();
  two.release();
  EXPECT_TRUE(limiter.try_acquire("b"));

  limiter.reconfigure(CallLimiter::Options{});
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limiter.try_acquire("a"));
}

TEST(CallLimiter, ConcurrencyHoldsUnderContention) {
  constexpr std::size_t kLimit = 3;
  CallLimiter limiter(concurrency(kLimit));
  std::atomic<int> inside{0}, most{0}, admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = t % 2 == 0 ? "shared" : "other-" + std::to_string(t);
      for (int i = 0; i < 2000; ++i) {
        auto p = limiter.try_acquire(key);
        if (!p) {
          refused.fetch_add(1);
          continue;
        }
        admitted.fetch_add(1);
        if (key == "shared") {
          int now = inside.fetch_add(1) + 1;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::yield();
          inside.fetch_sub(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), static_cast<int>(kLimit));
  auto s = limiter.stats();
  EXPECT_EQ(s.admitted, static_cast<uint64_t>(admitted.load()));
  EXPECT_EQ(s.refused_concurrency, static_cast<uint64_t>(refused.load()));
  EXPECT_EQ(admitted.load() + refused.load(), 8 * 2000);
}

}  // namespace
}  // namespace larder
