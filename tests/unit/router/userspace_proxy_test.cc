#include "router/userspace/proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

// The proxy in-process on loopback. Service ports are 0, so every listener gets a port the kernel
// picks and nothing here depends on which ports the machine has free. Backends are plain sockets
// served by threads of the test; every wait is bounded.
namespace svcbox::router::userspace {
namespace {

using namespace std::chrono_literals;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

uint16_t portOf(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

// A TCP backend that writes its name to every connection, then echoes until the peer closes.
class Backend {
 public:
  explicit Backend(std::string name) : name_(std::move(name)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto address = loopback(0);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    port_ = portOf(fd_);
    thread_ = std::thread([this] { run(); });
  }
  ~Backend() {
    stopping_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  void run() {
    while (!stopping_) {
      pollfd wait{fd_, POLLIN, 0};
      if (poll(&wait, 1, 100) <= 0) continue;
      int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      std::thread([name = name_, client] {
        (void)!write(client, name.data(), name.size());
        char buffer[4096];
        for (;;) {
          pollfd readable{client, POLLIN, 0};
          if (poll(&readable, 1, 5000) <= 0) break;
          ssize_t n = read(client, buffer, sizeof buffer);
          if (n <= 0) break;
          (void)!write(client, buffer, static_cast<size_t>(n));
        }
        close(client);
      }).detach();
    }
  }

  std::string name_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A port nothing listens on: bound, then closed.
uint16_t deadPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = loopback(0);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  uint16_t port = portOf(fd);
  close(fd);
  return port;
}

store::SnapshotPtr snapshotWith(std::vector<std::pair<uint16_t, bool>> backends,
                                store::Protocol protocol = store::Protocol::kTcp) {
  store::ServiceEntry entry;
  entry.service.name = "web";
  entry.service.cluster_ip = store::IpAddress::parse("10.96.0.10");
  entry.service.ports = {{"http", protocol, 0, {8080, ""}}};
  for (auto [port, ready] : backends) {
    store::Endpoint endpoint;
    endpoint.ip = *store::IpAddress::parse("127.0.0.1");
    endpoint.ready = ready;
    endpoint.ports = {port};
    entry.endpoints.push_back(endpoint);
  }
  return std::make_shared<store::Snapshot>(1, std::nullopt, std::vector<store::ServiceEntry>{entry},
                                           std::vector<store::PodPtr>{},
                                           std::vector<store::EndpointSet>{});
}

// Connects to the proxy and returns the first bytes (the backend's name); "" when the proxy
// closed or reset the connection. `keep` receives the socket when given.
std::string greeting(uint16_t port, int* keep = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = loopback(port);
  std::string name;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    pollfd readable{fd, POLLIN, 0};
    char buffer[64];
    if (poll(&readable, 1, 5000) > 0) {
      ssize_t n = read(fd, buffer, sizeof buffer);
      if (n > 0) name.assign(buffer, static_cast<size_t>(n));
    }
  }
  if (keep) {
    *keep = fd;
  } else {
    close(fd);
  }
  return name;
}

class UserspaceProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.drain_timeout = 300ms;
    options_.connect_timeout = 1000ms;
  }
  void startProxy() {
    proxy_ = std::make_unique<UserspaceProxy>(options_, [](LogLevel, const std::string&) {});
    proxy_->start();
  }
  uint16_t listenPort(const std::vector<PortMapping>& mapping) {
    EXPECT_EQ(mapping.size(), 1u);
    return mapping.empty() ? 0 : mapping[0].listen_port;
  }

  ProxyOptions options_;
  std::unique_ptr<UserspaceProxy> proxy_;
};

TEST_F(UserspaceProxyTest, RoundRobinAndADeadPodCostsARetryNotAFailure) {
  Backend a("a");
  Backend b("b");
  startProxy();
  auto port = listenPort(
      proxy_->update(snapshotWith({{a.port(), true}, {deadPort(), true}, {b.port(), true}})));
  std::multiset<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.insert(greeting(port));
  EXPECT_EQ(seen.count("a"), 2u);
  EXPECT_EQ(seen.count("b"), 4u);  // the dead pod's turns go to the next one
  auto stats = proxy_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].accepted, 6u);
  EXPECT_EQ(stats[0].failed, 0u);
  EXPECT_EQ(stats[0].retried, 2u);
}

TEST_F(UserspaceProxyTest, NoReadyPodIsAFailedConnectionAtOnce) {
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{deadPort(), false}})));
  EXPECT_EQ(greeting(port), "");
  EXPECT_EQ(proxy_->stats()[0].failed, 1u);
}

