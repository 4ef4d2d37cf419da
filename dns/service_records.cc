#include "dns/service_records.h"

#include <algorithm>
#include <vector>

#include "dns/wire.h"

namespace svcbox::dns {
namespace {

std::string dashed(const store::IpAddress& address) {
  std::string text = address.toString();
  std::replace(text.begin(), text.end(), address.isV4() ? '.' : ':', '-');
  return text;
}

std::string hostnameOf(const store::Endpoint& endpoint) {
  return endpoint.hostname.empty() ? dashed(endpoint.ip) : endpoint.hostname;
}

std::string srvName(const store::ServicePort& port, std::string_view service_name) {
  return joinWire("_" + port.name,
                  joinWire(port.protocol == store::Protocol::kTcp ? "_tcp" : "_udp", service_name));
}

// The Service's names under one of its two forms. Returns the stable name of the Service's own
// node ({} when it has none) and, for a headless Service, fills `hosts` with each ready
// endpoint's (in endpoint order), for the pointers.
std::string_view addForm(const store::ServiceEntry& entry, const ProxiedService* proxied,
                         const std::string& name, int zone, ServiceRecordSink& sink,
                         std::vector<std::string_view>* hosts) {
  const store::Service& service = entry.service;
  if (service.type == store::ServiceType::kExternalName) {
    sink.alias(name, zone, nameToWire(service.external_name));
    return {};
  }
  if (!service.headless) {
    if (!service.cluster_ip) return {};
    std::string_view node =
        sink.address(name, zone, proxied ? proxied->address : *service.cluster_ip);
    for (const auto& port : service.ports) {
      if (port.name.empty()) continue;
      uint16_t number = port.port;
      if (proxied) {
        auto it = proxied->ports.find({port.protocol, port.port});
        if (it != proxied->ports.end()) number = it->second;
      }
      sink.service(srvName(port, name), zone, node, 100, number);
    }
    return node;
  }
  // Headless: the ready endpoints themselves. No ready endpoint: the name does not exist.
  size_t ready = 0;
  for (const auto& endpoint : entry.endpoints) ready += endpoint.ready;
  if (ready == 0) return {};
  // CoreDNS's weight: 100 shared by the ready endpoints, counted before duplicates are dropped.
  auto weight = static_cast<uint16_t>(std::max<size_t>(1, 100 / ready));
  std::string_view node;
  for (const auto& endpoint : entry.endpoints) {
    if (!endpoint.ready) continue;
    node = sink.address(name, zone, endpoint.ip);
    std::string_view host = sink.address(joinWire(hostnameOf(endpoint), name), zone, endpoint.ip);
    if (hosts) hosts->push_back(host);
    for (size_t i = 0; i < service.ports.size(); ++i) {
      const auto& port = service.ports[i];
      if (port.name.empty() || i >= endpoint.ports.size() || endpoint.ports[i] == 0) continue;
      sink.service(srvName(port, name), zone, host, weight, endpoint.ports[i]);
    }
  }
  return node;
}

}  // namespace

std::string joinWire(std::string_view label, std::string_view parent_wire) {
  std::string wire;
  wire.push_back(static_cast<char>(label.size()));
  for (char c : label) wire.push_back(static_cast<char>(lowerAscii(static_cast<uint8_t>(c))));
  wire.append(parent_wire);
  return wire;
}

void addServiceRecords(const store::ServiceEntry& entry, const ProxiedService* proxied,
                       const ServiceZones& zones, ServiceRecordSink& sink) {
  const store::Service& service = entry.service;
  std::string full =
      joinWire(service.name, joinWire(service.namespace_name, joinWire("svc", zones.domain_wire)));
  std::string short_form = joinWire(service.name, joinWire(service.namespace_name, zones.svc_wire));
  std::vector<std::string_view> hosts;
  std::string_view node = addForm(entry, proxied, full, zones.full_zone, sink, &hosts);
  addForm(entry, proxied, short_form, zones.short_zone, sink, nullptr);
  // Pointers name the full form.
  if (service.type == store::ServiceType::kClusterIP && !service.headless && service.cluster_ip) {
    sink.pointer(*service.cluster_ip, node);
  }
  if (service.headless) {
    size_t next = 0;
    for (const auto& endpoint : entry.endpoints) {
      if (!endpoint.ready || next == hosts.size()) continue;
      sink.pointer(endpoint.ip, hosts[next++]);
    }
  }
}

}  // namespace svcbox::dns
