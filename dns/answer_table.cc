#include "dns/answer_table.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>

#include "dns/record_writer.h"
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

// One record while a table is compiled. Names are pointers to strings that outlive the build
// (draft keys, the builder's own names), so a record costs no allocation of its own.
struct Record {
  uint32_t owner = 0;  // draft id
  uint16_t type = 0;
  uint16_t weight = 0;      // SRV
  uint16_t port = 0;        // SRV
  store::IpAddress ip;      // A, AAAA
  std::string_view target;  // CNAME, PTR, NS, SRV: wire name; TXT: the text
};

struct Draft {
  uint32_t id = 0;
  int zone = -1;
  bool is_alias = false;
  std::string_view name;  // in the builder's arena
};

struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view name) const;
};

// Names copied into large blocks: views of them stay valid, and tens of thousands of names cost a
// handful of allocations.
class NameArena {
 public:
  std::string_view add(std::string_view name) {
    if (blocks_.empty() || used_ + name.size() > kBlockSize) {
      blocks_.push_back(std::make_unique<char[]>(kBlockSize));
      used_ = 0;
    }
    char* at = blocks_.back().get() + used_;
    std::memcpy(at, name.data(), name.size());
    used_ += name.size();
    return {at, name.size()};
  }

 private:
  static constexpr size_t kBlockSize = 256 * 1024;
  std::vector<std::unique_ptr<char[]>> blocks_;
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

 private:
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

std::string joinWire(std::string_view label, std::string_view parent_wire) {
  std::string wire;
  wire.push_back(static_cast<char>(label.size()));
  for (char c : label) wire.push_back(static_cast<char>(lowerAscii(static_cast<uint8_t>(c))));
  wire.append(parent_wire);
  return wire;
}

std::string dashed(const store::IpAddress& address) {
  std::string text = address.toString();
  std::replace(text.begin(), text.end(), address.isV4() ? '.' : ':', '-');
  return text;
}

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

}  // namespace

size_t NameHash::operator()(std::string_view name) const { return hashName(name); }

namespace {

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

uint64_t zoneFingerprint(const store::Snapshot& snapshot) {
  Fingerprint print;
  if (snapshot.serviceCidr()) {
    print.add(snapshot.serviceCidr()->base);
    print.mix(static_cast<uint64_t>(snapshot.serviceCidr()->prefix_length));
  }
  for (const auto& entry : snapshot.services()) {
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
    if (!service.headless) continue;  // only headless Services show their endpoints
    for (const auto& endpoint : entry.endpoints) {
      print.mix(endpoint.ready);
      if (!endpoint.ready) continue;
      print.add(endpoint.ip);
      print.add(endpoint.hostname);
      for (uint16_t port : endpoint.ports) print.mix(port);
    }
  }
  return print.value();
}

uint64_t hashName(std::string_view name) {
  uint64_t hash = 0x9E3779B97F4A7C15ull ^ name.size();
  size_t i = 0;
  for (; i + 8 <= name.size(); i += 8) {
    uint64_t chunk;
    std::memcpy(&chunk, name.data() + i, 8);
    hash = (hash ^ chunk) * 0xFF51AFD7ED558CCDull;
    hash ^= hash >> 32;
  }
  uint64_t rest = 0;
  std::memcpy(&rest, name.data() + i, name.size() - i);
  hash = (hash ^ rest) * 0xC4CEB9FE1A85EC53ull;
  return hash ^ (hash >> 29);
}

std::string reverseName(const store::IpAddress& address) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string wire;
  if (address.isV4()) {
    for (int i = 3; i >= 0; --i) {
      std::string octet = std::to_string(address.bytes[static_cast<size_t>(i)]);
      wire.push_back(static_cast<char>(octet.size()));
      wire.append(octet);
    }
    wire.append("\7in-addr\4arpa", 13);
  } else {
    for (int i = 15; i >= 0; --i) {
      uint8_t byte = address.bytes[static_cast<size_t>(i)];
      wire.push_back(1);
      wire.push_back(kHex[byte & 0xF]);
      wire.push_back(1);
      wire.push_back(kHex[byte >> 4]);
    }
    wire.append("\3ip6\4arpa", 9);
  }
  wire.push_back('\0');
  return wire;
}

