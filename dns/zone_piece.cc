#include "dns/zone_piece.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <tuple>
#include <unordered_map>

#include "dns/service_records.h"
#include "dns/wire.h"

namespace svcbox::dns {
namespace {

// Kubernetes DNS specification, "schema version" record.
constexpr std::string_view kDnsSchemaVersion = "1.1.0";
constexpr uint32_t kSoaRefresh = 7200;
constexpr uint32_t kSoaRetry = 1800;
constexpr uint32_t kSoaExpire = 86400;
// Reverse zones are cut at octet (IPv4) or nibble (IPv6) boundaries; a wide service CIDR is
// covered by several, but never by more than this many.
constexpr int kMaxSplitBits = 8;
constexpr int kHeadlessReversePrefixV4 = 24;
constexpr int kHeadlessReversePrefixV6 = 64;

struct Draft {
  uint32_t id = 0;
  int zone = -1;
  bool is_alias = false;
  std::string_view name;  // in the builder's arena
};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const { return hashName(name); }
};

// Names copied into large blocks: views of them stay valid until clear(), and tens of thousands
// of names cost a handful of allocations.
class NameArena {
 public:
  std::string_view add(std::string_view name) {
    if (block_ == blocks_.size() || used_ + name.size() > kBlockSize) {
      if (block_ < blocks_.size()) ++block_;
      if (block_ == blocks_.size()) blocks_.push_back(std::make_unique<char[]>(kBlockSize));
      used_ = 0;
    }
    char* at = blocks_[block_].get() + used_;
    std::memcpy(at, name.data(), name.size());
    used_ += name.size();
    return {at, name.size()};
  }

  // Keeps the blocks for the next piece.
  void clear() {
    block_ = 0;
    used_ = 0;
  }

 private:
  static constexpr size_t kBlockSize = 64 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t block_ = 0;
  size_t used_ = 0;
};

// Open addressing from a name to its draft, without a node allocation per entry.
class DraftIndex {
 public:
  Draft* find(std::string_view name) const {
    if (slots_.empty()) return nullptr;
    uint64_t hash = hashName(name);
    for (size_t slot = hash & mask_;; slot = (slot + 1) & mask_) {
      const Slot& candidate = slots_[slot];
      if (!candidate.draft) return nullptr;
      if (candidate.hash == hash && candidate.draft->name == name) return candidate.draft;
    }
  }

  void reserve(size_t count) {
    while (slots_.size() < count * 2) grow();
  }

  void insert(Draft* draft) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    place(Slot{hashName(draft->name), draft});
    ++count_;
  }

  // Small tables are wiped and kept; a large one (a whole zone's) is let go.
  void clear() {
    if (slots_.size() > kKeptSlots) {
      slots_.clear();
      mask_ = 0;
    } else if (count_ > 0) {
      std::fill(slots_.begin(), slots_.end(), Slot{});
    }
    count_ = 0;
  }

 private:
  static constexpr size_t kKeptSlots = 1024;
  struct Slot {
    uint64_t hash = 0;
    Draft* draft = nullptr;
  };

