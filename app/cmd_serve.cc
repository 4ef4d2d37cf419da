#include <malloc.h>
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
#include "app/metrics.h"
#include "app/proxy_ports.h"
#include "app/registry_writer.h"
#include "app/serve_admin.h"
#include "app/serve_dns.h"
#include "app/serve_health.h"
#include "app/serve_router.h"
#include "app/serve_stop.h"
#include "app/snapshot_diff.h"
#include "store/generation_guard.h"
#include "store/owner_lock.h"
#include "store/test_hooks.h"
#include "store/watcher.h"

namespace svcbox::app {
namespace {

constexpr size_t kMaxChangeLinesPerSnapshot = 20;
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

void logChanges(const store::SnapshotPtr& previous, const store::SnapshotPtr& current) {
  if (!previous) {
    auto count = [](size_t n, const char* noun) {
      return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
    };
    logInfo("registry loaded: version " + std::to_string(current->version()) + ", " +
            count(current->services().size(), "service") + ", " +
            count(current->pods().size(), "pod"));
  }
  auto lines = describeChanges(previous.get(), *current);
  if (!previous && lines.size() > kMaxChangeLinesPerSnapshot) return;
  for (size_t i = 0; i < lines.size() && i < kMaxChangeLinesPerSnapshot; ++i) {
    logInfo("snapshot " + std::to_string(current->version()) + ": " + lines[i]);
  }
  if (lines.size() > kMaxChangeLinesPerSnapshot) {
    logInfo("snapshot " + std::to_string(current->version()) + ": ... and " +
            std::to_string(lines.size() - kMaxChangeLinesPerSnapshot) + " more changes");
  }
}

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Commit to "in effect", for svcbox_network_programming_duration_seconds. Snapshots without a
// commit time (a registry last written by an older svcbox) are not counted.
void observeProgramming(ServeMetrics& metrics, const char* target,
                        const store::Snapshot& snapshot) {
  if (snapshot.committedMs() <= 0) return;
  int64_t latency_ms = std::max<int64_t>(0, wallClockMs() - snapshot.committedMs());
  metrics.observeProgramming(target, std::chrono::duration<double>(latency_ms / 1000.0));
}

// What DNS answers for the Services the userspace proxy listens for.
dns::ProxiedServices proxiedServices(const std::vector<router::userspace::PortMapping>& mapping) {
  dns::ProxiedServices out;
  for (const auto& port : mapping) {
    auto& service = out[{port.namespace_name, port.name}];
    service.address = port.address;
    service.ports[{port.protocol, port.service_port}] = port.listen_port;
  }
  return out;
}

// What /readyz reports: every part has come up, and serve still follows its registry.
struct Readiness {
  std::atomic<bool> registry_loaded{false};
  std::atomic<bool> dns_bound{false};
  // REDIRECT rules (userspace mode) report here; the iptables router through its stats.
  std::atomic<bool> rules_synced{false};
  const router::Router* router = nullptr;
  const store::GenerationGuard* guard = nullptr;
  std::vector<std::string> notReady() const {
    std::vector<std::string> reasons;
    if (!registry_loaded) reasons.push_back("registry not loaded yet");
    if (!dns_bound) reasons.push_back("DNS not listening yet");
    if (router) {
      auto stats = router->stats();
      if (stats.syncs == 0) {
        reasons.push_back(
            stats.failures == 0
                ? "first rule sync not done yet"
                : "no rule sync has succeeded yet: " + std::to_string(stats.failures) +
                      " attempts failed, retried with backoff; last: " + stats.last_failure);
      }
    } else if (!rules_synced) {
      reasons.push_back("first rule sync not done yet");
    }
    if (guard && guard->lag() > 0) {
      reasons.push_back("serve is not following its registry: the registry is " +
                        std::to_string(guard->lag()) +
                        " generations ahead of what serve publishes");
    }
    return reasons;
  }
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
// Gives freed memory back to the kernel at most once per period. A snapshot's compile and rule
// sync free most of what they allocate, scattered over the threads' malloc arenas, and glibc
// keeps those pages until asked: bench/hostile/soak (10,000 Services, 5 API writes a second) grew
// serve's RSS by 7 MiB in 8 minutes without this. Watcher thread only.
class MemoryTrim {
 public:
  explicit MemoryTrim(std::chrono::seconds period) : period_(period) {}
  void afterSnapshot() {
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < period_) return;
    last_ = now;
    malloc_trim(0);
  }

