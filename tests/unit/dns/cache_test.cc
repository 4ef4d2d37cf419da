#include "dns/cache.h"

#include "dns/answer_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>

#include "tests/unit/dns/dns_test_util.h"

namespace svcbox::dns {
namespace {

using namespace dnstest;
using ::testing::ElementsAre;

// An upstream answer to `query`: one A record with `ttl`, or NXDOMAIN with an SOA (minimum
// `ttl`) when `address` is empty. Carries an OPT record, which the cache must drop.
std::vector<uint8_t> upstreamAnswer(const std::vector<uint8_t>& query, uint32_t ttl,
                                    bool nxdomain = false) {
  Query parsed = parseQuery(query);
  std::vector<uint8_t> answer;
  // push_back rather than insert: GCC 12 warns falsely about inserts into short vectors at -O3.
  auto append = [&answer](std::initializer_list<uint8_t> bytes) {
    for (uint8_t byte : bytes) answer.push_back(byte);
  };
  for (size_t i = 0; i < 12; ++i) answer.push_back(query[i]);
  answer[2] = 0x81;
  answer[3] = nxdomain ? 0x83 : 0x80;
  answer[6] = 0;
  answer[7] = nxdomain ? 0 : 1;
  answer[9] = nxdomain ? 1 : 0;
  answer[11] = 1;
  for (uint8_t byte : parsed.question) answer.push_back(byte);
  auto u32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) answer.push_back(static_cast<uint8_t>(v >> shift));
  };
  if (!nxdomain) {
    append({0xC0, 12, 0, 1, 0, 1});
    u32(ttl);
    append({0, 4, 192, 0, 2, 10});
  } else {
    append({0xC0, 12, 0, 6, 0, 1});
    u32(3600);
    append({0, 22, 0, 0});  // rdlength, mname ".", rname "."
    for (uint32_t v : {1u, 2u, 3u, 4u, ttl}) u32(v);
  }
  append({0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0});
  return answer;
}

// Hands an upstream answer to the cache the way the forwarder does (the relayed bytes unused).
void relayed(AnswerCache& cache, const Query& query, const std::vector<uint8_t>& answer,
             AnswerCache::Clock::time_point now = AnswerCache::Clock::now()) {
  std::array<uint8_t, 512> scratch;
  bool truncated = false;
  cache.relay(query, answer, scratch, scratch.size(), &truncated, now);
}

TEST(AnswerCacheTest, HitsAgeTheTtlAndCarryTheClientsIdAndCase) {
  AnswerCache cache(CacheOptions{});
  auto now = AnswerCache::Clock::now();
  auto first = makeQuery("example.org", kTypeA, 0, 1);
  relayed(cache, parseQuery(first), upstreamAnswer(first, 300), now);
  EXPECT_EQ(cache.size(), 1u);
  auto second = makeQuery("EXAMPLE.org", kTypeA, 0, 2);
  std::array<uint8_t, 512> out;
  bool truncated = false;
  size_t length =
      cache.lookup(parseQuery(second), out, 512, &truncated, now + std::chrono::seconds(10));
  ASSERT_GT(length, 0u);
  auto decoded = decode(std::span(out.data(), length));
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(decoded.question, "EXAMPLE.org. IN A");
  EXPECT_THAT(decoded.answer, ElementsAre("EXAMPLE.org. 290 IN A 192.0.2.10"));
  EXPECT_TRUE(decoded.additional.empty());  // upstream's OPT dropped, none asked for
  EXPECT_EQ(cache.lookup(parseQuery(second), out, 512, &truncated, now + std::chrono::seconds(301)),
            0u);
}

