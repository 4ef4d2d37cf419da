#include "store/watcher.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>

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
  SnapshotPtr last;
  Watcher watcher(
      std::move(*Registry::open(dir.file("r.db"))), 5ms,
      [&](const SnapshotPtr&, const SnapshotPtr& current) {
        std::lock_guard lock(mutex);
        versions.push_back(current->version());
        last = current;
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
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(last->version(), 1u);
    EXPECT_NE(last->findService("default", "a"), nullptr);
  }

  // A no-op apply commits nothing new: no new snapshot.
  ASSERT_TRUE(writer->apply({service("a")}, {}));
  std::this_thread::sleep_for(50ms);
  std::lock_guard lock(mutex);
  EXPECT_EQ(versions.size(), 2u);
  watcher.stop();
}

Pod pod(const std::string& name, int index) {
  Pod pod;
  pod.name = name;
  pod.labels = {{"app", "bulk"}};
  pod.ips = {*IpAddress::parse("10.244." + std::to_string(index / 250) + "." +
                               std::to_string(index % 250 + 2))};
  return pod;
}

// A watcher running on its own connection, and what it published, so a test can wait for a
// version (bounded) instead of sleeping.
class RunningWatcher {
 public:
  explicit RunningWatcher(const std::string& path)
      : watcher_(
            std::move(*Registry::open(path)), 5ms,
            [this](const SnapshotPtr&, const SnapshotPtr& current) {
              std::lock_guard lock(mutex_);
              ++published_;
              latest_ = current->version();
              snapshot_ = current;
              changed_.notify_all();
            },
            [this](const Error& error) {
              std::lock_guard lock(mutex_);
              errors_.push_back(error);
              changed_.notify_all();
            }) {}
  Status start() { return watcher_.start(); }
  // The version published within a generous bound, or the last one seen.
  uint64_t waitForVersion(uint64_t version) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 10s, [&] { return latest_ >= version; });
    return latest_;
  }
  std::vector<Error> waitForError() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 10s, [&] { return !errors_.empty(); });
    return errors_;
  }
  size_t published() {
    std::lock_guard lock(mutex_);
    return published_;
  }
  // The last snapshot handed to OnSnapshot (watcher.current() follows once it returns).
  SnapshotPtr snapshot() {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }
  Watcher& watcher() { return watcher_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t latest_ = 0;
  size_t published_ = 0;
  SnapshotPtr snapshot_;
  std::vector<Error> errors_;
  Watcher watcher_;
};

// A meta row edited by hand used to throw out of loadSnapshot and end the watcher's thread.
TEST(WatcherFaultTest, AMetaRowEditedByHandIsCountedAndTheLastSnapshotKeptUntilItIsMended) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  ASSERT_TRUE(writer->apply({service("a")}, {}));
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());
  ASSERT_EQ(watching.watcher().current()->version(), 1u);

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("r.db").c_str(), &other), SQLITE_OK);
  auto exec = [&](const char* sql) {
    return sqlite3_exec(other, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  };
  ASSERT_TRUE(exec("UPDATE meta SET value = 'x' WHERE key = 'committed_ms'"));
  auto errors = watching.waitForError();
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors.front().message.find("committed_ms"), std::string::npos);
  EXPECT_GE(watching.watcher().errorCount(), 1u);
  EXPECT_EQ(watching.watcher().current()->version(), 1u);

  ASSERT_TRUE(exec("UPDATE meta SET value = '0' WHERE key = 'committed_ms'"));
  ASSERT_TRUE(writer->apply({service("b")}, {}));
  EXPECT_EQ(watching.waitForVersion(2), 2u);
  EXPECT_NE(watching.snapshot()->findService("default", "b"), nullptr);
  sqlite3_close(other);
}

// Every bulk apply used to come before serve started; one of more than 512 changed rows left
// the watcher's connection in a read transaction, and it never saw another commit.
class BulkChangeTest : public ::testing::TestWithParam<size_t> {};

