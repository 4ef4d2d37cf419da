#include "dns/zone_assembly.h"

#include <algorithm>

#include "dns/wire.h"

namespace svcbox::dns {
namespace {

// An update gives up, for a rebuild, once the bytes no name uses pass this share of the arrays.
constexpr size_t kMaxUnusedShare = 3;  // one third
// A node names its alias with 16 bits; replaced aliases stay in the list until a rebuild.
constexpr size_t kMaxAliases = 60000;

bool isAddress(const Record& record) { return record.type == kTypeA || record.type == kTypeAaaa; }

// A copy of `from` with room for `extra` more, so appending to it does not move it all again.
template <typename Container>
void copyWithRoom(Container& to, const Container& from, size_t extra) {
  to.clear();
  to.reserve(from.size() + extra);
  to.insert(to.end(), from.begin(), from.end());
}

// Linear probing stays short below a load of about 0.6.
size_t capacityFor(size_t names) {
  size_t capacity = 16;
  while (capacity * 3 < names * 5) capacity *= 2;
  return capacity;
}

}  // namespace

ZoneAssembly::ZoneAssembly(const ZoneOptions& options) : options_(options) {}

AnswerTablePtr ZoneAssembly::rebuild(std::span<const std::string> static_zones,
                                     size_t expected_names, const PieceSequence& services,
                                     const ApexPiece& apexes, const PieceLookup& lookup,
                                     uint32_t serial) {
  last_.reset();
  states_.clear();
  free_nodes_.clear();
  dynamic_zones_.clear();
  free_zones_.clear();
  live_nodes_ = 0;
  unused_bytes_ = 0;
  auto table = std::make_shared<AnswerTable>();
  size_t capacity = capacityFor(expected_names);
  table->slots_.assign(capacity, {});
  table->mask_ = capacity - 1;
  // Room for about what a Service's names take, so the arrays do not move as they fill.
  table->nodes_.reserve(expected_names);
  table->names_.reserve(expected_names * 12);
  table->answers_.reserve(expected_names * 5 / 4);
  table->data_.reserve(expected_names * 40);
  for (const auto& apex : static_zones) table->zones_.push_back(AnswerTable::Zone{apex, {}});
  static_zone_count_ = table->zones_.size();
  zone_pieces_.assign(static_zone_count_, 0);
  start(std::move(table), serial, lookup);
  // One piece at a time, its answers copied before the next is made; names several pieces give
  // records to are encoded once all are in.
  for (size_t i = 0;; ++i) {
    const ZonePiece* piece = services(i);
    if (!piece) break;
    rebuild_orders_.push_back(piece->order);
    add(*piece);
    flush(false);
  }
  const ZonePiece* apex_piece = &apexes(dynamicZones());
  rebuild_orders_.push_back(apex_piece->order);
  add(*apex_piece);
  flush(false);
  auto built = finish();
  // Only a rebuild needs them; `= {}` would keep their capacity (a megabyte at 10,000 Services).
  std::vector<uint32_t>().swap(rebuild_sources_);
  std::vector<std::string>().swap(rebuild_orders_);
  if (!built) return nullptr;
  // Rebuilds are rare; a tight table is not.
  table_ = std::const_pointer_cast<AnswerTable>(built);
  table_->nodes_.shrink_to_fit();
  table_->names_.shrink_to_fit();
  table_->answers_.shrink_to_fit();
  table_->data_.shrink_to_fit();
  table_.reset();
  return built;
}

AnswerTablePtr ZoneAssembly::update(std::span<const ZonePiece* const> removed,
                                    std::span<const ZonePiece* const> added,
                                    const ApexPiece& apexes, const PieceLookup& lookup,
                                    uint32_t serial) {
  if (!last_) return nullptr;
  const AnswerTable& last = *last_;
  if (unused_bytes_ * kMaxUnusedShare > last.names_.size() + last.data_.size()) return nullptr;
  if (last.aliases_.size() > kMaxAliases) return nullptr;
  size_t nodes = 64;
  size_t names = 0;
  size_t answers = 64;
  size_t bytes = 4096;
  for (const ZonePiece* piece : added) {
    nodes += piece->nodes.size();
    names += piece->names.size();
    answers += piece->answers.size();
    bytes += piece->data.size();
  }
  auto table = std::make_shared<AnswerTable>();
  table->zones_ = last.zones_;
  copyWithRoom(table->nodes_, last.nodes_, nodes);
  copyWithRoom(table->names_, last.names_, names);
  copyWithRoom(table->aliases_, last.aliases_, 4);
  copyWithRoom(table->answers_, last.answers_, answers);
  copyWithRoom(table->data_, last.data_, bytes);
  table->slots_ = last.slots_;
  table->mask_ = last.mask_;
  last_.reset();  // the state below is the new table's from here on
  start(std::move(table), serial, lookup);
  for (const ZonePiece* piece : removed) remove(*piece);
  at_hand_ = added;
  for (const ZonePiece* piece : added) add(*piece);
  const ZonePiece* apex_piece = &apexes(dynamicZones());
  add(*apex_piece);
  std::vector<const ZonePiece*> at_hand(added.begin(), added.end());
  at_hand.push_back(apex_piece);
  at_hand_ = at_hand;
  flush(true);
  at_hand_ = {};
  return finish();
}

void ZoneAssembly::start(std::shared_ptr<AnswerTable> table, uint32_t serial,
                         const PieceLookup& lookup) {
  table_ = std::move(table);
  encoder_ = std::make_unique<AnswerEncoder>(options_, serial);
  lookup_ = &lookup;
  dirty_.clear();
  touched_.clear();
  emptied_.clear();
  failed_ = false;
}

// Takes out the names no piece names any more, then writes the answers of the names that
// changed. Shared names may wait for the last piece of a rebuild.
void ZoneAssembly::flush(bool shared_too) {
  for (uint32_t index : emptied_) {
    auto state = states_.find(index);
    if (state != states_.end() && state->second.pieces == 0) eraseNode(index);
  }
  emptied_.clear();
  size_t kept = 0;
  for (uint32_t index : dirty_) {
    auto found = states_.find(index);
    if (found == states_.end()) continue;  // taken out
    NodeState& state = found->second;
    if (!shared_too && state.record_pieces > 1) {
      dirty_[kept++] = index;
      continue;
    }
    state.dirty = false;
    if (!failed_) failed_ = !writeAnswers(index, state);
  }
  dirty_.resize(kept);
  // What a single piece names alone needs no state: the table says whether it has records.
  for (uint32_t index : touched_) {
    auto found = states_.find(index);
    if (found == states_.end()) continue;
    NodeState& state = found->second;
    if (state.dirty) continue;
    state.touched = false;
    state.piece = nullptr;  // at hand no longer
    if (state.pieces == 1 && state.record_pieces <= 1) states_.erase(found);
  }
  touched_.erase(std::remove_if(touched_.begin(), touched_.end(),
                                [this](uint32_t index) {
                                  auto found = states_.find(index);
                                  return found == states_.end() || !found->second.touched;
                                }),
                 touched_.end());
}

AnswerTablePtr ZoneAssembly::finish() {
  flush(true);
  for (uint16_t zone = 0; zone < zone_pieces_.size(); ++zone) {
    if (zone < static_zone_count_ || zone_pieces_[zone] > 0) continue;
    auto found = dynamic_zones_.find(table_->zones_[zone].apex);
    if (found == dynamic_zones_.end() || found->second != zone) continue;
    dynamic_zones_.erase(found);
    free_zones_.push_back(zone);
  }
  if (failed_) {
    table_.reset();
    states_.clear();
    return nullptr;
  }
  std::vector<uint8_t> soa = encoder_->soaWithoutOwner();
  for (auto& zone : table_->zones_) zone.soa_without_owner = soa;
  table_->free_nodes_ = static_cast<uint32_t>(free_nodes_.size());
  last_ = table_;
  lookup_ = nullptr;
  return std::move(table_);
}

std::vector<uint16_t> ZoneAssembly::addZones(const ZonePiece& piece) {
  std::vector<uint16_t> indexes;
  for (const auto& apex : piece.dynamic_zones) {
    auto [at, added] = dynamic_zones_.try_emplace(apex, 0);
    if (added) {
      if (!free_zones_.empty()) {
        at->second = free_zones_.back();
        free_zones_.pop_back();
        table_->zones_[at->second].apex = apex;
      } else {
        at->second = static_cast<uint16_t>(table_->zones_.size());
        table_->zones_.push_back(AnswerTable::Zone{apex, {}});
        zone_pieces_.push_back(0);
      }
    }
    ++zone_pieces_[at->second];
    indexes.push_back(at->second);
  }
  return indexes;
}

// A zone no piece names any more is let go in finish(), once no node of it is left.
void ZoneAssembly::removeZones(const ZonePiece& piece) {
  for (const auto& apex : piece.dynamic_zones) --zone_pieces_[dynamic_zones_.at(apex)];
}

std::vector<std::string> ZoneAssembly::dynamicZones() const {
  std::vector<std::pair<uint16_t, std::string>> zones;
  for (const auto& [apex, index] : dynamic_zones_) {
    if (zone_pieces_[index] > 0) zones.emplace_back(index, apex);
  }
  std::sort(zones.begin(), zones.end());
  std::vector<std::string> apexes;
  for (auto& [index, apex] : zones) apexes.push_back(std::move(apex));
  return apexes;
}

std::pair<int64_t, size_t> ZoneAssembly::find(std::string_view name, uint64_t hash) const {
  auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t slot = hash & table_->mask_;; slot = (slot + 1) & table_->mask_) {
    const AnswerTable::Slot& candidate = table_->slots_[slot];
    if (candidate.node == 0) return {-1, slot};
    if (candidate.hash == tag && table_->nameMatches(table_->nodes_[candidate.node - 1], name)) {
      return {candidate.node - 1, slot};
    }
  }
}

