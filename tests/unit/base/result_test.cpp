#include "base/result.h"

#include <gtest/gtest.h>

namespace larder {
namespace {

Result<int> parse_port(int raw) {
  if (raw <= 0 || raw > 65535) return make_error("config.port", "port must be 1..65535");
  return raw;
}

TEST(Result, CarriesValueOrError) {
  auto good = parse_port(8443);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 8443);
  auto bad = parse_port(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "config.port");
}

TEST(Result, VoidResult) {
  Result<void> fine;
  EXPECT_TRUE(fine.ok());
  Result<void> broken = make_error("x", "y");
  EXPECT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().message, "y");
}

}  // namespace
}  // namespace larder
