#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "router/iptc_sync.h"
#include "router/router.h"
#include "router/ruleset.h"
#include "router/userspace/proxy.h"
#include "store/snapshot.h"

// The userspace mode where svcbox may write netfilter (kube-proxy's original flow): nat rules
// REDIRECT traffic for ClusterIP:port to the proxy's listener, so clients keep using the
// ClusterIP and DNS needs no change.
namespace svcbox::router::userspace {

struct RedirectTables {
  Table nat;     // PREROUTING and OUTPUT jump to SVCBOX-SERVICES, one REDIRECT per Service port
  Table filter;  // empty: what iptables mode left there (REJECTs) must go
  Table mangle;  // only the canary chain, as in iptables mode: a wipe of the tables removes it
};

// A pure function of the snapshot (the ClusterIPs) and the listeners in effect.
RedirectTables redirectTables(const store::Snapshot& snapshot,
                              const std::vector<PortMapping>& mapping);

// Writes the rules for each change, and repairs what others do to them as the iptables router
// does: a full rewrite every sync period, at once when the canary chain is gone, and again with
// backoff after a failed write.
class RedirectRules {
 public:
  // `writer`: null for libiptc. `log`: may be null.
  explicit RedirectRules(std::unique_ptr<TableWriter> writer = nullptr, RouterTiming timing = {},
                         LogFunction log = nullptr);
  ~RedirectRules();
  RedirectRules(const RedirectRules&) = delete;
  RedirectRules& operator=(const RedirectRules&) = delete;

  // Converges the tables (one commit each when something differs) and keeps the snapshot and
  // mapping for the repairs. After a failure the next write is full, and the repair thread
  // retries it.
  bool apply(const store::SnapshotPtr& snapshot, const std::vector<PortMapping>& mapping,
             SyncFailure& failure);
  // Starts the repair thread; stop() (or destruction) ends it. Until it runs, only apply()
  // writes.
  void startRepairs();
  void stop();

  // Writes made by the repair thread that succeeded.
  uint64_t repairCount() const;

 private:
  using Clock = std::chrono::steady_clock;
  bool write(SyncFailure& failure);  // under mutex_
  void repairLoop();

  std::unique_ptr<TableWriter> writer_;
  RouterTiming timing_;
  LogFunction log_;

  mutable std::mutex mutex_;  // the writer and everything below
  std::condition_variable wakeup_;
  bool full_ = true;
  bool stopping_ = false;
  store::SnapshotPtr snapshot_;
  std::vector<PortMapping> mapping_;
  Clock::time_point retry_at_ = Clock::time_point::max();
  uint64_t repairs_ = 0;
  std::thread thread_;
};

}  // namespace svcbox::router::userspace