 private:
  std::chrono::seconds period_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

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
  auto parts = makeProxyParts(router_settings);
  auto& router = parts.router;
  auto& proxy = parts.proxy;
  auto& redirect = parts.redirect;
  if (proxy) {
    metrics.setProxySource([&proxy] { return proxy->stats(); });
    proxy->start();
  }
  if (redirect) redirect->startRepairs();
  if (router) {
    metrics.setRouterSource([&router] { return router->stats(); });
    // The first sync installs what may have been committed long ago: not counted.
    auto counted_version = std::make_shared<std::atomic<uint64_t>>(UINT64_MAX);
    router->setOnSynced([&metrics, counted_version](const store::SnapshotPtr& installed) {
      uint64_t last = counted_version->exchange(installed->version());
      if (last != UINT64_MAX && installed->version() > last) {
        observeProgramming(metrics, "rules", *installed);
      }
    });
  }
  auto prober = makeProber(default_probe, probes_in_flight, writer);
  metrics.setProbeSource([&prober] {
    auto c = prober->counters();
    return ProbeStats{c.tcp_success,     c.tcp_failure,     c.http_success, c.http_failure,
                      c.default_success, c.default_failure, c.sessions};
  });

  // The router only records the snapshot and wakes its own thread, so it goes first: its sync
  // (hundreds of milliseconds at 10,000 Services) then runs beside the zone compile instead of
  // after it. The userspace proxy goes before DNS too: a name must not point at a listener not
  // yet open. Then DNS, before anything slower (the prober, the log).
  dns::ProxiedServices proxied;
  std::vector<router::userspace::PortMapping> recorded_mapping;
  MemoryTrim trim(std::chrono::seconds(30));
  auto on_snapshot = [&](const store::SnapshotPtr& previous, const store::SnapshotPtr& current) {
    if (previous && current->committedMs() > 0) {
      logDebug("snapshot " + std::to_string(current->version()) + " loaded " +
               std::to_string(wallClockMs() - current->committedMs()) + " ms after its commit");
    }
    if (router) router->update(current);
    if (proxy) {
      auto mapping = proxy->update(current);
      if (mapping != recorded_mapping) {
        writeProxyPorts(path.value, mapping);
        recorded_mapping = mapping;
      }
      if (redirect) {
        router::SyncFailure failure;
        if (redirect->apply(current, mapping, failure)) {
          readiness.rules_synced = true;
        } else {
          logWarn("REDIRECT rules not written (retried with backoff): " + failure.message);
        }
      } else {
        proxied = proxiedServices(mapping);
      }
    }
    auto zone = dns_server->publish(current, proxy && !redirect ? &proxied : nullptr);
    if (previous) observeProgramming(metrics, "dns", *current);
    if (zone.unchanged) {
      logDebug("DNS zone unchanged by snapshot " + std::to_string(current->version()));
    } else {
      logDebug("DNS zone of snapshot " + std::to_string(current->version()) + ": " +
               std::to_string(zone.names) + " names, " + std::to_string(zone.bytes / 1024) +
               " KiB, compiled in " + std::to_string(zone.took.count() / 1000) + "." +
               std::to_string(zone.took.count() / 100 % 10) + " ms (" +
               std::to_string(zone.encoded) + " Services encoded)");
    }
    prober->update(current);
    logChanges(previous, current);
    trim.afterSnapshot();
  };
  store::Watcher watcher(
      std::move(registry), kWatchInterval, on_snapshot, [&on_replaced](const store::Error& error) {
        if (error.kind == store::ErrorKind::kReplaced) {
          on_replaced(error);
          return;
        }
        logWarn("registry read failed, keeping the last snapshot: " + error.message);
      });
  watcher.setTestPause(watcherTestPause());
  store::GenerationGuard guard([&path] { return store::Registry::peekGeneration(path.value); },
                               [&watcher]() -> std::optional<uint64_t> {
                                 auto current = watcher.current();
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
  readiness.router = router.get();
  readiness.guard = &guard;
  metrics.setSnapshotSource([&watcher] { return watcher.current(); });
  metrics.setRegistryErrorsSource([&watcher] { return watcher.errorCount(); });
  metrics.setGenerationLagSource([&guard] { return guard.lag(); });

  AdminHooks hooks;
  hooks.snapshot = [&watcher] { return watcher.current(); };
  hooks.writer = &writer;
  hooks.not_ready = [&readiness] { return readiness.notReady(); };
  hooks.metrics = [&metrics] { return metrics.render(); };
  auto admin = startAdminServer(admin_options, std::move(hooks));

  holdFirstLoadForTest();
  if (auto started = watcher.start(); !started) failWith(started.error());
  watcher_for_wake = &watcher;
  readiness.registry_loaded = true;
  startRouter(router.get(), watcher.current());
  // REDIRECT rules report their own first sync; the iptables router's stats speak for it.
  if (!redirect) readiness.rules_synced = true;
  guard.start();
  prober->start();
  // Loading the registry, compiling the zone and the first sync free most of what they
  // allocated, scattered among what stays; give those pages back before serving for days.
  malloc_trim(0);

  int exit_code = stop.wait([&] {
    if (router) router->requestFullSync();
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
  // Before the cleanup below, which a repair must not undo.
  if (redirect) redirect->stop();
  stopRouter(router.get(), router_settings);
  if (proxy) {
    proxy->stop();
    removeProxyPorts(path.value);
  }
  if (redirect && router_settings.cleanup_on_exit) {
    router::SyncFailure failure;
    bool changed = false;
    if (!router::cleanupAll(failure, changed)) logWarn("cleanup failed: " + failure.message);
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
