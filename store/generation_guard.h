#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/result.h"

namespace svcbox::store {

// Makes a watcher that stopped following its registry loud. On a thread of its own, every
// `interval` it reads the registry's generation through a reader that shares nothing with the
// watcher (a fresh connection) and compares it with the version the watcher last published.
// Two checks in a row that find the registry ahead while the published version did not move
// are a lag: reported at every check while it lasts, and once when it ends.
class GenerationGuard {
 public:
  struct Lag {
    uint64_t generation = 0;  // what the registry holds
    uint64_t published = 0;   // what serve answers from
    std::chrono::milliseconds since{0};
  };
  using ReadGeneration = std::function<Result<uint64_t>()>;
  using Published = std::function<std::optional<uint64_t>()>;  // nullopt: nothing yet
  // Called on the guard's thread: a lag found (set) or over (nullopt).
  using OnLag = std::function<void(const std::optional<Lag>& lag)>;

  GenerationGuard(ReadGeneration read, Published published, std::chrono::milliseconds interval,
                  OnLag on_lag);
  ~GenerationGuard();
  GenerationGuard(const GenerationGuard&) = delete;
  GenerationGuard& operator=(const GenerationGuard&) = delete;

  void start();
  void stop();
  // Thread-safe: the lag now (0 when none is confirmed), for the metric.
  uint64_t lag() const { return lag_.load(); }
  // Checks made so far, so a test can wait for one.
  uint64_t checks() const { return checks_.load(); }

  // One check; the thread calls it every interval. Public so a test can step it.
  void check();

 private:
  ReadGeneration read_;
  Published published_;
  std::chrono::milliseconds interval_;
  OnLag on_lag_;
  // The previous check's disagreement: the published version it saw and when.
  std::optional<std::pair<uint64_t, std::chrono::steady_clock::time_point>> behind_;
  bool reported_ = false;
  std::atomic<uint64_t> lag_{0};
  std::atomic<uint64_t> checks_{0};
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace svcbox::store