TEST_F(UserspaceProxyTest, ARemovedServiceClosesItsListener) {
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({})));
  auto empty = std::make_shared<store::Snapshot>(
      2, std::nullopt, std::vector<store::ServiceEntry>{}, std::vector<store::PodPtr>{},
      std::vector<store::EndpointSet>{});
  EXPECT_TRUE(proxy_->update(empty).empty());
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = loopback(port);
  EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  close(fd);
}

TEST_F(UserspaceProxyTest, AnUnreadyPodsConnectionDrainsThenCloses) {
  Backend a("a");
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}})));
  int kept = -1;
  ASSERT_EQ(greeting(port, &kept), "a");
  auto unready = snapshotWith({{a.port(), false}});
  proxy_->update(unready);
  EXPECT_EQ(proxy_->stats()[0].active, 1u);  // left to finish
  // Within the drain timeout (300 ms) plus slack the proxy closes it: read sees the end.
  pollfd readable{kept, POLLIN, 0};
  ASSERT_GT(poll(&readable, 1, 5000), 0);
  char byte;
  EXPECT_LE(read(kept, &byte, 1), 0);
  close(kept);
  EXPECT_EQ(greeting(port), "");  // and new connections find no ready pod
}

// A pod whose listen queue is full: its kernel drops the SYNs, so a connect to it neither
// succeeds nor fails until given up.
class SilentPod {
 public:
  SilentPod() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto address = loopback(0);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listener_, 0), 0);
    port_ = portOf(listener_);
    // Connections nobody accepts fill the queue; the first that does not complete shows it full.
    for (int i = 0; i < 8; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      auto target = loopback(port_);
      connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target);
      fillers_.push_back(fd);
      pollfd writable{fd, POLLOUT, 0};
      if (poll(&writable, 1, 200) == 0) return;
    }
    ADD_FAILURE() << "the listen queue never filled";
  }
  ~SilentPod() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(UserspaceProxyTest, AConnectThatHangsIsGivenUpAtTheTimeoutAndRetried) {
  SilentPod silent;
  Backend a("a");
  options_.connect_timeout = 200ms;
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{silent.port(), true}, {a.port(), true}})));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(greeting(port), "a");  // the silent pod's turn, given up, then the next pod
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 2000ms);  // the timeout plus the sweep's tick, with room for a slow machine
  auto stats = proxy_->stats();
  EXPECT_EQ(stats[0].retried, 1u);
  EXPECT_EQ(stats[0].failed, 0u);
}

TEST_F(UserspaceProxyTest, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  Backend a("a");
  options_.tcp_idle_timeout = 300ms;
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}})));
  int kept = -1;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(greeting(port, &kept), "a");
  pollfd readable{kept, POLLIN, 0};
  ASSERT_GT(poll(&readable, 1, 5000), 0);
  char byte;
  EXPECT_LE(read(kept, &byte, 1), 0);  // the proxy closed it
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  close(kept);
  // The client sees the close before the relay thread has run the ended directions' last steps.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (proxy_->stats()[0].active != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(proxy_->stats()[0].active, 0u);
}

// Large enough that both directions fill the buffer and move on to splice().
TEST_F(UserspaceProxyTest, BulkBytesArriveIntactAndHalfCloseEndsTheStream) {
  Backend a("a");
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}})));
  int fd = -1;
  ASSERT_EQ(greeting(port, &fd), "a");
  std::string sent(4 * 1024 * 1024, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 4096);
  std::thread writer([&] {
    size_t offset = 0;
    while (offset < sent.size()) {
      ssize_t n = write(fd, sent.data() + offset, sent.size() - offset);
      if (n <= 0) break;
      offset += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  });
  std::string received;
  char buffer[65536];
  for (;;) {
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, 10000) <= 0) break;
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;  // the backend closed after our half-close reached it
    received.append(buffer, static_cast<size_t>(n));
  }
  writer.join();
  close(fd);
  EXPECT_EQ(received.size(), sent.size());
  EXPECT_TRUE(received == sent);
  auto stats = proxy_->stats();
  EXPECT_EQ(stats[0].bytes_to_pods, sent.size());
}

