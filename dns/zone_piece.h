#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dns/answer_table.h"
#include "dns/record_writer.h"
#include "store/snapshot.h"

// Internal to dns/: the zone is compiled in pieces. A piece holds the names one part of the
// registry contributes (one Service, or the zones' own names) with their records and their answers
// already encoded, so an unchanged Service's piece is reused as it is; assembling pieces into an
// AnswerTable only copies bytes, except where two pieces give records to the same name.
namespace svcbox::dns {

// One resource record. Names are views of strings that outlive the record.
struct Record {
  uint32_t owner = 0;  // the node (draft) it belongs to, while a piece is built
  uint16_t type = 0;
  uint16_t weight = 0;      // SRV
  uint16_t port = 0;        // SRV
  store::IpAddress ip;      // A, AAAA
  std::string_view target;  // CNAME, PTR, NS, SRV: wire name; TXT: the text
};

struct ZonePiece {
  struct Node {
    uint64_t hash = 0;  // hashName of the whole name
    uint32_t name_offset = 0;
    uint8_t name_length = 0;
    uint8_t apex_offset = 0;
    // Below `static_zone_count`: a zone every piece shares (the domain, svc, the service CIDR's
    // reverse zones); above: dynamic_zones[zone - static_zone_count].
    uint16_t zone = 0;
    bool is_alias = false;
    uint32_t first_record = 0;
    uint32_t record_count = 0;  // 0: an empty non-terminal as far as this piece knows
    uint32_t first_answer = 0;
    uint16_t answer_count = 0;
  };

  std::string_view name(const Node& node) const {
    return std::string_view(names).substr(node.name_offset, node.name_length);
  }
  std::span<const Record> recordsOf(const Node& node) const {
    return std::span(records).subspan(node.first_record, node.record_count);
  }

  // Where its records go among other pieces' at a name they share: (namespace NUL name) of its
  // Service, which sorts as the snapshot does; empty for the apexes' piece, which comes first.
  std::string order;
  uint16_t static_zone_count = 0;
  std::vector<std::string> static_zones;   // filled in the piece that holds the apexes only
  std::vector<std::string> dynamic_zones;  // headless pods' reverse zones, by first use
  std::string names;                       // whole lower-cased wire names, back to back
  std::string targets;                     // what record targets view
  std::vector<Node> nodes;
  std::vector<Record> records;  // by node, then type, in the order they were added
  std::vector<AnswerTable::Answer> answers;
  std::vector<uint8_t> data;
};

using ZonePiecePtr = std::shared_ptr<const ZonePiece>;

// Encodes the answers of one name: one Answer per type, records grouped by type already.
class AnswerEncoder {
 public:
  AnswerEncoder(const ZoneOptions& options, uint32_t serial);

  // The address records of a glue target and its name as the piece that holds them keeps it.
  struct Glue {
    std::string_view name;
    std::span<const Record> records;
  };
  using GlueLookup = std::function<Glue(std::string_view target)>;

  void encode(std::string_view name, std::span<const Record> records, const GlueLookup& glue,
              std::vector<AnswerTable::Answer>& answers, std::vector<uint8_t>& data);
  std::vector<uint8_t> soaWithoutOwner() const;

 private:
  void encodeAnswer(std::string_view name, std::span<const Record> records, const GlueLookup& glue,
                    std::vector<AnswerTable::Answer>& answers, std::vector<uint8_t>& data);
  void writeRdata(const Record& record);

  uint32_t ttl_;
  uint32_t serial_;
  std::string ns_name_;
  std::string hostmaster_;
  RecordWriter writer_;
};

// Builds pieces; one builder serves many Services in turn (it keeps its buffers).
class PieceBuilder {
 public:
  PieceBuilder(const ZoneOptions& options, const std::optional<store::Cidr>& service_cidr,
               uint32_t serial);
  ~PieceBuilder();
  PieceBuilder(const PieceBuilder&) = delete;
  PieceBuilder& operator=(const PieceBuilder&) = delete;

  // The apexes of the zones every piece shares: the domain's, svc's, the service CIDR's.
  std::vector<std::string> staticZones() const;
  // The whole zone of a snapshot in one piece.
  std::unique_ptr<ZonePiece> whole(const store::Snapshot& snapshot, const ProxiedServices* proxied);
  // The zones' apexes (the static ones and `dynamic_zones`) and svcbox's own names.
  std::unique_ptr<ZonePiece> global(std::span<const std::string> dynamic_zones);
  // One Service's names; `proxied`: where the userspace proxy serves it, if it does.
  std::unique_ptr<ZonePiece> service(const store::ServiceEntry& entry,
                                     const ProxiedService* proxied);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// What DNS shows of one Service: equal fingerprints compile to equal names and answers.
uint64_t serviceFingerprint(const store::ServiceEntry& entry, const ProxiedService* proxied);

}  // namespace svcbox::dns
