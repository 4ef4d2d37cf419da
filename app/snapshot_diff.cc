#include "app/snapshot_diff.h"

#include <map>
#include <set>

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

template <typename Item, typename Key>
std::map<std::string, const Item*> index(const std::vector<Item>& items, Key key_of) {
  std::map<std::string, const Item*> map;
  for (const auto& item : items) map.emplace(key_of(item), &item);
  return map;
}

}  // namespace

std::vector<std::string> describeChanges(const store::Snapshot* previous,
                                         const store::Snapshot& current) {
  std::vector<std::string> lines;
  static const store::Snapshot kEmpty(0, std::nullopt, {}, std::vector<store::PodPtr>{}, {});
  const store::Snapshot& before = previous ? *previous : kEmpty;
  auto service_key = [](const store::ServiceEntry& e) {
    return key(e.service.namespace_name, e.service.name);
  };
  auto pod_key = [](const store::PodPtr& p) { return key(p->namespace_name, p->name); };
  auto old_services = index(before.services(), service_key);
  auto new_services = index(current.services(), service_key);
  for (const auto& [name, entry] : new_services) {
    auto it = old_services.find(name);
    if (it == old_services.end()) {
      lines.push_back("service " + name + " added (" + describe(entry->service) + ")");
    } else if (!(it->second->service == entry->service)) {
      lines.push_back("service " + name + " changed (" + describe(entry->service) + ")");
    }
    auto old_endpoints =
        it == old_services.end() ? std::set<std::string>{} : endpointTexts(*it->second);
    auto new_endpoints = endpointTexts(*entry);
    std::string delta;
    for (const auto& text : new_endpoints) {
      if (!old_endpoints.contains(text)) delta += " +" + text;
    }
    for (const auto& text : old_endpoints) {
      if (!new_endpoints.contains(text)) delta += " -" + text;
    }
    if (!delta.empty()) lines.push_back("endpoints " + name + ":" + delta);
  }
  for (const auto& [name, entry] : old_services) {
    if (!new_services.contains(name)) lines.push_back("service " + name + " removed");
  }
  auto old_pods = index(before.pods(), pod_key);
  auto new_pods = index(current.pods(), pod_key);
  for (const auto& [name, shared] : new_pods) {
    const store::PodPtr& pod = *shared;
    auto it = old_pods.find(name);
    std::string state =
        std::string(pod->readiness.ready ? "ready" : "not ready") + ": " + pod->readiness.reason;
    std::string ip = pod->ips.empty() ? "no IP" : pod->ips.front().toString();
    if (it == old_pods.end()) {
      lines.push_back("pod " + name + " added (" + ip + ", " + state + ")");
    } else if ((*it->second)->readiness.ready != pod->readiness.ready) {
      lines.push_back("pod " + name + " became " + state);
    } else if (!(**it->second == *pod)) {
      lines.push_back("pod " + name + " changed (" + ip + ", " + state + ")");
    }
  }
  for (const auto& [name, pod] : old_pods) {
    if (!new_pods.contains(name)) lines.push_back("pod " + name + " removed");
  }
  return lines;
}

}  // namespace svcbox::app
