#include "router/desired_state_tracker.h"

#include <gtest/gtest.h>

#include <random>

// The tracker against the whole computation: after any sequence of changes its state must equal
// computeDesiredState, and what it calls incremental must differ from the previous state only in
// the chains it names.
namespace svcbox::router {
namespace {

store::IpAddress ipv4(uint32_t value) {
  store::IpAddress address;
  for (int i = 0; i < 4; ++i) address.bytes[i] = static_cast<uint8_t>(value >> (24 - 8 * i));
  return address;
}

store::ServiceEntry makeService(int index, bool udp_too) {
  store::ServiceEntry entry;
  entry.service.namespace_name = "ns" + std::to_string(index % 3);
  entry.service.name = "svc" + std::to_string(index);
  entry.service.cluster_ip = ipv4(0x0a600000 + static_cast<uint32_t>(index) * 37);
  entry.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}}};
  if (udp_too) entry.service.ports.push_back({"dns", store::Protocol::kUdp, 53, {5353, ""}});
  if (index % 7 == 0) {
    entry.service.session_affinity = store::SessionAffinity::kClientIP;
    entry.service.affinity_timeout_seconds = 100;
  }
  if (index % 11 == 0) {  // DNS only: must never produce rules, incremental or not
    entry.service.headless = true;
    entry.service.cluster_ip.reset();
  }
  return entry;
}

store::Endpoint makeEndpoint(uint32_t address, bool ready, size_t ports) {
  return {ipv4(0x0af40000 + address), ready, "", "", std::vector<uint16_t>(ports, 8080)};
}

store::SnapshotPtr snapshotOf(uint64_t version, std::vector<store::ServiceEntryPtr> entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a->service.namespace_name, a->service.name) <
           std::tie(b->service.namespace_name, b->service.name);
  });
  return std::make_shared<const store::Snapshot>(version, std::nullopt, std::move(entries),
                                                 std::vector<store::PodPtr>{},
                                                 std::vector<store::EndpointSet>{}, 0, nullptr);
}

void expectEqualStates(const DesiredState& actual, const DesiredState& expected) {
  EXPECT_EQ(actual.nat, expected.nat);
  EXPECT_EQ(actual.filter, expected.filter);
  EXPECT_EQ(actual.mangle, expected.mangle);
  EXPECT_EQ(actual.udp_ports, expected.udp_ports);
  EXPECT_EQ(actual.service_ports, expected.service_ports);
  EXPECT_EQ(actual.skipped_ipv6, expected.skipped_ipv6);
}

TEST(DesiredStateTrackerTest, RandomChangesGiveTheWholeComputationsResult) {
  RouterOptions options;
  options.bucket_threshold = 8;  // bucket chains too
  std::mt19937 random(20261126);
  std::vector<store::ServiceEntryPtr> entries;
  for (int i = 0; i < 40; ++i) {
    auto entry = makeService(i, i % 4 == 0);
    for (uint32_t e = 0; e < static_cast<uint32_t>(i % 4); ++e) {
      entry.endpoints.push_back(
          makeEndpoint(static_cast<uint32_t>(i) * 16 + e, e != 2, entry.service.ports.size()));
    }
    entries.push_back(std::make_shared<const store::ServiceEntry>(std::move(entry)));
  }
  DesiredStateTracker tracker(options);
  DesiredStateTracker::Change change;
  tracker.update(snapshotOf(1, entries), change);
  EXPECT_FALSE(change.incremental);
  int incremental = 0, whole = 0, next_service = 40;
  for (uint64_t version = 2; version < 400; ++version) {
    DesiredState before = tracker.state();
    size_t changes = 1 + random() % 3;
    for (size_t c = 0; c < changes; ++c) {
      size_t at = random() % entries.size();
      auto entry = *entries[at];
      switch (random() % 10) {
        case 0:
        case 1:
        case 2:  // readiness flip
          if (!entry.endpoints.empty()) {
            auto& endpoint = entry.endpoints[random() % entry.endpoints.size()];
            endpoint.ready = !endpoint.ready;
          }
          break;
        case 3:
        case 4:  // endpoint added
          entry.endpoints.push_back(makeEndpoint(static_cast<uint32_t>(1000 + random() % 5000),
                                                 random() % 4 != 0, entry.service.ports.size()));
          break;
        case 5:
        case 6:  // endpoint removed (perhaps the last one)
          if (!entry.endpoints.empty()) entry.endpoints.erase(entry.endpoints.begin());
          break;
        case 7:  // a copy equal to the old entry: a rebuild that changed nothing for it
          break;
        case 8:  // Service added or removed
          if (random() % 2) {
            entries.push_back(std::make_shared<const store::ServiceEntry>(
                makeService(next_service++, random() % 2)));
          } else if (entries.size() > 5) {
            entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(at));
          }
          continue;
        case 9:  // the Service's port moves
          entry.service.ports[0].port = static_cast<uint16_t>(81 + random() % 3);
          break;
      }
      entries[at] = std::make_shared<const store::ServiceEntry>(std::move(entry));
    }
    auto snapshot = snapshotOf(version, entries);
    const DesiredState& state = tracker.update(snapshot, change);
    SCOPED_TRACE("version " + std::to_string(version));
    expectEqualStates(state, computeDesiredState(*snapshot, options));
    if (!change.incremental) {
      ++whole;
      continue;
    }
    ++incremental;
    EXPECT_EQ(state.filter, before.filter);
    EXPECT_EQ(state.mangle, before.mangle);
    ASSERT_EQ(state.nat.chains.size(), before.nat.chains.size());
    for (size_t i = 0; i < state.nat.chains.size(); ++i) {
      const auto& name = state.nat.chains[i].name;
      ASSERT_EQ(name, before.nat.chains[i].name);
      bool named = std::binary_search(change.nat_chains.begin(), change.nat_chains.end(), name);
      EXPECT_EQ(named, state.nat.chains[i].rules != before.nat.chains[i].rules) << name;
    }
  }
  // Both ways were taken often, or the comparison above proves little.
  EXPECT_GT(incremental, 100);
  EXPECT_GT(whole, 50);
}

TEST(DesiredStateTrackerTest, AnEndpointChangeNamesOnlyItsServicesChain) {
  std::vector<store::ServiceEntryPtr> entries;
  for (int i = 1; i <= 3; ++i) {
    auto entry = makeService(i, false);
    entry.endpoints = {makeEndpoint(static_cast<uint32_t>(i), true, 1)};
    entries.push_back(std::make_shared<const store::ServiceEntry>(std::move(entry)));
  }
  DesiredStateTracker tracker(RouterOptions{});
  DesiredStateTracker::Change change;
  tracker.update(snapshotOf(1, entries), change);
  auto changed = *entries[1];
  changed.endpoints.push_back(makeEndpoint(99, true, 1));
  entries[1] = std::make_shared<const store::ServiceEntry>(changed);
  const auto& state = tracker.update(snapshotOf(2, entries), change);
  ASSERT_TRUE(change.incremental);
  ASSERT_EQ(change.nat_chains.size(), 1u);
  const Chain* chain = state.nat.findChain(change.nat_chains[0]);
  ASSERT_NE(chain, nullptr);
  EXPECT_EQ(chain->rules.back().target.address, 0x0af40000u + 99);
  // Its last endpoint gone, the port is rejected in filter instead: computed whole.
  changed.endpoints.clear();
  entries[1] = std::make_shared<const store::ServiceEntry>(changed);
  tracker.update(snapshotOf(3, entries), change);
  EXPECT_FALSE(change.incremental);
}

}  // namespace
}  // namespace svcbox::router
