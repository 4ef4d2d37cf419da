#include "app/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dns/wire.h"

// The metrics page from fake sources: exact names, labels and histogram lines.
namespace svcbox::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

store::SnapshotPtr snapshotWithEndpoints() {
  store::ServiceEntry entry;
  entry.service.name = "web";
  entry.endpoints = {{*store::IpAddress::parse("10.0.1.2"), true, "a", "", {}},
                     {*store::IpAddress::parse("10.0.1.3"), false, "b", "", {}},
                     {*store::IpAddress::parse("10.0.1.4"), true, "c", "", {}}};
  store::Pod pod;
  pod.name = "a";
  return std::make_shared<const store::Snapshot>(
      42, std::nullopt, std::vector<store::ServiceEntry>{entry}, std::vector<store::Pod>{pod},
      std::vector<store::EndpointSet>{});
}

TEST(ServeMetricsTest, RendersEverySourceInPrometheusText) {
  ServeMetrics metrics;
  metrics.setDnsSource([] {
    dns::DnsMetrics dns;
    dns.requests[dns::kProtoUdp][dns::qtypeSlot(dns::kTypeA)] = 7;
    dns.requests[dns::kProtoTcp][dns::qtypeSlot(dns::kTypeSrv)] = 2;
    dns.responses[dns::rcodeSlot(dns::kNxDomain)] = 3;
    dns.responses[dns::rcodeSlot(dns::kBadVers)] = 1;
    dns.request_duration.counts[0] = 4;   // <= 0.00025
    dns.request_duration.counts[3] = 1;   // <= 0.002
    dns.request_duration.counts[16] = 1;  // above 8.192
    dns.request_duration.sum_seconds = 10.5;
    dns.cache_hits = 5;
    dns.cache_misses = 6;
    dns.upstreams.push_back({"192.0.2.53:53", 2, {}});
    dns.upstreams[0].duration.counts[5] = 2;
    dns.upstreams[0].duration.sum_seconds = 0.01;
    return dns;
  });
  metrics.setProviderSource([] {
    router::ProviderStats stats;
    stats.syncs = 3;
    stats.failures = 1;
    stats.duration_counts[0] = 2;
    stats.duration_counts[2] = 2;
    stats.duration_sum_seconds = 0.01;
    stats.tables = {{"nat", 12, 5}, {"filter", 3, 2}, {"mangle", 0, 1}};
    stats.last_sync_ms = 1700000000500;
    stats.installed_version = 41;
    return stats;
  });
  metrics.setSnapshotSource(snapshotWithEndpoints);
  metrics.setProbeSource([] { return ProbeStats{1, 2, 3, 4, 5, 6, 7}; });
  metrics.setRegistryErrorsSource([] { return uint64_t{9}; });
  metrics.observeProgramming("rules", std::chrono::milliseconds(3));
  metrics.observeProgramming("dns", std::chrono::microseconds(500));

  std::string text = metrics.render();
  for (const char* line : {
           "# TYPE svcbox_dns_requests_total counter",
           "svcbox_dns_requests_total{proto=\"udp\",type=\"A\"} 7",
           "svcbox_dns_requests_total{proto=\"tcp\",type=\"SRV\"} 2",
           "svcbox_dns_requests_total{proto=\"udp\",type=\"other\"} 0",
           "svcbox_dns_responses_total{rcode=\"NXDOMAIN\"} 3",
           "svcbox_dns_responses_total{rcode=\"BADVERS\"} 1",
           "# TYPE svcbox_dns_request_duration_seconds histogram",
           "svcbox_dns_request_duration_seconds_bucket{le=\"0.00025\"} 4",
           "svcbox_dns_request_duration_seconds_bucket{le=\"0.002\"} 5",
           "svcbox_dns_request_duration_seconds_bucket{le=\"8.192\"} 5",
           "svcbox_dns_request_duration_seconds_bucket{le=\"+Inf\"} 6",
           "svcbox_dns_request_duration_seconds_sum 10.5",
           "svcbox_dns_request_duration_seconds_count 6",
           "svcbox_dns_cache_hits_total 5",
           "svcbox_dns_cache_misses_total 6",
           "svcbox_dns_forward_requests_total{to=\"192.0.2.53:53\"} 2",
           "svcbox_dns_forward_request_duration_seconds_bucket{to=\"192.0.2.53:53\",le=\"0.008\"} "
           "2",
           "svcbox_dns_forward_request_duration_seconds_count{to=\"192.0.2.53:53\"} 2",
           "# TYPE svcbox_sync_proxy_rules_duration_seconds histogram",
           "svcbox_sync_proxy_rules_duration_seconds_bucket{le=\"0.001\"} 2",
           "svcbox_sync_proxy_rules_duration_seconds_bucket{le=\"0.004\"} 4",
           "svcbox_sync_proxy_rules_duration_seconds_bucket{le=\"16.384\"} 4",
           "svcbox_sync_proxy_rules_duration_seconds_count 4",
           "svcbox_sync_proxy_rules_total 3",
           "svcbox_sync_proxy_rules_failures_total 1",
           "svcbox_iptables_rules{table=\"nat\"} 12",
           "svcbox_iptables_chains{table=\"filter\"} 2",
           "svcbox_sync_proxy_rules_last_timestamp_seconds 1700000000.5",
           "svcbox_sync_proxy_rules_installed_version 41",
           "svcbox_endpoints{state=\"ready\"} 2",
           "svcbox_endpoints{state=\"not_ready\"} 1",
           "svcbox_services 1",
           "svcbox_pods 1",
           "svcbox_registry_version 42",
           "svcbox_probe_results_total{probe=\"tcp\",result=\"success\"} 1",
           "svcbox_probe_results_total{probe=\"http\",result=\"failure\"} 4",
           "svcbox_probe_results_total{probe=\"default\",result=\"failure\"} 6",
           "svcbox_probe_sessions 7",
           "svcbox_registry_read_errors_total 9",
           "# TYPE svcbox_network_programming_duration_seconds histogram",
           "svcbox_network_programming_duration_seconds_bucket{target=\"rules\",le=\"0.0025\"} 0",
           "svcbox_network_programming_duration_seconds_bucket{target=\"rules\",le=\"0.005\"} 1",
           "svcbox_network_programming_duration_seconds_bucket{target=\"dns\",le=\"0.001\"} 1",
           "svcbox_network_programming_duration_seconds_count{target=\"dns\"} 1",
       }) {
    EXPECT_THAT(text, HasSubstr(std::string(line) + "\n")) << line;
  }
}

