#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/ip.h"
#include "store/snapshot.h"

// The cluster zone compiled from one registry snapshot: every name svcbox is authoritative for,
// with each answer already encoded as wire bytes. Immutable; the server swaps in a new table when
// the registry changes, and a query only hashes its name and copies bytes.
namespace svcbox::dns {

struct ZoneOptions {
  std::string domain = "cluster.local";
  uint32_t ttl = 5;
  // Address given for ns.dns.<domain> (the NS record's glue); none when svcbox listens on a
  // wildcard address only.
  std::optional<store::IpAddress> ns_address;
};

// Where clients reach a ClusterIP Service that svcbox relays from a listener of its own (the
// userspace proxy without REDIRECT): A/AAAA answer `address` instead of the ClusterIP, and each
// SRV the port the listener got (a port below 1024 may be mapped to a high one).
struct ProxiedService {
  store::IpAddress address;
  std::map<std::pair<store::Protocol, uint16_t>, uint16_t> ports;  // (protocol, port) -> listener
  bool operator==(const ProxiedService&) const = default;
};
// By (namespace, name).
using ProxiedServices = std::map<std::pair<std::string, std::string>, ProxiedService>;

class AnswerTable {
 public:
  // An encoded answer: the sections after the question, names compressed against it.
  struct Answer {
    uint16_t type = 0;
    uint16_t answer_count = 0;
    uint16_t authority_count = 0;
    uint16_t additional_count = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
  };
  struct Zone {
    std::string apex;  // lower-cased wire name
    // The zone's SOA record without its owner name (type to the end of rdata), uncompressed, so
    // it can follow a pointer to wherever the apex sits inside any question.
    std::vector<uint8_t> soa_without_owner;
  };
  // 16 bytes: a table holds one per name, tens of thousands of them.
  struct Node {
    uint32_t name_offset = 0;  // into the names arena
    uint8_t name_length = 0;
    uint8_t apex_offset = 0;  // where the zone's apex starts inside this name
    uint16_t zone = 0;
    uint32_t first_answer = 0;
    uint16_t answer_count = 0;
    uint16_t alias = 0;  // an ExternalName: index + 1 of its target; every type gets the CNAME
    bool isAlias() const { return alias != 0; }
  };

  static std::shared_ptr<const AnswerTable> build(const store::Snapshot& snapshot,
                                                  const ZoneOptions& options,
                                                  const ProxiedServices* proxied = nullptr);

  // What serve answers from between binding its ports and loading the registry: the zones with
  // nothing in them (the service CIDR's reverse zones too, when it is known), flagged so that
  // their names get SERVFAIL (as CoreDNS answers before its first sync), never an NXDOMAIN that
  // clients would cache.
  static std::shared_ptr<const AnswerTable> awaitingRegistry(
      const ZoneOptions& options, std::optional<store::Cidr> service_cidr = std::nullopt);
  bool isAwaitingRegistry() const { return awaiting_registry_; }

  // The node for an exact lower-cased wire name, or null.
  const Node* find(std::string_view lower_name) const;
  const Answer* answerFor(const Node& node, uint16_t type) const;
  const Answer& answerAt(uint32_t index) const { return answers_[index]; }
  std::span<const uint8_t> bytes(const Answer& answer) const {
    return {data_.data() + answer.offset, answer.length};
  }
  const Zone& zone(uint16_t index) const { return zones_[index]; }
  // The presentation-form target of an alias node, for chasing it upstream.
  const std::string& aliasTarget(const Node& node) const { return aliases_[node.alias - 1]; }
  size_t nodeCount() const { return nodes_.size() - free_nodes_; }
  // Every name's lower-cased wire form, for tests.
  std::vector<std::string> names() const;
  // Bytes held, for logs and the benchmark.
  size_t memoryUsage() const;

 private:
  struct Slot {
    uint32_t hash = 0;
    uint32_t node = 0;  // index + 1; 0 = empty
  };
  friend class ZoneAssembly;
  // A node keeps only the part of its name above the zone's apex; the apex is the zone's.
  bool nameMatches(const Node& node, std::string_view lower_name) const {
    return lower_name.size() == node.name_length &&
           lower_name.substr(0, node.apex_offset) ==
               std::string_view(names_).substr(node.name_offset, node.apex_offset) &&
           lower_name.substr(node.apex_offset) == zones_[node.zone].apex;
  }

  std::vector<Zone> zones_;
  std::vector<Node> nodes_;
  std::string names_;  // every node's lower-cased wire name up to its apex, back to back
  std::vector<std::string> aliases_;
  std::vector<Answer> answers_;
  std::vector<uint8_t> data_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  uint32_t free_nodes_ = 0;  // nodes no name uses (name_length 0) until the next rebuild
  bool awaiting_registry_ = false;
};

using AnswerTablePtr = std::shared_ptr<const AnswerTable>;

// A hash of everything in a snapshot that the zone is built from (not its version): equal
// fingerprints compile to the same answers. Publishing decides Service by Service instead
// (ZoneCompiler, serviceFingerprint); this whole-snapshot form is what tests and the benchmark's
// whole-compile baseline compare.
uint64_t zoneFingerprint(const store::Snapshot& snapshot);

// Fast, allocation-free hash of a wire name.
// `seed` makes the hash one an outsider cannot precompute collisions for (the forward cache
// keeps names clients chose); the answer table, whose names come from the registry, uses 0.
uint64_t hashName(std::string_view name, uint64_t seed = 0);

// "4.3.2.1.in-addr.arpa" style reverse name, lower-cased wire form.
std::string reverseName(const store::IpAddress& address);

}  // namespace svcbox::dns
