#pragma once

#include <chrono>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "router/ruleset.h"

// Writes svcbox's chains into the kernel's legacy x_tables through libiptc: one read and one
// commit per table, under the xtables lock. Only chains named SVCBOX-* and one jump per hooked
// built-in chain are touched; every other rule goes back into the kernel as it was read.
namespace svcbox::router {

struct TableSyncStats {
  size_t chains_written = 0;  // created or refilled
  size_t chains_kept = 0;     // equal to what the last commit wrote: left alone
  size_t chains_removed = 0;
  size_t jumps_fixed = 0;  // hook jumps inserted or duplicates/stale ones deleted
  bool committed = false;  // false when nothing differed
  double init_ms = 0, edit_ms = 0, commit_ms = 0;
};

struct SyncFailure {
  std::string message;
  bool permission_denied = false;  // no CAP_NET_ADMIN
};

// What the router's loop needs from a rule backend: libiptc here; a fake in the loop's tests
// (and, later, nftables).
class TableWriter {
 public:
  virtual ~TableWriter() = default;
  // Brings one table to `desired`. Unless `full`, chains whose rules equal what this writer
  // committed last time are not rewritten (the periodic full sync repairs outside edits).
  // On failure the kernel keeps its table and the next call must be full.
  virtual bool sync(const Table& desired, bool full, TableSyncStats& stats,
                    SyncFailure& failure) = 0;
  // True when `chain` exists in `table` (the canary check; meant for a small table). False with
  // `failure` set when the table cannot be read.
  virtual bool chainExists(const std::string& table, const std::string& chain,
                           SyncFailure& failure) = 0;
};

class IptcTableWriter : public TableWriter {
 public:
  bool sync(const Table& desired, bool full, TableSyncStats& stats, SyncFailure& failure) override;
  bool chainExists(const std::string& table, const std::string& chain,
                   SyncFailure& failure) override;

  // Removes every SVCBOX-* chain and every jump into one from the table.
  bool cleanup(const std::string& table, bool& changed, SyncFailure& failure);

 private:
  // table -> chain -> rules, as last committed.
  std::map<std::string, std::unordered_map<std::string, std::vector<Rule>>> committed_;
};

constexpr auto kXtablesLockTimeout = std::chrono::seconds(10);

}  // namespace svcbox::router
