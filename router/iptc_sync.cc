#include "router/iptc_sync.h"

#include <libiptc/libiptc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_set>

#include "router/chain_names.h"
#include "router/iptc_entry.h"
#include "router/xtables_lock.h"

namespace svcbox::router {
namespace {

using Clock = std::chrono::steady_clock;

double millisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool fail(SyncFailure& failure, const std::string& what) {
  int error = errno;
  failure.permission_denied = error == EPERM || error == EACCES;
  failure.message = what + ": " + iptc_strerror(error);
  return false;
}

// Holds the writer's xtables lock for one scope.
class LockSession {
 public:
  LockSession(XtablesLock& lock, std::chrono::milliseconds wait) : lock_(lock), wait_(wait) {}
  ~LockSession() {
    if (held_) lock_.release();
  }
  LockSession(const LockSession&) = delete;
  LockSession& operator=(const LockSession&) = delete;

  bool acquire(SyncFailure& failure) {
    held_ = lock_.acquire(wait_);
    if (!held_) {
      failure.message = lock_.error();
      failure.permission_denied = lock_.permissionDenied();
    }
    return held_;
  }

 private:
  XtablesLock& lock_;
  std::chrono::milliseconds wait_;
  bool held_ = false;
};

// Lock, then read the table. Returns null (with `failure` set) when either is impossible.
IptcHandle openTable(const std::string& table, LockSession& session, SyncFailure& failure) {
  if (!session.acquire(failure)) return nullptr;
  IptcHandle handle(iptc_init(table.c_str()));
  if (!handle) fail(failure, "cannot read the " + table + " table");
  return handle;
}

// What IPT_SO_GET_INFO tells about a table: any rule added or removed changes it.
struct TableShape {
  unsigned valid_hooks = 0;
  std::array<unsigned, NF_INET_NUMHOOKS> hook_entry{};
  std::array<unsigned, NF_INET_NUMHOOKS> underflow{};
  unsigned num_entries = 0;
  unsigned size = 0;
  bool operator==(const TableShape&) const = default;
};

std::optional<TableShape> readShape(int socket, const std::string& table) {
  ipt_getinfo info{};
  if (table.size() >= sizeof info.name) return std::nullopt;
  table.copy(info.name, table.size());
  socklen_t length = sizeof info;
  if (getsockopt(socket, IPPROTO_IP, IPT_SO_GET_INFO, &info, &length) != 0) return std::nullopt;
  TableShape shape;
  shape.valid_hooks = info.valid_hooks;
  std::copy(std::begin(info.hook_entry), std::end(info.hook_entry), shape.hook_entry.begin());
  std::copy(std::begin(info.underflow), std::end(info.underflow), shape.underflow.begin());
  shape.num_entries = info.num_entries;
  shape.size = info.size;
  return shape;
}

// Commits by any writer of this process: they end no lock session another writer's
// LockFileWatch could see.
std::atomic<uint64_t> local_commits{0};

bool commitTable(xtc_handle* handle) {
  ++local_commits;
  return iptc_commit(handle);
}

std::unordered_set<std::string> ownedChains(xtc_handle* handle) {
  std::unordered_set<std::string> owned;
  for (const char* chain = iptc_first_chain(handle); chain; chain = iptc_next_chain(handle)) {
    if (isOwnedChain(chain)) owned.insert(chain);
  }
  return owned;
}

bool appendRules(const Chain& chain, xtc_handle* handle, SyncFailure& failure) {
  for (const auto& rule : chain.rules) {
    auto entry = encodeEntry(rule);
    if (!iptc_append_entry(chain.name.c_str(), reinterpret_cast<ipt_entry*>(entry.data()),
                           handle)) {
      return fail(failure, "cannot append to " + chain.name);
    }
  }
  return true;
}

// Makes each built-in chain hold exactly the desired jumps into svcbox's chains: one per hook,
// first in the chain when it has to be added. Removes duplicates (a crash between insert and
// commit cannot make them, but an older svcbox or a hand-made copy can) and jumps to any other
// SVCBOX-* chain. Returns the number of rules inserted or deleted.
bool fixHooks(const Table& desired, xtc_handle* handle, size_t& fixed, SyncFailure& failure) {
  // libiptc lists the built-in chains first: stop at the first user chain instead of asking
  // about each of the (possibly tens of thousands of) others.
  std::vector<std::string> builtins;
  for (const char* chain = iptc_first_chain(handle); chain; chain = iptc_next_chain(handle)) {
    if (!iptc_builtin(chain, handle)) break;
    builtins.push_back(chain);
  }
  for (const auto& builtin : builtins) {
    std::string wanted;
    for (const auto& hook : desired.hooks) {
      if (hook.builtin == builtin) wanted = hook.chain;
    }
    std::vector<unsigned> doomed;
    bool present = false;
    unsigned index = 0;
    for (const ipt_entry* rule = iptc_first_rule(builtin.c_str(), handle); rule;
         rule = iptc_next_rule(rule, handle), ++index) {
      std::string target = iptc_get_target(rule, handle);
      if (!isOwnedChain(target)) continue;
      if (target == wanted && !present) {
        present = true;
      } else {
        doomed.push_back(index);
      }
    }
    for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
      if (!iptc_delete_num_entry(builtin.c_str(), *it, handle)) {
        return fail(failure, "cannot delete a stale jump from " + builtin);
      }
      ++fixed;
    }
    if (!wanted.empty() && !present) {
      Rule jump;
      jump.target.chain = wanted;
      auto entry = encodeEntry(jump);
      if (!iptc_insert_entry(builtin.c_str(), reinterpret_cast<ipt_entry*>(entry.data()), 0,
                             handle)) {
        return fail(failure, "cannot insert the jump from " + builtin + " to " + wanted);
      }
      ++fixed;
    }
  }
  return true;
}

}  // namespace