ZoneAssembly::NodeState& ZoneAssembly::touch(uint32_t index) {
  auto [found, added] = states_.try_emplace(index);
  NodeState& state = found->second;
  if (added) state.record_pieces = table_->nodes_[index].answer_count > 0 ? 1 : 0;
  if (!state.touched) {
    state.touched = true;
    touched_.push_back(index);
  }
  return state;
}

void ZoneAssembly::add(const ZonePiece& piece) {
  std::vector<uint16_t> zones = addZones(piece);
  for (uint32_t n = 0; n < piece.nodes.size(); ++n) {
    const ZonePiece::Node& node = piece.nodes[n];
    std::string_view name = piece.name(node);
    bool records = node.record_count > 0;
    auto [found, slot] = find(name, node.hash);
    uint32_t index;
    if (found < 0) {
      uint16_t zone = node.zone < piece.static_zone_count
                          ? node.zone
                          : zones[node.zone - piece.static_zone_count];
      index = addNode(name, node, zone);
      // A new name one piece names: its answers at once, and no state (most names are so).
      if (records) {
        table_->nodes_[index].first_answer = static_cast<uint32_t>(table_->answers_.size());
        copyAnswers(index, piece, node);
        if (!rebuild_orders_.empty()) {
          if (rebuild_sources_.size() <= index) rebuild_sources_.resize(index + 1, 0);
          rebuild_sources_[index] = static_cast<uint32_t>(rebuild_orders_.size());
        }
      }
      continue;
    } else {
      index = static_cast<uint32_t>(found);
      ++touch(index).pieces;
    }
    if (!records) continue;
    NodeState& state = states_.at(index);
    // Which piece gives the records a table has is not kept (for most names one does, alone);
    // a rebuild knows.
    if (state.record_pieces > state.sources.size()) {
      if (index >= rebuild_sources_.size() || rebuild_sources_[index] == 0) {
        failed_ = true;
        return;
      }
      state.sources = {rebuild_orders_[rebuild_sources_[index] - 1]};
    }
    if (!rebuild_orders_.empty()) {
      if (rebuild_sources_.size() <= index) rebuild_sources_.resize(index + 1, 0);
      rebuild_sources_[index] = static_cast<uint32_t>(rebuild_orders_.size());
    }
    ++state.record_pieces;
    auto at = std::upper_bound(state.sources.begin(), state.sources.end(), piece.order);
    state.sources.insert(at, piece.order);
    state.piece = &piece;
    state.piece_node = n;
    markDirty(index, state);
  }
}

