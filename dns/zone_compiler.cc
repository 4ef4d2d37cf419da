#include "dns/zone_compiler.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "dns/zone_assembly.h"
#include "dns/zone_piece.h"

namespace svcbox::dns {
namespace {

// Snapshots and the proxied map are both in (namespace, name) order.
int compareKeys(const store::Service& a, const store::Service& b) {
  if (int c = a.namespace_name.compare(b.namespace_name)) return c;
  return a.name.compare(b.name);
}

const ProxiedService* proxiedFor(const store::Service& service, const ProxiedServices& proxied,
                                 ProxiedServices::const_iterator& at) {
  while (at != proxied.end()) {
    const auto& [namespace_name, name] = at->first;
    int c = namespace_name.compare(service.namespace_name);
    if (c == 0) c = name.compare(service.name);
    if (c > 0) return nullptr;
    if (c == 0) return &at->second;
    ++at;
  }
  return nullptr;
}

bool sameProxy(const ProxiedService* before, const ProxiedService* now) {
  return now ? before && *before == *now : !before;
}

// For a lookup out of order: the map's keys are strings, so this builds one.
const ProxiedService* proxiedIn(const ProxiedServices* proxied, const store::Service& service) {
  if (!proxied) return nullptr;
  auto found = proxied->find({service.namespace_name, service.name});
  return found == proxied->end() ? nullptr : &found->second;
}

}  // namespace

ZoneCompiler::ZoneCompiler(ZoneOptions options)
    : options_(std::move(options)), assembly_(std::make_unique<ZoneAssembly>(options_)) {}
ZoneCompiler::~ZoneCompiler() = default;

ZoneCompiler::Compiled ZoneCompiler::compile(const store::SnapshotPtr& snapshot_ptr,
                                             const ProxiedServices* proxied) {
  const store::Snapshot& snapshot = *snapshot_ptr;
  Compiled compiled;
  bool from_scratch = !builder_ || snapshot.serviceCidr() != service_cidr_;
  if (from_scratch) {
    // Every piece names its reverse zones by the service CIDR's.
    service_cidr_ = snapshot.serviceCidr();
    builder_ = std::make_unique<PieceBuilder>(options_, service_cidr_, 0);
    last_.reset();
    last_proxied_.clear();
  }
  static const std::vector<store::ServiceEntryPtr> kNone;
  const auto& before = last_ ? last_->sharedServices() : kNone;
  // Services that went or changed, with how they were proxied: their pieces are made again to
  // take their names out.
  std::vector<std::pair<const store::ServiceEntry*, const ProxiedService*>> removed;
  std::vector<std::unique_ptr<ZonePiece>> added;
  const auto& entries = snapshot.sharedServices();
  ProxiedServices::const_iterator proxied_at;
  if (proxied) proxied_at = proxied->begin();
  auto was_proxied_at = last_proxied_.cbegin();
  auto wasProxied = [&](const store::Service& service) {
    return proxiedFor(service, last_proxied_, was_proxied_at);
  };
  size_t old = 0;
  for (const auto& entry : entries) {
    const store::Service& service = entry->service;
    const ProxiedService* serving = proxied ? proxiedFor(service, *proxied, proxied_at) : nullptr;
    if (old < before.size() && before[old] != entry) {
      while (old < before.size() && compareKeys(before[old]->service, service) < 0) {
        removed.emplace_back(before[old].get(), wasProxied(before[old]->service));
        ++old;
      }
    }
    const store::ServiceEntry* previous = nullptr;
    const ProxiedService* previous_proxied = nullptr;
    if (old < before.size() &&
        (before[old] == entry || compareKeys(before[old]->service, service) == 0)) {
      previous = before[old++].get();
      previous_proxied = wasProxied(previous->service);
    }
    if (previous == entry.get() && sameProxy(previous_proxied, serving)) continue;
    if (previous &&
        serviceFingerprint(*previous, previous_proxied) == serviceFingerprint(*entry, serving)) {
      continue;  // a change DNS does not show (a ClusterIP Service's pod became ready, say)
    }
    if (previous) removed.emplace_back(previous, previous_proxied);
    if (!from_scratch) added.push_back(builder_->service(*entry, serving));
    ++compiled.encoded;
  }
  for (; old < before.size(); ++old) {
    removed.emplace_back(before[old].get(), wasProxied(before[old]->service));
  }
  // The pieces of what was removed are made below, before the last snapshot is let go.
  store::SnapshotPtr previous_snapshot = std::move(last_);
  ProxiedServices previous_proxied = std::move(last_proxied_);
  last_ = snapshot_ptr;
  last_proxied_.clear();
  // Moving keeps the nodes `removed` points to; a copy only when the proxied Services changed.
  if (proxied && *proxied == previous_proxied) {
    last_proxied_ = std::move(previous_proxied);
  } else if (proxied) {
    last_proxied_ = *proxied;
  }
  // Nothing DNS shows changed but the version: the SOA serial is the registry's generation (a
  // fresh serve on this registry says so), so the apexes' piece alone is replaced.
  auto serial = static_cast<uint32_t>(snapshot.version());
  if (!from_scratch && removed.empty() && added.empty() && serial == serial_) return compiled;
  serial_ = serial;

  // Pieces the assembly asks for again: a Service's that shares a name with one that changed.
  std::unordered_map<std::string, std::unique_ptr<ZonePiece>> made_again;
  ZoneAssembly::PieceLookup lookup = [&](std::string_view order) -> const ZonePiece& {
    if (order.empty()) return *global_;
    auto& piece = made_again[std::string(order)];
    if (!piece) {
      size_t split = order.find('\0');
      std::string_view namespace_name = order.substr(0, split);
      std::string_view name = order.substr(split + 1);
      auto at =
          std::lower_bound(entries.begin(), entries.end(), order, [&](const auto& entry, auto) {
            const store::Service& service = entry->service;
            int c = service.namespace_name.compare(namespace_name);
            return c != 0 ? c < 0 : service.name.compare(name) < 0;
          });
      piece = builder_->service(**at, proxiedIn(proxied, (*at)->service));
    }
    return *piece;
  };
  std::unique_ptr<ZonePiece> old_global = std::move(global_);
  ZoneAssembly::ApexPiece apexes =
      [&](std::span<const std::string> dynamic_zones) -> const ZonePiece& {
    global_ = PieceBuilder(options_, service_cidr_, serial).global(dynamic_zones);
    return *global_;
  };
  if (!from_scratch && old_global) {
    std::vector<std::unique_ptr<ZonePiece>> gone;
    gone.reserve(removed.size() + 1);
    for (const auto& [entry, was_proxied] : removed)
      gone.push_back(builder_->service(*entry, was_proxied));
    gone.push_back(std::move(old_global));
    std::vector<const ZonePiece*> gone_pieces;
    for (const auto& piece : gone) gone_pieces.push_back(piece.get());
    std::vector<const ZonePiece*> added_pieces;
    for (const auto& piece : added) added_pieces.push_back(piece.get());
    compiled.table = assembly_->update(gone_pieces, added_pieces, apexes, lookup, serial);
  }
  if (!compiled.table) {
    std::unique_ptr<ZonePiece> current;
    ZoneAssembly::PieceSequence services = [&](size_t index) -> const ZonePiece* {
      if (index >= entries.size()) return nullptr;
      if (index == 0 && proxied) proxied_at = proxied->begin();
      const store::ServiceEntry& entry = *entries[index];
      current = builder_->service(
          entry, proxied ? proxiedFor(entry.service, *proxied, proxied_at) : nullptr);
      return current.get();
    };
    made_again.clear();
    compiled.table = assembly_->rebuild(builder_->staticZones(), entries.size() * 7 + 64, services,
                                        apexes, lookup, serial);
    compiled.rebuilt = true;
  }
  if (!compiled.table) {
    compiled.table = AnswerTable::build(snapshot, options_, proxied);
    compiled.whole = true;
  }
  return compiled;
}

}  // namespace svcbox::dns
