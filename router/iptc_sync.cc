#include "router/iptc_sync.h"

#include <libiptc/libiptc.h>

#include <cerrno>
#include <memory>
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

struct HandleFree {
  void operator()(xtc_handle* handle) const { iptc_free(handle); }
};
using Handle = std::unique_ptr<xtc_handle, HandleFree>;

bool fail(SyncFailure& failure, const std::string& what) {
  int error = errno;
  failure.permission_denied = error == EPERM || error == EACCES;
  failure.message = what + ": " + iptc_strerror(error);
  return false;
}

// Lock, then read the table. Returns null (with `failure` set) when either is impossible.
Handle openTable(const std::string& table, XtablesLock& lock, SyncFailure& failure) {
  if (!lock.acquire(std::chrono::duration_cast<std::chrono::milliseconds>(kXtablesLockTimeout))) {
    failure.message = lock.error();
    failure.permission_denied = lock.permissionDenied();
    return nullptr;
  }
  Handle handle(iptc_init(table.c_str()));
  if (!handle) fail(failure, "cannot read the " + table + " table");
  return handle;
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

bool IptcTableWriter::sync(const Table& desired, bool full, TableSyncStats& stats,
                           SyncFailure& failure) {
  auto& committed = committed_[desired.name];
  // Nothing changed since the last commit: not even a read (the filter and mangle tables of a
  // sync that only moved endpoints). Edits behind svcbox's back wait for the full sync.
  if (!full && committed.size() == desired.chains.size()) {
    bool same = true;
    for (const auto& chain : desired.chains) {
      auto known = committed.find(chain.name);
      same = same && known != committed.end() && known->second == chain.rules;
    }
    if (same) {
      stats.chains_kept = desired.chains.size();
      return true;
    }
  }
  XtablesLock lock;
  auto started = Clock::now();
  Handle handle = openTable(desired.name, lock, failure);
  if (!handle) {
    committed.clear();
    return false;
  }
  stats.init_ms = millisSince(started);
  auto edit_started = Clock::now();
  auto existing = ownedChains(handle.get());
  // Someone else added or removed one of our chains: trust nothing we remember.
  if (!full) {
    bool same = existing.size() == committed.size();
    for (const auto& name : existing) same = same && committed.count(name);
    if (!same) full = true;
  }
  if (full) committed.clear();
  std::unordered_set<std::string_view> wanted;
  for (const auto& chain : desired.chains) wanted.insert(chain.name);
  std::vector<std::string> stale;
  for (const auto& name : existing) {
    if (!wanted.count(name)) stale.push_back(name);
  }
  // Stale chains lose their rules first, so nothing of ours refers to them when they go.
  for (const auto& name : stale) {
    if (!iptc_flush_entries(name.c_str(), handle.get())) {
      committed.clear();
      return fail(failure, "cannot flush " + name);
    }
  }
  // Every chain exists before any rule is appended: libiptc resolves a jump's target by name
  // when the rule goes in.
  bool ok = true;
  for (const auto& chain : desired.chains) {
    if (existing.count(chain.name)) continue;
    ok = iptc_create_chain(chain.name.c_str(), handle.get()) ||
         fail(failure, "cannot create " + chain.name);
    if (!ok) break;
  }
  for (const auto& chain : desired.chains) {
    if (!ok) break;
    if (existing.count(chain.name)) {
      auto known = committed.find(chain.name);
      if (known != committed.end() && known->second == chain.rules) {
        ++stats.chains_kept;
        continue;
      }
      ok = iptc_flush_entries(chain.name.c_str(), handle.get()) ||
           fail(failure, "cannot flush " + chain.name);
    }
    ok = ok && appendRules(chain, handle.get(), failure);
    ++stats.chains_written;
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
  if (stats.committed && !iptc_commit(handle.get())) {
    committed.clear();
    return fail(failure, "cannot commit the " + desired.name + " table");
  }
  stats.commit_ms = millisSince(commit_started);
  committed.clear();
  for (const auto& chain : desired.chains) committed[chain.name] = chain.rules;
  return true;
}

bool IptcTableWriter::cleanup(const std::string& table, bool& changed, SyncFailure& failure) {
  committed_.erase(table);
  XtablesLock lock;
  Handle handle = openTable(table, lock, failure);
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
  if (changed && !iptc_commit(handle.get()))
    return fail(failure, "cannot commit the " + table + " table");
  return true;
}

bool IptcTableWriter::chainExists(const std::string& table, const std::string& chain,
                                  SyncFailure& failure) {
  XtablesLock lock;
  Handle handle = openTable(table, lock, failure);
  if (!handle) return false;
  failure = {};
  return iptc_is_chain(chain.c_str(), handle.get());
}

}  // namespace svcbox::router
