#include "dns/wire.h"

namespace svcbox::dns {
namespace {

constexpr size_t kFixedRecordPart = 10;  // type, class, TTL, RDLENGTH

uint8_t lowerAscii(uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c; }

// Skips one resource record; returns the offset after it, or 0 when it runs past the end.
size_t skipRecord(std::span<const uint8_t> message, size_t offset) {
  offset = skipName(message, offset);
  if (offset == 0 || offset + kFixedRecordPart > message.size()) return 0;
  size_t rdata_length = readU16(message.data() + offset + 8);
  offset += kFixedRecordPart + rdata_length;
  return offset <= message.size() ? offset : 0;
}

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
  size_t skip = size_t{readU16(packet.data() + 6)} + readU16(packet.data() + 8);
  size_t additional = readU16(packet.data() + 10);
  for (size_t i = 0; i < skip; ++i) {
    offset = skipRecord(packet, offset);
    if (offset == 0) return false;
  }
  for (size_t i = 0; i < additional; ++i) {
    size_t record = offset;
    offset = skipRecord(packet, offset);
    if (offset == 0) return false;
    size_t type_offset = skipName(packet, record);
    if (readU16(packet.data() + type_offset) != kTypeOpt) continue;
    // RFC 6891: one OPT, owned by the root.
    if (query.has_edns || type_offset != record + 1 || packet[record] != 0) return false;
    query.has_edns = true;
    query.client_udp_size = readU16(packet.data() + type_offset + 2);
    query.edns_version = packet[type_offset + 5];
    query.dnssec_ok = (packet[type_offset + 6] & 0x80) != 0;
  }
  return true;
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

std::vector<uint8_t> validatedWithoutOpt(std::span<const uint8_t> message) {
  if (message.size() < kHeaderSize) return {};
  size_t offset = kHeaderSize;
  for (uint16_t i = 0; i < readU16(message.data() + 4); ++i) {
    offset = skipName(message, offset);
    if (offset == 0 || offset + 4 > message.size()) return {};
    offset += 4;
  }
  std::vector<uint8_t> kept(message.begin(), message.begin() + static_cast<ptrdiff_t>(offset));
  uint16_t counts[3] = {readU16(message.data() + 6), readU16(message.data() + 8),
                        readU16(message.data() + 10)};
  uint16_t dropped = 0;
  for (int section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      size_t start = offset;
      offset = skipRecord(message, offset);
      if (offset == 0) return {};
      if (readU16(message.data() + skipName(message, start)) == kTypeOpt) {
        if (section != 2) return {};
        ++dropped;
        continue;
      }
      for (size_t at = start; at < offset; ++at) kept.push_back(message[at]);
    }
  }
  writeU16(kept.data() + 10, static_cast<uint16_t>(counts[2] - dropped));
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
