#include "health/plan.h"

#include <algorithm>

namespace svcbox::health {
namespace {

constexpr const char* kDefaultProbePrefix = "default TCP probe";

bool startsWith(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

ProbePlan readinessProbePlan(const store::Pod& pod, const store::Probe& probe) {
  ProbePlan plan;
  plan.kind = probe.kind == store::Probe::Kind::kHttpGet ? ProbePlan::Kind::kHttpGet
                                                         : ProbePlan::Kind::kTcpSocket;
  plan.initial_delay_seconds = probe.initial_delay_seconds;
  // Kubernetes' minimum of 1 for each; a zero here would spin or never decide.
  plan.period_seconds = std::max(probe.period_seconds, 1u);
  plan.timeout_seconds = std::max(probe.timeout_seconds, 1u);
  plan.success_threshold = std::max(probe.success_threshold, 1u);
  plan.failure_threshold = std::max(probe.failure_threshold, 1u);
  if (plan.kind == ProbePlan::Kind::kHttpGet) {
    plan.path = probe.path.empty() || probe.path[0] != '/' ? "/" + probe.path : probe.path;
  }
  uint16_t port = probe.port.number;
  if (probe.port.isNamed()) {
    for (const auto& container_port : pod.ports) {
      if (container_port.name == probe.port.name) {
        port = container_port.container_port;
        break;
      }
    }
    if (port == 0) {
      plan.error = "port \"" + probe.port.name + "\" is not a container port of the pod";
    }
  }
  plan.ports = {port};
  if (probe.kind == store::Probe::Kind::kHttpGet && probe.scheme != "HTTP") {
    plan.error = "scheme " + probe.scheme + " is not supported (only HTTP)";
  }
  if (pod.ips.empty()) plan.error = "the pod has no IP address";
  if (!pod.ips.empty()) plan.ip = pod.ips[0];
  return plan;
}

std::string portList(const std::vector<uint16_t>& ports) {
  std::string text;
  for (uint16_t port : ports) {
    if (!text.empty()) text += ", ";
    text += std::to_string(port);
  }
  return text;
}

}  // namespace

std::string podKey(const std::string& namespace_name, const std::string& name) {
  return namespace_name + "/" + name;
}

std::unordered_map<std::string, std::vector<uint16_t>> defaultProbePorts(
    const store::Snapshot& snapshot) {
  std::unordered_map<std::string, std::vector<uint16_t>> ports;
  for (const auto& entry : snapshot.services()) {
    const auto& service_ports = entry.service.ports;
    for (const auto& endpoint : entry.endpoints) {
      if (endpoint.pod_name.empty()) continue;
      size_t count = std::min(service_ports.size(), endpoint.ports.size());
      for (size_t i = 0; i < count; ++i) {
        if (service_ports[i].protocol != store::Protocol::kTcp || endpoint.ports[i] == 0) continue;
        ports[podKey(entry.service.namespace_name, endpoint.pod_name)].push_back(endpoint.ports[i]);
      }
    }
  }
  for (auto& [key, list] : ports) {
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }
  return ports;
}

PodPlan planFor(const store::Pod& pod, const std::vector<uint16_t>* default_ports,
                const ProberOptions& options) {
  PodPlan result;
  if (pod.readiness_probe) {
    result.kind = PodPlan::Kind::kProbe;
    result.probe = readinessProbePlan(pod, *pod.readiness_probe);
    return result;
  }
  // A pod that reports its own readiness (say, draining while it still accepts connections) knows
  // better than a TCP connect; re-applying the pod with a new shape hands it back to the probe.
  if (startsWith(pod.readiness.reason, store::kReportedByPod)) return result;
  if (options.default_probe == store::DefaultProbe::kNone) {
    // Pods a default probe left behind (an earlier serve ran with --default-probe=tcp) would stay
    // not ready for ever with nobody probing them.
    const auto& stored = pod.readiness;
    if (!stored.ready && (stored.reason == store::kAwaitingDefaultProbe ||
                          startsWith(stored.reason, kDefaultProbePrefix))) {
      result.kind = PodPlan::Kind::kVerdict;
      result.verdict = store::Readiness{true, store::kNoReadinessProbe, 0};
    }
    return result;
  }
  if (default_ports == nullptr || default_ports->empty()) {
    result.kind = PodPlan::Kind::kVerdict;
    result.verdict = store::Readiness{true, kNoTcpPort, 0};
    return result;
  }
  result.kind = PodPlan::Kind::kProbe;
  ProbePlan& plan = result.probe;
  plan.kind = ProbePlan::Kind::kDefaultTcp;
  plan.ports = *default_ports;
  plan.period_seconds = std::max(options.default_period_seconds, 1u);
  plan.timeout_seconds = std::max(options.default_timeout_seconds, 1u);
  plan.success_threshold = 1;
  plan.failure_threshold = std::max(options.default_failure_threshold, 1u);
  if (pod.ips.empty()) {
    plan.error = "the pod has no IP address";
  } else {
    plan.ip = pod.ips[0];
  }
  return result;
}

bool isAwaitingReason(const std::string& reason) {
  return reason == store::kAwaitingProbe || reason == store::kAwaitingDefaultProbe;
}

bool needsWrite(const store::Readiness& verdict, const store::Readiness& stored) {
  if (verdict.ready != stored.ready) return true;
  return isAwaitingReason(stored.reason) && verdict.reason != stored.reason;
}

std::string successReason(const ProbePlan& plan) {
  if (plan.kind == ProbePlan::Kind::kDefaultTcp) {
    return std::string(kDefaultProbePrefix) + " succeeded (ports " + portList(plan.ports) + ")";
  }
  return "readiness probe succeeded";
}

std::string failureReason(const ProbePlan& plan, const std::string& detail) {
  std::string times =
      plan.failure_threshold == 1 ? "once" : std::to_string(plan.failure_threshold) + " times";
  const char* what =
      plan.kind == ProbePlan::Kind::kDefaultTcp ? kDefaultProbePrefix : "readiness probe";
  return std::string(what) + " failed " + times + ": " + detail;
}

}  // namespace svcbox::health
