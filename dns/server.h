#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dns/answer_table.h"
#include "dns/cache.h"
#include "dns/forwarder.h"
#include "dns/metrics.h"
#include "dns/tcp_limits.h"
#include "dns/zone_compiler.h"
#include "store/ip.h"
#include "store/result.h"
#include "store/snapshot.h"

// svcbox's DNS server: authoritative for the cluster zone compiled from each snapshot, forwarding
// the rest. UDP on every worker thread (SO_REUSEPORT, batched recvmmsg/sendmmsg), TCP per RFC 7766
// on the first, c-ares forwarding on a loop of its own.
namespace svcbox::dns {

struct ListenAddress {
  store::IpAddress ip;
  uint16_t port = 53;
  std::string toString() const;
};
// "ADDR:PORT" or "[IPv6]:PORT".
store::Result<ListenAddress> parseListenAddress(std::string_view text);

struct DnsOptions {
  std::vector<ListenAddress> listen;
  ZoneOptions zone;
  // The registry's, known before it is loaded: its reverse zones get SERVFAIL until then.
  std::optional<store::Cidr> service_cidr;
  std::vector<store::Cidr> allow_recursion;
  ForwarderOptions forwarder;
  CacheOptions cache;
  size_t threads = 0;  // 0: one per CPU
  TcpLimits tcp;
};

// The default --allow-recursion: loopback and private ranges.
std::vector<store::Cidr> defaultRecursionCidrs();

struct DnsCounters {
  uint64_t udp_queries = 0;
  uint64_t tcp_queries = 0;
  uint64_t dropped = 0;    // responses, runts, oversized datagrams
  uint64_t malformed = 0;  // answered FORMERR
  uint64_t truncated = 0;
  uint64_t nxdomain = 0;
  uint64_t refused = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t forwarded = 0;
  uint64_t upstream_failures = 0;
  uint64_t refused_over_limit = 0;
};

class DnsServer {
 public:
  explicit DnsServer(DnsOptions options);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Binds every listen address (UDP and TCP); the error names the address that failed and why.
  store::Status bind();
  // Starts the worker threads; answers come from the last published snapshot.
  void start();
  struct Published {
    bool unchanged = false;  // nothing DNS shows changed: the table in use stays
    size_t names = 0;
    size_t bytes = 0;
    size_t encoded = 0;  // Services whose names were encoded anew; the others' were reused
    std::chrono::microseconds took{0};
  };
  // Compiles the snapshot's zone and swaps it in; in-flight queries finish on the old table.
  // Called from one thread (serve's watcher). `proxied`: the Services the userspace proxy serves
  // from addresses of its own (see ProxiedServices); null when none.
  Published publish(const store::SnapshotPtr& snapshot, const ProxiedServices* proxied = nullptr);
  void stop();

  // The addresses actually bound (port 0 resolved), for logs and tests.
  std::vector<std::string> boundAddresses() const;
  DnsCounters counters() const;
  // Requests, responses and durations in CoreDNS's shapes, summed over the threads; a reader
  // never slows the query path (relaxed loads of per-thread counters).
  DnsMetrics metrics() const;
  const DnsOptions& options() const { return options_; }

  class Impl;

 private:
  DnsOptions options_;
  std::unique_ptr<Impl> impl_;
  ZoneCompiler compiler_;  // keeps what each Service compiled to, for the next snapshot
};

}  // namespace svcbox::dns
