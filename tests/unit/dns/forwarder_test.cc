#include "dns/forwarder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/temp_dir.h"

namespace svcbox::dns {
namespace {

std::vector<std::string> upstreams(const std::string& resolv_conf,
                                   const std::vector<OwnListener>& listeners,
                                   const std::vector<std::string>& local = {}) {
  svcbox::testing::TempDir dir;
  std::string path = dir.file("resolv.conf");
  std::ofstream(path) << resolv_conf;
  std::vector<store::IpAddress> local_addresses;
  for (const auto& text : local) local_addresses.push_back(*store::IpAddress::parse(text));
  std::vector<std::string> found;
  for (const auto& upstream : upstreamsFromResolvConf(path, listeners, local_addresses)) {
    found.push_back(upstream.toString());
  }
  return found;
}

OwnListener listener(const char* ip, uint16_t port) { return {*store::IpAddress::parse(ip), port}; }

TEST(UpstreamsTest, ResolvConfNameserversMinusSvcboxItself) {
  std::string conf =
      "# comment\nsearch example.org\nnameserver 127.0.0.1\nnameserver 192.0.2.53\n"
      "nameserver fe80::1%eth0\nnameserver 2001:db8::53\nnameserver 10.0.0.2\n";
  EXPECT_THAT(upstreams(conf, {listener("127.0.0.1", 53)}),
              ::testing::ElementsAre("192.0.2.53:53", "[2001:db8::53]:53", "10.0.0.2:53"));
  // Another port is another server.
  EXPECT_THAT(
      upstreams(conf, {listener("127.0.0.1", 1053)}),
      ::testing::ElementsAre("127.0.0.1:53", "192.0.2.53:53", "[2001:db8::53]:53", "10.0.0.2:53"));
  // A wildcard listener is every local address, loopback included.
  EXPECT_THAT(upstreams(conf, {listener("0.0.0.0", 53)}, {"10.0.0.2"}),
              ::testing::ElementsAre("192.0.2.53:53", "[2001:db8::53]:53"));
}

TEST(UpstreamsTest, ParsesAddressesAndPorts) {
  EXPECT_EQ(parseUpstream("192.0.2.1")->toString(), "192.0.2.1:53");
  EXPECT_EQ(parseUpstream("192.0.2.1:5353")->toString(), "192.0.2.1:5353");
  EXPECT_EQ(parseUpstream("[2001:db8::1]:54")->toString(), "[2001:db8::1]:54");
  EXPECT_EQ(parseUpstream("2001:db8::1")->toString(), "[2001:db8::1]:53");
  EXPECT_FALSE(parseUpstream("dns.google"));
  EXPECT_FALSE(parseUpstream("192.0.2.1:0"));
  EXPECT_FALSE(parseUpstream("192.0.2.1:70000"));
}

}  // namespace
}  // namespace svcbox::dns
