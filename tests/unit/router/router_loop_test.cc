#include "router/router.h"

#include "router/chain_names.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

// The loop against a fake rule backend: coalescing, retry after failure, periodic and canary
// resyncs. Time bounds are generous (a busy machine must not fail them); counts are what matter.
namespace svcbox::router {
namespace {

using namespace std::chrono_literals;

struct Call {
  std::string table;
  bool full;
  size_t chains;
  std::optional<std::vector<std::string>> changed_chains;  // the router's hint, if it gave one
};

class FakeWriter : public TableWriter {
 public:
  struct State {
    std::mutex mutex;
    std::vector<Call> calls;
    int failures_left = 0;
    bool canary = true;
  };
  explicit FakeWriter(std::shared_ptr<State> state) : state_(std::move(state)) {}

  bool sync(const Table& desired, bool full, const std::vector<std::string>* changed_chains,
            TableSyncStats&, SyncFailure& failure) override {
    std::lock_guard lock(state_->mutex);
    if (state_->failures_left > 0) {
      --state_->failures_left;
      failure.message = "injected failure";
      return false;
    }
    state_->calls.push_back({desired.name, full, desired.chains.size(),
                             changed_chains ? std::optional(*changed_chains) : std::nullopt});
    if (desired.name == "mangle") state_->canary = true;  // a sync recreates it
    return true;
  }
  bool chainExists(const std::string&, const std::string&, SyncFailure&) override {
    std::lock_guard lock(state_->mutex);
    return state_->canary;
  }

 private:
  std::shared_ptr<State> state_;
};

// A snapshot with `services` Services of one ready endpoint each: the nat table then holds
// 3 + services chains, which tells which snapshot a sync wrote.
store::SnapshotPtr snapshotWith(uint64_t version, int services) {
  std::vector<store::ServiceEntry> entries;
  for (int i = 0; i < services; ++i) {
    store::ServiceEntry entry;
    entry.service.name = "s" + std::to_string(i);
    entry.service.cluster_ip = store::IpAddress::parse("10.96.0." + std::to_string(i + 1));
    entry.service.ports = {{"", store::Protocol::kTcp, 80, {8080, ""}}};
    entry.endpoints = {{*store::IpAddress::parse("10.244.0.2"), true, "", "", {8080}}};
    entries.push_back(std::move(entry));
  }
  return std::make_shared<const store::Snapshot>(version, std::nullopt, std::move(entries),
                                                 std::vector<store::Pod>{},
                                                 std::vector<store::EndpointSet>{});
}

class RouterLoopTest : public ::testing::Test {
 protected:
  std::unique_ptr<Router> makeRouter(RouterTiming timing) {
    return std::make_unique<Router>(
        RouterOptions{}, timing, [](LogLevel, const std::string&) {},
        std::make_unique<FakeWriter>(state_));
  }
  std::vector<Call> natCalls() {
    std::lock_guard lock(state_->mutex);
    std::vector<Call> nat;
    for (const auto& call : state_->calls) {
      if (call.table == "nat") nat.push_back(call);
    }
    return nat;
  }
  // Waits (bounded) until `predicate` holds for the nat calls.
  template <typename Predicate>
  bool waitFor(Predicate predicate, std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate(natCalls())) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::shared_ptr<FakeWriter::State> state_ = std::make_shared<FakeWriter::State>();
};

TEST_F(RouterLoopTest, ABurstOfSnapshotsIsCoalescedAndTheLastOneWins) {
  RouterTiming timing;
  timing.min_interval = 200ms;
  auto router = makeRouter(timing);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure)) << failure.message;
  for (int version = 2; version <= 30; ++version) router->update(snapshotWith(version, version));
  ASSERT_TRUE(
      waitFor([](const auto& calls) { return !calls.empty() && calls.back().chains == 33; }));
  std::this_thread::sleep_for(300ms);  // nothing more is pending
  auto calls = natCalls();
  // The first sync at start, then one (at most two, if the burst straddled the interval) more.
  EXPECT_LE(calls.size(), 3u);
  EXPECT_TRUE(calls.front().full);  // a start adopts whatever the kernel holds
  EXPECT_FALSE(calls.back().full);
  router->stop();
}

