#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// The netfilter rules svcbox wants, as plain data: computed from a snapshot, rendered as
// iptables-save text for people and tests, and encoded as ipt_entry blobs for libiptc.
// IPv4 only: addresses are host-order integers.
namespace svcbox::router {

// Marks a connection for MASQUERADE in SVCBOX-POSTROUTING (kube-proxy uses the same bit).
constexpr uint32_t kMasqueradeMark = 0x4000;

struct Ipv4Prefix {
  uint32_t address = 0;
  int length = 0;  // 0 = any address
  bool operator==(const Ipv4Prefix&) const = default;
};

enum class TargetKind : uint8_t {
  kJump,
  kAccept,
  kReturn,
  kDnat,
  kMasquerade,
  kMark,
  kReject,
  kRedirect,  // to `port` on the address the packet arrived at (the userspace proxy's listener)
};

struct Target {
  TargetKind kind = TargetKind::kJump;
  std::string chain;     // kJump
  uint32_t address = 0;  // kDnat
  uint16_t port = 0;     // kDnat, kRedirect
  uint32_t mark = 0;     // kMark: packet mark = (mark & ~mask) ^ value, as MARK --set-xmark
  uint32_t mark_mask = 0;
  bool operator==(const Target&) const = default;
};

// `-m recent`: remembers a client address per endpoint for sessionAffinity ClientIP.
struct RecentMatch {
  std::string name;
  bool set = false;  // --set; otherwise --rcheck --seconds N --reap
  uint32_t seconds = 0;
  bool operator==(const RecentMatch&) const = default;
};

struct MarkMatch {
  uint32_t value = 0;
  uint32_t mask = 0;
  bool invert = false;
  bool operator==(const MarkMatch&) const = default;
};

// One rule. Matches are written (and read back by iptables-save) in the order of the fields.
struct Rule {
  Ipv4Prefix source;
  bool invert_source = false;
  Ipv4Prefix destination;
  uint8_t protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP or 0 for any
  std::string comment;
  uint16_t destination_port = 0;        // -m tcp/udp --dport; needs `protocol`
  std::optional<uint32_t> probability;  // -m statistic: round(p * 2^31), as iptables encodes it
  std::optional<RecentMatch> recent;
  std::optional<MarkMatch> mark;
  uint32_t ctstate = 0;  // -m conntrack --ctstate: XT_CONNTRACK_STATE_BIT(...) bits, 0 = none
  Target target;
  bool operator==(const Rule&) const = default;
};

struct Chain {
  std::string name;
  std::vector<Rule> rules;
  bool operator==(const Chain&) const = default;
};

// A built-in chain svcbox hooks with exactly one jump, inserted first.
struct Hook {
  std::string builtin;
  std::string chain;
  bool operator==(const Hook&) const = default;
};

struct Table {
  std::string name;  // "nat", "filter"
  std::vector<Hook> hooks;
  std::vector<Chain> chains;  // sorted by name
  const Chain* findChain(const std::string& chain_name) const;
  bool operator==(const Table&) const = default;
};

// "10.96.0.10"
std::string ipv4Text(uint32_t address);
// round(p * 2^31) for `-m statistic --probability p`, as iptables rounds it.
uint32_t statisticProbability(double p);

}  // namespace svcbox::router
