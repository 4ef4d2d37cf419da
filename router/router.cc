#include "router/router.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "router/chain_names.h"
#include "router/conntrack_cleanup.h"
#include "store/test_hooks.h"

namespace svcbox::router {
namespace {

using Clock = std::chrono::steady_clock;

std::string millis(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// A test-only pause between the nat and the filter commit, so an e2e test can kill svcbox at the
// one point where the two tables disagree.
std::chrono::milliseconds testPauseBetweenTables() {
  const char* value = SVCBOX_TEST_HOOK("SVCBOX_TEST_PAUSE_BETWEEN_TABLES_MS");
  return std::chrono::milliseconds(value ? std::atol(value) : 0);
}

void recordDuration(RouterStats& stats, std::chrono::duration<double> took) {
  size_t bucket = 0;
  while (bucket < kSyncDurationBuckets && took.count() > syncDurationBound(bucket)) ++bucket;
  ++stats.duration_counts[bucket];
  stats.duration_sum_seconds += took.count();
}

TableRuleCount countRules(const Table& table) {
  TableRuleCount count{table.name, table.hooks.size(), table.chains.size()};
  for (const auto& chain : table.chains) count.rules += chain.rules.size();
  return count;
}

}  // namespace

double syncDurationBound(size_t bucket) { return 0.001 * static_cast<double>(1u << bucket); }

Router::Router(RouterOptions options, RouterTiming timing, LogFunction log,
               std::unique_ptr<TableWriter> writer)
    : options_(std::move(options)),
      tracker_(options_),
      timing_(timing),
      log_(std::move(log)),
      conntrack_cleaner_([this](int deleted, const std::string& error) {
        if (deleted < 0) {
          log_(LogLevel::kWarn, "UDP conntrack cleanup failed: " + error);
        } else if (deleted > 0) {
          log_(LogLevel::kInfo,
               "deleted " + std::to_string(deleted) + " stale UDP conntrack entries");
        }
      }),
      writer_(writer ? std::move(writer) : std::make_unique<IptcTableWriter>(timing.lock_wait)),
      test_pause_between_tables_(testPauseBetweenTables()) {}

Router::~Router() { stop(false); }

bool Router::start(const store::SnapshotPtr& first, SyncFailure& failure) {
  bool synced = sync(first, true, failure);
  // Without the capability nothing will ever work: the caller reports it. Anything else (a busy
  // lock, say) is retried by the loop like any failed sync.
  if (!synced && failure.permission_denied) return false;
  if (!synced) log_(LogLevel::kWarn, "first sync failed (" + failure.message + "); retrying");
  {
    std::lock_guard lock(mutex_);
    if (!latest_ || latest_->version() <= first->version()) latest_ = first;
    // The watcher already handed over this snapshot: it needs no second sync unless this failed.
    pending_ = !synced || latest_ != first;
  }
  thread_ = std::thread([this, synced] { run(!synced); });
  return true;
}

void Router::update(const store::SnapshotPtr& snapshot) {
  std::lock_guard lock(mutex_);
  latest_ = snapshot;
  pending_ = true;
  wakeup_.notify_one();
}

void Router::stop(bool cleanup) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wakeup_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  conntrack_cleaner_.stop();
  if (!cleanup) return;
  SyncFailure failure;
  bool changed = false;
  if (cleanupAll(failure, changed)) {
    log_(LogLevel::kInfo, "removed svcbox's chains and jumps (--cleanup-on-exit)");
  } else {
    log_(LogLevel::kWarn, "cleanup on exit failed: " + failure.message);
  }
}

void Router::requestFullSync() {
  std::lock_guard lock(mutex_);
  full_requested_ = true;
  pending_ = true;
  wakeup_.notify_one();
}

uint64_t Router::syncCount() const {
  std::lock_guard lock(mutex_);
  return syncs_;
}

uint64_t Router::failureCount() const {
  std::lock_guard lock(mutex_);
  return failures_;
}

RouterStats Router::stats() const {
  std::lock_guard lock(mutex_);
  RouterStats copy = stats_;
  copy.syncs = syncs_;
  copy.failures = failures_;
  return copy;
}

void Router::setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced) {
  on_synced_ = std::move(on_synced);
}