void ZoneAssembly::remove(const ZonePiece& piece) {
  for (const auto& node : piece.nodes) {
    auto [found, slot] = find(piece.name(node), node.hash);
    if (found < 0) continue;  // cannot be: the piece put it there
    auto index = static_cast<uint32_t>(found);
    NodeState& state = touch(index);
    if (node.record_count > 0) {
      --state.record_pieces;
      auto at = std::find(state.sources.begin(), state.sources.end(), piece.order);
      if (at != state.sources.end()) state.sources.erase(at);
      if (state.piece == &piece) state.piece = nullptr;
      markDirty(index, state);
    }
    if (--state.pieces == 0) emptied_.push_back(index);
  }
  removeZones(piece);
}

uint32_t ZoneAssembly::addNode(std::string_view name, const ZonePiece::Node& from, uint16_t zone) {
  if ((live_nodes_ + 1) * 5 > table_->slots_.size() * 3) grow();
  auto [found, slot] = find(name, from.hash);
  uint32_t index;
  if (!free_nodes_.empty()) {
    index = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    index = static_cast<uint32_t>(table_->nodes_.size());
    table_->nodes_.emplace_back();
  }
  AnswerTable::Node& node = table_->nodes_[index];
  node = AnswerTable::Node{};
  node.name_offset = static_cast<uint32_t>(table_->names_.size());
  node.name_length = from.name_length;
  node.apex_offset = from.apex_offset;
  node.zone = zone;
  table_->names_.append(name.substr(0, from.apex_offset));
  table_->slots_[slot] = {static_cast<uint32_t>(from.hash >> 32), index + 1};
  ++live_nodes_;
  return index;
}

