#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dns/answer_table.h"
#include "store/snapshot.h"

// What one Service yields in DNS: the one place that says which names and records a Service
// gives, as the Kubernetes DNS specification (and CoreDNS's kubernetes plugin) reads it. Every
// name comes in two forms, <service>.<namespace>.svc.<domain> and <service>.<namespace>.svc:
//
//   Service                            names and records (each form)
//   ClusterIP (with an address)        <svc>                 A/AAAA  the ClusterIP (the userspace
//                                                                    relay's address where it
//                                                                    serves the Service)
//                                      _<port>._<proto>.<svc> SRV    0 100 <port> <svc>, one per
//                                                                    named port (the relay's
//                                                                    listener port where it serves)
//                                      PTR of the ClusterIP   →      <svc> (full form only)
//   headless, ready endpoints          <svc>                 A/AAAA  every ready endpoint
//                                      <host>.<svc>          A/AAAA  that endpoint (<host>: its
//                                                                    hostname, else its address
//                                                                    with dashes)
//                                      _<port>._<proto>.<svc> SRV    <host>.<svc>, weight 100 /
//                                                                    ready endpoints (at least 1),
//                                                                    one per named port the
//                                                                    endpoint serves
//                                      PTR of each address    →      <host>.<svc> (full form)
//   headless, no ready endpoint        nothing: the name does not exist
//   ExternalName                       <svc>                 CNAME   the external name (an alias:
//                                                                    followed by the responder)
//   ClusterIP without an address       nothing
//
// Only the records are decided here; the piece builder drafts the names (with their empty
// non-terminals), drops duplicate records (RFC 2181 §5) and encodes the answers.
namespace svcbox::dns {

// Where a Service's records go. Names are wire names; a returned name stays valid for as long
// as the piece being built, so it may be a later record's target.
class ServiceRecordSink {
 public:
  virtual ~ServiceRecordSink() = default;
  virtual std::string_view address(std::string_view name, int zone, const store::IpAddress& ip) = 0;
  virtual void service(std::string_view name, int zone, std::string_view target, uint16_t weight,
                       uint16_t port) = 0;
  virtual void alias(std::string_view name, int zone, std::string_view target) = 0;
  virtual void pointer(const store::IpAddress& address, std::string_view target) = 0;
};

// The zones a Service's two forms of name fall in, and their wire names.
struct ServiceZones {
  std::string domain_wire;  // <domain>
  std::string svc_wire;     // svc
  int full_zone = 0;        // the zone of <domain>
  int short_zone = 0;       // the zone of svc
};

// Writes what `entry` yields (the table above) into `sink`. `proxied`: where the userspace relay
// serves the Service, or null.
void addServiceRecords(const store::ServiceEntry& entry, const ProxiedService* proxied,
                       const ServiceZones& zones, ServiceRecordSink& sink);

// One label before a wire name, lower-cased.
std::string joinWire(std::string_view label, std::string_view parent_wire);

}  // namespace svcbox::dns
