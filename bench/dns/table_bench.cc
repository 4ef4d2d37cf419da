// Zone compile times at 10,000 Services (the DNS benchmark's shape: one named port per Service,
// ten namespaces), the figures that bound how fast a registry change reaches DNS answers.
//
//   dns_table_bench [SERVICES]          the whole zone compiled from scratch, 11 times
//   dns_table_bench publish [SERVICES]  one-Service changes, as serve publishes them: a snapshot
//                                       sharing every other entry with the one before, compiled
//                                       whole (fingerprint + AnswerTable::build, the old publish)
//                                       and by the ZoneCompiler that keeps the last compile
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "dns/answer_table.h"
#include "dns/zone_compiler.h"

namespace {

using namespace svcbox;
using Clock = std::chrono::steady_clock;

constexpr int kPodsPerService = 3;
// One Service in ten is headless: its ready pods are its answers.
constexpr int kHeadlessEvery = 10;

double millisecondsSince(Clock::time_point started) {
  return std::chrono::duration<double, std::milli>(Clock::now() - started).count();
}

store::IpAddress address(int base, int index) {
  return *store::IpAddress::parse(
      std::to_string(base) + "." + std::to_string((index >> 16) & 0xFF) + "." +
      std::to_string((index >> 8) & 0xFF) + "." + std::to_string(index & 0xFF));
}

store::ServiceEntry makeService(int i, bool with_pods) {
  store::ServiceEntry entry;
  entry.service.namespace_name = "ns-" + std::to_string(i % 10);
  entry.service.name = "svc-" + std::to_string(i);
  int host = i + 16;
  entry.service.cluster_ip = store::IpAddress::parse("10.96." + std::to_string(host >> 8) + "." +
                                                     std::to_string(host & 0xFF));
  entry.service.ports.push_back({"http", store::Protocol::kTcp, 80, {80, ""}});
  if (!with_pods) return entry;
  if (i % kHeadlessEvery == 0) {
    entry.service.headless = true;
    entry.service.cluster_ip.reset();
  }
  for (int pod = 0; pod < kPodsPerService; ++pod) {
    store::Endpoint endpoint;
    endpoint.ip = address(10, (1 << 16) + i * kPodsPerService + pod);
    endpoint.ready = true;
    endpoint.pod_name = entry.service.name + "-" + std::to_string(pod);
    endpoint.ports = {8080};
    entry.endpoints.push_back(endpoint);
  }
  return entry;
}

struct Stats {
  std::vector<double> times;
  void add(double ms) { times.push_back(ms); }
  double percentile(double p) {
    std::sort(times.begin(), times.end());
    return times[static_cast<size_t>(p * static_cast<double>(times.size() - 1))];
  }
};

int wholeCompile(int services) {
  std::vector<store::ServiceEntry> entries;
  for (int i = 0; i < services; ++i) entries.push_back(makeService(i, false));
  store::Snapshot snapshot(1, store::Cidr::parse("10.96.0.0/12"), std::move(entries),
                           std::vector<store::PodPtr>{}, {});
  Stats stats;
  size_t names = 0;
  size_t bytes = 0;
  for (int round = 0; round < 11; ++round) {
    auto started = Clock::now();
    auto table = dns::AnswerTable::build(snapshot, dns::ZoneOptions{});
    stats.add(millisecondsSince(started));
    names = table->nodeCount();
    bytes = table->memoryUsage();
  }
  std::printf("zone compile, %d Services: %zu names, %.1f MiB, median %.1f ms, max %.1f ms\n",
              services, names, static_cast<double>(bytes) / (1 << 20), stats.percentile(0.5),
              stats.percentile(1.0));
  return 0;
}

// A change DNS shows: a headless Service's pod turns (un)ready; a ClusterIP Service's port
// changes or it gains one.
store::ServiceEntryPtr changed(const store::ServiceEntryPtr& entry, int round) {
  store::ServiceEntry copy = *entry;
  if (copy.service.headless) {
    copy.endpoints[0].ready = !copy.endpoints[0].ready;
  } else if (round % 2 == 0) {
    copy.service.ports[0].port = copy.service.ports[0].port == 80 ? 81 : 80;
  } else {
    copy.service.ports.push_back(
        {"metrics-" + std::to_string(round), store::Protocol::kTcp, 9090, {9090, ""}});
  }
  return std::make_shared<const store::ServiceEntry>(std::move(copy));
}

int publish(int services) {
  std::vector<store::ServiceEntryPtr> entries;
  for (int i = 0; i < services; ++i) {
    entries.push_back(std::make_shared<const store::ServiceEntry>(makeService(i, true)));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a->service.namespace_name, a->service.name) <
           std::tie(b->service.namespace_name, b->service.name);
  });
  uint64_t version = 1;
  auto snapshot = [&] {
    return std::make_shared<store::Snapshot>(version++, store::Cidr::parse("10.96.0.0/12"), entries,
                                             std::vector<store::PodPtr>{},
                                             std::vector<store::EndpointSet>{}, 0, nullptr);
  };
  dns::ZoneOptions options;
  dns::ZoneCompiler compiler(options);
  auto first = snapshot();
  auto started = Clock::now();
  auto initial = compiler.compile(first, nullptr);
  double first_ms = millisecondsSince(started);

  constexpr int kRounds = 60;
  Stats whole;
  Stats incremental;
  Stats unseen;  // changes DNS does not show: a ClusterIP Service's pod readiness
  size_t encoded = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Spread over the registry, headless and ClusterIP Services alike.
    size_t at = static_cast<size_t>(round * 7919) % entries.size();
    bool hidden = round % 4 == 3 && !entries[at]->service.headless;
    if (hidden) {
      store::ServiceEntry copy = *entries[at];
      copy.endpoints[1].ready = !copy.endpoints[1].ready;
      entries[at] = std::make_shared<const store::ServiceEntry>(std::move(copy));
    } else {
      entries[at] = changed(entries[at], round);
    }
    auto next = snapshot();

    started = Clock::now();
    volatile uint64_t fingerprint = dns::zoneFingerprint(*next);
    (void)fingerprint;
    auto table = dns::AnswerTable::build(*next, options);
    whole.add(millisecondsSince(started));

    started = Clock::now();
    auto compiled = compiler.compile(next, nullptr);
    (hidden ? unseen : incremental).add(millisecondsSince(started));
    encoded += compiled.encoded;
    if (!hidden && (!compiled.table || compiled.table->nodeCount() != table->nodeCount())) {
      std::fprintf(stderr, "round %d: the compiled zone differs from the whole build\n", round);
      return 1;
    }
  }
  std::printf(
      "publish after one-Service changes, %d Services (%d pods each, 1 in %d headless), "
      "%d rounds:\n",
      services, kPodsPerService, kHeadlessEvery, kRounds);
  std::printf(
      "  whole build (fingerprint + AnswerTable::build): median %.1f ms, p90 %.1f ms, "
      "max %.1f ms\n",
      whole.percentile(0.5), whole.percentile(0.9), whole.percentile(1.0));
  std::printf(
      "  ZoneCompiler, a change DNS shows:              median %.1f ms, p90 %.1f ms, "
      "max %.1f ms\n",
      incremental.percentile(0.5), incremental.percentile(0.9), incremental.percentile(1.0));
  std::printf("  ZoneCompiler, a change DNS does not show:      median %.2f ms, max %.2f ms\n",
              unseen.percentile(0.5), unseen.percentile(1.0));
  std::printf(
      "  ZoneCompiler's first compile (every Service): %.1f ms; %zu names, %.1f MiB; %zu Services "
      "encoded in the rounds\n",
      first_ms, initial.table->nodeCount(),
      static_cast<double>(initial.table->memoryUsage()) / (1 << 20), encoded);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "publish") == 0) {
    return publish(argc > 2 ? std::stoi(argv[2]) : 10000);
  }
  return wholeCompile(argc > 1 ? std::stoi(argv[1]) : 10000);
}
