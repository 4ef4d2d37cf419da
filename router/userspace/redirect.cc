#include "router/userspace/redirect.h"

#include <netinet/in.h>

#include <map>

#include "router/chain_names.h"

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
  return tables;
}

RedirectRules::RedirectRules(std::unique_ptr<TableWriter> writer)
    : writer_(writer ? std::move(writer) : std::make_unique<IptcTableWriter>()) {}

bool RedirectRules::apply(const store::Snapshot& snapshot, const std::vector<PortMapping>& mapping,
                          SyncFailure& failure) {
  auto tables = redirectTables(snapshot, mapping);
  for (const Table* table : {&tables.nat, &tables.filter, &tables.mangle}) {
    TableSyncStats stats;
    if (!writer_->sync(*table, full_, nullptr, stats, failure)) {
      full_ = true;
      return false;
    }
  }
  full_ = false;
  return true;
}

}  // namespace svcbox::router::userspace
