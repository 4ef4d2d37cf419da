#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "router/desired_state.h"

// UDP has no connection to end: conntrack keeps a client's flow pointed at the pod it was first
// sent to (or, before there were endpoints, at no pod) for as long as datagrams keep coming. After
// such a change svcbox deletes those entries so the next datagram is routed afresh.
namespace svcbox::router {

struct StaleUdpFlow {
  uint32_t cluster_ip = 0;
  uint16_t port = 0;
  std::optional<uint32_t> endpoint;  // only flows answered by this pod; none: every flow
  bool operator==(const StaleUdpFlow&) const = default;
};

// What changed between two syncs: endpoints that left, Service ports that went from no endpoint
// to some (their flows hit REJECT or nothing), and Service ports that are gone.
std::vector<StaleUdpFlow> staleUdpFlows(const std::vector<UdpServicePort>& before,
                                        const std::vector<UdpServicePort>& after);

// Deletes the matching conntrack entries of this network namespace. Returns the number deleted,
// or -1 with `error` set.
int deleteUdpFlows(const std::vector<StaleUdpFlow>& flows, std::string& error);

}  // namespace svcbox::router
