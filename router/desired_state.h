#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "router/ruleset.h"
#include "store/snapshot.h"

namespace svcbox::router {

struct RouterOptions {
  // Sources outside it are masqueraded (kube-proxy's --cluster-cidr); unset: only hairpin.
  std::optional<Ipv4Prefix> cluster_cidr;
  // Masquerade every Service connection: one-armed setups where clients and pods share a network.
  bool masquerade_all = false;
  // Up to this many Service ports, SVCBOX-SERVICES holds every dispatch rule itself; above it the
  // rules go into one chain per ClusterIP prefix so the first packet scans about 2*sqrt(N) rules.
  size_t bucket_threshold = 64;
};

// One UDP Service port and the endpoints it sends to: what conntrack cleanup compares.
struct UdpServicePort {
  uint32_t cluster_ip = 0;
  uint16_t port = 0;
  std::vector<uint32_t> endpoints;  // ready endpoint addresses, sorted
  bool operator==(const UdpServicePort&) const = default;
};

struct DesiredState {
  Table nat;
  Table filter;
  Table mangle;  // only the canary chain: a cheap table to read that an external flush empties
  std::vector<UdpServicePort> udp_ports;  // sorted by (cluster_ip, port)
  size_t service_ports = 0;               // with a ClusterIP rule (nat or filter)
  size_t skipped_ipv6 = 0;                // IPv6 ClusterIPs: not routed yet
};

// A Service port's ClusterIP side: what SVCBOX-SERVICES (or its bucket) matches.
struct Dispatch {
  uint32_t cluster_ip = 0;
  Rule rule;
  bool operator==(const Dispatch&) const = default;
};

// What one Service adds to the desired state.
struct ServiceRules {
  std::vector<Chain> chains;         // nat: one per port with ready endpoints
  std::vector<Dispatch> dispatches;  // into those chains, from SVCBOX-SERVICES or its buckets
  std::vector<Rule> rejects;         // filter SVCBOX-SERVICES: ports without ready endpoints
  std::vector<UdpServicePort> udp_ports;
  size_t service_ports = 0;
  size_t skipped_ipv6 = 0;
};
ServiceRules serviceRules(const store::ServiceEntry& entry, const RouterOptions& options);

// A pure function of the snapshot (readiness included) and the options: no kernel, no SQLite.
DesiredState computeDesiredState(const store::Snapshot& snapshot, const RouterOptions& options);

// Problems in a ruleset a sync would fail on: a jump to a chain that does not exist, a chain no
// one jumps to, a name too long for the kernel. Empty when consistent.
std::vector<std::string> consistencyProblems(const Table& table);

}  // namespace svcbox::router
