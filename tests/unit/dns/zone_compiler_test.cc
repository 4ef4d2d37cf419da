#include "dns/zone_compiler.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <set>

#include "dns/responder.h"
#include "dns/wire.h"
#include "tests/unit/dns/dns_test_util.h"

namespace svcbox::dns {
namespace {

using namespace dnstest;

constexpr uint16_t kTypeMx = 15;
constexpr std::array<uint16_t, 10> kTypes = {kTypeA,   kTypeAaaa, kTypeSrv, kTypePtr, kTypeCname,
                                             kTypeTxt, kTypeSoa,  kTypeNs,  kTypeAny, kTypeMx};

struct Reply {
  Disposition disposition;
  std::vector<uint8_t> bytes;
  bool operator==(const Reply&) const = default;
};

Reply ask(const AnswerTable& table, const std::string& name, uint16_t type) {
  static std::array<uint8_t, kMaxResponse> out;
  auto packet = makeQuery(name, type, 4096);
  Query query = parseQuery(packet);
  Response response = respond(query, table, ClientContext{true, 65535}, out);
  return Reply{response.disposition, {out.begin(), out.begin() + response.length}};
}

std::string describe(const Reply& reply) {
  auto decoded = decode(reply.bytes);
  std::string text = "disposition " + std::to_string(static_cast<int>(reply.disposition)) +
                     " rcode " + std::to_string(decoded.rcode) + "\n";
  for (const auto* section : {&decoded.answer, &decoded.authority, &decoded.additional}) {
    for (const auto& line : *section) text += "  " + line + "\n";
    text += "  --\n";
  }
  return text;
}

// Every name either table holds, a name below each, and `absent`, asked every type: the
// compiled table must answer byte for byte as the whole build does.
void expectSameAnswers(const AnswerTable& whole, const AnswerTable& compiled,
                       const std::vector<std::string>& absent, const std::string& context) {
  std::set<std::string> names(absent.begin(), absent.end());
  for (const AnswerTable* table : {&whole, &compiled}) {
    for (const auto& wire : table->names()) {
      std::string name = wireToName(wire);
      names.insert(name);
      names.insert("nope." + name);
    }
  }
  EXPECT_EQ(whole.nodeCount(), compiled.nodeCount()) << context;
  for (const auto& name : names) {
    for (uint16_t type : kTypes) {
      Reply expected = ask(whole, name, type);
      Reply actual = ask(compiled, name, type);
      ASSERT_EQ(actual, expected) << context << ": " << name << " type " << type << "\nwhole:\n"
                                  << describe(expected) << "compiled:\n"
                                  << describe(actual);
    }
  }
}

// A registry that changes at random, sharing unchanged entries between snapshots as the store's
// does.
class RandomRegistry {
 public:
  // Services that never change make the table large enough that updates run for a while before
  // the unused bytes call for a rebuild.
  explicit RandomRegistry(uint32_t seed) : random_(seed) {
    for (int i = 0; i < 40; ++i) {
      put(clusterIpService("base", "base-" + std::to_string(i), "10.96.1." + std::to_string(i)));
    }
  }

  std::shared_ptr<store::Snapshot> snapshot(const std::string& cidr = "10.96.0.0/12") {
    std::vector<store::ServiceEntryPtr> entries;
    for (const auto& [key, entry] : services_) entries.push_back(entry);
    return std::make_shared<store::Snapshot>(++version_, store::Cidr::parse(cidr),
                                             std::move(entries), std::vector<store::PodPtr>{},
                                             std::vector<store::EndpointSet>{}, 0, nullptr);
  }

  void change() {
    switch (pick(12)) {
      case 0:
      case 1:
        add();
        break;
      case 2:
        remove();
        break;
      case 3:
        emptyNamespace();
        break;
      case 4:
        sharePod();
        break;
      case 5:
        copyUnchanged();
        break;
      default:
        modify();
        break;
    }
  }

  // Names that exist in some snapshot of this registry or never do.
  std::vector<std::string> absentNames() const {
    std::vector<std::string> names = {"missing.ns-0.svc.cluster.local",
                                      "ns-9.svc.cluster.local",
                                      "ns-9.svc",
                                      "svc.cluster.local",
                                      "cluster.local",
                                      "svc",
                                      "dns-version.cluster.local",
                                      "ns.dns.cluster.local",
                                      "example.org",
                                      "5.5.5.5.in-addr.arpa",
                                      "1.1.10.in-addr.arpa",
                                      "7.1.1.10.in-addr.arpa",
                                      "0.96.10.in-addr.arpa",
                                      "3.0.96.10.in-addr.arpa",
                                      "200.0.96.10.in-addr.arpa"};
    for (const auto& name : seen_names_) names.push_back(name);
    return names;
  }

