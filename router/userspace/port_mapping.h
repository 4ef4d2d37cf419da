#pragma once

#include <cstdint>
#include <string>

#include "store/snapshot.h"

namespace svcbox::router::userspace {

// Where one Service port is served.
struct PortMapping {
  std::string namespace_name;
  std::string name;
  std::string port_name;
  store::Protocol protocol = store::Protocol::kTcp;
  uint16_t service_port = 0;
  store::IpAddress address;
  uint16_t listen_port = 0;
  bool operator==(const PortMapping&) const = default;
};

// Totals since start, per Service port.
struct PortStats {
  std::string namespace_name;
  std::string name;
  store::Protocol protocol = store::Protocol::kTcp;
  uint16_t service_port = 0;
  uint64_t accepted = 0;  // TCP connections accepted, UDP sessions opened
  uint64_t refused = 0;   // TCP connections not redirected from the Service (REDIRECT mode)
  uint64_t failed = 0;    // no ready pod answered, or over the connection limit
  uint64_t retried = 0;   // connects to the next pod after one failed
  uint64_t bytes_to_pods = 0;
  uint64_t bytes_to_clients = 0;
  uint64_t active = 0;  // connections or sessions open now
};

}  // namespace svcbox::router::userspace
