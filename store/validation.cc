#include "store/validation.h"

#include <set>
#include <utility>

namespace svcbox::store {
namespace {

bool isLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool isAlnum(char c) { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

std::string quoted(std::string_view value) { return "\"" + std::string(value) + "\""; }

std::string checkLabelLike(std::string_view value, bool must_start_with_letter, size_t max,
                           const char* what) {
  if (value.empty()) return std::string(what) + " must not be empty";
  if (value.size() > max) {
    return quoted(value) + " is longer than " + std::to_string(max) + " characters";
  }
  for (char c : value) {
    if (!isLowerAlnum(c) && c != '-') {
      return quoted(value) + " is not a valid " + what +
             ": use only lower-case letters, digits and '-'";
    }
  }
  if (must_start_with_letter && !(value.front() >= 'a' && value.front() <= 'z')) {
    return quoted(value) + " is not a valid " + what + ": it must start with a lower-case letter";
  }
  if (value.front() == '-' || value.back() == '-') {
    return quoted(value) + " is not a valid " + what +
           ": it must start and end with a letter or digit";
  }
  return {};
}

std::string at(const std::string& prefix, size_t index) {
  return prefix + "[" + std::to_string(index) + "]";
}

Status fail(std::string field, std::string message) {
  return invalid(std::move(field), std::move(message));
}

Status checkLabels(const Labels& labels, const std::string& field) {
  for (const auto& [key, value] : labels) {
    if (auto problem = checkLabelKey(key); !problem.empty()) return fail(field, problem);
    if (auto problem = checkLabelValue(value); !problem.empty()) {
      return fail(field + "." + key, problem);
    }
  }
  return Ok{};
}

// metadata.namespace (DNS-1123 label) and metadata.name (by the kind's rule).
Status checkMetadata(const std::string& namespace_name, const std::string& name,
                     std::string (*check_name)(std::string_view)) {
  if (auto problem = checkDns1123Label(namespace_name); !problem.empty()) {
    return fail("metadata.namespace", problem);
  }
  if (auto problem = check_name(name); !problem.empty()) return fail("metadata.name", problem);
  return Ok{};
}

Status checkPortRef(const PortRef& ref, const std::string& field) {
  if (ref.isNamed()) {
    if (auto problem = checkPortName(ref.name); !problem.empty()) return fail(field, problem);
  }
  return Ok{};
}

}  // namespace

std::string checkDns1035Label(std::string_view value) {
  return checkLabelLike(value, true, 63, "DNS-1035 label (a-z, 0-9, '-', starting with a letter)");
}

std::string checkDns1123Label(std::string_view value) {
  return checkLabelLike(value, false, 63, "DNS-1123 label (a-z, 0-9, '-')");
}

std::string checkDns1123Subdomain(std::string_view value) {
  if (value.empty()) return "the name must not be empty";
  if (value.size() > 253) return quoted(value) + " is longer than 253 characters";
  size_t start = 0;
  while (start <= value.size()) {
    size_t dot = value.find('.', start);
    auto part = value.substr(start, dot == std::string_view::npos ? value.npos : dot - start);
    if (auto problem = checkLabelLike(part, false, 63, "DNS-1123 subdomain part");
        !problem.empty()) {
      return quoted(value) +
             " is not a valid DNS-1123 subdomain: use lower-case letters, digits, '-' and '.', "
             "each part starting and ending with a letter or digit";
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return {};
}

std::string checkPortName(std::string_view value) {
  if (value.empty()) return "the port name must not be empty";
  if (value.size() > 15) return "port name " + quoted(value) + " is longer than 15 characters";
  bool has_letter = false;
  for (char c : value) {
    if (!isLowerAlnum(c) && c != '-') {
      return "port name " + quoted(value) + " may contain only lower-case letters, digits and '-'";
    }
    has_letter |= (c >= 'a' && c <= 'z');
  }
  if (!has_letter) return "port name " + quoted(value) + " must contain at least one letter";
  if (value.front() == '-' || value.back() == '-' || value.find("--") != value.npos) {
    return "port name " + quoted(value) + " must not begin or end with '-' nor contain '--'";
  }
  return {};
}

std::string checkLabelKey(std::string_view value) {
  auto slash = value.find('/');
  auto name = value;
  if (slash != std::string_view::npos) {
    auto prefix = value.substr(0, slash);
    if (auto problem = checkDns1123Subdomain(prefix); !problem.empty()) {
      return "label key " + quoted(value) + " has an invalid prefix: " + problem;
    }
    name = value.substr(slash + 1);
  }
  if (name.empty() || name.size() > 63) {
    return "label key " + quoted(value) + " must have a name of 1 to 63 characters";
  }
  auto problem = checkLabelValue(name);
  if (!problem.empty()) return "label key " + quoted(value) + " is invalid: " + problem;
  return {};
}

std::string checkLabelValue(std::string_view value) {
  if (value.empty()) return {};
  if (value.size() > 63) return "label value " + quoted(value) + " is longer than 63 characters";
  for (char c : value) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') {
      return "label value " + quoted(value) + " may contain only letters, digits, '-', '_' and '.'";
    }
  }
  if (!isAlnum(value.front()) || !isAlnum(value.back())) {
    return "label value " + quoted(value) + " must start and end with a letter or digit";
  }
  return {};
}

Status validateService(const Service& service) {
  if (auto status = checkMetadata(service.namespace_name, service.name, checkDns1035Label);
      !status) {
    return status;
  }
  if (service.type == ServiceType::kExternalName) {
    if (service.external_name.empty()) {
      return fail("spec.externalName", "a Service of type ExternalName needs spec.externalName");
    }
    // As Kubernetes: a fully qualified name may end in a dot (kept as written).
    std::string_view target = service.external_name;
    if (target.size() > 1 && target.back() == '.') target.remove_suffix(1);
    if (auto problem = checkDns1123Subdomain(target); !problem.empty()) {
      return fail("spec.externalName", problem);
    }
    if (service.cluster_ip || service.headless) {
      return fail("spec.clusterIP", "a Service of type ExternalName must not set spec.clusterIP");
    }
  } else {
    if (!service.external_name.empty()) {
      return fail("spec.externalName", "spec.externalName is only for type: ExternalName");
    }
    if (service.ports.empty() && !service.headless) {
      return fail("spec.ports", "a ClusterIP Service needs at least one port");
    }
  }
  if (auto status =
          service.selector ? checkLabels(*service.selector, "spec.selector") : Status{Ok{}};
      !status) {
    return status;
  }
  std::set<std::string> names;
  std::set<std::pair<uint16_t, Protocol>> numbers;
  for (size_t i = 0; i < service.ports.size(); ++i) {
    const auto& port = service.ports[i];
    auto field = at("spec.ports", i);
    if (service.ports.size() > 1 && port.name.empty()) {
      return fail(field + ".name", "a Service with more than one port must name every port");
    }
    if (!port.name.empty()) {
      if (auto problem = checkDns1123Label(port.name); !problem.empty()) {
        return fail(field + ".name", problem);
      }
      if (!names.insert(port.name).second) {
        return fail(field + ".name", "duplicate port name \"" + port.name + "\"");
      }
    }
    if (port.port == 0) return fail(field + ".port", "port must be between 1 and 65535");
    if (!numbers.insert({port.port, port.protocol}).second) {
      return fail(
          field, "duplicate port " + std::to_string(port.port) + "/" + protocolName(port.protocol));
    }
    if (auto status = checkPortRef(port.target_port, field + ".targetPort"); !status) return status;
  }
  if (service.session_affinity == SessionAffinity::kClientIP &&
      (service.affinity_timeout_seconds == 0 || service.affinity_timeout_seconds > 86400)) {
    return fail("spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                "timeoutSeconds must be between 1 and 86400");
  }
  return Ok{};
}

Status validatePod(const Pod& pod) {
  if (auto status = checkMetadata(pod.namespace_name, pod.name, checkDns1123Subdomain); !status) {
    return status;
  }
  if (auto status = checkLabels(pod.labels, "metadata.labels"); !status) return status;
  if (!pod.hostname.empty()) {
    if (auto problem = checkDns1123Label(pod.hostname); !problem.empty()) {
      return fail("spec.hostname", problem);
    }
  }
  if (!pod.subdomain.empty()) {
    if (auto problem = checkDns1123Label(pod.subdomain); !problem.empty()) {
      return fail("spec.subdomain", problem);
    }
  }
  if (pod.ips.size() > 2 || (pod.ips.size() == 2 && pod.ips[0].family == pod.ips[1].family)) {
    return fail("status.podIPs", "a Pod has at most one IPv4 and one IPv6 address");
  }
  std::set<std::string> names;
  std::set<std::pair<uint16_t, Protocol>> numbers;
  for (size_t i = 0; i < pod.ports.size(); ++i) {
    const auto& port = pod.ports[i];
    auto field = "spec.containers[" + port.container + "].ports[" + std::to_string(i) + "]";
    if (port.container_port == 0) {
      return fail(field + ".containerPort", "containerPort must be between 1 and 65535");
    }
    if (!port.name.empty()) {
      if (auto problem = checkPortName(port.name); !problem.empty()) {
        return fail(field + ".name", problem);
      }
      if (!names.insert(port.name).second) {
        return fail(field + ".name", "duplicate port name \"" + port.name + "\" in this Pod");
      }
    }
    if (!numbers.insert({port.container_port, port.protocol}).second) {
      return fail(field, "duplicate containerPort " + std::to_string(port.container_port) + "/" +
                             protocolName(port.protocol) + " in this Pod");
    }
  }
  if (pod.readiness_probe) {
    const auto& probe = *pod.readiness_probe;
    std::string field = "spec.containers.readinessProbe";
    if (auto status = checkPortRef(probe.port, field + ".port"); !status) return status;
    if (probe.port.isNamed() && !names.contains(probe.port.name)) {
      return fail(field + ".port", "the probe names port \"" + probe.port.name +
                                       "\", which no container of this Pod declares");
    }
    if (probe.period_seconds == 0) return fail(field + ".periodSeconds", "must be at least 1");
    if (probe.timeout_seconds == 0) return fail(field + ".timeoutSeconds", "must be at least 1");
    if (probe.success_threshold == 0) {
      return fail(field + ".successThreshold", "must be at least 1");
    }
    if (probe.failure_threshold == 0) {
      return fail(field + ".failureThreshold", "must be at least 1");
    }
    if (probe.kind == Probe::Kind::kHttpGet && (probe.path.empty() || probe.path.front() != '/')) {
      return fail(field + ".httpGet.path", "the path must start with '/'");
    }
  }
  return Ok{};
}

Status validateEndpointSet(const EndpointSet& set) {
  if (auto status = checkMetadata(set.namespace_name, set.name, checkDns1123Subdomain); !status) {
    return status;
  }
  if (auto problem = checkDns1035Label(set.service_name); !problem.empty()) {
    return fail(set.kind == EndpointSet::Kind::kEndpointSlice
                    ? "metadata.labels.kubernetes.io/service-name"
                    : "metadata.name",
                "the Service name: " + problem);
  }
  for (size_t g = 0; g < set.groups.size(); ++g) {
    const auto& group = set.groups[g];
    std::set<std::string> names;
    for (size_t i = 0; i < group.ports.size(); ++i) {
      const auto& port = group.ports[i];
      auto field =
          at(set.kind == EndpointSet::Kind::kEndpoints ? at("subsets", g) + ".ports" : "ports", i);
      if (port.port == 0) return fail(field + ".port", "port must be between 1 and 65535");
      if (group.ports.size() > 1 && port.name.empty()) {
        return fail(field + ".name", "with more than one port every port needs a name");
      }
      if (!names.insert(port.name).second) {
        return fail(field + ".name", "duplicate port name \"" + port.name + "\"");
      }
    }
  }
  return Ok{};
}

}  // namespace svcbox::store
