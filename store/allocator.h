#pragma once

#include <cstdint>
#include <set>

#include "store/ip.h"
#include "store/result.h"

namespace svcbox::store {

// Hands out ClusterIPs from the service CIDR: the lowest free address, never the network
// address nor (IPv4) the broadcast address.
class ClusterIpAllocator {
 public:
  explicit ClusterIpAllocator(Cidr cidr) : cidr_(cidr) {}

  const Cidr& cidr() const { return cidr_; }
  void markUsed(const IpAddress& address);
  void release(const IpAddress& address);
  // Why `address` cannot be requested, or an empty string when it can.
  std::string checkRequest(const IpAddress& address) const;
  Result<IpAddress> allocate();

 private:
  uint64_t firstUsable() const { return 1; }
  uint64_t lastUsable() const;

  Cidr cidr_;
  std::set<uint64_t> used_;
  uint64_t cursor_ = 1;  // every offset below the cursor is known to be in use
};

}  // namespace svcbox::store