  const std::map<std::pair<std::string, std::string>, store::ServiceEntryPtr>& services() const {
    return services_;
  }

 private:
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }

  std::string clusterIp() { return "10.96.0." + std::to_string(pick(20)); }
  std::string podIp() {
    switch (pick(4)) {
      case 0:
        return "10.96.0." + std::to_string(100 + pick(8));  // inside the service CIDR
      case 1:
        return "fd00::" + std::to_string(1 + pick(6));
      default:
        return "10.1." + std::to_string(pick(3)) + "." + std::to_string(1 + pick(8));
    }
  }

  store::Endpoint endpoint() {
    store::Endpoint made;
    made.ip = *store::IpAddress::parse(podIp());
    made.ready = pick(4) != 0;
    if (pick(3) == 0) made.hostname = "host-" + std::to_string(pick(3));
    made.ports = {static_cast<uint16_t>(pick(3) ? 8080 : 0)};
    return made;
  }

  void put(store::ServiceEntry entry) {
    auto key = std::make_pair(entry.service.namespace_name, entry.service.name);
    seen_names_.push_back(entry.service.name + "." + entry.service.namespace_name +
                          ".svc.cluster.local");
    services_[key] = std::make_shared<const store::ServiceEntry>(std::move(entry));
  }

  void add() {
    std::string ns = "ns-" + std::to_string(pick(4));
    std::string name = "svc-" + std::to_string(pick(30));
    switch (pick(4)) {
      case 0: {
        auto entry = headlessService(ns, name, {});
        for (size_t i = pick(4); i > 0; --i) entry.endpoints.push_back(endpoint());
        put(std::move(entry));
        break;
      }
      case 1: {
        auto entry = clusterIpService(ns, name, clusterIp());
        entry.service.type = store::ServiceType::kExternalName;
        entry.service.external_name = pick(2) ? "example.org" : "web.ns-1.svc.cluster.local";
        entry.service.cluster_ip.reset();
        put(std::move(entry));
        break;
      }
      default: {
        auto entry = clusterIpService(ns, name, clusterIp());
        if (pick(3) == 0)
          entry.service.ports.push_back({"dns", store::Protocol::kUdp, 53, {53, ""}});
        if (pick(5) == 0) entry.service.ports[0].name.clear();
        put(std::move(entry));
        break;
      }
    }
  }

  const store::ServiceEntryPtr* any() {
    if (services_.empty()) return nullptr;
    auto it = services_.begin();
    std::advance(it, static_cast<long>(pick(services_.size())));
    return &it->second;
  }

  void remove() {
    if (const auto* entry = any()) {
      services_.erase({(*entry)->service.namespace_name, (*entry)->service.name});
    }
  }

  void emptyNamespace() {
    std::string ns = "ns-" + std::to_string(pick(4));
    std::erase_if(services_, [&ns](const auto& item) { return item.first.first == ns; });
  }

  // The same pod behind a second headless Service (a relabelled pod both select).
  void sharePod() {
    std::vector<store::ServiceEntryPtr> headless;
    for (const auto& [key, entry] : services_) {
      if (entry->service.headless) headless.push_back(entry);
    }
    if (headless.size() < 2) return;
    const auto& from = headless[pick(headless.size())];
    const auto& to = headless[pick(headless.size())];
    if (from->endpoints.empty() || from == to) return;
    store::ServiceEntry changed = *to;
    changed.endpoints.push_back(from->endpoints[pick(from->endpoints.size())]);
    std::sort(changed.endpoints.begin(), changed.endpoints.end(),
              [](const auto& a, const auto& b) { return a.ip < b.ip; });
    put(std::move(changed));
  }

  // A new entry equal to the old one: the store re-resolved a Service DNS shows no change in.
  void copyUnchanged() {
    if (const auto* entry = any()) put(**entry);
  }

