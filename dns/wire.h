#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The DNS wire format as svcbox's query path needs it: a bounded parser for one incoming query
// that never allocates, and the constants both directions share.
namespace svcbox::dns {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxLabelLength = 63;
constexpr uint16_t kClassIn = 1;
constexpr uint16_t kClassAny = 255;
constexpr uint16_t kPlainUdpSize = 512;
// svcbox's advertised EDNS UDP size: the DNS Flag Day 2020 figure, below common path MTUs.
constexpr uint16_t kServerUdpSize = 1232;

enum RecordType : uint16_t {
  kTypeA = 1,
  kTypeNs = 2,
  kTypeCname = 5,
  kTypeSoa = 6,
  kTypePtr = 12,
  kTypeTxt = 16,
  kTypeAaaa = 28,
  kTypeSrv = 33,
  kTypeOpt = 41,
  kTypeIxfr = 251,
  kTypeAxfr = 252,
  kTypeAny = 255,
};

enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,  // extended: needs OPT
};

// Header flag bits (second 16-bit word).
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kFlagCd = 0x0010;
constexpr uint16_t kOpcodeMask = 0x7800;

inline uint8_t lowerAscii(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c;
}

inline uint16_t readU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t readU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void writeU16(uint8_t* p, uint16_t value) {
  p[0] = static_cast<uint8_t>(value >> 8);
  p[1] = static_cast<uint8_t>(value);
}
inline void writeU32(uint8_t* p, uint32_t value) {
  writeU16(p, static_cast<uint16_t>(value >> 16));
  writeU16(p + 2, static_cast<uint16_t>(value));
}

// What the parser decided about a packet.
enum class QueryStatus : uint8_t {
  kOk,
  kDrop,     // too short to answer, or a response (QR=1): answering could start a loop
  kFormErr,  // answerable header, broken body
  kNotImp,   // an opcode svcbox does not serve
};

// One parsed query. Views point into the packet; `lower_name` is the question name in wire form,
// lower-cased, in a fixed buffer so the lookup needs no allocation.
struct Query {
  QueryStatus status = QueryStatus::kDrop;
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  // The question as asked (name, type, class), echoed byte for byte in the answer.
  std::span<const uint8_t> question;
  std::array<uint8_t, kMaxNameLength> lower_name{};
  uint8_t name_length = 0;  // wire length including the root label
  uint8_t label_count = 0;  // not counting the root
  // Offsets of each label inside the name, so a zone suffix can be found without re-parsing.
  std::array<uint8_t, 128> label_offsets{};
  bool has_edns = false;
  bool dnssec_ok = false;
  uint8_t edns_version = 0;
  uint16_t client_udp_size = kPlainUdpSize;

  std::string_view lowerName() const {
    return {reinterpret_cast<const char*>(lower_name.data()), name_length};
  }
  // The largest answer this client takes over UDP.
  uint16_t udpLimit() const {
    if (!has_edns) return kPlainUdpSize;
    if (client_udp_size < kPlainUdpSize) return kPlainUdpSize;
    return client_udp_size < kServerUdpSize ? client_udp_size : kServerUdpSize;
  }
};

// Parses a query packet without following compression pointers in the question (a query's
// question needs none, and refusing them rules out pointer loops). Never reads past `packet`.
Query parseQuery(std::span<const uint8_t> packet);

// Skips one possibly-compressed name starting at `offset`; returns the offset after it, or 0 when
// the name is malformed or runs past the end. Pointers end a name, so there is nothing to loop on.
size_t skipName(std::span<const uint8_t> message, size_t offset);

// One resource record inside a message.
struct RecordSpan {
  int section = 0;   // 0 answer, 1 authority, 2 additional
  size_t start = 0;  // the owner name
  size_t fixed = 0;  // type, class, TTL, RDLENGTH
  size_t end = 0;    // just past the rdata
  uint16_t type = 0;
  uint32_t ttl = 0;
};

// The offset just past the question section, or 0 when it runs past the end.
size_t skipQuestions(std::span<const uint8_t> message);

// Calls visit(const RecordSpan&) for every record of the answer, authority and additional
// sections, which start at `offset`. False when a record runs past the end or visit says stop.
template <typename Visit>
bool forEachRecord(std::span<const uint8_t> message, size_t offset, Visit&& visit) {
  if (message.size() < kHeaderSize) return false;
  const uint16_t counts[3] = {readU16(message.data() + 6), readU16(message.data() + 8),
                              readU16(message.data() + 10)};
  for (int section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      RecordSpan record{section, offset, skipName(message, offset), 0, 0, 0};
      if (record.fixed == 0 || record.fixed + 10 > message.size()) return false;
      record.type = readU16(message.data() + record.fixed);
      record.ttl = readU32(message.data() + record.fixed + 4);
      record.end = record.fixed + 10 + readU16(message.data() + record.fixed + 8);
      if (record.end > message.size() || !visit(record)) return false;
      offset = record.end;
    }
  }
  return true;
}

// Checks that a whole message (header, question, every record) lies within its bounds, and returns
// a copy without its OPT records (ARCOUNT adjusted); empty when it is malformed. For upstream
// answers before anything else reads them.
std::vector<uint8_t> validatedWithoutOpt(std::span<const uint8_t> message);

// Writes svcbox's OPT record (11 bytes): its UDP size, the extended RCODE bits, DO echoed.
constexpr size_t kOptRecordSize = 11;
size_t writeOptRecord(uint8_t* out, uint8_t rcode, bool dnssec_ok);

// Converts a presentation name ("web.default.svc.cluster.local", trailing dot optional) to
// lower-cased wire form; empty on a malformed name.
std::string nameToWire(std::string_view text);
// The reverse, for logs and tests: "web.default.svc.cluster.local.".
std::string wireToName(std::string_view wire);

}  // namespace svcbox::dns
