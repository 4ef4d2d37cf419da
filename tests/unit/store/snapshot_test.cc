#include "store/snapshot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

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

// Ten Services (svc-0 .. svc-9, app=s0 .. s9) with two pods each, in name order.
struct Fleet {
  std::vector<std::shared_ptr<const Service>> services;
  std::vector<PodPtr> pods;
};

Fleet fleet() {
  Fleet fleet;
  for (int i = 0; i < 10; ++i) {
    auto app = "s" + std::to_string(i);
    fleet.services.push_back(
        std::make_shared<const Service>(service("svc-" + std::to_string(i), {{"app", app}})));
    for (int j = 0; j < 2; ++j) {
      auto address = "10.0." + std::to_string(i) + "." + std::to_string(j + 2);
      fleet.pods.push_back(std::make_shared<const Pod>(pod(
          "p-" + std::to_string(i) + "-" + std::to_string(j), address.c_str(), {{"app", app}})));
    }
  }
  return fleet;
}

std::vector<ServiceEntry> resolveAll(const Fleet& fleet) {
  std::vector<Service> copies;
  for (const auto& service : fleet.services) copies.push_back(*service);
  return resolveEndpoints(std::move(copies), fleet.pods, {});
}

TEST(ResolveEndpointsSharingTest, ResolvesOnlyTheServicesAChangeTouches) {
  Fleet first = fleet();
  auto first_entries = resolveEndpointsSharing(nullptr, first.services, first.pods, {});
  auto expected_first = resolveAll(first);
  ASSERT_EQ(first_entries.size(), expected_first.size());
  for (size_t i = 0; i < first_entries.size(); ++i) EXPECT_EQ(*first_entries[i], expected_first[i]);
  Snapshot before(1, std::nullopt, first_entries, first.pods, {}, 0, nullptr);

  // The next rebuild sees unchanged rows as the Services of the entries (as the registry keeps
  // them), and new objects for what changed.
  Fleet next;
  for (const auto& entry : before.sharedServices()) {
    next.services.push_back(std::shared_ptr<const Service>(entry, &entry->service));
  }
  next.pods = first.pods;
  Pod unready = *next.pods[3 * 2 + 1];  // p-3-1
  unready.readiness.ready = false;
  next.pods[3 * 2 + 1] = std::make_shared<const Pod>(unready);
  Pod moved = *next.pods[5 * 2];  // p-5-0 leaves svc-5 for svc-6
  moved.labels = {{"app", "s6"}};
  next.pods[5 * 2] = std::make_shared<const Pod>(moved);
  Service renumbered = *next.services[8];
  renumbered.ports[0].port = 81;
  next.services[8] = std::make_shared<const Service>(renumbered);

  auto entries = resolveEndpointsSharing(&before, next.services, next.pods, {});
  auto expected = resolveAll(next);
  ASSERT_EQ(entries.size(), expected.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(*entries[i], expected[i]) << "svc-" << i;
    bool touched = i == 3 || i == 5 || i == 6 || i == 8;
    EXPECT_EQ(entries[i] == before.sharedServices()[i], !touched) << "svc-" << i;
  }
  EXPECT_FALSE(entries[3]->endpoints[1].ready);
  EXPECT_EQ(entries[5]->endpoints.size(), 1u);
  EXPECT_EQ(entries[6]->endpoints.size(), 3u);

  // The address index of `before` is reused (no address moved) and still finds everything.
  Snapshot after(2, std::nullopt, entries, next.pods, {}, 0, &before);
  ASSERT_NE(after.findServiceByIp(ip("10.96.0.1")), nullptr);
  ASSERT_EQ(after.findPodsByIp(ip("10.0.5.2")).size(), 1u);
  EXPECT_EQ(after.findPodsByIp(ip("10.0.5.2"))[0]->labels.at("app"), "s6");
}

TEST(ResolveEndpointsSharingTest, AddedAndRemovedPodsAndServicesAreResolved) {
  Fleet first = fleet();
  Snapshot before(1, std::nullopt, resolveEndpointsSharing(nullptr, first.services, first.pods, {}),
                  first.pods, {}, 0, nullptr);
  Fleet next;
  for (const auto& entry : before.sharedServices()) {
    next.services.push_back(std::shared_ptr<const Service>(entry, &entry->service));
  }
  next.services.erase(next.services.begin() + 2);  // svc-2 deleted
  next.pods = first.pods;
  next.pods.erase(next.pods.begin() + 1);  // p-0-1 deleted
  next.pods.push_back(std::make_shared<const Pod>(pod("p-9-2", "10.0.9.4", {{"app", "s9"}})));
  auto entries = resolveEndpointsSharing(&before, next.services, next.pods, {});
  auto expected = resolveAll(next);
  ASSERT_EQ(entries.size(), 9u);
  for (size_t i = 0; i < entries.size(); ++i) EXPECT_EQ(*entries[i], expected[i]) << i;
  EXPECT_EQ(entries[0]->endpoints.size(), 1u);        // svc-0 lost p-0-1
  EXPECT_EQ(entries[8]->endpoints.size(), 3u);        // svc-9 gained p-9-2
  EXPECT_EQ(entries[1], before.sharedServices()[1]);  // svc-1 untouched: shared
}

