#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "router/lock_watch.h"
#include "router/ruleset.h"
#include "router/table_writer.h"
#include "router/xtables_lock.h"

struct xtc_handle;  // libiptc's parsed table

// Writes svcbox's chains into the kernel's legacy x_tables through libiptc: one read and one
// commit per table, under the xtables lock. Only chains named SVCBOX-* and one jump per hooked
// built-in chain are touched; every other rule goes back into the kernel as it was read.
namespace svcbox::router {

// Frees a parsed table (iptc_free).
struct IptcHandleFree {
  void operator()(xtc_handle* handle) const;
};
using IptcHandle = std::unique_ptr<xtc_handle, IptcHandleFree>;

// How long `svcbox rules` and `cleanup` wait for the xtables lock, as `iptables -w 10` would.
constexpr auto kXtablesLockTimeout = std::chrono::milliseconds(10000);

class IptcTableWriter : public TableWriter {
 public:
  // `lock_wait`: how long one sync waits for the xtables lock before it fails (and is retried).
  explicit IptcTableWriter(std::chrono::milliseconds lock_wait = kXtablesLockTimeout);
  ~IptcTableWriter() override;
  bool sync(const Table& desired, bool full, const std::vector<std::string>* changed_chains,
            TableSyncStats& stats, SyncFailure& failure) override;
  bool chainExists(const std::string& table, const std::string& chain,
                   SyncFailure& failure) override;
  // Keeps the parsed table (tens of MB at 10,000 Services) until the next sync. It is used only
  // when no other process ended an xtables lock session since (LockFileWatch) and the kernel
  // reports the same table shape (entries, size, hook offsets); a full sync always reads anew.
  void prepare(const std::string& table) override;

  // Removes every SVCBOX-* chain and every jump into one from the table.
  bool cleanup(const std::string& table, bool& changed, SyncFailure& failure);

 private:
  struct ReadAhead;
  // The table read by prepare(), when it can still be trusted; null otherwise.
  std::unique_ptr<ReadAhead> takeReadAhead(const std::string& table);
  // Compares every chain with the last commit and rewrites those that differ; creates missing
  // chains and flushes stale ones (deleted by the caller after the hooks are fixed).
  bool editWhole(const Table& desired, bool full, xtc_handle* handle,
                 std::vector<const Chain*>& written, std::vector<std::string>& stale,
                 TableSyncStats& stats, SyncFailure& failure);

  // table -> chain -> rules, as last committed.
  std::map<std::string, std::unordered_map<std::string, std::vector<Rule>>> committed_;
  std::chrono::milliseconds lock_wait_;
  XtablesLock lock_;  // one open file for the writer's life: its own sessions close nothing
  LockFileWatch lock_watch_;
  int info_socket_ = -1;  // for IPT_SO_GET_INFO
  std::map<std::string, std::unique_ptr<ReadAhead>> read_ahead_;
  IptcHandle retired_;  // the last sync's table, freed by prepare()
};

// Reads `table` without taking the xtables lock: whether this process may use netfilter at all.
// False with `failure` set (permission_denied for a missing capability) when it may not.
bool canReadTable(const std::string& table, SyncFailure& failure);

}  // namespace svcbox::router
