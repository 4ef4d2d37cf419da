#include "dns/answer_table.h"

#include <cstring>
#include <memory>

#include "dns/zone_assembly.h"
#include "dns/zone_piece.h"

namespace svcbox::dns {

uint64_t hashName(std::string_view name, uint64_t seed) {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ name.size() ^ seed;
  size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, name.data() + i, 8);
    hash = (hash ^ chunk) * 0xFF51AFD7ED558CCDull;
    hash ^= hash >> 32;
  }
  uint64_t rest = 0;
  std::memcpy(&rest, name.data() + i, name.size() - i);
  hash = (hash ^ rest) * 0xC4CEB9FE1A85EC53ull;
  return hash ^ (hash >> 29);
}

std::string reverseName(const store::IpAddress& address) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string wire;
  if (address.isV4()) {
    for (int i = 3; i >= 0; --i) {
      std::string octet = std::to_string(address.bytes[static_cast<size_t>(i)]);
      wire.push_back(static_cast<char>(octet.size()));
      wire.append(octet);
    }
    wire.append("\7in-addr\4arpa", 13);
  } else {
    for (int i = 15; i >= 0; --i) {
      uint8_t byte = address.bytes[static_cast<size_t>(i)];
      wire.push_back(1);
      wire.push_back(kHex[byte & 0xF]);
      wire.push_back(1);
      wire.push_back(kHex[byte >> 4]);
    }
    wire.append("\3ip6\4arpa", 9);
  }
  wire.push_back('\0');
  return wire;
}

std::shared_ptr<const AnswerTable> AnswerTable::build(const store::Snapshot& snapshot,
                                                      const ZoneOptions& options,
                                                      const ProxiedServices* proxied) {
  auto serial = static_cast<uint32_t>(snapshot.version());
  PieceBuilder builder(options, snapshot.serviceCidr(), serial);
  std::unique_ptr<ZonePiece> whole = builder.whole(snapshot, proxied);
  // The whole piece holds the apexes too; and it names every name once, so it always assembles.
  ZonePiece no_apexes;
  no_apexes.static_zone_count = whole->static_zone_count;
  auto only = [&whole](size_t index) { return index == 0 ? whole.get() : nullptr; };
  auto apexes = [&no_apexes](std::span<const std::string>) -> const ZonePiece& {
    return no_apexes;
  };
  auto lookup = [&whole](std::string_view) -> const ZonePiece& { return *whole; };
  return ZoneAssembly(options).rebuild(builder.staticZones(), whole->nodes.size(), only, apexes,
                                       lookup, serial);
}

std::shared_ptr<const AnswerTable> AnswerTable::awaitingRegistry(
    const ZoneOptions& options, std::optional<store::Cidr> service_cidr) {
  store::Snapshot empty(0, std::move(service_cidr), {}, std::vector<store::PodPtr>{}, {});
  auto table = std::make_shared<AnswerTable>(*build(empty, options));
  table->awaiting_registry_ = true;
  return table;
}

const AnswerTable::Node* AnswerTable::find(std::string_view lower_name) const {
  uint64_t hash = hashName(lower_name);
  auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t slot = hash & mask_;; slot = (slot + 1) & mask_) {
    const Slot& candidate = slots_[slot];
    if (candidate.node == 0) return nullptr;
    if (candidate.hash == tag && nameMatches(nodes_[candidate.node - 1], lower_name)) {
      return &nodes_[candidate.node - 1];
    }
  }
}

std::vector<std::string> AnswerTable::names() const {
  std::vector<std::string> names;
  for (const Node& node : nodes_) {
    if (node.name_length == 0) continue;
    names.push_back(names_.substr(node.name_offset, node.apex_offset) + zones_[node.zone].apex);
  }
  return names;
}

size_t AnswerTable::memoryUsage() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + names_.capacity() +
                 answers_.capacity() * sizeof(Answer) + data_.capacity() +
                 slots_.capacity() * sizeof(Slot);
  for (const auto& alias : aliases_) bytes += alias.capacity();
  return bytes;
}

const AnswerTable::Answer* AnswerTable::answerFor(const Node& node, uint16_t type) const {
  for (uint32_t i = node.first_answer; i < node.first_answer + node.answer_count; ++i) {
    if (answers_[i].type == type) return &answers_[i];
  }
  return nullptr;
}

}  // namespace svcbox::dns
