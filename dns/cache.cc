#include "dns/cache.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>

#include "dns/answer_table.h"

namespace svcbox::dns {
namespace {

constexpr size_t kKeyCapacity = kMaxNameLength + 5;

// Cache key: lower-cased name, type, class and the DO bit (answers differ with it).
std::string_view makeKey(const Query& query, std::array<char, kKeyCapacity>& buffer) {
  std::memcpy(buffer.data(), query.lower_name.data(), query.name_length);
  size_t length = query.name_length;
  buffer[length++] = static_cast<char>(query.qtype >> 8);
  buffer[length++] = static_cast<char>(query.qtype);
  buffer[length++] = static_cast<char>(query.qclass >> 8);
  buffer[length++] = static_cast<char>(query.qclass);
  buffer[length++] = query.dnssec_ok ? 1 : 0;
  return {buffer.data(), length};
}

// The answer must be to the question asked: same name (any case), type and class.
bool sameQuestion(const Query& query, std::span<const uint8_t> answer) {
  std::span<const uint8_t> asked = query.question;
  for (size_t i = 0; i < asked.size(); ++i) {
    if (lowerAscii(answer[kHeaderSize + i]) != lowerAscii(asked[i])) return false;
  }
  return true;
}

// Checks an upstream answer against the question it answers, drops its OPT record and works out
// how long it may be cached. Empty optional when it is malformed.
std::optional<ParsedAnswer> parseUpstream(const Query& query, std::span<const uint8_t> answer,
                                          const CacheOptions& options) {
  if (answer.size() < kHeaderSize || readU16(answer.data() + 4) != 1) return std::nullopt;
  size_t question_end = kHeaderSize + query.question.size();
  if (question_end > answer.size() || !sameQuestion(query, answer)) return std::nullopt;
  ParsedAnswer parsed;
  parsed.rcode = answer[3] & 0x0F;
  parsed.message.assign(answer.begin(), answer.begin() + static_cast<ptrdiff_t>(question_end));
  std::optional<uint32_t> min_answer_ttl;
  std::optional<uint32_t> negative_ttl;
  uint16_t kept_additional = 0;
  bool valid = forEachRecord(answer, question_end, [&](const RecordSpan& record) {
    // svcbox writes its own OPT. One outside the additional section is malformed (RFC 6891
    // §6.1.1): refused, as validatedWithoutOpt refuses it, rather than dropped with its
    // section's count left as it was.
    if (record.type == kTypeOpt) return record.section == 2;
    if (record.section == 0)
      min_answer_ttl = std::min(min_answer_ttl.value_or(record.ttl), record.ttl);
    if (record.section == 1 && record.type == kTypeSoa && record.end >= record.fixed + 14) {
      negative_ttl = std::min(record.ttl, readU32(answer.data() + record.end - 4));
    }
    if (record.section == 2) ++kept_additional;
    parsed.ttl_offsets.push_back(
        static_cast<uint16_t>(parsed.message.size() + (record.fixed + 4 - record.start)));
    parsed.message.insert(parsed.message.end(),
                          answer.begin() + static_cast<ptrdiff_t>(record.start),
                          answer.begin() + static_cast<ptrdiff_t>(record.end));
    return true;
  });
  if (!valid) return std::nullopt;
  writeU16(parsed.message.data() + 10, kept_additional);
  bool truncated = (readU16(answer.data() + 2) & kFlagTc) != 0;
  if (truncated) return parsed;
  if (parsed.rcode == kNoError && min_answer_ttl) {
    parsed.cache_ttl = std::min(*min_answer_ttl, options.max_ttl);
  } else if ((parsed.rcode == kNxDomain || parsed.rcode == kNoError) && negative_ttl) {
    parsed.cache_ttl = std::min(*negative_ttl, options.max_negative_ttl);
  }
  if (parsed.cache_ttl == 0u) parsed.cache_ttl.reset();
  return parsed;
}

// Writes the client's answer: its ID and question, the upstream's sections with aged TTLs.
size_t render(const Query& query, std::span<const uint8_t> message,
              std::span<const uint16_t> ttl_offsets, uint32_t age, std::span<uint8_t> out,
              size_t size_limit, bool* truncated) {
  size_t limit = std::min(size_limit, out.size());
  size_t question_end = kHeaderSize + query.question.size();
  size_t opt = query.has_edns ? kOptRecordSize : 0;
  if (question_end + opt > limit) return 0;
  size_t length = message.size() + opt <= limit ? message.size() : question_end;
  std::memcpy(out.data(), message.data(), length);
  uint16_t flags = readU16(message.data() + 2);
  flags = static_cast<uint16_t>((flags & ~(kFlagRd | kFlagCd | kFlagTc)) | kFlagQr |
                                (query.flags & (kFlagRd | kFlagCd)));
  if (length < message.size()) {
    *truncated = true;
    flags |= kFlagTc;
    std::memset(out.data() + 6, 0, 6);
  } else {
    for (uint16_t offset : ttl_offsets) {
      uint32_t ttl = readU32(message.data() + offset);
      writeU32(out.data() + offset, ttl > age ? ttl - age : 0);
    }
  }
  writeU16(out.data(), query.id);
  writeU16(out.data() + 2, flags);
  std::memcpy(out.data() + kHeaderSize, query.question.data(), query.question.size());
  if (opt) {
    writeU16(out.data() + 10, static_cast<uint16_t>(readU16(out.data() + 10) + 1));
    length += writeOptRecord(out.data() + length, 0, query.dnssec_ok);
  }
  return length;
}

}  // namespace

uint64_t AnswerCache::processSeed() {
  // Drawn once per process: the cache's names are chosen by clients, and a hash they could
  // compute offline would let them fill one bucket with colliding names.
  static const uint64_t seed = [] {
    std::random_device random;
    return (static_cast<uint64_t>(random()) << 32) ^ random();
  }();
  return seed;
}

size_t AnswerCache::KeyHash::operator()(std::string_view key) const {
  return hashName(key, processSeed());
}

AnswerCache::AnswerCache(CacheOptions options)
    : options_(options), per_shard_(std::max<size_t>(1, options.max_entries / kShards)) {}

AnswerCache::Shard& AnswerCache::shardFor(std::string_view key) {
  return shards_[hashName(key, processSeed()) % kShards];
}

size_t AnswerCache::lookup(const Query& query, std::span<uint8_t> out, size_t size_limit,
                           bool* truncated, Clock::time_point now) {
  std::array<char, kKeyCapacity> buffer;
  std::string_view key = makeKey(query, buffer);
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  auto found = shard.entries.find(key);
  if (found == shard.entries.end()) return 0;
  Entry& entry = found->second;
  if (now >= entry.expires) {
    shard.lru.erase(entry.lru);
    shard.entries.erase(found);
    return 0;
  }
  shard.lru.splice(shard.lru.begin(), shard.lru, entry.lru);
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now - entry.stored).count();
  return render(query, entry.message, entry.ttl_offsets, static_cast<uint32_t>(age), out,
                size_limit, truncated);
}

