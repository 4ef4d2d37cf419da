#include "app/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <limits>

#include "dns/tcp_limits.h"

namespace svcbox::app {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using LabelList = std::vector<ClientMetric::Label>;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily result;
  result.name = std::move(name);
  result.help = std::move(help);
  result.type = type;
  return result;
}

void addValue(MetricFamily& into, double value, LabelList labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  switch (into.type) {
    case MetricType::Counter:
      metric.counter.value = value;
      break;
    case MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  into.metric.push_back(std::move(metric));
}

// `counts`: per bucket, not cumulative, one more than `bounds` (the last above every bound).
template <typename Bounds, typename Counts>
void addHistogram(MetricFamily& into, const Bounds& bounds, const Counts& counts, double sum,
                  LabelList labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  uint64_t cumulative = 0;
  size_t i = 0;
  for (; i < std::size(bounds); ++i) {
    cumulative += counts[i];
    metric.histogram.bucket.push_back({cumulative, static_cast<double>(bounds[i])});
  }
  cumulative += counts[i];
  metric.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  metric.histogram.sample_count = cumulative;
  metric.histogram.sample_sum = sum;
  into.metric.push_back(std::move(metric));
}

void collectDns(const dns::DnsMetrics& dns, std::vector<MetricFamily>& out) {
  auto requests = family("svcbox_dns_requests_total", "DNS requests by transport and query type.",
                         MetricType::Counter);
  for (size_t proto = 0; proto < dns::kProtoSlots; ++proto) {
    for (size_t slot = 0; slot < dns::kQtypeSlots; ++slot) {
      addValue(requests, static_cast<double>(dns.requests[proto][slot]),
               {{"proto", dns::protoLabel(proto)}, {"type", dns::qtypeLabel(slot)}});
    }
  }
  out.push_back(std::move(requests));
  auto responses =
      family("svcbox_dns_responses_total", "DNS responses by RCODE.", MetricType::Counter);
  for (size_t slot = 0; slot < dns::kRcodeSlots; ++slot) {
    addValue(responses, static_cast<double>(dns.responses[slot]),
             {{"rcode", dns::rcodeLabel(slot)}});
  }
  out.push_back(std::move(responses));
  auto duration = family("svcbox_dns_request_duration_seconds",
                         "Time from a request's arrival to its answer being sent (forwarded "
                         "requests included).",
                         MetricType::Histogram);
  addHistogram(duration, dns::kDurationBuckets, dns.request_duration.counts,
               dns.request_duration.sum_seconds);
  out.push_back(std::move(duration));

  auto counter = [&](const char* name, const char* help, uint64_t value) {
    auto item = family(name, help, MetricType::Counter);
    addValue(item, static_cast<double>(value));
    out.push_back(std::move(item));
  };
  counter("svcbox_dns_cache_hits_total", "Forwardable requests answered from the cache.",
          dns.cache_hits);
  counter("svcbox_dns_cache_misses_total", "Forwardable requests the cache could not answer.",
          dns.cache_misses);
  counter("svcbox_dns_forwarded_total", "Questions sent to an upstream resolver.", dns.forwarded);
  counter("svcbox_dns_forward_failures_total",
          "Forwarded questions no upstream answered (the client got SERVFAIL).",
          dns.upstream_failures);
  counter("svcbox_dns_forward_max_concurrent_rejects_total",
          "Questions refused because --max-concurrent-forwards were in flight.",
          dns.refused_over_limit);
  counter("svcbox_dns_dropped_total", "Packets dropped unanswered (responses, runts, oversized).",
          dns.dropped);

  auto gauge = [&](const char* name, const char* help, uint64_t value) {
    auto item = family(name, help, MetricType::Gauge);
    addValue(item, static_cast<double>(value));
    out.push_back(std::move(item));
  };
  auto byReason = [&](const char* name, const char* help, const auto& values,
                      const char* (*label)(size_t)) {
    auto item = family(name, help, MetricType::Counter);
    for (size_t slot = 0; slot < values.size(); ++slot) {
      addValue(item, static_cast<double>(values[slot]), {{"reason", label(slot)}});
    }
    out.push_back(std::move(item));
  };
  gauge("svcbox_dns_tcp_connections", "DNS-over-TCP connections open now.", dns.tcp_connections);
  gauge("svcbox_dns_tcp_stalled_connections",
        "DNS-over-TCP connections serve stopped reading because their client left more than "
        "--dns-tcp-max-unsent of answers unread.",
        dns.tcp_stalled);
  byReason("svcbox_dns_tcp_refused_total",
           "DNS-over-TCP connections closed as they arrived, by the limit that refused them.",
           dns.tcp_refused, dns::tcpRefusalLabel);
  byReason("svcbox_dns_tcp_closed_total",
           "DNS-over-TCP connections serve closed, by the limit that ended them.", dns.tcp_closed,
           dns::tcpCloseLabel);

  auto forward_requests = family("svcbox_dns_forward_requests_total",
                                 "Answers received from each upstream.", MetricType::Counter);
  auto forward_duration = family("svcbox_dns_forward_request_duration_seconds",
                                 "Time from a question leaving svcbox to the upstream's answer.",
                                 MetricType::Histogram);
  for (const auto& upstream : dns.upstreams) {
    addValue(forward_requests, static_cast<double>(upstream.requests), {{"to", upstream.to}});
    addHistogram(forward_duration, dns::kDurationBuckets, upstream.duration.counts,
                 upstream.duration.sum_seconds, {{"to", upstream.to}});
  }
  out.push_back(std::move(forward_requests));
  out.push_back(std::move(forward_duration));
}

void collectRouter(const router::ProviderStats& stats, std::vector<MetricFamily>& out) {
  std::array<double, router::kSyncDurationBuckets> bounds{};
  for (size_t i = 0; i < bounds.size(); ++i) bounds[i] = router::syncDurationBound(i);
  auto duration = family("svcbox_sync_proxy_rules_duration_seconds",
                         "Time one sync of the netfilter rules took (failed ones included).",
                         MetricType::Histogram);
  addHistogram(duration, bounds, stats.duration_counts, stats.duration_sum_seconds);
  out.push_back(std::move(duration));
  auto syncs = family("svcbox_sync_proxy_rules_total", "Successful syncs of the netfilter rules.",
                      MetricType::Counter);
  addValue(syncs, static_cast<double>(stats.syncs));
  out.push_back(std::move(syncs));
  auto failures = family("svcbox_sync_proxy_rules_failures_total",
                         "Failed syncs of the netfilter rules.", MetricType::Counter);
  addValue(failures, static_cast<double>(stats.failures));
  out.push_back(std::move(failures));
  auto rules =
      family("svcbox_iptables_rules",
             "Rules svcbox installed per table by the last successful sync.", MetricType::Gauge);
  auto chains =
      family("svcbox_iptables_chains",
             "Chains svcbox installed per table by the last successful sync.", MetricType::Gauge);
  for (const auto& table : stats.tables) {
    addValue(rules, static_cast<double>(table.rules), {{"table", table.table}});
    addValue(chains, static_cast<double>(table.chains), {{"table", table.table}});
  }
  out.push_back(std::move(rules));
  out.push_back(std::move(chains));
  auto last = family("svcbox_sync_proxy_rules_last_timestamp_seconds",
                     "When the last successful sync finished (Unix time).", MetricType::Gauge);
  addValue(last, static_cast<double>(stats.last_sync_ms) / 1000.0);
  out.push_back(std::move(last));
  if (stats.installed_version) {
    auto version = family("svcbox_sync_proxy_rules_installed_version",
                          "The registry version the installed rules come from.", MetricType::Gauge);
    addValue(version, static_cast<double>(*stats.installed_version));
    out.push_back(std::move(version));
  }
}

void collectSnapshot(const store::Snapshot& snapshot, std::vector<MetricFamily>& out) {
  uint64_t ready = 0;
  uint64_t not_ready = 0;
  for (const auto& entry : snapshot.services()) {
    for (const auto& endpoint : entry.endpoints) ++(endpoint.ready ? ready : not_ready);
  }
  auto endpoints =
      family("svcbox_endpoints", "Endpoints across all Services, by readiness.", MetricType::Gauge);
  addValue(endpoints, static_cast<double>(ready), {{"state", "ready"}});
  addValue(endpoints, static_cast<double>(not_ready), {{"state", "not_ready"}});
  out.push_back(std::move(endpoints));
  auto gauge = [&](const char* name, const char* help, double value) {
    auto item = family(name, help, MetricType::Gauge);
    addValue(item, value);
    out.push_back(std::move(item));
  };
  gauge("svcbox_services", "Services in the registry.",
        static_cast<double>(snapshot.services().size()));
  gauge("svcbox_pods", "Pods in the registry.", static_cast<double>(snapshot.pods().size()));
  gauge("svcbox_registry_version", "The registry version serve last loaded.",
        static_cast<double>(snapshot.version()));
}

void collectProbes(const ProbeStats& stats, std::vector<MetricFamily>& out) {
  auto results =
      family("svcbox_probe_results_total", "Readiness probe results.", MetricType::Counter);
  auto add = [&](const char* probe, uint64_t success, uint64_t failure) {
    addValue(results, static_cast<double>(success), {{"probe", probe}, {"result", "success"}});
    addValue(results, static_cast<double>(failure), {{"probe", probe}, {"result", "failure"}});
  };
  add("tcp", stats.tcp_success, stats.tcp_failure);
  add("http", stats.http_success, stats.http_failure);
  add("default", stats.default_success, stats.default_failure);
  out.push_back(std::move(results));
  auto sessions = family("svcbox_probe_sessions", "Probe sessions running now.", MetricType::Gauge);
  addValue(sessions, static_cast<double>(stats.sessions));
  out.push_back(std::move(sessions));
}

void collectProxy(const std::vector<router::userspace::PortStats>& ports,
                  std::vector<MetricFamily>& out) {
  auto connections =
      family("svcbox_proxy_connections_total",
             "Userspace proxy: TCP connections accepted and UDP sessions opened, by result "
             "(accepted counts all; failed: no ready pod answered or over the limit; retried: "
             "connects moved on to the next pod; refused: made to a REDIRECT listener directly, "
             "not redirected from the Service, and reset).",
             MetricType::Counter);
  auto bytes = family("svcbox_proxy_bytes_total", "Userspace proxy: bytes relayed, by direction.",
                      MetricType::Counter);
  auto active =
      family("svcbox_proxy_active_sessions",
             "Userspace proxy: TCP connections and UDP sessions open now.", MetricType::Gauge);
  for (const auto& port : ports) {
    LabelList labels{
        {"service", port.namespace_name + "/" + port.name},
        {"port", std::to_string(port.service_port) + "/" + store::protocolName(port.protocol)}};
    auto with = [&labels](const char* key, const char* value) {
      auto copy = labels;
      copy.push_back({key, value});
      return copy;
    };
    addValue(connections, static_cast<double>(port.accepted), with("result", "accepted"));
    addValue(connections, static_cast<double>(port.failed), with("result", "failed"));
    addValue(connections, static_cast<double>(port.retried), with("result", "retried"));
    addValue(connections, static_cast<double>(port.refused), with("result", "refused"));
    addValue(bytes, static_cast<double>(port.bytes_to_pods), with("direction", "to_pod"));
    addValue(bytes, static_cast<double>(port.bytes_to_clients), with("direction", "to_client"));
    addValue(active, static_cast<double>(port.active), labels);
  }
  out.push_back(std::move(connections));
  out.push_back(std::move(bytes));
  out.push_back(std::move(active));
}

}  // namespace

