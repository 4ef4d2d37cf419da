#include "health/prober.h"

#include <gtest/gtest.h>
#include <cstdlib>

#include <atomic>
#include <future>
#include <list>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>

#include "health/plan.h"

// The prober against real servers on loopback (127.0.0.1, 127.0.0.2, ::1 only), with a fake
// registry that applies every written batch and publishes the next snapshot as serve would.
namespace svcbox::health {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using store::Pod;
using store::Probe;
using store::Readiness;
using store::ReadinessUpdate;

constexpr auto kSecond = 50ms;  // one probe-setting "second"
constexpr int kMaxAccepts = 2000;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Polls until `done` holds or `limit` passes; a noisy machine gets ~10x the expected time.
template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Servers on loopback, served by one thread of their own.
class Servers {
 public:
  Servers() : work_(asio::make_work_guard(context_)), thread_([this] { context_.run(); }) {}
  ~Servers() {
    context_.stop();
    thread_.join();
  }

  // Accepts connections and closes them.
  uint16_t tcp(const char* address) {
    auto& acceptor = listen(address);
    asio::co_spawn(context_, acceptAndClose(acceptor), asio::detached);
    return acceptor.local_endpoint().port();
  }

  // Answers every request with `status` and a body of `body_size` bytes.
  uint16_t http(const char* address, int status, size_t body_size = 2,
                std::string extra_header = "") {
    auto& acceptor = listen(address);
    asio::co_spawn(context_, answerHttp(acceptor, status, body_size, std::move(extra_header)),
                   asio::detached);
    return acceptor.local_endpoint().port();
  }

  // Listens but never accepts: connect succeeds (the kernel's backlog) and nothing is answered.
  uint16_t silent(const char* address) { return listen(address).local_endpoint().port(); }

  // A port nothing listens on: connect is refused.
  static uint16_t closed(const char* address) {
    asio::io_context context;
    tcp::acceptor acceptor(context, {asio::ip::make_address(address), 0});
    return acceptor.local_endpoint().port();
  }

  // Listens on a chosen port (to bring a refused port back).
  void tcpOn(const char* address, uint16_t port) {
    std::promise<void> done;
    asio::post(context_, [&] {
      acceptors_.emplace_back(context_, tcp::endpoint{asio::ip::make_address(address), port});
      asio::co_spawn(context_, acceptAndClose(acceptors_.back()), asio::detached);
      done.set_value();
    });
    done.get_future().wait();
  }

  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  tcp::acceptor& listen(const char* address) {
    std::promise<tcp::acceptor*> done;
    asio::post(context_, [&] {
      acceptors_.emplace_back(context_, tcp::endpoint{asio::ip::make_address(address), 0});
      done.set_value(&acceptors_.back());
    });
    return *done.get_future().get();
  }

