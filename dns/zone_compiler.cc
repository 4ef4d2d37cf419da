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

bool sameProxy(const std::unique_ptr<ProxiedService>& before, const ProxiedService* now) {
  return now ? before && *before == *now : !before;
}

}  // namespace

ZoneCompiler::ZoneCompiler(ZoneOptions options)
    : options_(std::move(options)), assembly_(std::make_unique<ZoneAssembly>(options_)) {}
ZoneCompiler::~ZoneCompiler() = default;

ZoneCompiler::Compiled ZoneCompiler::compile(const store::Snapshot& snapshot,
                                             const ProxiedServices* proxied) {
  Compiled compiled;
  bool from_scratch = !builder_ || snapshot.serviceCidr() != service_cidr_;
  if (from_scratch) {
    // Every piece names its reverse zones by the service CIDR's.
    service_cidr_ = snapshot.serviceCidr();
    builder_ = std::make_unique<PieceBuilder>(options_, service_cidr_, 0);
    parts_.clear();
  }
  std::vector<Part> removed;
  std::vector<std::unique_ptr<ZonePiece>> added;
  const auto& entries = snapshot.sharedServices();
  std::vector<Part> next;
  next.reserve(entries.size());
  ProxiedServices::const_iterator proxied_at;
  if (proxied) proxied_at = proxied->begin();
  size_t old = 0;
  for (const auto& entry : entries) {
    const store::Service& service = entry->service;
    const ProxiedService* serving = proxied ? proxiedFor(service, *proxied, proxied_at) : nullptr;
    if (old < parts_.size() && parts_[old].entry != entry) {
      while (old < parts_.size() && compareKeys(parts_[old].entry->service, service) < 0) {
        removed.push_back(std::move(parts_[old++]));
      }
    }
    Part* previous = nullptr;
    if (old < parts_.size() &&
        (parts_[old].entry == entry || compareKeys(parts_[old].entry->service, service) == 0)) {
      previous = &parts_[old++];
    }
    Part part;
    if (previous && previous->entry == entry && sameProxy(previous->proxied, serving)) {
      next.push_back(std::move(*previous));
      continue;
    }
    part.entry = entry;
    if (serving) part.proxied = std::make_unique<ProxiedService>(*serving);
    if (previous && serviceFingerprint(*previous->entry, previous->proxied.get()) ==
                        serviceFingerprint(*entry, serving)) {
      // A change DNS does not show (a ClusterIP Service's pod became ready, say).
      next.push_back(std::move(part));
      continue;
    }
    if (previous) removed.push_back(std::move(*previous));
    if (!from_scratch) added.push_back(builder_->service(*entry, serving));
    ++compiled.encoded;
    next.push_back(std::move(part));
  }
  while (old < parts_.size()) removed.push_back(std::move(parts_[old++]));
  parts_ = std::move(next);
  if (!from_scratch && removed.empty() && added.empty()) return compiled;

  auto serial = static_cast<uint32_t>(snapshot.version());
  // Pieces the assembly asks for again: a Service's that shares a name with one that changed.
  std::unordered_map<std::string, std::unique_ptr<ZonePiece>> made_again;
  ZoneAssembly::PieceLookup lookup = [&](std::string_view order) -> const ZonePiece& {
    if (order.empty()) return *global_;
    auto& piece = made_again[std::string(order)];
    if (!piece) {
      size_t split = order.find('\0');
      std::string_view namespace_name = order.substr(0, split);
      std::string_view name = order.substr(split + 1);
      auto at = std::lower_bound(parts_.begin(), parts_.end(), order, [&](const Part& part, auto) {
        const store::Service& service = part.entry->service;
        int c = service.namespace_name.compare(namespace_name);
        return c != 0 ? c < 0 : service.name.compare(name) < 0;
      });
      piece = builder_->service(*at->entry, at->proxied.get());
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
    for (const auto& part : removed)
      gone.push_back(builder_->service(*part.entry, part.proxied.get()));
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
      if (index >= parts_.size()) return nullptr;
      current = builder_->service(*parts_[index].entry, parts_[index].proxied.get());
      return current.get();
    };
    made_again.clear();
    compiled.table = assembly_->rebuild(builder_->staticZones(), parts_.size() * 7 + 64, services,
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