TEST_F(RouterLoopTest, AFailedSyncIsRetriedInFullAfterABackoff) {
  RouterTiming timing;
  timing.min_interval = 1ms;
  timing.first_backoff = 20ms;
  auto router = makeRouter(timing);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  {
    std::lock_guard lock(state_->mutex);
    state_->failures_left = 2;
  }
  router->update(snapshotWith(2, 2));
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() == 2; }));
  auto calls = natCalls();
  EXPECT_TRUE(calls[1].full);
  EXPECT_EQ(calls[1].chains, 5u);
  EXPECT_EQ(router->failureCount(), 2u);
  router->stop();
}

TEST_F(RouterLoopTest, PeriodicAndCanaryResyncsAreFull) {
  RouterTiming timing;
  timing.sync_period = 100ms;
  timing.canary_interval = 1h;
  auto router = makeRouter(timing);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() >= 3; }));
  for (const auto& call : natCalls()) EXPECT_TRUE(call.full);
  router->stop();

  state_->calls.clear();
  timing.sync_period = 1h;
  timing.canary_interval = 50ms;
  router = makeRouter(timing);
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  {
    std::lock_guard lock(state_->mutex);
    state_->canary = false;  // someone flushed the tables
  }
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() >= 2; }));
  EXPECT_TRUE(natCalls()[1].full);
  router->stop();
}

// bench/hostile/soak found it: with a change every 200 ms, each partial sync pushed the period on
// and in ten minutes no periodic repair ran.
TEST_F(RouterLoopTest, SteadyChurnDoesNotPostponeThePeriodicFullResync) {
  RouterTiming timing;
  timing.sync_period = 150ms;
  timing.min_interval = 1ms;
  timing.canary_interval = 1h;
  auto router = makeRouter(timing);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  auto full_syncs = [this] {
    size_t full = 0;
    for (const auto& call : natCalls()) full += call.full;
    return full;
  };
  // A change every 20 ms for at most 2 s, until a second full sync (the first is the start's).
  for (int version = 2; version < 100 && full_syncs() < 2; ++version) {
    router->update(snapshotWith(version, 1 + version % 3));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(full_syncs(), 2u);
  EXPECT_GT(natCalls().size(), full_syncs()) << "no partial sync ran: the test proves nothing";
  router->stop();
}

TEST_F(RouterLoopTest, StatsAndTheSyncedHookFollowEachSuccessfulSync) {
  RouterTiming timing;
  timing.min_interval = 1ms;
  timing.first_backoff = 10ms;
  auto router = makeRouter(timing);
  std::mutex mutex;
  std::vector<uint64_t> installed;
  router->setOnSynced([&](const store::SnapshotPtr& snapshot) {
    std::lock_guard lock(mutex);
    installed.push_back(snapshot->version());
  });
  EXPECT_FALSE(router->stats().installed_version);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  {
    std::lock_guard lock(state_->mutex);
    state_->failures_left = 1;
  }
  router->update(snapshotWith(7, 2));
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() == 2; }));
  // The hook runs after the writer returned: wait for it too (bounded).
  for (int i = 0; i < 500 && router->stats().installed_version != 7u; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  RouterStats stats = router->stats();
  EXPECT_EQ(stats.syncs, 2u);
  EXPECT_EQ(stats.failures, 1u);
  uint64_t observed = 0;
  for (uint64_t count : stats.duration_counts) observed += count;
  EXPECT_EQ(observed, 3u);  // failed syncs are timed too
  EXPECT_GT(stats.last_sync_ms, 0);
  ASSERT_EQ(stats.installed_version, 7u);
  ASSERT_EQ(stats.tables.size(), 3u);
  EXPECT_EQ(stats.tables[0].table, "nat");
  EXPECT_EQ(stats.tables[0].chains, 5u);  // 3 + one per Service, as snapshotWith says
  EXPECT_GT(stats.tables[0].rules, stats.tables[0].chains);
  EXPECT_EQ(stats.tables[2].table, "mangle");
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(installed, (std::vector<uint64_t>{1, 7}));
  }
  EXPECT_DOUBLE_EQ(syncDurationBound(0), 0.001);
  EXPECT_DOUBLE_EQ(syncDurationBound(14), 16.384);
  router->stop();
}