  asio::awaitable<void> acceptAndClose(tcp::acceptor& acceptor) {
    for (int i = 0; i < kMaxAccepts; ++i) {
      auto [error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
    }
  }

  asio::awaitable<void> answerHttp(tcp::acceptor& acceptor, int status, size_t body_size,
                                   std::string extra_header) {
    for (int i = 0; i < kMaxAccepts; ++i) {
      auto [error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
      std::string request;
      auto [read_error, length] = co_await asio::async_read_until(
          socket, asio::dynamic_buffer(request), "\r\n\r\n", asio::as_tuple(asio::use_awaitable));
      if (read_error) continue;
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(request.substr(0, length));
      }
      std::string response = "HTTP/1.1 " + std::to_string(status) +
                             " Test\r\nContent-Length: " + std::to_string(body_size) + "\r\n" +
                             extra_header + "Connection: close\r\n\r\n" +
                             std::string(body_size, 'x');
      co_await asio::async_write(socket, asio::buffer(response),
                                 asio::as_tuple(asio::use_awaitable));
    }
  }

  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::list<tcp::acceptor> acceptors_;
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

// What serve does around the prober: apply each batch to the registry and publish the result.
class FakeRegistry {
 public:
  struct Batch {
    std::vector<ReadinessUpdate> updates;
    ProbeCounters counters;  // as the write happened
  };

  FakeRegistry(std::vector<Pod> pods, std::vector<store::Service> services = {})
      : pods_(std::move(pods)), services_(std::move(services)) {}

  void attach(Prober* prober) { prober_ = prober; }
  void setPublish(bool publish) { publish_ = publish; }

  void failNextWrites(int count) {
    std::lock_guard lock(mutex_);
    failures_left_ = count;
  }
  int failedWrites() {
    std::lock_guard lock(mutex_);
    return failed_writes_;
  }

  bool write(std::vector<ReadinessUpdate> updates) {
    store::SnapshotPtr snapshot;
    {
      std::lock_guard lock(mutex_);
      if (failures_left_ > 0) {
        --failures_left_;
        ++failed_writes_;
        return false;
      }
      for (const auto& update : updates) {
        for (auto& pod : pods_) {
          if (pod.namespace_name == update.namespace_name && pod.name == update.name) {
            pod.readiness = update.readiness;
          }
        }
      }
      batches_.push_back(Batch{std::move(updates), prober_->counters()});
      if (publish_) snapshot = snapshotLocked();
    }
    if (snapshot) prober_->update(snapshot);
    return true;
  }

  store::SnapshotPtr snapshot() {
    std::lock_guard lock(mutex_);
    return snapshotLocked();
  }

  void setPods(std::vector<Pod> pods) {
    std::lock_guard lock(mutex_);
    pods_ = std::move(pods);
  }

  std::vector<Pod> pods() {
    std::lock_guard lock(mutex_);
    return pods_;
  }

  std::vector<Batch> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }

  // Every update written for one pod, oldest first.
  std::vector<Readiness> writesFor(const std::string& name) {
    std::lock_guard lock(mutex_);
    std::vector<Readiness> result;
    for (const auto& batch : batches_) {
      for (const auto& update : batch.updates) {
        if (update.name == name) result.push_back(update.readiness);
      }
    }
    return result;
  }

 private:
  store::SnapshotPtr snapshotLocked() {
    auto entries = store::resolveEndpoints(services_, pods_, {});
    return std::make_shared<const store::Snapshot>(++version_, std::nullopt, std::move(entries),
                                                   pods_, std::vector<store::EndpointSet>{},
                                                   nowMs());
  }

  std::mutex mutex_;
  std::vector<Pod> pods_;
  std::vector<store::Service> services_;
  std::vector<Batch> batches_;
  int failures_left_ = 0;
  int failed_writes_ = 0;
  uint64_t version_ = 0;
  Prober* prober_ = nullptr;
  bool publish_ = true;
};

Probe tcpProbe(uint16_t port) {
  Probe probe;
  probe.kind = Probe::Kind::kTcpSocket;
  probe.port = store::PortRef{port, ""};
  probe.period_seconds = 1;
  probe.timeout_seconds = 2;
  probe.failure_threshold = 3;
  return probe;
}

Probe httpProbe(store::PortRef port, const std::string& path) {
  Probe probe = tcpProbe(0);
  probe.kind = Probe::Kind::kHttpGet;
  probe.port = std::move(port);
  probe.path = path;
  return probe;
}

Readiness awaiting(const char* reason = store::kAwaitingProbe) {
  return Readiness{false, reason, nowMs()};
}

Pod pod(const std::string& name, const char* address, std::optional<Probe> probe,
        Readiness stored) {
  Pod pod;
  pod.name = name;
  pod.ips = {*store::IpAddress::parse(address)};
  pod.readiness_probe = std::move(probe);
  pod.readiness = std::move(stored);
  return pod;
}

// A prober wired to a FakeRegistry, started on its first snapshot.
struct Harness {
  explicit Harness(std::vector<Pod> pods, std::vector<store::Service> services = {},
                   ProberOptions options = fastOptions())
      : registry(std::move(pods), std::move(services)),
        prober(
            options,
            [this](std::vector<ReadinessUpdate> batch, Prober::WriteDone done) {
              std::lock_guard lock(held_mutex);
              if (hold) {
                held.emplace_back(std::move(batch), std::move(done));
                return;
              }
              done(registry.write(std::move(batch)));
            },
            [this](LogLevel level, const std::string& line) {
              std::lock_guard lock(log_mutex);
              logs.emplace_back(level, line);
            }) {
    registry.attach(&prober);
    prober.start();
    prober.update(registry.snapshot());
  }

  static ProberOptions fastOptions() {
    ProberOptions options;
    options.second = kSecond;
    return options;
  }

