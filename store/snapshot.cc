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

// `pods`: the pods the Service's selector matches.
void addSelectedPods(ServiceEntry& entry, const std::vector<const Pod*>& pods) {
  const auto& service = entry.service;
  entry.endpoints.reserve(pods.size());
  for (const Pod* pod : pods) {
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

namespace {

// Resolves Services one at a time against one set of pods and endpoint sets.
class EndpointResolver {
 public:
  // `index_labels`: index pods by (namespace, label) so each selector looks at its smallest
  // candidate list; worth it for many Services, not for the few a small change touches.
  EndpointResolver(const std::vector<PodPtr>& pods, const std::vector<EndpointSet>& endpoint_sets,
                   bool index_labels)
      : pods_(pods), indexed_(index_labels) {
    if (indexed_) {
      by_label_.reserve(pods.size());
      for (const auto& shared : pods) {
        const Pod& pod = *shared;
        for (const auto& [key, value] : pod.labels) {
          by_label_[{pod.namespace_name, key, value}].push_back(&pod);
        }
      }
    }
    for (const auto& set : endpoint_sets)
      sets_[{set.namespace_name, set.service_name}].push_back(&set);
  }

  ServiceEntry resolve(Service service) const {
    ServiceEntry entry{std::move(service), {}};
    const auto& svc = entry.service;
    if (svc.type == ServiceType::kExternalName) {
      // ExternalName Services have no endpoints.
    } else if (svc.selector) {
      addSelectedPods(entry, candidates(svc));
    } else if (auto it = sets_.find({svc.namespace_name, svc.name}); it != sets_.end()) {
      for (const auto* set : it->second) addExplicitEndpoints(entry, *set);
    }
    finish(entry);
    return entry;
  }

  // The same for a Service with a selector, looking only at `pods` (in name order): the caller
  // knows no other pod can be selected.
  static ServiceEntry resolveAmong(Service service, const std::vector<const Pod*>& pods) {
    ServiceEntry entry{std::move(service), {}};
    std::vector<const Pod*> selected;
    for (const Pod* pod : pods) {
      if (pod->namespace_name == entry.service.namespace_name &&
          selectorMatches(*entry.service.selector, pod->labels))
        selected.push_back(pod);
    }
    addSelectedPods(entry, selected);
    finish(entry);
    return entry;
  }

 private:
  static void finish(ServiceEntry& entry) {
    std::stable_sort(entry.endpoints.begin(), entry.endpoints.end(),
                     [](const Endpoint& a, const Endpoint& b) { return a.ip < b.ip; });
    // Several slices (or pods) may list one address; the first listing wins.
    entry.endpoints.erase(
        std::unique(entry.endpoints.begin(), entry.endpoints.end(),
                    [](const Endpoint& a, const Endpoint& b) { return a.ip == b.ip; }),
        entry.endpoints.end());
  }

  // Pods that may match the Service's selector (addSelectedPods checks the rest).
  std::vector<const Pod*> candidates(const Service& svc) const {
    std::vector<const Pod*> found;
    if (!indexed_ || svc.selector->empty()) {
      // An empty selector (rare: manifests turn it into none) takes every pod of the namespace.
      for (const auto& pod : pods_) {
        if (pod->namespace_name == svc.namespace_name &&
            selectorMatches(*svc.selector, pod->labels))
          found.push_back(pod.get());
      }
      return found;
    }
    const std::vector<const Pod*>* smallest = nullptr;
    for (const auto& [key, value] : *svc.selector) {
      auto it = by_label_.find({svc.namespace_name, key, value});
      if (it == by_label_.end()) return found;
      if (!smallest || it->second.size() < smallest->size()) smallest = &it->second;
    }
    for (const Pod* pod : *smallest) {
      if (selectorMatches(*svc.selector, pod->labels)) found.push_back(pod);
    }
    return found;
  }

  const std::vector<PodPtr>& pods_;
  bool indexed_;
  std::unordered_map<LabelKey, std::vector<const Pod*>, LabelKeyHash> by_label_;
  std::map<std::pair<std::string_view, std::string_view>, std::vector<const EndpointSet*>> sets_;
};

// Below this many Services to resolve, scanning every pod per Service beats indexing them all.
constexpr size_t kIndexLabelsFrom = 8;
// Above this many changed pods a rebuild resolves every Service instead of looking for the
// ones the changes touch.
constexpr size_t kMaxChangedPodsToTrack = 64;

// The pod index's order: pods sharing an address in name order, however the index was made.
bool byAddressThenName(const std::pair<IpAddress, const Pod*>& a,
                       const std::pair<IpAddress, const Pod*>& b) {
  if (a.first != b.first) return a.first < b.first;
  return byName(*a.second) < byName(*b.second);
}

struct PodChanges {
  std::vector<const Pod*> removed;  // of `before`: removed, or changed (the old version)
  std::vector<const Pod*> added;    // of `after`: added, or changed (the new version)
  std::vector<const Pod*> all;      // both
};

// Pods of `after` that are not the same object in `before` (added or changed), and those of
// `before` that are not in `after` as the same object (removed or changed). Stops early (returns
// false) past `limit`.
bool changedPods(const std::vector<PodPtr>& before, const std::vector<PodPtr>& after, size_t limit,
                 PodChanges& changes) {
  std::vector<const Pod*>& changed = changes.all;
  auto removed = [&](const PodPtr& pod) {
    changed.push_back(pod.get());
    changes.removed.push_back(pod.get());
  };
  auto added = [&](const PodPtr& pod) {
    changed.push_back(pod.get());
    changes.added.push_back(pod.get());
  };
  size_t i = 0, j = 0;
  while (i < before.size() || j < after.size()) {
    if (changed.size() > limit) return false;
    // Most pods are the very same object: no names to compare.
    if (i < before.size() && j < after.size() && before[i] == after[j]) {
      ++i, ++j;
      continue;
    }
    if (j == after.size() || (i < before.size() && byName(*before[i]) < byName(*after[j]))) {
      removed(before[i++]);
    } else if (i == before.size() || byName(*after[j]) < byName(*before[i])) {
      added(after[j++]);
    } else {
      if (before[i] != after[j]) {
        removed(before[i]);
        added(after[j]);
      }
      ++i, ++j;
    }
  }
  return changed.size() <= limit;
}

bool selectsAny(const Service& service, const std::vector<const Pod*>& pods) {
  if (!service.selector) return false;
  for (const Pod* pod : pods) {
    if (pod->namespace_name == service.namespace_name &&
        selectorMatches(*service.selector, pod->labels))
      return true;
  }
  return false;
}

}  // namespace

std::vector<ServiceEntry> resolveEndpoints(std::vector<Service> services,
                                           const std::vector<PodPtr>& pods,
                                           const std::vector<EndpointSet>& endpoint_sets) {
  EndpointResolver resolver(pods, endpoint_sets, services.size() >= kIndexLabelsFrom);
  std::vector<ServiceEntry> entries;
  entries.reserve(services.size());
  for (auto& service : services) entries.push_back(resolver.resolve(std::move(service)));
  return entries;
}

std::vector<ServiceEntryPtr> resolveEndpointsSharing(
    const Snapshot* previous, const std::vector<std::shared_ptr<const Service>>& services,
    const std::vector<PodPtr>& pods, const std::vector<EndpointSet>& endpoint_sets) {
  PodChanges changes;
  bool track = previous && changedPods(previous->pods(), pods, kMaxChangedPodsToTrack, changes);
  // Which entries can be shared: the same Service object (its row was not read again) whose
  // selector picks none of the changed pods, old or new. Services without a selector take
  // their endpoints from endpoint sets, which are read whole every time: always resolved.
  std::vector<ServiceEntryPtr> entries(services.size());
  // Same Service, some changed pods selected: only its old endpoints' pods and the changed pods
  // can be its endpoints now, so those are all it needs to look at (instead of every pod).
  std::vector<std::pair<size_t, const ServiceEntry*>> narrowed;
  size_t to_resolve = services.size();
  if (track) {
    const auto& before = previous->sharedServices();
    size_t k = 0;
    to_resolve = 0;
    for (size_t i = 0; i < services.size(); ++i) {
      const Service& service = *services[i];
      bool same = k < before.size() && &before[k]->service == &service;
      if (!same) {
        while (k < before.size() && byName(before[k]->service) < byName(service)) ++k;
        same = k < before.size() && &before[k]->service == &service;
      }
      if (same) ++k;
      if (same && service.selector && !selectsAny(service, changes.all)) {
        entries[i] = before[k - 1];
      } else if (same && service.selector) {
        narrowed.emplace_back(i, before[k - 1].get());
      } else {
        ++to_resolve;
      }
    }
  }
  // An unchanged pod that lost an address to a changed one (two pods, one address: the first
  // wins) is not among the old endpoints, yet may win now: resolve those Services whole.
  bool shared_address = std::any_of(changes.removed.begin(), changes.removed.end(), [&](auto pod) {
    return std::any_of(pod->ips.begin(), pod->ips.end(),
                       [&](const IpAddress& ip) { return previous->findPodsByIp(ip).size() > 1; });
  });
  if (shared_address) {
    to_resolve += narrowed.size();
    narrowed.clear();
  }
  for (const auto& [i, old_entry] : narrowed) {
    std::vector<size_t> positions;
    auto position = [&](const std::string& namespace_name, const std::string& name) {
      auto found =
          std::lower_bound(pods.begin(), pods.end(), std::tie(namespace_name, name),
                           [](const PodPtr& pod, const auto& key) { return byName(*pod) < key; });
      if (found != pods.end() && byName(**found) == std::tie(namespace_name, name))
        positions.push_back(static_cast<size_t>(found - pods.begin()));
    };
    for (const auto& endpoint : old_entry->endpoints) {
      position(old_entry->service.namespace_name, endpoint.pod_name);
    }
    for (const Pod* pod : changes.added) position(pod->namespace_name, pod->name);
    std::sort(positions.begin(), positions.end());
    positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
    std::vector<const Pod*> candidates;
    for (size_t at : positions) candidates.push_back(pods[at].get());
    entries[i] = std::make_shared<const ServiceEntry>(
        EndpointResolver::resolveAmong(*services[i], candidates));
  }
  EndpointResolver resolver(pods, endpoint_sets, to_resolve >= kIndexLabelsFrom);
  for (size_t i = 0; i < services.size(); ++i) {
    if (!entries[i])
      entries[i] = std::make_shared<const ServiceEntry>(resolver.resolve(*services[i]));
  }
  return entries;
}

namespace {

std::vector<ServiceEntryPtr> shareEntries(std::vector<ServiceEntry> services) {
  std::vector<ServiceEntryPtr> shared;
  shared.reserve(services.size());
  for (auto& entry : services)
    shared.push_back(std::make_shared<const ServiceEntry>(std::move(entry)));
  return shared;
}

}  // namespace

Snapshot::Snapshot(uint64_t version, std::optional<Cidr> service_cidr,
                   std::vector<ServiceEntry> services, std::vector<PodPtr> pods,
                   std::vector<EndpointSet> endpoint_sets, int64_t committed_ms)
    : Snapshot(version, std::move(service_cidr), shareEntries(std::move(services)), std::move(pods),
               std::move(endpoint_sets), committed_ms, nullptr) {}

Snapshot::Snapshot(uint64_t version, std::optional<Cidr> service_cidr,
                   std::vector<ServiceEntryPtr> services, std::vector<PodPtr> pods,
                   std::vector<EndpointSet> endpoint_sets, int64_t committed_ms,
                   const Snapshot* previous)
    : version_(version),
      committed_ms_(committed_ms),
      service_cidr_(std::move(service_cidr)),
      services_(std::move(services)),
      pods_(std::move(pods)),
      endpoint_sets_(std::move(endpoint_sets)) {
  sortBy(services_, [](const ServiceEntryPtr& e) { return byName(e->service); });
  sortBy(pods_, [](const PodPtr& p) { return byName(*p); });
  sortBy(endpoint_sets_,
         [](const EndpointSet& e) { return std::tie(e.namespace_name, e.name, e.kind); });
  // The address indexes hold positions: when every position still holds the same addresses
  // (a readiness change, an endpoint moved), the previous snapshot's index is copied, not sorted.
  auto same_cluster_ips = [&] {
    if (!previous || previous->services_.size() != services_.size()) return false;
    for (size_t i = 0; i < services_.size(); ++i) {
      const auto& a = services_[i];
      const auto& b = previous->services_[i];
      if (a != b && a->service.cluster_ip != b->service.cluster_ip) return false;
    }
    return true;
  };
  if (same_cluster_ips()) {
    service_by_ip_ = previous->service_by_ip_;
  } else {
    service_by_ip_.reserve(services_.size());
    for (size_t i = 0; i < services_.size(); ++i) {
      if (services_[i]->service.cluster_ip) {
        service_by_ip_.emplace_back(*services_[i]->service.cluster_ip, static_cast<uint32_t>(i));
      }
    }
    std::sort(service_by_ip_.begin(), service_by_ip_.end());
  }
  // The pod index holds pods, not positions, so a few added or removed pods only patch it.
  PodChanges changes;
  if (previous && changedPods(previous->pods_, pods_, kMaxChangedPodsToTrack, changes)) {
    std::sort(changes.removed.begin(), changes.removed.end());
    pod_by_ip_.reserve(previous->pod_by_ip_.size() + changes.added.size());
    for (const auto& indexed : previous->pod_by_ip_) {
      if (!std::binary_search(changes.removed.begin(), changes.removed.end(), indexed.second))
        pod_by_ip_.push_back(indexed);
    }
    for (const Pod* pod : changes.added) {
      for (const auto& ip : pod->ips) {
        std::pair<IpAddress, const Pod*> indexed{ip, pod};
        pod_by_ip_.insert(
            std::upper_bound(pod_by_ip_.begin(), pod_by_ip_.end(), indexed, byAddressThenName),
            indexed);
      }
    }
  } else {
    pod_by_ip_.reserve(pods_.size());
    for (const auto& pod : pods_) {
      for (const auto& ip : pod->ips) pod_by_ip_.emplace_back(ip, pod.get());
    }
    std::sort(pod_by_ip_.begin(), pod_by_ip_.end(), byAddressThenName);
  }
}

namespace {
// The (address, X) pairs of `sorted` whose address is `ip`.
template <typename T>
auto equalRange(const std::vector<std::pair<IpAddress, T>>& sorted, const IpAddress& ip) {
  return std::equal_range(sorted.begin(), sorted.end(), std::pair<IpAddress, T>{ip, T{}},
                          [](const auto& a, const auto& b) { return a.first < b.first; });
}
}  // namespace

const ServiceEntry* Snapshot::findService(std::string_view namespace_name,
                                          std::string_view name) const {
  auto found =
      findByName(services_, namespace_name, name,
                 [](const ServiceEntryPtr& entry) -> const Service& { return entry->service; });
  return found ? found->get() : nullptr;
}

const Pod* Snapshot::findPod(std::string_view namespace_name, std::string_view name) const {
  auto found =
      findByName(pods_, namespace_name, name, [](const PodPtr& pod) -> const Pod& { return *pod; });
  return found ? found->get() : nullptr;
}

const ServiceEntry* Snapshot::findServiceByIp(const IpAddress& cluster_ip) const {
  auto [first, last] = equalRange(service_by_ip_, cluster_ip);
  return first == last ? nullptr : services_[first->second].get();
}

std::vector<const Pod*> Snapshot::findPodsByIp(const IpAddress& ip) const {
  std::vector<const Pod*> found;
  auto [first, last] = equalRange(pod_by_ip_, ip);
  for (auto it = first; it != last; ++it) found.push_back(it->second);
  return found;
}

}  // namespace svcbox::store
