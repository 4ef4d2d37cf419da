// Proves the query path allocates nothing for an answer from the table or from the cache: every
// operator new in this binary is counted while a probe is armed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

#include "dns/cache.h"
#include "dns/responder.h"
#include "tests/unit/dns/dns_test_util.h"

// GCC pairs these malloc/free calls with the replaced operators and warns; they do match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<bool> counting{false};
std::atomic<size_t> allocations{0};
}  // namespace

namespace {
void* counted(size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  return std::malloc(size ? size : 1);
}
}  // namespace

// Every form, so that no allocation escapes the count and new and delete always pair up (the
// sanitizers check that).
void* operator new(size_t size) {
  if (void* memory = counted(size)) return memory;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept { return counted(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return counted(size); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, size_t) noexcept { std::free(memory); }
void operator delete(void* memory, const std::nothrow_t&) noexcept { std::free(memory); }
void operator delete[](void* memory, const std::nothrow_t&) noexcept { std::free(memory); }

namespace svcbox::dns {
namespace {

using namespace dnstest;

TEST(NoAllocationTest, AuthoritativeAndCachedAnswersAllocateNothing) {
  auto snapshot = makeSnapshot({clusterIpService("default", "web", "10.96.0.10"),
                                headlessService("prod", "db", {{"10.1.0.5", true}})});
  auto table = AnswerTable::build(*snapshot, ZoneOptions{});
  AnswerCache cache(CacheOptions{});
  auto forwarded = makeQuery("example.org", kTypeA, 1232);
  // The upstream's answer, built by hand: one A record.
  std::vector<uint8_t> upstream(forwarded.begin(), forwarded.end() - 11);
  upstream[2] = 0x81;
  upstream[3] = 0x80;
  upstream[7] = 1;
  upstream[11] = 0;
  upstream.insert(upstream.end(), {0xC0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 1});
  std::array<uint8_t, kServerUdpSize> scratch;
  bool relayed_truncated = false;
  cache.relay(parseQuery(forwarded), upstream, scratch, scratch.size(), &relayed_truncated);

  std::vector<std::vector<uint8_t>> queries = {
      makeQuery("web.default.svc.cluster.local", kTypeA, 1232),
      makeQuery("WEB.default.svc", kTypeA),
      makeQuery("_http._tcp.db.prod.svc.cluster.local", kTypeSrv),
      makeQuery("web.default.svc.cluster.local", kTypeAaaa),
      makeQuery("nope.default.svc.cluster.local", kTypeA),
      makeQuery("10.0.96.10.in-addr.arpa", kTypePtr)};
  std::array<uint8_t, kServerUdpSize> out;
  size_t answered = 0;
  // The probe itself works: the string's allocations are seen.
  counting = true;
  delete new std::string(100, 'x');
  counting = false;
  ASSERT_GE(allocations.exchange(0), 1u);
  counting = true;
  for (int round = 0; round < 1000; ++round) {
    for (const auto& packet : queries) {
      Query query = parseQuery(packet);
      Response response = respond(query, *table, ClientContext{true, query.udpLimit()}, out);
      answered += response.disposition == Disposition::kSend && response.length > 0;
    }
    Query query = parseQuery(forwarded);
    Response response = respond(query, *table, ClientContext{true, query.udpLimit()}, out);
    bool truncated = false;
    if (response.disposition == Disposition::kForward &&
        cache.lookup(query, out, query.udpLimit(), &truncated) > 0) {
      ++answered;
    }
  }
  counting = false;
  EXPECT_EQ(answered, 7000u);
  EXPECT_EQ(allocations.load(), 0u);
}

}  // namespace
}  // namespace svcbox::dns
