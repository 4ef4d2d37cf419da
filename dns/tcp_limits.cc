#include "dns/tcp_limits.h"

#include <algorithm>
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
                                                        Clock::time_point now,
                                                        std::function<void()> evict) {
  if (fromClient(client) >= limits_.max_connections_per_client) {
    return {std::nullopt, TcpRefusal::kPerClient};
  }
  if (connections_.size() >= limits_.max_connections) {
    if (now - eviction_window_ >= std::chrono::seconds(1)) {
      eviction_window_ = now;
      evictions_in_window_ = 0;
    }
    if (evictions_in_window_ >= kMaxEvictionsPerSecond)
      return {std::nullopt, TcpRefusal::kTableFull};
    auto candidate = evictionCandidate(now);
    if (candidate == connections_.end()) return {std::nullopt, TcpRefusal::kTableFull};
    // The evicted connection releases itself later (its handlers run on this thread); until
    // then it no longer counts.
    auto evicted = std::move(candidate->second);
    ++evictions_in_window_;
    release(candidate->first);
    counters_.close(TcpClose::kEvicted);
    if (evicted.evict) evicted.evict();
  }
  Id id = next_id_++;
  connections_.emplace(id, Connection{client, false, now, std::move(evict)});
  peak_ = std::max(peak_, connections_.size());
  ++per_client_[client];
  counters_.open.store(connections_.size(), std::memory_order_relaxed);
  return {id, TcpRefusal::kPerClient};
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

bool TcpConnectionTable::surgeEnded() {
  if (peak_ < kSurge || connections_.size() > kQuiet) return false;
  peak_ = connections_.size();
  return true;
}

void TcpConnectionTable::clientRead(Id id, Clock::time_point now) {
  auto it = connections_.find(id);
  if (it != connections_.end()) it->second.last_read = now;
}

// A scan, but only when the table is full, and a full table is at most --dns-tcp-max-connections.
std::map<TcpConnectionTable::Id, TcpConnectionTable::Connection>::iterator
TcpConnectionTable::evictionCandidate(Clock::time_point now) {
  auto best = connections_.end();
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    const Connection& connection = it->second;
    if (!connection.stalled && now - connection.last_read < kNotReadingAfter) continue;
    if (best == connections_.end()) {
      best = it;
      continue;
    }
    const Connection& chosen = best->second;
    if (connection.stalled != chosen.stalled ? connection.stalled
                                             : connection.last_read < chosen.last_read) {
      best = it;
    }
  }
  return best;
}

size_t TcpConnectionTable::fromClient(const store::IpAddress& client) const {
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace svcbox::dns
