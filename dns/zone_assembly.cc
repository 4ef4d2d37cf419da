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

}  // namespace

ZoneAssembly::ZoneAssembly(const ZoneOptions& options) : options_(options) {}

AnswerTablePtr ZoneAssembly::rebuild(std::span<const ZonePiece* const> pieces, uint32_t serial) {
  last_.reset();
  states_.clear();
  shared_.clear();
  free_nodes_.clear();
  dynamic_zones_.clear();
  free_zones_.clear();
  unused_bytes_ = 0;
  auto table = std::make_shared<AnswerTable>();
  size_t upper = 0;
  size_t names = 0;
  size_t answers = 0;
  size_t bytes = 0;
  for (const ZonePiece* piece : pieces) {
    upper += piece->nodes.size();
    for (const auto& node : piece->nodes) names += node.apex_offset;
    answers += piece->answers.size();
    bytes += piece->data.size();
  }
  size_t capacity = 16;
  // Linear probing stays short below a load of about 0.6.
  while (capacity * 3 < upper * 5) capacity *= 2;
  table->slots_.assign(capacity, {});
  table->mask_ = capacity - 1;
  table->nodes_.reserve(upper);
  table->names_.reserve(names);
  table->answers_.reserve(answers);
  table->data_.reserve(bytes);
  states_.reserve(upper);
  for (const auto& apex : pieces.front()->static_zones) {
    table->zones_.push_back(AnswerTable::Zone{apex, {}});
  }
  static_zone_count_ = table->zones_.size();
  zone_pieces_.assign(static_zone_count_, 0);
  start(std::move(table), serial);
  for (const ZonePiece* piece : pieces) add(*piece);
  return finish();
}

AnswerTablePtr ZoneAssembly::update(std::span<const ZonePiece* const> removed,
                                    std::span<const ZonePiece* const> added, uint32_t serial) {
  if (!last_) return nullptr;
  const AnswerTable& last = *last_;
  size_t held = last.names_.size() + last.data_.size();
  if (unused_bytes_ * kMaxUnusedShare > held) return nullptr;
  if (last.aliases_.size() > kMaxAliases) return nullptr;
  size_t nodes = 0;
  size_t names = 0;
  size_t answers = 0;
  size_t bytes = 0;
  for (const ZonePiece* piece : added) {
    nodes += piece->nodes.size();
    names += piece->names.size();
    answers += piece->answers.size();
    bytes += piece->data.size();
  }
  size_t live = last.nodes_.size() - free_nodes_.size();
  if ((live + nodes) * 5 > last.slots_.size() * 3) return nullptr;
  auto table = std::make_shared<AnswerTable>();
  table->zones_ = last.zones_;
  copyWithRoom(table->nodes_, last.nodes_, nodes);
  copyWithRoom(table->names_, last.names_, names);
  copyWithRoom(table->aliases_, last.aliases_, 4);
  copyWithRoom(table->answers_, last.answers_, answers + 16);
  copyWithRoom(table->data_, last.data_, bytes + 1024);
  table->slots_ = last.slots_;
  table->mask_ = last.mask_;
  last_.reset();  // the state below is the new table's from here on
  start(std::move(table), serial);
  // The new pieces first: a name the old and the new piece of a Service (or of the apexes) both
  // hold stays where it is, and answers of the same size are written over the old ones.
  for (const ZonePiece* piece : added) add(*piece);
  for (const ZonePiece* piece : removed) remove(*piece);
  return finish();
}

void ZoneAssembly::start(std::shared_ptr<AnswerTable> table, uint32_t serial) {
  table_ = std::move(table);
  encoder_ = std::make_unique<AnswerEncoder>(options_, serial);
  dirty_.clear();
  failed_ = false;
}

