#include <chrono>
#include <filesystem>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "app/proxy_ports.h"
#include "app/render.h"

namespace svcbox::app {
namespace {

using nlohmann::json;

struct GetFlags {
  RegistryOptions registry;
  std::string resource;
  std::vector<std::string> names;
  std::optional<std::string> namespace_name;
  bool all_namespaces = false;
  std::string output;
};

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Lister {
 public:
  Lister(const GetFlags& flags, const store::Snapshot& snapshot, ProxyPortsByService proxy_ports)
      : flags_(flags),
        snapshot_(snapshot),
        namespace_(flags.namespace_name.value_or("default")),
        proxy_ports_(std::move(proxy_ports)) {}

  void run() {
    if (flags_.output != "" && flags_.output != "wide" && flags_.output != "json" &&
        flags_.output != "yaml") {
      throw CommandError(kExitUserError,
                         "error: -o " + flags_.output + " is not one of wide, json, yaml");
    }
    if (flags_.all_namespaces && flags_.namespace_name) {
      throw CommandError(kExitUserError, "error: give -n NS or -A, not both");
    }
    auto kind = parseResource(flags_.resource);
    if (kind == store::ObjectKind::kService) {
      listServices();
    } else if (kind == store::ObjectKind::kPod) {
      listPods();
    } else {
      listEndpoints();
    }
  }

 private:
  bool wanted(const std::string& namespace_name, const std::string& name) const {
    if (!flags_.all_namespaces && namespace_name != namespace_) return false;
    if (flags_.names.empty()) return true;
    return std::find(flags_.names.begin(), flags_.names.end(), name) != flags_.names.end();
  }

  template <typename Items, typename Name, typename ToJson, typename Row>
  void list(const Items& items, const std::string& plural, std::vector<std::string> header,
            Name name_of, ToJson to_json, Row row_of) {
    json objects = json::array();
    if (flags_.all_namespaces) header.insert(header.begin(), "NAMESPACE");
    Table table(header);
    std::vector<std::string> found;
    for (const auto& item : items) {
      auto [namespace_name, name] = name_of(item);
      if (!wanted(namespace_name, name)) continue;
      found.push_back(name);
      objects.push_back(to_json(item));
      auto row = row_of(item);
      if (flags_.all_namespaces) row.insert(row.begin(), namespace_name);
      table.add(std::move(row));
    }
    bool missing = false;
    for (const auto& name : flags_.names) {
      if (std::find(found.begin(), found.end(), name) == found.end()) {
        std::cerr << "Error from server (NotFound): " << plural << " \"" << name
                  << "\" not found\n";
        missing = true;
      }
    }
    if (flags_.output == "json" || flags_.output == "yaml") {
      json value = flags_.names.size() == 1 && objects.size() == 1
                       ? objects[0]
                       : json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", objects}};
      if (!objects.empty() || flags_.names.empty()) {
        std::cout << (flags_.output == "json" ? value.dump(2) + "\n" : toYaml(value));
      }
    } else if (table.size() > 0) {
      std::cout << table.render();
    } else if (!missing) {
      std::cerr << (flags_.all_namespaces
                        ? "No resources found\n"
                        : "No resources found in " + namespace_ + " namespace.\n");
    }
    if (missing) throw CommandError(kExitUserError, "");
  }

  void listServices() {
    auto now = nowMs();
    bool wide = flags_.output == "wide";
    std::vector<std::string> header{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"};
    if (wide) header.push_back("SELECTOR");
    list(
        snapshot_.services(), "services", header,
        [](const store::ServiceEntry& e) {
          return std::pair(e.service.namespace_name, e.service.name);
        },
        [](const store::ServiceEntry& e) { return toJson(e.service); },
        [&](const store::ServiceEntry& e) {
          const auto& s = e.service;
          bool external = s.type == store::ServiceType::kExternalName;
          std::string ip = external       ? "<none>"
                           : s.headless   ? "None"
                           : s.cluster_ip ? s.cluster_ip->toString()
                                          : "<pending>";
          // Relayed by serve's userspace proxy: its address as the external one, and each port
          // as PORT:LISTENER, the way kubectl shows a NodePort.
          auto proxied = proxy_ports_.find({s.namespace_name, s.name});
          std::string external_ip = external ? s.external_name : "<none>";
          std::string ports = servicePorts(s);
          if (proxied != proxy_ports_.end() && !proxied->second.empty()) {
            // Listeners on every address are reached through REDIRECT from the ClusterIP.
            const auto& address = proxied->second.front().address;
            if (!address.isUnspecified()) external_ip = address.toString();
            ports = proxiedPorts(s, proxied->second);
          }
          std::vector<std::string> row{s.name, external ? "ExternalName" : "ClusterIP",
                                       ip,     external_ip,
                                       ports,  formatAge(s.created_ms, now)};
          if (wide) {
            std::string selector;
            for (const auto& [key, value] : s.selector.value_or(store::Labels{})) {
              selector += (selector.empty() ? "" : ",") + key + "=" + value;
            }
            row.push_back(selector.empty() ? "<none>" : selector);
          }
          return row;
        });
  }

  static std::string proxiedPorts(const store::Service& service,
                                  const std::vector<router::userspace::PortMapping>& mapping) {
    std::string text;
    for (const auto& port : service.ports) {
      if (!text.empty()) text += ",";
      text += std::to_string(port.port);
      for (const auto& listener : mapping) {
        if (listener.protocol == port.protocol && listener.service_port == port.port) {
          text += ":" + std::to_string(listener.listen_port);
        }
      }
      text += std::string("/") + store::protocolName(port.protocol);
    }
    return text;
  }

  void listPods() {
    auto now = nowMs();
    bool wide = flags_.output == "wide";
    std::vector<std::string> header{"NAME", "READY", "IP", "AGE"};
    if (wide) {
      header.insert(header.begin() + 2, "STATUS");
      header.push_back("REASON");
    }
    list(
        snapshot_.pods(), "pods", header,
        [](const store::PodPtr& p) { return std::pair(p->namespace_name, p->name); },
        [](const store::PodPtr& p) { return toJson(*p); },
        [&](const store::PodPtr& pod) {
          const store::Pod& p = *pod;
          std::string total = std::to_string(p.container_count);
          std::vector<std::string> row{p.name, (p.readiness.ready ? total : "0") + "/" + total,
                                       p.ips.empty() ? "<none>" : p.ips.front().toString(),
                                       formatAge(p.created_ms, now)};
          if (wide) {
            row.insert(row.begin() + 2, p.readiness.ready ? "Ready" : "NotReady");
            row.push_back(p.readiness.reason);
          }
          return row;
        });
  }

  void listEndpoints() {
    auto now = nowMs();
    size_t limit = flags_.output == "wide" ? SIZE_MAX : 3;
    std::vector<store::ServiceEntry> entries;
    for (const auto& entry : snapshot_.services()) {
      if (entry.service.type == store::ServiceType::kClusterIP) entries.push_back(entry);
    }
    list(
        entries, "endpoints", {"NAME", "ENDPOINTS", "AGE"},
        [](const store::ServiceEntry& e) {
          return std::pair(e.service.namespace_name, e.service.name);
        },
        [](const store::ServiceEntry& e) { return endpointsJson(e); },
        [&](const store::ServiceEntry& e) {
          return std::vector<std::string>{e.service.name, readyEndpoints(e, limit),
                                          formatAge(e.service.created_ms, now)};
        });
  }

  const GetFlags& flags_;
  const store::Snapshot& snapshot_;
  std::string namespace_;
  ProxyPortsByService proxy_ports_;
};

void runGet(const GetFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown({"db", "service-cidr"}, serveSettingNames());
  auto path = registryPath(settings, flags.registry).value;
  // Listing never creates a registry: a missing file lists as empty.
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    Lister(flags, store::Snapshot(0, std::nullopt, {}, std::vector<store::PodPtr>{}, {}), {}).run();
    return;
  }
  auto registry = openRegistry(path);
  auto snapshot = registry->loadSnapshot();
  if (!snapshot) failWith(snapshot.error());
  Lister(flags, **snapshot, readProxyPorts(path)).run();
}

}  // namespace

void addGetCommand(CLI::App& app) {
  auto flags = std::make_shared<GetFlags>();
  auto* command = app.add_subcommand("get", "List Services, Pods or Endpoints as kubectl does");
  command->add_option("resource", flags->resource, "svc|pods|endpoints (kubectl aliases work)")
      ->required();
  command->add_option("names", flags->names, "Only these names");
  command->add_option("-n,--namespace", flags->namespace_name, "Namespace (default: default)");
  command->add_flag("-A,--all-namespaces", flags->all_namespaces, "List every namespace");
  command->add_option("-o,--output", flags->output, "wide, json or yaml");
  command->add_option("--db", flags->registry.db, "Registry file (env SVCBOX_DB)");
  command->add_option("--config", flags->registry.config, "YAML config file (env SVCBOX_CONFIG)");
  command->callback([flags] { runGet(*flags); });
}

}  // namespace svcbox::app
