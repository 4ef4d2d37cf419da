#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

// What the DNS server counts, in the shapes CoreDNS's metrics have. The counting side is fixed
// arrays of relaxed atomics, each written by one thread, so the query path neither allocates
// nor takes a lock; the reading side sums them into plain values at scrape time.
namespace svcbox::dns {

// CoreDNS's request-duration buckets (seconds); also used for the upstream latency.
inline constexpr std::array<double, 16> kDurationBuckets{
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
    0.064,   0.128,  0.256, 0.512, 1.024, 2.048, 4.096, 8.192};

// Query types with a slot of their own; everything else counts as "other".
inline constexpr size_t kQtypeSlots = 11;
size_t qtypeSlot(uint16_t qtype);
const char* qtypeLabel(size_t slot);  // "A", "AAAA", ..., "other"

// RCODE 0..15, then BADVERS (16, extended); other extended codes are not produced.
inline constexpr size_t kRcodeSlots = 17;
inline constexpr size_t kNoRcodeSlot = kRcodeSlots;
size_t rcodeSlot(unsigned rcode);     // kNoRcodeSlot for anything else
const char* rcodeLabel(size_t slot);  // "NOERROR", ..., "BADVERS"

enum Proto : uint8_t { kProtoUdp = 0, kProtoTcp = 1 };
inline constexpr size_t kProtoSlots = 2;
const char* protoLabel(size_t slot);  // "udp", "tcp"

// A histogram read out: counts per bucket (not cumulative), the last one above every bound.
struct HistogramData {
  std::array<uint64_t, kDurationBuckets.size() + 1> counts{};
  double sum_seconds = 0;
  uint64_t count() const;
  void add(const HistogramData& other);
};

// One writer thread, any number of readers; no allocation, no lock.
class LatencyHistogram {
 public:
  void observe(std::chrono::nanoseconds took);
  void addTo(HistogramData& out) const;

 private:
  std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Requests and responses as one thread saw them.
struct QueryCounters {
  std::array<std::array<std::atomic<uint64_t>, kQtypeSlots>, kProtoSlots> requests{};
  std::array<std::atomic<uint64_t>, kRcodeSlots> responses{};
  LatencyHistogram duration;

  void request(Proto proto, uint16_t qtype);
  // A response with this RCODE left after `took`.
  void response(unsigned rcode, std::chrono::nanoseconds took);
  // The RCODE in a response's header (without the OPT extension).
  void response(const uint8_t* message, size_t length, std::chrono::nanoseconds took);
};

struct UpstreamMetrics {
  std::string to;         // "IP:PORT"
  uint64_t requests = 0;  // answers received from it (= duration's count)
  HistogramData duration;
};

// Everything the server counted, summed over its threads: a plain value for the metrics page.
struct DnsMetrics {
  std::array<std::array<uint64_t, kQtypeSlots>, kProtoSlots> requests{};  // [proto][qtype slot]
  std::array<uint64_t, kRcodeSlots> responses{};
  HistogramData request_duration;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t forwarded = 0;
  uint64_t upstream_failures = 0;
  uint64_t refused_over_limit = 0;
  uint64_t dropped = 0;
  uint64_t malformed = 0;
  uint64_t truncated = 0;
  uint64_t tcp_connections = 0;            // open now
  uint64_t tcp_stalled = 0;                // of those, not read: their client reads nothing
  std::array<uint64_t, 3> tcp_refused{};   // by TcpRefusal
  std::array<uint64_t, 4> tcp_closed{};    // by TcpClose (closed by serve for a limit)
  std::vector<UpstreamMetrics> upstreams;  // one per configured upstream, in order
};

}  // namespace svcbox::dns
