#include "store/allocator.h"

namespace svcbox::store {

uint64_t ClusterIpAllocator::lastUsable() const {
  int bits = cidr_.hostBits();
  uint64_t last = bits >= 64 ? UINT64_MAX : (uint64_t{1} << bits) - 1;
  return cidr_.base.isV4() ? last - 1 : last;  // IPv4 keeps the broadcast address free
}

void ClusterIpAllocator::markUsed(const IpAddress& address) {
  if (cidr_.contains(address)) used_.insert(cidr_.offsetOf(address));
}

void ClusterIpAllocator::release(const IpAddress& address) {
  if (!cidr_.contains(address)) return;
  uint64_t offset = cidr_.offsetOf(address);
  used_.erase(offset);
  if (offset < cursor_) cursor_ = offset;
}

std::string ClusterIpAllocator::checkRequest(const IpAddress& address) const {
  if (!cidr_.contains(address)) {
    return address.toString() + " is outside the service CIDR " + cidr_.toString() +
           "; pick an address inside it or leave spec.clusterIP out to have one allocated";
  }
  uint64_t offset = cidr_.offsetOf(address);
  if (offset == 0) {
    return address.toString() + " is the network address of " + cidr_.toString() +
           " and cannot be a ClusterIP";
  }
  if (offset > lastUsable()) {
    return address.toString() + " is the broadcast address of " + cidr_.toString() +
           " and cannot be a ClusterIP";
  }
  return {};
}

Result<IpAddress> ClusterIpAllocator::allocate() {
  uint64_t last = lastUsable();
  if (last < firstUsable()) {
    return Error{ErrorKind::kConflict,
                 "the service CIDR " + cidr_.toString() + " has no usable address",
                 "spec.clusterIP"};
  }
  while (cursor_ <= last && used_.contains(cursor_)) ++cursor_;
  if (cursor_ > last || cursor_ < firstUsable()) {
    return Error{ErrorKind::kConflict,
                 "the service CIDR " + cidr_.toString() +
                     " is full; delete Services you no longer need or start a registry with a "
                     "larger --service-cidr",
                 "spec.clusterIP"};
  }
  used_.insert(cursor_);
  return cidr_.addressAt(cursor_++);
}

}  // namespace svcbox::store