// A pod that resets in the middle of a bulk stream ends only that connection; the proxy keeps
// serving.
TEST_F(UserspaceProxyTest, APodVanishingMidStreamEndsOnlyThatConnection) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto address = loopback(0);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  std::thread rude([listener] {
    pollfd readable{listener, POLLIN, 0};
    if (poll(&readable, 1, 5000) <= 0) return;
    int peer = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    char buffer[200000];
    size_t total = 0;
    while (total < sizeof buffer) {  // take a little, then reset the connection
      ssize_t n = read(peer, buffer, sizeof buffer - total);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    linger reset{1, 0};
    setsockopt(peer, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(peer);
  });
  Backend b("b");
  startProxy();
  auto port =
      listenPort(proxy_->update(snapshotWith({{portOf(listener), true}, {b.port(), true}})));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto proxy_address = loopback(port);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&proxy_address), sizeof proxy_address), 0);
  std::string chunk(1 << 20, 'x');
  for (int i = 0; i < 16; ++i) {
    pollfd writable{fd, POLLOUT, 0};
    if (poll(&writable, 1, 2000) <= 0) break;
    if (send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
      break;
    }
  }
  rude.join();
  close(fd);
  close(listener);
  EXPECT_EQ(greeting(port), "b");  // the round-robin's next turn, on a proxy still running
}

// Clients at once through two relay threads: every connection reaches a pod, the round-robin
// the threads share splits them exactly, the counts add up, and both threads take a share.
TEST_F(UserspaceProxyTest, TwoRelayThreadsShareTheListenerTheRoundRobinAndTheCounts) {
  Backend a("a");
  Backend b("b");
  options_.threads = 2;
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}, {b.port(), true}})));
  constexpr int kClients = 8;
  constexpr int kEach = 50;
  std::atomic<int> to_a{0};
  std::atomic<int> to_b{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto name = greeting(port);
        (name == "a" ? to_a : name == "b" ? to_b : other).fetch_add(1);
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(to_a.load(), kClients * kEach / 2);
  EXPECT_EQ(to_b.load(), kClients * kEach / 2);
  auto per_thread = proxy_->connectionsPerThread();
  ASSERT_EQ(per_thread.size(), 2u);
  EXPECT_EQ(per_thread[0] + per_thread[1], uint64_t{kClients * kEach});
  EXPECT_GT(per_thread[0], 0u);
  EXPECT_GT(per_thread[1], 0u);
  // A connection counts as ended once both directions saw the close, just after the client's.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (proxy_->stats()[0].active > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  auto stats = proxy_->stats();
  EXPECT_EQ(stats[0].accepted, uint64_t{kClients * kEach});
  EXPECT_EQ(stats[0].failed, 0u);
  EXPECT_EQ(stats[0].active, 0u);
}

// The limit holds for the port as a whole, whichever thread accepted a connection.
TEST_F(UserspaceProxyTest, TheConnectionLimitCountsEveryRelayThread) {
  Backend a("a");
  options_.threads = 2;
  options_.max_connections = 4;
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}})));
  std::vector<int> kept(6, -1);
  int served = 0;
  for (auto& fd : kept) served += greeting(port, &fd) == "a";
  EXPECT_EQ(served, 4);
  EXPECT_EQ(proxy_->stats()[0].failed, 2u);
  for (int fd : kept) close(fd);
}

// An update reaches the connections of every relay thread: all of them drain and close.
TEST_F(UserspaceProxyTest, AnUnreadyPodsConnectionsDrainOnEveryRelayThread) {
  Backend a("a");
  options_.threads = 2;
  startProxy();
  auto port = listenPort(proxy_->update(snapshotWith({{a.port(), true}})));
  std::vector<int> kept;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {  // until both threads hold one (bounded: 64 connections or 5 s)
    auto per_thread = proxy_->connectionsPerThread();
    if ((per_thread[0] > 0 && per_thread[1] > 0) || kept.size() >= 64 ||
        std::chrono::steady_clock::now() > deadline) {
      break;
    }
    int fd = -1;
    ASSERT_EQ(greeting(port, &fd), "a");
    kept.push_back(fd);
  }
  auto per_thread = proxy_->connectionsPerThread();
  ASSERT_GT(per_thread[0], 0u);
  ASSERT_GT(per_thread[1], 0u);
  proxy_->update(snapshotWith({{a.port(), false}}));
  for (int fd : kept) {
    pollfd readable{fd, POLLIN, 0};
    ASSERT_GT(poll(&readable, 1, 5000), 0);
    char byte;
    EXPECT_LE(read(fd, &byte, 1), 0);
    close(fd);
  }
}

