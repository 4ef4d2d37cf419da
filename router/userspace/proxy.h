#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "router/sync_loop.h"
#include "router/userspace/port_mapping.h"
#include "store/snapshot.h"

// The userspace proxy mode: svcbox accepts each Service connection itself and relays the bytes to
// a ready pod, for hosts where it may not write netfilter rules. It works from snapshots alone.
namespace svcbox::router::userspace {

struct ProxyOptions {
  // Every listener binds here; DNS then answers this address for the Services.
  store::IpAddress bind_address = *store::IpAddress::parse("127.0.0.1");
  // A Service port that cannot be bound (below 1024 without CAP_NET_BIND_SERVICE, or taken by
  // another Service with the same port number) listens on base + port when that is free and
  // below 65536, else on a port the kernel picks.
  uint16_t mapped_port_base = 20000;
  // False where REDIRECT brings the traffic: listeners on every address must not claim the
  // Service's own (often well-known) port on the host, so they start at the mapped one.
  bool own_port_first = true;
  // REDIRECT mode: a TCP connection is relayed only when the kernel redirected it from the
  // Service's ClusterIP and port (SO_ORIGINAL_DST); one made to the listener directly is reset.
  // UDP is filtered by the REDIRECT rules' INPUT chain (a datagram has no SO_ORIGINAL_DST).
  bool only_redirected = false;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds tcp_idle_timeout{300000};
  std::chrono::milliseconds udp_idle_timeout{30000};
  // How long a connection to a pod that stopped being ready may still run.
  std::chrono::milliseconds drain_timeout{30000};
  // Per Service port; a connection over it is closed at once (and counted as failed).
  size_t max_connections = 1024;
  // One buffer per direction per connection: the most svcbox holds for a slow reader.
  size_t buffer_size = 64 * 1024;
  // A TCP direction that fills the buffer in one read continues with splice() through a pipe:
  // bulk bytes stay in the kernel, short exchanges never pay for the pipe.
  bool splice = true;
  // What a bulk direction's pipe may hold: the most svcbox holds for it once it splices. Bigger
  // means fewer system calls per byte.
  size_t pipe_size = 64 * 1024;
  // Relay threads. Each accepts from every TCP listener and relays what it accepted; UDP and
  // the updates run on the first. Two, because a relayed connection costs the kernel two TCP
  // connections' work and a second thread lets it use a second core. On bench/proxy's 2-core
  // machine, where wrk and the pod need the cores too, one and two threads measured the same
  // (paired, five rounds), so two stays.
  size_t threads = 2;
};

class UserspaceProxy {
 public:
  UserspaceProxy(ProxyOptions options, LogFunction log);
  ~UserspaceProxy();
  UserspaceProxy(const UserspaceProxy&) = delete;
  UserspaceProxy& operator=(const UserspaceProxy&) = delete;

  // Starts the relay thread.
  void start();
  // Opens listeners for new Service ports, closes those of removed ones and gives new
  // connections the snapshot's ready endpoints at once. A port keeps its listener for as long as
  // the Service has it. Blocks until the relay thread applied it; returns the mapping in effect.
  std::vector<PortMapping> update(const store::SnapshotPtr& snapshot);
  // Closes every listener and connection and joins the thread.
  void stop();

  // Thread-safe.
  std::vector<PortMapping> mapping() const;
  std::vector<PortStats> stats() const;
  // TCP connections each relay thread accepted since start.
  std::vector<uint64_t> connectionsPerThread() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace svcbox::router::userspace