  // While held, batches wait as a slow registry would keep them, their `done` not yet called.
  void holdWrites() {
    std::lock_guard lock(held_mutex);
    hold = true;
  }
  size_t heldWrites() {
    std::lock_guard lock(held_mutex);
    return held.size();
  }
  void releaseWrites() {
    std::vector<std::pair<std::vector<ReadinessUpdate>, Prober::WriteDone>> batches;
    {
      std::lock_guard lock(held_mutex);
      hold = false;
      batches.swap(held);
    }
    for (auto& [batch, done] : batches) done(registry.write(std::move(batch)));
  }

  FakeRegistry registry;
  std::mutex held_mutex;
  bool hold = false;
  std::vector<std::pair<std::vector<ReadinessUpdate>, Prober::WriteDone>> held;
  std::mutex log_mutex;
  std::vector<std::pair<LogLevel, std::string>> logs;
  Prober prober;
};

TEST(ProberTest, TcpSocketSuccessMakesAnAwaitingPodReady) {
  Servers servers;
  uint16_t port = servers.tcp("127.0.0.1");
  int64_t before = nowMs();
  Harness harness({pod("web-0", "127.0.0.1", tcpProbe(port), awaiting())});
  ASSERT_TRUE(eventually([&] { return !harness.registry.batches().empty(); }));
  auto writes = harness.registry.writesFor("web-0");
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_TRUE(writes[0].ready);
  EXPECT_EQ(writes[0].reason, "readiness probe succeeded");
  EXPECT_GE(writes[0].changed_ms, before);
  EXPECT_EQ(harness.registry.batches()[0].counters.tcp_success, 1u);
  EXPECT_EQ(harness.prober.counters().sessions, 1u);
}

TEST(ProberTest, AVerdictWhoseWriteFailedIsWrittenAfterTheNextProbe) {
  Servers servers;
  Probe probe = tcpProbe(servers.tcp("127.0.0.1"));
  probe.initial_delay_seconds = 4;  // 200 ms: time to make the first write fail
  probe.period_seconds = 1;
  Harness harness({pod("web-0", "127.0.0.1", probe, awaiting())});
  harness.registry.failNextWrites(1);
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("web-0").empty(); }));
  EXPECT_EQ(harness.registry.failedWrites(), 1);
  EXPECT_TRUE(harness.registry.writesFor("web-0")[0].ready);
}

TEST(ProberTest, ProbesGoOnWhileAWriteIsSlowAndLaterVerdictsFollowIt) {
  Servers servers;
  Probe fast = tcpProbe(servers.tcp("127.0.0.1"));
  fast.period_seconds = 1;
  Probe late = fast;
  late.initial_delay_seconds = 10;  // 500 ms: its verdict comes while the first write waits
  Harness harness(
      {pod("early", "127.0.0.1", fast, awaiting()), pod("late", "127.0.0.1", late, awaiting())});
  harness.holdWrites();
  ASSERT_TRUE(eventually([&] { return harness.heldWrites() == 1; }));
  uint64_t probed = harness.prober.counters().tcp_success;
  ASSERT_TRUE(eventually([&] { return harness.prober.counters().tcp_success >= probed + 20; }))
      << "probes stalled behind a write";
  EXPECT_EQ(harness.heldWrites(), 1u) << "a second batch went out before the first ended";
  harness.releaseWrites();
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("late").empty(); }));
  EXPECT_EQ(harness.registry.writesFor("early").size(), 1u);
  EXPECT_TRUE(harness.registry.writesFor("late")[0].ready);
}

