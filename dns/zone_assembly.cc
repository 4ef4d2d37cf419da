#include <algorithm>
#include <unordered_map>

#include "dns/wire.h"
#include "dns/zone_piece.h"

namespace svcbox::dns {

// Lays pieces side by side in one AnswerTable. A name most pieces give alone keeps the answers its
// piece encoded; a name several pieces give records to is encoded again from all of them, in
// piece order as a whole build adds them. A name a piece gives no records (an empty non-terminal
// such as a namespace) takes nothing from that piece.
class TableAssembler {
 public:
  TableAssembler(std::span<const ZonePiece* const> pieces, const ZoneOptions& options,
                 uint32_t serial)
      : pieces_(pieces), encoder_(options, serial) {}

  AnswerTablePtr assemble() {
    auto table = std::make_shared<AnswerTable>();
    table_ = table.get();
    placeZones();
    placeNames();
    if (!writeAnswers()) return nullptr;
    return table;
  }

 private:
  struct Source {
    uint32_t piece = 0;
    uint32_t node = 0;
  };
  struct Shared {
    uint32_t node = 0;  // in the table
    Source source;
  };

  const ZonePiece& piece(Source source) const { return *pieces_[source.piece]; }
  const ZonePiece::Node& pieceNode(Source source) const {
    return pieces_[source.piece]->nodes[source.node];
  }

  // Static zones from the first piece, then every dynamic zone in order of first use.
  void placeZones() {
    std::unordered_map<std::string_view, uint16_t> dynamic;
    const ZonePiece& first = *pieces_.front();
    for (const auto& apex : first.static_zones) addZone(apex);
    zone_maps_.resize(pieces_.size());
    for (size_t i = 0; i < pieces_.size(); ++i) {
      for (const auto& apex : pieces_[i]->dynamic_zones) {
        auto [at, added] = dynamic.try_emplace(apex, static_cast<uint16_t>(table_->zones_.size()));
        if (added) addZone(apex);
        zone_maps_[i].push_back(at->second);
      }
    }
  }

  void addZone(const std::string& apex) {
    table_->zones_.push_back(AnswerTable::Zone{apex, encoder_.soaWithoutOwner()});
  }

  uint16_t tableZone(uint32_t piece_index, uint16_t zone) const {
    const ZonePiece& from = *pieces_[piece_index];
    if (zone < from.static_zone_count) return zone;
    return zone_maps_[piece_index][zone - from.static_zone_count];
  }

  // Every name once, indexed as it is added.
  void placeNames() {
    size_t upper = 0;
    size_t name_bytes = 0;
    for (const ZonePiece* from : pieces_) {
      upper += from->nodes.size();
      name_bytes += from->names.size();
    }
    size_t capacity = 16;
    // Linear probing stays short below a load of about 0.6.
    while (capacity * 3 < upper * 5) capacity *= 2;
    table_->slots_.assign(capacity, {});
    table_->mask_ = capacity - 1;
    table_->nodes_.reserve(upper);
    table_->names_.reserve(name_bytes);
    sources_.reserve(upper);
    is_shared_.reserve(upper);
    for (uint32_t p = 0; p < pieces_.size(); ++p) {
      const ZonePiece& from = *pieces_[p];
      for (uint32_t n = 0; n < from.nodes.size(); ++n) place(Source{p, n});
    }
  }

  void place(Source source) {
    const ZonePiece::Node& node = pieceNode(source);
    std::string_view name = piece(source).name(node);
    auto tag = static_cast<uint32_t>(node.hash >> 32);
    size_t slot = node.hash & table_->mask_;
    for (;; slot = (slot + 1) & table_->mask_) {
      const AnswerTable::Slot& candidate = table_->slots_[slot];
      if (candidate.node == 0) break;
      if (candidate.hash != tag) continue;
      uint32_t index = candidate.node - 1;
      Source& existing = sources_[index];
      if (piece(existing).name(pieceNode(existing)) != name) continue;
      if (node.record_count == 0) return;
      if (pieceNode(existing).record_count == 0) {
        existing = source;
        return;
      }
      if (!is_shared_[index]) {
        is_shared_[index] = true;
        shared_.push_back(Shared{index, existing});
      }
      shared_.push_back(Shared{index, source});
      return;
    }
    auto index = static_cast<uint32_t>(table_->nodes_.size());
    table_->slots_[slot] = {tag, index + 1};
    AnswerTable::Node placed;
    placed.name_offset = static_cast<uint32_t>(table_->names_.size());
    placed.name_length = node.name_length;
    placed.apex_offset = node.apex_offset;
    placed.zone = tableZone(source.piece, node.zone);
    table_->names_.append(name.substr(0, node.apex_offset));
    table_->nodes_.push_back(placed);
    sources_.push_back(source);
    is_shared_.push_back(false);
  }

