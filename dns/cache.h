#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
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

// An upstream answer checked against its question, without its OPT record.
struct ParsedAnswer {
  std::vector<uint8_t> message;
  std::vector<uint16_t> ttl_offsets;  // of every record, for aging
  uint8_t rcode = 0;
  std::optional<uint32_t> cache_ttl;  // none: not cacheable
};

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
  // Writes the client's answer made from an upstream one (as lookup does) and keeps it when it
  // is cacheable. Returns 0 when the upstream answer is malformed or answers another question.
  size_t relay(const Query& query, std::span<const uint8_t> upstream_answer, std::span<uint8_t> out,
               size_t size_limit, bool* truncated, Clock::time_point now = Clock::now());
  size_t size() const;
  // The seed of the cache's hash, random for each process.
  static uint64_t processSeed();

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
  void store(const Query& query, ParsedAnswer parsed, Clock::time_point now);

  CacheOptions options_;
  size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace svcbox::dns
