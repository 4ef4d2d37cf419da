#include "router/userspace/transfer.h"

#include <fcntl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>

namespace svcbox::router::userspace {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

void closeBoth(tcp::socket& a, tcp::socket& b) {
  error_code ignored;
  a.close(ignored);
  b.close(ignored);
}

// The first direction to end passes it on as a half-close; the last needs no shutdown() of its
// own, as the close that follows sends the FIN.
void endOfStream(tcp::socket& to, Flow& flow) {
  if (--flow.open_directions == 0) return;
  error_code ignored;
  to.shutdown(tcp::socket::shutdown_send, ignored);
}

enum class SpliceEnd { kDone, kNoPipe };

// The rest of one direction through a pipe with splice(): the bytes stay in the kernel. The pipe
// is drained before the next read, so backpressure is as with the buffer, at the pipe's size.
asio::awaitable<SpliceEnd> spliceRest(tcp::socket& from, tcp::socket& to, Flow& flow,
                                      std::atomic<uint64_t>& bytes, RelayPools& pools) {
  Pipe pipe = pools.takePipe();
  if (!pipe.valid()) co_return SpliceEnd::kNoPipe;
  error_code ignored;
  from.native_non_blocking(true, ignored);
  to.native_non_blocking(true, ignored);
  constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  // As much as a splice may take: the pipe itself says when it is full (EAGAIN or a short count).
  constexpr size_t kMost = size_t{1} << 30;
  for (;;) {
    ssize_t n = splice(from.native_handle(), nullptr, pipe.writeEnd(), nullptr, kMost, kFlags);
    if (n < 0 && errno == EAGAIN) {
      auto [error] = co_await from.async_wait(tcp::socket::wait_read, kTuple);
      if (!error) continue;
      closeBoth(from, to);
      pools.giveEmptyPipe(std::move(pipe));
      co_return SpliceEnd::kDone;
    }
    if (n <= 0) {
      if (n == 0) {
        endOfStream(to, flow);
      } else {
        closeBoth(from, to);
      }
      pools.giveEmptyPipe(std::move(pipe));
      co_return SpliceEnd::kDone;
    }
    flow.last_activity = Clock::now();
    auto in_pipe = static_cast<size_t>(n);
    while (in_pipe > 0) {
      ssize_t out = splice(pipe.readEnd(), nullptr, to.native_handle(), nullptr, in_pipe, kFlags);
      if (out < 0 && errno == EAGAIN) {
        auto [error] = co_await to.async_wait(tcp::socket::wait_write, kTuple);
        if (!error) continue;
      }
      if (out <= 0) {
        closeBoth(from, to);
        co_return SpliceEnd::kDone;  // the pipe still holds bytes: it is closed, not pooled
      }
      in_pipe -= static_cast<size_t>(out);
      bytes.fetch_add(static_cast<uint64_t>(out), std::memory_order_relaxed);
    }
    flow.last_activity = Clock::now();
  }
}

}  // namespace

asio::awaitable<void> watchdog(Flow& flow, asio::steady_timer& timer,
                               std::chrono::milliseconds idle) {
  auto state = co_await asio::this_coro::cancellation_state;
  for (;;) {
    auto end = std::min(flow.last_activity + idle, flow.drain_deadline);
    if (Clock::now() >= end) co_return;
    timer.expires_at(end);
    co_await timer.async_wait(kTuple);
    if (state.cancelled() != asio::cancellation_type::none) co_return;
  }
}

asio::awaitable<void> transfer(tcp::socket& from, tcp::socket& to, Flow& flow,
                               std::atomic<uint64_t>& bytes, RelayPools& pools, bool use_splice) {
  const size_t size = pools.bufferSize();
  auto buffer = pools.takeBuffer();
  for (;;) {
    auto [read_error, n] = co_await from.async_read_some(asio::buffer(buffer.get(), size), kTuple);
    if (n > 0) {
      flow.last_activity = Clock::now();
      auto [write_error, written] =
          co_await asio::async_write(to, asio::buffer(buffer.get(), n), kTuple);
      bytes.fetch_add(written, std::memory_order_relaxed);
      if (write_error) {
        closeBoth(from, to);
        break;
      }
      flow.last_activity = Clock::now();
      if (use_splice && n == size && !read_error) {
        pools.giveBuffer(std::move(buffer));
        if (co_await spliceRest(from, to, flow, bytes, pools) == SpliceEnd::kDone) co_return;
        buffer = pools.takeBuffer();
        use_splice = false;
      }
    }
    if (read_error == asio::error::eof) {
      endOfStream(to, flow);
      break;
    }
    if (read_error) {
      closeBoth(from, to);
      break;
    }
  }
  pools.giveBuffer(std::move(buffer));
}

}  // namespace svcbox::router::userspace
