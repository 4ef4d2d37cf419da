#include "store/types.h"

namespace svcbox::store {

const char* protocolName(Protocol protocol) { return protocol == Protocol::kUdp ? "UDP" : "TCP"; }

const char* endpointSetKindName(EndpointSet::Kind kind) {
  return kind == EndpointSet::Kind::kEndpointSlice ? "EndpointSlice" : "Endpoints";
}

}  // namespace svcbox::store
