#include "router/userspace/proxy.h"

#include "router/userspace/sweep.h"
#include "router/userspace/transfer.h"
#include "store/ip_asio.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <linux/netfilter_ipv4.h>  // SO_ORIGINAL_DST, after glibc's netinet/in.h

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

namespace svcbox::router::userspace {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxDatagram = 65535;

struct Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};  // not redirected from the Service (REDIRECT mode)
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> bytes_to_pods{0};
  std::atomic<uint64_t> bytes_to_clients{0};
  std::atomic<uint64_t> active{0};
};

struct Key {
  std::string namespace_name;
  std::string name;
  store::Protocol protocol = store::Protocol::kTcp;
  uint16_t port = 0;
  auto operator<=>(const Key&) const = default;
  std::string toString() const {
    return namespace_name + "/" + name + " port " + std::to_string(port) + "/" +
           store::protocolName(protocol);
  }
};

using Backends = std::shared_ptr<const std::vector<Backend>>;  // ready ones, in snapshot order

// What one Service port's listener shares with its connections; they keep it alive after the
// listener closed.
struct PortState {
  Key key;
  std::string port_name;
  uint16_t listen_port = 0;
  std::shared_ptr<Counters> counters = std::make_shared<Counters>();
};

// A TCP port's part on one relay thread: only that thread touches it.
struct TcpShard {
  tcp::acceptor* acceptor = nullptr;  // owned by the accept loop's frame while it runs
  bool closed = false;
  std::optional<store::IpAddress> cluster_ip;  // the Service's, as of the last update
  Backends backends = std::make_shared<const std::vector<Backend>>();
  TcpFlowList<&TcpFlow::shard_hook> flows;
};

