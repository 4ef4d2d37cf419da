#include "store/snapshot.h"

#include <gtest/gtest.h>

namespace svcbox::store {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

Pod pod(const std::string& name, const char* address, Labels labels, bool ready = true) {
  Pod pod;
  pod.name = name;
  pod.ips = {ip(address)};
  pod.labels = std::move(labels);
  pod.readiness.ready = ready;
  pod.ports = {ContainerPort{"web", "http", 8080, Protocol::kTcp}};
  return pod;
}

Service service(const std::string& name, Labels selector, PortRef target = PortRef{8080, {}}) {
  Service service;
  service.name = name;
  service.cluster_ip = ip("10.96.0.1");
  service.selector = std::move(selector);
  service.ports = {ServicePort{"", Protocol::kTcp, 80, target}};
  return service;
}

TEST(SelectorTest, EveryPairMustMatch) {
  EXPECT_TRUE(selectorMatches({{"app", "a"}}, {{"app", "a"}, {"tier", "web"}}));
  EXPECT_FALSE(selectorMatches({{"app", "a"}, {"tier", "db"}}, {{"app", "a"}, {"tier", "web"}}));
  EXPECT_FALSE(selectorMatches({{"app", "a"}}, {}));
}

TEST(ResolveEndpointsTest, SelectsPodsInTheSameNamespaceWithReadiness) {
  auto other_namespace = pod("c", "10.0.3.2", {{"app", "server_pod1"}});
  other_namespace.namespace_name = "prod";
  std::vector<Pod> pods = {pod("b", "10.0.2.2", {{"app", "server_pod1"}}, false),
                           pod("a", "10.0.1.2", {{"app", "server_pod1"}}),
                           pod("x", "10.0.9.9", {{"app", "other"}}), other_namespace};
  auto entries = resolveEndpoints({service("service-test", {{"app", "server_pod1"}})}, pods, {});
  ASSERT_EQ(entries.size(), 1u);
  const auto& endpoints = entries[0].endpoints;
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].ip.toString(), "10.0.1.2");  // sorted by address
  EXPECT_TRUE(endpoints[0].ready);
  EXPECT_EQ(endpoints[0].pod_name, "a");
  EXPECT_EQ(endpoints[0].ports, std::vector<uint16_t>{8080});
  EXPECT_EQ(endpoints[1].ip.toString(), "10.0.2.2");
  EXPECT_FALSE(endpoints[1].ready);
}

TEST(ResolveEndpointsTest, LongerSelectorsNeedEveryPairAndEmptyOnesTakeTheNamespace) {
  std::vector<Pod> pods = {pod("front", "10.0.0.1", {{"app", "web"}, {"tier", "front"}}),
                           pod("back", "10.0.0.2", {{"app", "web"}, {"tier", "back"}})};
  auto entries = resolveEndpoints(
      {service("front", {{"app", "web"}, {"tier", "front"}}), service("all", Labels{})}, pods, {});
  ASSERT_EQ(entries[0].endpoints.size(), 1u);
  EXPECT_EQ(entries[0].endpoints[0].pod_name, "front");
  EXPECT_EQ(entries[1].endpoints.size(), 2u);
}

TEST(ResolveEndpointsTest, ResolvesNamedTargetPortsPerPod) {
  auto first = pod("a", "10.0.1.2", {{"app", "web"}});
  auto second = pod("b", "10.0.2.2", {{"app", "web"}});
  second.ports = {ContainerPort{"web", "http", 9090, Protocol::kTcp}};
  auto third = pod("c", "10.0.3.2", {{"app", "web"}});
  third.ports.clear();  // no port named http: the endpoint lacks the port
  auto entries = resolveEndpoints({service("web", {{"app", "web"}}, PortRef{0, "http"})},
                                  {first, second, third}, {});
  const auto& endpoints = entries[0].endpoints;
  ASSERT_EQ(endpoints.size(), 3u);
  EXPECT_EQ(endpoints[0].ports[0], 8080);
  EXPECT_EQ(endpoints[1].ports[0], 9090);
  EXPECT_EQ(endpoints[2].ports[0], 0);
}

TEST(ResolveEndpointsTest, SelectorlessServicesUseEndpointSetsMatchedByPortName) {
  Service external = service("db", {});
  external.selector.reset();
  external.ports = {ServicePort{"pg", Protocol::kTcp, 5432, PortRef{5432, {}}}};
  EndpointSet slice;
  slice.kind = EndpointSet::Kind::kEndpointSlice;
  slice.name = "db-abc";
  slice.service_name = "db";
  slice.groups = {EndpointGroup{{EndpointAddress{ip("192.168.1.5"), true, "db-0", ""},
                                 EndpointAddress{ip("192.168.1.6"), false, "", ""}},
                                {EndpointPort{"pg", 15432, Protocol::kTcp}}}};
  auto entries = resolveEndpoints({external}, {pod("a", "10.0.1.2", {{"app", "db"}})}, {slice});
  const auto& endpoints = entries[0].endpoints;
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].ip.toString(), "192.168.1.5");
  EXPECT_EQ(endpoints[0].ports[0], 15432);
  EXPECT_EQ(endpoints[0].hostname, "db-0");
  EXPECT_FALSE(endpoints[1].ready);
}

TEST(ResolveEndpointsTest, ExternalNameHasNoEndpointsAndHeadlessGivesHostnames) {
  Service external = service("ext", {{"app", "a"}});
  external.type = ServiceType::kExternalName;
  external.cluster_ip.reset();
  Service headless = service("db", {{"app", "a"}});
  headless.cluster_ip.reset();
  headless.headless = true;
  auto member = pod("a", "10.0.1.2", {{"app", "a"}});
  member.hostname = "db-0";
  member.subdomain = "db";
  auto entries = resolveEndpoints({external, headless}, {member}, {});
  EXPECT_TRUE(entries[0].endpoints.empty());
  ASSERT_EQ(entries[1].endpoints.size(), 1u);
  EXPECT_EQ(entries[1].endpoints[0].hostname, "db-0");
}

TEST(SnapshotTest, FindsByNameAndByAddress) {
  auto entries = resolveEndpoints({service("web", {{"app", "a"}})},
                                  {pod("a", "10.0.1.2", {{"app", "a"}})}, {});
  Snapshot snapshot(7, Cidr::parse("10.96.0.0/12"), entries, {pod("a", "10.0.1.2", {{"app", "a"}})},
                    {});
  EXPECT_EQ(snapshot.version(), 7u);
  ASSERT_NE(snapshot.findService("default", "web"), nullptr);
  EXPECT_EQ(snapshot.findService("default", "nope"), nullptr);
  EXPECT_EQ(snapshot.findService("other", "web"), nullptr);
  EXPECT_EQ(snapshot.findServiceByIp(ip("10.96.0.1"))->service.name, "web");
  EXPECT_EQ(snapshot.findServiceByIp(ip("10.96.0.2")), nullptr);
  ASSERT_EQ(snapshot.findPodsByIp(ip("10.0.1.2")).size(), 1u);
  EXPECT_EQ(snapshot.findPod("default", "a")->name, "a");
}

}  // namespace
}  // namespace svcbox::store
