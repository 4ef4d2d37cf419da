#pragma once

#include <cstddef>
#include <string>
#include <vector>

// File descriptors: every connection a client opens holds one, so every connection cap must fit
// below RLIMIT_NOFILE, or the cap is a promise accept() breaks with EMFILE.
namespace svcbox::app {

// Raises the soft RLIMIT_NOFILE to the hard limit (a systemd host's soft limit is 1024) and
// returns the soft limit now in force.
size_t raiseFileLimit();

// One connection cap: the flag that sets it and its value (lowered in place); each connection
// holds one descriptor.
struct ConnectionCap {
  std::string flag;
  size_t* value;
};

// Descriptors serve holds apart from client connections: registry, listeners, event loops,
// upstream sockets, logs.
inline constexpr size_t kReservedDescriptors = 64;

// Lowers the caps in proportion (each to at least 1) when together they need more descriptors
// than `limit` leaves after the reserve. Returns a warning naming each change, or "" when every
// cap fits as it is.
std::string fitConnectionCaps(size_t limit, const std::vector<ConnectionCap>& caps);

}  // namespace svcbox::app
