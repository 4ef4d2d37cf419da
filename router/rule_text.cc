#include "router/rule_text.h"

// glibc's netinet/in.h first: the kernel headers below then skip their own in.h.
#include <netinet/in.h>

#include <linux/netfilter/xt_conntrack.h>

#include <cstdio>

namespace svcbox::router {
namespace {

std::string prefixText(const Ipv4Prefix& prefix) {
  return ipv4Text(prefix.address) + "/" + std::to_string(prefix.length);
}

std::string hex(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%x", value);
  return text;
}

const char* protocolText(uint8_t protocol) { return protocol == IPPROTO_UDP ? "udp" : "tcp"; }

std::string ctstateText(uint32_t states) {
  // In the order iptables prints them.
  static const std::pair<uint32_t, const char*> kNames[] = {
      {XT_CONNTRACK_STATE_INVALID, "INVALID"},
      {XT_CONNTRACK_STATE_BIT(IP_CT_NEW), "NEW"},
      {XT_CONNTRACK_STATE_BIT(IP_CT_RELATED), "RELATED"},
      {XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED), "ESTABLISHED"},
      {XT_CONNTRACK_STATE_UNTRACKED, "UNTRACKED"},
      {XT_CONNTRACK_STATE_SNAT, "SNAT"},
      {XT_CONNTRACK_STATE_DNAT, "DNAT"}};
  std::string text;
  for (const auto& [bit, name] : kNames) {
    if (!(states & bit)) continue;
    if (!text.empty()) text += ",";
    text += name;
  }
  return text;
}

std::string targetText(const Target& target) {
  switch (target.kind) {
    case TargetKind::kJump:
      return " -j " + target.chain;
    case TargetKind::kAccept:
      return " -j ACCEPT";
    case TargetKind::kReturn:
      return " -j RETURN";
    case TargetKind::kDnat:
      return " -j DNAT --to-destination " + ipv4Text(target.address) + ":" +
             std::to_string(target.port);
    case TargetKind::kMasquerade:
      return " -j MASQUERADE";
    case TargetKind::kMark:
      return " -j MARK --set-xmark " + hex(target.mark) + "/" + hex(target.mark_mask);
    case TargetKind::kReject:
      return " -j REJECT --reject-with icmp-port-unreachable";
    case TargetKind::kRedirect:
      return " -j REDIRECT --to-ports " + std::to_string(target.port);
  }
  return "";
}

}  // namespace

std::string savedString(const std::string& value) {
  bool bare = !value.empty();
  for (char c : value) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
    bare = bare && plain;
  }
  if (bare) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\' || c == '\'') quoted += '\\';
    quoted += c;
  }
  return quoted + "\"";
}

std::string ruleText(const std::string& chain, const Rule& rule) {
  std::string text = "-A " + chain;
  if (rule.source.length > 0 || rule.invert_source) {
    text += rule.invert_source ? " ! -s " : " -s ";
    text += prefixText(rule.source);
  }
  if (rule.destination.length > 0) text += " -d " + prefixText(rule.destination);
  if (rule.protocol != 0) text += std::string(" -p ") + protocolText(rule.protocol);
  if (!rule.comment.empty()) text += " -m comment --comment " + savedString(rule.comment);
  if (rule.destination_port != 0) {
    text += std::string(" -m ") + protocolText(rule.protocol) + " --dport " +
            std::to_string(rule.destination_port);
  }
  if (rule.probability) {
    char probability[32];
    std::snprintf(probability, sizeof probability, "%.11f", *rule.probability / 2147483648.0);
    text += std::string(" -m statistic --mode random --probability ") + probability;
  }
  if (rule.recent) {
    const auto& recent = *rule.recent;
    text += " -m recent";
    if (recent.set) {
      text += " --set";
    } else {
      text += " --rcheck --seconds " + std::to_string(recent.seconds) + " --reap";
    }
    text += " --name " + recent.name + " --mask 255.255.255.255 --rsource";
  }
  if (rule.mark) {
    text += rule.mark->invert ? " -m mark ! --mark " : " -m mark --mark ";
    text += hex(rule.mark->value) + "/" + hex(rule.mark->mask);
  }
  if (rule.ctstate != 0) text += " -m conntrack --ctstate " + ctstateText(rule.ctstate);
  return text + targetText(rule.target);
}

std::vector<std::string> tableText(const Table& table) {
  std::vector<std::string> lines;
  for (const auto& chain : table.chains) lines.push_back(":" + chain.name + " - [0:0]");
  for (const auto& hook : table.hooks) lines.push_back("-A " + hook.builtin + " -j " + hook.chain);
  for (const auto& chain : table.chains) {
    for (const auto& rule : chain.rules) lines.push_back(ruleText(chain.name, rule));
  }
  return lines;
}

}  // namespace svcbox::router
