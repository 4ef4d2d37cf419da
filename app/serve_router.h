#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "router/provider.h"
#include "router/router.h"
#include "router/userspace/proxy.h"

// serve's side of the router: its flags and settings, the proxy-mode decision, start and stop.
namespace svcbox::app {

struct RouterFlags {
  std::optional<std::string> proxy_mode;
  std::optional<std::string> cluster_cidr;
  std::optional<std::string> masquerade_all;
  std::optional<std::string> cleanup_on_exit;
  std::optional<std::string> sync_period;
  std::optional<std::string> proxy_bind;
  std::optional<std::string> proxy_port_base;
  std::optional<std::string> proxy_idle_timeout;
  std::optional<std::string> proxy_drain_timeout;
  std::optional<std::string> proxy_udp_idle_timeout;
  std::optional<std::string> proxy_max_connections;
  std::optional<std::string> proxy_threads;
};

struct RouterSettings {
  Setting proxy_mode;  // "iptables", "userspace", "none" or "auto"
  // The userspace mode's listeners; bind_address is --proxy-bind (127.0.0.1 when not given).
  router::userspace::ProxyOptions proxy;
  bool proxy_bind_given = false;
  router::RouterOptions options;
  router::RouterTiming timing;
  bool cleanup_on_exit = false;
};

void addRouterFlags(CLI::App& command, RouterFlags& flags);
// The config-file keys the router adds to serve's.
std::vector<std::string> withRouterSettingNames(std::vector<std::string> names);
// flag > SVCBOX_* > config file > default; throws CommandError naming the setting when malformed.
RouterSettings resolveRouterSettings(Settings& settings, const RouterFlags& flags);

// Decides the proxy mode (auto: iptables where svcbox may write netfilter, else userspace, logged
// with the reason) and returns its backend, not yet started; null for --proxy-mode none. Throws
// CommandError (one line) when --proxy-mode iptables cannot write netfilter rules.
std::unique_ptr<router::Provider> makeProvider(const RouterSettings& settings);
// The backend that owns svcbox's netfilter state (the iptables mode's chains and the REDIRECT
// rules alike), for `svcbox rules` and `svcbox cleanup`: never started, nothing logged.
std::unique_ptr<router::Provider> netfilterProvider();

// The message for netfilter access denied (CAP_NET_ADMIN or CAP_NET_RAW missing: it says which),
// shared by serve, rules and cleanup.
std::string missingCapabilityMessage(const std::string& what, const std::string& detail);

}  // namespace svcbox::app