  void place(const Slot& entry) {
    size_t slot = entry.hash & mask_;
    while (slots_[slot].draft) slot = (slot + 1) & mask_;
    slots_[slot] = entry;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(64, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    for (const auto& entry : old) {
      if (entry.draft) place(entry);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// The reverse zones that cover `cidr`, cut at the next octet or nibble boundary.
std::vector<std::string> reverseZones(const store::Cidr& cidr) {
  int step = cidr.base.isV4() ? 8 : 4;
  int boundary = (cidr.prefix_length + step - 1) / step * step;
  int split_bits = std::min(boundary - cidr.prefix_length, kMaxSplitBits);
  boundary = cidr.prefix_length + split_bits;
  std::vector<std::string> zones;
  for (uint64_t i = 0; i < (uint64_t{1} << split_bits); ++i) {
    store::IpAddress address = cidr.base;
    // Set the split bits just below the prefix.
    for (int bit = 0; bit < split_bits; ++bit) {
      if (!((i >> (split_bits - 1 - bit)) & 1)) continue;
      int position = cidr.prefix_length + bit;
      address.bytes[position / 8] |= static_cast<uint8_t>(0x80 >> (position % 8));
    }
    std::string full = reverseName(address);
    // Drop the labels below the boundary: one per octet or nibble.
    size_t labels_to_drop =
        static_cast<size_t>((static_cast<int>(address.size()) * 8 - boundary) / step);
    size_t offset = 0;
    for (size_t label = 0; label < labels_to_drop; ++label) {
      offset += 1 + static_cast<uint8_t>(full[offset]);
    }
    zones.push_back(full.substr(offset));
  }
  return zones;
}

std::string reverseZoneOf(const store::IpAddress& address) {
  store::Cidr cidr{address, address.isV4() ? kHeadlessReversePrefixV4 : kHeadlessReversePrefixV6};
  for (size_t bit = static_cast<size_t>(cidr.prefix_length); bit < address.size() * 8; ++bit) {
    cidr.base.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return reverseZones(cidr).front();
}

class Fingerprint {
 public:
  void add(std::string_view text) {
    mix(text.size());
    mix(hashName(text));
  }
  void add(const store::IpAddress& ip) {
    mix(static_cast<uint64_t>(ip.family));
    add(std::string_view(reinterpret_cast<const char*>(ip.bytes.data()), ip.bytes.size()));
  }
  void mix(uint64_t value) {
    state_ = (state_ ^ value) * 0x100000001B3ull;
    state_ ^= state_ >> 29;
  }
  uint64_t value() const { return state_; }

 private:
  uint64_t state_ = 0xCBF29CE484222325ull;
};

}  // namespace

uint64_t serviceFingerprint(const store::ServiceEntry& entry, const ProxiedService* proxied) {
  Fingerprint print;
  const store::Service& service = entry.service;
  print.add(service.namespace_name);
  print.add(service.name);
  print.mix(static_cast<uint64_t>(service.type));
  print.add(service.external_name);
  print.mix(service.headless);
  print.mix(service.cluster_ip.has_value());
  if (service.cluster_ip) print.add(*service.cluster_ip);
  for (const auto& port : service.ports) {
    print.add(port.name);
    print.mix((static_cast<uint64_t>(port.protocol) << 16) | port.port);
  }
  print.mix(proxied != nullptr);
  if (proxied) {
    print.add(proxied->address);
    for (const auto& [key, listener] : proxied->ports) {
      print.mix((static_cast<uint64_t>(key.first) << 32) | (uint64_t{key.second} << 16) | listener);
    }
  }
  if (!service.headless) return print.value();  // only headless Services show their endpoints
  for (const auto& endpoint : entry.endpoints) {
    print.mix(endpoint.ready);
    if (!endpoint.ready) continue;
    print.add(endpoint.ip);
    print.add(endpoint.hostname);
    for (uint16_t port : endpoint.ports) print.mix(port);
  }
  return print.value();
}

uint64_t zoneFingerprint(const store::Snapshot& snapshot) {
  Fingerprint print;
  const auto& service_cidr = snapshot.serviceCidr();
  print.mix(service_cidr.has_value());
  if (service_cidr) {
    print.add(service_cidr->base);
    print.mix(static_cast<uint64_t>(service_cidr->prefix_length));
  }
  for (const auto& entry : snapshot.services()) print.mix(serviceFingerprint(entry, {}));
  return print.value();
}

AnswerEncoder::AnswerEncoder(const ZoneOptions& options, uint32_t serial)
    : ttl_(options.ttl), serial_(serial) {
  std::string domain = nameToWire(options.domain);
  ns_name_ = joinWire("ns", joinWire("dns", domain));
  hostmaster_ = joinWire("hostmaster", domain);
}

std::vector<uint8_t> AnswerEncoder::soaWithoutOwner() const {
  std::vector<uint8_t> soa;
  auto u16 = [&soa](uint16_t value) {
    soa.push_back(static_cast<uint8_t>(value >> 8));
    soa.push_back(static_cast<uint8_t>(value));
  };
  auto u32 = [&u16](uint32_t value) {
    u16(static_cast<uint16_t>(value >> 16));
    u16(static_cast<uint16_t>(value));
  };
  u16(kTypeSoa);
  u16(kClassIn);
  u32(ttl_);
  u16(static_cast<uint16_t>(ns_name_.size() + hostmaster_.size() + 20));
  for (char c : ns_name_) soa.push_back(static_cast<uint8_t>(c));
  for (char c : hostmaster_) soa.push_back(static_cast<uint8_t>(c));
  for (uint32_t value : {serial_, kSoaRefresh, kSoaRetry, kSoaExpire, ttl_}) u32(value);
  return soa;
}

void AnswerEncoder::writeRdata(const Record& record) {
  switch (record.type) {
    case kTypeA:
    case kTypeAaaa:
      writer_.bytes(record.ip.bytes.data(), record.ip.size());
      break;
    case kTypeCname:
    case kTypePtr:
    case kTypeNs:
      writer_.name(record.target);
      break;
    case kTypeSrv:
      writer_.u16(0);  // priority
      writer_.u16(record.weight);
      writer_.u16(record.port);
      writer_.name(record.target, false);  // RFC 2782: no compression in the target
      break;
    case kTypeTxt:
      writer_.characterString(record.target);
      break;
    case kTypeSoa:
      writer_.name(ns_name_);
      writer_.name(hostmaster_);
      writer_.u32(serial_);
      writer_.u32(kSoaRefresh);
      writer_.u32(kSoaRetry);
      writer_.u32(kSoaExpire);
      writer_.u32(ttl_);
      break;
  }
}

void AnswerEncoder::encode(std::string_view name, std::span<const Record> records,
                           const GlueLookup& glue, std::vector<AnswerTable::Answer>& answers,
                           std::vector<uint8_t>& data) {
  for (size_t begin = 0; begin < records.size();) {
    size_t end = begin;
    while (end < records.size() && records[end].type == records[begin].type) ++end;
    encodeAnswer(name, records.subspan(begin, end - begin), glue, answers, data);
    begin = end;
  }
}

void AnswerEncoder::encodeAnswer(std::string_view name, std::span<const Record> records,
                                 const GlueLookup& glue, std::vector<AnswerTable::Answer>& answers,
                                 std::vector<uint8_t>& data) {
  writer_.reset(name);
  AnswerTable::Answer answer;
  answer.type = records.front().type;
  for (const auto& record : records) {
    writer_.begin(name, record.type, ttl_);
    writeRdata(record);
    writer_.end();
    ++answer.answer_count;
  }
  if (answer.type == kTypeSrv || answer.type == kTypeNs) {
    for (size_t i = 0; i < records.size(); ++i) {
      bool seen = false;
      for (size_t j = 0; j < i && !seen; ++j) seen = records[j].target == records[i].target;
      if (seen) continue;
      Glue found = glue(records[i].target);
      for (const auto& record : found.records) {
        if (record.type != kTypeA && record.type != kTypeAaaa) continue;
        writer_.begin(found.name, record.type, ttl_);
        writeRdata(record);
        writer_.end();
        ++answer.additional_count;
      }
    }
  }
  answer.offset = static_cast<uint32_t>(data.size());
  answer.length = static_cast<uint32_t>(writer_.tail().size());
  data.insert(data.end(), writer_.tail().begin(), writer_.tail().end());
  answers.push_back(answer);
}

// Gathers names and records, then encodes them into a piece.
class PieceBuilder::Impl : public ServiceRecordSink {
 public:
  Impl(const ZoneOptions& options, const std::optional<store::Cidr>& service_cidr, uint32_t serial)
      : options_(options), encoder_(options, serial) {
    domain_ = nameToWire(options.domain);
    svc_ = nameToWire("svc");
    ns_name_ = joinWire("ns", joinWire("dns", domain_));
    schema_version_ = std::string(kDnsSchemaVersion);
    registerZone(domain_);
    registerZone(svc_);
    if (service_cidr) {
      for (const auto& zone : reverseZones(*service_cidr)) registerZone(zone);
    }
    static_zone_count_ = zone_apexes_.size();
    service_zones_ = {domain_, svc_, zone_index_.find(domain_)->second,
                      zone_index_.find(svc_)->second};
  }

  std::vector<std::string> staticZones() const {
    return {zone_apexes_.begin(),
            zone_apexes_.begin() + static_cast<ptrdiff_t>(static_zone_count_)};
  }

  std::unique_ptr<ZonePiece> whole(const store::Snapshot& snapshot,
                                   const ProxiedServices* proxied) {
    start(Kind::kWhole, snapshot.services().size());
    addGlobalNames();
    for (const auto& entry : snapshot.services()) {
      const ProxiedService* found = nullptr;
      if (proxied) {
        auto it = proxied->find({entry.service.namespace_name, entry.service.name});
        if (it != proxied->end()) found = &it->second;
      }
      addService(entry, found);
    }
    return finish();
  }

  std::unique_ptr<ZonePiece> global(std::span<const std::string> dynamic_zones) {
    start(Kind::kGlobal, 0);
    for (const auto& apex : dynamic_zones) addZone(apex);
    addGlobalNames();
    return finish();
  }

  std::unique_ptr<ZonePiece> service(const store::ServiceEntry& entry,
                                     const ProxiedService* proxied) {
    start(Kind::kService, 1);
    addService(entry, proxied);
    auto piece = finish();
    piece->order = entry.service.namespace_name + '\0' + entry.service.name;
    return piece;
  }

 private:
  // kWhole: every name of a snapshot; kGlobal: the apexes and svcbox's own names; kService: one
  // Service's names, without the apexes of the zones they are in.
  enum class Kind { kWhole, kGlobal, kService };

  void start(Kind kind, size_t services) {
    kind_ = kind;
    for (size_t i = static_zone_count_; i < zone_apexes_.size(); ++i) {
      zone_index_.erase(zone_apexes_[i]);
    }
    zone_apexes_.resize(static_zone_count_);
    arena_.clear();
    drafts_.clear();
    index_.clear();
    records_.clear();
    // About seven names per Service (two forms, SRV names, a PTR); growing costs rehashes.
    index_.reserve(services * 8 + (kind == Kind::kService ? 8 : 64));
    records_.reserve(services * 6 + 64);
    if (kind_ == Kind::kService) return;
    for (size_t zone = 0; zone < static_zone_count_; ++zone) addApexRecords(static_cast<int>(zone));
  }

  void addGlobalNames() {
    Draft& version = draft(joinWire("dns-version", domain_), 0);
    addRecord(version, kTypeTxt, schema_version_);
    Draft& ns = draft(ns_name_, 0);
    if (options_.ns_address) addAddress(ns, *options_.ns_address);
  }

  int registerZone(const std::string& apex) {
    auto found = zone_index_.find(apex);
    if (found != zone_index_.end()) return found->second;
    int index = static_cast<int>(zone_apexes_.size());
    zone_apexes_.push_back(apex);
    zone_index_[apex] = index;
    return index;
  }

  void addApexRecords(int zone) {
    Draft& apex_draft = draft(zone_apexes_[static_cast<size_t>(zone)], zone);
    addRecord(apex_draft, kTypeSoa, {});
    addRecord(apex_draft, kTypeNs, ns_name_);
  }

  // A zone found while names are added: a piece of one Service only names it.
  int addZone(const std::string& apex) {
    size_t before = zone_apexes_.size();
    int zone = registerZone(apex);
    if (zone_apexes_.size() > before && kind_ != Kind::kService) addApexRecords(zone);
    return zone;
  }

  // The draft for a name, creating it and its empty non-terminal ancestors up to the apex.
  Draft& draft(std::string_view name, int zone) {
    if (Draft* found = index_.find(name)) return *found;
    Draft& created = insert(name, zone);
    size_t apex_size = zone_apexes_[static_cast<size_t>(zone)].size();
    size_t offset = 0;
    while (name.size() - offset > apex_size) {
      offset += 1 + static_cast<uint8_t>(name[offset]);
      std::string_view ancestor = name.substr(offset);
      if (name.size() - offset == apex_size || index_.find(ancestor)) break;
      insert(ancestor, zone);
    }
    return created;
  }

  Draft& insert(std::string_view name, int zone) {
    Draft& created = drafts_.emplace_back();
    created.id = static_cast<uint32_t>(drafts_.size() - 1);
    created.zone = zone;
    created.name = arena_.add(name);
    index_.insert(&created);
    return created;
  }

  void addRecord(const Draft& owner, uint16_t type, std::string_view target, uint16_t weight = 0,
                 uint16_t port = 0) {
    Record record;
    record.owner = owner.id;
    record.type = type;
    record.target = target;
    record.weight = weight;
    record.port = port;
    records_.push_back(record);
  }

  void addAddress(const Draft& owner, const store::IpAddress& ip) {
    Record record;
    record.owner = owner.id;
    record.type = ip.isV4() ? kTypeA : kTypeAaaa;
    record.ip = ip;
    records_.push_back(record);
  }

  // A stable copy of a name that may not be a draft (a CNAME target outside the zone).
  std::string_view keep(std::string_view name) {
    if (Draft* found = index_.find(name)) return found->name;
    return arena_.add(name);
  }

  void addPtr(const store::IpAddress& address, std::string_view target) {
    std::string name = reverseName(address);
    // The longest reverse zone that holds the address; headless pods get a /24 (/64) of their own.
    int zone = -1;
    for (size_t offset = 0; offset < name.size() && name[offset] != 0;
         offset += 1 + static_cast<uint8_t>(name[offset])) {
      auto found = zone_index_.find(name.substr(offset));
      if (found != zone_index_.end()) {
        zone = found->second;
        break;
      }
    }
    if (zone < 0) zone = addZone(reverseZoneOf(address));
    addRecord(draft(name, zone), kTypePtr, target);
  }

  void addService(const store::ServiceEntry& entry, const ProxiedService* proxied) {
    addServiceRecords(entry, proxied, service_zones_, *this);
  }

  // ServiceRecordSink: what a Service yields (service_records.h), drafted here.
  std::string_view address(std::string_view name, int zone, const store::IpAddress& ip) override {
    Draft& node = draft(name, zone);
    addAddress(node, ip);
    return node.name;
  }
  void service(std::string_view name, int zone, std::string_view target, uint16_t weight,
               uint16_t port) override {
    addRecord(draft(name, zone), kTypeSrv, target, weight, port);
  }
  void alias(std::string_view name, int zone, std::string_view target) override {
    Draft& node = draft(name, zone);
    node.is_alias = true;
    addRecord(node, kTypeCname, keep(target));
  }
  void pointer(const store::IpAddress& address, std::string_view target) override {
    addPtr(address, target);
  }

  std::unique_ptr<ZonePiece> finish() {
    auto piece = std::make_unique<ZonePiece>();
    piece->static_zone_count = static_cast<uint16_t>(static_zone_count_);
    if (kind_ != Kind::kService) {
      piece->static_zones.assign(zone_apexes_.begin(),
                                 zone_apexes_.begin() + static_cast<ptrdiff_t>(static_zone_count_));
    }
    piece->dynamic_zones.assign(zone_apexes_.begin() + static_cast<ptrdiff_t>(static_zone_count_),
                                zone_apexes_.end());
    // Group records by owner, then type, keeping the order they were added in.
    std::stable_sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) {
      return a.owner != b.owner ? a.owner < b.owner : a.type < b.type;
    });
    dropDuplicateRecords();
    first_record_.assign(drafts_.size() + 1, 0);
    for (const auto& record : records_) ++first_record_[record.owner + 1];
    for (size_t i = 1; i < first_record_.size(); ++i) first_record_[i] += first_record_[i - 1];

    size_t name_bytes = 0;
    for (const Draft& item : drafts_) name_bytes += item.name.size();
    piece->names.reserve(name_bytes);
    piece->nodes.reserve(drafts_.size());
    AnswerEncoder::GlueLookup glue = [this](std::string_view target) {
      Draft* found = index_.find(target);
      if (!found) return AnswerEncoder::Glue{};
      return AnswerEncoder::Glue{found->name, recordsOf(found->id)};
    };
    for (const Draft& item : drafts_) {
      ZonePiece::Node node;
      node.hash = hashName(item.name);
      node.name_offset = static_cast<uint32_t>(piece->names.size());
      node.name_length = static_cast<uint8_t>(item.name.size());
      node.zone = static_cast<uint16_t>(item.zone);
      node.apex_offset = static_cast<uint8_t>(item.name.size() -
                                              zone_apexes_[static_cast<size_t>(item.zone)].size());
      node.is_alias = item.is_alias;
      node.first_record = first_record_[item.id];
      node.record_count = first_record_[item.id + 1] - first_record_[item.id];
      node.first_answer = static_cast<uint32_t>(piece->answers.size());
      piece->names.append(item.name);
      encoder_.encode(item.name, recordsOf(item.id), glue, piece->answers, piece->data);
      node.answer_count = static_cast<uint16_t>(piece->answers.size() - node.first_answer);
      piece->nodes.push_back(node);
    }
    keepRecords(*piece);
    return piece;
  }

  // RFC 2181 §5: a set holds a record once. Two endpoints that share a hostname (or an address)
  // would otherwise give one SRV (or A) record twice. The first of equal records is kept, so the
  // order stays the order they were added in. Runs on records grouped by owner and type.
  void dropDuplicateRecords() {
    auto key = [](const Record& r) { return std::tie(r.weight, r.port, r.ip, r.target); };
    std::vector<uint32_t> order;
    std::vector<bool> dropped(records_.size(), false);
    bool any = false;
    for (size_t begin = 0, end = 0; begin < records_.size(); begin = end) {
      for (end = begin + 1; end < records_.size() && records_[end].owner == records_[begin].owner &&
                            records_[end].type == records_[begin].type;
           ++end) {
      }
      if (end - begin < 2) continue;
      order.resize(end - begin);
      for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(begin + i);
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return key(records_[a]) < key(records_[b]); });
      for (size_t i = 1; i < order.size(); ++i) {
        if (key(records_[order[i]]) == key(records_[order[i - 1]])) dropped[order[i]] = any = true;
      }
    }
    if (!any) return;
    size_t kept = 0;
    for (size_t i = 0; i < records_.size(); ++i) {
      if (!dropped[i]) records_[kept++] = records_[i];
    }
    records_.resize(kept);
  }