TEST(ProberTest, RefusedNeedsFailureThresholdFailuresAndRecoveryNeedsSuccessThreshold) {
  Servers servers;
  uint16_t port = Servers::closed("127.0.0.1");
  Probe probe = tcpProbe(port);
  probe.success_threshold = 2;
  // Stored ready from an earlier run, so only failureThreshold failures in a row may flip it.
  Harness harness(
      {pod("web-0", "127.0.0.1", probe, Readiness{true, "readiness probe succeeded", 1})});
  ASSERT_TRUE(eventually([&] { return harness.registry.batches().size() == 1; }));
  auto batches = harness.registry.batches();
  ASSERT_EQ(batches[0].updates.size(), 1u);
  const Readiness& failed = batches[0].updates[0].readiness;
  EXPECT_FALSE(failed.ready);
  EXPECT_EQ(failed.reason, "readiness probe failed 3 times: connect 127.0.0.1:" +
                               std::to_string(port) + ": Connection refused");
  EXPECT_EQ(batches[0].counters.tcp_failure, 3u);
  {
    std::lock_guard lock(harness.log_mutex);
    ASSERT_EQ(harness.logs.size(), 1u);  // the first failure of the streak only
    EXPECT_EQ(harness.logs[0].first, LogLevel::kDebug);
  }

  servers.tcpOn("127.0.0.1", port);
  ASSERT_TRUE(eventually([&] { return harness.registry.batches().size() == 2; }));
  batches = harness.registry.batches();
  EXPECT_TRUE(batches[1].updates[0].readiness.ready);
  EXPECT_EQ(batches[1].updates[0].readiness.reason, "readiness probe succeeded");
  EXPECT_EQ(batches[1].counters.tcp_success, 2u);
}

TEST(ProberTest, HttpGetStatusDecidesWithoutFollowingRedirects) {
  Servers servers;
  uint16_t unavailable = servers.http("127.0.0.1", 503);
  uint16_t ok = servers.http("127.0.0.1", 200);
  uint16_t redirect = servers.http(
      "127.0.0.1", 302, 2, "Location: http://127.0.0.1:" + std::to_string(unavailable) + "/\r\n");
  uint16_t big = servers.http("127.0.0.2", 200, 100 * 1024);  // past the 10 KiB body limit
  Probe failing = httpProbe({unavailable, ""}, "/healthz");
  failing.failure_threshold = 1;
  Pod named = pod("named", "127.0.0.2", httpProbe({0, "web"}, "/ready"), awaiting());
  named.ports = {store::ContainerPort{"main", "web", big, store::Protocol::kTcp}};
  Harness harness({pod("ok", "127.0.0.1", httpProbe({ok, ""}, "/healthz"), awaiting()),
                   pod("redirect", "127.0.0.1", httpProbe({redirect, ""}, "/"), awaiting()),
                   pod("unavailable", "127.0.0.1", failing, awaiting()), named});
  ASSERT_TRUE(eventually([&] {
    return harness.registry.writesFor("ok").size() == 1 &&
           harness.registry.writesFor("redirect").size() == 1 &&
           harness.registry.writesFor("unavailable").size() == 1 &&
           harness.registry.writesFor("named").size() == 1;
  }));
  EXPECT_TRUE(harness.registry.writesFor("ok")[0].ready);
  EXPECT_TRUE(harness.registry.writesFor("redirect")[0].ready);
  EXPECT_TRUE(harness.registry.writesFor("named")[0].ready);
  Readiness failed = harness.registry.writesFor("unavailable")[0];
  EXPECT_FALSE(failed.ready);
  EXPECT_EQ(failed.reason, "readiness probe failed once: HTTP 503 from GET http://127.0.0.1:" +
                               std::to_string(unavailable) + "/healthz");

  bool saw_named = false;
  for (const auto& request : servers.requests()) {
    EXPECT_NE(request.find("User-Agent: svcbox-probe/1\r\n"), std::string::npos) << request;
    EXPECT_NE(request.find("Connection: close\r\n"), std::string::npos) << request;
    if (request.starts_with("GET /ready HTTP/1.1\r\n")) {
      saw_named = true;
      EXPECT_NE(request.find("Host: 127.0.0.2:" + std::to_string(big) + "\r\n"), std::string::npos);
    }
  }
  EXPECT_TRUE(saw_named);
  auto counters = harness.prober.counters();
  EXPECT_GE(counters.http_success, 3u);
  EXPECT_GE(counters.http_failure, 1u);
  EXPECT_EQ(counters.tcp_success + counters.tcp_failure, 0u);
}

TEST(ProberTest, HttpGetTimeoutIsAFailure) {
  Servers servers;
  uint16_t port = servers.silent("127.0.0.1");
  Probe probe = httpProbe({port, ""}, "/healthz");
  probe.failure_threshold = 1;
  Harness harness({pod("slow", "127.0.0.1", probe, awaiting())});
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("slow").empty(); }));
  Readiness failed = harness.registry.writesFor("slow")[0];
  EXPECT_FALSE(failed.ready);
  EXPECT_EQ(failed.reason, "readiness probe failed once: GET http://127.0.0.1:" +
                               std::to_string(port) + "/healthz: timeout after 2s");
}

