#include "dns/tcp_limits.h"

#include <gtest/gtest.h>

#include <vector>

// The admission rules of DNS over TCP, without sockets: tests/dns/test_tcp_limits.py drives the
// same limits through a real serve.
namespace svcbox::dns {
namespace {

store::IpAddress address(const char* text) { return *store::IpAddress::parse(text); }

class TcpConnectionTableTest : public ::testing::Test {
 protected:
  TcpConnectionTableTest() {
    limits_.max_connections = 3;
    limits_.max_connections_per_client = 2;
  }

  // Admits a connection whose eviction is recorded in evicted_.
  std::optional<TcpConnectionTable::Id> admit(const char* client, TcpRefusal* refusal = nullptr) {
    auto admission =
        table_.admit(address(client), now_, [this, n = admitted_++] { evicted_.push_back(n); });
    if (refusal) *refusal = admission.refusal;
    return admission.id;
  }

  TcpConnectionTable::Clock::time_point now_ = TcpConnectionTable::Clock::now();
  TcpLimits limits_;
  TcpCounters counters_;
  TcpConnectionTable table_{limits_, counters_};
  int admitted_ = 0;
  std::vector<int> evicted_;
};

TEST_F(TcpConnectionTableTest, AClientGetsNoMoreThanItsShare) {
  ASSERT_TRUE(admit("127.0.0.1"));
  ASSERT_TRUE(admit("127.0.0.1"));
  TcpRefusal refusal{};
  EXPECT_FALSE(admit("127.0.0.1", &refusal));
  EXPECT_EQ(refusal, TcpRefusal::kPerClient);
  EXPECT_TRUE(admit("127.0.0.2"));
  EXPECT_EQ(table_.fromClient(address("127.0.0.1")), 2u);
}

TEST_F(TcpConnectionTableTest, AFullTableMakesRoomByClosingAConnectionThatIsNotReadFirst) {
  auto first = admit("10.0.0.1");
  auto second = admit("10.0.0.2");
  auto third = admit("10.0.0.3");
  ASSERT_TRUE(first && second && third);
  table_.setStalled(*third, true);
  table_.setStalled(*second, true);
  EXPECT_TRUE(admit("10.0.0.4"));
  EXPECT_EQ(evicted_, std::vector<int>{1});  // the second admitted is older than the third
  EXPECT_EQ(table_.size(), 3u);
  EXPECT_EQ(counters_.closed[static_cast<size_t>(TcpClose::kEvicted)].load(), 1u);
  EXPECT_EQ(counters_.stalled.load(), 1u);
  // The evicted connection's own release, when its handlers finish, changes nothing more.
  table_.release(*second);
  EXPECT_EQ(table_.size(), 3u);
}

TEST_F(TcpConnectionTableTest, ElseItClosesTheConnectionWhoseClientReadLastTheLongestAgo) {
  auto first = admit("10.0.0.1");
  now_ += std::chrono::milliseconds(10);
  auto second = admit("10.0.0.2");
  now_ += std::chrono::milliseconds(10);
  auto third = admit("10.0.0.3");
  ASSERT_TRUE(first && second && third);
  now_ += TcpConnectionTable::kNotReadingAfter;
  table_.clientRead(*first, now_);  // the first reads its answers; the second connected before
                                    // the third and has read nothing since
  EXPECT_TRUE(admit("10.0.0.4"));
  EXPECT_EQ(evicted_, std::vector<int>{1});
  EXPECT_EQ(counters_.open.load(), 3u);
}

TEST_F(TcpConnectionTableTest, EvictionsStopAtTheirBudgetForTheSecondAndResumeAfterIt) {
  constexpr size_t kBudget = TcpConnectionTable::kMaxEvictionsPerSecond;
  limits_.max_connections = 2 * kBudget;
  limits_.max_connections_per_client = 4 * kBudget;
  for (size_t i = 0; i < 2 * kBudget; ++i) ASSERT_TRUE(admit("10.0.0.1"));
  now_ += TcpConnectionTable::kNotReadingAfter;  // none of them has read: each may be evicted
  size_t admitted = 0;
  TcpRefusal refusal{};
  for (size_t i = 0; i < kBudget + 10; ++i) admitted += admit("10.0.0.2", &refusal).has_value();
  EXPECT_EQ(admitted, kBudget);
  EXPECT_EQ(evicted_.size(), kBudget);
  EXPECT_EQ(refusal, TcpRefusal::kTableFull);  // though kBudget candidates are left
  now_ += std::chrono::seconds(1);
  EXPECT_TRUE(admit("10.0.0.3"));
  EXPECT_EQ(evicted_.size(), kBudget + 1);
}

TEST_F(TcpConnectionTableTest, AFullTableOfClientsThatReadRefusesTheNewcomer) {
  ASSERT_TRUE(admit("10.0.0.1"));
  ASSERT_TRUE(admit("10.0.0.2"));
  ASSERT_TRUE(admit("10.0.0.3"));
  // Within kNotReadingAfter of connecting a client may still be about to ask.
  TcpRefusal refusal{};
  EXPECT_FALSE(admit("10.0.0.4", &refusal));
  EXPECT_EQ(refusal, TcpRefusal::kTableFull);
  EXPECT_TRUE(evicted_.empty());
}

TEST(TcpConnectionTableSurgeTest, ASurgeEndsOnceWhenTheTableEmptiesAfterIt) {
  TcpLimits limits;
  TcpCounters counters;
  TcpConnectionTable table(limits, counters);
  std::vector<TcpConnectionTable::Id> ids;
  auto now = TcpConnectionTable::Clock::now();
  for (size_t i = 0; i < TcpConnectionTable::kSurge; ++i) {
    auto client = *store::IpAddress::parse("10.0." + std::to_string(i / 32) + ".1");
    ids.push_back(*table.admit(client, now, nullptr).id);
  }
  int ended = 0;
  for (auto id : ids) {
    table.release(id);
    ended += table.surgeEnded();
  }
  EXPECT_EQ(ended, 1);
  EXPECT_FALSE(table.surgeEnded());
}

TEST_F(TcpConnectionTableTest, ReleasingGivesTheClientItsShareBack) {
  auto first = admit("127.0.0.1");
  ASSERT_TRUE(admit("127.0.0.1"));
  table_.release(*first);
  EXPECT_EQ(table_.fromClient(address("127.0.0.1")), 1u);
  EXPECT_TRUE(admit("127.0.0.1"));
  EXPECT_EQ(counters_.open.load(), 2u);
}

}  // namespace
}  // namespace svcbox::dns
