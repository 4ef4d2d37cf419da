#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "store/ip.h"
#include "store/result.h"

namespace svcbox::dns {

// "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT"; the port may be 0 (the caller decides if it may).
struct HostPort {
  store::IpAddress ip;
  std::optional<uint16_t> port;
};
store::Result<HostPort> parseHostPort(std::string_view text);

// The address in a socket address of family AF_INET or AF_INET6 (an IPv4-mapped IPv6 address
// becomes IPv4); nullopt for other families.
std::optional<store::IpAddress> addressOf(const sockaddr* address);

}  // namespace svcbox::dns
