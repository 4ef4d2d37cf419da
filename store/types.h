#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/ip.h"

// Slim value objects with Kubernetes meaning. They carry what svcbox acts on, nothing more.
namespace svcbox::store {

enum class Protocol : uint8_t { kTcp, kUdp };
const char* protocolName(Protocol protocol);

using Labels = std::map<std::string, std::string>;

// A port given as a number or as the name of a container port.
struct PortRef {
  uint16_t number = 0;  // 0 when named
  std::string name;
  bool isNamed() const { return number == 0; }
  std::string toString() const { return isNamed() ? name : std::to_string(number); }
  bool operator==(const PortRef&) const = default;
};

struct ServicePort {
  std::string name;
  Protocol protocol = Protocol::kTcp;
  uint16_t port = 0;
  PortRef target_port;
  bool operator==(const ServicePort&) const = default;
};

enum class ServiceType : uint8_t { kClusterIP, kExternalName };
enum class SessionAffinity : uint8_t { kNone, kClientIP };
constexpr uint32_t kDefaultAffinityTimeoutSeconds = 10800;

struct Service {
  std::string namespace_name = "default";
  std::string name;
  ServiceType type = ServiceType::kClusterIP;
  std::string external_name;
  bool headless = false;                // clusterIP: None
  std::optional<IpAddress> cluster_ip;  // requested on input; allocated once stored
  std::vector<ServicePort> ports;
  std::optional<Labels> selector;  // absent: endpoints come from Endpoints/EndpointSlices
  SessionAffinity session_affinity = SessionAffinity::kNone;
  uint32_t affinity_timeout_seconds = kDefaultAffinityTimeoutSeconds;
  int64_t created_ms = 0;  // set by the registry
  bool operator==(const Service&) const = default;
};

struct ContainerPort {
  std::string container;
  std::string name;
  uint16_t container_port = 0;
  Protocol protocol = Protocol::kTcp;
  bool operator==(const ContainerPort&) const = default;
};

// Kubernetes readinessProbe; svcbox supports the tcpSocket and httpGet handlers.
struct Probe {
  enum class Kind : uint8_t { kTcpSocket, kHttpGet };
  Kind kind = Kind::kTcpSocket;
  PortRef port;
  std::string path = "/";  // httpGet only
  std::string scheme = "HTTP";
  uint32_t initial_delay_seconds = 0;
  uint32_t period_seconds = 10;
  uint32_t timeout_seconds = 1;
  uint32_t success_threshold = 1;
  uint32_t failure_threshold = 3;
  bool operator==(const Probe&) const = default;
};

struct Readiness {
  bool ready = false;
  std::string reason;
  int64_t changed_ms = 0;
  bool operator==(const Readiness&) const = default;
};

struct Pod {
  std::string namespace_name = "default";
  std::string name;
  Labels labels;
  std::vector<IpAddress> ips;  // status.podIPs; the first is status.podIP
  std::vector<ContainerPort> ports;
  std::optional<Probe> readiness_probe;
  uint32_t container_count = 1;
  // spec.hostname / spec.subdomain: a headless Service named like the subdomain gives the pod a
  // DNS name of its own.
  std::string hostname;
  std::string subdomain;
  Readiness readiness;  // owned by the registry and the prober; ignored on input
  int64_t created_ms = 0;
  bool operator==(const Pod&) const = default;
};

// One address of an explicit endpoint list (Endpoints subsets / EndpointSlice endpoints).
struct EndpointAddress {
  IpAddress ip;
  bool ready = true;
  std::string hostname;
  std::string target_pod;  // targetRef.name when it names a Pod
  bool operator==(const EndpointAddress&) const = default;
};

struct EndpointPort {
  std::string name;
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  bool operator==(const EndpointPort&) const = default;
};

// Addresses × ports, as one Endpoints subset or one EndpointSlice carries them.
struct EndpointGroup {
  std::vector<EndpointAddress> addresses;
  std::vector<EndpointPort> ports;
  bool operator==(const EndpointGroup&) const = default;
};

// An Endpoints (v1) or EndpointSlice (discovery.k8s.io/v1) object for a selector-less Service.
struct EndpointSet {
  enum class Kind : uint8_t { kEndpoints, kEndpointSlice };
  Kind kind = Kind::kEndpoints;
  std::string namespace_name = "default";
  std::string name;
  std::string service_name;  // Endpoints: its own name; slices: kubernetes.io/service-name
  std::vector<EndpointGroup> groups;
  int64_t created_ms = 0;
  bool operator==(const EndpointSet&) const = default;
};

const char* endpointSetKindName(EndpointSet::Kind kind);
// "clusterIP 10.96.0.1", "headless" or "externalName example.com", for messages and logs.
std::string serviceAddressText(const Service& service);

}  // namespace svcbox::store
