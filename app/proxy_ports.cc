#include "app/proxy_ports.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/log.h"
#include "store/owner_lock.h"

namespace svcbox::app {
namespace {

// A serve holds the path's owner lock (store::OwnerLock) while it runs: its record is current.
bool serveAlive(const std::string& registry_path) {
  return store::liveOwnerOfPath(registry_path).has_value();
}

}  // namespace

std::string proxyPortsPath(const std::string& registry_path) {
  return registry_path + ".proxy-ports";
}

void writeProxyPorts(const std::string& registry_path,
                     const std::vector<router::userspace::PortMapping>& mapping) {
  auto path = proxyPortsPath(registry_path);
  auto temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    for (const auto& port : mapping) {
      out << port.namespace_name << '\t' << port.name << '\t' << store::protocolName(port.protocol)
          << '\t' << port.service_port << '\t' << port.address.toString() << '\t'
          << port.listen_port << '\n';
    }
    if (!out.flush()) {
      logWarn("cannot write " + temporary + "; `svcbox get svc` will not show proxy ports");
      return;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    logWarn("cannot rename " + temporary + " to " + path +
            "; `svcbox get svc` will not show proxy ports");
  }
}

void removeProxyPorts(const std::string& registry_path) {
  std::remove(proxyPortsPath(registry_path).c_str());
}

ProxyPortsByService readProxyPorts(const std::string& registry_path) {
  ProxyPortsByService out;
  if (!serveAlive(registry_path)) return out;
  std::ifstream in(proxyPortsPath(registry_path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    router::userspace::PortMapping port;
    std::string protocol, address;
    unsigned service_port = 0, listen_port = 0;
    if (!(fields >> port.namespace_name >> port.name >> protocol >> service_port >> address >>
          listen_port)) {
      continue;
    }
    auto parsed = store::IpAddress::parse(address);
    if (!parsed || service_port > 65535 || listen_port > 65535) continue;
    port.protocol = protocol == "UDP" ? store::Protocol::kUdp : store::Protocol::kTcp;
    port.service_port = static_cast<uint16_t>(service_port);
    port.address = *parsed;
    port.listen_port = static_cast<uint16_t>(listen_port);
    out[{port.namespace_name, port.name}].push_back(std::move(port));
  }
  return out;
}

}  // namespace svcbox::app