  bool writeAnswers() {
    size_t answers = 0;
    size_t bytes = 0;
    for (const ZonePiece* from : pieces_) {
      answers += from->answers.size();
      bytes += from->data.size();
    }
    table_->answers_.reserve(answers);
    table_->data_.reserve(bytes);
    // A name's sources in piece order; stable, so each name's stay in the order they came.
    std::stable_sort(shared_.begin(), shared_.end(),
                     [](const Shared& a, const Shared& b) { return a.node < b.node; });
    auto next_shared = shared_.begin();
    for (uint32_t index = 0; index < table_->nodes_.size(); ++index) {
      AnswerTable::Node& node = table_->nodes_[index];
      node.first_answer = static_cast<uint32_t>(table_->answers_.size());
      if (next_shared != shared_.end() && next_shared->node == index) {
        auto end = next_shared;
        while (end != shared_.end() && end->node == index) ++end;
        if (!encodeShared(node, std::span(next_shared, end))) return false;
        next_shared = end;
      } else {
        copyAnswers(node, sources_[index]);
      }
      node.answer_count = static_cast<uint16_t>(table_->answers_.size() - node.first_answer);
    }
    return true;
  }

  void copyAnswers(AnswerTable::Node& node, Source source) {
    const ZonePiece& from = piece(source);
    const ZonePiece::Node& item = pieceNode(source);
    if (item.answer_count == 0) return;
    const AnswerTable::Answer& first = from.answers[item.first_answer];
    const AnswerTable::Answer& last = from.answers[item.first_answer + item.answer_count - 1];
    auto rebase = static_cast<int64_t>(table_->data_.size()) - first.offset;
    for (uint32_t i = item.first_answer; i < item.first_answer + item.answer_count; ++i) {
      AnswerTable::Answer answer = from.answers[i];
      answer.offset = static_cast<uint32_t>(answer.offset + rebase);
      table_->answers_.push_back(answer);
    }
    table_->data_.insert(table_->data_.end(), from.data.begin() + first.offset,
                         from.data.begin() + last.offset + last.length);
    if (item.is_alias) addAlias(node, from.recordsOf(item).front().target);
  }

  void addAlias(AnswerTable::Node& node, std::string_view target) {
    table_->aliases_.push_back(wireToName(target));
    node.alias = static_cast<uint16_t>(table_->aliases_.size());
  }

  bool encodeShared(AnswerTable::Node& node, std::span<const Shared> sources) {
    records_.clear();
    bool alias = false;
    size_t with_addresses = 0;
    for (const Shared& item : sources) {
      const ZonePiece::Node& from = pieceNode(item.source);
      alias = alias || from.is_alias;
      auto records = piece(item.source).recordsOf(from);
      records_.insert(records_.end(), records.begin(), records.end());
      with_addresses += std::any_of(records.begin(), records.end(), isAddress);
    }
    // Another name's glue may hold this name's addresses as one piece saw them.
    if (with_addresses > 1) return false;
    std::stable_sort(records_.begin(), records_.end(),
                     [](const Record& a, const Record& b) { return a.type < b.type; });
    const Source& first = sources.front().source;
    std::string_view name = piece(first).name(pieceNode(first));
    encoder_.encode(
        name, records_, [this](std::string_view target) { return glueOf(target); },
        table_->answers_, table_->data_);
    if (alias && !records_.empty()) addAlias(node, records_.front().target);
    return true;
  }

  static bool isAddress(const Record& record) {
    return record.type == kTypeA || record.type == kTypeAaaa;
  }

  // The address records of `target`: those of the one piece that gave it any.
  AnswerEncoder::Glue glueOf(std::string_view target) const {
    uint64_t hash = hashName(target);
    auto tag = static_cast<uint32_t>(hash >> 32);
    for (size_t slot = hash & table_->mask_;; slot = (slot + 1) & table_->mask_) {
      const AnswerTable::Slot& candidate = table_->slots_[slot];
      if (candidate.node == 0) return {};
      if (candidate.hash != tag) continue;
      uint32_t index = candidate.node - 1;
      Source source = sources_[index];
      std::string_view name = piece(source).name(pieceNode(source));
      if (name != target) continue;
      if (!is_shared_[index]) return {name, piece(source).recordsOf(pieceNode(source))};
      auto item = std::lower_bound(shared_.begin(), shared_.end(), index,
                                   [](const Shared& a, uint32_t node) { return a.node < node; });
      for (; item != shared_.end() && item->node == index; ++item) {
        auto records = piece(item->source).recordsOf(pieceNode(item->source));
        if (std::any_of(records.begin(), records.end(), isAddress)) return {name, records};
      }
      return {name, {}};
    }
  }

  std::span<const ZonePiece* const> pieces_;
  AnswerEncoder encoder_;
  AnswerTable* table_ = nullptr;
  std::vector<std::vector<uint16_t>> zone_maps_;  // per piece: its dynamic zones' table indexes
  std::vector<Source> sources_;                   // per table node: the piece node it copies
  std::vector<Shared> shared_;   // names given records by several pieces, with each piece
  std::vector<bool> is_shared_;  // per table node
  std::vector<Record> records_;
};

AnswerTablePtr assemblePieces(std::span<const ZonePiece* const> pieces, const ZoneOptions& options,
                              uint32_t serial) {
  return TableAssembler(pieces, options, serial).assemble();
}

}  // namespace svcbox::dns
