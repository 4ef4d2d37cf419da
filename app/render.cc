#include "app/render.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <ctime>
#include <map>

namespace svcbox::app {
namespace {

using nlohmann::json;

std::string timestamp(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

json metadata(const std::string& namespace_name, const std::string& name, int64_t created_ms) {
  return json{
      {"name", name}, {"namespace", namespace_name}, {"creationTimestamp", timestamp(created_ms)}};
}

json portValue(const store::PortRef& ref) {
  return ref.isNamed() ? json(ref.name) : json(ref.number);
}

void emit(YAML::Emitter& out, const json& value) {
  if (value.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [key, item] : value.items()) {
      out << YAML::Key << key << YAML::Value;
      emit(out, item);
    }
    out << YAML::EndMap;
  } else if (value.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : value) emit(out, item);
    out << YAML::EndSeq;
  } else if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    // Quote strings YAML would read back as another type.
    bool numeric = text.find_first_not_of("0123456789.") == std::string::npos &&
                   std::count(text.begin(), text.end(), '.') <= 1;
    bool ambiguous = text.empty() || text == "true" || text == "false" || text == "null" || numeric;
    if (ambiguous) out << YAML::DoubleQuoted;
    out << text;
  } else if (value.is_null()) {
    out << YAML::Null;
  } else {
    out << value.dump();
  }
}

}  // namespace

json toJson(const store::Service& service) {
  json spec;
  if (service.type == store::ServiceType::kExternalName) {
    spec["type"] = "ExternalName";
    spec["externalName"] = service.external_name;
  } else {
    spec["type"] = "ClusterIP";
    std::string ip =
        service.headless ? "None" : (service.cluster_ip ? service.cluster_ip->toString() : "");
    spec["clusterIP"] = ip;
    spec["clusterIPs"] = json::array({ip});
  }
  if (service.selector) spec["selector"] = *service.selector;
  json ports = json::array();
  for (const auto& port : service.ports) {
    json item{{"protocol", store::protocolName(port.protocol)},
              {"port", port.port},
              {"targetPort", portValue(port.target_port)}};
    if (!port.name.empty()) item["name"] = port.name;
    ports.push_back(std::move(item));
  }
  if (!ports.empty()) spec["ports"] = std::move(ports);
  spec["sessionAffinity"] =
      service.session_affinity == store::SessionAffinity::kClientIP ? "ClientIP" : "None";
  if (service.session_affinity == store::SessionAffinity::kClientIP) {
    spec["sessionAffinityConfig"] = {
        {"clientIP", {{"timeoutSeconds", service.affinity_timeout_seconds}}}};
  }
  return json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", metadata(service.namespace_name, service.name, service.created_ms)},
              {"spec", std::move(spec)}};
}