class ServeMetrics::SourceCollector : public prometheus::Collectable {
 public:
  std::vector<MetricFamily> Collect() const override {
    std::lock_guard lock(mutex);
    std::vector<MetricFamily> out;
    if (dns) collectDns(dns(), out);
    if (provider) {
      // One copy per scrape: the loop's counters and the relay's come from the same moment.
      auto stats = provider();
      collectRouter(stats, out);
      if (stats.relay) collectProxy(*stats.relay, out);
    }
    if (snapshot) {
      if (auto current = snapshot()) collectSnapshot(*current, out);
    }
    if (probes) collectProbes(probes(), out);
    if (registry_errors) {
      auto errors = family("svcbox_registry_read_errors_total",
                           "Failed reads of the registry by serve's watcher.", MetricType::Counter);
      addValue(errors, static_cast<double>(registry_errors()));
      out.push_back(std::move(errors));
    }
    if (generation_lag) {
      auto lag = family("svcbox_registry_generation_lag",
                        "Generations the registry is ahead of the snapshot serve publishes, "
                        "confirmed by two checks in a row on a connection of their own (0: "
                        "serve follows its registry).",
                        MetricType::Gauge);
      addValue(lag, static_cast<double>(generation_lag()));
      out.push_back(std::move(lag));
    }
    return out;
  }