void ZoneAssembly::grow() {
  size_t capacity = table_->slots_.size() * 2;
  table_->slots_.assign(capacity, {});
  table_->mask_ = capacity - 1;
  for (uint32_t index = 0; index < table_->nodes_.size(); ++index) {
    const AnswerTable::Node& node = table_->nodes_[index];
    if (node.name_length == 0) continue;
    uint64_t hash = hashOf(node);
    size_t slot = hash & table_->mask_;
    while (table_->slots_[slot].node != 0) slot = (slot + 1) & table_->mask_;
    table_->slots_[slot] = {static_cast<uint32_t>(hash >> 32), index + 1};
  }
}

const std::string& ZoneAssembly::fullName(const AnswerTable::Node& node) {
  scratch_.assign(table_->names_, node.name_offset, node.apex_offset);
  scratch_.append(table_->zones_[node.zone].apex);
  return scratch_;
}

// Backward-shift deletion: later entries of the probe run move up, so no tombstone is left for
// queries to step over.
void ZoneAssembly::eraseNode(uint32_t index) {
  AnswerTable::Node& node = table_->nodes_[index];
  const std::string& name = fullName(node);
  size_t slot = find(name, hashName(name)).second;  // before hashOf below reuses the name
  auto& slots = table_->slots_;
  size_t mask = table_->mask_;
  size_t hole = slot;
  for (size_t next = (hole + 1) & mask; slots[next].node != 0; next = (next + 1) & mask) {
    size_t home = hashOf(table_->nodes_[slots[next].node - 1]) & mask;
    bool stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
    if (stays) continue;
    slots[hole] = slots[next];
    hole = next;
  }
  slots[hole] = {};
  unused_bytes_ += node.apex_offset + answerBytes(node);
  node = AnswerTable::Node{};
  states_.erase(index);
  free_nodes_.push_back(index);
  --live_nodes_;
}

void ZoneAssembly::markDirty(uint32_t index, NodeState& state) {
  if (state.dirty) return;
  state.dirty = true;
  dirty_.push_back(index);
}

size_t ZoneAssembly::answerBytes(const AnswerTable::Node& node) const {
  size_t bytes = 0;
  for (uint32_t i = node.first_answer; i < node.first_answer + node.answer_count; ++i) {
    bytes += table_->answers_[i].length;
  }
  return bytes;
}

const ZonePiece::Node* ZoneAssembly::nodeIn(const ZonePiece& piece, std::string_view name) const {
  uint64_t hash = hashName(name);
  for (const auto& node : piece.nodes) {
    if (node.hash == hash && piece.name(node) == name) return &node;
  }
  return nullptr;
}

bool ZoneAssembly::writeAnswers(uint32_t index, const NodeState& state) {
  AnswerTable::Node& node = table_->nodes_[index];
  if (node.isAlias()) unused_bytes_ += table_->aliases_[node.alias - 1].size();
  node.alias = 0;
  const ZonePiece* from = nullptr;
  const ZonePiece::Node* item = nullptr;
  if (state.record_pieces == 1) {
    if (state.sources.empty()) return false;
    const std::string& order = state.sources.front();
    if (state.piece && state.piece->order == order) {
      from = state.piece;
      item = &from->nodes[state.piece_node];
    } else {
      // The piece that is left of several (one went): made again.
      from = &(*lookup_)(order);
      item = nodeIn(*from, fullName(node));
      if (!item) return false;
    }
    if (copyOver(index, *from, *item)) return true;
  }
  unused_bytes_ += answerBytes(node);
  node.first_answer = static_cast<uint32_t>(table_->answers_.size());
  node.answer_count = 0;
  if (state.record_pieces > 1) return encodeShared(index, state);
  if (item) copyAnswers(index, *from, *item);
  return true;
}

