#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>

#include "router/userspace/relay_pools.h"

// The TCP relay's data path: one direction of a connection at a time, and the watchdog that ends
// an idle or drained one. Everything here runs on the relay thread that owns the connection.
namespace svcbox::router::userspace {

using Clock = std::chrono::steady_clock;

struct Backend {
  boost::asio::ip::address ip;
  uint16_t port = 0;
  bool operator==(const Backend&) const = default;
};

// One relayed connection or UDP session, as the drain and idle logic sees it.
struct Flow {
  Backend backend;
  Clock::time_point last_activity = Clock::now();
  Clock::time_point drain_deadline = Clock::time_point::max();
  int open_directions = 2;  // a TCP connection's directions not yet at end of stream
  // Cancelled when drain moves the deadline, so that a watchdog looks at it again; none where a
  // sweep reads the deadlines anyway (TCP).
  boost::asio::steady_timer* wake = nullptr;
};

// Ends when the flow was idle for `idle`, or its drain deadline passed. Waits on `timer`, which
// the flow's `wake` points at.
boost::asio::awaitable<void> watchdog(Flow& flow, boost::asio::steady_timer& timer,
                                      std::chrono::milliseconds idle);

// One direction. Reading waits for the previous write to finish, so a slow reader holds at most
// one buffer here; end of stream is passed on as a half-close. A stream that fills the buffer is
// bulk: with `use_splice` it moves on to splice() through a pipe from `pools`, while short
// exchanges never touch a pipe.
boost::asio::awaitable<void> transfer(boost::asio::ip::tcp::socket& from,
                                      boost::asio::ip::tcp::socket& to, Flow& flow,
                                      std::atomic<uint64_t>& bytes, RelayPools& pools,
                                      bool use_splice);

}  // namespace svcbox::router::userspace
