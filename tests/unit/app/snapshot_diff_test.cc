#include "app/snapshot_diff.h"

#include <gtest/gtest.h>

namespace svcbox::app {
namespace {

using namespace store;

Snapshot make(uint64_t version, bool second_ready, bool with_service = true) {
  Service service;
  service.name = "web";
  service.cluster_ip = IpAddress::parse("10.96.0.1");
  service.selector = Labels{{"app", "web"}};
  service.ports = {ServicePort{"", Protocol::kTcp, 80, {8080, {}}}};
  std::vector<Pod> pods;
  for (int i = 1; i <= 2; ++i) {
    Pod pod;
    pod.name = "pod-" + std::to_string(i);
    pod.labels = {{"app", "web"}};
    pod.ips = {*IpAddress::parse("10.0.0." + std::to_string(i))};
    pod.readiness =
        Readiness{i == 1 || second_ready, i == 1 || second_ready ? "ok" : "probe failed", 0};
    pods.push_back(pod);
  }
  std::vector<Service> services;
  if (with_service) services.push_back(service);
  return Snapshot(version, std::nullopt, resolveEndpoints(services, pods, {}), pods, {});
}

TEST(SnapshotDiffTest, DescribesAdditionsReadinessAndRemovals) {
  auto first = make(1, true);
  auto lines = describeChanges(nullptr, first);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "service default/web added (clusterIP 10.96.0.1, ports 80/TCP)");
  EXPECT_EQ(lines[1], "endpoints default/web: +10.0.0.1:8080 +10.0.0.2:8080");

  auto second = make(2, false);
  lines = describeChanges(&first, second);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "endpoints default/web: +10.0.0.2:8080 (not ready) -10.0.0.2:8080");
  EXPECT_EQ(lines[1], "pod default/pod-2 became not ready: probe failed");

  auto third = make(3, false, false);
  lines = describeChanges(&second, third);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "service default/web removed");
  EXPECT_TRUE(describeChanges(&third, third).empty());
}

}  // namespace
}  // namespace svcbox::app
