#include "router/desired_state.h"

// glibc's netinet/in.h first: the kernel headers below then skip their own in.h.
#include <netinet/in.h>

#include <linux/netfilter/xt_conntrack.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

#include "router/chain_names.h"

namespace svcbox::router {
namespace {

uint32_t ipv4Value(const store::IpAddress& address) {
  return (uint32_t{address.bytes[0]} << 24) | (uint32_t{address.bytes[1]} << 16) |
         (uint32_t{address.bytes[2]} << 8) | uint32_t{address.bytes[3]};
}

uint32_t prefixMask(int length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }

Rule jumpRule(std::string chain) {
  Rule rule;
  rule.target.chain = std::move(chain);
  return rule;
}

struct Backend {
  uint32_t address;
  uint16_t port;
};

Rule dispatchRule(uint32_t cluster_ip, uint8_t protocol, uint16_t port, std::string comment) {
  Rule rule;
  rule.destination = {cluster_ip, 32};
  rule.protocol = protocol;
  rule.comment = std::move(comment);
  rule.destination_port = port;
  return rule;
}

// The Service chain: masquerade marks first, then one DNAT per ready endpoint. Endpoints are
// picked with `statistic` probabilities 1/n, 1/(n-1), ... 1 so each gets 1/n of new connections.
// DNAT sits in this chain directly (no chain per endpoint): half the entries kube-proxy writes,
// and so half the commit. The cost: a pod that is an endpoint of the Service is masqueraded on
// every connection to it, not only when it reaches itself.
Chain serviceChain(const std::string& name, const std::string& key, uint8_t protocol,
                   const std::vector<Backend>& backends, const store::Service& service,
                   const RouterOptions& options) {
  Chain chain{name, {}};
  auto mark = [&] { return jumpRule(kMarkMasqueradeChain); };
  if (options.masquerade_all) {
    chain.rules.push_back(mark());
  } else {
    if (options.cluster_cidr) {
      Rule rule = mark();
      rule.source = *options.cluster_cidr;
      rule.invert_source = true;
      chain.rules.push_back(rule);
    }
    for (const auto& backend : backends) {  // hairpin: a pod reaching itself needs a new source
      Rule rule = mark();
      rule.source = {backend.address, 32};
      chain.rules.push_back(rule);
    }
  }
  bool affinity = service.session_affinity == store::SessionAffinity::kClientIP;
  auto dnat = [&](const Backend& backend) {
    Rule rule;
    rule.protocol = protocol;
    rule.target.kind = TargetKind::kDnat;
    rule.target.address = backend.address;
    rule.target.port = backend.port;
    return rule;
  };
  auto listName = [&](const Backend& backend) {
    return affinityListName(key, ipv4Text(backend.address) + ":" + std::to_string(backend.port));
  };
  if (affinity) {  // a client seen within the timeout goes back to the endpoint it had
    for (const auto& backend : backends) {
      Rule rule = dnat(backend);
      rule.recent = RecentMatch{listName(backend), false, service.affinity_timeout_seconds};
      chain.rules.push_back(rule);
    }
  }
  for (size_t i = 0; i < backends.size(); ++i) {
    Rule rule = dnat(backends[i]);
    size_t remaining = backends.size() - i;
    if (remaining > 1)
      rule.probability = statisticProbability(1.0 / static_cast<double>(remaining));
    if (affinity) rule.recent = RecentMatch{listName(backends[i]), true, 0};
    chain.rules.push_back(rule);
  }
  return chain;
}

// The prefix length whose buckets make the first packet's scan shortest: (number of buckets) +
// (largest bucket). Ties go to the shorter prefix, which means fewer chains.
int bucketPrefixLength(std::vector<uint32_t> addresses) {
  std::sort(addresses.begin(), addresses.end());
  int best_length = 0;
  size_t best_cost = SIZE_MAX;
  for (int length = 8; length <= 32; ++length) {
    uint32_t mask = prefixMask(length);
    size_t buckets = 0, largest = 0, run = 0;
    for (size_t i = 0; i < addresses.size(); ++i) {
      if (i == 0 || (addresses[i] & mask) != (addresses[i - 1] & mask)) {
        ++buckets;
        run = 0;
      }
      largest = std::max(largest, ++run);
    }
    if (buckets + largest < best_cost) {
      best_cost = buckets + largest;
      best_length = length;
    }
  }
  return best_length;
}

void fillServicesChain(Chain& services, std::vector<Dispatch> dispatches,
                       std::vector<Chain>& chains, const RouterOptions& options) {
  std::stable_sort(dispatches.begin(), dispatches.end(), [](const Dispatch& a, const Dispatch& b) {
    return a.cluster_ip < b.cluster_ip;
  });
  if (dispatches.size() <= options.bucket_threshold) {
    for (auto& dispatch : dispatches) services.rules.push_back(std::move(dispatch.rule));
    return;
  }
  std::vector<uint32_t> addresses;
  for (const auto& dispatch : dispatches) addresses.push_back(dispatch.cluster_ip);
  int length = bucketPrefixLength(std::move(addresses));
  uint32_t mask = prefixMask(length);
  std::map<uint32_t, Chain> buckets;
  for (auto& dispatch : dispatches) {
    uint32_t network = dispatch.cluster_ip & mask;
    auto [it, added] = buckets.try_emplace(network);
    if (added) {
      it->second.name = bucketChainName(network, length);
      Rule jump = jumpRule(it->second.name);
      jump.destination = {network, length};
      services.rules.push_back(jump);
    }
    it->second.rules.push_back(std::move(dispatch.rule));
  }
  for (auto& [network, chain] : buckets) chains.push_back(std::move(chain));
}

std::string portLabel(const store::ServicePort& port) {
  return port.name.empty() ? std::to_string(port.port) : port.name;
}

Table natSkeleton() {
  Table nat{"nat", {}, {}};
  nat.hooks = {{"PREROUTING", kServicesChain},
               {"OUTPUT", kServicesChain},
               {"POSTROUTING", kPostroutingChain}};
  Rule set_mark;
  set_mark.target.kind = TargetKind::kMark;
  set_mark.target.mark = kMasqueradeMark;
  set_mark.target.mark_mask = kMasqueradeMark;
  nat.chains.push_back({kMarkMasqueradeChain, {set_mark}});
  // Masquerade marked connections and clear the mark, so a packet that passes twice (hairpin
  // through another svcbox, say) is not masqueraded for a stale reason.
  Rule unmarked;
  unmarked.mark = MarkMatch{kMasqueradeMark, kMasqueradeMark, true};
  unmarked.target.kind = TargetKind::kReturn;
  Rule clear_mark;
  clear_mark.target.kind = TargetKind::kMark;
  clear_mark.target.mark = kMasqueradeMark;
  Rule masquerade;
  masquerade.target.kind = TargetKind::kMasquerade;
  nat.chains.push_back({kPostroutingChain, {unmarked, clear_mark, masquerade}});
  return nat;
}

Table filterSkeleton() {
  Table filter{"filter", {}, {}};
  filter.hooks = {
      {"INPUT", kServicesChain}, {"FORWARD", kForwardChain}, {"OUTPUT", kServicesChain}};
  // Forwarded Service traffic passes a DROP policy: marked connections and their replies.
  Rule marked;
  marked.mark = MarkMatch{kMasqueradeMark, kMasqueradeMark, false};
  marked.target.kind = TargetKind::kAccept;
  Rule established;
  established.ctstate =
      XT_CONNTRACK_STATE_BIT(IP_CT_RELATED) | XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED);
  established.target.kind = TargetKind::kAccept;
  filter.chains.push_back({kForwardChain, {jumpRule(kServicesChain), marked, established}});
  return filter;
}

void sortChains(Table& table) {
  std::sort(table.chains.begin(), table.chains.end(),
            [](const Chain& a, const Chain& b) { return a.name < b.name; });
}

}  // namespace