// Every relay thread accepts on the same listening socket (a descriptor of its own) and relays
// what it accepted; the round-robin position and the connection count are shared by all.
struct TcpPort : PortState {
  explicit TcpPort(size_t threads) : shards(threads), listen_fds(threads, -1) {}
  ~TcpPort() {
    for (int fd : listen_fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  TcpPort(const TcpPort&) = delete;
  TcpPort& operator=(const TcpPort&) = delete;
  std::atomic<size_t> next{0};
  std::atomic<size_t> open{0};  // connections being connected or relayed, on every thread
  std::vector<TcpShard> shards;
  // The listening socket, handed from the control thread to each shard's accept loop.
  std::vector<int> listen_fds;
};

struct UdpSession : Flow {
  UdpSession(const asio::any_io_executor& executor, udp::endpoint from)
      : client(from), upstream(executor), timer(executor) {
    wake = &timer;
  }
  udp::endpoint client;
  udp::socket upstream;
  asio::steady_timer timer;  // the watchdog's
};

// UDP runs on the first relay thread only.
struct UdpPort : PortState {
  explicit UdpPort(asio::io_context& context) : socket(context) {}
  udp::socket socket;
  std::vector<Backend> backends;
  size_t next = 0;
  std::set<Flow*> flows;
  std::map<udp::endpoint, std::shared_ptr<UdpSession>> sessions;
};

// The change one update makes to a TCP port, applied by every relay thread to its own shard.
struct ShardChange {
  std::shared_ptr<TcpPort> port;
  Backends backends;
  bool opened = false;
  bool closing = false;
  std::optional<store::IpAddress> cluster_ip;
};

// Whether the kernel redirected this connection here from `cluster_ip`:`port` (REDIRECT is a
// destination NAT, so conntrack keeps the address the client asked for). A connection made to the
// listener itself, from the node's address or anywhere else, was not.
bool redirectedFrom(tcp::socket& client, const std::optional<store::IpAddress>& cluster_ip,
                    uint16_t port) {
  if (!cluster_ip || !cluster_ip->isV4()) return false;
  sockaddr_in original{};
  socklen_t length = sizeof original;
  if (::getsockopt(client.native_handle(), SOL_IP, SO_ORIGINAL_DST, &original, &length) != 0) {
    return false;
  }
  return original.sin_family == AF_INET && ntohs(original.sin_port) == port &&
         std::memcmp(&original.sin_addr, cluster_ip->bytes.data(), 4) == 0;
}

// Connections to a pod that is no longer ready may finish, within the drain timeout.
void drainIfGone(const std::vector<Backend>& ready, Flow& flow, Clock::time_point deadline) {
  if (std::find(ready.begin(), ready.end(), flow.backend) != ready.end()) {
    flow.drain_deadline = Clock::time_point::max();
  } else if (flow.drain_deadline == Clock::time_point::max()) {
    flow.drain_deadline = deadline;
    if (flow.wake) flow.wake->cancel();
  }
}

Flow& asFlow(Flow* flow) { return *flow; }
Flow& asFlow(Flow& flow) { return flow; }

template <typename Flows>
void drainGone(const std::vector<Backend>& ready, Flows& flows,
               std::chrono::milliseconds drain_timeout) {
  auto deadline = Clock::now() + drain_timeout;
  for (auto&& flow : flows) drainIfGone(ready, asFlow(flow), deadline);
}

// The client learns at once (a reset) instead of waiting on a connection nothing will answer.
void resetClient(tcp::socket& client) {
  error_code ignored;
  client.set_option(asio::socket_base::linger(true, 0), ignored);
  client.close(ignored);
}

// A TCP connection from accept to close, shared by its two directions: the last to end gives
// the port's connection-limit slot back.
struct Connection : TcpFlow {
  Connection(tcp::socket accepted, std::shared_ptr<TcpPort> of)
      : TcpFlow(std::move(accepted)), port(std::move(of)) {}
  ~Connection() {
    if (relaying) port->counters->active.fetch_sub(1, std::memory_order_relaxed);
    port->open.fetch_sub(1, std::memory_order_relaxed);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  std::shared_ptr<TcpPort> port;
  bool relaying = false;  // connected to a pod, counted as active
};

// The pod-to-client direction in a coroutine of its own, while the relay's carries the other:
// cheaper than joining both in a parallel group, which the relay has no use for.
asio::awaitable<void> carryReplies(std::shared_ptr<Connection> connection, RelayPools& pools,
                                   bool splice) {
  auto& c = *connection;
  co_await transfer(c.upstream, c.client, c, c.port->counters->bytes_to_clients, pools, splice);
}

// Free buffers and pipes a relay thread keeps for the next connections.
constexpr size_t kPooled = 64;

struct Worker {
  explicit Worker(const ProxyOptions& options)
      : pools(options.buffer_size, options.pipe_size, kPooled),
        sweep(context.get_executor(), options.tcp_idle_timeout,
              Sweep::tickFor(options.connect_timeout, options.tcp_idle_timeout,
                             options.drain_timeout)) {}
  RelayPools pools;  // declared before the context, which destroys the frames that refer to it
  // Only this worker's thread touches its sockets (other threads only post to it), so the
  // reactor's per-socket locks are dropped.
  asio::io_context context{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(context);
  Sweep sweep;
  std::thread thread;
  std::atomic<uint64_t> accepted{0};
};

}  // namespace

class UserspaceProxy::Impl {
 public:
  Impl(ProxyOptions options, LogFunction log) : options_(std::move(options)), log_(std::move(log)) {
    for (size_t i = 0; i < std::max<size_t>(options_.threads, 1); ++i) {
      workers_.push_back(std::make_unique<Worker>(options_));
    }
  }

  void start() {
    for (auto& worker : workers_) {
      worker->thread = std::thread([&context = worker->context] {
        // splice() into a socket whose peer is gone raises SIGPIPE (it has no MSG_NOSIGNAL),
        // which would end the whole process. Blocked on this thread, it stays pending and the
        // call fails with EPIPE instead.
        sigset_t pipe_signal;
        sigemptyset(&pipe_signal);
        sigaddset(&pipe_signal, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
        context.run();
      });
    }
    started_ = true;
  }

  void stop() {
    for (auto& worker : workers_) {
      worker->work.reset();
      worker->context.stop();
    }
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
    started_ = false;
  }

  // The listeners change on the first relay thread (which also runs UDP), then every thread
  // applies the TCP ports' changes to its own shards; both are waited for. The listeners of
  // ports that went are closed on every thread first: a port number another Service lets go of
  // in the same snapshot is free when this one binds it, as it is for a serve started afresh.
  std::vector<PortMapping> update(const store::SnapshotPtr& snapshot) {
    if (!started_) {  // no thread runs: nothing else touches the ports
      auto closing = release(*snapshot);
      for (size_t w = 0; w < workers_.size(); ++w) applyShards(closing, w);
      auto changes = apply(*snapshot);
      for (size_t w = 0; w < workers_.size(); ++w) applyShards(changes, w);
      return mapping();
    }
    std::vector<ShardChange> closing;
    postTo(0, [&] { closing = release(*snapshot); }).get();
    if (!closing.empty()) onEveryThread(closing);
    std::vector<ShardChange> changes;
    postTo(0, [&] { changes = apply(*snapshot); }).get();
    onEveryThread(changes);
    return mapping();
  }

  std::vector<PortMapping> mapping() const {
    std::lock_guard lock(mutex_);
    return mapping_;
  }

  std::vector<uint64_t> connectionsPerThread() const {
    std::vector<uint64_t> out;
    for (const auto& worker : workers_) {
      out.push_back(worker->accepted.load(std::memory_order_relaxed));
    }
    return out;
  }

  std::vector<PortStats> stats() const {
    std::lock_guard lock(mutex_);
    std::vector<PortStats> out;
    out.reserve(mapping_.size());
    for (size_t i = 0; i < mapping_.size(); ++i) {
      const auto& c = *counters_[i];
      PortStats s;
      s.namespace_name = mapping_[i].namespace_name;
      s.name = mapping_[i].name;
      s.protocol = mapping_[i].protocol;
      s.service_port = mapping_[i].service_port;
      s.accepted = c.accepted.load(std::memory_order_relaxed);
      s.refused = c.refused.load(std::memory_order_relaxed);
      s.failed = c.failed.load(std::memory_order_relaxed);
      s.retried = c.retried.load(std::memory_order_relaxed);
      s.bytes_to_pods = c.bytes_to_pods.load(std::memory_order_relaxed);
      s.bytes_to_clients = c.bytes_to_clients.load(std::memory_order_relaxed);
      s.active = c.active.load(std::memory_order_relaxed);
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::future<void> postTo(size_t w, std::function<void()> job) {
    auto task = std::make_shared<std::packaged_task<void()>>(std::move(job));
    auto result = task->get_future();
    asio::post(workers_[w]->context, [task] { (*task)(); });
    return result;
  }

  asio::io_context& control() { return workers_[0]->context; }

  void onEveryThread(const std::vector<ShardChange>& changes) {
    std::vector<std::future<void>> done;
    for (size_t w = 0; w < workers_.size(); ++w) {
      done.push_back(postTo(w, [this, &changes, w] { applyShards(changes, w); }));
    }
    for (auto& one : done) one.wait();
  }

  static bool proxied(const store::Service& service) {
    return service.type == store::ServiceType::kClusterIP && !service.headless &&
           service.cluster_ip.has_value();
  }

  // On the first relay thread: forgets the ports the snapshot no longer has, closing the UDP
  // ones; the TCP ones are returned, for every thread to close its shard.
  std::vector<ShardChange> release(const store::Snapshot& snapshot) {
    std::set<Key> seen;
    for (const auto& entry : snapshot.services()) {
      const auto& service = entry.service;
      if (!proxied(service)) continue;
      for (const auto& port : service.ports) {
        seen.insert(Key{service.namespace_name, service.name, port.protocol, port.port});
      }
    }
    std::vector<ShardChange> closing;
    for (auto it = tcp_.begin(); it != tcp_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      closing.push_back(
          ShardChange{it->second, std::make_shared<const std::vector<Backend>>(), false, true, {}});
      log_(LogLevel::kInfo, "userspace proxy: closed the listener of " + it->first.toString());
      it = tcp_.erase(it);
    }
    for (auto it = udp_.begin(); it != udp_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      error_code ignored;
      it->second->socket.close(ignored);
      it->second->backends.clear();
      drainGone(it->second->backends, it->second->flows, options_.drain_timeout);
      log_(LogLevel::kInfo, "userspace proxy: closed the listener of " + it->first.toString());
      it = udp_.erase(it);
    }
    return closing;
  }

  // On the first relay thread, after release().
  std::vector<ShardChange> apply(const store::Snapshot& snapshot) {
    std::vector<ShardChange> changes;
    for (const auto& entry : snapshot.services()) {
      const auto& service = entry.service;
      if (!proxied(service)) continue;
      for (size_t i = 0; i < service.ports.size(); ++i) {
        const auto& port = service.ports[i];
        Key key{service.namespace_name, service.name, port.protocol, port.port};
        std::vector<Backend> backends;
        for (const auto& endpoint : entry.endpoints) {
          if (!endpoint.ready || i >= endpoint.ports.size() || endpoint.ports[i] == 0) continue;
          backends.push_back(Backend{store::toAsioAddress(endpoint.ip), endpoint.ports[i]});
        }
        if (port.protocol == store::Protocol::kTcp) {
          bool opened = false;
          auto state = tcpPort(key, port.name, opened);
          if (!state) continue;
          changes.push_back(
              ShardChange{state, std::make_shared<const std::vector<Backend>>(std::move(backends)),
                          opened, false, service.cluster_ip});
        } else if (auto* state = udpPort(key, port.name)) {
          state->backends = std::move(backends);
          drainGone(state->backends, state->flows, options_.drain_timeout);
        }
      }
    }
    publish();
    return changes;
  }

  // On relay thread `w`, for its own shard of every changed TCP port.
  void applyShards(const std::vector<ShardChange>& changes, size_t w) {
    for (const auto& change : changes) {
      auto& shard = change.port->shards[w];
      shard.backends = change.backends;
      shard.cluster_ip = change.cluster_ip;
      if (change.closing) {
        shard.closed = true;
        error_code ignored;
        if (shard.acceptor) shard.acceptor->close(ignored);
        // Not yet taken by the accept loop (which runs on this thread too): closed here, so
        // the port is free when update() goes on.
        if (int fd = std::exchange(change.port->listen_fds[w], -1); fd >= 0) ::close(fd);
      }
      drainGone(*shard.backends, shard.flows, options_.drain_timeout);
      if (change.opened) {
        asio::co_spawn(workers_[w]->context, acceptLoop(change.port, w), asio::detached);
      }
    }
  }

  void publish() {
    std::vector<PortMapping> mapping;
    std::vector<std::shared_ptr<Counters>> counters;
    auto add = [&](const PortState& state) {
      mapping.push_back(PortMapping{state.key.namespace_name, state.key.name, state.port_name,
                                    state.key.protocol, state.key.port, options_.bind_address,
                                    state.listen_port});
      counters.push_back(state.counters);
    };
    for (const auto& [key, port] : tcp_) add(*port);
    for (const auto& [key, port] : udp_) add(*port);
    std::lock_guard lock(mutex_);
    mapping_ = std::move(mapping);
    counters_ = std::move(counters);
  }

  // The ports a listener tries, in order: the Service's own, the mapped one, any.
  std::vector<uint16_t> candidatePorts(uint16_t service_port) const {
    std::vector<uint16_t> ports;
    if (options_.own_port_first) ports.push_back(service_port);
    uint32_t mapped = uint32_t{options_.mapped_port_base} + service_port;
    if (options_.mapped_port_base != 0 && mapped <= 65535) {
      ports.push_back(static_cast<uint16_t>(mapped));
    }
    ports.push_back(0);
    return ports;
  }

  void logListening(const PortState& state, const std::string& why_not_own) {
    std::string where = "userspace proxy: " + state.key.toString() + " listens on " +
                        options_.bind_address.toString() + ":" + std::to_string(state.listen_port);
    if (!why_not_own.empty()) {
      where += " (port " + std::to_string(state.key.port) + ": " + why_not_own +
               (why_not_own == "Permission denied"
                    ? "; grant CAP_NET_BIND_SERVICE to keep ports below 1024"
                    : "") +
               ")";
    }
    log_(why_not_own.empty() ? LogLevel::kInfo : LogLevel::kWarn, where);
  }

  // The Service's own port first, then the mapped ones: the first that `open` binds (it returns
  // the port bound, or sets `error`). Empty when none could be bound; `why_not_own` then, or
  // when the own port was refused, says why.
  template <typename Open>
  std::optional<uint16_t> bindFirst(const Key& key, std::string& why_not_own, Open open) {
    for (uint16_t candidate : candidatePorts(key.port)) {
      error_code error;
      uint16_t bound = open(candidate, error);
      if (!error) return bound;
      if (why_not_own.empty()) why_not_own = error.message();
    }
    log_(LogLevel::kWarn, "userspace proxy: " + key.toString() + " has no listener: " +
                              why_not_own + " on " + options_.bind_address.toString());
    return std::nullopt;
  }

  std::shared_ptr<TcpPort> tcpPort(const Key& key, const std::string& port_name, bool& opened) {
    if (auto it = tcp_.find(key); it != tcp_.end()) return it->second;
    auto port = std::make_shared<TcpPort>(workers_.size());
    port->key = key;
    port->port_name = port_name;
    auto address = store::toAsioAddress(options_.bind_address);
    std::string why_not_own;
    auto bound = bindFirst(key, why_not_own, [&](uint16_t candidate, error_code& error) {
      tcp::acceptor acceptor(control());
      tcp::endpoint endpoint(address, candidate);
      if (acceptor.open(endpoint.protocol(), error) ||
          acceptor.set_option(tcp::acceptor::reuse_address(true), error) ||
          // Accepted sockets inherit it: one system call less per connection.
          acceptor.set_option(tcp::no_delay(true), error) || acceptor.bind(endpoint, error) ||
          acceptor.listen(asio::socket_base::max_listen_connections, error)) {
        return uint16_t{0};
      }
      error_code unused;  // a bound socket always has a local address
      uint16_t local = acceptor.local_endpoint(unused).port();
      port->listen_fds[0] = acceptor.release(unused);
      return local;
    });
    if (!bound) return nullptr;
    // One listening socket for all threads (not SO_REUSEPORT listeners): a port stays one
    // socket, so binding still fails where another Service or program holds it, and a thread
    // that is free takes the next connection from the one queue.
    for (size_t w = 1; w < workers_.size(); ++w) {
      port->listen_fds[w] = fcntl(port->listen_fds[0], F_DUPFD_CLOEXEC, 0);
      if (port->listen_fds[w] < 0) {
        log_(LogLevel::kWarn, "userspace proxy: " + key.toString() + ": relay thread " +
                                  std::to_string(w) + " does not accept: " + std::strerror(errno));
      }
    }
    port->listen_port = *bound;
    logListening(*port,
                 port->listen_port == key.port || !options_.own_port_first ? "" : why_not_own);
    tcp_.emplace(key, port);
    opened = true;
    return port;
  }

  UdpPort* udpPort(const Key& key, const std::string& port_name) {
    if (auto it = udp_.find(key); it != udp_.end()) return it->second.get();
    auto port = std::make_shared<UdpPort>(control());
    port->key = key;
    port->port_name = port_name;
    auto address = store::toAsioAddress(options_.bind_address);
    std::string why_not_own;
    auto bound = bindFirst(key, why_not_own, [&](uint16_t candidate, error_code& error) {
      udp::socket socket(control());
      udp::endpoint endpoint(address, candidate);
      // No SO_REUSEADDR: on Linux it would let two Services share one UDP port.
      if (socket.open(endpoint.protocol(), error) || socket.bind(endpoint, error)) {
        return uint16_t{0};
      }
      error_code unused;  // a bound socket always has a local address
      uint16_t local = socket.local_endpoint(unused).port();
      port->socket = std::move(socket);
      return local;
    });
    if (!bound) return nullptr;
    port->listen_port = *bound;
    logListening(*port,
                 port->listen_port == key.port || !options_.own_port_first ? "" : why_not_own);
    udp_.emplace(key, port);
    asio::co_spawn(control(), receiveLoop(port), asio::detached);
    return port.get();
  }

  // Shard `w`'s accept loop, on relay thread `w`.
  asio::awaitable<void> acceptLoop(std::shared_ptr<TcpPort> port, size_t w) {
    auto& shard = port->shards[w];
    Worker& worker = *workers_[w];
    int fd = std::exchange(port->listen_fds[w], -1);
    if (fd < 0) co_return;
    tcp::acceptor acceptor(worker.context);
    error_code error;
    auto protocol = tcp::endpoint(store::toAsioAddress(options_.bind_address), 0).protocol();
    if (acceptor.assign(protocol, fd, error)) {
      ::close(fd);
      co_return;
    }
    if (shard.closed) co_return;
    shard.acceptor = &acceptor;
    struct Forget {
      tcp::acceptor*& acceptor;
      ~Forget() { acceptor = nullptr; }
    } forget{shard.acceptor};
    for (;;) {
      auto [accept_error, client] = co_await acceptor.async_accept(kTuple);
      if (!acceptor.is_open()) co_return;
      if (accept_error) {
        // Out of descriptors, say: keep accepting rather than lose the listener.
        if (accept_error == asio::error::operation_aborted) co_return;
        asio::steady_timer pause(worker.context, std::chrono::milliseconds(50));
        co_await pause.async_wait(kTuple);
        continue;
      }
      worker.accepted.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(worker.context, relay(port, w, std::move(client)), asio::detached);
    }
  }

  asio::awaitable<void> relay(std::shared_ptr<TcpPort> port, size_t w, tcp::socket client) {
    auto& counters = *port->counters;
    auto& shard = port->shards[w];
    if (options_.only_redirected && !redirectedFrom(client, shard.cluster_ip, port->key.port)) {
      // Listening on every address for REDIRECT must not open every Service to whoever reaches
      // the node's address (the exposure of CVE-2020-8558's kind).
      counters.refused.fetch_add(1, std::memory_order_relaxed);
      resetClient(client);
      co_return;
    }
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    // Held for the whole connect loop: an update meanwhile must not shift positions under it.
    Backends backends = shard.backends;
    bool over_limit = !backends->empty() && port->open.fetch_add(1, std::memory_order_relaxed) >=
                                                options_.max_connections;
    if (backends->empty() || over_limit) {
      if (over_limit) port->open.fetch_sub(1, std::memory_order_relaxed);
      counters.failed.fetch_add(1, std::memory_order_relaxed);
      resetClient(client);
      co_return;
    }
    Worker& worker = *workers_[w];
    auto connection = std::make_shared<Connection>(std::move(client), port);
    auto& flow = *connection;
    size_t first = port->next.fetch_add(1, std::memory_order_relaxed);
    auto executor = flow.client.get_executor();
    worker.sweep.add(flow);
    bool connected = false;
    for (size_t i = 0; i < backends->size() && !connected; ++i) {
      if (i > 0) counters.retried.fetch_add(1, std::memory_order_relaxed);
      flow.backend = (*backends)[(first + i) % backends->size()];
      flow.upstream = tcp::socket(executor);
      flow.connect_deadline = Clock::now() + options_.connect_timeout;
      auto [error] = co_await flow.upstream.async_connect(
          tcp::endpoint(flow.backend.ip, flow.backend.port), kTuple);
      // The sweep closes the socket of a connect past its deadline, also one that completed
      // while this waited to run.
      connected = !error && flow.upstream.is_open();
    }
    flow.connect_deadline = Clock::time_point::max();
    if (!connected) {
      counters.failed.fetch_add(1, std::memory_order_relaxed);
      resetClient(flow.client);
      co_return;
    }
    error_code ignored;
    flow.upstream.set_option(tcp::no_delay(true), ignored);
    shard.flows.push_back(flow);
    counters.active.fetch_add(1, std::memory_order_relaxed);
    flow.relaying = true;
    flow.last_activity = Clock::now();
    const auto& ready = *shard.backends;
    if (std::find(ready.begin(), ready.end(), flow.backend) == ready.end()) {
      flow.drain_deadline = Clock::now() + options_.drain_timeout;
    }
    // The sweep ends an idle or drained connection by closing both sockets, which ends both
    // directions.
    asio::co_spawn(executor, carryReplies(connection, worker.pools, options_.splice),
                   asio::detached);
    co_await transfer(flow.client, flow.upstream, flow, counters.bytes_to_pods, worker.pools,
                      options_.splice);
  }

  asio::awaitable<void> receiveLoop(std::shared_ptr<UdpPort> port) {
    auto& counters = *port->counters;
    std::unique_ptr<char[]> buffer(new char[kMaxDatagram]);
    for (;;) {
      udp::endpoint from;
      auto [error, n] = co_await port->socket.async_receive_from(
          asio::buffer(buffer.get(), kMaxDatagram), from, kTuple);
      if (!port->socket.is_open() || error == asio::error::operation_aborted) co_return;
      if (error) continue;
      // A copy, not a reference into the map: the session may end (and leave the map) while
      // the send below is in flight.
      std::shared_ptr<UdpSession> session;
      if (auto it = port->sessions.find(from); it != port->sessions.end()) {
        session = it->second;
      } else {
        session = openSession(*port, from);
        if (!session) continue;
        port->sessions.emplace(from, session);
        asio::co_spawn(control(), sessionLoop(port, session), asio::detached);
      }
      session->last_activity = Clock::now();
      auto [send_error, sent] =
          co_await session->upstream.async_send(asio::buffer(buffer.get(), n), kTuple);
      if (!send_error) counters.bytes_to_pods.fetch_add(sent, std::memory_order_relaxed);
    }
  }

  std::shared_ptr<UdpSession> openSession(UdpPort& port, const udp::endpoint& from) {
    auto& counters = *port.counters;
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    if (port.backends.empty() || port.sessions.size() >= options_.max_connections) {
      counters.failed.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    size_t first = port.next++;
    for (size_t i = 0; i < port.backends.size(); ++i) {
      if (i > 0) counters.retried.fetch_add(1, std::memory_order_relaxed);
      const Backend& backend = port.backends[(first + i) % port.backends.size()];
      auto session = std::make_shared<UdpSession>(control().get_executor(), from);
      udp::endpoint target(backend.ip, backend.port);
      error_code error;
      if (session->upstream.open(target.protocol(), error) ||
          session->upstream.connect(target, error)) {
        continue;
      }
      session->backend = backend;
      return session;
    }
    counters.failed.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }

  // Replies leave through the Service port's own socket, so the client sees them come from the
  // address it sent to.
  asio::awaitable<void> sessionLoop(std::shared_ptr<UdpPort> port,
                                    std::shared_ptr<UdpSession> session) {
    auto& counters = *port->counters;
    counters.active.fetch_add(1, std::memory_order_relaxed);
    port->flows.insert(session.get());
    co_await (replies(*port, *session) ||
              watchdog(*session, session->timer, options_.udp_idle_timeout));
    port->flows.erase(session.get());
    if (auto it = port->sessions.find(session->client);
        it != port->sessions.end() && it->second == session) {
      port->sessions.erase(it);
    }
    counters.active.fetch_sub(1, std::memory_order_relaxed);
  }

  asio::awaitable<void> replies(UdpPort& port, UdpSession& session) {
    std::unique_ptr<char[]> buffer(new char[kMaxDatagram]);
    for (;;) {
      auto [error, n] =
          co_await session.upstream.async_receive(asio::buffer(buffer.get(), kMaxDatagram), kTuple);
      // A pod's port that is closed answers with ICMP, seen here as refused; the session stays.
      if (error == asio::error::connection_refused) continue;
      if (error || !port.socket.is_open()) co_return;
      session.last_activity = Clock::now();
      auto [send_error, sent] =
          co_await port.socket.async_send_to(asio::buffer(buffer.get(), n), session.client, kTuple);
      if (!send_error) port.counters->bytes_to_clients.fetch_add(sent, std::memory_order_relaxed);
    }
  }

  ProxyOptions options_;
  LogFunction log_;
  std::vector<std::unique_ptr<Worker>> workers_;  // the first also runs UDP and the updates
  bool started_ = false;
  std::map<Key, std::shared_ptr<TcpPort>> tcp_;  // on the first relay thread
  std::map<Key, std::shared_ptr<UdpPort>> udp_;

  mutable std::mutex mutex_;
  std::vector<PortMapping> mapping_;
  std::vector<std::shared_ptr<Counters>> counters_;
};

UserspaceProxy::UserspaceProxy(ProxyOptions options, LogFunction log)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(log))) {}

UserspaceProxy::~UserspaceProxy() { stop(); }

void UserspaceProxy::start() { impl_->start(); }

std::vector<PortMapping> UserspaceProxy::update(const store::SnapshotPtr& snapshot) {
  return impl_->update(snapshot);
}

void UserspaceProxy::stop() {
  if (impl_) impl_->stop();
}

std::vector<PortMapping> UserspaceProxy::mapping() const { return impl_->mapping(); }

std::vector<PortStats> UserspaceProxy::stats() const { return impl_->stats(); }

std::vector<uint64_t> UserspaceProxy::connectionsPerThread() const {
  return impl_->connectionsPerThread();
}

}  // namespace svcbox::router::userspace
