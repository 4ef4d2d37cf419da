#include "dns/alias_chase.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>

#include "dns/responder.h"
#include "tests/unit/dns/dns_test_util.h"

// ExternalNames whose target lies in svcbox's own zones, followed as RFC 1034 §4.3.2 says an
// authoritative server follows a CNAME within its data; answers decoded with ldns.
namespace svcbox::dns {
namespace {

using namespace dnstest;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

store::ServiceEntry externalName(const std::string& name, const std::string& target) {
  auto entry = clusterIpService("default", name, "10.96.0.99");
  entry.service.type = store::ServiceType::kExternalName;
  entry.service.external_name = target;
  entry.service.cluster_ip.reset();
  entry.service.ports.clear();
  return entry;
}

class AliasChaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::pair<std::string, bool>> many;
    for (int i = 1; i <= 40; ++i) many.push_back({"10.2.0." + std::to_string(i), true});
    snapshot_ = makeSnapshot({clusterIpService("default", "web", "10.96.0.10"),
                              headlessService("default", "big", many),
                              externalName("to-web", "web.default.svc.cluster.local"),
                              externalName("to-web-dot", "web.default.svc.cluster.local."),
                              externalName("to-alias", "to-web.default.svc.cluster.local"),
                              externalName("to-nothing", "gone.default.svc.cluster.local"),
                              externalName("to-big", "big.default.svc.cluster.local"),
                              externalName("loop-a", "loop-b.default.svc.cluster.local"),
                              externalName("loop-b", "loop-a.default.svc.cluster.local"),
                              externalName("to-outside", "example.org"),
                              externalName("to-to-outside", "to-outside.default.svc")});
    table_ = AnswerTable::build(*snapshot_, ZoneOptions{});
  }

  // What the server sends for `name`: respond(), then the chase it does for a target in its zones.
  AliasAnswer chase(const std::string& name, uint16_t type, size_t size_limit = kMaxResponse) {
    packet_ = makeQuery(name, type);
    Query query = parseQuery(packet_);
    Response response = respond(query, *table_, ClientContext{false, size_limit}, out_);
    EXPECT_EQ(response.disposition, Disposition::kChaseAlias) << name;
    const std::string& target = table_->aliasTarget(*response.alias);
    EXPECT_TRUE(inOwnZones(*table_, target)) << target;
    return chaseInOwnZones(*table_, query, std::span(out_.data(), response.length), target,
                           size_limit);
  }

  std::shared_ptr<store::Snapshot> snapshot_;
  AnswerTablePtr table_;
  std::vector<uint8_t> packet_;
  std::array<uint8_t, kMaxResponse> out_;
};

TEST_F(AliasChaseTest, ATargetInTheClusterZoneIsAnsweredWithItsAddress) {
  for (const char* name : {"to-web.default.svc.cluster.local", "to-web-dot.default.svc"}) {
    AliasAnswer answer = chase(name, kTypeA);
    ASSERT_EQ(answer.outcome, AliasAnswer::Outcome::kCombined) << name;
    Decoded decoded = decode(answer.bytes);
    EXPECT_EQ(decoded.rcode, LDNS_RCODE_NOERROR);
    EXPECT_TRUE(decoded.aa);
    ASSERT_EQ(decoded.answer.size(), 2u) << name;
    EXPECT_THAT(decoded.answer[0], ::testing::EndsWith("IN CNAME web.default.svc.cluster.local."));
    EXPECT_EQ(decoded.answer[1], "web.default.svc.cluster.local. 5 IN A 10.96.0.10");
  }
}

TEST_F(AliasChaseTest, AChainOfExternalNamesIsFollowedToItsEnd) {
  Decoded decoded = decode(chase("to-alias.default.svc.cluster.local", kTypeA).bytes);
  EXPECT_THAT(decoded.answer, ElementsAre("to-alias.default.svc.cluster.local. 5 IN CNAME "
                                          "to-web.default.svc.cluster.local.",
                                          "to-web.default.svc.cluster.local. 5 IN CNAME "
                                          "web.default.svc.cluster.local.",
                                          "web.default.svc.cluster.local. 5 IN A 10.96.0.10"));
}

TEST_F(AliasChaseTest, AChainThatLeavesTheZonesNamesWhereItLeftThemForTheUpstream) {
  AliasAnswer answer = chase("to-to-outside.default.svc.cluster.local", kTypeA);
  ASSERT_EQ(answer.outcome, AliasAnswer::Outcome::kCombined);
  EXPECT_EQ(answer.outside_target, "example.org.");
  EXPECT_THAT(decode(answer.bytes).answer,
              ElementsAre("to-to-outside.default.svc.cluster.local. 5 IN CNAME "
                          "to-outside.default.svc.",
                          "to-outside.default.svc. 5 IN CNAME example.org."));
  EXPECT_EQ(chase("to-alias.default.svc.cluster.local", kTypeA).outside_target, "");
}

TEST_F(AliasChaseTest, AMissingTargetMakesTheAnswerNxdomainWithTheSoa) {
  Decoded decoded = decode(chase("to-nothing.default.svc.cluster.local", kTypeA).bytes);
  EXPECT_EQ(decoded.rcode, LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(decoded.answer.size(), 1u);
  ASSERT_EQ(decoded.authority.size(), 1u);
  EXPECT_THAT(decoded.authority[0], ::testing::StartsWith("cluster.local. 5 IN SOA"));
  Decoded nodata = decode(chase("to-web.default.svc.cluster.local", kTypeAaaa).bytes);
  EXPECT_EQ(nodata.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(nodata.answer.size(), 1u);
  EXPECT_EQ(nodata.authority.size(), 1u);
}

TEST_F(AliasChaseTest, ALoopEndsAfterTheLongestChainAllowed) {
  Decoded decoded = decode(chase("loop-a.default.svc.cluster.local", kTypeA).bytes);
  EXPECT_EQ(decoded.answer.size(), kMaxChainLength + 1);
}

TEST_F(AliasChaseTest, AnAnswerLargerThanTheClientTakesIsMarkedTooLarge) {
  EXPECT_EQ(chase("to-big.default.svc.cluster.local", kTypeA, kPlainUdpSize).outcome,
            AliasAnswer::Outcome::kTooLarge);
  AliasAnswer over_tcp = chase("to-big.default.svc.cluster.local", kTypeA);
  ASSERT_EQ(over_tcp.outcome, AliasAnswer::Outcome::kCombined);
  EXPECT_EQ(decode(over_tcp.bytes).answer.size(), 41u);
  std::array<uint8_t, 512> truncated;
  Query query = parseQuery(packet_);
  Decoded empty =
      decode(std::span(truncated.data(), writeTruncated(query, true, false, truncated)));
  EXPECT_TRUE(empty.tc);
  EXPECT_TRUE(empty.aa);
  EXPECT_THAT(empty.answer, IsEmpty());
}

TEST_F(AliasChaseTest, OnlyTargetsInsideTheZonesAreOwn) {
  EXPECT_TRUE(inOwnZones(*table_, "web.default.svc.cluster.local"));
  EXPECT_TRUE(inOwnZones(*table_, "anything.svc"));
  EXPECT_TRUE(inOwnZones(*table_, "1.0.96.10.in-addr.arpa"));
  EXPECT_FALSE(inOwnZones(*table_, "example.org"));
  EXPECT_FALSE(inOwnZones(*table_, "local"));
  EXPECT_FALSE(inOwnZones(*table_, "cluster.local.example.org"));
}

}  // namespace
}  // namespace svcbox::dns
