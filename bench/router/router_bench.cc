// router_bench MODE N RUNS: svcbox's side of bench/router/run.sh, in the namespace it is run in.
//   full  N RUNS  cold full sync (svcbox chains removed first) and resync of the same ruleset
//   incr  N RUNS  one Service's endpoint changes (alternating A->B, B->A) after a full sync, the
//                 tables read ahead between changes (untimed) as the router does while idle
//   incr-reread N RUNS  the same, every change reading the nat table itself
//   load  N       one full sync, rules left in place (for the data-path measurement)
//   cleanup 0     remove svcbox's chains
// The registry is the shape of ../shared/bench/router/gen.py: N-1 filler Services
// 10.100.x.y:80 -> 3 endpoints 10.128.x.y:8080, plus default/target 10.96.0.10:80 ->
// 10.244.{1,2,3}.2:8080 last (its ClusterIP from $TARGET_IP when set). Prints Markdown rows like
// tm.py: | label | runs | median | min | max | plus where the time went (compute, nat read, edit,
// commit).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "router/desired_state.h"
#include "router/desired_state_tracker.h"
#include "router/iptc_sync.h"
#include "router/router.h"
#include "store/snapshot.h"

using namespace svcbox;
using Clock = std::chrono::steady_clock;

namespace {

store::IpAddress ipv4(uint32_t value) {
  store::IpAddress address;
  for (int i = 0; i < 4; ++i) address.bytes[i] = static_cast<uint8_t>(value >> (24 - 8 * i));
  return address;
}

// gen.py's ip(base, idx): 10.<base + idx>>16>.<idx>>8 & 255>.<idx & 255>
uint32_t genIp(uint32_t base, uint32_t index) {
  return (10u << 24) | ((base + (index >> 16)) << 16) | (((index >> 8) & 255) << 8) | (index & 255);
}

store::ServiceEntry serviceEntry(std::string ns, std::string name, uint32_t cluster_ip,
                                 std::vector<uint32_t> endpoints) {
  store::ServiceEntry entry;
  entry.service.namespace_name = std::move(ns);
  entry.service.name = std::move(name);
  entry.service.cluster_ip = ipv4(cluster_ip);
  entry.service.ports = {{"p80", store::Protocol::kTcp, 80, {8080, ""}}};
  for (uint32_t ip : endpoints) entry.endpoints.push_back({ipv4(ip), true, "", "", {8080}});
  return entry;
}

// variant: service `changed` gets an alternative endpoint 0, as gen.py --var K:V.
store::SnapshotPtr registry(size_t n, size_t changed = SIZE_MAX, uint32_t variant = 0) {
  std::vector<store::ServiceEntry> services;
  for (uint32_t i = 0; i + 1 < n; ++i) {
    std::vector<uint32_t> endpoints;
    for (uint32_t j = 0; j < 3; ++j) endpoints.push_back(genIp(128, i * 3 + j));
    if (i == changed && variant) endpoints[0] = genIp(160, i * 8 + variant);
    services.push_back(serviceEntry("ns" + std::to_string(i / 100), "svc" + std::to_string(i),
                                    genIp(100, i), endpoints));
  }
  // TARGET_IP moves the real Service, e.g. into the last dispatch bucket for a worst-case scan.
  const char* target = std::getenv("TARGET_IP");
  auto target_ip = store::IpAddress::parse(target ? target : "10.96.0.10");
  uint32_t target_value = 0;
  for (int i = 0; i < 4; ++i) target_value = (target_value << 8) | target_ip->bytes[i];
  services.push_back(
      serviceEntry("default", "target", target_value, {0x0af40102, 0x0af40202, 0x0af40302}));
  return std::make_shared<const store::Snapshot>(1, std::nullopt, std::move(services),
                                                 std::vector<store::Pod>{},
                                                 std::vector<store::EndpointSet>{});
}

double since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Sample {
  double total = 0, compute = 0, init = 0, edit = 0, commit = 0;
};

// As the router syncs: the tracker brings the desired state to `snapshot` (only the changed
// Services' chains when the snapshots share the rest) and tells the writer which chains moved.
Sample syncAll(router::IptcTableWriter& writer, router::DesiredStateTracker& tracker,
               const store::SnapshotPtr& snapshot, bool full) {
  Sample sample;
  auto start = Clock::now();
  router::DesiredStateTracker::Change change;
  const auto& desired = tracker.update(snapshot, change);
  sample.compute = since(start);
  static const std::vector<std::string> kNoChains;
  for (const auto* table : {&desired.nat, &desired.filter, &desired.mangle}) {
    router::TableSyncStats stats;
    router::SyncFailure failure;
    const auto* changed = !change.incremental     ? nullptr
                          : table == &desired.nat ? &change.nat_chains
                                                  : &kNoChains;
    if (!writer.sync(*table, full, changed, stats, failure)) {
      std::fprintf(stderr, "sync failed: %s\n", failure.message.c_str());
      std::exit(1);
    }
    if (table == &desired.nat) {
      sample.init = stats.init_ms;
      sample.edit = stats.edit_ms;
      sample.commit = stats.commit_ms;
    }
  }
  sample.total = since(start);
  return sample;
}

void cleanup() {
  router::SyncFailure failure;
  bool changed = false;
  if (!router::cleanupAll(failure, changed)) {
    std::fprintf(stderr, "cleanup failed: %s\n", failure.message.c_str());
    std::exit(1);
  }
}

void report(const std::string& label, std::vector<Sample> samples) {
  auto median = [&](double Sample::*field) {
    std::vector<double> values;
    for (const auto& s : samples) values.push_back(s.*field);
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  std::vector<double> totals;
  for (const auto& s : samples) totals.push_back(s.total);
  std::sort(totals.begin(), totals.end());
  std::printf(
      "| %s | %zu | %.1f | %.1f | %.1f | compute %.1f, nat read %.1f, edit %.1f, commit %.1f |\n",
      label.c_str(), samples.size(), median(&Sample::total), totals.front(), totals.back(),
      median(&Sample::compute), median(&Sample::init), median(&Sample::edit),
      median(&Sample::commit));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: router_bench full|incr|load N [RUNS]\n");
    return 2;
  }
  std::string mode = argv[1];
  size_t n = std::strtoul(argv[2], nullptr, 10);
  int runs = argc > 3 ? std::atoi(argv[3]) : 5;
  auto snapshot = registry(n);
  if (mode == "cleanup") {
    cleanup();
    return 0;
  }
  if (mode == "load") {
    router::IptcTableWriter writer;
    router::DesiredStateTracker tracker{router::RouterOptions{}};
    auto sample = syncAll(writer, tracker, snapshot, true);
    std::printf("%.0f\n", sample.total);
    return 0;
  }
  if (mode == "full") {
    std::vector<Sample> cold, resync;
    for (int i = 0; i < runs; ++i) {
      cleanup();
      router::IptcTableWriter writer;  // a fresh start: nothing remembered
      router::DesiredStateTracker tracker{router::RouterOptions{}};
      cold.push_back(syncAll(writer, tracker, snapshot, true));
      // Periodic: every chain rewritten, every rule computed again (a new snapshot object).
      router::DesiredStateTracker fresh{router::RouterOptions{}};
      resync.push_back(syncAll(writer, fresh, snapshot, true));
    }
    report("svcbox N=" + std::to_string(n) + " cold", cold);
    report("svcbox N=" + std::to_string(n) + " full resync", resync);
    return 0;
  }
  if (mode == "incr" || mode == "incr-reread") {
    const size_t changed = 4242;  // gen.py's K
    bool read_ahead = mode == "incr";
    auto a = registry(n, changed, 0);
    // The registry's next snapshot shares every Service entry but the changed one.
    auto b_entries = a->sharedServices();
    auto variant = registry(n, changed, 1);
    for (size_t i = 0; i < b_entries.size(); ++i) {
      if (b_entries[i]->service.name == "svc" + std::to_string(changed)) {
        b_entries[i] = variant->sharedServices()[i];
      }
    }
    auto b = std::make_shared<const store::Snapshot>(2, std::nullopt, b_entries, a->pods(),
                                                     a->endpointSets(), 0, a.get());
    cleanup();
    router::IptcTableWriter writer;
    router::DesiredStateTracker tracker{router::RouterOptions{}};
    syncAll(writer, tracker, a, true);
    std::vector<Sample> samples;
    for (int i = 0; i < runs; ++i) {
      if (read_ahead) writer.prepare("nat");
      samples.push_back(syncAll(writer, tracker, i % 2 ? a : b, false));
    }
    report("svcbox N=" + std::to_string(n) + " one endpoint change" +
               (read_ahead ? " (nat read ahead)" : " (nat read in the sync)"),
           samples);
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
