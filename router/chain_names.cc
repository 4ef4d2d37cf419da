#include "router/chain_names.h"

#include "router/ruleset.h"

namespace svcbox::router {

bool isOwnedChain(std::string_view name) { return name.starts_with(kOwnedPrefix); }

std::string nameHash(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  // 64 bits in 5-bit groups from the most significant end; the last group is padded with zeros.
  std::string out;
  for (int shift = 59; shift > -5; shift -= 5) {
    uint64_t group = shift >= 0 ? (hash >> shift) : (hash << -shift);
    out.push_back(kAlphabet[group & 31]);
  }
  return out;
}

std::string serviceChainName(std::string_view service_port_key) {
  return "SVCBOX-SVC-" + nameHash(service_port_key);
}

std::string affinityListName(std::string_view service_port_key, std::string_view endpoint) {
  std::string key(service_port_key);
  key += '/';
  key += endpoint;
  return "SVCBOX-AFF-" + nameHash(key);
}

std::string bucketChainName(uint32_t network, int prefix_length) {
  return "SVCBOX-IP-" + ipv4Text(network) + "-" + std::to_string(prefix_length);
}

}  // namespace svcbox::router