  void modify() {
    const auto* found = any();
    if (!found) return;
    store::ServiceEntry entry = **found;
    if (entry.service.headless) {
      switch (pick(4)) {
        case 0:
          if (!entry.endpoints.empty()) {
            auto& flipped = entry.endpoints[pick(entry.endpoints.size())];
            flipped.ready = !flipped.ready;
          }
          break;
        case 1:
          entry.endpoints.push_back(endpoint());
          break;
        case 2:
          if (!entry.endpoints.empty()) entry.endpoints.erase(entry.endpoints.begin());
          break;
        default:
          entry.service.ports[0].name = pick(2) ? "web" : "http";
          break;
      }
    } else if (entry.service.type == store::ServiceType::kClusterIP) {
      switch (pick(3)) {
        case 0:
          entry.service.cluster_ip = store::IpAddress::parse(clusterIp());
          break;
        case 1:
          entry.service.ports[0].port = static_cast<uint16_t>(80 + pick(3));
          break;
        default:
          // A pod's readiness: DNS does not show it for a ClusterIP Service.
          entry.endpoints.push_back(endpoint());
          break;
      }
    } else {
      entry.service.external_name = pick(2) ? "example.net" : "example.org";
    }
    put(std::move(entry));
  }

  std::mt19937 random_;
  uint64_t version_ = 0;
  std::map<std::pair<std::string, std::string>, store::ServiceEntryPtr> services_;
  std::vector<std::string> seen_names_;
};

void runRandomChanges(uint32_t seed, const std::string& cidr, const ZoneOptions& options) {
  RandomRegistry registry(seed);
  ZoneCompiler compiler(options);
  AnswerTablePtr last;
  int rebuilds = 0;
  int updates = 0;
  for (int step = 0; step < 150; ++step) {
    for (int i = 0; i < 1 + step % 3; ++i) registry.change();
    auto snapshot = registry.snapshot(cidr);
    auto compiled = compiler.compile(snapshot, nullptr);
    std::string context = "seed " + std::to_string(seed) + " step " + std::to_string(step);
    // Every snapshot has a new version, so a new table at least for the SOA serial.
    ASSERT_TRUE(compiled.table) << context;
    last = compiled.table;
    EXPECT_FALSE(compiled.whole) << context;
    ++(compiled.rebuilt ? rebuilds : updates);
    auto expected = AnswerTable::build(*snapshot, options);
    expectSameAnswers(*expected, *last, registry.absentNames(), context);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Both ways to a table were taken: updates, and rebuilds once enough bytes went unused.
  EXPECT_GT(updates, 75);
  EXPECT_GT(rebuilds, 1);
}

TEST(ZoneCompilerTest, RandomChangesAnswerAsAWholeBuild) {
  for (uint32_t seed : {1u, 2u, 3u, 4u}) {
    runRandomChanges(seed, "10.96.0.0/12", ZoneOptions{});
    if (HasFatalFailure()) return;
  }
}

// A /28 service CIDR: each ClusterIP's reverse name is a zone apex of its own, and pods beside
// the CIDR get a /24 zone around those apexes.
TEST(ZoneCompilerTest, RandomChangesWithANarrowServiceCidr) {
  ZoneOptions options;
  options.ns_address = store::IpAddress::parse("10.0.0.53");
  for (uint32_t seed : {5u, 6u}) {
    runRandomChanges(seed, "10.96.0.0/28", options);
    if (HasFatalFailure()) return;
  }
}

TEST(ZoneCompilerTest, EncodesOnlyTheChangedServices) {
  std::vector<store::ServiceEntryPtr> entries;
  for (int i = 0; i < 50; ++i) {
    entries.push_back(std::make_shared<const store::ServiceEntry>(clusterIpService(
        "default", "svc-" + std::to_string(100 + i), "10.96.1." + std::to_string(i))));
  }
  auto snapshot = [&entries](uint64_t version) {
    return std::make_shared<store::Snapshot>(version, store::Cidr::parse("10.96.0.0/12"), entries,
                                             std::vector<store::PodPtr>{},
                                             std::vector<store::EndpointSet>{}, 0, nullptr);
  };
  ZoneCompiler compiler(ZoneOptions{});
  EXPECT_EQ(compiler.compile(snapshot(1), nullptr).encoded, 50u);
  entries[7] = std::make_shared<const store::ServiceEntry>(
      clusterIpService("default", "svc-107", "10.96.2.7"));
  auto second = snapshot(2);
  auto compiled = compiler.compile(second, nullptr);
  EXPECT_EQ(compiled.encoded, 1u);
  ASSERT_TRUE(compiled.table);
  expectSameAnswers(*AnswerTable::build(*second, ZoneOptions{}), *compiled.table, {}, "one change");
  // An equal copy of an entry: nothing to encode; only the SOA serial (the version) is new.
  entries[9] = std::make_shared<const store::ServiceEntry>(*entries[9]);
  auto third = snapshot(3);
  compiled = compiler.compile(third, nullptr);
  EXPECT_EQ(compiled.encoded, 0u);
  ASSERT_TRUE(compiled.table);
  expectSameAnswers(*AnswerTable::build(*third, ZoneOptions{}), *compiled.table, {}, "serial");
  // The same version again: nothing to publish.
  EXPECT_FALSE(compiler.compile(snapshot(3), nullptr).table);
}

// A snapshot that changes nothing DNS shows but its version (a ClusterIP Service's pod turned
// ready, say) still moves the SOA serial: it is the registry's generation, as a serve started on
// that registry says (tests/differential found a followed serve still on the older serial).
TEST(ZoneCompilerTest, TheSoaSerialIsTheVersionAlsoWhenNothingElseChanged) {
  auto entry =
      std::make_shared<const store::ServiceEntry>(clusterIpService("default", "web", "10.96.0.10"));
  auto snapshot = [&entry](uint64_t version) {
    return std::make_shared<store::Snapshot>(
        version, store::Cidr::parse("10.96.0.0/12"), std::vector<store::ServiceEntryPtr>{entry},
        std::vector<store::PodPtr>{}, std::vector<store::EndpointSet>{}, 0, nullptr);
  };
  ZoneCompiler compiler(ZoneOptions{});
  ASSERT_TRUE(compiler.compile(snapshot(7), nullptr).table);
  auto eighth = snapshot(8);
  auto compiled = compiler.compile(eighth, nullptr);
  ASSERT_TRUE(compiled.table);
  EXPECT_EQ(compiled.encoded, 0u);
  auto soa = decode(ask(*compiled.table, "cluster.local", kTypeSoa).bytes);
  ASSERT_EQ(soa.answer.size(), 1u);
  EXPECT_NE(soa.answer[0].find(" 8 7200 1800 86400 5"), std::string::npos) << soa.answer[0];
  // Negative answers carry the zone's SOA too.
  auto absent = decode(ask(*compiled.table, "nope.default.svc.cluster.local", kTypeA).bytes);
  ASSERT_EQ(absent.authority.size(), 1u);
  EXPECT_NE(absent.authority[0].find(" 8 7200 1800 86400 5"), std::string::npos)
      << absent.authority[0];
  expectSameAnswers(*AnswerTable::build(*eighth, ZoneOptions{}), *compiled.table, {}, "serial");
}

TEST(ZoneCompilerTest, ProxiedServicesFollowTheirMap) {
  auto snapshot = makeSnapshot({clusterIpService("default", "a", "10.96.0.1"),
                                clusterIpService("default", "b", "10.96.0.2")});
  ZoneCompiler compiler(ZoneOptions{});
  ProxiedServices proxied;
  ASSERT_TRUE(compiler.compile(snapshot, &proxied).table);
  proxied[{"default", "b"}] =
      ProxiedService{*store::IpAddress::parse("127.0.0.2"), {{{store::Protocol::kTcp, 80}, 30080}}};
  auto compiled = compiler.compile(snapshot, &proxied);
  ASSERT_TRUE(compiled.table);
  EXPECT_EQ(compiled.encoded, 1u);
  expectSameAnswers(*AnswerTable::build(*snapshot, ZoneOptions{}, &proxied), *compiled.table, {},
                    "proxied");
  proxied[{"default", "b"}].ports[{store::Protocol::kTcp, 80}] = 30081;
  compiled = compiler.compile(snapshot, &proxied);
  ASSERT_TRUE(compiled.table);
  expectSameAnswers(*AnswerTable::build(*snapshot, ZoneOptions{}, &proxied), *compiled.table, {},
                    "proxied port");
  compiled = compiler.compile(snapshot, nullptr);
  ASSERT_TRUE(compiled.table);
  expectSameAnswers(*AnswerTable::build(*snapshot, ZoneOptions{}), *compiled.table, {},
                    "no longer proxied");
}

// With the cluster domain "svc", Service ns/dns's short name is svcbox's own NS name: two pieces
// give it addresses, and the NS glue must list both, so the compiler builds the zone whole.
TEST(ZoneCompilerTest, AddressesFromTwoPiecesFallBackToAWholeBuild) {
  ZoneOptions options{"svc", 5, store::IpAddress::parse("10.0.0.53")};
  auto snapshot = makeSnapshot({clusterIpService("dns", "ns", "10.96.0.1")});
  ZoneCompiler compiler(options);
  auto compiled = compiler.compile(snapshot, nullptr);
  ASSERT_TRUE(compiled.table);
  EXPECT_TRUE(compiled.whole);
  expectSameAnswers(*AnswerTable::build(*snapshot, options), *compiled.table, {}, "fallback");
}

}  // namespace
}  // namespace svcbox::dns
