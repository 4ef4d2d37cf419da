#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/answer_table.h"
#include "dns/zone_piece.h"

// Internal to dns/: lays pieces side by side in an AnswerTable, and then keeps that table up to
// date piece by piece. An update copies the last table (flat arrays: a memcpy), takes out the
// names of the pieces that went and puts in those of the pieces that came, so its cost follows
// the change. Pieces are not kept: the caller makes a piece again when one is asked for.
//
// Most names are named by one piece, which gives them records or not (an empty non-terminal);
// nothing is kept for them but the table itself. A name several pieces name (a namespace, a
// reverse zone's inner label, a pod's reverse name two headless Services give a PTR) is counted,
// and the pieces that give it records are listed by order key, so that it is encoded from all of
// them in snapshot order as a whole build does, and goes when the last piece naming it goes.
namespace svcbox::dns {

class ZoneAssembly {
 public:
  // The piece (made again) of the Service whose order key is `order`, or the apexes' for "".
  using PieceLookup = std::function<const ZonePiece&(std::string_view order)>;
  // The index-th piece of a rebuild, valid until the next call; null after the last.
  using PieceSequence = std::function<const ZonePiece*(size_t index)>;
  // The apexes' piece for these dynamic zones.
  using ApexPiece = std::function<const ZonePiece&(std::span<const std::string> dynamic_zones)>;

  explicit ZoneAssembly(const ZoneOptions& options);

  // A table from the static zones, the Services' pieces in snapshot order, then the apexes'
  // piece. Null when two pieces give address records to one name, or SRV records (valid
  // Kubernetes names never do; glue would not follow): that needs a whole build.
  AnswerTablePtr rebuild(std::span<const std::string> static_zones, size_t expected_names,
                         const PieceSequence& services, const ApexPiece& apexes,
                         const PieceLookup& lookup, uint32_t serial);
  // The last table without `removed` (the old apexes' piece among them) and with `added` and
  // the apexes' piece. Null when it cannot be done so (nothing built yet, too much left unused
  // in the arrays, a name a piece gives records to gets more from another, the conflict above):
  // rebuild then.
  AnswerTablePtr update(std::span<const ZonePiece* const> removed,
                        std::span<const ZonePiece* const> added, const ApexPiece& apexes,
                        const PieceLookup& lookup, uint32_t serial);

 private:
  // Kept only for names several pieces name, or that several give records to.
  struct NodeState {
    uint32_t pieces = 1;
    uint32_t record_pieces = 0;
    std::vector<std::string> sources;  // order keys of those giving records, when known
    // The piece at hand that last gave it records, and its node there.
    const ZonePiece* piece = nullptr;
    uint32_t piece_node = 0;
    bool dirty = false;
    bool touched = false;
  };

  void start(std::shared_ptr<AnswerTable> table, uint32_t serial, const PieceLookup& lookup);
  void flush(bool shared_too);
  AnswerTablePtr finish();
  void add(const ZonePiece& piece);
  void remove(const ZonePiece& piece);
  std::vector<uint16_t> addZones(const ZonePiece& piece);
  void removeZones(const ZonePiece& piece);
  std::vector<std::string> dynamicZones() const;
  NodeState& touch(uint32_t index);
  // The node of `name` and its slot, or the empty slot where it would go (node: -1).
  std::pair<int64_t, size_t> find(std::string_view name, uint64_t hash) const;
  uint32_t addNode(std::string_view name, const ZonePiece::Node& from, uint16_t zone);
  void eraseNode(uint32_t index);
  void grow();
  // The node's whole name, in scratch_ (valid until the next call).
  const std::string& fullName(const AnswerTable::Node& node);
  uint64_t hashOf(const AnswerTable::Node& node) { return hashName(fullName(node)); }
  void markDirty(uint32_t index, NodeState& state);
  bool writeAnswers(uint32_t index, const NodeState& state);
  bool encodeShared(uint32_t index, const NodeState& state);
  bool copyOver(uint32_t index, const ZonePiece& from, const ZonePiece::Node& item);
  void copyAnswers(uint32_t index, const ZonePiece& from, const ZonePiece::Node& item);
  void addAlias(AnswerTable::Node& node, std::string_view target);
  const ZonePiece::Node* nodeIn(const ZonePiece& piece, std::string_view name) const;
  AnswerEncoder::Glue glueOf(std::string_view target);
  size_t answerBytes(const AnswerTable::Node& node) const;

  ZoneOptions options_;
  std::shared_ptr<const AnswerTable> last_;
  std::shared_ptr<AnswerTable> table_;  // being built
  std::unique_ptr<AnswerEncoder> encoder_;
  const PieceLookup* lookup_ = nullptr;
  std::span<const ZonePiece* const> at_hand_;  // pieces being added, looked up before `lookup_`
  std::unordered_map<uint32_t, NodeState> states_;
  std::vector<uint32_t> free_nodes_;
  std::vector<uint32_t> dirty_;
  std::vector<uint32_t> touched_;
  std::vector<uint32_t> emptied_;  // named by no piece any more, unless one names it again
  size_t live_nodes_ = 0;
  size_t static_zone_count_ = 0;
  std::unordered_map<std::string, uint16_t> dynamic_zones_;
  std::vector<uint32_t> zone_pieces_;  // per table zone: how many pieces name it
  std::vector<uint16_t> free_zones_;
  // While a rebuild runs: per node, the index + 1 of the piece that gave it records, and each
  // piece's order key, so a name a later piece gives records too is shared knowingly.
  std::vector<uint32_t> rebuild_sources_;
  std::vector<std::string> rebuild_orders_;
  size_t unused_bytes_ = 0;  // in names_ and data_, left by names taken out or answers replaced
  bool failed_ = false;
  std::string scratch_;
  std::vector<Record> records_;
};

}  // namespace svcbox::dns
