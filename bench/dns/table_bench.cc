// Compiles the cluster zone of a 10,000-Service snapshot (the DNS benchmark's shape: one named
// port per Service, ten namespaces) several times and prints the median and max, the figure that
// bounds how fast a registry change reaches DNS answers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "dns/answer_table.h"

int main(int argc, char** argv) {
  using namespace svcbox;
  int services = argc > 1 ? std::stoi(argv[1]) : 10000;
  std::vector<store::ServiceEntry> entries;
  for (int i = 0; i < services; ++i) {
    store::ServiceEntry entry;
    entry.service.namespace_name = "ns-" + std::to_string(i % 10);
    entry.service.name = "svc-" + std::to_string(i);
    int host = i + 16;
    entry.service.cluster_ip = store::IpAddress::parse("10.96." + std::to_string(host >> 8) + "." +
                                                       std::to_string(host & 0xFF));
    entry.service.ports.push_back({"http", store::Protocol::kTcp, 80, {80, ""}});
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.service.namespace_name, a.service.name) <
           std::tie(b.service.namespace_name, b.service.name);
  });
  store::Snapshot snapshot(1, store::Cidr::parse("10.96.0.0/12"), std::move(entries),
                           std::vector<store::PodPtr>{}, {});
  std::vector<double> times;
  size_t names = 0;
  size_t bytes = 0;
  for (int round = 0; round < 11; ++round) {
    auto started = std::chrono::steady_clock::now();
    auto table = dns::AnswerTable::build(snapshot, dns::ZoneOptions{});
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
    names = table->nodeCount();
    bytes = table->memoryUsage();
  }
  std::sort(times.begin(), times.end());
  std::printf("zone compile, %d Services: %zu names, %.1f MiB, median %.1f ms, max %.1f ms\n",
              services, names, static_cast<double>(bytes) / (1 << 20), times[times.size() / 2],
              times.back());
}
