#include "router/conntrack_cleanup.h"

#include <gtest/gtest.h>

#include "router/chain_names.h"

namespace svcbox::router {
namespace {

constexpr uint32_t kDns = 0x0a60000a;  // 10.96.0.10
constexpr uint32_t kPodA = 0x0af40102, kPodB = 0x0af40202;

TEST(StaleUdpFlowsTest, AnEndpointLeavingStalesOnlyItsFlows) {
  auto stale = staleUdpFlows({{kDns, 53, {kPodA, kPodB}}}, {{kDns, 53, {kPodB}}});
  EXPECT_EQ(stale, (std::vector<StaleUdpFlow>{{kDns, 53, kPodA}}));
}

TEST(StaleUdpFlowsTest, FromNoEndpointToSomeStalesEveryFlowOfThePort) {
  // Before, datagrams met REJECT (or nothing) and conntrack remembers that path.
  auto stale = staleUdpFlows({{kDns, 53, {}}}, {{kDns, 53, {kPodA}}});
  EXPECT_EQ(stale, (std::vector<StaleUdpFlow>{{kDns, 53, std::nullopt}}));
}

TEST(StaleUdpFlowsTest, ARemovedPortStalesEveryFlowAndNothingElseChanges) {
  EXPECT_EQ(staleUdpFlows({{kDns, 53, {kPodA}}}, {}),
            (std::vector<StaleUdpFlow>{{kDns, 53, std::nullopt}}));
  EXPECT_TRUE(staleUdpFlows({{kDns, 53, {kPodA}}}, {{kDns, 53, {kPodA, kPodB}}}).empty());
  EXPECT_TRUE(staleUdpFlows({}, {{kDns, 53, {kPodA}}}).empty());
}

TEST(ChainNamesTest, HashesAreStableAndNamesFitTheKernel) {
  // Computed apart: FNV-1a 64 of the text, big-endian bytes, RFC 4648 base32, 13 characters.
  EXPECT_EQ(nameHash("default/web:http/TCP"), "V2NN5WUJSMZPW");
  EXPECT_EQ(serviceChainName("default/web:http/TCP"), "SVCBOX-SVC-V2NN5WUJSMZPW");
  EXPECT_EQ(bucketChainName(0xffffff80, 25), "SVCBOX-IP-255.255.255.128-25");  // the longest
  EXPECT_EQ(bucketChainName(0xffffff80, 25).size(), kMaxChainNameLength);
  EXPECT_EQ(bucketChainName(0x0a640380, 25), "SVCBOX-IP-10.100.3.128-25");
}

}  // namespace
}  // namespace svcbox::router
