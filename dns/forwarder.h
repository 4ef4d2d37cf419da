#pragma once

#include <ares.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/cache.h"
#include "dns/metrics.h"
#include "dns/wire.h"
#include "store/ip.h"
#include "store/result.h"

// Sends questions outside svcbox's zones to the upstream resolvers through c-ares, driven by an
// Asio event loop (c-ares tells which sockets to watch; Asio watches them), and caches answers.
namespace svcbox::dns {

struct Upstream {
  std::string address;  // numeric IPv4 or IPv6
  uint16_t port = 53;
  std::string toString() const;
};

struct ForwarderOptions {
  std::vector<Upstream> upstreams;
  std::chrono::milliseconds timeout{2000};  // all upstreams together
  size_t max_concurrent = 1000;             // CoreDNS forward's max_concurrent
};

// One forwarded question. Owns a copy of the client's packet; `reply` is called once, on the
// forwarder's thread, with the bytes to send back (never empty).
struct ForwardJob {
  std::vector<uint8_t> packet;
  Query query;  // parsed from `packet`
  size_t size_limit = kPlainUdpSize;
  // For an ExternalName: the CNAME answer already made, and the name to resolve upstream.
  std::vector<uint8_t> alias_answer;
  std::string alias_target;
  std::function<void(std::span<const uint8_t>)> reply;
};

struct ForwarderCounters {
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> upstream_failures{0};
  std::atomic<uint64_t> refused_over_limit{0};
};

class Forwarder {
 public:
  Forwarder(boost::asio::io_context& context, ForwarderOptions options, AnswerCache& cache);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Thread-safe: queues the job on the forwarder's event loop.
  void submit(std::unique_ptr<ForwardJob> job);
  const ForwarderCounters& counters() const { return counters_; }
  // Per configured upstream: answers received from it and their latency (from the question
  // leaving svcbox to the answer). c-ares picks the server; an answer is credited to the
  // upstream whose socket it arrived on. Thread-safe.
  std::vector<UpstreamMetrics> upstreamMetrics() const;
  // Releases c-ares' sockets; call after the event loop stopped.
  void shutdown();

 private:
  struct Watch;
  struct InFlight {
    Forwarder* self;
    std::shared_ptr<ForwardJob> job;
    std::chrono::steady_clock::time_point sent;
  };
  // Which configured upstream a c-ares socket talks to; -1 when none matches.
  int upstreamOf(ares_socket_t fd) const;
  void start(std::shared_ptr<ForwardJob> job);
  void finish(ForwardJob& job, std::span<const uint8_t> upstream);
  void onSocketState(ares_socket_t fd, bool readable, bool writable);
  void arm(const std::shared_ptr<Watch>& watch, bool for_read);
  void rearmTimer();
  static void socketStateCallback(void* self, ares_socket_t fd, int readable, int writable);
  static void answerCallback(void* job, int status, int timeouts, unsigned char* answer,
                             int length);

  boost::asio::io_context& context_;
  ForwarderOptions options_;
  AnswerCache& cache_;
  ares_channel channel_ = nullptr;
  boost::asio::steady_timer timer_;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  size_t in_flight_ = 0;
  ForwarderCounters counters_;
  // Parallel to options_.upstreams; written by the forwarder's thread only.
  std::vector<LatencyHistogram> upstream_latency_;
  std::vector<store::IpAddress> upstream_ips_;
  // The upstream whose socket c-ares is reading while it runs answer callbacks; -1 otherwise.
  int reading_upstream_ = -1;
};

// The nameservers of a resolv.conf file, minus svcbox itself: any nameserver on a port svcbox
// listens on whose address is that listener's, or, for a wildcard listener, one of
// `local_addresses` (the host's own addresses, loopback included).
struct OwnListener {
  store::IpAddress ip;  // all zeros: wildcard
  uint16_t port = 53;
};
std::vector<Upstream> upstreamsFromResolvConf(const std::string& path,
                                              const std::vector<OwnListener>& listeners,
                                              const std::vector<store::IpAddress>& local_addresses);
// The addresses of this host's interfaces, and the loopback ranges' sample addresses.
std::vector<store::IpAddress> localAddresses();
// "IP", "IP:PORT" or "[IPv6]:PORT".
store::Result<Upstream> parseUpstream(std::string_view text);

}  // namespace svcbox::dns
