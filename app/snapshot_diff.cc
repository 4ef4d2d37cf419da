#include "app/snapshot_diff.h"

#include <set>
#include <tuple>

#include "app/log.h"
#include "app/render.h"

namespace svcbox::app {
namespace {

std::string key(const std::string& namespace_name, const std::string& name) {
  return namespace_name + "/" + name;
}

std::string describe(const store::Service& service) {
  return store::serviceAddressText(service) + ", ports " + servicePorts(service);
}

std::set<std::string> endpointTexts(const store::ServiceEntry& entry) {
  std::set<std::string> texts;
  for (const auto& endpoint : entry.endpoints) {
    for (auto port : endpoint.ports) {
      if (port == 0) continue;
      texts.insert(endpoint.ip.toString() + ":" + std::to_string(port) +
                   (endpoint.ready ? "" : " (not ready)"));
    }
    if (endpoint.ports.empty())
      texts.insert(endpoint.ip.toString() + (endpoint.ready ? "" : " (not ready)"));
  }
  return texts;
}

// Both snapshots keep their objects sorted by (namespace, name), so one merge walk pairs them
// without building an index: the log runs on every snapshot, beside the router, and at 10,000
// Services an index of strings cost as much CPU as a rule sync.
template <typename Item, typename NameOf, typename Visit>
void pairUp(const std::vector<Item>& before, const std::vector<Item>& after, NameOf name_of,
            Visit visit) {
  size_t i = 0, j = 0;
  while (i < before.size() || j < after.size()) {
    if (j == after.size() || (i < before.size() && name_of(before[i]) < name_of(after[j]))) {
      visit(&before[i++], nullptr);
    } else if (i == before.size() || name_of(after[j]) < name_of(before[i])) {
      visit(nullptr, &after[j++]);
    } else {
      visit(&before[i++], &after[j++]);
    }
  }
}

}  // namespace

std::vector<std::string> describeChanges(const store::Snapshot* previous,
                                         const store::Snapshot& current) {
  std::vector<std::string> lines;
  static const store::Snapshot kEmpty(0, std::nullopt, {}, std::vector<store::PodPtr>{}, {});
  const store::Snapshot& before = previous ? *previous : kEmpty;
  auto service_name = [](const store::ServiceEntryPtr& e) {
    return std::tie(e->service.namespace_name, e->service.name);
  };
  pairUp(before.sharedServices(), current.sharedServices(), service_name,
         [&](const store::ServiceEntryPtr* old_shared, const store::ServiceEntryPtr* shared) {
           // Entries no change touched are the very object of the previous snapshot.
           if (old_shared && shared && *old_shared == *shared) return;
           const store::ServiceEntry* old = old_shared ? old_shared->get() : nullptr;
           const store::ServiceEntry* entry = shared ? shared->get() : nullptr;
           const auto& service = entry ? entry->service : old->service;
           std::string name = key(service.namespace_name, service.name);
           if (!entry) {
             lines.push_back("service " + name + " removed");
             return;
           }
           if (!old) {
             lines.push_back("service " + name + " added (" + describe(entry->service) + ")");
           } else if (!(old->service == entry->service)) {
             lines.push_back("service " + name + " changed (" + describe(entry->service) + ")");
           }
           if (old && old->endpoints == entry->endpoints) return;
           auto old_endpoints = old ? endpointTexts(*old) : std::set<std::string>{};
           auto new_endpoints = endpointTexts(*entry);
           std::string delta;
           for (const auto& text : new_endpoints) {
             if (!old_endpoints.contains(text)) delta += " +" + text;
           }
           for (const auto& text : old_endpoints) {
             if (!new_endpoints.contains(text)) delta += " -" + text;
           }
           if (!delta.empty()) lines.push_back("endpoints " + name + ":" + delta);
         });
  auto pod_name = [](const store::PodPtr& p) { return std::tie(p->namespace_name, p->name); };
  pairUp(before.pods(), current.pods(), pod_name,
         [&](const store::PodPtr* old, const store::PodPtr* shared) {
           // Unchanged pods are the very object of the previous snapshot.
           if (old && shared && *old == *shared) return;
           const store::Pod& pod = shared ? **shared : **old;
           std::string name = key(pod.namespace_name, pod.name);
           if (!shared) {
             lines.push_back("pod " + name + " removed");
             return;
           }
           std::string state = std::string(pod.readiness.ready ? "ready" : "not ready") + ": " +
                               pod.readiness.reason;
           std::string ip = pod.ips.empty() ? "no IP" : pod.ips.front().toString();
           if (!old) {
             lines.push_back("pod " + name + " added (" + ip + ", " + state + ")");
           } else if ((*old)->readiness.ready != pod.readiness.ready) {
             lines.push_back("pod " + name + " became " + state);
           } else if (!(**old == pod)) {
             lines.push_back("pod " + name + " changed (" + ip + ", " + state + ")");
           }
         });
  return lines;
}

void logSnapshotChanges(const store::SnapshotPtr& previous, const store::SnapshotPtr& current) {
  constexpr size_t kMaxLines = 20;
  if (!previous) {
    auto count = [](size_t n, const char* noun) {
      return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
    };
    logInfo("registry loaded: version " + std::to_string(current->version()) + ", " +
            count(current->services().size(), "service") + ", " +
            count(current->pods().size(), "pod"));
  }
  auto lines = describeChanges(previous.get(), *current);
  if (!previous && lines.size() > kMaxLines) return;
  for (size_t i = 0; i < lines.size() && i < kMaxLines; ++i) {
    logInfo("snapshot " + std::to_string(current->version()) + ": " + lines[i]);
  }
  if (lines.size() > kMaxLines) {
    logInfo("snapshot " + std::to_string(current->version()) + ": ... and " +
            std::to_string(lines.size() - kMaxLines) + " more changes");
  }
}

}  // namespace svcbox::app