void IptcHandleFree::operator()(xtc_handle* handle) const { iptc_free(handle); }

struct IptcTableWriter::ReadAhead {
  IptcHandle handle;
  TableShape shape;
  uint64_t lock_events = 0;
  uint64_t local_commits = 0;
};

IptcTableWriter::IptcTableWriter(std::chrono::milliseconds lock_wait) : lock_wait_(lock_wait) {}

IptcTableWriter::~IptcTableWriter() {
  retired_.reset();
  read_ahead_.clear();
  if (info_socket_ >= 0) ::close(info_socket_);
}

void IptcTableWriter::prepare(const std::string& table) {
  retired_.reset();
  read_ahead_.erase(table);
  if (info_socket_ < 0) info_socket_ = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (info_socket_ < 0) return;
  LockSession session(lock_, lock_wait_);
  SyncFailure ignored;
  if (!session.acquire(ignored)) return;
  // The lock file exists now; sessions other processes end from here on are counted. A watch
  // whose file was deleted or replaced (noticed by reading its queue) starts again on the new one.
  lock_watch_.events();
  if (!lock_watch_.watching() && !lock_watch_.watch(XtablesLock::path())) return;
  auto ahead = std::make_unique<ReadAhead>();
  ahead->lock_events = lock_watch_.events();
  ahead->local_commits = local_commits.load();
  ahead->handle.reset(iptc_init(table.c_str()));
  auto shape = readShape(info_socket_, table);
  if (!ahead->handle || !shape) return;
  ahead->shape = *shape;
  read_ahead_[table] = std::move(ahead);
}

// Called under the lock.
std::unique_ptr<IptcTableWriter::ReadAhead> IptcTableWriter::takeReadAhead(
    const std::string& table) {
  auto found = read_ahead_.find(table);
  if (found == read_ahead_.end()) return nullptr;
  auto ahead = std::move(found->second);
  read_ahead_.erase(found);
  if (lock_watch_.events() != ahead->lock_events) return nullptr;
  if (local_commits.load() != ahead->local_commits) return nullptr;
  auto shape = readShape(info_socket_, table);
  if (!shape || *shape != ahead->shape) return nullptr;
  return ahead;
}

