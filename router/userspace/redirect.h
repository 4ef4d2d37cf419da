#pragma once

#include <memory>
#include <vector>

#include "router/iptc_sync.h"
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
  Table mangle;  // empty: iptables mode's canary chain must go
};

// A pure function of the snapshot (the ClusterIPs) and the listeners in effect.
RedirectTables redirectTables(const store::Snapshot& snapshot,
                              const std::vector<PortMapping>& mapping);

class RedirectRules {
 public:
  // `writer`: null for libiptc.
  explicit RedirectRules(std::unique_ptr<TableWriter> writer = nullptr);
  // Converges the tables (one commit each when something differs). After a failure the next
  // call rewrites everything.
  bool apply(const store::Snapshot& snapshot, const std::vector<PortMapping>& mapping,
             SyncFailure& failure);

 private:
  std::unique_ptr<TableWriter> writer_;
  bool full_ = true;
};

}  // namespace svcbox::router::userspace