ServiceRules serviceRules(const store::ServiceEntry& entry, const RouterOptions& options) {
  ServiceRules out;
  const auto& service = entry.service;
  if (service.type != store::ServiceType::kClusterIP || service.headless || !service.cluster_ip) {
    return out;  // ExternalName and headless Services are DNS only
  }
  if (!service.cluster_ip->isV4()) {
    out.skipped_ipv6 = service.ports.size();
    return out;
  }
  uint32_t cluster_ip = ipv4Value(*service.cluster_ip);
  for (size_t i = 0; i < service.ports.size(); ++i) {
    const auto& port = service.ports[i];
    uint8_t protocol = port.protocol == store::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
    std::string comment = service.namespace_name + "/" + service.name + ":" + portLabel(port);
    std::string key = comment + "/" + store::protocolName(port.protocol);
    std::vector<Backend> backends;
    for (const auto& endpoint : entry.endpoints) {
      if (!endpoint.ready || !endpoint.ip.isV4() || i >= endpoint.ports.size() ||
          endpoint.ports[i] == 0) {
        continue;
      }
      backends.push_back({ipv4Value(endpoint.ip), endpoint.ports[i]});
    }
    ++out.service_ports;
    if (protocol == IPPROTO_UDP) {
      UdpServicePort udp{cluster_ip, port.port, {}};
      for (const auto& backend : backends) udp.endpoints.push_back(backend.address);
      std::sort(udp.endpoints.begin(), udp.endpoints.end());
      out.udp_ports.push_back(std::move(udp));
    }
    if (backends.empty()) {  // refused at once instead of a connection that hangs
      Rule reject = dispatchRule(cluster_ip, protocol, port.port, comment + " has no endpoints");
      reject.target.kind = TargetKind::kReject;
      out.rejects.push_back(std::move(reject));
      continue;
    }
    std::string chain_name = serviceChainName(key);
    Rule dispatch = dispatchRule(cluster_ip, protocol, port.port, comment);
    dispatch.target.chain = chain_name;
    out.dispatches.push_back({cluster_ip, std::move(dispatch)});
    out.chains.push_back(serviceChain(chain_name, key, protocol, backends, service, options));
  }
  return out;
}