namespace {

using CommittedChains = std::unordered_map<std::string, std::vector<Rule>>;

const Chain* findDesired(const Table& desired, const std::string& name) {
  auto found =
      std::lower_bound(desired.chains.begin(), desired.chains.end(), name,
                       [](const Chain& chain, const std::string& key) { return chain.name < key; });
  return found != desired.chains.end() && found->name == name ? &*found : nullptr;
}

// True when the table the last commit wrote already is `desired`.
bool unchangedSinceCommit(const Table& desired, const CommittedChains& committed,
                          const std::vector<std::string>* changed_chains) {
  if (committed.size() != desired.chains.size()) return false;
  auto same = [&](const Chain& chain) {
    auto known = committed.find(chain.name);
    return known != committed.end() && known->second == chain.rules;
  };
  if (changed_chains) {
    for (const auto& name : *changed_chains) {
      const Chain* chain = findDesired(desired, name);
      if (!chain || !same(*chain)) return false;
    }
    return true;
  }
  return std::all_of(desired.chains.begin(), desired.chains.end(), same);
}

// The chains of `changed` that differ from the last commit, when the hint can be trusted: every
// one of them exists in `desired`, in the last commit and in `handle`, and the chain count did
// not move. Null otherwise.
std::optional<std::vector<const Chain*>> hintedRewrites(const Table& desired,
                                                        const CommittedChains& committed,
                                                        const std::vector<std::string>& changed,
                                                        xtc_handle* handle) {
  if (committed.size() != desired.chains.size()) return std::nullopt;
  std::vector<const Chain*> rewrites;
  for (const auto& name : changed) {
    const Chain* chain = findDesired(desired, name);
    auto known = committed.find(name);
    if (!chain || known == committed.end() || !iptc_is_chain(name.c_str(), handle)) {
      return std::nullopt;
    }
    if (known->second != chain->rules) rewrites.push_back(chain);
  }
  return rewrites;
}

}  // namespace

bool IptcTableWriter::sync(const Table& desired, bool full,
                           const std::vector<std::string>* changed_chains, TableSyncStats& stats,
                           SyncFailure& failure) {
  auto& committed = committed_[desired.name];
  // A hint speaks of the last commit: after a failure there is none to speak of.
  if (full || committed.empty()) changed_chains = nullptr;
  // Nothing changed since the last commit: not even a read (the filter and mangle tables of a
  // sync that only moved endpoints). Edits behind svcbox's back wait for the full sync.
  if (!full && unchangedSinceCommit(desired, committed, changed_chains)) {
    stats.chains_kept = desired.chains.size();
    return true;
  }
  LockSession session(lock_, lock_wait_);
  auto started = Clock::now();
  if (!session.acquire(failure)) {
    committed.clear();
    return false;
  }
  std::unique_ptr<ReadAhead> ahead = takeReadAhead(desired.name);
  // A full sync is there to repair what others did: it trusts nothing read earlier.
  if (full) ahead.reset();
  IptcHandle handle =
      ahead ? std::move(ahead->handle) : IptcHandle(iptc_init(desired.name.c_str()));
  if (!handle) {
    committed.clear();
    return fail(failure, "cannot read the " + desired.name + " table");
  }
  stats.read_ahead = ahead != nullptr;
  stats.init_ms = millisSince(started);
  auto edit_started = Clock::now();
  std::vector<const Chain*> written;
  std::vector<std::string> stale;
  bool ok = true;
  // A table read ahead holds exactly what the last commit wrote (nobody else has written since),
  // so with a hint only the hinted chains need looking at: no walk over every chain.
  std::optional<std::vector<const Chain*>> rewrites;
  if (ahead && changed_chains) {
    rewrites = hintedRewrites(desired, committed, *changed_chains, handle.get());
  }
  if (rewrites) {
    for (const Chain* chain : *rewrites) {
      if (!ok) break;
      ok = (iptc_flush_entries(chain->name.c_str(), handle.get()) ||
            fail(failure, "cannot flush " + chain->name)) &&
           appendRules(*chain, handle.get(), failure);
      written.push_back(chain);
    }
    stats.chains_written = written.size();
    stats.chains_kept = desired.chains.size() - written.size();
  } else {
    ok = editWhole(desired, full, handle.get(), written, stale, stats, failure);
  }
  ok = ok && fixHooks(desired, handle.get(), stats.jumps_fixed, failure);
  for (const auto& name : stale) {
    if (!ok) break;
    ok = iptc_delete_chain(name.c_str(), handle.get()) || fail(failure, "cannot delete " + name);
    ++stats.chains_removed;
  }
  stats.edit_ms = millisSince(edit_started);
  if (!ok) {
    committed.clear();
    return false;
  }
  auto commit_started = Clock::now();
  stats.committed = stats.chains_written + stats.chains_removed + stats.jumps_fixed > 0;
  if (stats.committed && !commitTable(handle.get())) {
    committed.clear();
    return fail(failure, "cannot commit the " + desired.name + " table");
  }
  stats.commit_ms = millisSince(commit_started);
  // Only what changed is copied: the rest of `committed` already equals `desired`.
  for (const Chain* chain : written) committed[chain->name] = chain->rules;
  for (const auto& name : stale) committed.erase(name);
  // Freeing tens of thousands of parsed rules can wait for the idle time prepare() runs in.
  retired_ = std::move(handle);
  return true;
}

