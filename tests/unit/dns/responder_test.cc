#include "dns/responder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>

#include "tests/unit/dns/dns_test_util.h"

namespace svcbox::dns {
namespace {

using namespace dnstest;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

class ResponderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ext = clusterIpService("default", "ext", "10.96.0.99");
    ext.service.type = store::ServiceType::kExternalName;
    ext.service.external_name = "example.org";
    ext.service.cluster_ip.reset();
    auto named = headlessService("prod", "db",
                                 {{"10.1.0.5", true}, {"10.1.0.6", true}, {"10.1.0.7", false}});
    named.endpoints[0].hostname = "db-0";
    std::vector<std::pair<std::string, bool>> many;
    for (int i = 1; i <= 100; ++i) many.push_back({"10.2.0." + std::to_string(i), true});
    snapshot_ = makeSnapshot({clusterIpService("default", "web", "10.96.0.10"), named,
                              headlessService("default", "empty", {{"10.1.1.9", false}}),
                              headlessService("default", "big", many), ext});
    table_ = AnswerTable::build(*snapshot_, ZoneOptions{});
  }

  Decoded ask(const std::string& name, uint16_t type, uint16_t udp_size = 0, bool recursion = true,
              Disposition expected = Disposition::kSend) {
    auto packet = makeQuery(name, type, udp_size);
    Query query = parseQuery(packet);
    ClientContext client{recursion, query.udpLimit()};
    Response response = respond(query, *table_, client, out_);
    EXPECT_EQ(response.disposition, expected) << name;
    last_length_ = response.length;
    return decode(std::span(out_.data(), response.length));
  }

  std::shared_ptr<store::Snapshot> snapshot_;
  AnswerTablePtr table_;
  std::array<uint8_t, kMaxResponse> out_;
  size_t last_length_ = 0;
};

TEST_F(ResponderTest, ClusterIpServiceInBothForms) {
  auto full = ask("web.default.svc.cluster.local", kTypeA);
  EXPECT_EQ(full.rcode, 0);
  EXPECT_TRUE(full.aa);
  EXPECT_THAT(full.answer, ElementsAre("web.default.svc.cluster.local. 5 IN A 10.96.0.10"));
  // Header, question (31 + 4), and one A record whose owner is a 2-byte pointer.
  EXPECT_EQ(last_length_, 12u + 35u + 16u);
  auto short_form = ask("web.default.svc", kTypeA);
  EXPECT_THAT(short_form.answer, ElementsAre("web.default.svc. 5 IN A 10.96.0.10"));
}

TEST_F(ResponderTest, MatchesAnyCaseAndEchoesTheQuestionAsAsked) {
  auto reply = ask("WEB.default.Svc.cluster.local", kTypeA);
  EXPECT_EQ(reply.question, "WEB.default.Svc.cluster.local. IN A");
  EXPECT_THAT(reply.answer, ElementsAre("WEB.default.Svc.cluster.local. 5 IN A 10.96.0.10"));
}

