#include "dns/alias_chase.h"

#include <ldns/ldns.h>

#include <memory>
#include <string>

#include "dns/responder.h"

namespace svcbox::dns {
namespace {

struct PacketDeleter {
  void operator()(ldns_pkt* packet) const { ldns_pkt_free(packet); }
};
using PacketPtr = std::unique_ptr<ldns_pkt, PacketDeleter>;

PacketPtr parse(std::span<const uint8_t> wire) {
  ldns_pkt* packet = nullptr;
  if (ldns_wire2pkt(&packet, wire.data(), wire.size()) != LDNS_STATUS_OK) return nullptr;
  return PacketPtr(packet);
}

void copySection(ldns_pkt* from, ldns_pkt* to, ldns_pkt_section section) {
  ldns_rr_list* records = ldns_pkt_get_section_clone(from, section);
  if (!records) return;
  for (size_t i = 0; i < ldns_rr_list_rr_count(records); ++i) {
    ldns_pkt_push_rr(to, section, ldns_rr_clone(ldns_rr_list_rr(records, i)));
  }
  ldns_rr_list_deep_free(records);
}

// A question for `wire_name` as svcbox would be asked it: the ID and type of the client's.
std::vector<uint8_t> questionFor(const Query& query, const std::string& wire_name) {
  std::vector<uint8_t> packet(kHeaderSize + wire_name.size() + 4, 0);
  writeU16(packet.data(), query.id);
  writeU16(packet.data() + 4, 1);
  std::copy(wire_name.begin(), wire_name.end(), packet.begin() + kHeaderSize);
  writeU16(packet.data() + kHeaderSize + wire_name.size(), query.qtype);
  writeU16(packet.data() + kHeaderSize + wire_name.size() + 2, kClassIn);
  return packet;
}

}  // namespace

// Off the hot path (an upstream round trip, or a chain of ExternalNames), so ldns does the
// re-encoding: the target's records arrive compressed against another message.
AliasAnswer combineAliasAnswer(std::span<const uint8_t> alias_answer,
                               std::span<const uint8_t> target_answer, size_t size_limit,
                               bool carry_negative) {
  AliasAnswer result;
  // ldns meets the target's bytes only after svcbox's own bounds check, without OPT records.
  std::vector<uint8_t> checked = validatedWithoutOpt(target_answer);
  if (checked.empty()) return result;
  PacketPtr ours = parse(alias_answer);
  PacketPtr theirs = parse(checked);
  if (!ours || !theirs) return result;
  copySection(theirs.get(), ours.get(), LDNS_SECTION_ANSWER);
  if (carry_negative && ldns_pkt_ancount(theirs.get()) == 0) {
    ldns_pkt_set_rcode(ours.get(), ldns_pkt_get_rcode(theirs.get()));
    copySection(theirs.get(), ours.get(), LDNS_SECTION_AUTHORITY);
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, ours.get(), &size) != LDNS_STATUS_OK) return result;
  result.bytes.assign(wire, wire + size);
  LDNS_FREE(wire);
  result.outcome = result.bytes.size() > size_limit ? AliasAnswer::Outcome::kTooLarge
                                                    : AliasAnswer::Outcome::kCombined;
  return result;
}

size_t writeAliasAnswer(const AliasAnswer& answer, const Query& query,
                        std::span<const uint8_t> alias_answer, bool recursion_available,
                        std::span<uint8_t> out) {
  std::span<const uint8_t> chosen = alias_answer;  // kUnusable: the CNAME alone is still correct
  if (answer.outcome == AliasAnswer::Outcome::kCombined) chosen = answer.bytes;
  if (answer.outcome == AliasAnswer::Outcome::kTooLarge || chosen.size() > out.size()) {
    return writeTruncated(query, true, recursion_available, out);
  }
  std::copy(chosen.begin(), chosen.end(), out.begin());
  return chosen.size();
}

bool inOwnZones(const AnswerTable& table, std::string_view target) {
  std::string wire = nameToWire(target);
  for (size_t offset = 0; offset < wire.size() && wire[offset] != 0;
       offset += 1 + static_cast<uint8_t>(wire[offset])) {
    if (table.find(std::string_view(wire).substr(offset))) return true;
  }
  return false;
}

AliasAnswer chaseInOwnZones(const AnswerTable& table, const Query& query,
                            std::span<const uint8_t> alias_answer, std::string_view target,
                            size_t size_limit) {
  AliasAnswer chain;
  chain.outcome = AliasAnswer::Outcome::kCombined;
  chain.bytes.assign(alias_answer.begin(), alias_answer.end());
  std::string next(target);
  std::vector<uint8_t> out;
  for (size_t hop = 0; hop < kMaxChainLength; ++hop) {
    if (!inOwnZones(table, next)) {
      chain.outside_target = next;
      break;
    }
    out.resize(kMaxResponse);
    std::vector<uint8_t> packet = questionFor(query, nameToWire(next));
    Query asked = parseQuery(packet);
    if (asked.status != QueryStatus::kOk) break;
    Response response = respond(asked, table, ClientContext{false, kMaxResponse}, out);
    if (response.disposition != Disposition::kSend &&
        response.disposition != Disposition::kChaseAlias) {
      break;
    }
    AliasAnswer longer =
        combineAliasAnswer(chain.bytes, std::span(out.data(), response.length), kMaxResponse, true);
    if (longer.outcome != AliasAnswer::Outcome::kCombined) break;
    chain = std::move(longer);
    if (response.disposition != Disposition::kChaseAlias) break;
    next = table.aliasTarget(*response.alias);
  }
  if (chain.bytes.size() > size_limit) chain.outcome = AliasAnswer::Outcome::kTooLarge;
  return chain;
}

}  // namespace svcbox::dns
