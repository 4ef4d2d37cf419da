#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/types.h"

namespace svcbox::store {

// One address behind a Service, with the target port resolved for each of the Service's ports.
struct Endpoint {
  IpAddress ip;
  bool ready = false;
  std::string pod_name;         // empty for explicit endpoints without a targetRef
  std::string hostname;         // explicit hostname (headless DNS); empty when none was given
  std::vector<uint16_t> ports;  // parallel to Service::ports; 0 = this endpoint lacks the port
  bool operator==(const Endpoint&) const = default;
};

struct ServiceEntry {
  Service service;
  std::vector<Endpoint> endpoints;  // sorted by IP; ready and not ready alike
  bool operator==(const ServiceEntry&) const = default;
};

// Pods are shared between snapshots: a rebuild decodes only the rows that changed.
using PodPtr = std::shared_ptr<const Pod>;
std::vector<PodPtr> sharePods(std::vector<Pod> pods);

// Service entries too: a rebuild resolves only the Services a change touches.
using ServiceEntryPtr = std::shared_ptr<const ServiceEntry>;

// The Services of a snapshot as plain references: a random-access view over the shared entries.
class ServiceView {
 public:
  class iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = ServiceEntry;
    using difference_type = std::ptrdiff_t;
    using pointer = const ServiceEntry*;
    using reference = const ServiceEntry&;

    iterator() = default;
    explicit iterator(std::vector<ServiceEntryPtr>::const_iterator at) : at_(at) {}
    reference operator*() const { return **at_; }
    pointer operator->() const { return at_->get(); }
    reference operator[](difference_type n) const { return *at_[n]; }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    iterator operator++(int) { return iterator(at_++); }
    iterator& operator--() {
      --at_;
      return *this;
    }
    iterator operator--(int) { return iterator(at_--); }
    iterator& operator+=(difference_type n) {
      at_ += n;
      return *this;
    }
    iterator& operator-=(difference_type n) {
      at_ -= n;
      return *this;
    }
    friend iterator operator+(iterator it, difference_type n) { return it += n; }
    friend iterator operator+(difference_type n, iterator it) { return it += n; }
    friend iterator operator-(iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(const iterator& a, const iterator& b) { return a.at_ - b.at_; }
    friend bool operator==(const iterator& a, const iterator& b) { return a.at_ == b.at_; }
    friend bool operator!=(const iterator& a, const iterator& b) { return a.at_ != b.at_; }
    friend bool operator<(const iterator& a, const iterator& b) { return a.at_ < b.at_; }
    friend bool operator>(const iterator& a, const iterator& b) { return a.at_ > b.at_; }
    friend bool operator<=(const iterator& a, const iterator& b) { return a.at_ <= b.at_; }
    friend bool operator>=(const iterator& a, const iterator& b) { return a.at_ >= b.at_; }

   private:
    std::vector<ServiceEntryPtr>::const_iterator at_;
  };

  explicit ServiceView(const std::vector<ServiceEntryPtr>& entries) : entries_(&entries) {}
  iterator begin() const { return iterator(entries_->begin()); }
  iterator end() const { return iterator(entries_->end()); }
  size_t size() const { return entries_->size(); }
  bool empty() const { return entries_->empty(); }
  const ServiceEntry& operator[](size_t i) const { return *(*entries_)[i]; }

 private:
  const std::vector<ServiceEntryPtr>* entries_;
};

// The whole registry at one committed version. Immutable once published: consumers share it as
// std::shared_ptr<const Snapshot> and never reach into SQLite on their hot paths.
class Snapshot {
 public:
  Snapshot(uint64_t version, std::optional<Cidr> service_cidr, std::vector<ServiceEntry> services,
           std::vector<PodPtr> pods, std::vector<EndpointSet> endpoint_sets,
           int64_t committed_ms = 0);
  Snapshot(uint64_t version, std::optional<Cidr> service_cidr, std::vector<ServiceEntry> services,
           std::vector<Pod> pods, std::vector<EndpointSet> endpoint_sets, int64_t committed_ms = 0)
      : Snapshot(version, std::move(service_cidr), std::move(services), sharePods(std::move(pods)),
                 std::move(endpoint_sets), committed_ms) {}
  // `previous`: an earlier snapshot whose address indexes are reused where nothing moved.
  Snapshot(uint64_t version, std::optional<Cidr> service_cidr,
           std::vector<ServiceEntryPtr> services, std::vector<PodPtr> pods,
           std::vector<EndpointSet> endpoint_sets, int64_t committed_ms, const Snapshot* previous);

  uint64_t version() const { return version_; }
  // Wall-clock time (ms since the epoch) of the commit that made this version; 0 when unknown.
  int64_t committedMs() const { return committed_ms_; }
  const std::optional<Cidr>& serviceCidr() const { return service_cidr_; }
  // Sorted by (namespace, name).
  ServiceView services() const { return ServiceView(services_); }
  const std::vector<ServiceEntryPtr>& sharedServices() const { return services_; }
  const std::vector<PodPtr>& pods() const { return pods_; }
  const std::vector<EndpointSet>& endpointSets() const { return endpoint_sets_; }

  const ServiceEntry* findService(std::string_view namespace_name, std::string_view name) const;
  const Pod* findPod(std::string_view namespace_name, std::string_view name) const;
  const ServiceEntry* findServiceByIp(const IpAddress& cluster_ip) const;
  // Every pod that holds this address (normally one).
  std::vector<const Pod*> findPodsByIp(const IpAddress& ip) const;

 private:
  uint64_t version_;
  int64_t committed_ms_;
  std::optional<Cidr> service_cidr_;
  std::vector<ServiceEntryPtr> services_;
  std::vector<PodPtr> pods_;
  std::vector<EndpointSet> endpoint_sets_;
  // Sorted (address, index) pairs: a third of a hash map's memory, and a snapshot is rebuilt whole.
  std::vector<std::pair<IpAddress, uint32_t>> service_by_ip_;
  std::vector<std::pair<IpAddress, const Pod*>> pod_by_ip_;  // pods held by pods_
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

// The endpoints of every Service: pods chosen by the selector, or explicit endpoint sets for
// Services without one. A pure function, so it is tested without SQLite.
std::vector<ServiceEntry> resolveEndpoints(std::vector<Service> services,
                                           const std::vector<PodPtr>& pods,
                                           const std::vector<EndpointSet>& endpoint_sets);
std::vector<ServiceEntry> resolveEndpoints(std::vector<Service> services,
                                           const std::vector<Pod>& pods,
                                           const std::vector<EndpointSet>& endpoint_sets);

// The same for a rebuild: `services` and `pods` in name order. An entry of `previous` is shared,
// not resolved again, when its Service is the same object and no pod that differs between
// `previous` and `pods` is selected by it, before or after the change.
std::vector<ServiceEntryPtr> resolveEndpointsSharing(
    const Snapshot* previous, const std::vector<std::shared_ptr<const Service>>& services,
    const std::vector<PodPtr>& pods, const std::vector<EndpointSet>& endpoint_sets);

bool selectorMatches(const Labels& selector, const Labels& labels);

}  // namespace svcbox::store