// Gathers every name and record from a snapshot, then encodes them into an AnswerTable.
class TableBuilder {
 public:
  TableBuilder(const store::Snapshot& snapshot, const ZoneOptions& options,
               const ProxiedServices* proxied)
      : snapshot_(snapshot), options_(options), proxied_(proxied) {
    domain_ = nameToWire(options.domain);
    svc_ = nameToWire("svc");
    ns_name_ = joinWire("ns", joinWire("dns", domain_));
    hostmaster_ = joinWire("hostmaster", domain_);
    schema_version_ = std::string(kDnsSchemaVersion);
    // About seven names per Service (two forms, SRV names, a PTR); growing costs rehashes.
    index_.reserve(snapshot.services().size() * 8 + 64);
    records_.reserve(snapshot.services().size() * 6 + 64);
  }

  std::shared_ptr<const AnswerTable> build() {
    auto table = std::make_shared<AnswerTable>();
    addZone(domain_);
    addZone(svc_);
    if (snapshot_.serviceCidr()) {
      for (const auto& zone : reverseZones(*snapshot_.serviceCidr())) addZone(zone);
    }
    Draft& version = draft(joinWire("dns-version", domain_), zoneIndex(domain_));
    addRecord(version, kTypeTxt, schema_version_);
    Draft& ns = draft(ns_name_, zoneIndex(domain_));
    if (options_.ns_address) addAddress(ns, *options_.ns_address);
    for (const auto& entry : snapshot_.services()) addService(entry);
    encode(*table);
    return table;
  }

 private:
  int zoneIndex(const std::string& apex) const { return zone_index_.find(apex)->second; }

  void addZone(const std::string& apex) {
    if (zone_index_.count(apex)) return;
    int index = static_cast<int>(zone_apexes_.size());
    zone_apexes_.push_back(apex);
    zone_index_[apex] = index;
    Draft& apex_draft = draft(apex, index);
    addRecord(apex_draft, kTypeSoa, {});
    addRecord(apex_draft, kTypeNs, ns_name_);
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
      if (index_.find(ancestor)) break;
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
    if (zone < 0) {
      std::string apex = reverseZoneOf(address);
      addZone(apex);
      zone = zoneIndex(apex);
    }
    addRecord(draft(name, zone), kTypePtr, target);
  }

  void addService(const store::ServiceEntry& entry) {
    const store::Service& service = entry.service;
    std::string full =
        joinWire(service.name, joinWire(service.namespace_name, joinWire("svc", domain_)));
    std::string short_form = joinWire(service.name, joinWire(service.namespace_name, svc_));
    addServiceAt(entry, full, zoneIndex(domain_));
    addServiceAt(entry, short_form, zoneIndex(svc_));
    if (service.type == store::ServiceType::kClusterIP && !service.headless && service.cluster_ip) {
      addPtr(*service.cluster_ip, index_.find(full)->name);
    }
    if (service.headless) {
      for (const auto& endpoint : entry.endpoints) {
        if (!endpoint.ready) continue;
        addPtr(endpoint.ip, index_.find(joinWire(hostnameOf(endpoint), full))->name);
      }
    }
  }

  static std::string hostnameOf(const store::Endpoint& endpoint) {
    return endpoint.hostname.empty() ? dashed(endpoint.ip) : endpoint.hostname;
  }

  // The Service's names under one of its two forms (full or short).
  void addServiceAt(const store::ServiceEntry& entry, const std::string& name, int zone) {
    const store::Service& service = entry.service;
    if (service.type == store::ServiceType::kExternalName) {
      Draft& alias = draft(name, zone);
      alias.is_alias = true;
      addRecord(alias, kTypeCname, keep(nameToWire(service.external_name)));
      return;
    }
    if (!service.headless) {
      if (!service.cluster_ip) return;
      const ProxiedService* proxied = nullptr;
      if (proxied_) {
        auto it = proxied_->find({service.namespace_name, service.name});
        if (it != proxied_->end()) proxied = &it->second;
      }
      Draft& node = draft(name, zone);
      addAddress(node, proxied ? proxied->address : *service.cluster_ip);
      for (const auto& port : service.ports) {
        if (port.name.empty()) continue;
        uint16_t number = port.port;
        if (proxied) {
          auto it = proxied->ports.find({port.protocol, port.port});
          if (it != proxied->ports.end()) number = it->second;
        }
        addRecord(draft(srvName(port, name), zone), kTypeSrv, node.name, 100, number);
      }
      return;
    }
    // Headless: the ready endpoints themselves. No ready endpoint: the name does not exist.
    size_t ready = 0;
    for (const auto& endpoint : entry.endpoints) ready += endpoint.ready;
    if (ready == 0) return;
    auto weight = static_cast<uint16_t>(std::max<size_t>(1, 100 / ready));
    for (const auto& endpoint : entry.endpoints) {
      if (!endpoint.ready) continue;
      addAddress(draft(name, zone), endpoint.ip);
      Draft& host = draft(joinWire(hostnameOf(endpoint), name), zone);
      addAddress(host, endpoint.ip);
      for (size_t i = 0; i < service.ports.size(); ++i) {
        const auto& port = service.ports[i];
        if (port.name.empty() || i >= endpoint.ports.size() || endpoint.ports[i] == 0) continue;
        addRecord(draft(srvName(port, name), zone), kTypeSrv, host.name, weight, endpoint.ports[i]);
      }
    }
  }

