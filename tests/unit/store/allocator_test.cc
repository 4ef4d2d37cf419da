#include "store/allocator.h"

#include <gtest/gtest.h>

namespace svcbox::store {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

TEST(AllocatorTest, HandsOutTheLowestFreeAddressSkippingTheNetworkAddress) {
  ClusterIpAllocator allocator(*Cidr::parse("10.96.0.0/12"));
  allocator.markUsed(ip("10.96.0.2"));
  EXPECT_EQ(allocator.allocate()->toString(), "10.96.0.1");
  EXPECT_EQ(allocator.allocate()->toString(), "10.96.0.3");
}

TEST(AllocatorTest, ReusesReleasedAddresses) {
  ClusterIpAllocator allocator(*Cidr::parse("10.96.0.0/12"));
  auto first = *allocator.allocate();
  auto second = *allocator.allocate();
  allocator.release(first);
  EXPECT_EQ(*allocator.allocate(), first);
  EXPECT_NE(*allocator.allocate(), second);
}

TEST(AllocatorTest, NeverGivesTheBroadcastAddressAndReportsAFullRange) {
  ClusterIpAllocator allocator(*Cidr::parse("10.0.0.0/30"));  // .1 and .2 are usable
  EXPECT_EQ(allocator.allocate()->toString(), "10.0.0.1");
  EXPECT_EQ(allocator.allocate()->toString(), "10.0.0.2");
  auto full = allocator.allocate();
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().kind, ErrorKind::kConflict);
  EXPECT_NE(full.error().message.find("is full"), std::string::npos);
}

TEST(AllocatorTest, ChecksRequestedAddresses) {
  ClusterIpAllocator allocator(*Cidr::parse("10.96.0.0/12"));
  EXPECT_EQ(allocator.checkRequest(ip("10.96.5.5")), "");
  EXPECT_NE(allocator.checkRequest(ip("10.200.0.1")).find("outside the service CIDR"),
            std::string::npos);
  EXPECT_NE(allocator.checkRequest(ip("10.96.0.0")).find("network address"), std::string::npos);
  EXPECT_NE(allocator.checkRequest(ip("10.111.255.255")).find("broadcast address"),
            std::string::npos);
  EXPECT_NE(allocator.checkRequest(ip("fd00::1")).find("outside"), std::string::npos);
}

TEST(AllocatorTest, AllocatesIpv6) {
  ClusterIpAllocator allocator(*Cidr::parse("fd00:10:96::/112"));
  EXPECT_EQ(allocator.allocate()->toString(), "fd00:10:96::1");
}

}  // namespace
}  // namespace svcbox::store