TEST(ServeMetricsTest, AbsentSourcesShowNoFamilies) {
  ServeMetrics metrics;
  std::string text = metrics.render();
  EXPECT_THAT(text, Not(HasSubstr("svcbox_dns_")));
  EXPECT_THAT(text, Not(HasSubstr("svcbox_sync_proxy_rules")));
  EXPECT_THAT(text, Not(HasSubstr("svcbox_probe_")));
  // The programming histogram is serve's own and always there.
  EXPECT_THAT(text,
              HasSubstr("svcbox_network_programming_duration_seconds_count{target=\"rules\"} 0\n"));
}

TEST(DnsMetricsTest, SlotsAndHistogramBuckets) {
  EXPECT_STREQ(dns::qtypeLabel(dns::qtypeSlot(dns::kTypeAaaa)), "AAAA");
  EXPECT_STREQ(dns::qtypeLabel(dns::qtypeSlot(15)), "MX");
  EXPECT_STREQ(dns::qtypeLabel(dns::qtypeSlot(99)), "other");
  EXPECT_STREQ(dns::rcodeLabel(dns::rcodeSlot(0)), "NOERROR");
  EXPECT_STREQ(dns::rcodeLabel(dns::rcodeSlot(16)), "BADVERS");
  EXPECT_EQ(dns::rcodeSlot(17), dns::kNoRcodeSlot);
  dns::LatencyHistogram histogram;
  histogram.observe(std::chrono::microseconds(250));  // on the bound: that bucket
  histogram.observe(std::chrono::microseconds(251));
  histogram.observe(std::chrono::seconds(9));
  dns::HistogramData data;
  histogram.addTo(data);
  EXPECT_EQ(data.counts[0], 1u);
  EXPECT_EQ(data.counts[1], 1u);
  EXPECT_EQ(data.counts[16], 1u);
  EXPECT_EQ(data.count(), 3u);
  EXPECT_NEAR(data.sum_seconds, 9.000501, 1e-9);
}

}  // namespace
}  // namespace svcbox::app