  static std::string srvName(const store::ServicePort& port, const std::string& service_name) {
    return joinWire(
        "_" + port.name,
        joinWire(port.protocol == store::Protocol::kTcp ? "_tcp" : "_udp", service_name));
  }

  std::vector<uint8_t> soaWithoutOwner(uint32_t serial) const {
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
    u32(options_.ttl);
    u16(static_cast<uint16_t>(ns_name_.size() + hostmaster_.size() + 20));
    for (char c : ns_name_) soa.push_back(static_cast<uint8_t>(c));
    for (char c : hostmaster_) soa.push_back(static_cast<uint8_t>(c));
    for (uint32_t value : {serial, kSoaRefresh, kSoaRetry, kSoaExpire, options_.ttl}) u32(value);
    return soa;
  }

  void writeRdata(const Record& record) {
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
        writer_.u32(static_cast<uint32_t>(snapshot_.version()));
        writer_.u32(kSoaRefresh);
        writer_.u32(kSoaRetry);
        writer_.u32(kSoaExpire);
        writer_.u32(options_.ttl);
        break;
    }
  }

  std::span<const Record> recordsOf(uint32_t id) const {
    return std::span(records_).subspan(first_record_[id],
                                       first_record_[id + 1] - first_record_[id]);
  }

  // Address records of `name` for the additional section, if it has any.
  uint16_t writeGlue(std::string_view name) {
    Draft* found = index_.find(name);
    if (!found) return 0;
    uint16_t count = 0;
    for (const auto& record : recordsOf(found->id)) {
      if (record.type != kTypeA && record.type != kTypeAaaa) continue;
      writer_.begin(found->name, record.type, options_.ttl);
      writeRdata(record);
      writer_.end();
      ++count;
    }
    return count;
  }

  void encode(AnswerTable& table) {
    for (const auto& apex : zone_apexes_) {
      table.zones_.push_back(
          AnswerTable::Zone{apex, soaWithoutOwner(static_cast<uint32_t>(snapshot_.version()))});
    }
    // Group records by owner, then type, keeping the order they were added in.
    std::stable_sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) {
      return a.owner != b.owner ? a.owner < b.owner : a.type < b.type;
    });
    first_record_.assign(drafts_.size() + 1, 0);
    for (const auto& record : records_) ++first_record_[record.owner + 1];
    for (size_t i = 1; i < first_record_.size(); ++i) first_record_[i] += first_record_[i - 1];

    table.nodes_.reserve(drafts_.size());
    size_t name_bytes = 0;
    for (const Draft& item : drafts_) {
      name_bytes += item.name.size() - zone_apexes_[static_cast<size_t>(item.zone)].size();
    }
    table.names_.reserve(name_bytes);
    std::vector<uint64_t> hashes;
    hashes.reserve(drafts_.size());
    for (const Draft& draft_item : drafts_) {
      const Draft* item = &draft_item;
      std::string_view name = item->name;
      AnswerTable::Node node;
      node.name_offset = static_cast<uint32_t>(table.names_.size());
      node.name_length = static_cast<uint8_t>(name.size());
      node.zone = static_cast<uint16_t>(item->zone);
      node.apex_offset =
          static_cast<uint8_t>(name.size() - zone_apexes_[static_cast<size_t>(item->zone)].size());
      table.names_.append(name.substr(0, node.apex_offset));
      hashes.push_back(hashName(name));
      auto records = recordsOf(item->id);
      if (item->is_alias && !records.empty()) {
        table.aliases_.push_back(wireToName(records.front().target));
        node.alias = static_cast<uint16_t>(table.aliases_.size());
      }
      node.first_answer = static_cast<uint32_t>(table.answers_.size());
      for (size_t begin = 0; begin < records.size();) {
        size_t end = begin;
        while (end < records.size() && records[end].type == records[begin].type) ++end;
        encodeAnswer(table, name, records.subspan(begin, end - begin));
        begin = end;
      }
      node.answer_count = static_cast<uint16_t>(table.answers_.size() - node.first_answer);
      table.nodes_.push_back(node);
    }
    table.answers_.shrink_to_fit();
    table.data_.shrink_to_fit();
    index(table, hashes);
  }

  void encodeAnswer(AnswerTable& table, std::string_view name, std::span<const Record> records) {
    writer_.reset(name);
    AnswerTable::Answer answer;
    answer.type = records.front().type;
    for (const auto& record : records) {
      writer_.begin(name, record.type, options_.ttl);
      writeRdata(record);
      writer_.end();
      ++answer.answer_count;
    }
    if (answer.type == kTypeSrv || answer.type == kTypeNs) {
      for (size_t i = 0; i < records.size(); ++i) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; ++j) seen = records[j].target == records[i].target;
        if (!seen) answer.additional_count += writeGlue(records[i].target);
      }
    }
    answer.offset = static_cast<uint32_t>(table.data_.size());
    answer.length = static_cast<uint32_t>(writer_.tail().size());
    table.data_.insert(table.data_.end(), writer_.tail().begin(), writer_.tail().end());
    table.answers_.push_back(answer);
  }

  static void index(AnswerTable& table, const std::vector<uint64_t>& hashes) {
    size_t capacity = 16;
    // Linear probing stays short below a load of about 0.6.
    while (capacity * 3 < table.nodes_.size() * 5) capacity *= 2;
    table.slots_.assign(capacity, {});
    table.mask_ = capacity - 1;
    for (size_t i = 0; i < table.nodes_.size(); ++i) {
      uint64_t hash = hashes[i];
      size_t slot = hash & table.mask_;
      while (table.slots_[slot].node != 0) slot = (slot + 1) & table.mask_;
      table.slots_[slot] = {static_cast<uint32_t>(hash >> 32), static_cast<uint32_t>(i + 1)};
    }
  }

  const store::Snapshot& snapshot_;
  const ZoneOptions& options_;
  const ProxiedServices* proxied_;
  std::string domain_;
  std::string svc_;
  std::string ns_name_;
  std::string hostmaster_;
  std::string schema_version_;
  std::vector<std::string> zone_apexes_;
  std::unordered_map<std::string, int, NameHash, std::equal_to<>> zone_index_;
  NameArena arena_;
  std::deque<Draft> drafts_;  // by id; a deque keeps references valid while it grows
  DraftIndex index_;
  std::vector<Record> records_;
  std::vector<uint32_t> first_record_;
  RecordWriter writer_;
};