TEST_F(ResponderTest, OtherTypesOfExistingNamesAreNodataWithTheSoa) {
  auto reply = ask("web.default.svc.cluster.local", kTypeAaaa);
  EXPECT_EQ(reply.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(reply.answer.empty());
  EXPECT_THAT(reply.authority,
              ElementsAre("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. "
                          "7 7200 1800 86400 5"));
  auto ent = ask("prod.svc.cluster.local", kTypeA);
  EXPECT_EQ(ent.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(ent.authority.size(), 1u);
}

TEST_F(ResponderTest, MissingNamesInTheZoneAreNxdomainWithTheSoa) {
  auto reply = ask("nope.default.svc.cluster.local", kTypeA);
  EXPECT_EQ(reply.rcode, LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(reply.authority.size(), 1u);
  EXPECT_EQ(reply.authority[0].rfind("cluster.local. 5 IN SOA", 0), 0u);
  auto short_form = ask("a.b.c.svc", kTypeA);
  EXPECT_EQ(short_form.rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(short_form.authority[0].rfind("svc. 5 IN SOA", 0), 0u);
}

TEST_F(ResponderTest, HeadlessServicesAnswerWithReadyEndpointsOnly) {
  auto reply = ask("db.prod.svc.cluster.local", kTypeA);
  EXPECT_THAT(reply.answer, UnorderedElementsAre("db.prod.svc.cluster.local. 5 IN A 10.1.0.5",
                                                 "db.prod.svc.cluster.local. 5 IN A 10.1.0.6"));
  EXPECT_THAT(ask("db-0.db.prod.svc.cluster.local", kTypeA).answer,
              ElementsAre("db-0.db.prod.svc.cluster.local. 5 IN A 10.1.0.5"));
  EXPECT_THAT(ask("10-1-0-6.db.prod.svc.cluster.local", kTypeA).answer,
              ElementsAre("10-1-0-6.db.prod.svc.cluster.local. 5 IN A 10.1.0.6"));
  EXPECT_EQ(ask("10-1-0-7.db.prod.svc.cluster.local", kTypeA).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(ask("empty.default.svc.cluster.local", kTypeA).rcode, LDNS_RCODE_NXDOMAIN);
}

TEST_F(ResponderTest, SrvRecordsWithAddressesInTheAdditionalSection) {
  auto cluster = ask("_http._tcp.web.default.svc.cluster.local", kTypeSrv);
  EXPECT_THAT(cluster.answer, ElementsAre("_http._tcp.web.default.svc.cluster.local. 5 IN SRV "
                                          "0 100 80 web.default.svc.cluster.local."));
  EXPECT_THAT(cluster.additional, ElementsAre("web.default.svc.cluster.local. 5 IN A 10.96.0.10"));
  auto headless = ask("_http._tcp.db.prod.svc.cluster.local", kTypeSrv);
  EXPECT_THAT(headless.answer,
              UnorderedElementsAre("_http._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 50 8080 "
                                   "db-0.db.prod.svc.cluster.local.",
                                   "_http._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 50 8080 "
                                   "10-1-0-6.db.prod.svc.cluster.local."));
  EXPECT_THAT(headless.additional,
              UnorderedElementsAre("db-0.db.prod.svc.cluster.local. 5 IN A 10.1.0.5",
                                   "10-1-0-6.db.prod.svc.cluster.local. 5 IN A 10.1.0.6"));
}

TEST_F(ResponderTest, PtrForClusterIpsAndHeadlessEndpoints) {
  EXPECT_THAT(ask("10.0.96.10.in-addr.arpa", kTypePtr).answer,
              ElementsAre("10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."));
  EXPECT_THAT(ask("5.0.1.10.in-addr.arpa", kTypePtr).answer,
              ElementsAre("5.0.1.10.in-addr.arpa. 5 IN PTR db-0.db.prod.svc.cluster.local."));
  // 10.96.0.0/12 is sixteen reverse zones, 96 to 111; an unused address in one is NXDOMAIN.
  auto unused = ask("1.0.111.10.in-addr.arpa", kTypePtr);
  EXPECT_EQ(unused.rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(unused.authority[0].rfind("111.10.in-addr.arpa. 5 IN SOA", 0), 0u);
  // Outside those zones the name is someone else's.
  ask("1.0.112.10.in-addr.arpa", kTypePtr, 0, true, Disposition::kForward);
}

TEST_F(ResponderTest, ApexRecordsAndTheSchemaVersion) {
  EXPECT_EQ(ask("cluster.local", kTypeSoa).answer.size(), 1u);
  EXPECT_THAT(ask("cluster.local", kTypeNs).answer,
              ElementsAre("cluster.local. 5 IN NS ns.dns.cluster.local."));
  EXPECT_THAT(ask("svc", kTypeNs).answer, ElementsAre("svc. 5 IN NS ns.dns.cluster.local."));
  EXPECT_THAT(ask("dns-version.cluster.local", kTypeTxt).answer,
              ElementsAre("dns-version.cluster.local. 5 IN TXT \"1.1.0\""));
}

TEST_F(ResponderTest, ExternalNameIsACnameWhoseTargetTheServerMayChase) {
  EXPECT_THAT(ask("ext.default.svc.cluster.local", kTypeCname).answer,
              ElementsAre("ext.default.svc.cluster.local. 5 IN CNAME example.org."));
  // The server follows a target in its own zones for anyone, and asks upstream for the others
  // only for clients that may recurse (dns/server.cc); either way `out` holds the CNAME.
  for (bool recursion : {true, false}) {
    auto chased =
        ask("ext.default.svc.cluster.local", kTypeA, 0, recursion, Disposition::kChaseAlias);
    EXPECT_THAT(chased.answer,
                ElementsAre("ext.default.svc.cluster.local. 5 IN CNAME example.org."));
  }
}

TEST_F(ResponderTest, BeforeTheRegistryIsLoadedZoneNamesGetServfailNotNxdomain) {
  table_ = AnswerTable::awaitingRegistry(ZoneOptions{}, snapshot_->serviceCidr());
  for (const char* name : {"web.default.svc.cluster.local", "cluster.local", "web.default.svc",
                           "10.0.96.10.in-addr.arpa"}) {
    auto reply = ask(name, kTypeA);
    EXPECT_EQ(reply.rcode, LDNS_RCODE_SERVFAIL) << name;
    EXPECT_FALSE(reply.aa) << name;
    EXPECT_TRUE(reply.authority.empty()) << name;
  }
  ask("example.org", kTypeA, 0, true, Disposition::kForward);
  table_ = AnswerTable::build(*snapshot_, ZoneOptions{});
  EXPECT_EQ(ask("web.default.svc.cluster.local", kTypeA).rcode, LDNS_RCODE_NOERROR);
}

TEST_F(ResponderTest, OtherNamesAreForwardedOrRefused) {
  ask("example.org", kTypeA, 0, true, Disposition::kForward);
  auto refused = ask("example.org", kTypeA, 0, false, Disposition::kSend);
  EXPECT_EQ(refused.rcode, LDNS_RCODE_REFUSED);
  ask("local", kTypeA, 0, true, Disposition::kForward);
}

TEST_F(ResponderTest, LongAnswersAreTruncatedToTheClientsSize) {
  auto plain = ask("big.default.svc.cluster.local", kTypeA);
  EXPECT_TRUE(plain.tc);
  EXPECT_TRUE(plain.answer.empty());
  auto edns = ask("big.default.svc.cluster.local", kTypeA, 1232);
  EXPECT_TRUE(edns.tc);
  auto packet = makeQuery("big.default.svc.cluster.local", kTypeA);
  Query query = parseQuery(packet);
  Response tcp = respond(query, *table_, ClientContext{true, kMaxResponse}, out_);
  auto whole = decode(std::span(out_.data(), tcp.length));
  EXPECT_FALSE(whole.tc);
  EXPECT_EQ(whole.answer.size(), 100u);
}

TEST_F(ResponderTest, EdnsIsEchoedAndNewerVersionsGetBadvers) {
  auto packet = makeQuery("web.default.svc.cluster.local", kTypeA, 4096);
  Response response = respond(parseQuery(packet), *table_, ClientContext{true, 1232}, out_);
  ldns_pkt* decoded = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&decoded, out_.data(), response.length), LDNS_STATUS_OK);
  EXPECT_EQ(ldns_pkt_edns_udp_size(decoded), kServerUdpSize);
  ldns_pkt_free(decoded);
  packet[packet.size() - 5] = 1;  // EDNS version 1
  response = respond(parseQuery(packet), *table_, ClientContext{true, 1232}, out_);
  EXPECT_EQ(out_[3] & 0x0F, 0);             // BADVERS is 16: header part 0...
  EXPECT_EQ(out_[response.length - 6], 1);  // ...extended part 1 in the OPT TTL
  EXPECT_EQ(response.rcode, kBadVers);
}

TEST_F(ResponderTest, TransfersAreRefusedAndOtherClassesNotImplemented) {
  EXPECT_EQ(ask("cluster.local", kTypeAxfr).rcode, LDNS_RCODE_REFUSED);
  auto chaos = makeQuery("version.bind", kTypeTxt);
  chaos[chaos.size() - 1] = 3;
  Response response = respond(parseQuery(chaos), *table_, ClientContext{true, 512}, out_);
  EXPECT_EQ(response.rcode, kNotImp);
}

TEST(AnswerTableTest, Ipv6ClusterIpsGetAaaaAndNibblePtr) {
  auto snapshot = makeSnapshot({clusterIpService("default", "six", "fd00:96::a")}, "fd00:96::/112");
  auto table = AnswerTable::build(*snapshot, ZoneOptions{});
  std::array<uint8_t, kMaxResponse> out;
  auto ask = [&](const std::string& name, uint16_t type) {
    auto packet = makeQuery(name, type);
    Response response = respond(parseQuery(packet), *table, ClientContext{true, 512}, out);
    return decode(std::span(out.data(), response.length));
  };
  EXPECT_THAT(ask("six.default.svc.cluster.local", kTypeAaaa).answer,
              ElementsAre("six.default.svc.cluster.local. 5 IN AAAA fd00:96::a"));
  EXPECT_TRUE(ask("six.default.svc.cluster.local", kTypeA).answer.empty());
  std::string ptr = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa";
  EXPECT_THAT(ask(ptr, kTypePtr).answer,
              ElementsAre(ptr + ". 5 IN PTR six.default.svc.cluster.local."));
}

TEST(AnswerTableTest, DomainAndTtlAreConfigurable) {
  auto snapshot = makeSnapshot({clusterIpService("default", "web", "10.96.0.10")});
  auto table = AnswerTable::build(*snapshot, ZoneOptions{"corp.example", 30, std::nullopt});
  std::array<uint8_t, kMaxResponse> out;
  auto packet = makeQuery("web.default.svc.corp.example", kTypeA);
  Response response = respond(parseQuery(packet), *table, ClientContext{true, 512}, out);
  EXPECT_THAT(decode(std::span(out.data(), response.length)).answer,
              ElementsAre("web.default.svc.corp.example. 30 IN A 10.96.0.10"));
}

TEST(AnswerTableTest, ProxiedServicesAnswerTheProxyAddressAndListenerPort) {
  auto snapshot = makeSnapshot({clusterIpService("default", "web", "10.96.0.10"),
                                clusterIpService("default", "www", "10.96.0.11")});
  ProxiedServices proxied;
  proxied[{"default", "web"}] =
      ProxiedService{*store::IpAddress::parse("127.0.0.1"), {{{store::Protocol::kTcp, 80}, 20080}}};
  auto table = AnswerTable::build(*snapshot, ZoneOptions{}, &proxied);
  std::array<uint8_t, kMaxResponse> out;
  auto ask = [&](const std::string& name, uint16_t type) {
    auto packet = makeQuery(name, type);
    Response response = respond(parseQuery(packet), *table, ClientContext{true, 512}, out);
    return decode(std::span(out.data(), response.length)).answer;
  };
  EXPECT_THAT(ask("web.default.svc.cluster.local", kTypeA),
              ElementsAre("web.default.svc.cluster.local. 5 IN A 127.0.0.1"));
  EXPECT_THAT(ask("_http._tcp.web.default.svc.cluster.local", kTypeSrv),
              ElementsAre("_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 20080 "
                          "web.default.svc.cluster.local."));
  // A Service the proxy does not serve keeps its ClusterIP and port.
  EXPECT_THAT(ask("www.default.svc.cluster.local", kTypeA),
              ElementsAre("www.default.svc.cluster.local. 5 IN A 10.96.0.11"));
  EXPECT_THAT(ask("_http._tcp.www.default.svc.cluster.local", kTypeSrv),
              ElementsAre("_http._tcp.www.default.svc.cluster.local. 5 IN SRV 0 100 80 "
                          "www.default.svc.cluster.local."));
}

}  // namespace
}  // namespace svcbox::dns

namespace svcbox::dns {
namespace {

using namespace dnstest;

TEST(ZoneFingerprintTest, ChangesExactlyWhenTheAnswersWould) {
  auto base = [] {
    auto web = clusterIpService("default", "web", "10.96.0.10");
    store::Endpoint pod;
    pod.ip = *store::IpAddress::parse("10.0.1.2");
    pod.ready = true;
    pod.ports = {8080};
    web.endpoints.push_back(pod);
    return std::vector<store::ServiceEntry>{
        web, headlessService("prod", "db", {{"10.1.0.5", true}, {"10.1.0.6", false}})};
  };
  uint64_t original = zoneFingerprint(*makeSnapshot(base()));
  EXPECT_EQ(zoneFingerprint(*makeSnapshot(base())), original);

  // Invisible in DNS: a ClusterIP Service's pod turning unready.
  auto unready = base();
  unready[0].endpoints[0].ready = false;
  EXPECT_EQ(zoneFingerprint(*makeSnapshot(unready)), original);

  // Visible: a headless endpoint turning ready, a port renamed, another ClusterIP, a new Service.
  auto ready = base();
  ready[1].endpoints[1].ready = true;
  EXPECT_NE(zoneFingerprint(*makeSnapshot(ready)), original);
  auto renamed = base();
  renamed[0].service.ports[0].name = "web";
  EXPECT_NE(zoneFingerprint(*makeSnapshot(renamed)), original);
  auto moved = base();
  moved[0].service.cluster_ip = store::IpAddress::parse("10.96.0.11");
  EXPECT_NE(zoneFingerprint(*makeSnapshot(moved)), original);
  auto more = base();
  more.push_back(clusterIpService("default", "zzz", "10.96.0.12"));
  EXPECT_NE(zoneFingerprint(*makeSnapshot(more)), original);
  EXPECT_NE(zoneFingerprint(*makeSnapshot(base(), "10.96.0.0/16")), original);
}

}  // namespace
}  // namespace svcbox::dns
