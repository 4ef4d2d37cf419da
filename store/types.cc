#include "store/types.h"

namespace svcbox::store {

const char* protocolName(Protocol protocol) { return protocol == Protocol::kUdp ? "UDP" : "TCP"; }

const char* endpointSetKindName(EndpointSet::Kind kind) {
  return kind == EndpointSet::Kind::kEndpointSlice ? "EndpointSlice" : "Endpoints";
}

std::string serviceAddressText(const Service& service) {
  if (service.type == ServiceType::kExternalName) return "externalName " + service.external_name;
  if (service.headless) return "headless";
  return "clusterIP " + (service.cluster_ip ? service.cluster_ip->toString() : std::string("-"));
}

}  // namespace svcbox::store