TEST_F(UserspaceProxyTest, UdpRepliesComeFromTheListener) {
  int backend = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto backend_address = loopback(0);
  ASSERT_EQ(bind(backend, reinterpret_cast<sockaddr*>(&backend_address), sizeof backend_address),
            0);
  std::thread echo([backend] {
    char buffer[512];
    sockaddr_in peer{};
    socklen_t length = sizeof peer;
    pollfd readable{backend, POLLIN, 0};
    if (poll(&readable, 1, 5000) <= 0) return;
    ssize_t n =
        recvfrom(backend, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&peer), &length);
    if (n > 0) {
      sendto(backend, buffer, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer),
             length);
    }
  });
  startProxy();
  auto port =
      listenPort(proxy_->update(snapshotWith({{portOf(backend), true}}, store::Protocol::kUdp)));
  int client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto proxy_address = loopback(port);
  ASSERT_EQ(sendto(client, "ping", 4, 0, reinterpret_cast<sockaddr*>(&proxy_address),
                   sizeof proxy_address),
            4);
  pollfd readable{client, POLLIN, 0};
  ASSERT_GT(poll(&readable, 1, 5000), 0);
  char buffer[16];
  sockaddr_in from{};
  socklen_t length = sizeof from;
  ssize_t n =
      recvfrom(client, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &length);
  EXPECT_EQ(std::string(buffer, static_cast<size_t>(std::max<ssize_t>(n, 0))), "ping");
  EXPECT_EQ(ntohs(from.sin_port), port);
  echo.join();
  close(client);
  close(backend);
  // The relay thread counts a datagram after its send completed, which may be after it arrived.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (proxy_->stats()[0].bytes_to_clients < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  auto stats = proxy_->stats();
  EXPECT_EQ(stats[0].bytes_to_pods, 4u);
  EXPECT_EQ(stats[0].bytes_to_clients, 4u);
}

// Services without endpoints, each {name, port}, all of `protocol`.
store::SnapshotPtr servicesOn(uint64_t version,
                              std::vector<std::pair<std::string, std::vector<uint16_t>>> services,
                              store::Protocol protocol) {
  std::vector<store::ServiceEntry> entries;
  int address = 10;
  for (auto& [name, ports] : services) {
    store::ServiceEntry entry;
    entry.service.name = name;
    entry.service.cluster_ip = store::IpAddress::parse("10.96.0." + std::to_string(address++));
    for (uint16_t port : ports) {
      entry.service.ports.push_back({"p" + std::to_string(port), protocol, port, {8080, ""}});
    }
    entries.push_back(std::move(entry));
  }
  return std::make_shared<store::Snapshot>(version, std::nullopt, std::move(entries),
                                           std::vector<store::PodPtr>{},
                                           std::vector<store::EndpointSet>{});
}

uint16_t listenerOf(const std::vector<PortMapping>& mapping, const std::string& name,
                    uint16_t port) {
  for (const auto& entry : mapping) {
    if (entry.name == name && entry.service_port == port) return entry.listen_port;
  }
  return 0;
}

// A port number one Service lets go of is another's in the same snapshot, as it would be for a
// serve started on that registry: the listeners that went are closed (on every relay thread)
// before new ones bind. tests/differential found the new Service on base + port instead.
TEST_F(UserspaceProxyTest, APortLetGoOfIsTakenInTheSameSnapshot) {
  for (auto protocol : {store::Protocol::kTcp, store::Protocol::kUdp}) {
    SCOPED_TRACE(store::protocolName(protocol));
    // Free numbers above 45535: base + port is beyond 65535, so a refused own port would go
    // to a port the kernel picks.
    uint16_t first = 0, second = 0;
    for (int tries = 0; tries < 100 && (first <= 45535 || second <= 45535 || first == second);
         ++tries) {
      (first <= 45535 ? first : second) = deadPort();
    }
    ASSERT_GT(first, 45535);
    ASSERT_GT(second, 45535);
    startProxy();
    auto mapping =
        proxy_->update(servicesOn(1, {{"old", {first}}, {"moving", {second}}}, protocol));
    ASSERT_EQ(listenerOf(mapping, "old", first), first);
    ASSERT_EQ(listenerOf(mapping, "moving", second), second);
    // "old" is deleted and "new" takes its number; "moving" changes its port and "zzz" (after
    // it in name order) takes the one it had.
    mapping = proxy_->update(servicesOn(
        2, {{"moving", {static_cast<uint16_t>(second - 1)}}, {"new", {first}}, {"zzz", {second}}},
        protocol));
    EXPECT_EQ(listenerOf(mapping, "new", first), first);
    EXPECT_EQ(listenerOf(mapping, "zzz", second), second);
    proxy_.reset();
  }
}

}  // namespace
}  // namespace svcbox::router::userspace