TEST(ProberTest, UnknownPortNameFailsWithoutTraffic) {
  Probe probe = httpProbe({0, "nope"}, "/");
  probe.failure_threshold = 1;
  Harness harness({pod("unnamed", "127.0.0.1", probe, awaiting())});
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("unnamed").empty(); }));
  EXPECT_EQ(harness.registry.writesFor("unnamed")[0].reason,
            "readiness probe failed once: port \"nope\" is not a container port of the pod");
}

TEST(ProberTest, InitialDelayCountsFromRegistration) {
  Servers servers;
  Probe probe = tcpProbe(servers.tcp("127.0.0.1"));
  probe.initial_delay_seconds = 8;  // 400 ms
  Readiness stored = awaiting();
  Harness harness({pod("late", "127.0.0.1", probe, stored)});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(harness.prober.counters().tcp_success, 0u);
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("late").empty(); }));
  Readiness ready = harness.registry.writesFor("late")[0];
  EXPECT_TRUE(ready.ready);
  EXPECT_GE(ready.changed_ms - stored.changed_ms, 8 * kSecond.count());
}

TEST(ProberTest, DefaultProbeNeedsEveryTcpTargetPort) {
  Servers servers;
  uint16_t first = servers.tcp("127.0.0.2");
  uint16_t second = servers.tcp("127.0.0.2");
  uint16_t closed = Servers::closed("127.0.0.2");
  auto service = [](const std::string& name, const std::string& app,
                    std::vector<store::ServicePort> ports) {
    store::Service result;
    result.name = name;
    result.cluster_ip = store::IpAddress::parse("10.96.0.10");
    result.selector = store::Labels{{"app", app}};
    result.ports = std::move(ports);
    return result;
  };
  using store::Protocol;
  std::vector<store::Service> services = {
      service("good", "good",
              {{"a", Protocol::kTcp, 80, {second, ""}},
               {"b", Protocol::kTcp, 81, {first, ""}},
               {"dup", Protocol::kTcp, 82, {first, ""}},
               {"udp", Protocol::kUdp, 53, {closed, ""}}}),
      service("bad", "bad",
              {{"a", Protocol::kTcp, 80, {first, ""}}, {"b", Protocol::kTcp, 81, {closed, ""}}})};
  auto labelled = [](Pod labelled_pod, const char* app) {
    labelled_pod.labels = {{"app", app}};
    return labelled_pod;
  };
  std::vector<Pod> pods = {
      labelled(pod("good", "127.0.0.2", std::nullopt, awaiting(store::kAwaitingDefaultProbe)),
               "good"),
      labelled(pod("bad", "127.0.0.2", std::nullopt, awaiting(store::kAwaitingDefaultProbe)),
               "bad"),
      pod("lonely", "127.0.0.1", std::nullopt, awaiting(store::kAwaitingDefaultProbe)),
      pod("settled", "127.0.0.1", std::nullopt, Readiness{true, kNoTcpPort, 1})};
  ProberOptions options = Harness::fastOptions();
  options.default_failure_threshold = 2;
  options.default_period_seconds = 1;
  Harness harness(pods, services, options);
  ASSERT_TRUE(eventually([&] {
    return !harness.registry.writesFor("good").empty() &&
           !harness.registry.writesFor("bad").empty() &&
           !harness.registry.writesFor("lonely").empty();
  }));
  auto low = std::min(first, second);
  auto high = std::max(first, second);
  EXPECT_EQ(harness.registry.writesFor("good")[0],
            (Readiness{true,
                       "default TCP probe succeeded (ports " + std::to_string(low) + ", " +
                           std::to_string(high) + ")",
                       harness.registry.writesFor("good")[0].changed_ms}));
  Readiness bad = harness.registry.writesFor("bad")[0];
  EXPECT_FALSE(bad.ready);
  EXPECT_EQ(bad.reason, "default TCP probe failed 2 times: connect 127.0.0.2:" +
                            std::to_string(closed) + ": Connection refused");
  EXPECT_TRUE(harness.registry.writesFor("lonely")[0].ready);
  EXPECT_EQ(harness.registry.writesFor("lonely")[0].reason, kNoTcpPort);
  EXPECT_TRUE(harness.registry.writesFor("settled").empty());
  auto counters = harness.prober.counters();
  EXPECT_EQ(counters.sessions, 2u);
  EXPECT_GE(counters.default_success, 1u);
  EXPECT_GE(counters.default_failure, 2u);
}

