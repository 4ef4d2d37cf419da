#include "store/generation_guard.h"

#include <gtest/gtest.h>

#include <vector>

namespace svcbox::store {
namespace {

using namespace std::chrono_literals;

// The guard stepped by hand against a registry generation and a published version the test
// sets: what a stuck watcher and a moving one look like.
class GenerationGuardTest : public ::testing::Test {
 protected:
  GenerationGuard guard_{
      [this]() -> Result<uint64_t> { return generation_; },
      [this]() -> std::optional<uint64_t> { return published_; }, 1h,
      [this](const std::optional<GenerationGuard::Lag>& lag) { reports_.push_back(lag); }};
  uint64_t generation_ = 0;
  std::optional<uint64_t> published_ = 0;
  std::vector<std::optional<GenerationGuard::Lag>> reports_;
};

TEST_F(GenerationGuardTest, TwoChecksBehindWithNothingPublishedBetweenAreALag) {
  generation_ = 3;
  published_ = 2;
  guard_.check();
  EXPECT_TRUE(reports_.empty());  // one check may catch the watcher mid-load
  EXPECT_EQ(guard_.lag(), 0u);
  guard_.check();
  ASSERT_EQ(reports_.size(), 1u);
  ASSERT_TRUE(reports_[0]);
  EXPECT_EQ(reports_[0]->generation, 3u);
  EXPECT_EQ(reports_[0]->published, 2u);
  EXPECT_EQ(guard_.lag(), 1u);

  generation_ = 5;  // still stuck, further behind: reported again
  guard_.check();
  ASSERT_EQ(reports_.size(), 2u);
  EXPECT_EQ(guard_.lag(), 3u);

  published_ = 5;  // caught up: one report that it is over
  guard_.check();
  ASSERT_EQ(reports_.size(), 3u);
  EXPECT_FALSE(reports_[2]);
  EXPECT_EQ(guard_.lag(), 0u);
  guard_.check();
  EXPECT_EQ(reports_.size(), 3u);
}

TEST_F(GenerationGuardTest, AWatcherThatKeepsPublishingIsNotALag) {
  for (uint64_t step = 1; step <= 5; ++step) {
    generation_ = step * 10;
    published_ = step * 10 - 1;  // always a little behind a busy writer, but moving
    guard_.check();
  }
  EXPECT_TRUE(reports_.empty());
  EXPECT_EQ(guard_.lag(), 0u);
  EXPECT_EQ(guard_.checks(), 5u);
}

TEST_F(GenerationGuardTest, AnUnreadableRegistryOrNothingPublishedGivesNoVerdict) {
  generation_ = 9;
  published_ = std::nullopt;
  guard_.check();
  guard_.check();
  EXPECT_TRUE(reports_.empty());
}

TEST(GenerationGuardThreadTest, ItsThreadChecksEveryIntervalUntilStopped) {
  std::atomic<int> reads{0};
  GenerationGuard guard(
      [&]() -> Result<uint64_t> {
        ++reads;
        return uint64_t{7};
      },
      []() -> std::optional<uint64_t> { return 6; }, 5ms,
      [](const std::optional<GenerationGuard::Lag>&) {});
  guard.start();
  for (int i = 0; i < 2000 && guard.lag() == 0; ++i) std::this_thread::sleep_for(1ms);
  guard.stop();
  EXPECT_EQ(guard.lag(), 1u);
  int after_stop = reads.load();
  EXPECT_GE(after_stop, 2);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(reads.load(), after_stop);
}

}  // namespace
}  // namespace svcbox::store