  // The records, with their targets moved into the piece (the drafts' arena is reused).
  void keepRecords(ZonePiece& piece) {
    std::vector<uint32_t> target_offsets;
    target_offsets.reserve(records_.size());
    for (const auto& record : records_) {
      target_offsets.push_back(static_cast<uint32_t>(piece.targets.size()));
      piece.targets.append(record.target);
    }
    piece.records = records_;
    for (size_t i = 0; i < piece.records.size(); ++i) {
      Record& record = piece.records[i];
      record.target =
          std::string_view(piece.targets).substr(target_offsets[i], record.target.size());
    }
  }

  std::span<const Record> recordsOf(uint32_t id) const {
    return std::span(records_).subspan(first_record_[id],
                                       first_record_[id + 1] - first_record_[id]);
  }

  const ZoneOptions& options_;
  AnswerEncoder encoder_;
  Kind kind_ = Kind::kWhole;
  std::string domain_;
  std::string svc_;
  ServiceZones service_zones_;  // the zones of a Service's two forms, for service_records
  std::string ns_name_;
  std::string schema_version_;
  size_t static_zone_count_ = 0;
  std::vector<std::string> zone_apexes_;
  std::unordered_map<std::string, int, NameHash, std::equal_to<>> zone_index_;
  NameArena arena_;
  std::deque<Draft> drafts_;  // by id; a deque keeps references valid while it grows
  DraftIndex index_;
  std::vector<Record> records_;
  std::vector<uint32_t> first_record_;
};

PieceBuilder::PieceBuilder(const ZoneOptions& options,
                           const std::optional<store::Cidr>& service_cidr, uint32_t serial)
    : impl_(std::make_unique<Impl>(options, service_cidr, serial)) {}
PieceBuilder::~PieceBuilder() = default;

std::vector<std::string> PieceBuilder::staticZones() const { return impl_->staticZones(); }

std::unique_ptr<ZonePiece> PieceBuilder::whole(const store::Snapshot& snapshot,
                                               const ProxiedServices* proxied) {
  return impl_->whole(snapshot, proxied);
}
std::unique_ptr<ZonePiece> PieceBuilder::global(std::span<const std::string> dynamic_zones) {
  return impl_->global(dynamic_zones);
}
std::unique_ptr<ZonePiece> PieceBuilder::service(const store::ServiceEntry& entry,
                                                 const ProxiedService* proxied) {
  return impl_->service(entry, proxied);
}

}  // namespace svcbox::dns
