#include "app/snapshot_fanout.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

// serve's fan-out against fake consumers: the stated order, the first snapshot's start, the
// listeners DNS waits for, and a busy consumer never blocking the watcher's thread.
namespace svcbox::app {
namespace {

using namespace std::chrono_literals;

store::SnapshotPtr snapshot(uint64_t version) {
  return std::make_shared<const store::Snapshot>(
      version, std::nullopt, std::vector<store::ServiceEntry>{}, std::vector<store::PodPtr>{},
      std::vector<store::EndpointSet>{});
}

// Every consumer's calls in one journal, in the order they were made.
class Journal {
 public:
  void add(std::string entry) {
    std::lock_guard lock(mutex_);
    entries_.push_back(std::move(entry));
    changed_.notify_all();
  }
  std::vector<std::string> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  // Waits (bounded) until `entry` was added.
  bool waitFor(const std::string& entry, std::chrono::milliseconds bound = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, bound, [&] {
      return std::find(entries_.begin(), entries_.end(), entry) != entries_.end();
    });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> entries_;
};

class FakeProvider : public router::Provider {
 public:
  explicit FakeProvider(Journal& journal) : journal_(journal) {}
  std::string mode() const override { return "fake"; }
  bool canRun(router::SyncFailure&) const override { return true; }
  bool start(const store::SnapshotPtr& first, router::SyncFailure& failure) override {
    journal_.add("start " + std::to_string(first->version()));
    if (refuse_start) {
      failure.message = "no CAP_NET_ADMIN";
      failure.permission_denied = true;
      return false;
    }
    return true;
  }
  void update(const store::SnapshotPtr& snapshot) override {
    journal_.add("update " + std::to_string(snapshot->version()));
  }
  void requestFullSync() override {}
  void stop() override {}
  bool cleanup(router::SyncFailure&, bool& changed) override {
    changed = false;
    return true;
  }
  router::ProviderStats stats() const override { return {}; }
  bool installedRules(std::vector<std::string>&, router::SyncFailure&) const override {
    return true;
  }
  bool dnsAnswersListeners() const override { return answers_for_dns; }
  std::vector<router::userspace::PortMapping> listenersFor(const store::Snapshot& s) override {
    journal_.add("listeners " + std::to_string(s.version()));
    router::userspace::PortMapping port;
    port.name = "web";
    port.listen_port = static_cast<uint16_t>(20000 + s.version());
    return {port};
  }
  void setOnSynced(std::function<void(const store::SnapshotPtr&)>) override {}

  bool refuse_start = false;
  bool answers_for_dns = false;

 private:
  Journal& journal_;
};

class SnapshotFanOutTest : public ::testing::Test {
 protected:
  SnapshotConsumers consumers(FakeProvider* provider) {
    SnapshotConsumers out;
    out.provider = provider;
    out.dns = [this](const store::SnapshotPtr& previous, const store::SnapshotPtr& current,
                     const std::vector<router::userspace::PortMapping>* listeners) {
      std::string entry = "dns " + std::to_string(current->version()) + " after " +
                          (previous ? std::to_string(previous->version()) : "none");
      if (listeners) entry += " port " + std::to_string(listeners->at(0).listen_port);
      {
        std::unique_lock lock(gate_mutex_);
        gate_.wait_for(lock, 10s, [&] { return current->version() != held_version_; });
      }
      journal_.add(entry);
    };
    out.prober = [this](const store::SnapshotPtr& current) {
      journal_.add("prober " + std::to_string(current->version()));
    };
    out.after = [this](const store::SnapshotPtr&, const store::SnapshotPtr& current) {
      journal_.add("log " + std::to_string(current->version()));
    };
    return out;
  }
  // DNS stalls on this version until release() (bounded: 10 s).
  void hold(uint64_t version) {
    std::lock_guard lock(gate_mutex_);
    held_version_ = version;
  }
  void release() {
    {
      std::lock_guard lock(gate_mutex_);
      held_version_ = 0;
    }
    gate_.notify_all();
  }

