#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "router/provider.h"
#include "store/snapshot.h"

// serve's fan-out: every snapshot the registry watcher publishes goes to the proxy backend, DNS,
// the prober and the change log, in the order stated on SnapshotFanOut, on a thread of its own so
// that the watcher thread only ever reads the registry.
namespace svcbox::app {

struct SnapshotConsumers {
  router::Provider* provider = nullptr;  // null: --proxy-mode none
  // Publishes DNS answers. `listeners`: where the provider serves Services itself (the userspace
  // relay bound to one address); null when DNS answers ClusterIPs.
  std::function<void(const store::SnapshotPtr& previous, const store::SnapshotPtr& current,
                     const std::vector<router::userspace::PortMapping>* listeners)>
      dns;
  std::function<void(const store::SnapshotPtr& current)> prober;
  // The change log and what may wait for it (memory trim): after every answer and rule is on its
  // way.
  std::function<void(const store::SnapshotPtr& previous, const store::SnapshotPtr& current)> after;
};

// The order, for each snapshot:
//   1. the provider: update() records it and returns (its loop syncs beside what follows);
//   2. DNS: publish; where the provider answers for DNS with its own listeners, only once they
//      are open (a name must never point at a listener not yet open);
//   3. the prober: which pods to probe;
//   4. the change log.
// The first snapshot differs only in that the provider is started (its first sync, on the
// caller's thread, so a missing capability stops serve before it runs): after DNS, since that
// sync takes seconds at 10,000 Services and DNS need not wait for it; before DNS where DNS
// answers the provider's listeners.
//
// Threads: offer() is the watcher's callback. The first call hands the snapshot over on the
// caller's thread (serve's main thread, inside Watcher::start()); later calls record the snapshot
// and return at once, and the fan-out's thread hands over the latest one (a burst is coalesced;
// each consumer is told the snapshot it had before).
class SnapshotFanOut {
 public:
  explicit SnapshotFanOut(SnapshotConsumers consumers);
  ~SnapshotFanOut();
  SnapshotFanOut(const SnapshotFanOut&) = delete;
  SnapshotFanOut& operator=(const SnapshotFanOut&) = delete;

  void offer(const store::SnapshotPtr& previous, const store::SnapshotPtr& current);
  // Why the provider's first sync failed for good (a missing capability); nullopt otherwise.
  std::optional<router::SyncFailure> startFailure() const;
  // The last snapshot every consumer has taken (the generation guard compares the registry's
  // generation with it: a stuck fan-out is a serve that stopped following its registry).
  store::SnapshotPtr handedOver() const;
  // Hands over what is pending, then ends the thread; offer() is ignored after it.
  void stop();

 private:
  void handOver(const store::SnapshotPtr& current);
  void run();

  SnapshotConsumers consumers_;
  store::SnapshotPtr last_;  // what the consumers have; the handing thread only
  bool provider_started_ = false;

  mutable std::mutex mutex_;
  std::condition_variable wakeup_;
  store::SnapshotPtr pending_;
  store::SnapshotPtr handed_over_;
  std::optional<router::SyncFailure> start_failure_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace svcbox::app
