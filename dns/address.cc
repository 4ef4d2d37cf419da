#include "dns/address.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace svcbox::dns {

store::Result<HostPort> parseHostPort(std::string_view text) {
  std::string_view host = text;
  std::optional<std::string_view> port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return store::invalid("", "missing ']'");
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return store::invalid("", "expected ':PORT' after ']'");
      port = text.substr(close + 2);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    host = text.substr(0, text.find(':'));
    port = text.substr(text.find(':') + 1);
  }
  auto address = store::IpAddress::parse(host);
  if (!address) return store::invalid("", "\"" + std::string(host) + "\" is not an IP address");
  HostPort parsed{*address, std::nullopt};
  if (port) {
    uint32_t number = 0;
    bool digits = !port->empty() && port->size() <= 5;
    for (char c : *port) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) number = number * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!digits || number > 65535) return store::invalid("", "port must be 0-65535");
    parsed.port = static_cast<uint16_t>(number);
  }
  return parsed;
}

std::optional<store::IpAddress> addressOf(const sockaddr* socket_address) {
  store::IpAddress address;
  if (socket_address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(socket_address);
    std::memcpy(address.bytes.data(), &v4->sin_addr, 4);
    return address;
  }
  if (socket_address->sa_family != AF_INET6) return std::nullopt;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(socket_address);
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  const auto* bytes = reinterpret_cast<const uint8_t*>(&v6->sin6_addr);
  if (std::memcmp(bytes, kMappedPrefix, 12) == 0) {
    std::memcpy(address.bytes.data(), bytes + 12, 4);
    return address;
  }
  address.family = store::IpAddress::Family::kV6;
  std::memcpy(address.bytes.data(), bytes, 16);
  return address;
}

}  // namespace svcbox::dns
