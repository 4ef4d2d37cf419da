#include "router/userspace/redirect.h"

// glibc's netinet/in.h first: the kernel header below then skips its own in.h.
#include <netinet/in.h>

#include <linux/netfilter/xt_conntrack.h>

#include <algorithm>
#include <map>
#include <string>

#include "router/chain_names.h"
#include "router/iptc_sync.h"

namespace svcbox::router::userspace {

RedirectTables redirectTables(const store::Snapshot& snapshot,
                              const std::vector<PortMapping>& mapping) {
  RedirectTables tables;
  tables.nat.name = "nat";
  tables.filter.name = "filter";
  tables.mangle.name = "mangle";
  tables.nat.hooks = {{"PREROUTING", kServicesChain}, {"OUTPUT", kServicesChain}};
  Chain services{kServicesChain, {}};
  for (const auto& port : mapping) {
    const auto* entry = snapshot.findService(port.namespace_name, port.name);
    // IPv6 ClusterIPs are not routed by netfilter here yet (as in iptables mode).
    if (!entry || !entry->service.cluster_ip || !entry->service.cluster_ip->isV4()) continue;
    const auto& b = entry->service.cluster_ip->bytes;
    Rule rule;
    rule.destination = {
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]},
        32};
    rule.protocol = port.protocol == store::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
    rule.comment = port.namespace_name + "/" + port.name + ":" + std::to_string(port.service_port);
    rule.destination_port = port.service_port;
    rule.target.kind = TargetKind::kRedirect;
    rule.target.port = port.listen_port;
    services.rules.push_back(std::move(rule));
  }
  tables.nat.chains.push_back(std::move(services));
  // The listeners bind every address, so without these anyone who reaches the node would reach
  // every Service's pods through node:20080 (and a local user through 127.0.0.1:20080). A
  // redirected packet carries conntrack's DNAT state; anything else to a listener is rejected.
  // TCP is also checked by the proxy itself (SO_ORIGINAL_DST), in case this table is flushed.
  if (!mapping.empty()) {
    tables.filter.hooks = {{"INPUT", kProxyInputChain}};
    Chain input{kProxyInputChain, {}};
    for (const auto& port : mapping) {
      Rule redirected;
      redirected.protocol = port.protocol == store::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
      redirected.destination_port = port.listen_port;
      redirected.comment = port.namespace_name + "/" + port.name + ":" +
                           std::to_string(port.service_port) + " listener";
      redirected.ctstate = XT_CONNTRACK_STATE_DNAT;
      redirected.target.kind = TargetKind::kReturn;
      Rule direct = redirected;
      direct.ctstate = 0;
      direct.target.kind = TargetKind::kReject;
      input.rules.push_back(std::move(redirected));
      input.rules.push_back(std::move(direct));
    }
    tables.filter.chains.push_back(std::move(input));
  }
  tables.mangle.chains.push_back(Chain{kCanaryChain, {}});
  return tables;
}

RedirectRules::RedirectRules(std::unique_ptr<TableWriter> writer)
    : writer_(writer ? std::move(writer) : std::make_unique<IptcTableWriter>()) {}

bool RedirectRules::write(const store::Snapshot& snapshot, const std::vector<PortMapping>& mapping,
                          bool full, SyncFailure& failure) {
  auto tables = redirectTables(snapshot, mapping);
  for (const Table* table : {&tables.nat, &tables.filter, &tables.mangle}) {
    TableSyncStats stats;
    if (!writer_->sync(*table, full, nullptr, stats, failure)) {
      failure.message = table->name + " table: " + failure.message;
      return false;
    }
  }
  return true;
}

bool RedirectRules::stillInstalled(std::string& why_not) {
  return canaryStillInstalled(*writer_, why_not);
}

}  // namespace svcbox::router::userspace
