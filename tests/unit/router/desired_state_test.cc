#include "router/desired_state.h"

#include <gtest/gtest.h>

#include "router/rule_text.h"

// The desired ruleset for small registries, compared with listings written out by hand in
// iptables-legacy-save's own format. The SVC/AFF hashes were computed apart from this code:
//   python3 -c 'import base64; ...FNV-1a 64 of "default/web:http/TCP"...'  (see nameHash)
namespace svcbox::router {
namespace {

using store::IpAddress;
using store::Labels;
using store::Pod;
using store::Protocol;
using store::Service;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

Pod pod(const std::string& name, const char* address, Labels labels, uint16_t http_port = 8080,
        bool ready = true) {
  Pod pod;
  pod.name = name;
  pod.ips = {ip(address)};
  pod.labels = std::move(labels);
  pod.readiness.ready = ready;
  pod.ports = {store::ContainerPort{"main", "http", http_port, Protocol::kTcp}};
  return pod;
}

Service service(const std::string& ns, const std::string& name, const char* cluster_ip,
                Labels selector, std::vector<store::ServicePort> ports) {
  Service service;
  service.namespace_name = ns;
  service.name = name;
  service.cluster_ip = ip(cluster_ip);
  service.selector = std::move(selector);
  service.ports = std::move(ports);
  return service;
}

store::ServicePort tcp(const char* name, uint16_t port, store::PortRef target) {
  return {name, Protocol::kTcp, port, std::move(target)};
}

store::Snapshot snapshotOf(std::vector<Service> services, std::vector<Pod> pods) {
  auto entries = store::resolveEndpoints(std::move(services), pods, {});
  return store::Snapshot(7, std::nullopt, std::move(entries), std::move(pods), {});
}

// The registry of most tests: a named targetPort resolved per pod, a pod that is not ready, a
// Service without endpoints, a UDP+TCP Service, ClientIP affinity, and two kinds of Service that
// must produce no rule at all.
store::Snapshot sampleCluster() {
  auto dns = service("kube-system", "dns", "10.96.0.53", {{"app", "dns"}},
                     {{"dns", Protocol::kUdp, 53, {53, ""}}, tcp("dns-tcp", 53, {53, ""})});
  auto sticky =
      service("default", "sticky", "10.96.0.20", {{"app", "sticky"}}, {tcp("", 80, {8080, ""})});
  sticky.session_affinity = store::SessionAffinity::kClientIP;
  sticky.affinity_timeout_seconds = 600;
  Service external;
  external.name = "external";
  external.type = store::ServiceType::kExternalName;
  external.external_name = "example.com";
  Service headless = service("default", "headless", "10.96.0.99", {{"app", "web"}},
                             {tcp("http", 80, {0, "http"})});
  headless.headless = true;
  headless.cluster_ip.reset();
  auto dns_pod = pod("dns-0", "10.244.1.5", {{"app", "dns"}});
  dns_pod.namespace_name = "kube-system";
  return snapshotOf(
      {service("default", "web", "10.96.0.10", {{"app", "web"}}, {tcp("http", 80, {0, "http"})}),
       service("default", "empty", "10.96.0.11", {{"app", "nothing"}}, {tcp("http", 80, {80, ""})}),
       dns, sticky, external, headless},
      {pod("a", "10.244.1.2", {{"app", "web"}}), pod("b", "10.244.2.2", {{"app", "web"}}, 9090),
       pod("c", "10.244.3.2", {{"app", "web"}}, 8080, false), dns_pod,
       pod("s", "10.244.4.2", {{"app", "sticky"}}), pod("t", "10.244.5.2", {{"app", "sticky"}})});
}

using Lines = std::vector<std::string>;

TEST(DesiredStateTest, NatTableForTheSampleCluster) {
  auto state = computeDesiredState(sampleCluster(), RouterOptions{});
  Lines expected = {
      ":SVCBOX-MARK-MASQ - [0:0]",
      ":SVCBOX-POSTROUTING - [0:0]",
      ":SVCBOX-SERVICES - [0:0]",
      ":SVCBOX-SVC-IAGMCUSRCY55E - [0:0]",
      ":SVCBOX-SVC-R4HIAU2GBFEGO - [0:0]",
      ":SVCBOX-SVC-V2NN5WUJSMZPW - [0:0]",
      ":SVCBOX-SVC-VIQEX2XEHBN6S - [0:0]",
      "-A PREROUTING -j SVCBOX-SERVICES",
      "-A OUTPUT -j SVCBOX-SERVICES",
      "-A POSTROUTING -j SVCBOX-POSTROUTING",
      "-A SVCBOX-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
      "-A SVCBOX-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
      "-A SVCBOX-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
      "-A SVCBOX-POSTROUTING -j MASQUERADE",
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:http\" -m tcp "
      "--dport 80 -j SVCBOX-SVC-V2NN5WUJSMZPW",
      "-A SVCBOX-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment \"default/sticky:80\" -m "
      "tcp "
      "--dport 80 -j SVCBOX-SVC-IAGMCUSRCY55E",
      "-A SVCBOX-SERVICES -d 10.96.0.53/32 -p udp -m comment --comment \"kube-system/dns:dns\" -m "
      "udp --dport 53 -j SVCBOX-SVC-R4HIAU2GBFEGO",
      "-A SVCBOX-SERVICES -d 10.96.0.53/32 -p tcp -m comment --comment \"kube-system/dns:dns-tcp\" "
      "-m tcp --dport 53 -j SVCBOX-SVC-VIQEX2XEHBN6S",
      // sticky: ClientIP affinity, 600 s
      "-A SVCBOX-SVC-IAGMCUSRCY55E -s 10.244.4.2/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-IAGMCUSRCY55E -s 10.244.5.2/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-IAGMCUSRCY55E -p tcp -m recent --rcheck --seconds 600 --reap --name "
      "SVCBOX-AFF-G4I56BDINWWUE --mask 255.255.255.255 --rsource -j DNAT --to-destination "
      "10.244.4.2:8080",
      "-A SVCBOX-SVC-IAGMCUSRCY55E -p tcp -m recent --rcheck --seconds 600 --reap --name "
      "SVCBOX-AFF-NJN6FMXNP5NAW --mask 255.255.255.255 --rsource -j DNAT --to-destination "
      "10.244.5.2:8080",
      "-A SVCBOX-SVC-IAGMCUSRCY55E -p tcp -m statistic --mode random --probability 0.50000000000 "
      "-m recent --set --name SVCBOX-AFF-G4I56BDINWWUE --mask 255.255.255.255 --rsource -j DNAT "
      "--to-destination 10.244.4.2:8080",
      "-A SVCBOX-SVC-IAGMCUSRCY55E -p tcp -m recent --set --name SVCBOX-AFF-NJN6FMXNP5NAW --mask "
      "255.255.255.255 --rsource -j DNAT --to-destination 10.244.5.2:8080",
      // dns (UDP): one endpoint, no statistic
      "-A SVCBOX-SVC-R4HIAU2GBFEGO -s 10.244.1.5/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-R4HIAU2GBFEGO -p udp -j DNAT --to-destination 10.244.1.5:53",
      // web: pod c is not ready; pod b names its http port 9090
      "-A SVCBOX-SVC-V2NN5WUJSMZPW -s 10.244.1.2/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-V2NN5WUJSMZPW -s 10.244.2.2/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -m statistic --mode random --probability 0.50000000000 "
      "-j DNAT --to-destination 10.244.1.2:8080",
      "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.2.2:9090",
      // dns-tcp
      "-A SVCBOX-SVC-VIQEX2XEHBN6S -s 10.244.1.5/32 -j SVCBOX-MARK-MASQ",
      "-A SVCBOX-SVC-VIQEX2XEHBN6S -p tcp -j DNAT --to-destination 10.244.1.5:53",
  };
  EXPECT_EQ(tableText(state.nat), expected);
  EXPECT_EQ(consistencyProblems(state.nat), Lines{});
  EXPECT_EQ(state.service_ports, 5u);
}

TEST(DesiredStateTest, FilterRejectsServicePortsWithoutReadyEndpoints) {
  auto state = computeDesiredState(sampleCluster(), RouterOptions{});
  Lines expected = {
      ":SVCBOX-FORWARD - [0:0]",
      ":SVCBOX-SERVICES - [0:0]",
      "-A INPUT -j SVCBOX-SERVICES",
      "-A FORWARD -j SVCBOX-FORWARD",
      "-A OUTPUT -j SVCBOX-SERVICES",
      "-A SVCBOX-FORWARD -j SVCBOX-SERVICES",
      "-A SVCBOX-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
      "-A SVCBOX-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A SVCBOX-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment \"default/empty:http has no "
      "endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
  };
  EXPECT_EQ(tableText(state.filter), expected);
  EXPECT_EQ(consistencyProblems(state.filter), Lines{});
  EXPECT_EQ(tableText(state.mangle), Lines{":SVCBOX-CANARY - [0:0]"});
}

TEST(DesiredStateTest, ReadinessAloneMovesAServiceBetweenDnatAndReject) {
  auto web =
      service("default", "web", "10.96.0.10", {{"app", "web"}}, {tcp("http", 80, {0, "http"})});
  auto state = computeDesiredState(
      snapshotOf({web}, {pod("c", "10.244.3.2", {{"app", "web"}}, 8080, false)}), {});
  EXPECT_EQ(tableText(state.nat),
            (Lines{":SVCBOX-MARK-MASQ - [0:0]", ":SVCBOX-POSTROUTING - [0:0]",
                   ":SVCBOX-SERVICES - [0:0]", "-A PREROUTING -j SVCBOX-SERVICES",
                   "-A OUTPUT -j SVCBOX-SERVICES", "-A POSTROUTING -j SVCBOX-POSTROUTING",
                   "-A SVCBOX-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
                   "-A SVCBOX-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                   "-A SVCBOX-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
                   "-A SVCBOX-POSTROUTING -j MASQUERADE"}));
  EXPECT_EQ(
      tableText(state.filter).back(),
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:http has "
      "no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable");
  EXPECT_EQ(consistencyProblems(state.nat), Lines{});

  auto ready =
      computeDesiredState(snapshotOf({web}, {pod("c", "10.244.3.2", {{"app", "web"}})}), {});
  EXPECT_EQ(tableText(ready.nat).back(),
            "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.3.2:8080");
  EXPECT_EQ(tableText(ready.filter).back(),
            "-A SVCBOX-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
}

TEST(DesiredStateTest, ClusterCidrAndMasqueradeAllMarkBeforeDnat) {
  auto web =
      service("default", "web", "10.96.0.10", {{"app", "web"}}, {tcp("http", 80, {0, "http"})});
  auto snapshot = snapshotOf({web}, {pod("a", "10.244.1.2", {{"app", "web"}})});
  RouterOptions cidr;
  cidr.cluster_cidr = Ipv4Prefix{0x0af40000, 16};  // 10.244.0.0/16
  auto lines = tableText(computeDesiredState(snapshot, cidr).nat);
  Lines tail(lines.end() - 3, lines.end());
  EXPECT_EQ(tail,
            (Lines{"-A SVCBOX-SVC-V2NN5WUJSMZPW ! -s 10.244.0.0/16 -j SVCBOX-MARK-MASQ",
                   "-A SVCBOX-SVC-V2NN5WUJSMZPW -s 10.244.1.2/32 -j SVCBOX-MARK-MASQ",
                   "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.1.2:8080"}));
  RouterOptions all;
  all.masquerade_all = true;
  lines = tableText(computeDesiredState(snapshot, all).nat);
  tail.assign(lines.end() - 2, lines.end());
  EXPECT_EQ(tail,
            (Lines{"-A SVCBOX-SVC-V2NN5WUJSMZPW -j SVCBOX-MARK-MASQ",
                   "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.1.2:8080"}));
}

TEST(DesiredStateTest, ThreeEndpointsGetOneThirdEach) {
  auto web =
      service("default", "web", "10.96.0.10", {{"app", "web"}}, {tcp("http", 80, {0, "http"})});
  auto state = computeDesiredState(snapshotOf({web}, {pod("a", "10.244.1.2", {{"app", "web"}}),
                                                      pod("b", "10.244.2.2", {{"app", "web"}}),
                                                      pod("c", "10.244.3.2", {{"app", "web"}})}),
                                   {});
  auto lines = tableText(state.nat);
  Lines tail(lines.end() - 3, lines.end());
  EXPECT_EQ(tail,
            (Lines{"-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -m statistic --mode random --probability "
                   "0.33333333349 -j DNAT --to-destination 10.244.1.2:8080",
                   "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -m statistic --mode random --probability "
                   "0.50000000000 -j DNAT --to-destination 10.244.2.2:8080",
                   "-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.3.2:8080"}));
  // Thousands of endpoints stay distinguishable: 1/5000 is not rounded to zero or to 1/4999.
  EXPECT_EQ(statisticProbability(1.0 / 5000), 429497u);
  EXPECT_NE(statisticProbability(1.0 / 5000), statisticProbability(1.0 / 4999));
}

TEST(DesiredStateTest, ManyServicesAreBucketedByClusterIpPrefix) {
  std::vector<Service> services;
  const char* addresses[] = {"10.96.0.10", "10.96.0.20", "10.96.1.5", "10.96.1.6"};
  for (int i = 0; i < 4; ++i) {
    services.push_back(service("default", "s" + std::to_string(i), addresses[i], {{"app", "web"}},
                               {tcp("", 80, {8080, ""})}));
  }
  RouterOptions options;
  options.bucket_threshold = 2;
  auto state = computeDesiredState(snapshotOf(services, {pod("a", "10.244.1.2", {{"app", "web"}})}),
                                   options);
  Lines dispatch;
  for (const auto& line : tableText(state.nat)) {
    if (line.starts_with("-A SVCBOX-SERVICES") || line.starts_with("-A SVCBOX-IP") ||
        line.starts_with(":SVCBOX-IP")) {
      dispatch.push_back(line.substr(0, line.find(" -j SVCBOX-SVC")));
    }
  }
  EXPECT_EQ(dispatch, (Lines{
                          ":SVCBOX-IP-10.96.0.0-24 - [0:0]",
                          ":SVCBOX-IP-10.96.1.0-24 - [0:0]",
                          "-A SVCBOX-IP-10.96.0.0-24 -d 10.96.0.10/32 -p tcp -m comment --comment "
                          "\"default/s0:80\" -m tcp --dport 80",
                          "-A SVCBOX-IP-10.96.0.0-24 -d 10.96.0.20/32 -p tcp -m comment --comment "
                          "\"default/s1:80\" -m tcp --dport 80",
                          "-A SVCBOX-IP-10.96.1.0-24 -d 10.96.1.5/32 -p tcp -m comment --comment "
                          "\"default/s2:80\" -m tcp --dport 80",
                          "-A SVCBOX-IP-10.96.1.0-24 -d 10.96.1.6/32 -p tcp -m comment --comment "
                          "\"default/s3:80\" -m tcp --dport 80",
                          "-A SVCBOX-SERVICES -d 10.96.0.0/24 -j SVCBOX-IP-10.96.0.0-24",
                          "-A SVCBOX-SERVICES -d 10.96.1.0/24 -j SVCBOX-IP-10.96.1.0-24",
                      }));
  EXPECT_EQ(consistencyProblems(state.nat), Lines{});
}

TEST(DesiredStateTest, UdpPortsListTheirReadyEndpointsForConntrackCleanup) {
  auto state = computeDesiredState(sampleCluster(), {});
  ASSERT_EQ(state.udp_ports.size(), 1u);
  EXPECT_EQ(state.udp_ports[0].cluster_ip, 0x0a600035u);  // 10.96.0.53
  EXPECT_EQ(state.udp_ports[0].port, 53);
  EXPECT_EQ(state.udp_ports[0].endpoints, std::vector<uint32_t>{0x0af40105u});
}

TEST(ConsistencyTest, FindsMissingTargetsAndOrphans) {
  Table table{"nat", {{"PREROUTING", "SVCBOX-SERVICES"}}, {}};
  Rule jump;
  jump.target.chain = "SVCBOX-SVC-GONE";
  table.chains = {{"SVCBOX-SERVICES", {jump}},
                  {"SVCBOX-SVC-ORPHAN", {}},
                  {"SVCBOX-A-NAME-MUCH-TOO-LONG-FOR-IT", {}}};
  EXPECT_EQ(consistencyProblems(table),
            (Lines{"name too long: SVCBOX-A-NAME-MUCH-TOO-LONG-FOR-IT",
                   "jump to a missing chain: SVCBOX-SVC-GONE",
                   "chain nobody jumps to: SVCBOX-A-NAME-MUCH-TOO-LONG-FOR-IT",
                   "chain nobody jumps to: SVCBOX-SVC-ORPHAN"}));
}

TEST(RuleTextTest, QuotesLikeIptablesSave) {
  EXPECT_EQ(savedString("plain_word-1"), "plain_word-1");
  EXPECT_EQ(savedString("ns/svc:port"), "\"ns/svc:port\"");
  EXPECT_EQ(savedString("say \"hi\""), "\"say \\\"hi\\\"\"");
}

}  // namespace
}  // namespace svcbox::router
