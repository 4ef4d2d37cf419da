#include "router/sync_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

// The loop itself against a minimal target: what the userspace provider's DNS wait relies on,
// and what it logs when a target says its state was removed. The loop's timing is tested through
// the iptables mode (router_loop_test.cc).
namespace svcbox::router {
namespace {

using namespace std::chrono_literals;

store::SnapshotPtr snapshot(uint64_t version) {
  return std::make_shared<const store::Snapshot>(
      version, std::nullopt, std::vector<store::ServiceEntry>{}, std::vector<store::PodPtr>{},
      std::vector<store::EndpointSet>{});
}

class CountingTarget : public SyncTarget {
 public:
  bool sync(const store::SnapshotPtr&, bool full, SyncFailure& failure) override {
    ++syncs;
    full_syncs += full;
    if (fail_next.exchange(false)) {
      failure.message = "injected";
      return false;
    }
    return true;
  }
  bool stillInstalled(std::string& why_not) override {
    if (installed) return true;
    why_not = "the fake's state is gone";
    installed = true;
    return false;
  }
  std::atomic<int> syncs{0};
  std::atomic<int> full_syncs{0};
  std::atomic<bool> fail_next{false};
  std::atomic<bool> installed{true};
};

TEST(SyncLoopTest, WaitInstalledReturnsOnceTheVersionOrALaterOneIsInstalled) {
  CountingTarget target;
  RouterTiming timing;
  timing.min_interval = 1ms;
  SyncLoop loop(target, timing, nullptr, "fake state");
  SyncFailure failure;
  ASSERT_TRUE(loop.start(snapshot(1), failure));
  EXPECT_TRUE(loop.waitInstalled(1, 0ms));  // the start's sync ran on this thread
  EXPECT_FALSE(loop.waitInstalled(2, 50ms));
  loop.update(snapshot(3));  // 2 never comes: 3 satisfies a wait for 2
  EXPECT_TRUE(loop.waitInstalled(2, 5s));
  EXPECT_EQ(loop.stats().installed_version, 3u);
  loop.stop();
  EXPECT_FALSE(loop.waitInstalled(4, 5s));  // returns at once once stopped
}

TEST(SyncLoopTest, ARemovedStateIsLoggedWithTheTargetsReasonAndSyncedInFull) {
  CountingTarget target;
  RouterTiming timing;
  timing.canary_interval = 10ms;
  timing.sync_period = 1h;
  std::mutex mutex;
  std::vector<std::string> warnings;
  SyncLoop loop(
      target, timing,
      [&](LogLevel level, const std::string& line) {
        std::lock_guard lock(mutex);
        if (level == LogLevel::kWarn) warnings.push_back(line);
      },
      "fake state");
  SyncFailure failure;
  ASSERT_TRUE(loop.start(snapshot(1), failure));
  target.installed = false;
  for (int i = 0; i < 500 && target.full_syncs < 2; ++i) std::this_thread::sleep_for(10ms);
  loop.stop();
  EXPECT_EQ(target.full_syncs, 2);  // the start's, and the repair
  std::lock_guard lock(mutex);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "the fake's state is gone; full resync of the fake state");
}

TEST(SyncLoopTest, AFailedFirstSyncIsRetriedByTheLoopAndCounted) {
  CountingTarget target;
  target.fail_next = true;
  RouterTiming timing;
  timing.first_backoff = 5ms;
  SyncLoop loop(target, timing, nullptr, "fake state");
  SyncFailure failure;
  ASSERT_TRUE(loop.start(snapshot(1), failure));
  EXPECT_EQ(failure.message, "injected");
  EXPECT_TRUE(loop.waitInstalled(1, 5s));
  loop.stop();
  auto stats = loop.stats();
  EXPECT_EQ(stats.failures, 1u);
  EXPECT_EQ(stats.syncs, 1u);
  EXPECT_EQ(stats.last_failure, "injected");
  EXPECT_EQ(target.full_syncs, 2);
}

}  // namespace
}  // namespace svcbox::router
