#pragma once

#include <memory>
#include <string>
#include <vector>

#include "router/ruleset.h"
#include "router/table_writer.h"
#include "router/userspace/port_mapping.h"
#include "store/snapshot.h"

// The userspace mode where svcbox may write netfilter (kube-proxy's original flow): nat rules
// REDIRECT traffic for ClusterIP:port to the proxy's listener, so clients keep using the
// ClusterIP and DNS needs no change.
namespace svcbox::router::userspace {

struct RedirectTables {
  Table nat;     // PREROUTING and OUTPUT jump to SVCBOX-SERVICES, one REDIRECT per Service port
  Table filter;  // INPUT: only redirected traffic reaches a listener (and what iptables mode
                 // left there goes)
  Table mangle;  // only the canary chain, as in iptables mode: a wipe of the tables removes it
};

// A pure function of the snapshot (the ClusterIPs) and the listeners in effect.
RedirectTables redirectTables(const store::Snapshot& snapshot,
                              const std::vector<PortMapping>& mapping);

// Writes the REDIRECT tables; UserspaceProvider's loop says when (and repairs with it).
class RedirectRules {
 public:
  // `writer`: null for libiptc.
  explicit RedirectRules(std::unique_ptr<TableWriter> writer = nullptr);
  // Converges the tables (one commit each when something differs).
  bool write(const store::Snapshot& snapshot, const std::vector<PortMapping>& mapping, bool full,
             SyncFailure& failure);
  // False, with the reason, when the canary chain is gone (the tables were flushed from outside).
  bool stillInstalled(std::string& why_not);

 private:
  std::unique_ptr<TableWriter> writer_;
};

}  // namespace svcbox::router::userspace
