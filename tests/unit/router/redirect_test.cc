#include "router/userspace/redirect.h"

#include <gtest/gtest.h>

#include <tuple>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "router/rule_text.h"
#include "router/userspace/provider.h"

// The REDIRECT rules as text against a hand-written listing, as iptables-legacy-save prints them.
namespace svcbox::router::userspace {
namespace {

TEST(RedirectTablesTest, OneRedirectPerListenedPortHookedFromPreroutingAndOutput) {
  store::ServiceEntry web;
  web.service.name = "web";
  web.service.cluster_ip = store::IpAddress::parse("10.96.0.10");
  web.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}},
                       {"dns", store::Protocol::kUdp, 53, {5353, ""}}};
  store::ServiceEntry six;
  six.service.name = "six";
  six.service.cluster_ip = store::IpAddress::parse("fd00::a");
  six.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}}};
  store::Snapshot snapshot(1, std::nullopt, {six, web}, std::vector<store::PodPtr>{}, {});
  auto every_address = *store::IpAddress::parse("0.0.0.0");
  std::vector<PortMapping> mapping{
      {"default", "web", "http", store::Protocol::kTcp, 80, every_address, 20080},
      {"default", "web", "dns", store::Protocol::kUdp, 53, every_address, 20053},
      {"default", "six", "http", store::Protocol::kTcp, 80, every_address, 41000},
      {"default", "gone", "http", store::Protocol::kTcp, 80, every_address, 41001}};
  auto tables = redirectTables(snapshot, mapping);
  auto nat = tableText(tables.nat);
  std::sort(nat.begin(), nat.end());
  std::vector<std::string> expected{
      ":SVCBOX-SERVICES - [0:0]",
      "-A OUTPUT -j SVCBOX-SERVICES",
      "-A PREROUTING -j SVCBOX-SERVICES",
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/web:80\" -m tcp "
      "--dport 80 -j REDIRECT --to-ports 20080",
      "-A SVCBOX-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment \"default/web:53\" -m udp "
      "--dport 53 -j REDIRECT --to-ports 20053",
  };
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(nat, expected);  // the IPv6 Service and the one not in the snapshot get no rule
  // Every listener (the IPv6 Service's too, which nothing redirects to) takes only what a
  // REDIRECT sent.
  auto filter = tableText(tables.filter);
  std::vector<std::string> only_redirected{":SVCBOX-PROXY-INPUT - [0:0]",
                                           "-A INPUT -j SVCBOX-PROXY-INPUT"};
  for (const auto& [proto, port, comment] :
       std::vector<std::tuple<std::string, int, std::string>>{{"tcp", 20080, "default/web:80"},
                                                              {"udp", 20053, "default/web:53"},
                                                              {"tcp", 41000, "default/six:80"},
                                                              {"tcp", 41001, "default/gone:80"}}) {
    std::string match = " -p " + proto + " -m comment --comment \"" + comment + " listener\" -m " +
                        proto + " --dport " + std::to_string(port);
    only_redirected.push_back("-A SVCBOX-PROXY-INPUT" + match +
                              " -m conntrack --ctstate DNAT -j RETURN");
    only_redirected.push_back("-A SVCBOX-PROXY-INPUT" + match +
                              " -j REJECT --reject-with icmp-port-unreachable");
  }
  EXPECT_EQ(filter, only_redirected);
  ASSERT_EQ(tables.mangle.chains.size(), 1u);  // the canary, which a wipe of the tables removes
  EXPECT_EQ(tables.mangle.chains[0].name, "SVCBOX-CANARY");
  EXPECT_TRUE(tables.mangle.chains[0].rules.empty());
}

// The repair thread against a fake rule backend: what an outside flush or a failed write leaves
// is rewritten without a registry change.
class FakeWriter : public TableWriter {
 public:
  struct State {
    std::mutex mutex;
    std::vector<bool> nat_writes;  // `full` of every nat write that succeeded
    int failures_left = 0;
    bool canary = true;
  };
  explicit FakeWriter(std::shared_ptr<State> state) : state_(std::move(state)) {}
  bool sync(const Table& desired, bool full, const std::vector<std::string>*, TableSyncStats&,
            SyncFailure& failure) override {
    std::lock_guard lock(state_->mutex);
    if (state_->failures_left > 0) {
      --state_->failures_left;
      failure.message = "injected failure";
      return false;
    }
    if (desired.name == "nat") state_->nat_writes.push_back(full);
    if (desired.name == "mangle") state_->canary = true;
    return true;
  }
  bool chainExists(const std::string&, const std::string&, SyncFailure&) override {
    std::lock_guard lock(state_->mutex);
    return state_->canary;
  }

 private:
  std::shared_ptr<State> state_;
};

