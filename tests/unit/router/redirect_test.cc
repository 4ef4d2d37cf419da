#include "router/userspace/redirect.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "router/rule_text.h"

// The REDIRECT rules as text against a hand-written listing, as iptables-legacy-save prints them.
namespace svcbox::router::userspace {
namespace {

TEST(RedirectTablesTest, OneRedirectPerListenedPortHookedFromPreroutingAndOutput) {
  store::ServiceEntry web;
  web.service.name = "web";
  web.service.cluster_ip = store::IpAddress::parse("10.96.0.10");
  web.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}},
                       {"dns", store::Protocol::kUdp, 53, {5353, ""}}};
  store::ServiceEntry six;
  six.service.name = "six";
  six.service.cluster_ip = store::IpAddress::parse("fd00::a");
  six.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}}};
  store::Snapshot snapshot(1, std::nullopt, {six, web}, std::vector<store::PodPtr>{}, {});
  auto every_address = *store::IpAddress::parse("0.0.0.0");
  std::vector<PortMapping> mapping{
      {"default", "web", "http", store::Protocol::kTcp, 80, every_address, 20080},
      {"default", "web", "dns", store::Protocol::kUdp, 53, every_address, 20053},
      {"default", "six", "http", store::Protocol::kTcp, 80, every_address, 41000},
      {"default", "gone", "http", store::Protocol::kTcp, 80, every_address, 41001}};
  auto tables = redirectTables(snapshot, mapping);
  auto nat = tableText(tables.nat);
  std::sort(nat.begin(), nat.end());
  std::vector<std::string> expected{
      ":SVCBOX-SERVICES - [0:0]",
      "-A OUTPUT -j SVCBOX-SERVICES",
      "-A PREROUTING -j SVCBOX-SERVICES",
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:80\" -m tcp "
      "--dport 80 -j REDIRECT --to-ports 20080",
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment \"default/web:53\" -m udp "
      "--dport 53 -j REDIRECT --to-ports 20053",
  };
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(nat, expected);  // the IPv6 Service and the one not in the snapshot get no rule
  EXPECT_TRUE(tables.filter.chains.empty());
  EXPECT_TRUE(tables.filter.hooks.empty());
  EXPECT_TRUE(tables.mangle.chains.empty());
}

}  // namespace
}  // namespace svcbox::router::userspace
