#include "store/validation.h"

#include <gtest/gtest.h>

namespace svcbox::store {
namespace {

Service webService() {
  Service service;
  service.name = "web";
  service.selector = Labels{{"app", "web"}};
  service.ports.push_back(ServicePort{"", Protocol::kTcp, 80, PortRef{8080, {}}});
  return service;
}

TEST(NameRulesTest, Dns1035ForServices) {
  EXPECT_EQ(checkDns1035Label("service-test"), "");
  EXPECT_NE(checkDns1035Label("1web"), "");  // must start with a letter
  EXPECT_NE(checkDns1035Label("Web"), "");
  EXPECT_NE(checkDns1035Label("web-"), "");
  EXPECT_NE(checkDns1035Label(std::string(64, 'a')), "");
  EXPECT_EQ(checkDns1035Label(std::string(63, 'a')), "");
}

TEST(NameRulesTest, Dns1123ForNamespacesAndPods) {
  EXPECT_EQ(checkDns1123Label("1ns"), "");
  EXPECT_NE(checkDns1123Label("ns.a"), "");
  EXPECT_EQ(checkDns1123Subdomain("server-pod-1.v2"), "");
  EXPECT_NE(checkDns1123Subdomain("pod..x"), "");
  EXPECT_NE(checkDns1123Subdomain("Pod"), "");
  EXPECT_NE(checkDns1123Subdomain(std::string(254, 'a')), "");
}

TEST(NameRulesTest, LabelsAndPortNames) {
  EXPECT_EQ(checkLabelKey("app"), "");
  EXPECT_EQ(checkLabelKey("app.kubernetes.io/name"), "");
  EXPECT_NE(checkLabelKey("bad key"), "");
  EXPECT_NE(checkLabelKey("-app"), "");
  EXPECT_EQ(checkLabelValue("server_pod1"), "");
  EXPECT_EQ(checkLabelValue(""), "");
  EXPECT_NE(checkLabelValue("a b"), "");
  EXPECT_NE(checkLabelValue("_x"), "");
  EXPECT_EQ(checkPortName("http-alt"), "");
  EXPECT_NE(checkPortName("8080"), "");  // needs a letter
  EXPECT_NE(checkPortName("a--b"), "");
  EXPECT_NE(checkPortName("averyveryverylongname"), "");
}

TEST(ServiceValidationTest, AcceptsTheSeedService) { EXPECT_TRUE(validateService(webService())); }

TEST(ServiceValidationTest, NamesTheFieldOfEachMistake) {
  auto expectField = [](Service service, const std::string& field) {
    auto status = validateService(service);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().field, field) << status.error().message;
  };
  auto bad_name = webService();
  bad_name.name = "Web_1";
  expectField(bad_name, "metadata.name");
  auto two_unnamed = webService();
  two_unnamed.ports.push_back(ServicePort{"", Protocol::kTcp, 81, PortRef{81, {}}});
  expectField(two_unnamed, "spec.ports[0].name");
  auto duplicate_names = webService();
  duplicate_names.ports = {ServicePort{"http", Protocol::kTcp, 80, PortRef{80, {}}},
                           ServicePort{"http", Protocol::kTcp, 81, PortRef{81, {}}}};
  expectField(duplicate_names, "spec.ports[1].name");
  auto duplicate_ports = webService();
  duplicate_ports.ports = {ServicePort{"a", Protocol::kTcp, 80, PortRef{80, {}}},
                           ServicePort{"b", Protocol::kTcp, 80, PortRef{81, {}}}};
  expectField(duplicate_ports, "spec.ports[1]");
  auto bad_label = webService();
  bad_label.selector = Labels{{"app", "not valid"}};
  expectField(bad_label, "spec.selector.app");
  auto external = webService();
  external.type = ServiceType::kExternalName;
  expectField(external, "spec.externalName");
  auto no_ports = webService();
  no_ports.ports.clear();
  expectField(no_ports, "spec.ports");
}

TEST(ServiceValidationTest, AnExternalNameMayEndInOneDotAsKubernetesAllows) {
  auto external = webService();
  external.type = ServiceType::kExternalName;
  for (const char* target : {"db.prod.svc.cluster.local", "db.prod.svc.cluster.local."}) {
    external.external_name = target;
    EXPECT_TRUE(validateService(external)) << target;
  }
  for (const char* target : {".", "db.prod..", "db..prod", ".db"}) {
    external.external_name = target;
    auto status = validateService(external);
    ASSERT_FALSE(status) << target;
    EXPECT_EQ(status.error().field, "spec.externalName") << target;
  }
}

TEST(ServiceValidationTest, SameNumberOnTcpAndUdpIsFine) {
  auto dns = webService();
  dns.ports = {ServicePort{"dns", Protocol::kUdp, 53, PortRef{53, {}}},
               ServicePort{"dns-tcp", Protocol::kTcp, 53, PortRef{53, {}}}};
  EXPECT_TRUE(validateService(dns));
}

TEST(PodValidationTest, ChecksPortsProbesAndAddresses) {
  Pod pod;
  pod.name = "server-pod-1";
  pod.ips = {*IpAddress::parse("10.0.1.2")};
  pod.ports = {ContainerPort{"web", "http", 8080, Protocol::kTcp}};
  EXPECT_TRUE(validatePod(pod));
  auto named_probe = pod;
  Probe probe;
  probe.port = PortRef{0, "metrics"};
  named_probe.readiness_probe = probe;
  auto status = validatePod(named_probe);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message.find("metrics"), std::string::npos);
  auto two_v4 = pod;
  two_v4.ips.push_back(*IpAddress::parse("10.0.1.3"));
  EXPECT_FALSE(validatePod(two_v4));
  auto duplicate = pod;
  duplicate.ports.push_back(ContainerPort{"web", "other", 8080, Protocol::kTcp});
  EXPECT_FALSE(validatePod(duplicate));
}

}  // namespace
}  // namespace svcbox::store