store::SnapshotPtr oneService() {
  store::ServiceEntry web;
  web.service.name = "web";
  web.service.cluster_ip = store::IpAddress::parse("10.96.0.10");
  web.service.ports = {{"http", store::Protocol::kTcp, 80, {8080, ""}}};
  return std::make_shared<const store::Snapshot>(
      1, std::nullopt, std::vector<store::ServiceEntry>{web}, std::vector<store::PodPtr>{},
      std::vector<store::EndpointSet>{});
}

const std::vector<PortMapping> kMapping{{"default", "web", "http", store::Protocol::kTcp, 80,
                                         *store::IpAddress::parse("0.0.0.0"), 20080}};

// Waits (bounded) until `done` holds.
template <typename Done>
bool within(std::chrono::milliseconds bound, Done done) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// The REDIRECT rules' repairs, driven by the userspace provider's loop (a fake rule writer; the
// relay itself listens on loopback).
class RedirectRepairTest : public ::testing::Test {
 protected:
  UserspaceProvider& provider(RouterTiming timing) {
    ProxyOptions options;
    options.own_port_first = false;
    options.threads = 1;
    provider_ = std::make_unique<UserspaceProvider>(
        options, std::make_unique<RedirectRules>(std::make_unique<FakeWriter>(state_)), timing,
        [](LogLevel, const std::string&) {});
    return *provider_;
  }
  size_t natWrites() {
    std::lock_guard lock(state_->mutex);
    return state_->nat_writes.size();
  }
  std::shared_ptr<FakeWriter::State> state_ = std::make_shared<FakeWriter::State>();
  std::unique_ptr<UserspaceProvider> provider_;
};

TEST_F(RedirectRepairTest, AGoneCanaryIsRepairedAtOnceWithAFullWrite) {
  RouterTiming timing;
  timing.sync_period = std::chrono::hours(1);
  timing.canary_interval = std::chrono::milliseconds(20);
  auto& redirect = provider(timing);
  SyncFailure failure;
  ASSERT_TRUE(redirect.start(oneService(), failure));
  ASSERT_EQ(natWrites(), 1u);
  {
    std::lock_guard lock(state_->mutex);
    state_->canary = false;  // iptables -F; iptables -X, from outside
  }
  ASSERT_TRUE(within(std::chrono::seconds(5), [&] { return natWrites() == 2; }));
  std::lock_guard lock(state_->mutex);
  EXPECT_TRUE(state_->nat_writes[1]);  // full: what is in the kernel cannot be trusted
  EXPECT_TRUE(state_->canary);
}

TEST_F(RedirectRepairTest, EverySyncPeriodRewritesEverything) {
  RouterTiming timing;
  timing.sync_period = std::chrono::milliseconds(20);
  auto& redirect = provider(timing);
  SyncFailure failure;
  ASSERT_TRUE(redirect.start(oneService(), failure));
  // An iptables -t nat -F leaves the canary (in mangle): only the period repairs it.
  ASSERT_TRUE(within(std::chrono::seconds(5), [&] { return natWrites() >= 3; }));
  EXPECT_GE(redirect.stats().syncs, 3u);
  std::lock_guard lock(state_->mutex);
  EXPECT_TRUE(state_->nat_writes[1] && state_->nat_writes[2]);
}

TEST_F(RedirectRepairTest, AFailedWriteIsRetriedWithoutAChange) {
  RouterTiming timing;
  timing.sync_period = std::chrono::hours(1);
  timing.first_backoff = std::chrono::milliseconds(10);
  auto& redirect = provider(timing);
  {
    std::lock_guard lock(state_->mutex);
    state_->failures_left = 2;
  }
  SyncFailure failure;
  // Not a missing capability: the start goes on and the loop retries.
  EXPECT_TRUE(redirect.start(oneService(), failure));
  EXPECT_EQ(failure.message, "nat table: injected failure");
  EXPECT_EQ(redirect.stats().syncs, 0u);
  ASSERT_TRUE(within(std::chrono::seconds(5), [&] { return natWrites() == 1; }));
  EXPECT_EQ(redirect.stats().failures, 2u);
  EXPECT_TRUE(within(std::chrono::seconds(5), [&] { return redirect.stats().syncs == 1; }));
}

TEST_F(RedirectRepairTest, NothingIsWrittenAfterStop) {
  RouterTiming timing;
  timing.sync_period = std::chrono::milliseconds(10);
  auto& redirect = provider(timing);
  SyncFailure failure;
  ASSERT_TRUE(redirect.start(oneService(), failure));
  ASSERT_TRUE(within(std::chrono::seconds(5), [&] { return natWrites() >= 2; }));
  redirect.stop();  // serve stops it before --cleanup-on-exit removes the rules
  size_t after_stop = natWrites();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(natWrites(), after_stop);
}

}  // namespace
}  // namespace svcbox::router::userspace
