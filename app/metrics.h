#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "dns/metrics.h"
#include "router/provider.h"
#include "store/snapshot.h"

namespace prometheus {
class Registry;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

// serve's metrics page: CoreDNS's and kube-proxy's metric names with the svcbox_ prefix, read
// from the running parts through callbacks at scrape time (the DNS hot path never touches a
// Prometheus object).
namespace svcbox::app {

// The prober's totals.
struct ProbeStats {
  uint64_t tcp_success = 0;
  uint64_t tcp_failure = 0;
  uint64_t http_success = 0;
  uint64_t http_failure = 0;
  uint64_t default_success = 0;
  uint64_t default_failure = 0;
  uint64_t sessions = 0;  // probe sessions running now
};

class ServeMetrics {
 public:
  ServeMetrics();
  ~ServeMetrics();
  ServeMetrics(const ServeMetrics&) = delete;
  ServeMetrics& operator=(const ServeMetrics&) = delete;

  // Each source is optional (proxy-mode none has no router, say); an absent one shows no
  // families. Set them before the first render; they are called on the rendering thread.
  void setDnsSource(std::function<dns::DnsMetrics()> source);
  // The proxy backend's sync counters, rule counts and (userspace mode) relay counters.
  void setProviderSource(std::function<router::ProviderStats()> source);
  void setSnapshotSource(std::function<store::SnapshotPtr()> source);
  void setProbeSource(std::function<ProbeStats()> source);
  void setRegistryErrorsSource(std::function<uint64_t()> source);
  // How many generations the registry is ahead of what serve publishes, once confirmed.
  void setGenerationLagSource(std::function<uint64_t()> source);

  // Commit to "the change is in effect": target "dns" (table published) or "rules" (rules
  // installed). Thread-safe.
  void observeProgramming(const char* target, std::chrono::duration<double> latency);

  // The Prometheus text exposition format, version 0.0.4.
  std::string render() const;

  // Buckets of svcbox_network_programming_duration_seconds.
  static const std::vector<double>& programmingBuckets();

 private:
  class SourceCollector;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* programming_ = nullptr;
  std::unique_ptr<SourceCollector> sources_;
};

// Wall clock in milliseconds since the Unix epoch (what a snapshot's commit time is in).
int64_t wallClockMs();
// Commit to "in effect" for svcbox_network_programming_duration_seconds. Snapshots without a
// commit time (a registry last written by an older svcbox) are not counted.
void observeProgramming(ServeMetrics& metrics, const char* target, const store::Snapshot& snapshot);

// The provider's on-synced hook for commit → rules latency: each newly installed snapshot once;
// the first sync is not counted (it installs what may have been committed long ago).
std::function<void(const store::SnapshotPtr& installed)> rulesProgrammingObserver(
    ServeMetrics& metrics);

}  // namespace svcbox::app
