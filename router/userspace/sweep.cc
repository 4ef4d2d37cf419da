#include "router/userspace/sweep.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace svcbox::router::userspace {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// A connect past its deadline loses only the pod's socket: the relay moves on to the next pod.
// Any other deadline ends the connection.
void expireIfDue(TcpFlow& flow, Clock::time_point now, std::chrono::milliseconds idle) {
  error_code ignored;
  if (flow.connect_deadline != Clock::time_point::max()) {
    if (now >= flow.connect_deadline) flow.upstream.close(ignored);
    return;
  }
  if (now >= std::min(flow.last_activity + idle, flow.drain_deadline)) {
    flow.client.close(ignored);
    flow.upstream.close(ignored);
  }
}

}  // namespace

Sweep::Sweep(const asio::any_io_executor& executor, std::chrono::milliseconds idle,
             std::chrono::milliseconds tick)
    : idle_(idle), tick_(tick), timer_(executor) {}

std::chrono::milliseconds Sweep::tickFor(std::chrono::milliseconds connect,
                                         std::chrono::milliseconds idle,
                                         std::chrono::milliseconds drain) {
  auto shortest = std::min({connect, idle, drain});
  return std::clamp(shortest / 8, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

void Sweep::add(TcpFlow& flow) {
  flows_.push_back(flow);
  if (running_) return;
  running_ = true;
  asio::co_spawn(timer_.get_executor(), run(), asio::detached);
}

// Closing a socket only queues its pending operations' completions, so no flow leaves the list
// while it is walked. The sweep stops when no flow is left, so an idle proxy does not wake.
asio::awaitable<void> Sweep::run() {
  while (!flows_.empty()) {
    timer_.expires_after(tick_);
    auto [error] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (error) break;
    auto now = Clock::now();
    for (auto& flow : flows_) expireIfDue(flow, now, idle_);
  }
  running_ = false;
}

}  // namespace svcbox::router::userspace
