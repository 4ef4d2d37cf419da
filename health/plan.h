#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "health/prober.h"
#include "store/snapshot.h"

// What the prober does about one pod, decided from a snapshot alone: a pure function, so the
// Kubernetes rules are tested without a network.
namespace svcbox::health {

struct ProbePlan {
  enum class Kind : uint8_t { kTcpSocket, kHttpGet, kDefaultTcp };
  Kind kind = Kind::kTcpSocket;
  store::IpAddress ip;
  std::vector<uint16_t> ports;  // one for a readinessProbe; sorted and distinct for kDefaultTcp
  std::string path;             // kHttpGet only
  // Set when the pod cannot be probed as specified (no IP, a port name it does not have); every
  // probe then fails with this text and no packet is sent.
  std::string error;
  uint32_t initial_delay_seconds = 0;
  uint32_t period_seconds = 10;
  uint32_t timeout_seconds = 1;
  uint32_t success_threshold = 1;
  uint32_t failure_threshold = 3;
  bool operator==(const ProbePlan&) const = default;
};

struct PodPlan {
  enum class Kind : uint8_t { kLeaveAlone, kProbe, kVerdict };
  Kind kind = Kind::kLeaveAlone;
  ProbePlan probe;           // kProbe
  store::Readiness verdict;  // kVerdict: written when it differs from the stored readiness
};

inline constexpr const char* kNoTcpPort = "no TCP port to probe";

// "namespace/name", the key of every per-pod table.
std::string podKey(const std::string& namespace_name, const std::string& name);

// Every distinct TCP target port each pod serves for some Service, by podKey.
std::unordered_map<std::string, std::vector<uint16_t>> defaultProbePorts(
    const store::Snapshot& snapshot);

// `default_ports` is the pod's entry of defaultProbePorts, or null when it has none.
PodPlan planFor(const store::Pod& pod, const std::vector<uint16_t>* default_ports,
                const ProberOptions& options);

bool isAwaitingReason(const std::string& reason);

// Whether `verdict` must be written over `stored`: a different ready flag, or the same flag where
// the stored reason still says a probe is awaited.
bool needsWrite(const store::Readiness& verdict, const store::Readiness& stored);

std::string successReason(const ProbePlan& plan);
std::string failureReason(const ProbePlan& plan, const std::string& detail);

}  // namespace svcbox::health
