#include "router/desired_state_tracker.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace svcbox::router {
namespace {

bool sameName(const store::ServiceEntry& a, const store::ServiceEntry& b) {
  return a.service.namespace_name == b.service.namespace_name && a.service.name == b.service.name;
}

// The rules that do not live in the Service's own chains: when these are equal before and after,
// the change stays inside those chains.
bool sameOutside(const ServiceRules& before, const ServiceRules& after) {
  if (before.dispatches != after.dispatches || before.rejects != after.rejects ||
      before.service_ports != after.service_ports || before.skipped_ipv6 != after.skipped_ipv6 ||
      before.chains.size() != after.chains.size() ||
      before.udp_ports.size() != after.udp_ports.size()) {
    return false;
  }
  for (size_t i = 0; i < before.chains.size(); ++i) {
    if (before.chains[i].name != after.chains[i].name) return false;
  }
  for (size_t i = 0; i < before.udp_ports.size(); ++i) {
    if (before.udp_ports[i].cluster_ip != after.udp_ports[i].cluster_ip ||
        before.udp_ports[i].port != after.udp_ports[i].port) {
      return false;
    }
  }
  return true;
}

Chain* findChain(Table& table, const std::string& name) {
  auto found =
      std::lower_bound(table.chains.begin(), table.chains.end(), name,
                       [](const Chain& chain, const std::string& key) { return chain.name < key; });
  return found != table.chains.end() && found->name == name ? &*found : nullptr;
}

UdpServicePort* findUdpPort(std::vector<UdpServicePort>& ports, const UdpServicePort& key) {
  auto found = std::lower_bound(ports.begin(), ports.end(), key, [](const auto& a, const auto& b) {
    return std::tie(a.cluster_ip, a.port) < std::tie(b.cluster_ip, b.port);
  });
  return found != ports.end() && found->cluster_ip == key.cluster_ip && found->port == key.port
             ? &*found
             : nullptr;
}

}  // namespace

const DesiredState& DesiredStateTracker::update(const store::SnapshotPtr& snapshot,
                                                Change& change) {
  change = {};
  if (previous_ && patch(*previous_, *snapshot, change)) {
    change.incremental = true;
  } else {
    change = {};
    state_ = computeDesiredState(*snapshot, options_);
  }
  previous_ = snapshot;
  return state_;
}

bool DesiredStateTracker::patch(const store::Snapshot& previous, const store::Snapshot& current,
                                Change& change) {
  const auto& before = previous.sharedServices();
  const auto& after = current.sharedServices();
  if (before.size() != after.size()) return false;
  std::vector<std::pair<const store::ServiceEntry*, const store::ServiceEntry*>> changed;
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] == after[i]) continue;
    if (!sameName(*before[i], *after[i]) || changed.size() == kMaxIncrementalServices) {
      return false;
    }
    changed.emplace_back(before[i].get(), after[i].get());
  }
  // Checked whole before anything is written, so a refusal leaves state_ as it was.
  std::vector<ServiceRules> rewritten;
  for (const auto& [old_entry, new_entry] : changed) {
    ServiceRules old_rules = serviceRules(*old_entry, options_);
    ServiceRules new_rules = serviceRules(*new_entry, options_);
    if (!sameOutside(old_rules, new_rules)) return false;
    for (const auto& chain : new_rules.chains) {
      if (!findChain(state_.nat, chain.name)) return false;
    }
    for (const auto& port : new_rules.udp_ports) {
      if (!findUdpPort(state_.udp_ports, port)) return false;
    }
    rewritten.push_back(std::move(new_rules));
  }
  for (auto& rules : rewritten) {
    for (auto& chain : rules.chains) {
      Chain* installed = findChain(state_.nat, chain.name);
      if (installed->rules == chain.rules) continue;
      installed->rules = std::move(chain.rules);
      change.nat_chains.push_back(chain.name);
    }
    for (auto& port : rules.udp_ports)
      findUdpPort(state_.udp_ports, port)->endpoints = port.endpoints;
  }
  std::sort(change.nat_chains.begin(), change.nat_chains.end());
  change.nat_chains.erase(std::unique(change.nat_chains.begin(), change.nat_chains.end()),
                          change.nat_chains.end());
  return true;
}

}  // namespace svcbox::router
