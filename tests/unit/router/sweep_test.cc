#include "router/userspace/sweep.h"

#include <gtest/gtest.h>

// What the sweep does to connections is tested through the proxy (userspace_proxy_test.cc:
// connect timeout, idle timeout, drain); here only how often it looks.
namespace svcbox::router::userspace {
namespace {

using namespace std::chrono_literals;

TEST(SweepTick, AnEighthOfTheShortestTimeout) {
  EXPECT_EQ(Sweep::tickFor(2000ms, 300000ms, 30000ms), 250ms);
  EXPECT_EQ(Sweep::tickFor(1000ms, 300000ms, 300ms), 37ms);
}

TEST(SweepTick, NeverBusierThanTenMillisecondsNorLazierThanASecond) {
  EXPECT_EQ(Sweep::tickFor(1ms, 1ms, 1ms), 10ms);
  EXPECT_EQ(Sweep::tickFor(3600s, 3600s, 3600s), 1000ms);
}

}  // namespace
}  // namespace svcbox::router::userspace