DesiredState computeDesiredState(const store::Snapshot& snapshot, const RouterOptions& options) {
  DesiredState state;
  state.nat = natSkeleton();
  state.filter = filterSkeleton();
  state.mangle = Table{"mangle", {}, {{kCanaryChain, {}}}};
  Chain nat_services{kServicesChain, {}};
  Chain filter_services{kServicesChain, {}};
  std::vector<Dispatch> dispatches;
  for (const auto& entry : snapshot.services()) {
    ServiceRules rules = serviceRules(entry, options);
    state.service_ports += rules.service_ports;
    state.skipped_ipv6 += rules.skipped_ipv6;
    std::move(rules.udp_ports.begin(), rules.udp_ports.end(), std::back_inserter(state.udp_ports));
    std::move(rules.rejects.begin(), rules.rejects.end(),
              std::back_inserter(filter_services.rules));
    std::move(rules.dispatches.begin(), rules.dispatches.end(), std::back_inserter(dispatches));
    std::move(rules.chains.begin(), rules.chains.end(), std::back_inserter(state.nat.chains));
  }
  fillServicesChain(nat_services, std::move(dispatches), state.nat.chains, options);
  state.nat.chains.push_back(std::move(nat_services));
  state.filter.chains.push_back(std::move(filter_services));
  sortChains(state.nat);
  sortChains(state.filter);
  std::sort(state.udp_ports.begin(), state.udp_ports.end(), [](const auto& a, const auto& b) {
    return std::tie(a.cluster_ip, a.port) < std::tie(b.cluster_ip, b.port);
  });
  return state;
}

std::vector<std::string> consistencyProblems(const Table& table) {
  std::vector<std::string> problems;
  std::set<std::string> defined, referenced;
  for (const auto& chain : table.chains) {
    if (!defined.insert(chain.name).second)
      problems.push_back("chain defined twice: " + chain.name);
    if (chain.name.size() > kMaxChainNameLength) problems.push_back("name too long: " + chain.name);
    if (!isOwnedChain(chain.name)) problems.push_back("chain not owned by svcbox: " + chain.name);
  }
  std::set<std::string> hooked;
  for (const auto& hook : table.hooks) {
    referenced.insert(hook.chain);
    if (!hooked.insert(hook.builtin).second) problems.push_back("hooked twice: " + hook.builtin);
  }
  for (const auto& chain : table.chains) {
    for (const auto& rule : chain.rules) {
      if (rule.target.kind != TargetKind::kJump) continue;
      referenced.insert(rule.target.chain);
      if (rule.target.chain == chain.name)
        problems.push_back("chain jumps to itself: " + chain.name);
    }
  }
  for (const auto& name : referenced) {
    if (!defined.count(name)) problems.push_back("jump to a missing chain: " + name);
  }
  for (const auto& name : defined) {
    // Always present: the canary stands alone (its absence is the signal), and the masquerade
    // mark chain waits for the first Service with endpoints.
    if (!referenced.count(name) && name != kCanaryChain && name != kMarkMasqueradeChain) {
      problems.push_back("chain nobody jumps to: " + name);
    }
  }
  return problems;
}

}  // namespace svcbox::router
