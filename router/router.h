#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "router/conntrack_cleanup.h"
#include "router/desired_state.h"
#include "router/desired_state_tracker.h"
#include "router/provider.h"
#include "router/sync_loop.h"
#include "router/table_writer.h"
#include "store/snapshot.h"

// The iptables proxy mode: level-triggered, it keeps the latest snapshot, and its loop converges
// the kernel's nat, filter and mangle tables to the rules that snapshot implies (libiptc).
namespace svcbox::router {

using TableRuleCount = ProviderStats::Table;
using RouterStats = ProviderStats;

class Router : public Provider {
 public:
  // `writer`: null for libiptc.
  Router(RouterOptions options, RouterTiming timing, LogFunction log,
         std::unique_ptr<TableWriter> writer = nullptr);
  ~Router() override;
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  std::string mode() const override { return "iptables"; }
  bool canRun(SyncFailure& failure) const override;
  bool start(const store::SnapshotPtr& first, SyncFailure& failure) override;
  // Called from the registry watcher's thread: records the snapshot and returns at once.
  void update(const store::SnapshotPtr& snapshot) override { loop_.update(snapshot); }
  void requestFullSync() override { loop_.requestFullSync(); }
  void stop() override;
  // Every SVCBOX-* chain and jump in nat, filter and mangle (REDIRECT rules included).
  bool cleanup(SyncFailure& failure, bool& changed) override;
  RouterStats stats() const override;
  bool installedRules(std::vector<std::string>& lines, SyncFailure& failure) const override;
  void setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced) override {
    loop_.setOnSynced(std::move(on_synced));
  }

  uint64_t syncCount() const { return loop_.stats().syncs; }
  uint64_t failureCount() const { return loop_.stats().failures; }

 private:
  // What one sync of the iptables mode does; the loop says when.
  class Target : public SyncTarget {
   public:
    Target(RouterOptions options, LogFunction log, std::unique_ptr<TableWriter> writer);
    bool sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) override;
    bool stillInstalled(std::string& why_not) override;
    // Reads the tables the last sync committed, so the next partial sync need not.
    void afterSync() override;
    void stopConntrackCleanup() { conntrack_cleaner_.stop(); }
    std::vector<TableRuleCount> tables() const;

   private:
    DesiredStateTracker tracker_;
    LogFunction log_;
    // Deletes the UDP flows a sync left stale, off the sync thread; after log_, which it uses.
    ConntrackCleaner conntrack_cleaner_;
    std::unique_ptr<TableWriter> writer_;
    std::chrono::milliseconds test_pause_between_tables_;  // tests only: see router.cc
    std::vector<UdpServicePort> applied_udp_;
    size_t reported_ipv6_ = 0;  // logged once per change, not on every sync
    std::vector<std::string> read_ahead_tables_;
    mutable std::mutex tables_mutex_;  // stats() reads from other threads
    std::vector<TableRuleCount> tables_;
  };

  Target target_;
  SyncLoop loop_;  // after target_, which it drives
};

// True when this process may read and write netfilter tables (the nat table is read as a test).
bool canWriteNetfilter(SyncFailure& failure);

// svcbox's chains and jumps as installed in nat, filter and mangle, in iptables-save format.
bool installedSvcboxRules(std::vector<std::string>& lines, SyncFailure& failure);

// Removes every SVCBOX-* chain and jump from nat, filter and mangle. Returns false with
// `failure` set when a table cannot be written.
bool cleanupAll(SyncFailure& failure, bool& changed);

}  // namespace svcbox::router