TEST_P(BulkChangeTest, ABulkCommitToARunningWatcherIsSeenAndSoIsTheNextOneObjectChange) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());

  std::vector<Object> bulk;
  for (size_t i = 0; i < GetParam(); ++i)
    bulk.emplace_back(std::in_place_type<Service>, service("bulk-" + std::to_string(i)));
  ASSERT_TRUE(writer->apply(bulk, {}));
  ASSERT_EQ(watching.waitForVersion(1), 1u);
  EXPECT_EQ(watching.snapshot()->services().size(), GetParam());

  ASSERT_TRUE(writer->apply({service("one-more")}, {}));
  ASSERT_EQ(watching.waitForVersion(2), 2u);
  EXPECT_NE(watching.snapshot()->findService("default", "one-more"), nullptr);

  ASSERT_TRUE(writer->remove({ObjectRef{ObjectKind::kService, "default", "bulk-0"}}));
  ASSERT_EQ(watching.waitForVersion(3), 3u);
  EXPECT_EQ(watching.snapshot()->findService("default", "bulk-0"), nullptr);
  EXPECT_EQ(watching.watcher().errorCount(), 0u);
}

INSTANTIATE_TEST_SUITE_P(AroundTheFullReloadThreshold, BulkChangeTest,
                         ::testing::Values(511, 512, 513, 10000));

TEST(WatcherTest, ABulkCommitOfPodsAloneIsFollowedToo) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());
  std::vector<Object> pods;
  for (int i = 0; i < 513; ++i)
    pods.emplace_back(std::in_place_type<Pod>, pod("bulk-" + std::to_string(i), i));
  ASSERT_TRUE(writer->apply(pods, {}));
  ASSERT_EQ(watching.waitForVersion(1), 1u);
  ASSERT_TRUE(writer->apply({pod("one-more", 600)}, {}));
  ASSERT_EQ(watching.waitForVersion(2), 2u);
  EXPECT_EQ(watching.snapshot()->pods().size(), 514u);
}

int64_t fileSize(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? info.st_size : -1;
}

TEST(WatcherTest, ACheckpointTruncatesTheWalWhileTheWatcherRuns) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());
  std::vector<Object> bulk;
  for (int i = 0; i < 10000; ++i)
    bulk.emplace_back(std::in_place_type<Service>, service("bulk-" + std::to_string(i)));
  ASSERT_TRUE(writer->apply(bulk, {}));
  ASSERT_EQ(watching.waitForVersion(1), 1u);
  ASSERT_TRUE(writer->apply({service("one-more")}, {}));
  ASSERT_EQ(watching.waitForVersion(2), 2u);
  ASSERT_GT(fileSize(dir.file("r.db-wal")), 1 << 20);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("r.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* checkpoint = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &checkpoint, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(checkpoint), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(checkpoint, 0), 0) << "busy: a reader holds an old snapshot";
  sqlite3_finalize(checkpoint);
  sqlite3_close(db);
  EXPECT_EQ(fileSize(dir.file("r.db-wal")), 0);
}

TEST(WatcherTest, AFileDeletedUnderTheWatcherIsReportedAsReplacedAndWatchingStops) {
  testing::TempDir dir;
  auto writer = std::move(*Registry::open(dir.file("r.db")));
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());
  ASSERT_EQ(::unlink(dir.file("r.db").c_str()), 0);
  auto errors = watching.waitForError();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, ErrorKind::kReplaced);
  EXPECT_NE(errors[0].message.find("is gone"), std::string::npos) << errors[0].message;
  // A replaced file is not a read error: the watcher stops instead of counting every poll.
  EXPECT_EQ(watching.watcher().errorCount(), 0u);
}

TEST(WatcherTest, AnotherRegistryCopiedOverInPlaceIsReportedAsReplaced) {
  testing::TempDir dir;
  { auto created = std::move(*Registry::open(dir.file("r.db"))); }
  RunningWatcher watching(dir.file("r.db"));
  ASSERT_TRUE(watching.start());
  // The same inode with another registry's UUID: only the UUID check can tell.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("r.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = 'another' WHERE key = 'registry_uuid'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto errors = watching.waitForError();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].kind, ErrorKind::kReplaced);
  EXPECT_NE(errors[0].message.find("copied over in place"), std::string::npos) << errors[0].message;
}

}  // namespace
}  // namespace svcbox::store
