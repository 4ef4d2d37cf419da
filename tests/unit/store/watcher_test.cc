#include "store/watcher.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "tests/unit/temp_dir.h"

namespace svcbox::store {
namespace {

using namespace std::chrono_literals;

Service service(const std::string& name) {
  Service service;
  service.name = name;
  service.selector = Labels{{"app", name}};
  service.ports = {ServicePort{"", Protocol::kTcp, 80, PortRef{80, {}}}};
  return service;
}

TEST(WatcherTest, PublishesCommitsMadeThroughAnotherConnection) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  std::mutex mutex;
  std::condition_variable published;
  std::vector<uint64_t> versions;
  Watcher watcher(
      std::move(*Registry::open(dir.file("r.db"))), 5ms,
      [&](const SnapshotPtr&, const SnapshotPtr& current) {
        std::lock_guard lock(mutex);
        versions.push_back(current->version());
        published.notify_all();
      },
      nullptr);
  ASSERT_TRUE(watcher.start());
  EXPECT_EQ(watcher.current()->version(), 0u);

  ASSERT_TRUE(writer->apply({service("a")}, {}));
  {
    std::unique_lock lock(mutex);
    // Generous bound (the goal is 50 ms; the benchmark measures it).
    ASSERT_TRUE(published.wait_for(lock, 2s, [&] { return versions.size() == 2; }));
  }
  EXPECT_EQ(watcher.current()->version(), 1u);
  EXPECT_NE(watcher.current()->findService("default", "a"), nullptr);

  // A no-op apply commits nothing new: no new snapshot.
  ASSERT_TRUE(writer->apply({service("a")}, {}));
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(mutex);
  EXPECT_EQ(versions.size(), 2u);
  watcher.stop();
}

}  // namespace
}  // namespace svcbox::store
