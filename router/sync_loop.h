#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "router/sync_failure.h"
#include "store/snapshot.h"

// The one loop every proxy backend runs: "sync, resync, repair, back off". A backend supplies
// what one sync does and how to tell that its state was removed from outside (SyncTarget); the
// loop decides when: coalescing bursts, a periodic full resync, an external-change check, and
// exponential backoff after a failure, for ever.
namespace svcbox::router {

struct RouterTiming {
  // Snapshots arriving faster than this are coalesced into one sync.
  std::chrono::milliseconds min_interval{100};
  // Everything is rewritten this often, repairing edits made behind svcbox's back.
  std::chrono::milliseconds sync_period{30000};
  // How often the backend is asked whether its state is still installed (an external flush).
  std::chrono::milliseconds canary_interval{5000};
  // A failed sync is retried after first_backoff, doubling up to max_backoff, for ever: a held
  // xtables lock or a table commit that failed never stops the loop.
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // How long one sync waits for the xtables lock before it counts as failed and is retried.
  std::chrono::milliseconds lock_wait{1000};
};

enum class LogLevel { kDebug, kInfo, kWarn };
using LogFunction = std::function<void(LogLevel, const std::string&)>;

// kube-proxy's sync_proxy_rules_duration_seconds buckets: 0.001 * 2^n seconds, n = 0..14.
inline constexpr size_t kSyncDurationBuckets = 15;
double syncDurationBound(size_t bucket);

// The loop's counters: a plain copy, taken under its lock.
struct SyncLoopStats {
  uint64_t syncs = 0;     // successful
  uint64_t failures = 0;  // failed
  // Every sync's duration, successful or not: per bucket (not cumulative), the last above all.
  std::array<uint64_t, kSyncDurationBuckets + 1> duration_counts{};
  double duration_sum_seconds = 0;
  int64_t last_sync_ms = 0;                   // wall clock of the last successful sync; 0: none yet
  std::optional<uint64_t> installed_version;  // the snapshot the last successful sync installed
  uint64_t failures_in_row = 0;               // since the last successful sync
  std::string last_failure;                   // the latest failed sync's message
};

// One backend's part. Every call comes from one thread at a time: the thread that called
// SyncLoop::start() for the first sync, then the loop's own thread.
class SyncTarget {
 public:
  virtual ~SyncTarget() = default;
  // Brings what the backend installed to `snapshot`. `full`: trust nothing the last sync wrote
  // (the first sync, the periodic one, after a failure or an external change).
  virtual bool sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) = 0;
  // False, with `why_not` for the log, when what the last sync installed was removed from
  // outside; an error while looking is not a removal (the periodic resync covers it).
  virtual bool stillInstalled(std::string& why_not) = 0;
  // After each successful sync, while no snapshot waits (the iptables mode reads its tables
  // ahead here). Optional.
  virtual void afterSync() {}
};

class SyncLoop {
 public:
  // `what`: how the log names what is synced ("iptables rules").
  SyncLoop(SyncTarget& target, RouterTiming timing, LogFunction log, std::string what);
  ~SyncLoop();
  SyncLoop(const SyncLoop&) = delete;
  SyncLoop& operator=(const SyncLoop&) = delete;

  // The first sync runs on the caller's thread, so that a missing capability is an error at start
  // (returns false, no thread started); any other failure is logged, counted and retried by the
  // loop with backoff (returns true with `failure` set).
  bool start(const store::SnapshotPtr& first, SyncFailure& failure);
  // Records the snapshot and returns at once; the loop syncs it (coalesced with what follows).
  void update(const store::SnapshotPtr& snapshot);
  // The next sync is full and runs at once (SIGHUP).
  void requestFullSync();
  // Ends the thread after the sync in progress; nothing is synced after it returns.
  void stop();

  // Thread-safe.
  SyncLoopStats stats() const;
  // Waits (at most `timeout`) until a snapshot of at least `version` is installed; false on
  // timeout or once stopped. For a consumer that must not act before the backend did.
  bool waitInstalled(uint64_t version, std::chrono::milliseconds timeout) const;
  // Called after each successful sync with the snapshot now installed, on the syncing thread and
  // under the loop's lock (stats() never runs ahead of it): it must only record, never call back
  // into the loop. Set before start().
  void setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced);

 private:
  using Clock = std::chrono::steady_clock;
  void run(bool retry_first);
  // One timed, counted sync.
  bool syncOnce(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure);

  SyncTarget& target_;
  RouterTiming timing_;
  LogFunction log_;
  std::string what_;
  std::function<void(const store::SnapshotPtr&)> on_synced_;

  mutable std::mutex mutex_;
  std::condition_variable wakeup_;             // the loop's thread waits on it
  mutable std::condition_variable installed_;  // waitInstalled() waits on it
  store::SnapshotPtr latest_;
  bool pending_ = false;
  bool full_requested_ = false;
  bool stopping_ = false;
  SyncLoopStats stats_;
  std::thread thread_;
};

}  // namespace svcbox::router
