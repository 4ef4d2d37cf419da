#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "router/userspace/proxy.h"

// Where the userspace proxy listens, kept beside the registry so that `svcbox get svc` (another
// process, reading only SQLite) can show it. The mapping is not a pure function of the registry:
// a port falls back to a mapped or kernel-picked one only when binding it fails, which only the
// serving process learns. So serve records it, and readers trust the record only while that serve
// still holds the registry.
namespace svcbox::app {

using ProxyPortsByService =
    std::map<std::pair<std::string, std::string>, std::vector<router::userspace::PortMapping>>;

std::string proxyPortsPath(const std::string& registry_path);
// Replaces the record in one rename, so a reader sees the old or the new mapping, never half.
// Failures are logged, not fatal: only `get svc` loses the mapping column.
void writeProxyPorts(const std::string& registry_path,
                     const std::vector<router::userspace::PortMapping>& mapping);
void removeProxyPorts(const std::string& registry_path);
// Empty when there is no record or the serve that wrote it is gone.
ProxyPortsByService readProxyPorts(const std::string& registry_path);

}  // namespace svcbox::app
