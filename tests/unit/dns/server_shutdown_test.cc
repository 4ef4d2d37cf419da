#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "dns/server.h"
#include "tests/unit/dns/dns_test_util.h"

// A real DnsServer on loopback stopped and destroyed while TCP clients hold it busy: the TCP
// sessions still open then (answers queued for clients that never read, queries half sent,
// turns waiting) must go before the counters and tables they touch. The ASan build of the unit
// tests (CI) is what catches a use after destruction here.
namespace svcbox::dns {
namespace {

class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    int small = 4096;  // the client reads nothing: serve's answers pile up on its side
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return connected_; }
  // Writes what the socket takes now; returns the bytes taken.
  size_t send(const std::vector<uint8_t>& bytes) {
    ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    return sent > 0 ? static_cast<size_t>(sent) : 0;
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::vector<uint8_t> pipelined(size_t queries) {
  auto query = dnstest::makeQuery("web.default.svc.cluster.local", 1);
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < queries; ++i) {
    bytes.push_back(static_cast<uint8_t>(query.size() >> 8));
    bytes.push_back(static_cast<uint8_t>(query.size()));
    bytes.insert(bytes.end(), query.begin(), query.end());
  }
  return bytes;
}

TEST(DnsServerShutdownTest, StoppingWithBusyTcpConnectionsFreesThemBeforeWhatTheyUse) {
  DnsOptions options;
  options.listen = {*parseListenAddress("127.0.0.1:0")};
  options.forwarder.upstreams = {{"127.0.0.1", 9}};
  options.threads = 1;
  auto server = std::make_unique<DnsServer>(options);
  ASSERT_TRUE(server->bind());
  server->start();
  server->publish(std::make_shared<const store::Snapshot>(
      1, std::nullopt, std::vector<store::ServiceEntry>{}, std::vector<store::PodPtr>{},
      std::vector<store::EndpointSet>{}));
  std::string bound = server->boundAddresses().front();
  auto port = static_cast<uint16_t>(std::stoi(bound.substr(bound.rfind(':') + 1)));

  std::vector<std::unique_ptr<RawConnection>> clients;
  auto burst = pipelined(2000);
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(clients.back()->connected());
    EXPECT_GT(clients.back()->send(burst), 0u);
  }
  for (int i = 0; i < 4; ++i) {  // half a query each
    clients.push_back(std::make_unique<RawConnection>(port));
    ASSERT_TRUE(clients.back()->connected());
    EXPECT_EQ(clients.back()->send({0, 40, 0x12}), 3u);
  }
  // Until serve has answered a good share and stalled on the clients that do not read
  // (bounded: 10 s).
  for (int i = 0; i < 1000 && server->counters().tcp_queries < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(server->counters().tcp_queries, 1000u);
  server->stop();
  server.reset();
}

}  // namespace
}  // namespace svcbox::dns