AnswerTablePtr ZoneAssembly::finish() {
  for (uint32_t index : dirty_) {
    states_[index].dirty = false;
    if (failed_) continue;
    if (table_->nodes_[index].name_length == 0) continue;  // taken out since
    failed_ = !writeAnswers(index);
  }
  dirty_.clear();
  if (failed_) {
    table_.reset();
    return nullptr;
  }
  std::vector<uint8_t> soa = encoder_->soaWithoutOwner();
  for (auto& zone : table_->zones_) zone.soa_without_owner = soa;
  table_->free_nodes_ = static_cast<uint32_t>(free_nodes_.size());
  last_ = table_;
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

void ZoneAssembly::removeZones(const ZonePiece& piece) {
  for (const auto& apex : piece.dynamic_zones) {
    auto at = dynamic_zones_.find(apex);
    if (--zone_pieces_[at->second] > 0) continue;
    free_zones_.push_back(at->second);
    dynamic_zones_.erase(at);
  }
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

void ZoneAssembly::add(const ZonePiece& piece) {
  std::vector<uint16_t> zones = addZones(piece);
  for (uint32_t n = 0; n < piece.nodes.size(); ++n) {
    const ZonePiece::Node& node = piece.nodes[n];
    std::string_view name = piece.name(node);
    auto [found, slot] = find(name, node.hash);
    if (found < 0) {
      uint16_t zone = node.zone < piece.static_zone_count
                          ? node.zone
                          : zones[node.zone - piece.static_zone_count];
      uint32_t index = addNode(name, node, zone, slot);
      NodeState& state = states_[index];
      state.pieces = 1;
      if (node.record_count > 0) {
        state.source = Source{&piece, n};
        markDirty(index);
      }
      continue;
    }
    auto index = static_cast<uint32_t>(found);
    NodeState& state = states_[index];
    ++state.pieces;
    if (node.record_count == 0) continue;
    markDirty(index);
    if (!state.shared && !state.source.piece) {
      state.source = Source{&piece, n};
      continue;
    }
    std::vector<Source>& sources = shared_[index];
    if (!state.shared) {
      state.shared = true;
      sources.assign({state.source});
    }
    auto at = std::upper_bound(
        sources.begin(), sources.end(), piece.order,
        [](const std::string& order, const Source& source) { return order < source.piece->order; });
    sources.insert(at, Source{&piece, n});
  }
}

void ZoneAssembly::remove(const ZonePiece& piece) {
  for (uint32_t n = 0; n < piece.nodes.size(); ++n) {
    const ZonePiece::Node& node = piece.nodes[n];
    auto [found, slot] = find(piece.name(node), node.hash);
    if (found < 0) continue;  // cannot be: the piece put it there
    auto index = static_cast<uint32_t>(found);
    NodeState& state = states_[index];
    Source source{&piece, n};
    if (node.record_count > 0) {
      markDirty(index);
      if (state.shared) {
        std::vector<Source>& sources = shared_[index];
        std::erase(sources, source);
        if (sources.size() == 1) {
          state.source = sources.front();
          state.shared = false;
          shared_.erase(index);
        }
      } else if (state.source == source) {
        state.source = Source{};
      }
    }
    if (--state.pieces == 0) eraseNode(index, slot);
  }
  removeZones(piece);
}

uint32_t ZoneAssembly::addNode(std::string_view name, const ZonePiece::Node& from, uint16_t zone,
                               size_t slot) {
  uint32_t index;
  if (!free_nodes_.empty()) {
    index = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    index = static_cast<uint32_t>(table_->nodes_.size());
    table_->nodes_.emplace_back();
    states_.emplace_back();
  }
  AnswerTable::Node& node = table_->nodes_[index];
  node = AnswerTable::Node{};
  node.name_offset = static_cast<uint32_t>(table_->names_.size());
  node.name_length = from.name_length;
  node.apex_offset = from.apex_offset;
  node.zone = zone;
  table_->names_.append(name.substr(0, from.apex_offset));
  table_->slots_[slot] = {static_cast<uint32_t>(from.hash >> 32), index + 1};
  states_[index] = NodeState{};
  return index;
}

uint64_t ZoneAssembly::hashOf(const AnswerTable::Node& node) {
  scratch_.assign(table_->names_, node.name_offset, node.apex_offset);
  scratch_.append(table_->zones_[node.zone].apex);
  return hashName(scratch_);
}

// Backward-shift deletion: later entries of the probe run move up, so no tombstone is left for
// queries to step over.
void ZoneAssembly::eraseNode(uint32_t index, size_t slot) {
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
  AnswerTable::Node& node = table_->nodes_[index];
  unused_bytes_ += node.apex_offset + answerBytes(node);
  node = AnswerTable::Node{};
  states_[index] = NodeState{};
  free_nodes_.push_back(index);
}

void ZoneAssembly::markDirty(uint32_t index) {
  if (states_[index].dirty) return;
  states_[index].dirty = true;
  dirty_.push_back(index);
}

size_t ZoneAssembly::answerBytes(const AnswerTable::Node& node) const {
  size_t bytes = 0;
  for (uint32_t i = node.first_answer; i < node.first_answer + node.answer_count; ++i) {
    bytes += table_->answers_[i].length;
  }
  return bytes;
}

bool ZoneAssembly::writeAnswers(uint32_t index) {
  AnswerTable::Node& node = table_->nodes_[index];
  const NodeState& state = states_[index];
  if (node.isAlias()) unused_bytes_ += table_->aliases_[node.alias - 1].size();
  node.alias = 0;
  if (!state.shared && state.source.piece && copyOver(index, state.source)) return true;
  unused_bytes_ += answerBytes(node);
  node.first_answer = static_cast<uint32_t>(table_->answers_.size());
  node.answer_count = 0;
  if (state.shared) return encodeShared(index);
  if (state.source.piece) copyAnswers(index, state.source);
  return true;
}

// The piece's answers in place of the node's when they are as many and as long (a new SOA
// serial, an endpoint replaced by another): nothing is left unused.
bool ZoneAssembly::copyOver(uint32_t index, Source source) {
  AnswerTable::Node& node = table_->nodes_[index];
  const ZonePiece& from = *source.piece;
  const ZonePiece::Node& item = from.nodes[source.node];
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

void ZoneAssembly::addAlias(AnswerTable::Node& node, std::string_view target) {
  table_->aliases_.push_back(wireToName(target));
  node.alias = static_cast<uint16_t>(table_->aliases_.size());
}

void ZoneAssembly::copyAnswers(uint32_t index, Source source) {
  AnswerTable::Node& node = table_->nodes_[index];
  const ZonePiece& from = *source.piece;
  const ZonePiece::Node& item = from.nodes[source.node];
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

bool ZoneAssembly::encodeShared(uint32_t index) {
  AnswerTable::Node& node = table_->nodes_[index];
  records_.clear();
  bool alias = false;
  size_t with_addresses = 0;
  std::string_view name;
  for (const Source& source : shared_[index]) {
    const ZonePiece::Node& from = source.piece->nodes[source.node];
    name = source.piece->name(from);
    alias = alias || from.is_alias;
    auto records = source.piece->recordsOf(from);
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
  encoder_->encode(
      name, records_, [this](std::string_view target) { return glueOf(target); }, table_->answers_,
      table_->data_);
  node.answer_count = static_cast<uint16_t>(table_->answers_.size() - node.first_answer);
  if (alias && !records_.empty()) addAlias(node, records_.front().target);
  return true;
}

// The address records of `target`, from the one piece that gives it any.
AnswerEncoder::Glue ZoneAssembly::glueOf(std::string_view target) {
  auto [found, slot] = find(target, hashName(target));
  if (found < 0) return {};
  const NodeState& state = states_[static_cast<size_t>(found)];
  auto glue = [](Source source) {
    const ZonePiece::Node& node = source.piece->nodes[source.node];
    return AnswerEncoder::Glue{source.piece->name(node), source.piece->recordsOf(node)};
  };
  if (!state.shared) return state.source.piece ? glue(state.source) : AnswerEncoder::Glue{};
  for (const Source& source : shared_[static_cast<uint32_t>(found)]) {
    auto records = source.piece->recordsOf(source.piece->nodes[source.node]);
    if (std::any_of(records.begin(), records.end(), isAddress)) return glue(source);
  }
  return {};
}

}  // namespace svcbox::dns