std::shared_ptr<const AnswerTable> AnswerTable::build(const store::Snapshot& snapshot,
                                                      const ZoneOptions& options,
                                                      const ProxiedServices* proxied) {
  return TableBuilder(snapshot, options, proxied).build();
}

const AnswerTable::Node* AnswerTable::find(std::string_view lower_name) const {
  uint64_t hash = hashName(lower_name);
  auto tag = static_cast<uint32_t>(hash >> 32);
  for (size_t slot = hash & mask_;; slot = (slot + 1) & mask_) {
    const Slot& candidate = slots_[slot];
    if (candidate.node == 0) return nullptr;
    if (candidate.hash == tag && nameMatches(nodes_[candidate.node - 1], lower_name)) {
      return &nodes_[candidate.node - 1];
    }
  }
}

size_t AnswerTable::memoryUsage() const {
  size_t bytes = nodes_.capacity() * sizeof(Node) + names_.capacity() +
                 answers_.capacity() * sizeof(Answer) + data_.capacity() +
                 slots_.capacity() * sizeof(Slot);
  for (const auto& alias : aliases_) bytes += alias.capacity();
  return bytes;
}

const AnswerTable::Answer* AnswerTable::answerFor(const Node& node, uint16_t type) const {
  for (uint32_t i = node.first_answer; i < node.first_answer + node.answer_count; ++i) {
    if (answers_[i].type == type) return &answers_[i];
  }
  return nullptr;
}

}  // namespace svcbox::dns
