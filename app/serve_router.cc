#include "app/serve_router.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>

#include "app/common.h"
#include "app/log.h"
#include "router/iptables_flavor.h"
#include "router/userspace/provider.h"
#include "router/userspace/redirect.h"

namespace svcbox::app {
namespace {

constexpr size_t kMaxProxyThreads = 64;

bool parseBool(const Setting& setting, const std::string& name) {
  const auto& value = setting.value;
  if (value == "true" || value == "1" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "no") return false;
  throw CommandError(kExitUserError, setting.source + ": --" + name +
                                         " must be true or false, not \"" + value + "\"");
}

void logFromRouter(router::LogLevel level, const std::string& message) {
  logFrom("router", level, message);
}

}  // namespace

std::string missingCapabilityMessage(const std::string& what, const std::string& detail) {
  // libiptc opens a raw socket (CAP_NET_RAW) and reads and writes the tables through it
  // (CAP_NET_ADMIN); either refusal is the same EPERM, so the effective set tells which is missing.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  bool known = syscall(SYS_capget, &header, data) == 0;
  auto held = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
  bool admin = known && held(CAP_NET_ADMIN);
  bool raw = known && held(CAP_NET_RAW);
  std::string cause;
  if (!known) {
    cause = "one of them was denied (" + detail + ")";
  } else if (!admin && !raw) {
    cause = "this process has neither (" + detail + ")";
  } else if (!raw) {
    cause = "this process lacks CAP_NET_RAW, so the raw socket was refused (" + detail + ")";
  } else if (!admin) {
    cause = "this process lacks CAP_NET_ADMIN, so the tables were refused (" + detail + ")";
  } else {
    cause = "permission was denied although this process holds both (" + detail +
            "): a user namespace that does not own this network namespace, seccomp or an LSM "
            "can refuse them";
  }
  return "error: " + what +
         " needs CAP_NET_ADMIN and CAP_NET_RAW for netfilter (libiptc reads and writes the tables "
         "through a raw socket); " +
         cause +
         "; run as root or grant both capabilities, or use --proxy-mode userspace (svcbox relays "
         "the connections itself and needs neither) or --proxy-mode none (no Service routing)";
}

void addRouterFlags(CLI::App& command, RouterFlags& flags) {
  command.add_option("--proxy-mode", flags.proxy_mode,
                     "iptables, userspace, none, or auto (default: iptables when netfilter is "
                     "writable, else userspace)");
  command.add_option("--cluster-cidr", flags.cluster_cidr,
                     "Pod CIDR; Service traffic from outside it is masqueraded");
  command
      .add_option("--masquerade-all", flags.masquerade_all,
                  "true: masquerade every Service connection (one-armed setups)")
      ->expected(0, 1)
      ->default_str("true");
  command
      .add_option("--cleanup-on-exit", flags.cleanup_on_exit,
                  "true: remove svcbox's chains and jumps when serve stops")
      ->expected(0, 1)
      ->default_str("true");
  command.add_option("--sync-period", flags.sync_period,
                     "Full resync interval, e.g. 30s (default)");
  command.add_option("--proxy-bind", flags.proxy_bind,
                     "Address the userspace proxy mode binds its listeners to (default "
                     "127.0.0.1); DNS answers it for ClusterIP Services");
  command.add_option("--proxy-port-base", flags.proxy_port_base,
                     "userspace mode: a Service port it cannot bind listens on this + port "
                     "(default 20000)");
  command.add_option("--proxy-idle-timeout", flags.proxy_idle_timeout,
                     "userspace mode: an idle TCP connection is closed after this (default 5m)");
  command.add_option("--proxy-udp-idle-timeout", flags.proxy_udp_idle_timeout,
                     "userspace mode: a UDP session without datagrams ends after this (default "
                     "30s)");
  command.add_option("--proxy-drain-timeout", flags.proxy_drain_timeout,
                     "userspace mode: connections to a pod that became unready may run this long "
                     "(default 30s)");
  command.add_option("--proxy-max-connections", flags.proxy_max_connections,
                     "userspace mode: concurrent connections per Service port (default 1024)");
  command.add_option("--proxy-threads", flags.proxy_threads,
                     "userspace mode: relay threads, each accepting from every TCP listener "
                     "(default 2)");
}

std::vector<std::string> withRouterSettingNames(std::vector<std::string> names) {
  for (const char* name :
       {"proxy-mode", "cluster-cidr", "masquerade-all", "cleanup-on-exit", "sync-period",
        "proxy-bind", "proxy-port-base", "proxy-idle-timeout", "proxy-udp-idle-timeout",
        "proxy-drain-timeout", "proxy-max-connections", "proxy-threads"}) {
    names.push_back(name);
  }
  return names;
}

RouterSettings resolveRouterSettings(Settings& settings, const RouterFlags& flags) {
  RouterSettings out;
  out.proxy_mode = settings.resolve("proxy-mode", flags.proxy_mode, "auto");
  const auto& mode = out.proxy_mode.value;
  if (mode != "iptables" && mode != "userspace" && mode != "none" && mode != "auto") {
    throw CommandError(kExitUserError,
                       out.proxy_mode.source +
                           ": --proxy-mode must be iptables, userspace, none or auto, not \"" +
                           mode + "\"");
  }
  if (auto cidr = settings.find("cluster-cidr", flags.cluster_cidr)) {
    auto parsed = store::Cidr::parse(cidr->value);
    if (!parsed || !parsed->base.isV4()) {
      throw CommandError(kExitUserError, cidr->source +
                                             ": --cluster-cidr must be an IPv4 CIDR "
                                             "such as 10.244.0.0/16, not \"" +
                                             cidr->value + "\"");
    }
    const auto& b = parsed->base.bytes;
    uint32_t base = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    out.options.cluster_cidr = router::Ipv4Prefix{base, parsed->prefix_length};
  }
  // A bare flag arrives as "true" (its default_str).
  out.options.masquerade_all = parseBool(
      settings.resolve("masquerade-all", flags.masquerade_all, "false"), "masquerade-all");
  out.cleanup_on_exit = parseBool(
      settings.resolve("cleanup-on-exit", flags.cleanup_on_exit, "false"), "cleanup-on-exit");
  if (auto bind = settings.find("proxy-bind", flags.proxy_bind)) {
    auto address = store::IpAddress::parse(bind->value);
    if (!address || address->isUnspecified()) {
      throw CommandError(kExitUserError, bind->source +
                                             ": --proxy-bind must be an IP address "
                                             "such as 127.0.0.1, not \"" +
                                             bind->value + "\"");
    }
    out.proxy.bind_address = *address;
    out.proxy_bind_given = true;
  }
  auto base = settings.resolve("proxy-port-base", flags.proxy_port_base, "20000");
  out.proxy.mapped_port_base = static_cast<uint16_t>(parseCount(base, "proxy-port-base", 65535));
  out.proxy.tcp_idle_timeout = parseDuration(
      settings.resolve("proxy-idle-timeout", flags.proxy_idle_timeout, "5m"), "proxy-idle-timeout");
  out.proxy.udp_idle_timeout =
      parseDuration(settings.resolve("proxy-udp-idle-timeout", flags.proxy_udp_idle_timeout, "30s"),
                    "proxy-udp-idle-timeout");
  out.proxy.drain_timeout =
      parseDuration(settings.resolve("proxy-drain-timeout", flags.proxy_drain_timeout, "30s"),
                    "proxy-drain-timeout");
  out.proxy.max_connections =
      parseCount(settings.resolve("proxy-max-connections", flags.proxy_max_connections, "1024"),
                 "proxy-max-connections", 1000000);
  auto threads = settings.resolve("proxy-threads", flags.proxy_threads, "2");
  out.proxy.threads = parseCount(threads, "proxy-threads", kMaxProxyThreads);
  if (out.proxy.threads == 0) {
    throw CommandError(kExitUserError, threads.source + ": --proxy-threads must be at least 1");
  }
  out.timing.sync_period =
      parseDuration(settings.resolve("sync-period", flags.sync_period, "30s"), "sync-period");
  return out;
}

namespace {

std::unique_ptr<router::Provider> makeUserspace(const RouterSettings& settings,
                                                const std::string& why) {
  logInfo("proxy mode userspace (" + why + "): svcbox relays Service connections itself from " +
          "listeners on " + settings.proxy.bind_address.toString() +
          ", and DNS answers that address for ClusterIP Services");
  return std::make_unique<router::userspace::UserspaceProvider>(settings.proxy, nullptr,
                                                                settings.timing, logFromRouter);
}

}  // namespace

std::unique_ptr<router::Provider> makeProvider(const RouterSettings& settings) {
  const auto& mode = settings.proxy_mode.value;
  if (mode == "none") {
    logInfo("proxy mode none (" + settings.proxy_mode.source + "): no Service routing rules");
    return nullptr;
  }
  if (mode == "userspace") {
    router::SyncFailure failure;
    if (settings.proxy_bind_given || !router::canWriteNetfilter(failure)) {
      return makeUserspace(settings, settings.proxy_mode.source);
    }
    auto options = settings.proxy;
    options.bind_address = *store::IpAddress::parse("0.0.0.0");
    options.own_port_first = false;
    options.only_redirected = true;
    logInfo("proxy mode userspace (" + settings.proxy_mode.source +
            ") with REDIRECT: nat rules send ClusterIP traffic to svcbox's listeners on every "
            "address (from port " +
            std::to_string(options.mapped_port_base) +
            " + the Service port), and svcbox relays only what was redirected; give --proxy-bind "
            "to bind one address "
            "and write no rules");
    return std::make_unique<router::userspace::UserspaceProvider>(
        options, std::make_unique<router::userspace::RedirectRules>(), settings.timing,
        logFromRouter);
  }
  router::SyncFailure failure;
  if (!router::canWriteNetfilter(failure)) {
    if (mode == "iptables" || !failure.permission_denied) {
      throw CommandError(kExitUserError,
                         failure.permission_denied
                             ? missingCapabilityMessage("--proxy-mode iptables", failure.message)
                             : "error: --proxy-mode " + mode + ": " + failure.message);
    }
    return makeUserspace(settings, "auto: svcbox cannot write netfilter rules: " + failure.message +
                                       "; grant CAP_NET_ADMIN and CAP_NET_RAW for the iptables "
                                       "mode");
  }
  bool warning = false;
  auto note = router::iptablesFlavorNote(router::iptablesFlavor(), warning);
  warning ? logWarn(note) : logInfo(note);
  logInfo("proxy mode iptables (" + settings.proxy_mode.source + ")" +
          (settings.options.masquerade_all ? ", masquerading all Service traffic" : "") +
          ", full resync every " + std::to_string(settings.timing.sync_period.count()) + " ms");
  return std::make_unique<router::Router>(settings.options, settings.timing, logFromRouter);
}

std::unique_ptr<router::Provider> netfilterProvider() {
  return std::make_unique<router::Router>(router::RouterOptions{}, router::RouterTiming{},
                                          logFromRouter);
}

}  // namespace svcbox::app
