#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "router/conntrack_cleanup.h"
#include "router/desired_state.h"
#include "router/desired_state_tracker.h"
#include "router/iptc_sync.h"
#include "store/snapshot.h"

namespace svcbox::router {

struct RouterTiming {
  // Snapshots arriving faster than this are coalesced into one sync.
  std::chrono::milliseconds min_interval{100};
  // Everything is rewritten this often, repairing edits made behind svcbox's back.
  std::chrono::milliseconds sync_period{30000};
  // How often the canary chain is looked for (an external flush removes it).
  std::chrono::milliseconds canary_interval{5000};
  // A failed sync is retried after first_backoff, doubling up to max_backoff, for ever: a held
  // xtables lock or a table commit that failed never stops the router.
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  // How long one sync waits for the xtables lock before it counts as failed and is retried.
  std::chrono::milliseconds lock_wait{1000};
};

// kube-proxy's sync_proxy_rules_duration_seconds buckets: 0.001 * 2^n seconds, n = 0..14.
inline constexpr size_t kSyncDurationBuckets = 15;
double syncDurationBound(size_t bucket);

// What one table holds after the last successful sync (from the desired state it applied).
struct TableRuleCount {
  std::string table;  // "nat", "filter", "mangle"
  size_t rules = 0;   // rules in svcbox's chains plus its jumps from built-in chains
  size_t chains = 0;  // svcbox's chains
};

// The router's counters for the metrics page: a plain copy, taken under the router's lock.
struct RouterStats {
  uint64_t syncs = 0;     // successful
  uint64_t failures = 0;  // failed
  // Every sync's duration, successful or not: per bucket (not cumulative), the last above all.
  std::array<uint64_t, kSyncDurationBuckets + 1> duration_counts{};
  double duration_sum_seconds = 0;
  std::vector<TableRuleCount> tables;         // empty before the first successful sync
  int64_t last_sync_ms = 0;                   // wall clock of the last successful sync; 0: none yet
  std::optional<uint64_t> installed_version;  // the snapshot the kernel's rules come from
  uint64_t failures_in_row = 0;               // since the last successful sync
  std::string last_failure;                   // the latest failed sync's message
};

enum class LogLevel { kDebug, kInfo, kWarn };
using LogFunction = std::function<void(LogLevel, const std::string&)>;

// Level-triggered: it keeps the latest snapshot, and its own thread converges the kernel's
// tables to the rules that snapshot implies. A failed sync is retried (with backoff) as a full
// one; a periodic full sync and a canary check repair what others did to svcbox's chains.
class Router {
 public:
  // `writer`: null for libiptc.
  Router(RouterOptions options, RouterTiming timing, LogFunction log,
         std::unique_ptr<TableWriter> writer = nullptr);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // The first sync runs on the caller's thread so that a missing capability is an error at start
  // (returns false); other failures (a held xtables lock, say) are logged and retried by the
  // loop with backoff, and stats() tells whether any sync has succeeded yet.
  bool start(const store::SnapshotPtr& first, SyncFailure& failure);
  // Called from the registry watcher's thread: records the snapshot and returns at once.
  void update(const store::SnapshotPtr& snapshot);
  // Stops the thread; with `cleanup`, removes every svcbox chain and jump before returning.
  void stop(bool cleanup);
  // The next sync rewrites every chain, at once (SIGHUP).
  void requestFullSync();

  uint64_t syncCount() const;
  uint64_t failureCount() const;
  // Thread-safe.
  RouterStats stats() const;
  // Called after each successful sync with the snapshot now installed: on the router's thread,
  // and for the first sync on the thread that called start(). Set before start().
  void setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced);

 private:
  // `retry_first`: the first sync (in start) failed and is retried after the first backoff.
  void run(bool retry_first);
  bool sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure);
  // Reads the tables the last sync committed, so the next partial sync need not (TableWriter).
  void readAhead();

  RouterOptions options_;
  DesiredStateTracker tracker_;  // router thread (start() before it exists)
  RouterTiming timing_;
  LogFunction log_;
  // Deletes the UDP flows a sync left stale, off the router thread; after log_, which it uses.
  ConntrackCleaner conntrack_cleaner_;
  std::unique_ptr<TableWriter> writer_;  // one thread at a time: start(), then run()
  std::chrono::milliseconds test_pause_between_tables_;  // tests only: see router.cc
  std::vector<UdpServicePort> applied_udp_;
  size_t reported_ipv6_ = 0;                    // logged once per change, not on every sync
  std::vector<std::string> read_ahead_tables_;  // router thread (start() before it exists)

  mutable std::mutex mutex_;
  std::condition_variable wakeup_;
  store::SnapshotPtr latest_;
  bool pending_ = false;
  bool full_requested_ = false;
  bool stopping_ = false;
  uint64_t syncs_ = 0;
  uint64_t failures_ = 0;
  RouterStats stats_;  // syncs and failures live in the fields above
  std::function<void(const store::SnapshotPtr&)> on_synced_;
  std::thread thread_;
};

// True when this process may read and write netfilter tables (the nat table is read as a test).
bool canWriteNetfilter(SyncFailure& failure);

// Removes every SVCBOX-* chain and jump from nat, filter and mangle. Returns false with
// `failure` set when a table cannot be written.
bool cleanupAll(SyncFailure& failure, bool& changed);

}  // namespace svcbox::router
