#include "dns/wire.h"

namespace svcbox::dns {
namespace {

// Reads the question name into query.lower_name; returns the offset after it, or 0 if malformed.
size_t readQuestionName(std::span<const uint8_t> packet, Query& query) {
  size_t offset = kHeaderSize;
  size_t length = 0;
  while (true) {
    if (offset >= packet.size()) return 0;
    uint8_t label_length = packet[offset];
    if (label_length == 0) break;
    // Compression pointers and the obsolete extended label types have no place in a question.
    if (label_length > kMaxLabelLength) return 0;
    if (offset + 1 + label_length > packet.size()) return 0;
    if (length + 1 + label_length + 1 > kMaxNameLength) return 0;
    query.label_offsets[query.label_count++] = static_cast<uint8_t>(length);
    query.lower_name[length++] = label_length;
    for (size_t i = 0; i < label_length; ++i) {
      query.lower_name[length++] = lowerAscii(packet[offset + 1 + i]);
    }
    offset += 1 + label_length;
  }
  query.lower_name[length++] = 0;
  query.name_length = static_cast<uint8_t>(length);
  return offset + 1;
}

// Finds the OPT record among the additional records; false on a malformed section or a second OPT.
bool readEdns(std::span<const uint8_t> packet, size_t offset, Query& query) {
  return forEachRecord(packet, offset, [&](const RecordSpan& record) {
    if (record.section != 2 || record.type != kTypeOpt) return true;
    // RFC 6891: one OPT, owned by the root.
    if (query.has_edns || record.fixed != record.start + 1 || packet[record.start] != 0) {
      return false;
    }
    query.has_edns = true;
    query.client_udp_size = readU16(packet.data() + record.fixed + 2);
    query.edns_version = packet[record.fixed + 5];
    query.dnssec_ok = (packet[record.fixed + 6] & 0x80) != 0;
    return true;
  });
}

}  // namespace

size_t skipName(std::span<const uint8_t> message, size_t offset) {
  size_t length = 0;
  while (offset < message.size()) {
    uint8_t label_length = message[offset];
    if ((label_length & 0xC0) == 0xC0) return offset + 2 <= message.size() ? offset + 2 : 0;
    if (label_length > kMaxLabelLength) return 0;
    if (label_length == 0) return offset + 1;
    length += 1 + label_length;
    if (length + 1 > kMaxNameLength) return 0;
    offset += 1 + label_length;
  }
  return 0;
}

Query parseQuery(std::span<const uint8_t> packet) {
  Query query;
  if (packet.size() < kHeaderSize) return query;  // kDrop: not even an ID to answer to
  query.id = readU16(packet.data());
  query.flags = readU16(packet.data() + 2);
  if (query.flags & kFlagQr) return query;
  if ((query.flags & kOpcodeMask) != 0) {
    query.status = QueryStatus::kNotImp;
    return query;
  }
  query.status = QueryStatus::kFormErr;
  if (readU16(packet.data() + 4) != 1) return query;
  size_t offset = readQuestionName(packet, query);
  if (offset == 0 || offset + 4 > packet.size()) return query;
  query.qtype = readU16(packet.data() + offset);
  query.qclass = readU16(packet.data() + offset + 2);
  query.question = packet.subspan(kHeaderSize, offset + 4 - kHeaderSize);
  if (!readEdns(packet, offset + 4, query)) return query;
  query.status = QueryStatus::kOk;
  return query;
}

size_t skipQuestions(std::span<const uint8_t> message) {
  if (message.size() < kHeaderSize) return 0;
  size_t offset = kHeaderSize;
  for (uint16_t i = 0; i < readU16(message.data() + 4); ++i) {
    offset = skipName(message, offset);
    if (offset == 0 || offset + 4 > message.size()) return 0;
    offset += 4;
  }
  return offset;
}

std::vector<uint8_t> validatedWithoutOpt(std::span<const uint8_t> message) {
  size_t offset = skipQuestions(message);
  if (offset == 0) return {};
  std::vector<uint8_t> kept(message.begin(), message.begin() + static_cast<ptrdiff_t>(offset));
  uint16_t dropped = 0;
  bool valid = forEachRecord(message, offset, [&](const RecordSpan& record) {
    if (record.type == kTypeOpt) {
      ++dropped;
      return record.section == 2;
    }
    for (size_t at = record.start; at < record.end; ++at) kept.push_back(message[at]);
    return true;
  });
  if (!valid) return {};
  writeU16(kept.data() + 10, static_cast<uint16_t>(readU16(message.data() + 10) - dropped));
  return kept;
}

size_t writeOptRecord(uint8_t* out, uint8_t rcode, bool dnssec_ok) {
  out[0] = 0;  // owned by the root
  writeU16(out + 1, kTypeOpt);
  writeU16(out + 3, kServerUdpSize);
  out[5] = static_cast<uint8_t>(rcode >> 4);  // extended RCODE bits
  out[6] = 0;                                 // EDNS version 0
  out[7] = dnssec_ok ? 0x80 : 0;
  out[8] = 0;
  writeU16(out + 9, 0);  // no options
  return kOptRecordSize;
}

std::string nameToWire(std::string_view text) {
  if (text == "." || text.empty()) return std::string(1, '\0');
  if (text.back() == '.') text.remove_suffix(1);
  std::string wire;
  while (true) {
    size_t dot = text.find('.');
    std::string_view label = text.substr(0, dot);
    if (label.empty() || label.size() > kMaxLabelLength) return {};
    wire.push_back(static_cast<char>(label.size()));
    for (char c : label) wire.push_back(static_cast<char>(lowerAscii(static_cast<uint8_t>(c))));
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  wire.push_back('\0');
  return wire.size() <= kMaxNameLength ? wire : std::string{};
}

std::string wireToName(std::string_view wire) {
  std::string text;
  size_t offset = 0;
  while (offset < wire.size() && wire[offset] != 0) {
    size_t length = static_cast<uint8_t>(wire[offset]);
    text.append(wire.substr(offset + 1, length));
    text.push_back('.');
    offset += 1 + length;
  }
  return text.empty() ? "." : text;
}

}  // namespace svcbox::dns