TEST(ProberTest, NoDefaultProbeSetsBackPodsItLeftNotReady) {
  ProberOptions options = Harness::fastOptions();
  options.default_probe = store::DefaultProbe::kNone;
  Harness harness(
      {pod("awaiting", "127.0.0.1", std::nullopt, awaiting(store::kAwaitingDefaultProbe)),
       pod("failed", "127.0.0.1", std::nullopt,
           Readiness{false, "default TCP probe failed 3 times: connect 127.0.0.1:1: refused", 1}),
       pod("plain", "127.0.0.1", std::nullopt, Readiness{true, store::kNoReadinessProbe, 1}),
       pod("other", "127.0.0.1", std::nullopt, Readiness{false, "something else", 1})},
      {}, options);
  ASSERT_TRUE(eventually([&] {
    return !harness.registry.writesFor("awaiting").empty() &&
           !harness.registry.writesFor("failed").empty();
  }));
  for (const char* name : {"awaiting", "failed"}) {
    auto writes = harness.registry.writesFor(name);
    ASSERT_EQ(writes.size(), 1u);
    EXPECT_TRUE(writes[0].ready);
    EXPECT_EQ(writes[0].reason, store::kNoReadinessProbe);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(harness.registry.writesFor("plain").empty());
  EXPECT_TRUE(harness.registry.writesFor("other").empty());
  EXPECT_EQ(harness.prober.counters().sessions, 0u);
}

TEST(ProberTest, NewSnapshotsKeepSessionsAndShapeChangesRestartThem) {
  Servers servers;
  uint16_t refused = Servers::closed("127.0.0.1");
  Pod web = pod("web-0", "127.0.0.1", tcpProbe(refused), Readiness{true, "earlier", 1});
  Harness harness({web});
  // Snapshots that change nothing this pod shows must not reset its failure streak.
  for (int i = 0; i < 500 && harness.registry.batches().empty(); ++i) {
    harness.prober.update(harness.registry.snapshot());
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(harness.registry.writesFor("web-0").size(), 1u);
  EXPECT_FALSE(harness.registry.writesFor("web-0")[0].ready);
  EXPECT_EQ(harness.prober.counters().sessions, 1u);

  // The registry resets readiness to "awaiting" when the probe changes, as it does here.
  web.readiness_probe = tcpProbe(servers.tcp("127.0.0.1"));
  web.readiness = awaiting();
  harness.registry.setPods({web});
  harness.prober.update(harness.registry.snapshot());
  ASSERT_TRUE(eventually([&] { return harness.registry.writesFor("web-0").size() == 2; }));
  EXPECT_TRUE(harness.registry.writesFor("web-0")[1].ready);
  EXPECT_EQ(harness.prober.counters().sessions, 1u);
}

TEST(ProberTest, RemovedPodIsNeitherProbedNorWritten) {
  Probe probe = tcpProbe(Servers::closed("127.0.0.1"));
  probe.period_seconds = 2;
  Harness harness({pod("gone", "127.0.0.1", probe, Readiness{true, "earlier", 1})});
  ASSERT_TRUE(eventually([&] { return harness.prober.counters().tcp_failure >= 1; }));
  harness.registry.setPods({});
  harness.prober.update(harness.registry.snapshot());
  ASSERT_TRUE(eventually([&] { return harness.prober.counters().sessions == 0; }));
  uint64_t failures = harness.prober.counters().tcp_failure;
  std::this_thread::sleep_for(400ms);  // several periods and past any failure threshold
  EXPECT_LE(harness.prober.counters().tcp_failure, failures + 1);
  EXPECT_TRUE(harness.registry.batches().empty());
}

TEST(ProberTest, VerdictNotYetVisibleIsNotWrittenAgain) {
  Servers servers;
  Harness harness({pod("web-0", "127.0.0.1", tcpProbe(servers.tcp("127.0.0.1")), awaiting())});
  harness.registry.setPublish(false);
  ASSERT_TRUE(eventually([&] { return harness.registry.batches().size() == 1; }));
  ASSERT_TRUE(eventually([&] { return harness.prober.counters().tcp_success >= 5; }));
  EXPECT_EQ(harness.registry.batches().size(), 1u);
  // Once a snapshot shows it, the memory of the write goes and nothing changes either.
  harness.prober.update(harness.registry.snapshot());
  uint64_t successes = harness.prober.counters().tcp_success;
  ASSERT_TRUE(eventually([&] { return harness.prober.counters().tcp_success >= successes + 3; }));
  EXPECT_EQ(harness.registry.batches().size(), 1u);
}

TEST(ProberTest, Ipv6PodsAreProbed) {
  Servers servers;
  uint16_t port = 0;
  try {
    port = servers.tcp("::1");
  } catch (const boost::system::system_error& error) {
    if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") {
      FAIL() << "CI must have an IPv6 loopback: " << error.what();
    }
    GTEST_SKIP() << "no IPv6 loopback here: " << error.what();
  }
  Harness harness({pod("v6", "::1", tcpProbe(port), awaiting())});
  ASSERT_TRUE(eventually([&] { return !harness.registry.writesFor("v6").empty(); }));
  EXPECT_TRUE(harness.registry.writesFor("v6")[0].ready);
}

TEST(ProberTest, StopIsPromptWithProbesInFlight) {
  Servers servers;
  uint16_t port = servers.silent("127.0.0.1");
  Probe probe = httpProbe({port, ""}, "/");
  probe.timeout_seconds = 200;  // 10 s: stop must not wait for it
  auto harness =
      std::make_unique<Harness>(std::vector<Pod>{pod("stuck", "127.0.0.1", probe, awaiting())});
  ASSERT_TRUE(eventually([&] { return harness->prober.counters().sessions == 1; }));
  std::this_thread::sleep_for(100ms);  // the probe is connected and waiting for an answer
  auto started = std::chrono::steady_clock::now();
  harness->prober.stop();
  harness.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
}

TEST(ProbePlanTest, DefaultPortsAreTcpTargetsOfServicesInThePodsNamespace) {
  store::Service service;
  service.namespace_name = "prod";
  service.name = "web";
  service.selector = store::Labels{{"app", "web"}};
  service.ports = {{"http", store::Protocol::kTcp, 80, {0, "http"}},
                   {"dns", store::Protocol::kUdp, 53, {53, ""}},
                   {"missing", store::Protocol::kTcp, 90, {0, "absent"}}};
  Pod web = pod("web-0", "10.0.0.1", std::nullopt, Readiness{});
  web.namespace_name = "prod";
  web.labels = {{"app", "web"}};
  web.ports = {store::ContainerPort{"main", "http", 8080, store::Protocol::kTcp}};
  Pod elsewhere = web;
  elsewhere.namespace_name = "default";
  std::vector<Pod> pods = {web, elsewhere};
  store::Snapshot snapshot(1, std::nullopt, store::resolveEndpoints({service}, pods, {}), pods, {});
  auto ports = defaultProbePorts(snapshot);
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports["prod/web-0"], std::vector<uint16_t>{8080});
}

