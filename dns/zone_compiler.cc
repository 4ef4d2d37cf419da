#include "dns/zone_compiler.h"

#include <string_view>
#include <unordered_set>

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

bool sameProxy(const std::optional<ProxiedService>& before, const ProxiedService* now) {
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
  // What went and what came, kept alive until the table no longer refers to the pieces that went.
  std::vector<ZonePiecePtr> removed;
  std::vector<const ZonePiece*> added;
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
        removed.push_back(std::move(parts_[old++].piece));
      }
    }
    Part* previous = nullptr;
    if (old < parts_.size() &&
        (parts_[old].entry == entry || compareKeys(parts_[old].entry->service, service) == 0)) {
      previous = &parts_[old++];
    }
    Part part;
    if (previous && previous->entry == entry && sameProxy(previous->proxied, serving)) {
      part = std::move(*previous);
    } else {
      part.entry = entry;
      if (serving) part.proxied = *serving;
      part.fingerprint = serviceFingerprint(*entry, serving);
      if (previous && previous->fingerprint == part.fingerprint) {
        // A change DNS does not show (a ClusterIP Service's pod became ready, say).
        part.piece = std::move(previous->piece);
      } else {
        if (previous) removed.push_back(std::move(previous->piece));
        part.piece = builder_->service(*entry, serving);
        added.push_back(part.piece.get());
        ++compiled.encoded;
      }
    }
    next.push_back(std::move(part));
  }
  while (old < parts_.size()) removed.push_back(std::move(parts_[old++].piece));
  parts_ = std::move(next);
  if (!from_scratch && removed.empty() && added.empty()) return compiled;

  auto serial = static_cast<uint32_t>(snapshot.version());
  std::vector<std::string> dynamic_zones;
  std::unordered_set<std::string_view> seen;
  for (const auto& part : parts_) {
    for (const auto& apex : part.piece->dynamic_zones) {
      if (seen.insert(apex).second) dynamic_zones.push_back(apex);
    }
  }
  // The apexes' piece is new every time: their SOA records carry the snapshot's version.
  if (global_) removed.push_back(std::move(global_));
  global_ = PieceBuilder(options_, service_cidr_, serial).global(dynamic_zones);
  added.push_back(global_.get());
  std::vector<const ZonePiece*> gone;
  gone.reserve(removed.size());
  for (const auto& piece : removed) gone.push_back(piece.get());
  if (!from_scratch) compiled.table = assembly_->update(gone, added, serial);
  if (!compiled.table) {
    std::vector<const ZonePiece*> pieces;
    pieces.reserve(parts_.size() + 1);
    pieces.push_back(global_.get());
    for (const auto& part : parts_) pieces.push_back(part.piece.get());
    compiled.table = assembly_->rebuild(pieces, serial);
    compiled.rebuilt = true;
  }
  if (!compiled.table) {
    compiled.table = AnswerTable::build(snapshot, options_, proxied);
    compiled.whole = true;
  }
  return compiled;
}

}  // namespace svcbox::dns