json toJson(const store::Pod& pod) {
  auto meta = metadata(pod.namespace_name, pod.name, pod.created_ms);
  if (!pod.labels.empty()) meta["labels"] = pod.labels;
  // Containers are rebuilt from the ports svcbox keeps, grouped by container name.
  std::map<std::string, json> containers;
  for (const auto& port : pod.ports) {
    json item{{"containerPort", port.container_port},
              {"protocol", store::protocolName(port.protocol)}};
    if (!port.name.empty()) item["name"] = port.name;
    auto& container = containers[port.container];
    container["name"] = port.container;
    container["ports"].push_back(std::move(item));
  }
  json spec{{"containers", json::array()}};
  for (auto& [name, container] : containers) spec["containers"].push_back(std::move(container));
  if (pod.readiness_probe) {
    const auto& probe = *pod.readiness_probe;
    json handler{{"port", portValue(probe.port)}};
    if (probe.kind == store::Probe::Kind::kHttpGet) handler["path"] = probe.path;
    json value{{probe.kind == store::Probe::Kind::kHttpGet ? "httpGet" : "tcpSocket", handler},
               {"initialDelaySeconds", probe.initial_delay_seconds},
               {"periodSeconds", probe.period_seconds},
               {"timeoutSeconds", probe.timeout_seconds},
               {"successThreshold", probe.success_threshold},
               {"failureThreshold", probe.failure_threshold}};
    spec["readinessProbe"] = std::move(value);
  }
  if (!pod.hostname.empty()) spec["hostname"] = pod.hostname;
  if (!pod.subdomain.empty()) spec["subdomain"] = pod.subdomain;
  json status{
      {"conditions", json::array({{{"type", "Ready"},
                                   {"status", pod.readiness.ready ? "True" : "False"},
                                   {"reason", pod.readiness.reason},
                                   {"lastTransitionTime", timestamp(pod.readiness.changed_ms)}}})}};
  if (!pod.ips.empty()) {
    status["podIP"] = pod.ips.front().toString();
    for (const auto& ip : pod.ips) status["podIPs"].push_back({{"ip", ip.toString()}});
  }
  return json{{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", std::move(meta)},
              {"spec", std::move(spec)},
              {"status", std::move(status)}};
}

json endpointsJson(const store::ServiceEntry& entry) {
  const auto& service = entry.service;
  // Endpoints that share a port mapping form one subset, as Kubernetes groups them.
  std::map<std::vector<uint16_t>, json> subsets;
  for (const auto& endpoint : entry.endpoints) {
    auto& subset = subsets[endpoint.ports];
    json address{{"ip", endpoint.ip.toString()}};
    if (!endpoint.hostname.empty()) address["hostname"] = endpoint.hostname;
    if (!endpoint.pod_name.empty()) {
      address["targetRef"] = {
          {"kind", "Pod"}, {"name", endpoint.pod_name}, {"namespace", service.namespace_name}};
    }
    subset[endpoint.ready ? "addresses" : "notReadyAddresses"].push_back(std::move(address));
  }
  json list = json::array();
  for (auto& [ports, subset] : subsets) {
    for (size_t i = 0; i < ports.size(); ++i) {
      if (ports[i] == 0) continue;
      json port{{"port", ports[i]}, {"protocol", store::protocolName(service.ports[i].protocol)}};
      if (!service.ports[i].name.empty()) port["name"] = service.ports[i].name;
      subset["ports"].push_back(std::move(port));
    }
    list.push_back(std::move(subset));
  }
  return json{{"apiVersion", "v1"},
              {"kind", "Endpoints"},
              {"metadata", metadata(service.namespace_name, service.name, service.created_ms)},
              {"subsets", std::move(list)}};
}

std::string toYaml(const json& value) {
  YAML::Emitter out;
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string formatAge(int64_t created_ms, int64_t now_ms) {
  int64_t seconds = std::max<int64_t>(0, (now_ms - created_ms) / 1000);
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 180 * 60) return std::to_string(seconds / 60) + "m";
  if (seconds < 48 * 3600) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string servicePorts(const store::Service& service) {
  if (service.ports.empty()) return "<none>";
  std::string text;
  for (const auto& port : service.ports) {
    if (!text.empty()) text += ",";
    text += std::to_string(port.port) + "/" + store::protocolName(port.protocol);
  }
  return text;
}

std::string readyEndpoints(const store::ServiceEntry& entry, size_t limit) {
  std::vector<std::string> items;
  for (const auto& endpoint : entry.endpoints) {
    if (!endpoint.ready) continue;
    std::string host =
        endpoint.ip.isV4() ? endpoint.ip.toString() : "[" + endpoint.ip.toString() + "]";
    for (auto port : endpoint.ports) {
      if (port != 0) items.push_back(host + ":" + std::to_string(port));
    }
  }
  if (items.empty()) return "<none>";
  std::string text;
  for (size_t i = 0; i < items.size() && i < limit; ++i) text += (i ? "," : "") + items[i];
  if (items.size() > limit) text += " + " + std::to_string(items.size() - limit) + " more...";
  return text;
}

std::string Table::render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size());
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
    }
    text += line + "\n";
  }
  return text;
}

}  // namespace svcbox::app