TEST(ProbePlanTest, APodThatReportsItsOwnReadinessIsNotDefaultProbed) {
  ProberOptions options;
  std::vector<uint16_t> ports = {8080};
  Pod reported = pod("self", "10.0.0.1", std::nullopt,
                     Readiness{false, std::string(store::kReportedByPod) + ": draining", 1});
  EXPECT_EQ(planFor(reported, &ports, options).kind, PodPlan::Kind::kLeaveAlone);
  // A readinessProbe in the manifest still rules.
  reported.readiness_probe = tcpProbe(8080);
  EXPECT_EQ(planFor(reported, &ports, options).kind, PodPlan::Kind::kProbe);
}

TEST(ProbePlanTest, OnlyRealTransitionsNeedWriting) {
  Readiness ready{true, "readiness probe succeeded", 5};
  EXPECT_FALSE(needsWrite(ready, Readiness{true, "from an earlier run", 1}));
  EXPECT_TRUE(needsWrite(ready, Readiness{false, "readiness probe failed 3 times: x", 1}));
  Readiness failed{false, "readiness probe failed 3 times: y", 5};
  EXPECT_TRUE(needsWrite(failed, Readiness{false, store::kAwaitingProbe, 1}));
  EXPECT_FALSE(needsWrite(failed, Readiness{false, "readiness probe failed 3 times: x", 1}));
}

}  // namespace
}  // namespace svcbox::health
