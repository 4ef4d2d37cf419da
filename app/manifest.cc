#include "app/manifest.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>

#include "app/json_tree.h"
#include "app/yaml_tree.h"

namespace svcbox::app {
namespace {

using store::ContainerPort;
using store::EndpointAddress;
using store::EndpointGroup;
using store::EndpointPort;
using store::EndpointSet;
using store::IpAddress;
using store::Pod;
using store::PortRef;
using store::Probe;
using store::Protocol;
using store::Service;
using store::ServicePort;

// Kubernetes fields svcbox reads, and those it knows but has no use for. Anything else is a
// typo or a field of another kind, which strict validation reports as kubectl does.
const std::set<std::string> kMetadataFields = {"name",
                                               "namespace",
                                               "labels",
                                               "annotations",
                                               "uid",
                                               "resourceVersion",
                                               "generation",
                                               "creationTimestamp",
                                               "deletionTimestamp",
                                               "deletionGracePeriodSeconds",
                                               "generateName",
                                               "ownerReferences",
                                               "finalizers",
                                               "managedFields",
                                               "selfLink"};
const std::set<std::string> kServiceSpecFields = {"selector",
                                                  "ports",
                                                  "clusterIP",
                                                  "clusterIPs",
                                                  "type",
                                                  "externalName",
                                                  "sessionAffinity",
                                                  "sessionAffinityConfig",
                                                  "ipFamilies",
                                                  "ipFamilyPolicy",
                                                  "publishNotReadyAddresses",
                                                  "externalTrafficPolicy",
                                                  "internalTrafficPolicy",
                                                  "loadBalancerIP",
                                                  "loadBalancerSourceRanges",
                                                  "externalIPs",
                                                  "healthCheckNodePort",
                                                  "allocateLoadBalancerNodePorts",
                                                  "loadBalancerClass",
                                                  "trafficDistribution"};
const std::set<std::string> kServicePortFields = {"name",       "protocol", "port",
                                                  "targetPort", "nodePort", "appProtocol"};
const std::set<std::string> kPodSpecFields = {"containers",
                                              "initContainers",
                                              "ephemeralContainers",
                                              "volumes",
                                              "nodeName",
                                              "nodeSelector",
                                              "restartPolicy",
                                              "serviceAccountName",
                                              "serviceAccount",
                                              "automountServiceAccountToken",
                                              "hostname",
                                              "subdomain",
                                              "terminationGracePeriodSeconds",
                                              "activeDeadlineSeconds",
                                              "dnsPolicy",
                                              "dnsConfig",
                                              "securityContext",
                                              "affinity",
                                              "tolerations",
                                              "imagePullSecrets",
                                              "hostNetwork",
                                              "hostPID",
                                              "hostIPC",
                                              "shareProcessNamespace",
                                              "priorityClassName",
                                              "priority",
                                              "preemptionPolicy",
                                              "schedulerName",
                                              "enableServiceLinks",
                                              "hostAliases",
                                              "readinessGates",
                                              "runtimeClassName",
                                              "topologySpreadConstraints",
                                              "overhead",
                                              "os",
                                              "setHostnameAsFQDN",
                                              "schedulingGates",
                                              "resourceClaims",
                                              "hostUsers"};
const std::set<std::string> kContainerFields = {"name",
                                                "image",
                                                "command",
                                                "args",
                                                "workingDir",
                                                "ports",
                                                "env",
                                                "envFrom",
                                                "resources",
                                                "volumeMounts",
                                                "volumeDevices",
                                                "livenessProbe",
                                                "readinessProbe",
                                                "startupProbe",
                                                "lifecycle",
                                                "terminationMessagePath",
                                                "terminationMessagePolicy",
                                                "imagePullPolicy",
                                                "securityContext",
                                                "stdin",
                                                "stdinOnce",
                                                "tty",
                                                "resizePolicy",
                                                "restartPolicy"};
const std::set<std::string> kContainerPortFields = {"name", "containerPort", "protocol", "hostPort",
                                                    "hostIP"};
const std::set<std::string> kProbeFields = {"tcpSocket",
                                            "httpGet",
                                            "exec",
                                            "grpc",
                                            "initialDelaySeconds",
                                            "periodSeconds",
                                            "timeoutSeconds",
                                            "successThreshold",
                                            "failureThreshold",
                                            "terminationGracePeriodSeconds"};
const std::set<std::string> kPodStatusFields = {"podIP",
                                                "podIPs",
                                                "phase",
                                                "conditions",
                                                "hostIP",
                                                "hostIPs",
                                                "startTime",
                                                "containerStatuses",
                                                "initContainerStatuses",
                                                "ephemeralContainerStatuses",
                                                "qosClass",
                                                "message",
                                                "reason",
                                                "nominatedNodeName",
                                                "resize",
                                                "resourceClaimStatuses"};
const std::set<std::string> kEndpointAddressFields = {"ip", "hostname", "nodeName", "targetRef"};
const std::set<std::string> kEndpointPortFields = {"name", "port", "protocol", "appProtocol"};
const std::set<std::string> kSliceEndpointFields = {"addresses", "conditions",        "hostname",
                                                    "targetRef", "nodeName",          "zone",
                                                    "hints",     "deprecatedTopology"};

constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

SourcePosition positionOf(const yaml::Node& node) {
  auto mark = node.Mark();
  return SourcePosition{mark.line + 1, mark.column + 1};
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Reads one document into one object, remembering where each field was written.
class DocumentReader {
 public:
  DocumentReader(const std::string& source, const ManifestOptions& options,
                 std::vector<std::string>& warnings, ManifestFormat format)
      : source_(source), options_(options), warnings_(warnings), format_(format) {}

  ManifestObject read(const yaml::Node& document) {
    current_ = ManifestObject{};
    kind_.clear();
    name_.clear();
    current_.source = source_;
    current_.position = positionOf(document);
    if (!document.IsMap())
      fail(document, "", "a manifest document must be a mapping with apiVersion and kind");
    std::string kind = requiredString(document, "kind", "");
    std::string api_version = requiredString(document, "apiVersion", "");
    std::string expected = kind == "EndpointSlice" ? "discovery.k8s.io/v1" : "v1";
    if (kind != "Service" && kind != "Pod" && kind != "Endpoints" && kind != "EndpointSlice") {
      fail(document["kind"], "kind",
           "kind \"" + kind +
               "\" is not served by svcbox; use Service, Pod, Endpoints or EndpointSlice");
    }
    if (api_version != expected) {
      fail(document["apiVersion"], "apiVersion",
           "apiVersion \"" + api_version + "\" is not valid for kind " + kind + "; use \"" +
               expected + "\"");
    }
    kind_ = kind;
    if (kind == "Service") {
      checkFields(document, "", {"apiVersion", "kind", "metadata", "spec", "status"});
      current_.object = readService(document);
    } else if (kind == "Pod") {
      checkFields(document, "", {"apiVersion", "kind", "metadata", "spec", "status"});
      current_.object = readPod(document);
    } else if (kind == "Endpoints") {
      checkFields(document, "", {"apiVersion", "kind", "metadata", "subsets"});
      current_.object = readEndpoints(document);
    } else {
      checkFields(document, "",
                  {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"});
      current_.object = readEndpointSlice(document);
    }
    return std::move(current_);
  }

 private:
  [[noreturn]] void fail(const yaml::Node& node, const std::string& field,
                         const std::string& message) {
    auto position = node.IsDefined() ? positionOf(node) : current_.position;
    std::string subject =
        name_.empty() ? (kind_.empty() ? "" : kind_ + ": ") : kind_ + " " + name_ + ": ";
    throw ManifestError(source_ + ":" + std::to_string(position.line) + ":" +
                        std::to_string(position.column) + ": " + subject +
                        (field.empty() ? "" : field + ": ") + message);
  }

  void note(const std::string& field, const yaml::Node& node) {
    if (node.IsDefined()) current_.fields[field] = positionOf(node);
  }

  std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void checkFields(const yaml::Node& map, const std::string& path,
                   const std::set<std::string>& known) {
    if (!map.IsMap()) fail(map, path, "expected a mapping");
    std::set<std::string_view> seen;
    for (const auto& item : map.items()) {
      const std::string& key = item.first.Scalar();
      if (!seen.insert(key).second) {
        fail(item.first, join(path, key), "the key appears twice in this mapping; keep one");
      }
      note(join(path, key), item.first);
      if (known.contains(key) || options_.validation == Validation::kIgnore) continue;
      std::string message = "unknown field \"" + join(path, key) + "\"";
      if (options_.validation == Validation::kWarn) {
        auto position = positionOf(item.first);
        warnings_.push_back(source_ + ":" + std::to_string(position.line) + ":" +
                            std::to_string(position.column) + ": " + message + " (ignored)");
        continue;
      }
      fail(item.first, "",
           message + "; remove it or fix its spelling" +
               (options_.unknown_field_hint.empty() ? ""
                                                    : " (" + options_.unknown_field_hint + ")"));
    }
  }

  std::string scalar(const yaml::Node& node, const std::string& field) {
    if (!node.IsScalar()) fail(node, field, "expected a single value, not a list or mapping");
    note(field, node);
    return node.Scalar();
  }

  std::string optionalString(const yaml::Node& map, const std::string& key, const std::string& path,
                             const std::string& fallback = "") {
    auto node = map[key];
    if (!node.IsDefined() || node.IsNull()) return fallback;
    return scalar(node, join(path, key));
  }

  std::string requiredString(const yaml::Node& map, const std::string& key,
                             const std::string& path) {
    auto node = map[key];
    if (!node.IsDefined() || node.IsNull()) fail(map, join(path, key), "this field is required");
    auto value = scalar(node, join(path, key));
    if (value.empty()) fail(node, join(path, key), "this field must not be empty");
    return value;
  }

  int64_t integer(const yaml::Node& node, const std::string& field, int64_t min, int64_t max) {
    auto text = scalar(node, field);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || node.Tag() == "!") {
      fail(node, field, "\"" + text + "\" is not an integer");
    }
    if (value < min || value > max) {
      fail(node, field,
           std::to_string(value) + " is out of range: use " + std::to_string(min) + " to " +
               std::to_string(max));
    }
    return value;
  }

  std::optional<int64_t> optionalInteger(const yaml::Node& map, const std::string& key,
                                         const std::string& path, int64_t min, int64_t max) {
    auto node = map[key];
    if (!node.IsDefined() || node.IsNull()) return std::nullopt;
    return integer(node, join(path, key), min, max);
  }

  bool boolean(const yaml::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    if (text == "true" || text == "True") return true;
    if (text == "false" || text == "False") return false;
    fail(node, field, "\"" + text + "\" is not true or false");
  }

  Protocol protocol(const yaml::Node& map, const std::string& path) {
    auto text = optionalString(map, "protocol", path, "TCP");
    if (text == "TCP") return Protocol::kTcp;
    if (text == "UDP") return Protocol::kUdp;
    fail(map["protocol"], join(path, "protocol"),
         "protocol \"" + text + "\" is not supported; use TCP or UDP");
  }

  IpAddress address(const yaml::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    auto ip = IpAddress::parse(text);
    if (!ip) fail(node, field, "\"" + text + "\" is not an IPv4 or IPv6 address");
    return *ip;
  }

  PortRef portRef(const yaml::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    bool numeric =
        !text.empty() && node.Tag() != "!" &&
        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) return PortRef{static_cast<uint16_t>(integer(node, field, 1, 65535)), {}};
    return PortRef{0, text};
  }

  // Label, selector and annotation values are strings, as kubectl insists: a plain `1` or `true`
  // is a number or a boolean in YAML (and in the JSON kubectl sends), so it is refused with the
  // fix rather than taken as text.
  std::string stringValue(const yaml::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    if (node.Tag() == "?") {
      if (const char* kind = yaml::plainScalarType(text)) {
        bool json = format_ == ManifestFormat::kJson;
        fail(node, field,
             (json ? text : "\"" + text + "\"") + " is " + kind + (json ? " in JSON" : " in YAML") +
                 ", and this value must be a string: quote it (\"" + text + "\")");
      }
    }
    return text;
  }

  store::Labels stringMap(const yaml::Node& node, const std::string& field) {
    store::Labels labels;
    if (!node.IsDefined() || node.IsNull()) return labels;
    if (!node.IsMap()) fail(node, field, "expected a mapping of key: value");
    for (const auto& item : node.items()) {
      const auto& key = item.first.Scalar();
      labels[key] = item.second.IsNull() ? "" : stringValue(item.second, field + "." + key);
      note(field + "." + key, item.first);
    }
    return labels;
  }

  yaml::Node list(const yaml::Node& map, const std::string& key, const std::string& path) {
    auto node = map[key];
    if (node.IsDefined() && !node.IsNull() && !node.IsSequence()) {
      fail(node, join(path, key), "expected a list");
    }
    note(join(path, key), node);
    return node;
  }

  yaml::Node mapping(const yaml::Node& map, const std::string& key, const std::string& path,
                     const std::set<std::string>& known) {
    auto node = map[key];
    if (!node.IsDefined() || node.IsNull()) return yaml::Node::emptyMap();
    checkFields(node, join(path, key), known);
    return node;
  }

  // metadata.name and metadata.namespace, with -n applied.
  template <typename T>
  void readMetadata(const yaml::Node& document, T& object, store::Labels* labels) {
    auto metadata = document["metadata"];
    if (!metadata.IsDefined() || metadata.IsNull())
      fail(document, "metadata", "this field is required");
    checkFields(metadata, "metadata", kMetadataFields);
    if (!metadata["name"].IsDefined() && metadata["generateName"].IsDefined()) {
      fail(metadata["generateName"], "metadata.generateName",
           "generateName is not supported; give metadata.name");
    }
    object.name = requiredString(metadata, "name", "metadata");
    name_ = "\"" + object.name + "\"";
    auto namespace_name = optionalString(metadata, "namespace", "metadata");
    if (namespace_name.empty()) {
      object.namespace_name = options_.namespace_name;
    } else if (options_.namespace_given && namespace_name != options_.namespace_name) {
      fail(metadata["namespace"], "metadata.namespace",
           "the object's namespace \"" + namespace_name + "\" does not match -n " +
               options_.namespace_name + "; drop one of them");
    } else {
      object.namespace_name = namespace_name;
    }
    auto read = stringMap(metadata["labels"], "metadata.labels");
    if (labels) *labels = std::move(read);
    stringMap(metadata["annotations"], "metadata.annotations");  // checked, not kept
  }

  Service readService(const yaml::Node& document) {
    Service service;
    readMetadata(document, service, nullptr);
    auto spec = mapping(document, "spec", "", kServiceSpecFields);
    auto type = optionalString(spec, "type", "spec", "ClusterIP");
    if (type == "ExternalName") {
      service.type = store::ServiceType::kExternalName;
      service.external_name = optionalString(spec, "externalName", "spec");
    } else if (type != "ClusterIP") {
      fail(spec["type"], "spec.type",
           "type \"" + type +
               "\" is not supported: svcbox serves ClusterIP (also headless) and "
               "ExternalName Services");
    } else {
      service.external_name = optionalString(spec, "externalName", "spec");
    }
    auto cluster_ip = optionalString(spec, "clusterIP", "spec");
    if (cluster_ip == "None") {
      service.headless = true;
    } else if (!cluster_ip.empty()) {
      service.cluster_ip = address(spec["clusterIP"], "spec.clusterIP");
    }
    auto cluster_ips = list(spec, "clusterIPs", "spec");
    if (cluster_ips.IsDefined() && cluster_ips.size() > 0) {
      auto first = scalar(cluster_ips[0], "spec.clusterIPs[0]");
      if (cluster_ips.size() > 1) {
        fail(cluster_ips[1], "spec.clusterIPs[1]", "svcbox allocates one ClusterIP per Service");
      }
      if (!cluster_ip.empty() && first != cluster_ip) {
        fail(cluster_ips[0], "spec.clusterIPs[0]",
             "must equal spec.clusterIP (" + cluster_ip + ")");
      }
      if (first == "None") {
        service.headless = true;
      } else if (!service.cluster_ip) {
        service.cluster_ip = address(cluster_ips[0], "spec.clusterIPs[0]");
      }
    }
    auto selector = spec["selector"];
    if (selector.IsDefined() && !selector.IsNull()) {
      auto labels = stringMap(selector, "spec.selector");
      // An empty selector means "no selector", as for Kubernetes Services.
      if (!labels.empty()) service.selector = std::move(labels);
    }
    auto ports = list(spec, "ports", "spec");
    for (size_t i = 0; ports.IsDefined() && i < ports.size(); ++i) {
      auto path = index("spec.ports", i);
      checkFields(ports[i], path, kServicePortFields);
      ServicePort port;
      port.name = optionalString(ports[i], "name", path);
      port.protocol = protocol(ports[i], path);
      auto number = ports[i]["port"];
      if (!number.IsDefined()) fail(ports[i], path + ".port", "this field is required");
      port.port = static_cast<uint16_t>(integer(number, path + ".port", 1, 65535));
      auto target = ports[i]["targetPort"];
      port.target_port = target.IsDefined() && !target.IsNull()
                             ? portRef(target, path + ".targetPort")
                             : PortRef{port.port, {}};
      service.ports.push_back(std::move(port));
    }
    auto affinity = optionalString(spec, "sessionAffinity", "spec", "None");
    if (affinity == "ClientIP") {
      service.session_affinity = store::SessionAffinity::kClientIP;
    } else if (affinity != "None") {
      fail(spec["sessionAffinity"], "spec.sessionAffinity", "use None or ClientIP");
    }
    auto config = mapping(spec, "sessionAffinityConfig", "spec", {"clientIP"});
    auto client_ip = mapping(config, "clientIP", "spec.sessionAffinityConfig", {"timeoutSeconds"});
    if (auto timeout = optionalInteger(client_ip, "timeoutSeconds",
                                       "spec.sessionAffinityConfig.clientIP", 1, 86400)) {
      service.affinity_timeout_seconds = static_cast<uint32_t>(*timeout);
    }
    return service;
  }

  Probe readProbe(const yaml::Node& node, const std::string& path) {
    checkFields(node, path, kProbeFields);
    Probe probe;
    if (node["exec"].IsDefined() || node["grpc"].IsDefined()) {
      fail(node, path,
           "svcbox runs tcpSocket and httpGet readiness probes; exec and grpc are not supported");
    }
    if (node["tcpSocket"].IsDefined()) {
      auto tcp = mapping(node, "tcpSocket", path, {"port", "host"});
      probe.kind = Probe::Kind::kTcpSocket;
      if (!tcp["port"].IsDefined()) fail(tcp, path + ".tcpSocket.port", "this field is required");
      probe.port = portRef(tcp["port"], path + ".tcpSocket.port");
    } else if (node["httpGet"].IsDefined()) {
      auto http = mapping(node, "httpGet", path, {"path", "port", "host", "scheme", "httpHeaders"});
      probe.kind = Probe::Kind::kHttpGet;
      if (!http["port"].IsDefined()) fail(http, path + ".httpGet.port", "this field is required");
      probe.port = portRef(http["port"], path + ".httpGet.port");
      probe.path = optionalString(http, "path", path + ".httpGet", "/");
      probe.scheme = optionalString(http, "scheme", path + ".httpGet", "HTTP");
      if (probe.scheme != "HTTP") {
        fail(http["scheme"], path + ".httpGet.scheme", "svcbox probes plain HTTP only");
      }
    } else {
      fail(node, path, "a readinessProbe needs tcpSocket or httpGet");
    }
    auto number = [&](const char* key, uint32_t& out, int64_t min) {
      if (auto value = optionalInteger(node, key, path, min, 86400))
        out = static_cast<uint32_t>(*value);
    };
    number("initialDelaySeconds", probe.initial_delay_seconds, 0);
    number("periodSeconds", probe.period_seconds, 1);
    number("timeoutSeconds", probe.timeout_seconds, 1);
    number("successThreshold", probe.success_threshold, 1);
    number("failureThreshold", probe.failure_threshold, 1);
    return probe;
  }

  Pod readPod(const yaml::Node& document) {
    Pod pod;
    readMetadata(document, pod, &pod.labels);
    auto spec = mapping(document, "spec", "", kPodSpecFields);
    pod.hostname = optionalString(spec, "hostname", "spec");
    pod.subdomain = optionalString(spec, "subdomain", "spec");
    auto containers = list(spec, "containers", "spec");
    if (!containers.IsDefined() || containers.size() == 0) {
      fail(spec, "spec.containers", "a Pod needs at least one container");
    }
    pod.container_count = static_cast<uint32_t>(containers.size());
    for (size_t c = 0; c < containers.size(); ++c) {
      auto path = index("spec.containers", c);
      checkFields(containers[c], path, kContainerFields);
      auto container = requiredString(containers[c], "name", path);
      auto ports = list(containers[c], "ports", path);
      for (size_t i = 0; ports.IsDefined() && i < ports.size(); ++i) {
        // Validation names ports by container and by their index across the whole Pod.
        auto port_path = index(path + ".ports", i);
        auto store_path =
            "spec.containers[" + container + "].ports[" + std::to_string(pod.ports.size()) + "]";
        checkFields(ports[i], port_path, kContainerPortFields);
        ContainerPort port;
        port.container = container;
        port.name = optionalString(ports[i], "name", port_path);
        if (!ports[i]["containerPort"].IsDefined()) {
          fail(ports[i], port_path + ".containerPort", "this field is required");
        }
        port.container_port = static_cast<uint16_t>(
            integer(ports[i]["containerPort"], port_path + ".containerPort", 1, 65535));
        port.protocol = protocol(ports[i], port_path);
        note(store_path, ports[i]);
        note(store_path + ".name", ports[i]["name"]);
        note(store_path + ".containerPort", ports[i]["containerPort"]);
        pod.ports.push_back(std::move(port));
      }
      auto probe = containers[c]["readinessProbe"];
      if (probe.IsDefined() && !probe.IsNull()) {
        if (pod.readiness_probe) {
          fail(probe, path + ".readinessProbe",
               "svcbox runs one readinessProbe per Pod; keep it on one container");
        }
        pod.readiness_probe = readProbe(probe, path + ".readinessProbe");
        note("spec.containers.readinessProbe", probe);
        for (const char* key : {"tcpSocket", "httpGet"}) {
          if (probe[key].IsDefined()) {
            note("spec.containers.readinessProbe.port", probe[key]["port"]);
            note("spec.containers.readinessProbe.httpGet.path", probe[key]["path"]);
          }
        }
      }
    }
    auto status = mapping(document, "status", "", kPodStatusFields);
    auto pod_ip = optionalString(status, "podIP", "status");
    if (!pod_ip.empty()) pod.ips.push_back(address(status["podIP"], "status.podIP"));
    auto pod_ips = list(status, "podIPs", "status");
    for (size_t i = 0; pod_ips.IsDefined() && i < pod_ips.size(); ++i) {
      auto path = index("status.podIPs", i);
      checkFields(pod_ips[i], path, {"ip"});
      auto ip = address(pod_ips[i]["ip"], path + ".ip");
      if (i == 0 && !pod.ips.empty() && pod.ips[0] != ip) {
        fail(pod_ips[i], path + ".ip", "status.podIPs[0] must equal status.podIP");
      }
      if (std::find(pod.ips.begin(), pod.ips.end(), ip) == pod.ips.end()) pod.ips.push_back(ip);
    }
    return pod;
  }

  std::vector<EndpointPort> endpointPorts(const yaml::Node& ports, const std::string& path) {
    std::vector<EndpointPort> result;
    for (size_t i = 0; ports.IsDefined() && i < ports.size(); ++i) {
      auto port_path = index(path, i);
      checkFields(ports[i], port_path, kEndpointPortFields);
      if (!ports[i]["port"].IsDefined())
        fail(ports[i], port_path + ".port", "this field is required");
      result.push_back(EndpointPort{
          optionalString(ports[i], "name", port_path),
          static_cast<uint16_t>(integer(ports[i]["port"], port_path + ".port", 1, 65535)),
          protocol(ports[i], port_path)});
    }
    return result;
  }

  std::string targetPod(const yaml::Node& item, const std::string& path) {
    auto ref =
        mapping(item, "targetRef", path,
                {"kind", "name", "namespace", "uid", "apiVersion", "resourceVersion", "fieldPath"});
    return optionalString(ref, "kind", path + ".targetRef", "Pod") == "Pod"
               ? optionalString(ref, "name", path + ".targetRef")
               : "";
  }

  EndpointSet readEndpoints(const yaml::Node& document) {
    EndpointSet set;
    set.kind = EndpointSet::Kind::kEndpoints;
    readMetadata(document, set, nullptr);
    set.service_name = set.name;
    auto subsets = list(document, "subsets", "");
    for (size_t s = 0; subsets.IsDefined() && s < subsets.size(); ++s) {
      auto path = index("subsets", s);
      checkFields(subsets[s], path, {"addresses", "notReadyAddresses", "ports"});
      EndpointGroup group;
      for (const char* key : {"addresses", "notReadyAddresses"}) {
        auto addresses = list(subsets[s], key, path);
        for (size_t i = 0; addresses.IsDefined() && i < addresses.size(); ++i) {
          auto address_path = index(path + "." + key, i);
          checkFields(addresses[i], address_path, kEndpointAddressFields);
          group.addresses.push_back(EndpointAddress{
              address(addresses[i]["ip"], address_path + ".ip"), std::string(key) == "addresses",
              optionalString(addresses[i], "hostname", address_path),
              targetPod(addresses[i], address_path)});
        }
      }
      group.ports = endpointPorts(list(subsets[s], "ports", path), path + ".ports");
      if (!group.addresses.empty() || !group.ports.empty()) set.groups.push_back(std::move(group));
    }
    return set;
  }

  EndpointSet readEndpointSlice(const yaml::Node& document) {
    EndpointSet set;
    set.kind = EndpointSet::Kind::kEndpointSlice;
    store::Labels labels;
    readMetadata(document, set, &labels);
    auto service = labels.find(kServiceNameLabel);
    if (service == labels.end()) {
      fail(document["metadata"], "metadata.labels",
           std::string("an EndpointSlice needs the label ") + kServiceNameLabel +
               " naming its Service");
    }
    set.service_name = service->second;
    auto address_type = requiredString(document, "addressType", "");
    if (address_type != "IPv4" && address_type != "IPv6") {
      fail(document["addressType"], "addressType",
           "use IPv4 or IPv6 (FQDN slices are not supported)");
    }
    EndpointGroup group;
    auto endpoints = list(document, "endpoints", "");
    for (size_t e = 0; endpoints.IsDefined() && e < endpoints.size(); ++e) {
      auto path = index("endpoints", e);
      checkFields(endpoints[e], path, kSliceEndpointFields);
      auto conditions =
          mapping(endpoints[e], "conditions", path, {"ready", "serving", "terminating"});
      // Kubernetes: an absent ready condition means ready.
      bool ready = !conditions["ready"].IsDefined() || conditions["ready"].IsNull() ||
                   boolean(conditions["ready"], path + ".conditions.ready");
      auto hostname = optionalString(endpoints[e], "hostname", path);
      auto pod = targetPod(endpoints[e], path);
      auto addresses = list(endpoints[e], "addresses", path);
      if (!addresses.IsDefined() || addresses.size() == 0) {
        fail(endpoints[e], path + ".addresses", "an endpoint needs at least one address");
      }
      for (size_t i = 0; i < addresses.size(); ++i) {
        auto ip = address(addresses[i], index(path + ".addresses", i));
        if (ip.isV4() != (address_type == "IPv4")) {
          fail(addresses[i], index(path + ".addresses", i),
               "the address does not match addressType " + address_type);
        }
        group.addresses.push_back(EndpointAddress{ip, ready, hostname, pod});
      }
    }
    group.ports = endpointPorts(list(document, "ports", ""), "ports");
    if (!group.addresses.empty() || !group.ports.empty()) set.groups.push_back(std::move(group));
    return set;
  }

  const std::string& source_;
  const ManifestOptions& options_;
  std::vector<std::string>& warnings_;
  ManifestFormat format_;
  ManifestObject current_;
  std::string kind_;
  std::string name_;
};

// kubectl's `kind: List` wraps objects in items, Lists in Lists too: flattened with a stack of
// its own, in document order.
void collect(const yaml::Node& root, DocumentReader& reader, std::vector<ManifestObject>& out) {
  std::vector<yaml::Node> pending{root};
  while (!pending.empty()) {
    yaml::Node node = pending.back();
    pending.pop_back();
    if (!node.IsDefined() || node.IsNull()) continue;
    if (node.IsMap() && node["kind"].IsDefined() && node["kind"].IsScalar() &&
        node["kind"].Scalar() == "List") {
      auto items = node["items"];
      for (size_t i = items.IsSequence() ? items.size() : 0; i > 0; --i) {
        pending.push_back(items[i - 1]);
      }
      continue;
    }
    out.push_back(reader.read(node));
  }
}

}  // namespace

bool parseValidation(const std::string& text, Validation& out) {
  if (text == "strict" || text == "true") {
    out = Validation::kStrict;
  } else if (text == "warn") {
    out = Validation::kWarn;
  } else if (text == "ignore" || text == "false") {
    out = Validation::kIgnore;
  } else {
    return false;
  }
  return true;
}

std::string ManifestObject::locate(const std::string& field) const {
  auto where = [&](const SourcePosition& at) {
    return source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
  };
  for (std::string path = field; !path.empty();) {
    if (auto it = fields.find(path); it != fields.end()) return where(it->second);
    auto cut = path.find_last_of(".[");
    path = cut == std::string::npos ? "" : path.substr(0, cut);
  }
  return where(position);
}

std::vector<ManifestObject> parseManifest(const std::string& text, const std::string& source,
                                          const ManifestOptions& options,
                                          std::vector<std::string>& warnings,
                                          ManifestFormat format) {
  std::vector<ManifestObject> objects;
  DocumentReader reader(source, options, warnings, format);
  auto visit = [&](const yaml::Node& root) { collect(root, reader, objects); };
  bool json = format == ManifestFormat::kJson;
  try {
    if (json) {
      yaml::readJson(text, visit);
    } else {
      yaml::forEachDocument(text, visit);
    }
  } catch (const yaml::Error& error) {
    throw ManifestError(source + ":" + std::to_string(error.mark().line + 1) + ":" +
                        std::to_string(error.mark().column + 1) + ": not valid " +
                        (json ? "JSON" : "YAML") + ": " + error.what());
  }
  return objects;
}

std::vector<ManifestObject> loadManifests(const std::vector<std::string>& paths,
                                          const ManifestOptions& options,
                                          std::vector<std::string>& warnings) {
  namespace fs = std::filesystem;
  std::vector<ManifestObject> objects;
  auto load = [&](const std::string& text, const std::string& source, ManifestFormat format) {
    auto parsed = parseManifest(text, source, options, warnings, format);
    std::move(parsed.begin(), parsed.end(), std::back_inserter(objects));
  };
  auto read_file = [&](const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ManifestError(path.string() + ": cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    load(text.str(), path.string(),
         path.extension() == ".json" ? ManifestFormat::kJson : ManifestFormat::kYaml);
  };
  for (const auto& path : paths) {
    if (path == "-") {
      std::ostringstream text;
      text << std::cin.rdbuf();
      load(text.str(), "<stdin>", ManifestFormat::kYaml);
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(path, ec)) {
        auto extension = entry.path().extension();
        if (entry.is_regular_file() &&
            (extension == ".yaml" || extension == ".yml" || extension == ".json")) {
          files.push_back(entry.path());
        }
      }
      if (ec) throw ManifestError(path + ": cannot list the folder: " + ec.message());
      std::sort(files.begin(), files.end());
      for (const auto& file : files) read_file(file);
    } else if (fs::exists(path, ec)) {
      read_file(path);
    } else {
      throw ManifestError(path + ": no such file or folder");
    }
  }
  return objects;
}

}  // namespace svcbox::app
