#pragma once

#include <algorithm>
#include <boost/asio/ip/address.hpp>

#include "store/ip.h"

// An IpAddress as Boost.Asio's address, for the folders that open sockets (dns, router, health,
// app). Header-only, so store itself builds without Boost: only targets that link Boost include it.
namespace svcbox::store {

inline boost::asio::ip::address toAsioAddress(const IpAddress& ip) {
  if (ip.isV4()) {
    boost::asio::ip::address_v4::bytes_type bytes;
    std::copy_n(ip.bytes.begin(), bytes.size(), bytes.begin());
    return boost::asio::ip::address_v4(bytes);
  }
  boost::asio::ip::address_v6::bytes_type bytes;
  std::copy_n(ip.bytes.begin(), bytes.size(), bytes.begin());
  return boost::asio::ip::address_v6(bytes);
}

}  // namespace svcbox::store
