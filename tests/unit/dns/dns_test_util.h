#pragma once

#include <ldns/ldns.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "store/snapshot.h"

// Helpers for the DNS unit tests: queries built by hand, answers decoded by ldns (an independent
// parser), and small snapshots.
namespace svcbox::dns::dnstest {

// A query for `name` and `type`; with `udp_size` > 0 it carries an OPT record.
inline std::vector<uint8_t> makeQuery(const std::string& name, uint16_t type, uint16_t udp_size = 0,
                                      uint16_t id = 0x1234) {
  std::vector<uint8_t> packet = {
      static_cast<uint8_t>(id >> 8),         static_cast<uint8_t>(id), 0x01, 0, 0, 1, 0, 0, 0, 0, 0,
      static_cast<uint8_t>(udp_size ? 1 : 0)};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    packet.push_back(static_cast<uint8_t>(dot - start));
    packet.insert(packet.end(), name.begin() + static_cast<long>(start),
                  name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  packet.insert(packet.end(),
                {0, static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1});
  if (udp_size) {
    packet.insert(packet.end(), {0, 0, 41, static_cast<uint8_t>(udp_size >> 8),
                                 static_cast<uint8_t>(udp_size), 0, 0, 0, 0, 0, 0});
  }
  return packet;
}

struct Decoded {
  bool ok = false;
  int rcode = -1;
  bool aa = false;
  bool tc = false;
  std::string question;
  std::vector<std::string> answer;
  std::vector<std::string> authority;
  std::vector<std::string> additional;
};

inline std::vector<std::string> records(ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    char* text = ldns_rr2str(ldns_rr_list_rr(list, i));
    std::string line(text);
    free(text);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    for (auto& c : line) c = c == '\t' ? ' ' : c;
    out.push_back(line);
  }
  return out;
}

inline Decoded decode(std::span<const uint8_t> wire) {
  Decoded decoded;
  ldns_pkt* packet = nullptr;
  if (ldns_wire2pkt(&packet, wire.data(), wire.size()) != LDNS_STATUS_OK) return decoded;
  decoded.ok = true;
  decoded.rcode = ldns_pkt_get_rcode(packet);
  decoded.aa = ldns_pkt_aa(packet);
  decoded.tc = ldns_pkt_tc(packet);
  auto question = records(ldns_pkt_question(packet));
  if (!question.empty()) decoded.question = question.front();
  decoded.answer = records(ldns_pkt_answer(packet));
  decoded.authority = records(ldns_pkt_authority(packet));
  decoded.additional = records(ldns_pkt_additional(packet));
  ldns_pkt_free(packet);
  return decoded;
}

inline store::ServiceEntry clusterIpService(const std::string& ns, const std::string& name,
                                            const std::string& ip) {
  store::ServiceEntry entry;
  entry.service.namespace_name = ns;
  entry.service.name = name;
  entry.service.cluster_ip = store::IpAddress::parse(ip);
  entry.service.ports.push_back({"http", store::Protocol::kTcp, 80, {8080, ""}});
  return entry;
}

inline store::ServiceEntry headlessService(const std::string& ns, const std::string& name,
                                           const std::vector<std::pair<std::string, bool>>& ips) {
  store::ServiceEntry entry;
  entry.service.namespace_name = ns;
  entry.service.name = name;
  entry.service.headless = true;
  entry.service.ports.push_back({"http", store::Protocol::kTcp, 80, {8080, ""}});
  for (const auto& [ip, ready] : ips) {
    store::Endpoint endpoint;
    endpoint.ip = *store::IpAddress::parse(ip);
    endpoint.ready = ready;
    endpoint.ports = {8080};
    entry.endpoints.push_back(endpoint);
  }
  return entry;
}

inline std::shared_ptr<store::Snapshot> makeSnapshot(std::vector<store::ServiceEntry> services,
                                                     const std::string& cidr = "10.96.0.0/12") {
  return std::make_shared<store::Snapshot>(7, store::Cidr::parse(cidr), std::move(services),
                                           std::vector<store::PodPtr>{},
                                           std::vector<store::EndpointSet>{});
}

}  // namespace svcbox::dns::dnstest