bool IptcTableWriter::editWhole(const Table& desired, bool full, xtc_handle* handle,
                                std::vector<const Chain*>& written, std::vector<std::string>& stale,
                                TableSyncStats& stats, SyncFailure& failure) {
  auto& committed = committed_[desired.name];
  auto existing = ownedChains(handle);
  // Someone else added or removed one of our chains: trust nothing we remember.
  if (!full) {
    bool same = existing.size() == committed.size();
    for (const auto& name : existing) same = same && committed.count(name);
    if (!same) full = true;
  }
  if (full) committed.clear();
  std::unordered_set<std::string_view> wanted;
  for (const auto& chain : desired.chains) wanted.insert(chain.name);
  for (const auto& name : existing) {
    if (!wanted.count(name)) stale.push_back(name);
  }
  // Stale chains lose their rules first, so nothing of ours refers to them when they go.
  for (const auto& name : stale) {
    if (!iptc_flush_entries(name.c_str(), handle)) return fail(failure, "cannot flush " + name);
  }
  // Every chain exists before any rule is appended: libiptc resolves a jump's target by name
  // when the rule goes in.
  for (const auto& chain : desired.chains) {
    if (existing.count(chain.name)) continue;
    if (!iptc_create_chain(chain.name.c_str(), handle)) {
      return fail(failure, "cannot create " + chain.name);
    }
  }
  for (const auto& chain : desired.chains) {
    if (existing.count(chain.name)) {
      auto known = committed.find(chain.name);
      if (known != committed.end() && known->second == chain.rules) {
        ++stats.chains_kept;
        continue;
      }
      if (!iptc_flush_entries(chain.name.c_str(), handle)) {
        return fail(failure, "cannot flush " + chain.name);
      }
    }
    written.push_back(&chain);
    ++stats.chains_written;
    if (!appendRules(chain, handle, failure)) return false;
  }
  return true;
}

bool IptcTableWriter::cleanup(const std::string& table, bool& changed, SyncFailure& failure) {
  committed_.erase(table);
  read_ahead_.erase(table);
  LockSession session(lock_, lock_wait_);
  IptcHandle handle = openTable(table, session, failure);
  if (!handle) return false;
  Table nothing{table, {}, {}};
  size_t fixed = 0;
  if (!fixHooks(nothing, handle.get(), fixed, failure)) return false;
  auto owned = ownedChains(handle.get());
  for (const auto& name : owned) {
    if (!iptc_flush_entries(name.c_str(), handle.get()))
      return fail(failure, "cannot flush " + name);
  }
  for (const auto& name : owned) {
    if (!iptc_delete_chain(name.c_str(), handle.get()))
      return fail(failure, "cannot delete " + name);
  }
  changed = fixed > 0 || !owned.empty();
  if (changed && !commitTable(handle.get()))
    return fail(failure, "cannot commit the " + table + " table");
  return true;
}

bool IptcTableWriter::chainExists(const std::string& table, const std::string& chain,
                                  SyncFailure& failure) {
  LockSession session(lock_, lock_wait_);
  IptcHandle handle = openTable(table, session, failure);
  if (!handle) return false;
  failure = {};
  return iptc_is_chain(chain.c_str(), handle.get());
}

bool canReadTable(const std::string& table, SyncFailure& failure) {
  // A read needs no lock: the kernel hands out a consistent copy, and a held lock must not be
  // mistaken for a missing capability.
  IptcHandle handle(iptc_init(table.c_str()));
  if (!handle) return fail(failure, "cannot read the " + table + " table");
  failure = {};
  return true;
}

}  // namespace svcbox::router
