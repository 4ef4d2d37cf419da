#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace svcbox::store {

// An IPv4 or IPv6 address as network-order bytes; IPv4 uses the first four.
struct IpAddress {
  enum class Family : uint8_t { kV4 = 4, kV6 = 6 };
  Family family = Family::kV4;
  std::array<uint8_t, 16> bytes{};

  static std::optional<IpAddress> parse(std::string_view text);
  std::string toString() const;
  bool isV4() const { return family == Family::kV4; }
  // 0.0.0.0 or ::, a listener's "every address".
  bool isUnspecified() const;
  // 127.0.0.0/8 or ::1.
  bool isLoopback() const;
  size_t size() const { return isV4() ? 4 : 16; }
  auto operator<=>(const IpAddress&) const = default;
};

// A prefix such as 10.96.0.0/12; the base address has no host bits set.
struct Cidr {
  IpAddress base;
  int prefix_length = 0;

  static std::optional<Cidr> parse(std::string_view text);
  std::string toString() const;
  bool contains(const IpAddress& address) const;
  int hostBits() const { return static_cast<int>(base.size()) * 8 - prefix_length; }
  // Offset of an address inside the prefix (only the low 64 host bits count).
  uint64_t offsetOf(const IpAddress& address) const;
  IpAddress addressAt(uint64_t offset) const;
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace svcbox::store

template <>
struct std::hash<svcbox::store::IpAddress> {
  size_t operator()(const svcbox::store::IpAddress& address) const noexcept {
    uint64_t high = 0;
    uint64_t low = 0;
    for (size_t i = 0; i < 8; ++i) high = (high << 8) | address.bytes[i];
    for (size_t i = 8; i < 16; ++i) low = (low << 8) | address.bytes[i];
    return std::hash<uint64_t>{}(high * 31 + low + static_cast<uint64_t>(address.family));
  }
};
