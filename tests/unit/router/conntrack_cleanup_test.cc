#include "router/conntrack_cleanup.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

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

// The deleting side stands in for the conntrack dump, blocked until the test releases it.
TEST(ConntrackCleanerTest, SubmitNeverWaitsForADumpAndWhatArrivesMeanwhileIsOneCleanup) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::mutex mutex;
  std::vector<std::vector<StaleUdpFlow>> calls;
  std::vector<int> reported;
  ConntrackCleaner cleaner(
      [&](int deleted, const std::string&) {
        std::lock_guard lock(mutex);
        reported.push_back(deleted);
      },
      [&](const std::vector<StaleUdpFlow>& flows, std::string&) {
        {
          std::lock_guard lock(mutex);
          calls.push_back(flows);
        }
        released.wait();
        return static_cast<int>(flows.size());
      });
  StaleUdpFlow a{kDns, 53, kPodA}, b{kDns, 53, kPodB}, every{kDns, 53, std::nullopt};
  cleaner.submit({a});
  for (int i = 0; i < 500; ++i) {  // until the first dump runs (bounded: 5 s)
    std::lock_guard lock(mutex);
    if (!calls.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto start = std::chrono::steady_clock::now();
  cleaner.submit({b});
  cleaner.submit({every, b});
  cleaner.submit({});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
  release.set_value();
  for (int i = 0; i < 500 && cleaner.cleanups() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  cleaner.stop();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], std::vector<StaleUdpFlow>{a});
  EXPECT_EQ(calls[1], (std::vector<StaleUdpFlow>{b, every}));
  EXPECT_EQ(reported, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace svcbox::router
