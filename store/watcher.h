#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/registry.h"

namespace svcbox::store {

// Publishes a new Snapshot whenever anyone commits to the registry file: this process, the CLI
// or another tool. It polls PRAGMA data_version on its own connection, which SQLite bumps for
// commits made through any other connection. Each poll also checks that the file at the path is
// still the one it opened (a stat(); the registry UUID once a second, for a file copied over in
// place): when it is not (ErrorKind::kReplaced, handed to OnError) the watcher stops, since
// every later change goes to a file it does not read.
class Watcher {
 public:
  using OnSnapshot = std::function<void(const SnapshotPtr& previous, const SnapshotPtr& current)>;
  using OnError = std::function<void(const Error& error)>;

  Watcher(std::unique_ptr<Registry> registry, std::chrono::milliseconds poll_interval,
          OnSnapshot on_snapshot, OnError on_error);
  ~Watcher();

  // Loads and publishes the first snapshot, then watches on a thread of its own.
  Status start();
  void stop();
  // Checks at once instead of at the next poll (an in-process writer has committed).
  void wake();

  // The last snapshot every OnSnapshot consumer has taken.
  SnapshotPtr current() const { return current_.load(); }
  // Test hook: while `paused()` is true the watcher skips its polls, as a stuck one would, so
  // an e2e test can show the generation guard raising the alarm. Set before start().
  void setTestPause(std::function<bool()> paused) { test_paused_ = std::move(paused); }
  uint64_t errorCount() const { return errors_.load(); }

 private:
  enum class Outcome { kCurrent, kFailed, kReplaced };
  void run();
  // Errors are counted and reported here.
  Outcome refresh();
  Outcome failed(const Error& error);

  std::unique_ptr<Registry> registry_;
  std::chrono::milliseconds poll_interval_;
  OnSnapshot on_snapshot_;
  OnError on_error_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
  std::atomic<uint64_t> errors_{0};
  std::function<bool()> test_paused_;
  int64_t data_version_ = -1;
  std::chrono::steady_clock::time_point next_identity_check_{};
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace svcbox::store
