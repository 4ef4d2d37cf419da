#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <thread>

#include "app/admin_server.h"
#include "app/commands.h"
#include "app/common.h"
#include "app/file_limit.h"
#include "app/log.h"
#include "app/memory_trim.h"
#include "app/metrics.h"
#include "app/proxy_ports.h"
#include "app/registry_writer.h"
#include "app/serve_admin.h"
#include "app/serve_dns.h"
#include "app/serve_health.h"
#include "app/serve_readiness.h"
#include "app/serve_router.h"
#include "app/serve_stop.h"
#include "app/snapshot_diff.h"
#include "app/snapshot_fanout.h"
#include "store/generation_guard.h"
#include "store/owner_lock.h"
#include "store/test_hooks.h"
#include "store/watcher.h"

namespace svcbox::app {
namespace {

constexpr auto kWatchInterval = std::chrono::milliseconds(5);
// The watcher rereads only changed rows (and an index scan the OS page cache serves fast);
// SQLite's default 2 MiB cache would mostly hold pages it never needs again.
constexpr int kWatcherPageCacheKib = 64;

struct ServeFlags {
  RegistryOptions registry;
  DnsFlags dns;
  std::optional<std::string> log_format;
  std::optional<std::string> log_level;
  RouterFlags router;
  HealthFlags health;
  AdminFlags admin;
  bool print_config = false;
};

// How often serve checks, on a connection of its own, that it still follows its registry.
constexpr auto kGenerationCheckInterval = std::chrono::seconds(5);

// Test hooks (tests/follow): a shorter check interval, and a file whose presence stalls the
// watcher as a stuck one would be, so the guard's alarm can be seen end to end.
std::chrono::milliseconds generationCheckInterval() {
  const char* value = SVCBOX_TEST_HOOK("SVCBOX_TEST_GENERATION_CHECK_MS");
  return value ? std::chrono::milliseconds(std::atol(value)) : kGenerationCheckInterval;
}
// Test hook (tests/dns): while this file exists serve waits, DNS already bound, before it loads
// the registry, so what clients get in between can be asked for at leisure. Bounded: 30 s.
void holdFirstLoadForTest() {
  const char* file = SVCBOX_TEST_HOOK("SVCBOX_TEST_HOLD_FIRST_LOAD_FILE");
  if (!file) return;
  for (int i = 0; i < 3000 && ::access(file, F_OK) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}
// The userspace relay's cap is per port (how many ports is up to the registry), so it is not
// among these.
void fitConnectionCapsToFileLimit(dns::DnsOptions& dns, AdminOptions& admin,
                                  size_t& probes_in_flight) {
  size_t limit = raiseFileLimit();
  std::string warning =
      fitConnectionCaps(limit, {{"--dns-tcp-max-connections", &dns.tcp.max_connections},
                                {"--admin-max-api-connections", &admin.max_api_connections},
                                {"--admin-max-health-connections", &admin.max_health_connections},
                                {"probes in flight", &probes_in_flight}});
  dns.tcp.max_connections_per_client =
      std::min(dns.tcp.max_connections_per_client, dns.tcp.max_connections);
  if (!warning.empty()) logWarn(warning);
  logInfo("connection caps fitted: file_limit=" + std::to_string(limit) +
          " dns_tcp_connections=" + std::to_string(dns.tcp.max_connections) +
          " dns_tcp_per_client=" + std::to_string(dns.tcp.max_connections_per_client) +
          " admin_api_connections=" + std::to_string(admin.max_api_connections) +
          " admin_health_connections=" + std::to_string(admin.max_health_connections) +
          " probes_in_flight=" + std::to_string(probes_in_flight));
}
void cleanUpOnExit(router::Provider& provider) {
  router::SyncFailure failure;
  bool changed = false;
  if (!provider.cleanup(failure, changed)) {
    logWarn("cleanup on exit failed: " + failure.message);
  } else if (changed) {
    logInfo("removed svcbox's chains and jumps (--cleanup-on-exit)");
  }
}

std::function<bool()> watcherTestPause() {
  const char* file = SVCBOX_TEST_HOOK("SVCBOX_TEST_WATCHER_PAUSE_FILE");
  if (!file) return nullptr;
  return [path = std::string(file)] { return ::access(path.c_str(), F_OK) == 0; };
}

std::string describeLag(const store::GenerationGuard::Lag& lag) {
  return "serve is not following its registry: registry_generation=" +
         std::to_string(lag.generation) + " published_version=" + std::to_string(lag.published) +
         " behind_for_ms=" + std::to_string(lag.since.count()) +
         " (the watcher published nothing while the registry moved; a restart recovers)";
}

int runServe(const ServeFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown(serveSettingNames(), serveSettingNames());
  auto path = registryPath(settings, flags.registry);
  auto cidr = cidrChoice(settings, flags.registry);
  auto log_format = settings.resolve("log-format", flags.log_format, "text");
  auto log_level = settings.resolve("log-level", flags.log_level, "info");
  auto router_settings = resolveRouterSettings(settings, flags.router);
  auto default_probe = resolveDefaultProbe(settings, flags.health);
  auto admin_options = resolveAdminOptions(settings, flags.admin, path.value);
  if (!cidr.requested)
    settings.resolve("service-cidr", std::nullopt,
                     "registry's, else " + std::string(store::kDefaultServiceCidr));
  dns::DnsOptions dns_options = resolveDnsOptions(settings, flags.dns);
  // Every check above and this one run before --print-config, so what it prints, serve takes.
  if (!validLogSettings(log_format.value, log_level.value)) {
    throw CommandError(kExitUserError,
                       log_format.source + " / " + log_level.source +
                           ": log format must be text or json "
                           "and level one of trace, debug, info, warn, error, critical, off");
  }
  if (flags.print_config) {
    for (const auto& [name, setting] : settings.resolved()) {
      std::cout << name << ": " << (setting.value.empty() ? "(unset)" : setting.value) << "    # "
                << setting.source << "\n";
    }
    return kExitOk;
  }
  configureLogging(log_format.value, log_level.value);
  keepLargeBuffersOutOfArenas();
  // Before any thread starts, so that every one inherits the blocked signals.
  ServeStop stop;

  auto registry = openRegistry(path.value);
  auto owner_lock = store::OwnerLock::acquire(path.value);
  if (!owner_lock) failWith(owner_lock.error());
  auto service_cidr = registry->serviceCidr(cidr);
  if (!service_cidr) failWith(service_cidr.error());
  if (auto limited = registry->limitPageCache(kWatcherPageCacheKib); !limited) {
    failWith(limited.error());
  }
  logInfo("svcbox " SVCBOX_VERSION " serving registry " + path.value + " (" + path.source +
          "), service CIDR " + service_cidr->toString());
  loadAdminToken(admin_options);

  // The prober and the admin API write on a connection of their own; each commit wakes the
  // watcher, which reads on the first.
  std::atomic<store::Watcher*> watcher_for_wake{nullptr};
  auto on_replaced = [&stop](const store::Error& error) {
    stop.fatal(kExitUserError,
               "registry replaced under serve: " + error.message +
                   "; stopping so that a supervisor restarts serve on the file now at the path "
                   "(no write went to the old one)");
  };
  RegistryWriter writer(
      openRegistry(path.value), cidr,
      [&watcher_for_wake] {
        if (auto* watcher = watcher_for_wake.load()) watcher->wake();
      },
      on_replaced);
  if (auto recorded = writer.setDefaultProbe(default_probe); !recorded) {
    failWith(recorded.error());
  }

  size_t probes_in_flight = health::ProberOptions{}.max_in_flight;
  fitConnectionCapsToFileLimit(dns_options, admin_options, probes_in_flight);

  Readiness readiness;
  ServeMetrics metrics;
  dns_options.service_cidr = *service_cidr;
  auto dns_server = startDnsServer(std::move(dns_options));
  readiness.dns_bound = true;
  metrics.setDnsSource([&dns_server] { return dns_server->metrics(); });
  auto provider = makeProvider(router_settings);
  if (provider) {
    metrics.setProviderSource([&provider] { return provider->stats(); });
    provider->setOnSynced(rulesProgrammingObserver(metrics));
    provider->setOnListenersChanged(
        [&path](const std::vector<router::userspace::PortMapping>& listeners) {
          writeProxyPorts(path.value, listeners);
        });
  }
  auto prober = makeProber(default_probe, probes_in_flight, writer);
  metrics.setProbeSource([&prober] {
    auto c = prober->counters();
    return ProbeStats{c.tcp_success,     c.tcp_failure,     c.http_success, c.http_failure,
                      c.default_success, c.default_failure, c.sessions};
  });

  MemoryTrim trim(std::chrono::seconds(30));
  SnapshotConsumers consumers;
  consumers.provider = provider.get();
  consumers.dns = [&dns_server, &metrics](
                      const store::SnapshotPtr& previous, const store::SnapshotPtr& current,
                      const std::vector<router::userspace::PortMapping>* ports) {
    publishToDns(*dns_server, metrics, previous, current, ports);
  };
  consumers.prober = [&prober](const store::SnapshotPtr& current) { prober->update(current); };
  consumers.after = [&trim](const store::SnapshotPtr& previous, const store::SnapshotPtr& current) {
    logSnapshotChanges(previous, current);
    trim.afterSnapshot();
  };
  SnapshotFanOut fanout(std::move(consumers));
  store::Watcher watcher(
      std::move(registry), kWatchInterval,
      [&fanout](const store::SnapshotPtr& previous, const store::SnapshotPtr& current) {
        fanout.offer(previous, current);
      },
      [&on_replaced](const store::Error& error) {
        if (error.kind == store::ErrorKind::kReplaced) {
          on_replaced(error);
          return;
        }
        logWarn("registry read failed, keeping the last snapshot: " + error.message);
      });
  watcher.setTestPause(watcherTestPause());
  store::GenerationGuard guard([&path] { return store::Registry::peekGeneration(path.value); },
                               [&fanout]() -> std::optional<uint64_t> {
                                 auto current = fanout.handedOver();
                                 if (!current) return std::nullopt;
                                 return current->version();
                               },
                               generationCheckInterval(),
                               [](const std::optional<store::GenerationGuard::Lag>& lag) {
                                 if (lag) {
                                   logError(describeLag(*lag));
                                 } else {
                                   logInfo("serve follows its registry again");
                                 }
                               });
  readiness.provider = provider.get();
  readiness.guard = &guard;
  metrics.setSnapshotSource([&fanout] { return fanout.handedOver(); });
  metrics.setRegistryErrorsSource([&watcher] { return watcher.errorCount(); });
  metrics.setGenerationLagSource([&guard] { return guard.lag(); });

  AdminHooks hooks;
  hooks.snapshot = [&fanout] { return fanout.handedOver(); };
  hooks.writer = &writer;
  hooks.not_ready = [&readiness] { return readiness.notReady(); };
  hooks.metrics = [&metrics] { return metrics.render(); };
  auto admin = startAdminServer(admin_options, std::move(hooks));

  holdFirstLoadForTest();
  if (auto started = watcher.start(); !started) failWith(started.error());
  watcher_for_wake = &watcher;
  readiness.registry_loaded = true;
  if (auto failure = fanout.startFailure()) {
    throw CommandError(
        kExitUserError,
        failure->permission_denied
            ? missingCapabilityMessage("--proxy-mode " + provider->mode(), failure->message)
            : "error: first rule sync failed: " + failure->message);
  }
  guard.start();
  prober->start();
  // Loading the registry, compiling the zone and the first sync free most of what they
  // allocated, scattered among what stays; give those pages back before serving for days.
  trim.now();

  int exit_code = stop.wait([&] {
    if (provider) provider->requestFullSync();
    watcher.wake();
  });
  // Stop taking requests first, then the writers, then what serves the last snapshot.
  if (admin) admin->stop();
  guard.stop();
  prober->stop();
  // Nothing posts writes any more: the one running finishes, so no job outlives what it uses.
  writer.stopWorker();
  watcher_for_wake = nullptr;
  watcher.stop();
  fanout.stop();
  if (provider) {
    provider->stop();
    removeProxyPorts(path.value);
    if (router_settings.cleanup_on_exit) cleanUpOnExit(*provider);
  }
  dns_server->stop();
  auto dns = dns_server->counters();
  logInfo("DNS answered " + std::to_string(dns.udp_queries) + " UDP and " +
          std::to_string(dns.tcp_queries) + " TCP queries: " + std::to_string(dns.nxdomain) +
          " NXDOMAIN, " + std::to_string(dns.truncated) + " truncated, " +
          std::to_string(dns.malformed) + " malformed, " + std::to_string(dns.dropped) +
          " dropped; forwarded " + std::to_string(dns.forwarded) + " (" +
          std::to_string(dns.cache_hits) + " cache hits, " + std::to_string(dns.upstream_failures) +
          " upstream failures, " + std::to_string(dns.refused_over_limit) +
          " refused over the limit)");
  return exit_code;
}

}  // namespace

std::vector<std::string> serveSettingNames() {
  std::vector<std::string> known = {"db", "service-cidr", "log-format", "log-level"};
  for (const auto& name : dnsSettingNames()) known.push_back(name);
  for (const auto& name : healthSettingNames()) known.push_back(name);
  for (const auto& name : adminSettingNames()) known.push_back(name);
  return withRouterSettingNames(known);
}

void addServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  auto* command = app.add_subcommand(
      "serve", "Run the daemon: watch the registry and publish a snapshot on every change");
  command->add_option("--db", flags->registry.db, "Registry file (env SVCBOX_DB)");
  command->add_option("--config", flags->registry.config,
                      "YAML config file; keys are flag names without dashes (env SVCBOX_CONFIG)");
  command->add_option("--service-cidr", flags->registry.service_cidr,
                      "CIDR ClusterIPs come from; must match the registry's");
  addDnsFlags(*command, flags->dns);
  command->add_option("--log-format", flags->log_format, "text (default) or json");
  command->add_option("--log-level", flags->log_level, "trace, debug, info (default), warn, error");
  addRouterFlags(*command, flags->router);
  addHealthFlags(*command, flags->health);
  addAdminFlags(*command, flags->admin);
  command->footer(kExitCodesHelp);
  command->add_flag("--print-config", flags->print_config,
                    "Print every setting with where it came from, then exit");
  command->callback([flags] {
    int code = runServe(*flags);
    if (code != kExitOk) throw CommandError(code, "");
  });
}

}  // namespace svcbox::app
