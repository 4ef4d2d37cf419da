#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>

#include "router/userspace/transfer.h"

// The deadlines of a relay thread's TCP connections — connect timeout, idle timeout, drain — read
// by one periodic sweep instead of a timer per connection: short connections come and go by the
// ten thousand a second, and two timers each (armed, cancelled, their completions run) were a
// large part of what the relay spent on one.
namespace svcbox::router::userspace {

using UnlinkingHook =
    boost::intrusive::list_member_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

// One relayed TCP connection: both sockets, and what the sweep and drain look at. It leaves every
// list it is on when destroyed.
struct TcpFlow : Flow {
  explicit TcpFlow(boost::asio::ip::tcp::socket accepted)
      : client(std::move(accepted)), upstream(client.get_executor()) {}
  boost::asio::ip::tcp::socket client;
  boost::asio::ip::tcp::socket upstream;
  // While a connect to a pod is in flight: when it is given up (the pod's socket is closed, the
  // connect fails, and the relay tries the next pod).
  Clock::time_point connect_deadline = Clock::time_point::max();
  UnlinkingHook sweep_hook;  // the relay thread's list
  UnlinkingHook shard_hook;  // the Service port's list on this thread, walked by drain
};

template <UnlinkingHook TcpFlow::*hook>
using TcpFlowList =
    boost::intrusive::list<TcpFlow, boost::intrusive::member_hook<TcpFlow, UnlinkingHook, hook>,
                           boost::intrusive::constant_time_size<false>>;

class Sweep {
 public:
  // A deadline is enforced within `tick` after it passed.
  Sweep(const boost::asio::any_io_executor& executor, std::chrono::milliseconds idle,
        std::chrono::milliseconds tick);

  // From now until it ends, `flow`'s deadlines are enforced. Runs the sweep when it was idle.
  void add(TcpFlow& flow);

  // How often to sweep for these timeouts: an eighth of the shortest, within 10 ms and 1 s.
  static std::chrono::milliseconds tickFor(std::chrono::milliseconds connect,
                                           std::chrono::milliseconds idle,
                                           std::chrono::milliseconds drain);

  size_t flowsForTest() const { return flows_.size(); }

 private:
  boost::asio::awaitable<void> run();

  std::chrono::milliseconds idle_;
  std::chrono::milliseconds tick_;
  boost::asio::steady_timer timer_;
  bool running_ = false;
  TcpFlowList<&TcpFlow::sweep_hook> flows_;
};

}  // namespace svcbox::router::userspace
