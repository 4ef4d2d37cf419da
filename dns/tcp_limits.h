#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>

#include "store/ip.h"

// What a DNS-over-TCP client may make serve hold, and the table that enforces it. Each bound is
// one a client controls: how many connections, how long, how many queries, how many answers it
// leaves unread (NSD and dnsdist bound the same things).
namespace svcbox::dns {

struct TcpLimits {
  size_t max_connections = 1024;
  size_t max_connections_per_client = 32;           // per source address
  size_t max_queries_per_connection = 0;            // 0: no limit
  std::chrono::milliseconds max_connection_age{0};  // 0: no limit
  // Counted from the last byte the client took from serve (or from its connect): a client that
  // sends queries but reads no answers is idle.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(10)};
  // Answers waiting for the client to read them; above this serve stops reading its queries.
  // With max_connections, it bounds what clients that never read can make serve hold:
  // 1024 × 32 KiB = 32 MiB of answers at most.
  size_t max_unsent_bytes = 32 * 1024;
};

enum class TcpRefusal : uint8_t { kTableFull, kPerClient, kFileLimit };
enum class TcpClose : uint8_t { kIdle, kAge, kQueries, kEvicted };

// Counters for /metrics: written on the TCP thread, read by the metrics reader.
struct TcpCounters {
  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> stalled{0};  // open, not read because their client reads no answers
  std::array<std::atomic<uint64_t>, 3> refused{};  // by TcpRefusal
  std::array<std::atomic<uint64_t>, 4> closed{};   // by TcpClose
  void refuse(TcpRefusal why) { add(refused[static_cast<size_t>(why)]); }
  void close(TcpClose why) { add(closed[static_cast<size_t>(why)]); }
  static void add(std::atomic<uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);
  }
};
const char* tcpRefusalLabel(size_t slot);
const char* tcpCloseLabel(size_t slot);

// The open connections, by admission order. Thread contract: one thread (the TCP worker's)
// calls everything.
class TcpConnectionTable {
 public:
  using Id = uint64_t;

  explicit TcpConnectionTable(const TcpLimits& limits, TcpCounters& counters)
      : limits_(limits), counters_(counters) {}

  using Clock = std::chrono::steady_clock;
  // A client that has taken nothing from serve for this long (since it connected, or since its
  // last answer) is not reading.
  static constexpr auto kNotReadingAfter = std::chrono::seconds(1);

  // Admits a connection from `client`, or says why not. A client over its own share is refused.
  // When the table is full, a connection whose client is not reading makes room: one that serve
  // stopped reading (its client left answers unread) first, else the one whose client took a
  // byte the longest ago, if that is kNotReadingAfter or more. When every client is reading,
  // the newcomer is refused. The evicted connection's `evict` is called, and it must release()
  // itself.
  struct Admission {
    std::optional<Id> id;
    TcpRefusal refusal = TcpRefusal::kPerClient;
  };
  Admission admit(const store::IpAddress& client, Clock::time_point now,
                  std::function<void()> evict);
  void release(Id id);
  // Whether serve has stopped reading the connection because its client does not read.
  void setStalled(Id id, bool stalled);
  // The client took bytes from serve (an answer's write completed).
  void clientRead(Id id, Clock::time_point now);

  size_t size() const { return connections_.size(); }
  // True once per surge: when the table, having held kSurge connections or more, is down to
  // kQuiet or fewer.
  // Evictions a second, at most: beyond them a full table refuses. An attacker that reconnects
  // at once whenever it is evicted would otherwise turn every eviction into a new connection that
  // serve must read and answer until it stalls again, as fast as the TCP thread can go.
  static constexpr size_t kMaxEvictionsPerSecond = 100;
  static constexpr size_t kSurge = 128;
  static constexpr size_t kQuiet = 8;
  bool surgeEnded();
  size_t fromClient(const store::IpAddress& client) const;

 private:
  struct Connection {
    store::IpAddress client;
    bool stalled = false;
    Clock::time_point last_read;  // or the connect
    std::function<void()> evict;
  };
  std::map<Id, Connection>::iterator evictionCandidate(Clock::time_point now);
  const TcpLimits& limits_;
  TcpCounters& counters_;
  Id next_id_ = 1;
  Clock::time_point eviction_window_{};  // the second evictions_in_window_ counts in
  size_t evictions_in_window_ = 0;
  size_t stalled_ = 0;
  size_t peak_ = 0;                       // the most connections open since the last surge ended
  std::map<Id, Connection> connections_;  // ids grow: the first is the oldest
  std::unordered_map<store::IpAddress, size_t> per_client_;
};

}  // namespace svcbox::dns
