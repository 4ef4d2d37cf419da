#include "health/probe.h"

#include "store/ip_asio.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace svcbox::health {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

// Kubernetes reads at most this much of a probe's response body; the status alone decides.
constexpr uint64_t kMaxBodyBytes = 10 * 1024;
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

tcp::endpoint endpointOf(const store::IpAddress& ip, uint16_t port) {
  return {store::toAsioAddress(ip), port};
}

std::string failureText(const std::string& what, const beast::error_code& error,
                        uint32_t timeout_seconds) {
  if (error == beast::error::timeout) {
    return what + ": timeout after " + std::to_string(timeout_seconds) + "s";
  }
  return what + ": " + error.message();
}

}  // namespace

std::string hostPort(const store::IpAddress& ip, uint16_t port) {
  std::string host = ip.isV4() ? ip.toString() : "[" + ip.toString() + "]";
  return host + ":" + std::to_string(port);
}

asio::awaitable<ProbeResult> runProbe(ProbeTarget target, std::chrono::milliseconds timeout,
                                      uint32_t timeout_seconds) {
  // beast::tcp_stream's deadline covers connect, write and read alike, so one expiry bounds the
  // whole attempt however the peer stalls.
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout);
  const std::string address = hostPort(target.ip, target.port);
  auto [connect_error] =
      co_await stream.async_connect(endpointOf(target.ip, target.port), kUseTuple);
  if (connect_error) {
    co_return ProbeResult{false, failureText("connect " + address, connect_error, timeout_seconds)};
  }
  if (target.kind == ProbeTarget::Kind::kTcp) co_return ProbeResult{true, "connect " + address};

  const std::string url = "GET http://" + address + target.path;
  http::request<http::empty_body> request{http::verb::get, target.path, 11};
  request.set(http::field::host, address);
  request.set(http::field::user_agent, "svcbox-probe/1");
  request.set(http::field::connection, "close");
  auto [write_error, written] = co_await http::async_write(stream, request, kUseTuple);
  (void)written;
  if (write_error) co_return ProbeResult{false, failureText(url, write_error, timeout_seconds)};

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBodyBytes);
  auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, kUseTuple);
  (void)read_bytes;
  // A body over the limit is cut short, not a failure: the header is complete by then.
  if (read_error && !(read_error == http::error::body_limit && parser.is_header_done())) {
    co_return ProbeResult{false, failureText(url, read_error, timeout_seconds)};
  }
  unsigned status = parser.get().result_int();
  // Redirects count as success and are not followed, as in Kubernetes.
  if (status >= 200 && status < 400) {
    co_return ProbeResult{true, "HTTP " + std::to_string(status) + " from " + url};
  }
  co_return ProbeResult{false, "HTTP " + std::to_string(status) + " from " + url};
}

}  // namespace svcbox::health