TEST(AnswerCacheTest, NegativeAnswersLiveForTheSoaMinimum) {
  AnswerCache cache(CacheOptions{});
  auto now = AnswerCache::Clock::now();
  auto query = makeQuery("nx.example.org", kTypeA);
  relayed(cache, parseQuery(query), upstreamAnswer(query, 30, true), now);
  std::array<uint8_t, 512> out;
  bool truncated = false;
  size_t length =
      cache.lookup(parseQuery(query), out, 512, &truncated, now + std::chrono::seconds(29));
  ASSERT_GT(length, 0u);
  EXPECT_EQ(decode(std::span(out.data(), length)).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(cache.lookup(parseQuery(query), out, 512, &truncated, now + std::chrono::seconds(31)),
            0u);
}

TEST(AnswerCacheTest, TtlsAreCappedAndZeroIsNotCached) {
  AnswerCache cache(CacheOptions{100, 60, 10});
  auto now = AnswerCache::Clock::now();
  auto query = makeQuery("long.example.org", kTypeA);
  relayed(cache, parseQuery(query), upstreamAnswer(query, 86400), now);
  std::array<uint8_t, 512> out;
  bool truncated = false;
  EXPECT_GT(cache.lookup(parseQuery(query), out, 512, &truncated, now + std::chrono::seconds(59)),
            0u);
  EXPECT_EQ(cache.lookup(parseQuery(query), out, 512, &truncated, now + std::chrono::seconds(61)),
            0u);
  auto zero = makeQuery("zero.example.org", kTypeA);
  relayed(cache, parseQuery(zero), upstreamAnswer(zero, 0), now);
  EXPECT_EQ(cache.lookup(parseQuery(zero), out, 512, &truncated, now), 0u);
}

TEST(AnswerCacheTest, StaysWithinItsEntryBound) {
  AnswerCache cache(CacheOptions{32, 3600, 1800});
  for (int i = 0; i < 500; ++i) {
    auto query = makeQuery("n" + std::to_string(i) + ".example.org", kTypeA);
    relayed(cache, parseQuery(query), upstreamAnswer(query, 300));
  }
  EXPECT_LE(cache.size(), 32u);
  EXPECT_GT(cache.size(), 0u);
}

TEST(AnswerCacheTest, MalformedUpstreamAnswersAreNotRelayed) {
  auto query = makeQuery("example.org", kTypeA);
  auto answer = upstreamAnswer(query, 300);
  answer.resize(answer.size() - 15);  // cut inside the A record
  std::array<uint8_t, 512> out;
  bool truncated = false;
  AnswerCache cache(CacheOptions{});
  EXPECT_EQ(cache.relay(parseQuery(query), answer, out, 512, &truncated), 0u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(AnswerCacheTest, AnUpstreamAnswerWithAnOptRecordOutsideTheAdditionalSectionIsRefused) {
  auto query = makeQuery("www.example.org", kTypeA, 1232);
  Query parsed = parseQuery(query);
  // The answer's A record followed by its OPT, both counted in the answer section.
  auto answer = upstreamAnswer(query, 60);
  answer[7] = 2;   // ANCOUNT: the A and the OPT
  answer[11] = 0;  // ARCOUNT
  AnswerCache cache(CacheOptions{});
  std::array<uint8_t, 512> out;
  bool truncated = false;
  EXPECT_EQ(cache.relay(parsed, answer, out, out.size(), &truncated), 0u);
  EXPECT_EQ(cache.size(), 0u);
  // The same records with the OPT where it belongs are relayed, with the counts they have.
  answer[7] = 1;
  answer[11] = 1;
  size_t length = cache.relay(parsed, answer, out, out.size(), &truncated);
  ASSERT_GT(length, 0u);
  Decoded decoded = decode(std::span(out.data(), length));
  EXPECT_EQ(decoded.answer.size(), 1u);
}

TEST(CacheHashTest, TheCachesHashIsSeededSoClientsCannotPrecomputeCollisions) {
  // The same seed all process long (entries must be found again), not a constant.
  EXPECT_EQ(AnswerCache::processSeed(), AnswerCache::processSeed());
  EXPECT_NE(AnswerCache::processSeed(), 0u);
  EXPECT_NE(hashName("a.example.org", 1), hashName("a.example.org", 2));
  EXPECT_EQ(hashName("a.example.org"), hashName("a.example.org", 0));
  // Names that share a bucket under one seed are spread under another.
  size_t same_bucket = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string a = "n" + std::to_string(i) + ".example.org";
    std::string b = "m" + std::to_string(i) + ".example.org";
    same_bucket += (hashName(a, 7) % 64 == hashName(b, 7) % 64) &&
                   (hashName(a, 8) % 64 == hashName(b, 8) % 64);
  }
  EXPECT_LT(same_bucket, 5u);  // about 1000 / 64 / 64 if the seeds act independently
}

}  // namespace
}  // namespace svcbox::dns
