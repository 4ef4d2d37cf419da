#include "dns/address.h"

#include <algorithm>
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

}  // namespace svcbox::dns