// Random pod changes in a small cluster where addresses collide, selectors overlap and pods move
// between namespaces' Services: every rebuild must equal a whole resolution, and the patched pod
// index a fresh one.
TEST(ResolveEndpointsSharingTest, RandomPodChangesMatchAWholeResolution) {
  std::mt19937 random(7);
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  const std::vector<std::string> apps = {"a", "b", "c"};
  const std::vector<std::string> addresses = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
                                              "10.0.0.5", "10.0.0.6", "10.0.0.7"};
  auto randomPod = [&](const std::string& name) {
    Pod made =
        pod(name, addresses[pick(addresses.size())].c_str(),
            {{"app", apps[pick(apps.size())]}, {"tier", pick(2) ? "web" : "db"}}, pick(4) != 0);
    if (pick(2)) made.namespace_name = "other";
    if (pick(3) == 0) made.subdomain = "hl-a";
    made.hostname = name;
    return made;
  };
  Fleet current;
  for (const auto& ns : {"default", "other"}) {
    for (const auto& app : apps) {
      Service by_app = service("svc-" + app, {{"app", app}});
      by_app.namespace_name = ns;
      current.services.push_back(std::make_shared<const Service>(by_app));
      Service web = service("web-" + app, {{"app", app}, {"tier", "web"}});
      web.namespace_name = ns;
      current.services.push_back(std::make_shared<const Service>(web));
    }
    Service headless = service("hl-a", {{"app", "a"}});
    headless.namespace_name = ns;
    headless.headless = true;
    current.services.push_back(std::make_shared<const Service>(headless));
  }
  std::sort(current.services.begin(), current.services.end(), [](const auto& a, const auto& b) {
    return std::tie(a->namespace_name, a->name) < std::tie(b->namespace_name, b->name);
  });
  int next_pod = 0;
  for (int i = 0; i < 12; ++i) {
    current.pods.push_back(
        std::make_shared<const Pod>(randomPod("p" + std::to_string(next_pod++))));
  }
  auto sortPods = [](std::vector<PodPtr>& pods) {
    std::sort(pods.begin(), pods.end(), [](const auto& a, const auto& b) {
      return std::tie(a->namespace_name, a->name) < std::tie(b->namespace_name, b->name);
    });
  };
  sortPods(current.pods);
  auto snapshot = std::make_shared<const Snapshot>(
      1, std::nullopt, resolveEndpointsSharing(nullptr, current.services, current.pods, {}),
      current.pods, std::vector<EndpointSet>{}, 0, nullptr);
  size_t shared = 0;
  for (uint64_t version = 2; version < 300; ++version) {
    Fleet next;
    for (const auto& entry : snapshot->sharedServices()) {
      next.services.push_back(std::shared_ptr<const Service>(entry, &entry->service));
    }
    next.pods = current.pods;
    for (size_t c = 1 + pick(2); c > 0; --c) {
      size_t at = pick(next.pods.size());
      Pod changed = *next.pods[at];
      switch (pick(6)) {
        case 0:
          changed.readiness.ready = !changed.readiness.ready;
          break;
        case 1:
          changed.labels["app"] = apps[pick(apps.size())];
          break;
        case 2:
          changed.ips = {ip(addresses[pick(addresses.size())].c_str())};
          break;
        case 3:
          changed.labels["tier"] = changed.labels["tier"] == "web" ? "db" : "web";
          break;
        case 4:
          if (next.pods.size() > 4) {
            next.pods.erase(next.pods.begin() + static_cast<std::ptrdiff_t>(at));
            continue;
          }
          break;
        case 5:
          next.pods.push_back(
              std::make_shared<const Pod>(randomPod("p" + std::to_string(next_pod++))));
          continue;
      }
      next.pods[at] = std::make_shared<const Pod>(changed);
    }
    sortPods(next.pods);
    SCOPED_TRACE("version " + std::to_string(version));
    auto entries = resolveEndpointsSharing(snapshot.get(), next.services, next.pods, {});
    auto expected = resolveAll(next);
    ASSERT_EQ(entries.size(), expected.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(*entries[i], expected[i])
          << next.services[i]->namespace_name << "/" << next.services[i]->name;
      shared += entries[i] == snapshot->sharedServices()[i];
    }
    auto rebuilt = std::make_shared<const Snapshot>(version, std::nullopt, entries, next.pods,
                                                    std::vector<EndpointSet>{}, 0, snapshot.get());
    Snapshot fresh(version, std::nullopt, entries, next.pods, {}, 0, nullptr);
    for (const auto& address : addresses) {
      EXPECT_EQ(rebuilt->findPodsByIp(ip(address.c_str())), fresh.findPodsByIp(ip(address.c_str())))
          << address;
    }
    snapshot = rebuilt;
    current = next;
  }
  EXPECT_GT(shared, 1000u);  // sharing happened: the narrowed and shared paths were taken
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
