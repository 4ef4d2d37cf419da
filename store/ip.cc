#include "store/ip.h"

#include <arpa/inet.h>

#include <charconv>

namespace svcbox::store {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a terminated string; addresses are short.
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buffer[46] = {};
  text.copy(buffer, text.size());
  IpAddress address;
  if (inet_pton(AF_INET, buffer, address.bytes.data()) == 1) {
    address.family = Family::kV4;
    return address;
  }
  if (inet_pton(AF_INET6, buffer, address.bytes.data()) == 1) {
    address.family = Family::kV6;
    return address;
  }
  return std::nullopt;
}

bool IpAddress::isUnspecified() const {
  for (size_t i = 0; i < size(); ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

bool IpAddress::isLoopback() const {
  if (isV4()) return bytes[0] == 127;
  for (size_t i = 0; i < 15; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[15] == 1;
}

std::string IpAddress::toString() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof buffer);
  return buffer;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return std::nullopt;
  auto length_text = text.substr(slash + 1);
  int length = -1;
  auto [end, ec] =
      std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
  if (ec != std::errc() || end != length_text.data() + length_text.size()) return std::nullopt;
  if (length < 0 || length > static_cast<int>(address->size()) * 8) return std::nullopt;
  Cidr cidr{*address, length};
  // A prefix with host bits set is almost always a typo; refuse it rather than guess.
  for (size_t bit = static_cast<size_t>(length); bit < address->size() * 8; ++bit) {
    if (address->bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
  }
  return cidr;
}

std::string Cidr::toString() const { return base.toString() + "/" + std::to_string(prefix_length); }

bool Cidr::contains(const IpAddress& address) const {
  if (address.family != base.family) return false;
  for (int bit = 0; bit < prefix_length; ++bit) {
    uint8_t mask = 0x80 >> (bit % 8);
    if ((address.bytes[bit / 8] & mask) != (base.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

uint64_t Cidr::offsetOf(const IpAddress& address) const {
  size_t size = base.size();
  size_t first = size > 8 ? size - 8 : 0;
  uint64_t offset = 0;
  for (size_t i = first; i < size; ++i) offset = (offset << 8) | address.bytes[i];
  int bits = hostBits();
  return bits >= 64 ? offset : offset & ((uint64_t{1} << bits) - 1);
}

IpAddress Cidr::addressAt(uint64_t offset) const {
  IpAddress address = base;
  size_t size = base.size();
  for (size_t i = 0; i < 8 && i < size; ++i) {
    address.bytes[size - 1 - i] |= static_cast<uint8_t>(offset >> (8 * i));
  }
  return address;
}

}  // namespace svcbox::store
