// LruCache: bounded, least recently used out first, hits and misses counted, thread-safe.
#include "base/lru_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace larder {
namespace {

std::shared_ptr<const int> value(int v) {
  return std::make_shared<const int>(v);
}

TEST(LruCache, KeepsTheMostRecentlyUsedWithinItsCapacity) {
  LruCache<int> cache(2);
  cache.insert("a", value(1));
  cache.insert("b", value(2));
  ASSERT_NE(cache.find("a"), nullptr);  // "a" is now the most recent
  cache.insert("c", value(3));          // evicts "b"
  EXPECT_EQ(cache.find("b"), nullptr);
  ASSERT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(*cache.find("a"), 1);
  EXPECT_EQ(*cache.find("c"), 3);
  auto s = cache.stats();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 4u);
}

TEST(LruCache, AnExistingKeyKeepsItsFirstValue) {
  LruCache<int> cache(4);
  cache.insert("k", value(1));
  cache.insert("k", value(2));
  EXPECT_EQ(*cache.find("k"), 1);
  EXPECT_EQ(cache.stats().entries, 1u);
}

TEST(LruCache, CapacityZeroCachesNothing) {
  LruCache<int> cache(0);
  cache.insert("k", value(1));
  EXPECT_EQ(cache.find("k"), nullptr);
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(LruCache, ConcurrentUseStaysBounded) {
  LruCache<int> cache(16);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = std::to_string((i * 7 + t) % 40);
        if (auto hit = cache.find(key)) {
          EXPECT_EQ(std::to_string(*hit), key);
        } else {
          cache.insert(key, value(std::stoi(key)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.stats().entries, 16u);
}

}  // namespace
}  // namespace larder
