#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "router/sync_failure.h"
#include "router/sync_loop.h"
#include "router/userspace/port_mapping.h"
#include "store/snapshot.h"

// What serve and the CLI see of a proxy backend, in the spirit of kube-proxy's proxy.Provider:
// the iptables mode (Router), the userspace relay with or without REDIRECT rules
// (UserspaceProvider). Each runs one SyncLoop; nothing outside router/ names a concrete backend
// except the factory that picks one (app/serve_router).
namespace svcbox::router {

// What /readyz and the metrics page need from any backend.
struct ProviderStats : SyncLoopStats {
  // Rule counts per table after the last successful sync (kernel backends; empty otherwise).
  struct Table {
    std::string table;
    size_t rules = 0;
    size_t chains = 0;
  };
  std::vector<Table> tables;
  // The userspace relay's counters per Service port; nullopt for the kernel backends.
  std::optional<std::vector<userspace::PortStats>> relay;
};

class Provider {
 public:
  virtual ~Provider() = default;

  // "iptables" or "userspace": for logs and `svcbox rules`.
  virtual std::string mode() const = 0;
  // Whether this process may run the backend at all (capabilities); false with `failure` set.
  virtual bool canRun(SyncFailure& failure) const = 0;
  // The first sync, on the caller's thread; false only when the backend can never work (a
  // missing capability). Then the backend follows update() on its own thread.
  virtual bool start(const store::SnapshotPtr& first, SyncFailure& failure) = 0;
  // Records the snapshot and returns at once (the watcher's and fan-out's threads call it).
  virtual void update(const store::SnapshotPtr& snapshot) = 0;
  // The next sync rewrites everything, at once (SIGHUP).
  virtual void requestFullSync() = 0;
  // Stops the backend's threads; nothing is changed after it returns.
  virtual void stop() = 0;
  // Removes everything the backend owns in the kernel (chains, jumps); `changed` says whether
  // there was anything. Safe on a backend never started (`svcbox cleanup`).
  virtual bool cleanup(SyncFailure& failure, bool& changed) = 0;
  // Thread-safe.
  virtual ProviderStats stats() const = 0;
  // What is installed, read back from the kernel, as text (iptables-save format for the
  // netfilter backends); false with `failure` set when it cannot be read.
  virtual bool installedRules(std::vector<std::string>& lines, SyncFailure& failure) const = 0;

  // True where DNS must answer the backend's own listeners instead of ClusterIPs (the userspace
  // relay bound to one address): DNS then publishes a snapshot only after listenersFor() it.
  virtual bool dnsAnswersListeners() const { return false; }
  // Waits, bounded, until the backend applied `snapshot` (or a later one), then returns the
  // listeners in effect. Only where dnsAnswersListeners().
  virtual std::vector<userspace::PortMapping> listenersFor(const store::Snapshot& snapshot) {
    (void)snapshot;
    return {};
  }
  // Called with the listeners in effect each time they change, on the backend's thread (serve
  // records them beside the registry for `svcbox get`). Set before start().
  virtual void setOnListenersChanged(
      std::function<void(const std::vector<userspace::PortMapping>&)> on_changed) {
    (void)on_changed;
  }
  // Called after each successful sync with the snapshot now installed (programming latency).
  virtual void setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced) = 0;
};

}  // namespace svcbox::router
