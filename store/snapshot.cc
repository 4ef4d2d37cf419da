#include "store/snapshot.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

namespace svcbox::store {
namespace {

template <typename T>
auto byName(const T& object) {
  return std::tie(object.namespace_name, object.name);
}

template <typename Vector, typename Project>
auto findByName(const Vector& items, std::string_view namespace_name, std::string_view name,
                Project project) -> decltype(&items.front()) {
  auto key = std::make_tuple(namespace_name, name);
  auto it = std::lower_bound(items.begin(), items.end(), key, [&](const auto& item, const auto& k) {
    const auto& object = project(item);
    return std::make_tuple(std::string_view(object.namespace_name), std::string_view(object.name)) <
           k;
  });
  if (it == items.end()) return nullptr;
  const auto& object = project(*it);
  if (object.namespace_name != namespace_name || object.name != name) return nullptr;
  return &*it;
}

// Sorts by moving each element once: comparing keys is cheap, moving a Pod is not.
template <typename T, typename Key>
void sortBy(std::vector<T>& items, Key key) {
  auto less = [&](const T& a, const T& b) { return key(a) < key(b); };
  if (std::is_sorted(items.begin(), items.end(), less)) return;
  std::vector<const T*> order;
  order.reserve(items.size());
  for (const auto& item : items) order.push_back(&item);
  std::sort(order.begin(), order.end(), [&](const T* a, const T* b) { return less(*a, *b); });
  std::vector<T> sorted;
  sorted.reserve(items.size());
  for (const T* item : order) sorted.push_back(std::move(*const_cast<T*>(item)));
  items.swap(sorted);
}

// (namespace, label key, label value), hashed without building a string.
struct LabelKey {
  std::string_view namespace_name, key, value;
  bool operator==(const LabelKey&) const = default;
};
struct LabelKeyHash {
  size_t operator()(const LabelKey& k) const noexcept {
    std::hash<std::string_view> hash;
    return hash(k.namespace_name) ^ (hash(k.key) * 31) ^ (hash(k.value) * 1000003);
  }
};

const IpAddress* podAddressFor(const Pod& pod, const Service& service) {
  if (pod.ips.empty()) return nullptr;
  if (!service.cluster_ip) return &pod.ips.front();
  for (const auto& ip : pod.ips) {
    if (ip.family == service.cluster_ip->family) return &ip;
  }
  return nullptr;
}

uint16_t resolveTargetPort(const ServicePort& port, const Pod& pod) {
  if (!port.target_port.isNamed()) return port.target_port.number;
  for (const auto& container_port : pod.ports) {
    if (container_port.name == port.target_port.name && container_port.protocol == port.protocol) {
      return container_port.container_port;
    }
  }
  return 0;
}

void addSelectedPods(ServiceEntry& entry, const std::vector<const Pod*>& candidates) {
  const auto& service = entry.service;
  // The candidates already share one selector pair; only longer selectors need a check.
  bool check = service.selector->size() > 1;
  entry.endpoints.reserve(candidates.size());
  for (const Pod* pod : candidates) {
    if (check && !selectorMatches(*service.selector, pod->labels)) continue;
    const IpAddress* ip = podAddressFor(*pod, service);
    if (!ip) continue;
    std::string hostname = pod->subdomain == service.name ? pod->hostname : std::string();
    Endpoint endpoint{*ip, pod->readiness.ready, pod->name, std::move(hostname), {}};
    for (const auto& port : service.ports) endpoint.ports.push_back(resolveTargetPort(port, *pod));
    entry.endpoints.push_back(std::move(endpoint));
  }
}

void addExplicitEndpoints(ServiceEntry& entry, const EndpointSet& set) {
  const auto& service = entry.service;
  for (const auto& group : set.groups) {
    std::vector<uint16_t> ports;
    for (const auto& service_port : service.ports) {
      uint16_t number = 0;
      for (const auto& port : group.ports) {
        if (port.name == service_port.name && port.protocol == service_port.protocol) {
          number = port.port;
        }
      }
      ports.push_back(number);
    }
    for (const auto& address : group.addresses) {
      if (service.cluster_ip && address.ip.family != service.cluster_ip->family) continue;
      entry.endpoints.push_back(
          Endpoint{address.ip, address.ready, address.target_pod, address.hostname, ports});
    }
  }
}

}  // namespace

bool selectorMatches(const Labels& selector, const Labels& labels) {
  for (const auto& [key, value] : selector) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

std::vector<PodPtr> sharePods(std::vector<Pod> pods) {
  std::vector<PodPtr> shared;
  shared.reserve(pods.size());
  for (auto& pod : pods) shared.push_back(std::make_shared<const Pod>(std::move(pod)));
  return shared;
}

std::vector<ServiceEntry> resolveEndpoints(std::vector<Service> services,
                                           const std::vector<Pod>& pods,
                                           const std::vector<EndpointSet>& endpoint_sets) {
  std::vector<PodPtr> shared;
  shared.reserve(pods.size());
  // Non-owning pointers: the pods outlive this call.
  for (const auto& pod : pods) shared.push_back(PodPtr(PodPtr(), &pod));
  return resolveEndpoints(std::move(services), shared, endpoint_sets);
}

std::vector<ServiceEntry> resolveEndpoints(std::vector<Service> services,
                                           const std::vector<PodPtr>& pods,
                                           const std::vector<EndpointSet>& endpoint_sets) {
  // Index pods by (namespace, label) so a selector looks at its smallest candidate list
  // instead of every pod.
  std::unordered_map<LabelKey, std::vector<const Pod*>, LabelKeyHash> by_label;
  by_label.reserve(pods.size());
  for (const auto& shared : pods) {
    const Pod& pod = *shared;
    for (const auto& [key, value] : pod.labels) {
      by_label[{pod.namespace_name, key, value}].push_back(&pod);
    }
  }
  std::map<std::pair<std::string_view, std::string_view>, std::vector<const EndpointSet*>> sets;
  for (const auto& set : endpoint_sets)
    sets[{set.namespace_name, set.service_name}].push_back(&set);

  static const std::vector<const Pod*> kNone;
  std::vector<ServiceEntry> entries;
  entries.reserve(services.size());
  for (auto& service : services) {
    ServiceEntry entry{std::move(service), {}};
    const auto& svc = entry.service;
    if (svc.type == ServiceType::kExternalName) {
      // ExternalName Services have no endpoints.
    } else if (svc.selector) {
      const std::vector<const Pod*>* candidates = &kNone;
      std::vector<const Pod*> in_namespace;
      if (svc.selector->empty()) {
        // Rare (manifests turn an empty selector into none): every pod of the namespace.
        for (const auto& pod : pods) {
          if (pod->namespace_name == svc.namespace_name) in_namespace.push_back(pod.get());
        }
        candidates = &in_namespace;
      } else {
        bool first = true;
        for (const auto& [key, value] : *svc.selector) {
          auto it = by_label.find({svc.namespace_name, key, value});
          const auto* list = it == by_label.end() ? &kNone : &it->second;
          if (first || list->size() < candidates->size()) candidates = list;
          first = false;
        }
      }
      addSelectedPods(entry, *candidates);
    } else if (auto it = sets.find({svc.namespace_name, svc.name}); it != sets.end()) {
      for (const auto* set : it->second) addExplicitEndpoints(entry, *set);
    }
    std::stable_sort(entry.endpoints.begin(), entry.endpoints.end(),
                     [](const Endpoint& a, const Endpoint& b) { return a.ip < b.ip; });
    // Several slices may list one address; the first listing wins.
    entry.endpoints.erase(
        std::unique(entry.endpoints.begin(), entry.endpoints.end(),
                    [](const Endpoint& a, const Endpoint& b) { return a.ip == b.ip; }),
        entry.endpoints.end());
    entries.push_back(std::move(entry));
  }
  return entries;
}

Snapshot::Snapshot(uint64_t version, std::optional<Cidr> service_cidr,
                   std::vector<ServiceEntry> services, std::vector<PodPtr> pods,
                   std::vector<EndpointSet> endpoint_sets, int64_t committed_ms)
    : version_(version),
      committed_ms_(committed_ms),
      service_cidr_(std::move(service_cidr)),
      services_(std::move(services)),
      pods_(std::move(pods)),
      endpoint_sets_(std::move(endpoint_sets)) {
  sortBy(services_, [](const ServiceEntry& e) { return byName(e.service); });
  sortBy(pods_, [](const PodPtr& p) { return byName(*p); });
  sortBy(endpoint_sets_,
         [](const EndpointSet& e) { return std::tie(e.namespace_name, e.name, e.kind); });
  service_by_ip_.reserve(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    if (services_[i].service.cluster_ip) {
      service_by_ip_.emplace_back(*services_[i].service.cluster_ip, static_cast<uint32_t>(i));
    }
  }
  std::sort(service_by_ip_.begin(), service_by_ip_.end());
  pod_by_ip_.reserve(pods_.size());
  for (size_t i = 0; i < pods_.size(); ++i) {
    for (const auto& ip : pods_[i]->ips) pod_by_ip_.emplace_back(ip, static_cast<uint32_t>(i));
  }
  std::sort(pod_by_ip_.begin(), pod_by_ip_.end());
}

namespace {
// The (address, index) pairs of `sorted` whose address is `ip`.
auto equalRange(const std::vector<std::pair<IpAddress, uint32_t>>& sorted, const IpAddress& ip) {
  return std::equal_range(sorted.begin(), sorted.end(), std::pair<IpAddress, uint32_t>{ip, 0},
                          [](const auto& a, const auto& b) { return a.first < b.first; });
}
}  // namespace

const ServiceEntry* Snapshot::findService(std::string_view namespace_name,
                                          std::string_view name) const {
  return findByName(services_, namespace_name, name,
                    [](const ServiceEntry& entry) -> const Service& { return entry.service; });
}

const Pod* Snapshot::findPod(std::string_view namespace_name, std::string_view name) const {
  auto found =
      findByName(pods_, namespace_name, name, [](const PodPtr& pod) -> const Pod& { return *pod; });
  return found ? found->get() : nullptr;
}

const ServiceEntry* Snapshot::findServiceByIp(const IpAddress& cluster_ip) const {
  auto [first, last] = equalRange(service_by_ip_, cluster_ip);
  return first == last ? nullptr : &services_[first->second];
}

std::vector<const Pod*> Snapshot::findPodsByIp(const IpAddress& ip) const {
  std::vector<const Pod*> found;
  auto [first, last] = equalRange(pod_by_ip_, ip);
  for (auto it = first; it != last; ++it) found.push_back(pods_[it->second].get());
  return found;
}

}  // namespace svcbox::store
