#include "router/userspace/proxy.h"

#include "store/ip_asio.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

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
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
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
using Clock = std::chrono::steady_clock;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kMaxDatagram = 65535;

struct Counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> bytes_to_pods{0};
  std::atomic<uint64_t> bytes_to_clients{0};
  std::atomic<uint64_t> active{0};
};

struct Backend {
  asio::ip::address ip;
  uint16_t port = 0;
  bool operator==(const Backend&) const = default;
};

// One relayed connection or UDP session, as the drain and idle logic sees it.
struct Flow {
  explicit Flow(const asio::any_io_executor& executor) : timer(executor) {}
  Backend backend;
  Clock::time_point last_activity = Clock::now();
  Clock::time_point drain_deadline = Clock::time_point::max();
  asio::steady_timer timer;  // the watchdog's; cancelled to make it look at the deadlines again
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

// What one Service port's listener shares with its connections; they keep it alive after the
// listener closed.
struct PortState {
  Key key;
  std::string port_name;
  uint16_t listen_port = 0;
  std::vector<Backend> backends;  // ready ones, in snapshot order
  size_t next = 0;                // round-robin position
  std::set<Flow*> flows;
  std::shared_ptr<Counters> counters = std::make_shared<Counters>();
};

struct TcpPort : PortState {
  explicit TcpPort(asio::io_context& context) : acceptor(context) {}
  tcp::acceptor acceptor;
};

struct UdpSession : Flow {
  UdpSession(const asio::any_io_executor& executor, udp::endpoint from)
      : Flow(executor), client(from), upstream(executor) {}
  udp::endpoint client;
  udp::socket upstream;
};

struct UdpPort : PortState {
  explicit UdpPort(asio::io_context& context) : socket(context) {}
  udp::socket socket;
  std::map<udp::endpoint, std::shared_ptr<UdpSession>> sessions;
};

bool cancelled(const asio::cancellation_state& state) {
  return state.cancelled() != asio::cancellation_type::none;
}

// Ends when the flow was idle for `idle`, or its drain deadline passed.
asio::awaitable<void> watchdog(Flow& flow, std::chrono::milliseconds idle) {
  auto state = co_await asio::this_coro::cancellation_state;
  for (;;) {
    auto end = std::min(flow.last_activity + idle, flow.drain_deadline);
    if (Clock::now() >= end) co_return;
    flow.timer.expires_at(end);
    co_await flow.timer.async_wait(kTuple);
    if (cancelled(state)) co_return;
  }
}

void closeBoth(tcp::socket& a, tcp::socket& b) {
  error_code ignored;
  a.close(ignored);
  b.close(ignored);
}

struct Pipe {
  int read_end = -1;
  int write_end = -1;
  ~Pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

// The rest of one direction through a pipe with splice(): the bytes stay in the kernel. The pipe
// holds at most `capacity` bytes and is drained before the next read, so backpressure is as with
// the buffer. Returns false when a pipe cannot be made (the caller keeps copying).
asio::awaitable<bool> spliceRest(tcp::socket& from, tcp::socket& to, Flow& flow,
                                 std::atomic<uint64_t>& bytes, size_t capacity) {
  Pipe pipe;
  int ends[2];
  if (pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) co_return false;
  pipe.read_end = ends[0];
  pipe.write_end = ends[1];
  // A smaller pipe than asked (over /proc/sys/fs/pipe-max-size) only means more trips.
  (void)fcntl(pipe.write_end, F_SETPIPE_SZ, static_cast<int>(capacity));
  error_code ignored;
  from.native_non_blocking(true, ignored);
  to.native_non_blocking(true, ignored);
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  for (;;) {
    ssize_t n = splice(from.native_handle(), nullptr, pipe.write_end, nullptr, capacity, kFlags);
    if (n < 0 && errno == EAGAIN) {
      auto [error] = co_await from.async_wait(tcp::socket::wait_read, kTuple);
      if (error) {
        closeBoth(from, to);
        co_return true;
      }
      continue;
    }
    if (n < 0) {
      closeBoth(from, to);
      co_return true;
    }
    if (n == 0) {
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return true;
    }
    flow.last_activity = Clock::now();
    auto in_pipe = static_cast<size_t>(n);
    while (in_pipe > 0) {
      ssize_t out = splice(pipe.read_end, nullptr, to.native_handle(), nullptr, in_pipe, kFlags);
      if (out < 0 && errno == EAGAIN) {
        auto [error] = co_await to.async_wait(tcp::socket::wait_write, kTuple);
        if (error) {
          closeBoth(from, to);
          co_return true;
        }
        continue;
      }
      if (out <= 0) {
        closeBoth(from, to);
        co_return true;
      }
      in_pipe -= static_cast<size_t>(out);
      bytes.fetch_add(static_cast<uint64_t>(out), std::memory_order_relaxed);
    }
    flow.last_activity = Clock::now();
  }
}

// One direction. Reading waits for the previous write to finish, so a slow reader holds at most
// one buffer here; end of stream is passed on as a half-close. A stream that fills the buffer is
// bulk: it moves on to splice(), while short exchanges never pay for a pipe.
asio::awaitable<void> transfer(tcp::socket& from, tcp::socket& to, Flow& flow,
                               std::atomic<uint64_t>& bytes, size_t buffer_size, bool use_splice) {
  std::unique_ptr<char[]> buffer(new char[buffer_size]);
  for (;;) {
    auto [read_error, n] =
        co_await from.async_read_some(asio::buffer(buffer.get(), buffer_size), kTuple);
    if (n > 0) {
      flow.last_activity = Clock::now();
      auto [write_error, written] =
          co_await asio::async_write(to, asio::buffer(buffer.get(), n), kTuple);
      bytes.fetch_add(written, std::memory_order_relaxed);
      if (write_error) {
        closeBoth(from, to);
        co_return;
      }
      flow.last_activity = Clock::now();
      if (use_splice && n == buffer_size && !read_error) {
        buffer.reset();
        if (co_await spliceRest(from, to, flow, bytes, buffer_size)) co_return;
        buffer.reset(new char[buffer_size]);
        use_splice = false;
      }
    }
    if (read_error == asio::error::eof) {
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (read_error) {
      closeBoth(from, to);
      co_return;
    }
  }
}

// The client learns at once (a reset) instead of waiting on a connection nothing will answer.
void resetClient(tcp::socket& client) {
  error_code ignored;
  client.set_option(asio::socket_base::linger(true, 0), ignored);
  client.close(ignored);
}

}  // namespace

class UserspaceProxy::Impl {
 public:
  Impl(ProxyOptions options, LogFunction log)
      : options_(std::move(options)), log_(std::move(log)) {}