  Journal journal_;
  std::mutex gate_mutex_;
  std::condition_variable gate_;
  uint64_t held_version_ = 0;
};

TEST_F(SnapshotFanOutTest, TheFirstSnapshotStartsTheProviderAfterDnsAndLaterOnesUpdateItFirst) {
  FakeProvider provider(journal_);
  SnapshotFanOut fanout(consumers(&provider));
  fanout.offer(nullptr, snapshot(1));
  // The first one is handed over on the caller's thread: all of it is done when offer returns.
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"dns 1 after none", "start 1", "prober 1", "log 1"}));
  ASSERT_TRUE(fanout.handedOver());
  EXPECT_EQ(fanout.handedOver()->version(), 1u);
  fanout.offer(snapshot(1), snapshot(2));
  ASSERT_TRUE(journal_.waitFor("log 2"));
  fanout.stop();
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"dns 1 after none", "start 1", "prober 1", "log 1",
                                      "update 2", "dns 2 after 1", "prober 2", "log 2"}));
  EXPECT_EQ(fanout.handedOver()->version(), 2u);
  EXPECT_FALSE(fanout.startFailure());
}

TEST_F(SnapshotFanOutTest, WhereDnsAnswersTheProvidersListenersItWaitsForThem) {
  FakeProvider provider(journal_);
  provider.answers_for_dns = true;
  SnapshotFanOut fanout(consumers(&provider));
  fanout.offer(nullptr, snapshot(1));
  fanout.offer(snapshot(1), snapshot(2));
  ASSERT_TRUE(journal_.waitFor("log 2"));
  fanout.stop();
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"start 1", "listeners 1", "dns 1 after none port 20001",
                                      "prober 1", "log 1", "update 2", "listeners 2",
                                      "dns 2 after 1 port 20002", "prober 2", "log 2"}));
}

TEST_F(SnapshotFanOutTest, ABusyConsumerNeitherBlocksTheWatcherNorSeesEverySnapshotOfABurst) {
  FakeProvider provider(journal_);
  SnapshotFanOut fanout(consumers(&provider));
  fanout.offer(nullptr, snapshot(1));
  hold(2);
  fanout.offer(snapshot(1), snapshot(2));
  ASSERT_TRUE(journal_.waitFor("update 2"));  // the fan-out thread is now inside DNS, held
  // These return while DNS is held: the watcher's thread never waits for a consumer.
  for (uint64_t version = 3; version <= 9; ++version) {
    fanout.offer(snapshot(version - 1), snapshot(version));
  }
  EXPECT_EQ(fanout.handedOver()->version(), 1u);
  release();
  ASSERT_TRUE(journal_.waitFor("log 9"));
  fanout.stop();
  auto entries = journal_.entries();
  // The burst 3..8 was coalesced: the next hand-over after 2 is 9, told it follows 2.
  EXPECT_EQ(std::count(entries.begin(), entries.end(), "dns 9 after 2"), 1);
  for (uint64_t version = 3; version <= 8; ++version) {
    EXPECT_EQ(std::count(entries.begin(), entries.end(), "update " + std::to_string(version)), 0)
        << version;
  }
  EXPECT_EQ(fanout.handedOver()->version(), 9u);
}

TEST_F(SnapshotFanOutTest, AMissingCapabilityAtTheFirstSyncIsReportedToServe) {
  FakeProvider provider(journal_);
  provider.refuse_start = true;
  SnapshotFanOut fanout(consumers(&provider));
  fanout.offer(nullptr, snapshot(1));
  auto failure = fanout.startFailure();
  ASSERT_TRUE(failure);
  EXPECT_TRUE(failure->permission_denied);
  EXPECT_EQ(failure->message, "no CAP_NET_ADMIN");
}

TEST_F(SnapshotFanOutTest, WithoutAProviderDnsAndTheRestStillFollowAndNothingRunsAfterStop) {
  SnapshotFanOut fanout(consumers(nullptr));
  fanout.offer(nullptr, snapshot(1));
  fanout.offer(snapshot(1), snapshot(2));
  ASSERT_TRUE(journal_.waitFor("log 2"));
  fanout.stop();
  fanout.offer(snapshot(2), snapshot(3));
  EXPECT_EQ(journal_.entries(), (std::vector<std::string>{"dns 1 after none", "prober 1", "log 1",
                                                          "dns 2 after 1", "prober 2", "log 2"}));
}

}  // namespace
}  // namespace svcbox::app
