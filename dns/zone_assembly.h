#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/answer_table.h"
#include "dns/zone_piece.h"

// Internal to dns/: lays pieces side by side in an AnswerTable, and then keeps that table up to
// date piece by piece. An update copies the last table (flat arrays: a memcpy) and takes out the
// names of the pieces that went, puts in those of the pieces that came, so its cost follows the
// change. A name most pieces give alone keeps the answers its piece encoded; a name several
// pieces give records to is encoded again from all of them, in snapshot order as a whole build
// adds them; a name a piece gives no records (an empty non-terminal such as a namespace) only
// counts that piece, so that it goes when the last piece naming it goes.
namespace svcbox::dns {

class ZoneAssembly {
 public:
  explicit ZoneAssembly(const ZoneOptions& options);

  // A table of `pieces` alone: the apexes' piece first (it lists the static zones), then the
  // Services' in snapshot order. Null when two pieces give address records to one name (valid
  // Kubernetes names never do; another name's glue may hold them as one piece saw them): that
  // needs a whole build.
  AnswerTablePtr rebuild(std::span<const ZonePiece* const> pieces, uint32_t serial);
  // The last table without `removed` and with `added`. Null when it cannot be done so (nothing
  // built yet, too much left unused in the arrays, the index too full, or the conflict above):
  // rebuild then. Pieces must stay alive while a table built from them is the last one.
  AnswerTablePtr update(std::span<const ZonePiece* const> removed,
                        std::span<const ZonePiece* const> added, uint32_t serial);

 private:
  struct Source {
    const ZonePiece* piece = nullptr;
    uint32_t node = 0;
    bool operator==(const Source&) const = default;
  };
  // Per table node: how many pieces name it and which give it records.
  struct NodeState {
    uint32_t pieces = 0;
    Source source;        // the one piece node with records; no piece: none has any
    bool shared = false;  // several give records: their sources are in shared_
    bool dirty = false;   // its answers are to be written again
  };

  void start(std::shared_ptr<AnswerTable> table, uint32_t serial);
  AnswerTablePtr finish();
  void add(const ZonePiece& piece);
  void remove(const ZonePiece& piece);
  std::vector<uint16_t> addZones(const ZonePiece& piece);
  void removeZones(const ZonePiece& piece);
  // The node of `name` and its slot, or the empty slot where it would go (node: -1).
  std::pair<int64_t, size_t> find(std::string_view name, uint64_t hash) const;
  uint32_t addNode(std::string_view name, const ZonePiece::Node& from, uint16_t zone, size_t slot);
  void eraseNode(uint32_t index, size_t slot);
  uint64_t hashOf(const AnswerTable::Node& node);
  void markDirty(uint32_t index);
  bool writeAnswers(uint32_t index);
  bool encodeShared(uint32_t index);
  bool copyOver(uint32_t index, Source source);
  void copyAnswers(uint32_t index, Source source);
  void addAlias(AnswerTable::Node& node, std::string_view target);
  AnswerEncoder::Glue glueOf(std::string_view target);
  size_t answerBytes(const AnswerTable::Node& node) const;

  ZoneOptions options_;
  std::shared_ptr<const AnswerTable> last_;
  std::shared_ptr<AnswerTable> table_;  // being built
  std::unique_ptr<AnswerEncoder> encoder_;
  std::vector<NodeState> states_;                   // parallel to the table's nodes
  std::map<uint32_t, std::vector<Source>> shared_;  // in snapshot order
  std::vector<uint32_t> free_nodes_;
  std::vector<uint32_t> dirty_;
  size_t static_zone_count_ = 0;
  std::unordered_map<std::string, uint16_t> dynamic_zones_;
  std::vector<uint32_t> zone_pieces_;  // per table zone: how many pieces name it
  std::vector<uint16_t> free_zones_;
  size_t unused_bytes_ = 0;  // in names_ and data_, left by names taken out or answers replaced
  bool failed_ = false;
  std::string scratch_;
  std::vector<Record> records_;
};

}  // namespace svcbox::dns
