#include "dns/metrics.h"

#include "dns/wire.h"

namespace svcbox::dns {
namespace {

void bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

uint64_t read(const std::atomic<uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

// The bucket bounds in nanoseconds, so finding a bucket compares integers.
constexpr std::array<uint64_t, kDurationBuckets.size()> boundsNs() {
  std::array<uint64_t, kDurationBuckets.size()> bounds{};
  for (size_t i = 0; i < bounds.size(); ++i) {
    bounds[i] = static_cast<uint64_t>(kDurationBuckets[i] * 1e9 + 0.5);
  }
  return bounds;
}
constexpr auto kBoundsNs = boundsNs();

}  // namespace

size_t qtypeSlot(uint16_t qtype) {
  switch (qtype) {
    case kTypeA:
      return 0;
    case kTypeAaaa:
      return 1;
    case kTypeSrv:
      return 2;
    case kTypePtr:
      return 3;
    case kTypeTxt:
      return 4;
    case kTypeCname:
      return 5;
    case kTypeSoa:
      return 6;
    case kTypeNs:
      return 7;
    case 15:  // MX
      return 8;
    case kTypeAny:
      return 9;
    default:
      return 10;
  }
}

const char* qtypeLabel(size_t slot) {
  static constexpr std::array<const char*, kQtypeSlots> kLabels{
      "A", "AAAA", "SRV", "PTR", "TXT", "CNAME", "SOA", "NS", "MX", "ANY", "other"};
  return slot < kLabels.size() ? kLabels[slot] : "other";
}

size_t rcodeSlot(unsigned rcode) {
  if (rcode < 16) return rcode;
  return rcode == kBadVers ? 16 : kNoRcodeSlot;
}

const char* rcodeLabel(size_t slot) {
  // The names CoreDNS (miekg/dns) prints; codes without a name print as their number.
  static constexpr std::array<const char*, kRcodeSlots> kLabels{
      "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
      "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE", "11",
      "12",       "13",      "14",       "15",       "BADVERS"};
  return slot < kLabels.size() ? kLabels[slot] : "other";
}

const char* protoLabel(size_t slot) { return slot == kProtoTcp ? "tcp" : "udp"; }

uint64_t HistogramData::count() const {
  uint64_t total = 0;
  for (uint64_t value : counts) total += value;
  return total;
}

void HistogramData::add(const HistogramData& other) {
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum_seconds += other.sum_seconds;
}

void LatencyHistogram::observe(std::chrono::nanoseconds took) {
  uint64_t ns = took.count() > 0 ? static_cast<uint64_t>(took.count()) : 0;
  size_t bucket = 0;
  while (bucket < kBoundsNs.size() && ns > kBoundsNs[bucket]) ++bucket;
  bump(counts_[bucket]);
  bump(sum_ns_, ns);
}

void LatencyHistogram::addTo(HistogramData& out) const {
  for (size_t i = 0; i < counts_.size(); ++i) out.counts[i] += read(counts_[i]);
  out.sum_seconds += static_cast<double>(read(sum_ns_)) / 1e9;
}

void QueryCounters::request(Proto proto, uint16_t qtype) {
  bump(requests[proto][qtypeSlot(qtype)]);
}

void QueryCounters::response(unsigned rcode, std::chrono::nanoseconds took) {
  size_t slot = rcodeSlot(rcode);
  if (slot != kNoRcodeSlot) bump(responses[slot]);
  duration.observe(took);
}

void QueryCounters::response(const uint8_t* message, size_t length, std::chrono::nanoseconds took) {
  response(length >= kHeaderSize ? (message[3] & 0x0F) : kServFail, took);
}

}  // namespace svcbox::dns
