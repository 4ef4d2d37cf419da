#include "store/ip.h"

#include <gtest/gtest.h>

namespace svcbox::store {
namespace {

TEST(IpAddressTest, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("10.96.0.10");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->isV4());
  EXPECT_EQ(v4->toString(), "10.96.0.10");
  auto v6 = IpAddress::parse("fd00::a");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->isV4());
  EXPECT_EQ(v6->toString(), "fd00::a");
}

TEST(IpAddressTest, KnowsUnspecifiedAndLoopbackAddresses) {
  EXPECT_TRUE(IpAddress::parse("0.0.0.0")->isUnspecified());
  EXPECT_TRUE(IpAddress::parse("::")->isUnspecified());
  EXPECT_FALSE(IpAddress::parse("0.0.0.1")->isUnspecified());
  EXPECT_TRUE(IpAddress::parse("127.0.0.53")->isLoopback());
  EXPECT_TRUE(IpAddress::parse("::1")->isLoopback());
  EXPECT_FALSE(IpAddress::parse("::2")->isLoopback());
  EXPECT_FALSE(IpAddress::parse("10.0.0.1")->isLoopback());
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* text :
       {"", "10.0.0", "10.0.0.256", "abc", "10.0.0.1/32", " 10.0.0.1", "1::2::3"}) {
    EXPECT_FALSE(IpAddress::parse(text)) << text;
  }
}

TEST(CidrTest, ContainsOnlyItsOwnAddresses) {
  auto cidr = Cidr::parse("10.96.0.0/12");
  ASSERT_TRUE(cidr);
  EXPECT_TRUE(cidr->contains(*IpAddress::parse("10.96.0.1")));
  EXPECT_TRUE(cidr->contains(*IpAddress::parse("10.111.255.254")));
  EXPECT_FALSE(cidr->contains(*IpAddress::parse("10.112.0.1")));
  EXPECT_FALSE(cidr->contains(*IpAddress::parse("fd00::1")));
  EXPECT_EQ(cidr->hostBits(), 20);
}

TEST(CidrTest, RejectsHostBitsAndBadLengths) {
  EXPECT_FALSE(Cidr::parse("10.96.0.1/12"));
  EXPECT_FALSE(Cidr::parse("10.96.0.0/33"));
  EXPECT_FALSE(Cidr::parse("10.96.0.0"));
  EXPECT_FALSE(Cidr::parse("10.96.0.0/x"));
  EXPECT_TRUE(Cidr::parse("fd00:10:96::/112"));
}

TEST(CidrTest, OffsetsRoundTrip) {
  auto cidr = *Cidr::parse("10.96.0.0/12");
  auto address = cidr.addressAt(300);
  EXPECT_EQ(address.toString(), "10.96.1.44");
  EXPECT_EQ(cidr.offsetOf(address), 300u);
  auto v6 = *Cidr::parse("fd00:10:96::/112");
  EXPECT_EQ(v6.addressAt(0x1234).toString(), "fd00:10:96::1234");
  EXPECT_EQ(v6.offsetOf(*IpAddress::parse("fd00:10:96::ffff")), 0xffffu);
}

}  // namespace
}  // namespace svcbox::store