  void start() {
    thread_ = std::thread([this] {
      // splice() into a socket whose peer is gone raises SIGPIPE (it has no MSG_NOSIGNAL), which
      // would end the whole process. Blocked on this thread, it stays pending and the call
      // fails with EPIPE instead.
      sigset_t pipe_signal;
      sigemptyset(&pipe_signal);
      sigaddset(&pipe_signal, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
      context_.run();
    });
  }

  void stop() {
    work_.reset();
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::vector<PortMapping> update(const store::SnapshotPtr& snapshot) {
    if (!thread_.joinable()) {
      apply(*snapshot);  // not started: no other thread touches the listeners
      return mapping();
    }
    std::promise<void> done;
    asio::post(context_, [&] {
      apply(*snapshot);
      done.set_value();
    });
    done.get_future().wait();
    return mapping();
  }

  std::vector<PortMapping> mapping() const {
    std::lock_guard lock(mutex_);
    return mapping_;
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
  // On the relay thread.
  void apply(const store::Snapshot& snapshot) {
    std::set<Key> seen;
    for (const auto& entry : snapshot.services()) {
      const auto& service = entry.service;
      if (service.type != store::ServiceType::kClusterIP || service.headless ||
          !service.cluster_ip) {
        continue;
      }
      for (size_t i = 0; i < service.ports.size(); ++i) {
        const auto& port = service.ports[i];
        Key key{service.namespace_name, service.name, port.protocol, port.port};
        seen.insert(key);
        std::vector<Backend> backends;
        for (const auto& endpoint : entry.endpoints) {
          if (!endpoint.ready || i >= endpoint.ports.size() || endpoint.ports[i] == 0) continue;
          backends.push_back(Backend{store::toAsioAddress(endpoint.ip), endpoint.ports[i]});
        }
        PortState* state = nullptr;
        if (port.protocol == store::Protocol::kTcp) {
          state = tcpPort(key, port.name);
        } else {
          state = udpPort(key, port.name);
        }
        if (!state) continue;
        state->backends = std::move(backends);
        drainGone(*state);
      }
    }
    for (auto it = tcp_.begin(); it != tcp_.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      error_code ignored;
      it->second->acceptor.close(ignored);
      it->second->backends.clear();
      drainGone(*it->second);
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
      drainGone(*it->second);
      log_(LogLevel::kInfo, "userspace proxy: closed the listener of " + it->first.toString());
      it = udp_.erase(it);
    }
    publish();
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

  // Connections to a pod that is no longer ready may finish, within the drain timeout.
  void drainGone(PortState& state) {
    auto deadline = Clock::now() + options_.drain_timeout;
    for (Flow* flow : state.flows) {
      bool ready = std::find(state.backends.begin(), state.backends.end(), flow->backend) !=
                   state.backends.end();
      if (ready) {
        flow->drain_deadline = Clock::time_point::max();
      } else if (flow->drain_deadline == Clock::time_point::max()) {
        flow->drain_deadline = deadline;
        flow->timer.cancel();
      }
    }
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

  PortState* tcpPort(const Key& key, const std::string& port_name) {
    if (auto it = tcp_.find(key); it != tcp_.end()) return it->second.get();
    auto port = std::make_shared<TcpPort>(context_);
    port->key = key;
    port->port_name = port_name;
    auto address = store::toAsioAddress(options_.bind_address);
    std::string why_not_own;
    auto bound = bindFirst(key, why_not_own, [&](uint16_t candidate, error_code& error) {
      tcp::acceptor acceptor(context_);
      tcp::endpoint endpoint(address, candidate);
      if (acceptor.open(endpoint.protocol(), error) ||
          acceptor.set_option(tcp::acceptor::reuse_address(true), error) ||
          acceptor.bind(endpoint, error) ||
          acceptor.listen(asio::socket_base::max_listen_connections, error)) {
        return uint16_t{0};
      }
      error_code unused;  // a bound socket always has a local address
      uint16_t local = acceptor.local_endpoint(unused).port();
      port->acceptor = std::move(acceptor);
      return local;
    });
    if (!bound) return nullptr;
    port->listen_port = *bound;
    logListening(*port,
                 port->listen_port == key.port || !options_.own_port_first ? "" : why_not_own);
    tcp_.emplace(key, port);
    asio::co_spawn(context_, acceptLoop(port), asio::detached);
    return port.get();
  }

  PortState* udpPort(const Key& key, const std::string& port_name) {
    if (auto it = udp_.find(key); it != udp_.end()) return it->second.get();
    auto port = std::make_shared<UdpPort>(context_);
    port->key = key;
    port->port_name = port_name;
    auto address = store::toAsioAddress(options_.bind_address);
    std::string why_not_own;
    auto bound = bindFirst(key, why_not_own, [&](uint16_t candidate, error_code& error) {
      udp::socket socket(context_);
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
    asio::co_spawn(context_, receiveLoop(port), asio::detached);
    return port.get();
  }

  asio::awaitable<void> acceptLoop(std::shared_ptr<TcpPort> port) {
    for (;;) {
      auto [error, client] = co_await port->acceptor.async_accept(kTuple);
      if (!port->acceptor.is_open()) co_return;
      if (error) {
        // Out of descriptors, say: keep accepting rather than lose the listener.
        if (error == asio::error::operation_aborted) co_return;
        asio::steady_timer pause(context_, std::chrono::milliseconds(50));
        co_await pause.async_wait(kTuple);
        continue;
      }
      asio::co_spawn(context_, relay(port, std::move(client)), asio::detached);
    }
  }

  asio::awaitable<void> relay(std::shared_ptr<TcpPort> port, tcp::socket client) {
    auto& counters = *port->counters;
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    if (port->backends.empty() || port->flows.size() >= options_.max_connections) {
      counters.failed.fetch_add(1, std::memory_order_relaxed);
      resetClient(client);
      co_return;
    }
    // A copy: an update while connecting must not shift the positions under the loop.
    std::vector<Backend> backends = port->backends;
    size_t first = port->next++;
    auto executor = client.get_executor();
    tcp::socket upstream(executor);
    Flow flow(executor);
    bool connected = false;
    for (size_t i = 0; i < backends.size() && !connected; ++i) {
      if (i > 0) counters.retried.fetch_add(1, std::memory_order_relaxed);
      flow.backend = backends[(first + i) % backends.size()];
      upstream = tcp::socket(executor);
      asio::steady_timer timer(executor, options_.connect_timeout);
      auto outcome = co_await (
          upstream.async_connect(tcp::endpoint(flow.backend.ip, flow.backend.port), kTuple) ||
          timer.async_wait(kTuple));
      connected = outcome.index() == 0 && !std::get<0>(std::get<0>(outcome));
    }
    if (!connected) {
      counters.failed.fetch_add(1, std::memory_order_relaxed);
      resetClient(client);
      co_return;
    }
    error_code ignored;
    client.set_option(tcp::no_delay(true), ignored);
    upstream.set_option(tcp::no_delay(true), ignored);
    port->flows.insert(&flow);
    counters.active.fetch_add(1, std::memory_order_relaxed);
    flow.last_activity = Clock::now();
    if (std::find(port->backends.begin(), port->backends.end(), flow.backend) ==
        port->backends.end()) {
      flow.drain_deadline = Clock::now() + options_.drain_timeout;
    }
    co_await ((transfer(client, upstream, flow, counters.bytes_to_pods, options_.buffer_size,
                        options_.splice) &&
               transfer(upstream, client, flow, counters.bytes_to_clients, options_.buffer_size,
                        options_.splice)) ||
              watchdog(flow, options_.tcp_idle_timeout));
    counters.active.fetch_sub(1, std::memory_order_relaxed);
    port->flows.erase(&flow);
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
        asio::co_spawn(context_, sessionLoop(port, session), asio::detached);
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
      auto session = std::make_shared<UdpSession>(context_.get_executor(), from);
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
    co_await (replies(*port, *session) || watchdog(*session, options_.udp_idle_timeout));
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
  asio::io_context context_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_ =
      asio::make_work_guard(context_);
  std::map<Key, std::shared_ptr<TcpPort>> tcp_;
  std::map<Key, std::shared_ptr<UdpPort>> udp_;
  std::thread thread_;

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

}  // namespace svcbox::router::userspace
