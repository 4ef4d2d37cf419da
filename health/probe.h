#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "store/ip.h"

// One probe attempt over the network, as an Asio coroutine. Knows nothing of sessions.
namespace svcbox::health {

struct ProbeTarget {
  enum class Kind : uint8_t { kTcp, kHttp };
  Kind kind = Kind::kTcp;
  store::IpAddress ip;
  uint16_t port = 0;
  std::string path = "/";  // kHttp only
};

struct ProbeResult {
  bool success = false;
  // Why, for reasons and logs: "connect 10.0.1.2:8080: Connection refused",
  // "HTTP 503 from GET http://10.0.1.2:8080/healthz", "GET http://...: timeout after 1s".
  std::string detail;
};

// "10.0.1.2:8080" or "[fd00::1]:8080".
std::string hostPort(const store::IpAddress& ip, uint16_t port);

// Runs one probe on the calling coroutine's executor. `timeout` bounds the whole attempt;
// `timeout_seconds` is how the timeout is named in the detail (probe settings count in seconds,
// which tests shrink).
boost::asio::awaitable<ProbeResult> runProbe(ProbeTarget target, std::chrono::milliseconds timeout,
                                             uint32_t timeout_seconds);

}  // namespace svcbox::health