// The piece's answers in place of the node's when they are as many and as long (a new SOA
// serial, an endpoint replaced by another): nothing is left unused.
bool ZoneAssembly::copyOver(uint32_t index, const ZonePiece& from, const ZonePiece::Node& item) {
  AnswerTable::Node& node = table_->nodes_[index];
  if (item.answer_count == 0 || item.answer_count != node.answer_count) return false;
  const AnswerTable::Answer& first = from.answers[item.first_answer];
  const AnswerTable::Answer& last = from.answers[item.first_answer + item.answer_count - 1];
  size_t bytes = last.offset + last.length - first.offset;
  if (bytes != answerBytes(node)) return false;
  uint32_t at = table_->answers_[node.first_answer].offset;
  for (uint32_t i = 0; i < item.answer_count; ++i) {
    AnswerTable::Answer answer = from.answers[item.first_answer + i];
    answer.offset = answer.offset - first.offset + at;
    table_->answers_[node.first_answer + i] = answer;
  }
  std::copy(from.data.begin() + first.offset, from.data.begin() + first.offset + bytes,
            table_->data_.begin() + at);
  if (item.is_alias) addAlias(node, from.recordsOf(item).front().target);
  return true;
}

void ZoneAssembly::copyAnswers(uint32_t index, const ZonePiece& from, const ZonePiece::Node& item) {
  AnswerTable::Node& node = table_->nodes_[index];
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
  node.answer_count = item.answer_count;
  if (item.is_alias) addAlias(node, from.recordsOf(item).front().target);
}

void ZoneAssembly::addAlias(AnswerTable::Node& node, std::string_view target) {
  table_->aliases_.push_back(wireToName(target));
  node.alias = static_cast<uint16_t>(table_->aliases_.size());
}

bool ZoneAssembly::encodeShared(uint32_t index, const NodeState& state) {
  AnswerTable::Node& node = table_->nodes_[index];
  std::string name =
      table_->names_.substr(node.name_offset, node.apex_offset) + table_->zones_[node.zone].apex;
  // The pieces first (a lookup may make one again), then their records, which view them.
  std::vector<const ZonePiece*> pieces;
  for (const auto& order : state.sources) {
    const ZonePiece* from = nullptr;
    for (const ZonePiece* piece : at_hand_) {
      if (piece->order == order) from = piece;
    }
    pieces.push_back(from ? from : &(*lookup_)(order));
  }
  records_.clear();
  bool alias = false;
  size_t with_addresses = 0;
  for (const ZonePiece* piece : pieces) {
    const ZonePiece::Node* item = nodeIn(*piece, name);
    if (!item) return false;
    alias = alias || item->is_alias;
    auto records = piece->recordsOf(*item);
    records_.insert(records_.end(), records.begin(), records.end());
    with_addresses += std::any_of(records.begin(), records.end(), isAddress);
  }
  // Another name's glue holds this name's addresses as one piece saw them; and SRV glue here
  // would not follow a change of its target.
  if (with_addresses > 1) return false;
  if (std::any_of(records_.begin(), records_.end(),
                  [](const Record& record) { return record.type == kTypeSrv; })) {
    return false;
  }
  std::stable_sort(records_.begin(), records_.end(),
                   [](const Record& a, const Record& b) { return a.type < b.type; });
  bool found_glue = true;
  encoder_->encode(
      name, records_,
      [this, &found_glue](std::string_view target) {
        AnswerEncoder::Glue glue = glueOf(target);
        if (!glue.name.data()) found_glue = false;
        return glue;
      },
      table_->answers_, table_->data_);
  node.answer_count = static_cast<uint16_t>(table_->answers_.size() - node.first_answer);
  if (alias && !records_.empty()) addAlias(node, records_.front().target);
  return found_glue;
}

// The address records of `target` (an NS record's, here: svcbox's own name, in the apexes'
// piece). No name: not found where it can be looked for.
AnswerEncoder::Glue ZoneAssembly::glueOf(std::string_view target) {
  auto [found, slot] = find(target, hashName(target));
  if (found < 0) return AnswerEncoder::Glue{"", {}};
  const ZonePiece& apexes = (*lookup_)("");
  if (const ZonePiece::Node* item = nodeIn(apexes, target)) {
    return {apexes.name(*item), apexes.recordsOf(*item)};
  }
  return {};
}

}  // namespace svcbox::dns
