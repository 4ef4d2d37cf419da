#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dns/answer_table.h"
#include "store/snapshot.h"

// Compiles the zone of snapshot after snapshot at a cost that follows the change, not the
// registry: a Service entry a snapshot shares with the previous one (the same pointer, or equal in
// what DNS shows) keeps the names and answers it produced last time, and a new table is those
// laid side by side. Every table equals what AnswerTable::build makes of the same snapshot.
namespace svcbox::dns {

struct ZonePiece;
class PieceBuilder;
class ZoneAssembly;

class ZoneCompiler {
 public:
  explicit ZoneCompiler(ZoneOptions options);
  ~ZoneCompiler();
  ZoneCompiler(const ZoneCompiler&) = delete;
  ZoneCompiler& operator=(const ZoneCompiler&) = delete;

  struct Compiled {
    AnswerTablePtr table;  // null: nothing DNS shows changed, the SOA serial included
    size_t encoded = 0;    // Services whose names were encoded anew; the rest were reused
    bool rebuilt = false;  // laid out anew from every piece, not updated from the last table
    bool whole = false;    // built whole: two Services gave addresses to one name
  };
  // `proxied`: the Services the userspace proxy serves from addresses of its own, or null.
  // The compiler holds on to the snapshot (the one being served, in steady state) to know what
  // the next one changed.
  Compiled compile(const store::SnapshotPtr& snapshot, const ProxiedServices* proxied);

 private:
  ZoneOptions options_;
  std::optional<store::Cidr> service_cidr_;
  std::unique_ptr<PieceBuilder> builder_;  // for Service pieces, which hold no serial
  store::SnapshotPtr last_;                // what the last table was compiled from
  ProxiedServices last_proxied_;           // and the proxied Services then
  std::unique_ptr<ZonePiece> global_;      // the zones' apexes and svcbox's own names
  uint32_t serial_ = 0;                    // the SOA serial global_ was made with
  std::unique_ptr<ZoneAssembly> assembly_;
};

}  // namespace svcbox::dns
