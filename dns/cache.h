#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/wire.h"

// Upstream answers kept for their TTL (CoreDNS's cache plugin): bounded in entries, TTLs capped,
// negative answers kept for the SOA minimum. A hit copies into the caller's buffer under a shard
// lock and allocates nothing.
namespace svcbox::dns {

struct CacheOptions {
  size_t max_entries = 10000;
  uint32_t max_ttl = 3600;           // positive answers
  uint32_t max_negative_ttl = 1800;  // NXDOMAIN / NODATA
};

class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit AnswerCache(CacheOptions options);

  // On a hit writes the answer for `query` (its ID, its question as asked, TTLs aged, OPT when it
  // had one) to `out` and returns its length; 0 on a miss.
  size_t lookup(const Query& query, std::span<uint8_t> out, size_t size_limit, bool* truncated,
                Clock::time_point now = Clock::now());
  // Stores an upstream answer to the question of `query` if it is cacheable.
  void insert(const Query& query, std::span<const uint8_t> upstream_answer,
              Clock::time_point now = Clock::now());
  size_t size() const;

  // Builds the client's answer from an upstream one without caching it (used on a miss, and for
  // answers that cannot be cached). Returns 0 when the upstream answer is malformed.
  static size_t relay(const Query& query, std::span<const uint8_t> upstream_answer,
                      std::span<uint8_t> out, size_t size_limit, bool* truncated);

 private:
  struct Entry {
    std::vector<uint8_t> message;  // upstream answer without its OPT record
    std::vector<uint16_t> ttl_offsets;
    Clock::time_point stored;
    Clock::time_point expires;
    std::list<std::string>::iterator lru;
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>> entries;
    std::list<std::string> lru;  // most recent first
  };
  static constexpr size_t kShards = 16;

  Shard& shardFor(std::string_view key);

  CacheOptions options_;
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace svcbox::dns