bool Router::sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) {
  auto started = Clock::now();
  DesiredStateTracker::Change change;
  const DesiredState& desired = tracker_.update(snapshot, change);
  double compute_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  std::string summary;
  std::vector<std::string> committed_tables;
  for (const Table* table : {&desired.nat, &desired.filter, &desired.mangle}) {
    TableSyncStats stats;
    // Only the nat chains of the Services whose endpoints moved: the other tables are unchanged.
    static const std::vector<std::string> kNoChains;
    const std::vector<std::string>* changed_chains = !change.incremental     ? nullptr
                                                     : table == &desired.nat ? &change.nat_chains
                                                                             : &kNoChains;
    if (!writer_->sync(*table, full, changed_chains, stats, failure)) {
      std::lock_guard lock(mutex_);
      ++failures_;
      ++stats_.failures_in_row;
      stats_.last_failure = table->name + " table: " + failure.message;
      recordDuration(stats_, Clock::now() - started);
      return false;
    }
    summary += ", " + table->name + " " + std::to_string(stats.chains_written) + " written/" +
               std::to_string(stats.chains_kept) + " kept/" + std::to_string(stats.chains_removed) +
               " removed" +
               (stats.committed
                    ? std::string(stats.read_ahead ? " (read ahead " : " (read ") +
                          millis(stats.init_ms) + " ms, commit " + millis(stats.commit_ms) + " ms)"
                    : " (unchanged)");
    if (stats.committed) committed_tables.push_back(table->name);
    if (table == &desired.nat && test_pause_between_tables_.count() > 0) {
      std::this_thread::sleep_for(test_pause_between_tables_);
    }
  }
  // Only after the rules changed: deleting the flows earlier would let them re-form the old way.
  auto stale = staleUdpFlows(applied_udp_, desired.udp_ports);
  if (applied_udp_ != desired.udp_ports) applied_udp_ = desired.udp_ports;
  conntrack_cleaner_.submit(std::move(stale));
  double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  log_(LogLevel::kInfo, std::string(full ? "full" : "partial") + " sync of snapshot " +
                            std::to_string(snapshot->version()) + ": " +
                            std::to_string(desired.service_ports) + " service ports in " +
                            millis(total_ms) + " ms (rules computed in " + millis(compute_ms) +
                            " ms" + summary + ")");
  if (desired.skipped_ipv6 > 0 && desired.skipped_ipv6 != reported_ipv6_) {
    log_(LogLevel::kWarn, std::to_string(desired.skipped_ipv6) +
                              " IPv6 service ports have no rules: svcbox routes IPv4 only");
  }
  reported_ipv6_ = desired.skipped_ipv6;
  {
    std::lock_guard lock(mutex_);
    ++syncs_;
    stats_.failures_in_row = 0;
    recordDuration(stats_, Clock::now() - started);
    stats_.tables = {countRules(desired.nat), countRules(desired.filter),
                     countRules(desired.mangle)};
    stats_.last_sync_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    stats_.installed_version = snapshot->version();
  }
  if (on_synced_) on_synced_(snapshot);
  read_ahead_tables_ = std::move(committed_tables);
  return true;
}

void Router::readAhead() {
  for (const auto& table : read_ahead_tables_) writer_->prepare(table);
  read_ahead_tables_.clear();
}

void Router::run(bool retry_first) {
  auto now = Clock::now();
  auto next_full = now + timing_.sync_period;
  auto next_canary = now + timing_.canary_interval;
  auto last_sync = now;
  auto retry_at = retry_first ? now + timing_.first_backoff : Clock::time_point::max();
  bool full = retry_first;
  int failures_in_row = 0;
  // The first sync ran in start(); its tables are read ahead here, off the caller's thread.
  readAhead();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto wake_at = std::min({next_full, next_canary, retry_at});
    if (pending_) wake_at = std::min(wake_at, std::max(last_sync + timing_.min_interval, now));
    wakeup_.wait_until(lock, wake_at);
    if (stopping_) break;
    now = Clock::now();
    lock.unlock();
    if (now >= next_canary) {
      next_canary = now + timing_.canary_interval;
      SyncFailure failure;
      bool present = writer_->chainExists("mangle", kCanaryChain, failure);
      if (!present && failure.message.empty()) {
        log_(LogLevel::kWarn, "canary chain mangle/" + std::string(kCanaryChain) +
                                  " is gone: the tables were flushed from outside; full resync");
        full = true;
        retry_at = now;
      }
    }
    if (now >= next_full) full = true;
    lock.lock();
    bool due = (pending_ && now >= last_sync + timing_.min_interval) || now >= next_full ||
               now >= retry_at || full_requested_;
    if (!due) continue;
    pending_ = false;
    if (full_requested_) full = true;
    full_requested_ = false;
    store::SnapshotPtr snapshot = latest_;
    lock.unlock();
    if (!snapshot) {
      lock.lock();
      continue;
    }
    SyncFailure failure;
    bool was_full = full;
    bool ok = sync(snapshot, full, failure);
    now = Clock::now();
    last_sync = now;
    if (ok) {
      // Within the coalescing window that follows a sync anyway: the next change waits for it
      // at most that long, and then skips reading the table.
      readAhead();
      full = false;
      failures_in_row = 0;
      retry_at = Clock::time_point::max();
      // Only a full sync restarts the period: under steady churn partial syncs come every few
      // hundred milliseconds, and the periodic repair must still run.
      if (was_full) next_full = now + timing_.sync_period;
    } else {
      full = true;
      ++failures_in_row;
      auto backoff = timing_.first_backoff * (1 << std::min(failures_in_row - 1, 16));
      backoff = std::min(backoff, timing_.max_backoff);
      retry_at = now + backoff;
      log_(LogLevel::kWarn, "sync failed (" + failure.message + "); full resync in " +
                                std::to_string(backoff.count()) + " ms");
    }
    lock.lock();
  }
}

bool canWriteNetfilter(SyncFailure& failure) { return canReadTable("nat", failure); }

bool cleanupAll(SyncFailure& failure, bool& changed) {
  IptcTableWriter writer;
  changed = false;
  for (const char* table : {"nat", "filter", "mangle"}) {
    bool table_changed = false;
    if (!writer.cleanup(table, table_changed, failure)) return false;
    changed = changed || table_changed;
  }
  return true;
}

}  // namespace svcbox::router
