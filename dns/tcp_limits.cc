#include "dns/tcp_limits.h"

#include <utility>

namespace svcbox::dns {

const char* tcpRefusalLabel(size_t slot) {
  static constexpr const char* kLabels[] = {"table_full", "per_client", "file_limit"};
  return kLabels[slot];
}

const char* tcpCloseLabel(size_t slot) {
  static constexpr const char* kLabels[] = {"idle", "age", "queries", "evicted"};
  return kLabels[slot];
}

TcpConnectionTable::Admission TcpConnectionTable::admit(const store::IpAddress& client,
                                                        std::function<void()> evict) {
  if (fromClient(client) >= limits_.max_connections_per_client) {
    return {std::nullopt, TcpRefusal::kPerClient};
  }
  if (connections_.size() >= limits_.max_connections) {
    auto oldest_stalled = connections_.begin();
    while (oldest_stalled != connections_.end() && !oldest_stalled->second.stalled) {
      ++oldest_stalled;
    }
    if (oldest_stalled == connections_.end()) return {std::nullopt, TcpRefusal::kTableFull};
    // The evicted connection releases itself later (its handlers run on this thread); until
    // then it no longer counts.
    auto evicted = std::move(oldest_stalled->second);
    release(oldest_stalled->first);
    counters_.close(TcpClose::kEvicted);
    if (evicted.evict) evicted.evict();
  }
  Id id = next_id_++;
  connections_.emplace(id, Connection{client, false, std::move(evict)});
  ++per_client_[client];
  counters_.open.store(connections_.size(), std::memory_order_relaxed);
  return {id, TcpRefusal::kTableFull};
}

void TcpConnectionTable::release(Id id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (it->second.stalled) {
    --stalled_;
    counters_.stalled.store(stalled_, std::memory_order_relaxed);
  }
  auto count = per_client_.find(it->second.client);
  if (count != per_client_.end() && --count->second == 0) per_client_.erase(count);
  connections_.erase(it);
  counters_.open.store(connections_.size(), std::memory_order_relaxed);
}

void TcpConnectionTable::setStalled(Id id, bool stalled) {
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.stalled == stalled) return;
  it->second.stalled = stalled;
  stalled_ += stalled ? 1 : -1;
  counters_.stalled.store(stalled_, std::memory_order_relaxed);
}

size_t TcpConnectionTable::fromClient(const store::IpAddress& client) const {
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace svcbox::dns