  mutable std::mutex mutex;
  std::function<dns::DnsMetrics()> dns;
  std::function<router::ProviderStats()> provider;
  std::function<store::SnapshotPtr()> snapshot;
  std::function<ProbeStats()> probes;
  std::function<uint64_t()> registry_errors;
  std::function<uint64_t()> generation_lag;
};

ServeMetrics::ServeMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      sources_(std::make_unique<SourceCollector>()) {
  programming_ = &prometheus::BuildHistogram()
                      .Name("svcbox_network_programming_duration_seconds")
                      .Help(
                          "Time from a registry commit to the change being in effect, by "
                          "target: dns (answers) or rules (netfilter).")
                      .Register(*registry_);
  // Both targets show from the start, with zero counts.
  programming_->Add({{"target", "dns"}}, programmingBuckets());
  programming_->Add({{"target", "rules"}}, programmingBuckets());
}

ServeMetrics::~ServeMetrics() = default;

const std::vector<double>& ServeMetrics::programmingBuckets() {
  // kube-proxy's buckets start at a quarter second (a cluster's API path); svcbox's commit to
  // rules is milliseconds, so finer at the low end and up to a minute for a stuck sync.
  static const std::vector<double> kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30,   60};
  return kBuckets;
}

void ServeMetrics::setDnsSource(std::function<dns::DnsMetrics()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->dns = std::move(source);
}
void ServeMetrics::setProviderSource(std::function<router::ProviderStats()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->provider = std::move(source);
}
void ServeMetrics::setSnapshotSource(std::function<store::SnapshotPtr()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->snapshot = std::move(source);
}
void ServeMetrics::setProbeSource(std::function<ProbeStats()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->probes = std::move(source);
}
void ServeMetrics::setRegistryErrorsSource(std::function<uint64_t()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->registry_errors = std::move(source);
}

