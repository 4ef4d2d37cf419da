#include "router/iptc_entry.h"

#include <arpa/inet.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_recent.h>
#include <linux/netfilter/xt_statistic.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>

#include <cstring>
#include <string>

namespace svcbox::router {
namespace {

// Appends one match or target: a header naming the extension, then its payload, padded.
class EntryWriter {
 public:
  EntryWriter() : bytes_(XT_ALIGN(sizeof(ipt_entry)), 0) {}

  ipt_entry* entry() { return reinterpret_cast<ipt_entry*>(bytes_.data()); }

  template <typename Payload>
  Payload* addMatch(const char* name, uint8_t revision) {
    return add<Payload, xt_entry_match>(name, revision);
  }

  template <typename Payload>
  Payload* addTarget(const char* name, uint8_t revision) {
    entry()->target_offset = static_cast<uint16_t>(bytes_.size());
    return add<Payload, xt_entry_target>(name, revision);
  }

  std::vector<uint8_t> finish() {
    entry()->next_offset = static_cast<uint16_t>(bytes_.size());
    return std::move(bytes_);
  }

 private:
  template <typename Payload, typename Header>
  Payload* add(const char* name, uint8_t revision) {
    size_t offset = bytes_.size();
    size_t size = XT_ALIGN(sizeof(Header)) + XT_ALIGN(sizeof(Payload));
    bytes_.resize(offset + size, 0);
    auto* header = reinterpret_cast<Header*>(bytes_.data() + offset);
    header->u.user.revision = revision;
    // The sizes share one field layout in both headers: a 16-bit size, then the name.
    if constexpr (std::is_same_v<Header, xt_entry_match>) {
      header->u.user.match_size = static_cast<uint16_t>(size);
    } else {
      header->u.user.target_size = static_cast<uint16_t>(size);
    }
    std::strncpy(header->u.user.name, name, sizeof header->u.user.name - 1);
    return reinterpret_cast<Payload*>(bytes_.data() + offset + XT_ALIGN(sizeof(Header)));
  }

  std::vector<uint8_t> bytes_;
};

uint32_t maskOf(int length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }

void writeTarget(EntryWriter& writer, const Target& target) {
  switch (target.kind) {
    case TargetKind::kJump:
    case TargetKind::kAccept:
    case TargetKind::kReturn: {
      // A standard target: libiptc turns the name into a verdict or a jump offset.
      std::string name = target.kind == TargetKind::kJump     ? target.chain
                         : target.kind == TargetKind::kAccept ? "ACCEPT"
                                                              : "RETURN";
      writer.addTarget<int>(name.c_str(), 0);
      break;
    }
    case TargetKind::kDnat: {
      // Revision 2: iptables-legacy-save prints revision 0 as "[unsupported revision]".
      auto* range = writer.addTarget<nf_nat_range2>("DNAT", 2);
      range->flags = NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED;
      range->min_addr.ip = range->max_addr.ip = htonl(target.address);
      range->min_proto.all = range->max_proto.all = htons(target.port);
      break;
    }
    case TargetKind::kRedirect: {
      // Revision 0 is the IPv4 REDIRECT iptables-legacy writes and prints as --to-ports.
      auto* range = writer.addTarget<nf_nat_ipv4_multi_range_compat>("REDIRECT", 0);
      range->rangesize = 1;
      range->range[0].flags = NF_NAT_RANGE_PROTO_SPECIFIED;
      range->range[0].min.all = range->range[0].max.all = htons(target.port);
      break;
    }
    case TargetKind::kMasquerade: {
      auto* range = writer.addTarget<nf_nat_ipv4_multi_range_compat>("MASQUERADE", 0);
      range->rangesize = 1;
      break;
    }
    case TargetKind::kMark: {
      auto* mark = writer.addTarget<xt_mark_tginfo2>("MARK", 2);
      mark->mark = target.mark;
      mark->mask = target.mark_mask;
      break;
    }
    case TargetKind::kReject: {
      auto* reject = writer.addTarget<ipt_reject_info>("REJECT", 0);
      reject->with = IPT_ICMP_PORT_UNREACHABLE;
      break;
    }
  }
}

}  // namespace

std::vector<uint8_t> encodeEntry(const Rule& rule) {
  EntryWriter writer;
  ipt_ip& ip = writer.entry()->ip;
  ip.src.s_addr = htonl(rule.source.address);
  ip.smsk.s_addr = htonl(maskOf(rule.source.length));
  if (rule.invert_source) ip.invflags |= IPT_INV_SRCIP;
  ip.dst.s_addr = htonl(rule.destination.address);
  ip.dmsk.s_addr = htonl(maskOf(rule.destination.length));
  ip.proto = rule.protocol;
  if (!rule.comment.empty()) {
    auto* comment = writer.addMatch<xt_comment_info>("comment", 0);
    std::strncpy(comment->comment, rule.comment.c_str(), XT_MAX_COMMENT_LEN - 1);
  }
  if (rule.destination_port != 0) {
    if (rule.protocol == IPPROTO_UDP) {
      auto* udp = writer.addMatch<xt_udp>("udp", 0);
      udp->spts[1] = 0xffff;
      udp->dpts[0] = udp->dpts[1] = rule.destination_port;
    } else {
      auto* tcp = writer.addMatch<xt_tcp>("tcp", 0);
      tcp->spts[1] = 0xffff;
      tcp->dpts[0] = tcp->dpts[1] = rule.destination_port;
    }
  }
  if (rule.probability) {
    auto* statistic = writer.addMatch<xt_statistic_info>("statistic", 0);
    statistic->mode = XT_STATISTIC_MODE_RANDOM;
    statistic->u.random.probability = *rule.probability;
  }
  if (rule.recent) {
    auto* recent = writer.addMatch<xt_recent_mtinfo_v1>("recent", 1);
    recent->check_set = rule.recent->set ? XT_RECENT_SET : (XT_RECENT_CHECK | XT_RECENT_REAP);
    recent->seconds = rule.recent->seconds;
    std::strncpy(recent->name, rule.recent->name.c_str(), XT_RECENT_NAME_LEN - 1);
    recent->side = XT_RECENT_SOURCE;
    std::memset(&recent->mask.in, 0xff, sizeof recent->mask.in);
  }
  if (rule.mark) {
    auto* mark = writer.addMatch<xt_mark_mtinfo1>("mark", 1);
    mark->mark = rule.mark->value;
    mark->mask = rule.mark->mask;
    mark->invert = rule.mark->invert ? 1 : 0;
  }
  if (rule.ctstate != 0) {
    auto* conntrack = writer.addMatch<xt_conntrack_mtinfo3>("conntrack", 3);
    conntrack->match_flags = XT_CONNTRACK_STATE;
    conntrack->state_mask = static_cast<uint16_t>(rule.ctstate);
  }
  writeTarget(writer, rule.target);
  return writer.finish();
}

}  // namespace svcbox::router
