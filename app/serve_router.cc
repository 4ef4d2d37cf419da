#include "app/serve_router.h"

#include <spdlog/spdlog.h>

#include <cctype>

#include "app/common.h"
#include "app/log.h"
#include "router/iptables_flavor.h"

namespace svcbox::app {
namespace {

bool parseBool(const Setting& setting, const std::string& name) {
  const auto& value = setting.value;
  if (value == "true" || value == "1" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "no") return false;
  throw CommandError(kExitUserError, setting.source + ": --" + name +
                                         " must be true or false, not \"" + value + "\"");
}

// "30s", "500ms", "2m".
std::chrono::milliseconds parseDuration(const Setting& setting, const std::string& name) {
  const auto& value = setting.value;
  size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  std::string unit = value.substr(digits);
  long long number = digits > 0 && digits < 10 ? std::stoll(value.substr(0, digits)) : -1;
  long long scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
  if (number <= 0 || scale == 0) {
    throw CommandError(kExitUserError, setting.source + ": --" + name +
                                           " must be a positive duration such as 30s, 500ms or "
                                           "2m, not \"" +
                                           value + "\"");
  }
  return std::chrono::milliseconds(number * scale);
}

void logFromRouter(router::LogLevel level, const std::string& message) {
  switch (level) {
    case router::LogLevel::kDebug:
      spdlog::debug("router: " + message);
      break;
    case router::LogLevel::kInfo:
      logInfo("router: " + message);
      break;
    case router::LogLevel::kWarn:
      logWarn("router: " + message);
      break;
  }
}

}  // namespace

std::string missingCapabilityMessage(const std::string& what, const std::string& detail) {
  return "error: " + what + " needs CAP_NET_ADMIN to write netfilter rules (" + detail +
         "); run as root or grant the capability, or use --proxy-mode none (no Service routing "
         "here; the userspace proxy mode, which needs no capability, is the planned way out)";
}

void addRouterFlags(CLI::App& command, RouterFlags& flags) {
  command.add_option("--proxy-mode", flags.proxy_mode,
                     "iptables, none, or auto (default: iptables when netfilter is writable, "
                     "else none)");
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
                     "Address the userspace proxy mode binds its listeners to");
}

std::vector<std::string> withRouterSettingNames(std::vector<std::string> names) {
  for (const char* name : {"proxy-mode", "cluster-cidr", "masquerade-all", "cleanup-on-exit",
                           "sync-period", "proxy-bind"}) {
    names.push_back(name);
  }
  return names;
}

RouterSettings resolveRouterSettings(Settings& settings, const RouterFlags& flags) {
  RouterSettings out;
  out.proxy_mode = settings.resolve("proxy-mode", flags.proxy_mode, "auto");
  const auto& mode = out.proxy_mode.value;
  if (mode == "userspace") {
    throw CommandError(kExitUserError,
                       out.proxy_mode.source +
                           ": --proxy-mode userspace is not available in this version of svcbox; "
                           "use iptables (needs CAP_NET_ADMIN) or none (DNS only)");
  }
  if (mode != "iptables" && mode != "none" && mode != "auto") {
    throw CommandError(kExitUserError, out.proxy_mode.source +
                                           ": --proxy-mode must be iptables, none or auto, not \"" +
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
    out.proxy_bind = store::IpAddress::parse(bind->value);
    if (!out.proxy_bind) {
      throw CommandError(kExitUserError, bind->source +
                                             ": --proxy-bind must be an IP address "
                                             "such as 127.0.0.1, not \"" +
                                             bind->value + "\"");
    }
  }
  out.timing.sync_period =
      parseDuration(settings.resolve("sync-period", flags.sync_period, "30s"), "sync-period");
  return out;
}

std::unique_ptr<router::Router> makeRouter(const RouterSettings& settings) {
  const auto& mode = settings.proxy_mode.value;
  if (mode == "none") {
    logInfo("proxy mode none (" + settings.proxy_mode.source + "): no Service routing rules");
    return nullptr;
  }
  router::SyncFailure failure;
  if (!router::canWriteNetfilter(failure)) {
    if (mode == "iptables" || !failure.permission_denied) {
      throw CommandError(kExitUserError,
                         failure.permission_denied
                             ? missingCapabilityMessage("--proxy-mode iptables", failure.message)
                             : "error: --proxy-mode " + mode + ": " + failure.message);
    }
    logWarn("proxy mode auto: svcbox cannot write netfilter rules (" + failure.message +
            "), so it runs with proxy mode none: no Service routing; grant CAP_NET_ADMIN for the "
            "iptables mode");
    return nullptr;
  }
  bool warning = false;
  auto note = router::iptablesFlavorNote(router::iptablesFlavor(), warning);
  warning ? logWarn(note) : logInfo(note);
  logInfo("proxy mode iptables (" + settings.proxy_mode.source + ")" +
          (settings.options.masquerade_all ? ", masquerading all Service traffic" : "") +
          ", full resync every " + std::to_string(settings.timing.sync_period.count()) + " ms");
  return std::make_unique<router::Router>(settings.options, settings.timing, logFromRouter);
}

void startRouter(router::Router* router, const store::SnapshotPtr& first) {
  if (!router) return;
  router::SyncFailure failure;
  if (!router->start(first, failure)) {
    throw CommandError(kExitUserError,
                       failure.permission_denied
                           ? missingCapabilityMessage("--proxy-mode iptables", failure.message)
                           : "error: first rule sync failed: " + failure.message);
  }
}

void stopRouter(router::Router* router, const RouterSettings& settings) {
  if (router) router->stop(settings.cleanup_on_exit);
}

}  // namespace svcbox::app