void ServeMetrics::setGenerationLagSource(std::function<uint64_t()> source) {
  std::lock_guard lock(sources_->mutex);
  sources_->generation_lag = std::move(source);
}

void ServeMetrics::observeProgramming(const char* target, std::chrono::duration<double> latency) {
  // Family::Add returns the existing series for known labels; both calls are thread-safe.
  programming_->Add({{"target", target}}, programmingBuckets()).Observe(latency.count());
}

std::string ServeMetrics::render() const {
  std::vector<MetricFamily> families = sources_->Collect();
  for (auto& item : registry_->Collect()) families.push_back(std::move(item));
  return prometheus::TextSerializer().Serialize(families);
}

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void observeProgramming(ServeMetrics& metrics, const char* target,
                        const store::Snapshot& snapshot) {
  if (snapshot.committedMs() <= 0) return;
  int64_t latency_ms = std::max<int64_t>(0, wallClockMs() - snapshot.committedMs());
  metrics.observeProgramming(target, std::chrono::duration<double>(latency_ms / 1000.0));
}

std::function<void(const store::SnapshotPtr& installed)> rulesProgrammingObserver(
    ServeMetrics& metrics) {
  auto counted_version = std::make_shared<std::atomic<uint64_t>>(UINT64_MAX);
  return [&metrics, counted_version](const store::SnapshotPtr& installed) {
    uint64_t last = counted_version->exchange(installed->version());
    if (last != UINT64_MAX && installed->version() > last) {
      observeProgramming(metrics, "rules", *installed);
    }
  };
}

}  // namespace svcbox::app
