#include "router/sync_loop.h"

#include <algorithm>

namespace svcbox::router {
namespace {

void recordDuration(SyncLoopStats& stats, std::chrono::duration<double> took) {
  size_t bucket = 0;
  while (bucket < kSyncDurationBuckets && took.count() > syncDurationBound(bucket)) ++bucket;
  ++stats.duration_counts[bucket];
  stats.duration_sum_seconds += took.count();
}

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

double syncDurationBound(size_t bucket) { return 0.001 * static_cast<double>(1u << bucket); }

SyncLoop::SyncLoop(SyncTarget& target, RouterTiming timing, LogFunction log, std::string what)
    : target_(target), timing_(timing), log_(std::move(log)), what_(std::move(what)) {
  if (!log_) log_ = [](LogLevel, const std::string&) {};
}

SyncLoop::~SyncLoop() { stop(); }

void SyncLoop::setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced) {
  on_synced_ = std::move(on_synced);
}

bool SyncLoop::start(const store::SnapshotPtr& first, SyncFailure& failure) {
  bool synced = syncOnce(first, true, failure);
  // Without the capability nothing will ever work: the caller reports it. Anything else (a busy
  // lock, say) is retried by the loop like any failed sync.
  if (!synced && failure.permission_denied) return false;
  if (!synced)
    log_(LogLevel::kWarn,
         "first sync of the " + what_ + " failed (" + failure.message + "); retrying");
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return true;
    if (!latest_ || latest_->version() <= first->version()) latest_ = first;
    // The caller already handed over this snapshot: it needs no second sync unless this failed.
    pending_ = !synced || latest_ != first;
  }
  thread_ = std::thread([this, synced] { run(!synced); });
  return true;
}

void SyncLoop::update(const store::SnapshotPtr& snapshot) {
  std::lock_guard lock(mutex_);
  latest_ = snapshot;
  pending_ = true;
  wakeup_.notify_one();
}

void SyncLoop::requestFullSync() {
  std::lock_guard lock(mutex_);
  full_requested_ = true;
  pending_ = true;
  wakeup_.notify_one();
}

void SyncLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wakeup_.notify_one();
    installed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

SyncLoopStats SyncLoop::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool SyncLoop::waitInstalled(uint64_t version, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return installed_.wait_for(lock, timeout, [&] {
    return stopping_ || (stats_.installed_version && *stats_.installed_version >= version);
  }) && !stopping_;
}

bool SyncLoop::syncOnce(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) {
  auto started = Clock::now();
  bool ok = target_.sync(snapshot, full, failure);
  std::lock_guard lock(mutex_);
  recordDuration(stats_, Clock::now() - started);
  if (!ok) {
    ++stats_.failures;
    ++stats_.failures_in_row;
    stats_.last_failure = failure.message;
    return false;
  }
  ++stats_.syncs;
  stats_.failures_in_row = 0;
  stats_.last_sync_ms = wallClockMs();
  stats_.installed_version = snapshot->version();
  installed_.notify_all();
  // Under the lock, so stats() never shows a version the hook has not seen; the hook only records.
  if (on_synced_) on_synced_(snapshot);
  return true;
}

void SyncLoop::run(bool retry_first) {
  auto now = Clock::now();
  auto next_full = now + timing_.sync_period;
  auto next_check = now + timing_.canary_interval;
  auto last_sync = now;
  auto retry_at = retry_first ? now + timing_.first_backoff : Clock::time_point::max();
  bool full = retry_first;
  int failures_in_row = 0;
  // The first sync ran in start(); what follows it runs here, off the caller's thread.
  if (!retry_first) target_.afterSync();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto wake_at = std::min({next_full, next_check, retry_at});
    if (pending_) wake_at = std::min(wake_at, std::max(last_sync + timing_.min_interval, now));
    wakeup_.wait_until(lock, wake_at);
    if (stopping_) break;
    now = Clock::now();
    lock.unlock();
    if (now >= next_check) {
      next_check = now + timing_.canary_interval;
      std::string why_not;
      if (!target_.stillInstalled(why_not)) {
        log_(LogLevel::kWarn, why_not + "; full resync of the " + what_);
        full = true;
        retry_at = now;
      }
    }
    if (now >= next_full) full = true;
    lock.lock();
    bool due = (pending_ && now >= last_sync + timing_.min_interval) || now >= next_full ||
               now >= retry_at || full_requested_;
    if (!due || !latest_) continue;
    pending_ = false;
    if (full_requested_) full = true;
    full_requested_ = false;
    store::SnapshotPtr snapshot = latest_;
    lock.unlock();
    SyncFailure failure;
    bool was_full = full;
    bool ok = syncOnce(snapshot, full, failure);
    now = Clock::now();
    last_sync = now;
    if (ok) {
      // Within the coalescing window that follows a sync anyway: the next change waits for it
      // at most that long.
      target_.afterSync();
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
      log_(LogLevel::kWarn, "sync of the " + what_ + " failed (" + failure.message +
                                "); full resync in " + std::to_string(backoff.count()) + " ms");
    }
    lock.lock();
  }
}

}  // namespace svcbox::router
