#include "app/file_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

namespace svcbox::app {
namespace {

TEST(FitConnectionCapsTest, CapsThatFitAreLeftAlone) {
  size_t dns = 1024, admin = 64;
  EXPECT_EQ(fitConnectionCaps(65536, {{"--dns", &dns}, {"admin", &admin}}), "");
  EXPECT_EQ(dns, 1024u);
  EXPECT_EQ(admin, 64u);
}

TEST(FitConnectionCapsTest, CapsThatDoNotFitShrinkInProportionAndSaySo) {
  size_t dns = 1024, admin = 64, probes = 256;
  std::string warning =
      fitConnectionCaps(256, {{"--dns", &dns}, {"admin", &admin}, {"probes", &probes}});
  EXPECT_LE(dns + admin + probes + kReservedDescriptors, 256u);
  EXPECT_GT(dns, admin);
  EXPECT_GE(admin, 1u);
  EXPECT_THAT(warning, ::testing::HasSubstr("--dns 1024 -> " + std::to_string(dns)));
  EXPECT_THAT(warning, ::testing::HasSubstr("limit (256"));
}

TEST(FitConnectionCapsTest, NoCapFallsBelowOne) {
  size_t dns = 1024;
  EXPECT_NE(fitConnectionCaps(10, {{"--dns", &dns}}), "");
  EXPECT_EQ(dns, 1u);
}

TEST(RaiseFileLimitTest, TheSoftLimitEndsAtTheHardOne) {
  size_t limit = raiseFileLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, now.rlim_max);
  EXPECT_EQ(limit, now.rlim_cur == RLIM_INFINITY ? SIZE_MAX : now.rlim_cur);
}

}  // namespace
}  // namespace svcbox::app
