#pragma once

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

}  // namespace svcbox::dns
