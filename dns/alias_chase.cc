#include "dns/alias_chase.h"

#include "dns/wire.h"

#include <ldns/ldns.h>

#include <memory>

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

}  // namespace

// Off the hot path (one upstream round trip per answer anyway), so ldns does the re-encoding:
// upstream records arrive compressed against the upstream's own message.
std::vector<uint8_t> combineAliasAnswer(std::span<const uint8_t> alias_answer,
                                        std::span<const uint8_t> upstream_answer,
                                        size_t size_limit) {
  // ldns meets the upstream's bytes only after svcbox's own bounds check, without OPT records.
  std::vector<uint8_t> checked = validatedWithoutOpt(upstream_answer);
  if (checked.empty()) return {};
  PacketPtr ours = parse(alias_answer);
  PacketPtr theirs = parse(checked);
  if (!ours || !theirs) return {};
  ldns_rr_list* records = ldns_pkt_answer(theirs.get());
  for (size_t i = 0; i < ldns_rr_list_rr_count(records); ++i) {
    ldns_pkt_push_rr(ours.get(), LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(records, i)));
  }
  uint8_t* wire = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&wire, ours.get(), &size) != LDNS_STATUS_OK) return {};
  std::vector<uint8_t> combined(wire, wire + size);
  LDNS_FREE(wire);
  if (combined.size() > size_limit) return {};
  return combined;
}

}  // namespace svcbox::dns