size_t AnswerCache::relay(const Query& query, std::span<const uint8_t> upstream_answer,
                          std::span<uint8_t> out, size_t size_limit, bool* truncated,
                          Clock::time_point now) {
  auto parsed = parseUpstream(query, upstream_answer, options_);
  if (!parsed) return 0;
  size_t length =
      render(query, parsed->message, parsed->ttl_offsets, 0, out, size_limit, truncated);
  if (parsed->cache_ttl) store(query, std::move(*parsed), now);
  return length;
}

void AnswerCache::store(const Query& query, ParsedAnswer parsed, Clock::time_point now) {
  std::array<char, kKeyCapacity> buffer;
  std::string key(makeKey(query, buffer));
  Shard& shard = shardFor(key);
  std::lock_guard lock(shard.mutex);
  auto found = shard.entries.find(key);
  if (found != shard.entries.end()) {
    shard.lru.erase(found->second.lru);
    shard.entries.erase(found);
  }
  while (shard.entries.size() >= per_shard_ && !shard.lru.empty()) {
    shard.entries.erase(shard.lru.back());
    shard.lru.pop_back();
  }
  shard.lru.push_front(key);
  Entry entry{std::move(parsed.message), std::move(parsed.ttl_offsets), now,
              now + std::chrono::seconds(*parsed.cache_ttl), shard.lru.begin()};
  shard.entries.emplace(std::move(key), std::move(entry));
}

size_t AnswerCache::size() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.entries.size();
  }
  return total;
}

}  // namespace svcbox::dns
