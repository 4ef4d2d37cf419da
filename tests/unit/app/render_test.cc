#include "app/render.h"

#include <gtest/gtest.h>

namespace svcbox::app {
namespace {

TEST(RenderTest, AgeLooksLikeKubectls) {
  EXPECT_EQ(formatAge(0, 45'000), "45s");
  EXPECT_EQ(formatAge(0, 600'000), "10m");
  EXPECT_EQ(formatAge(0, 5 * 3600'000), "5h");
  EXPECT_EQ(formatAge(0, int64_t{3} * 86400'000), "3d");
  EXPECT_EQ(formatAge(1000, 0), "0s");
}

TEST(RenderTest, TablePadsColumns) {
  Table table({"NAME", "IP"});
  table.add({"service-test", "10.96.0.1"});
  EXPECT_EQ(table.render(), "NAME           IP\nservice-test   10.96.0.1\n");
}

TEST(RenderTest, ReadyEndpointsListsOnlyReadyOnesAndTruncates) {
  store::ServiceEntry entry;
  entry.service.ports = {store::ServicePort{"", store::Protocol::kTcp, 80, {8080, {}}}};
  for (int i = 1; i <= 5; ++i) {
    entry.endpoints.push_back(store::Endpoint{
        *store::IpAddress::parse("10.0.0." + std::to_string(i)), i != 2, "", "", {8080}});
  }
  EXPECT_EQ(readyEndpoints(entry, 3), "10.0.0.1:8080,10.0.0.3:8080,10.0.0.4:8080 + 1 more...");
  entry.endpoints.clear();
  EXPECT_EQ(readyEndpoints(entry, 3), "<none>");
}

TEST(RenderTest, YamlQuotesOnlyWhatWouldChangeType) {
  nlohmann::json value{
      {"ip", "10.96.0.1"}, {"port", 80}, {"flag", "true"}, {"name", "web"}, {"v", "1.5"}};
  auto yaml = toYaml(value);
  EXPECT_NE(yaml.find("ip: 10.96.0.1"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("port: 80"), std::string::npos);
  EXPECT_NE(yaml.find("flag: \"true\""), std::string::npos);
  EXPECT_NE(yaml.find("v: \"1.5\""), std::string::npos);
  EXPECT_NE(yaml.find("name: web"), std::string::npos);
}

}  // namespace
}  // namespace svcbox::app
