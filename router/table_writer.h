#pragma once

#include <string>
#include <vector>

#include "router/chain_names.h"
#include "router/ruleset.h"
#include "router/sync_failure.h"

// The seam between the netfilter backends and the code that decides what they write: the
// iptables mode and REDIRECT rules write Tables through it (libiptc in production, a fake in the
// loop's tests).
namespace svcbox::router {

struct TableSyncStats {
  size_t chains_written = 0;  // created or refilled
  size_t chains_kept = 0;     // equal to what the last commit wrote: left alone
  size_t chains_removed = 0;
  size_t jumps_fixed = 0;   // hook jumps inserted or duplicates/stale ones deleted
  bool committed = false;   // false when nothing differed
  bool read_ahead = false;  // the table read by prepare() was still current: no read here
  double init_ms = 0, edit_ms = 0, commit_ms = 0;
};

// What a Table-shaped backend needs from a rule writer: libiptc (IptcTableWriter); a fake in the
// loop's tests.
class TableWriter {
 public:
  virtual ~TableWriter() = default;
  // Brings one table to `desired`. Unless `full`, chains whose rules equal what this writer
  // committed last time are not rewritten (the periodic full sync repairs outside edits).
  // On failure the kernel keeps its table and the next call must be full.
  // `changed_chains` (sorted; null when unknown): the caller knows that only these chains differ
  // from the table it passed to the last successful sync of this table, which spares comparing
  // the other ten thousand. Ignored by a full sync.
  virtual bool sync(const Table& desired, bool full, const std::vector<std::string>* changed_chains,
                    TableSyncStats& stats, SyncFailure& failure) = 0;
  // True when `chain` exists in `table` (the canary check; meant for a small table). False with
  // `failure` set when the table cannot be read.
  virtual bool chainExists(const std::string& table, const std::string& chain,
                           SyncFailure& failure) = 0;
  // Reads `table` now, while nothing waits for it, so that the next partial sync can skip the
  // read when the table has not changed since. Optional: a failure only loses the head start.
  virtual void prepare(const std::string& table) { (void)table; }
};

// The external-change check of both netfilter backends: a flush of the tables from outside
// (`iptables -F -X`, a firewall reload) removes the canary chain svcbox keeps in mangle. False,
// with `why_not`, when it is gone; an error while looking is not a removal.
inline bool canaryStillInstalled(TableWriter& writer, std::string& why_not) {
  SyncFailure failure;
  if (writer.chainExists("mangle", kCanaryChain, failure) || !failure.message.empty()) return true;
  why_not = "canary chain mangle/" + std::string(kCanaryChain) +
            " is gone: the tables were flushed from outside";
  return false;
}

}  // namespace svcbox::router