TEST_F(RouterLoopTest, AnEndpointChangeTellsTheWriterWhichChainsMoved) {
  RouterTiming timing;
  timing.min_interval = 1ms;
  auto router = makeRouter(timing);
  auto first = snapshotWith(1, 3);
  SyncFailure failure;
  ASSERT_TRUE(router->start(first, failure));
  // The same entries but the second one's, as the registry shares them between snapshots.
  auto entries = first->sharedServices();
  auto moved = *entries[1];
  moved.endpoints.push_back({*store::IpAddress::parse("10.244.0.3"), true, "", "", {8080}});
  entries[1] = std::make_shared<const store::ServiceEntry>(moved);
  router->update(std::make_shared<const store::Snapshot>(2, std::nullopt, entries, first->pods(),
                                                         first->endpointSets(), 0, first.get()));
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() == 2; }));
  router->stop();
  std::lock_guard lock(state_->mutex);
  ASSERT_EQ(state_->calls.size(), 6u);  // nat, filter, mangle at start, then again
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(state_->calls[i].changed_chains);
  ASSERT_TRUE(state_->calls[3].changed_chains);
  // snapshotWith's Services: namespace default, port 80 unnamed.
  EXPECT_EQ(*state_->calls[3].changed_chains,
            std::vector<std::string>{serviceChainName("default/s1:80/TCP")});
  EXPECT_EQ(state_->calls[4].changed_chains, std::vector<std::string>{});
  EXPECT_EQ(state_->calls[5].changed_chains, std::vector<std::string>{});
}

TEST_F(RouterLoopTest, AFullSyncRequestRewritesEverythingAtOnce) {
  RouterTiming timing;
  timing.sync_period = 1h;
  timing.canary_interval = 1h;
  auto router = makeRouter(timing);
  SyncFailure failure;
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  router->requestFullSync();
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() == 2; }));
  EXPECT_TRUE(natCalls()[1].full);
  router->stop();
}

TEST_F(RouterLoopTest, FailuresInARowAreCountedWithTheLastReasonUntilASyncSucceeds) {
  RouterTiming timing;
  timing.first_backoff = 1ms;
  timing.max_backoff = 4ms;
  auto router = makeRouter(timing);
  {
    std::lock_guard lock(state_->mutex);
    state_->failures_left = 5;
  }
  SyncFailure failure;
  // Not a missing capability: start() succeeds and the loop retries.
  ASSERT_TRUE(router->start(snapshotWith(1, 1), failure));
  EXPECT_EQ(router->stats().syncs, 0u);
  EXPECT_EQ(router->stats().failures_in_row, 1u);
  EXPECT_EQ(router->stats().last_failure, "nat table: injected failure");
  ASSERT_TRUE(waitFor([](const auto& calls) { return calls.size() == 1; }));
  router->stop();
  RouterStats stats = router->stats();
  EXPECT_EQ(stats.failures, 5u);
  EXPECT_EQ(stats.failures_in_row, 0u);
  EXPECT_EQ(stats.syncs, 1u);
}

TEST(RouterTimingTest, RetriesStartAt100MsAndDoubleToFiveSeconds) {
  RouterTiming timing;
  EXPECT_EQ(timing.first_backoff, 100ms);
  EXPECT_EQ(timing.max_backoff, 5s);
}

}  // namespace
}  // namespace svcbox::router
