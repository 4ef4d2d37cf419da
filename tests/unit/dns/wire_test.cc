#include "dns/wire.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/dns/dns_test_util.h"

namespace svcbox::dns {
namespace {

using dnstest::makeQuery;

TEST(WireTest, ParsesQuestionLowerCasedWithLabelOffsets) {
  auto packet = makeQuery("Web.Default.SVC", kTypeA);
  Query query = parseQuery(packet);
  ASSERT_EQ(query.status, QueryStatus::kOk);
  EXPECT_EQ(query.id, 0x1234);
  EXPECT_EQ(query.lowerName(), std::string_view("\3web\7default\3svc\0", 17));
  EXPECT_EQ(query.label_count, 3);
  EXPECT_EQ(query.label_offsets[1], 4);
  EXPECT_EQ(query.label_offsets[2], 12);
  EXPECT_EQ(query.question.size(), 17u + 4u);
  EXPECT_EQ(query.question[1], 'W');  // as asked
  EXPECT_FALSE(query.has_edns);
  EXPECT_EQ(query.udpLimit(), 512);
}

TEST(WireTest, ReadsEdnsAndClampsTheUdpLimit) {
  auto packet = makeQuery("a.b", kTypeA, 4096);
  Query query = parseQuery(packet);
  ASSERT_EQ(query.status, QueryStatus::kOk);
  EXPECT_TRUE(query.has_edns);
  EXPECT_EQ(query.client_udp_size, 4096);
  EXPECT_EQ(query.udpLimit(), kServerUdpSize);
  EXPECT_EQ(parseQuery(makeQuery("a.b", kTypeA, 100)).udpLimit(), 512);
}

TEST(WireTest, RejectsMalformedPackets) {
  EXPECT_EQ(parseQuery(std::vector<uint8_t>(11)).status, QueryStatus::kDrop);
  auto response = makeQuery("a", kTypeA);
  response[2] |= 0x80;
  EXPECT_EQ(parseQuery(response).status, QueryStatus::kDrop);
  auto notify = makeQuery("a", kTypeA);
  notify[2] = 0x20;  // opcode 4
  EXPECT_EQ(parseQuery(notify).status, QueryStatus::kNotImp);
  auto two = makeQuery("a", kTypeA);
  two[5] = 2;
  EXPECT_EQ(parseQuery(two).status, QueryStatus::kFormErr);
  auto cut = makeQuery("abc.def", kTypeA);
  cut.resize(cut.size() - 3);
  EXPECT_EQ(parseQuery(cut).status, QueryStatus::kFormErr);
  auto pointer = makeQuery("a", kTypeA);
  pointer[12] = 0xC0;
  pointer[13] = 12;
  EXPECT_EQ(parseQuery(pointer).status, QueryStatus::kFormErr);
  EXPECT_EQ(parseQuery(makeQuery(std::string(64, 'x'), kTypeA)).status, QueryStatus::kFormErr);
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'x') + ".";
  long_name.pop_back();
  EXPECT_EQ(parseQuery(makeQuery(long_name, kTypeA)).status, QueryStatus::kFormErr);
  auto two_opts = makeQuery("a", kTypeA, 1232);
  two_opts[11] = 2;
  two_opts.insert(two_opts.end(), {0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(parseQuery(two_opts).status, QueryStatus::kFormErr);
}

TEST(WireTest, NamesConvertBothWays) {
  EXPECT_EQ(nameToWire("Web.default."), std::string("\3web\7default\0", 13));
  EXPECT_EQ(nameToWire("a..b"), "");
  EXPECT_EQ(nameToWire(std::string(64, 'a')), "");
  EXPECT_EQ(wireToName(nameToWire("x.y")), "x.y.");
  EXPECT_EQ(wireToName(std::string(1, '\0')), ".");
}

TEST(WireTest, SkipNameStopsAtPointersAndBounds) {
  std::vector<uint8_t> message = {1, 'a', 0xC0, 0};
  EXPECT_EQ(skipName(message, 0), 4u);
  std::vector<uint8_t> cut = {1, 'a', 0xC0};
  EXPECT_EQ(skipName(cut, 0), 0u);  // the pointer runs past the end
  std::vector<uint8_t> bad_label = {0x80};
  EXPECT_EQ(skipName(bad_label, 0), 0u);
}

}  // namespace
}  // namespace svcbox::dns
