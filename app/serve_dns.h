#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/config.h"
#include "app/metrics.h"
#include "dns/server.h"
#include "router/userspace/port_mapping.h"

// serve's DNS flags, their settings and the server they make.
namespace svcbox::app {

struct DnsFlags {
  std::vector<std::string> listen;
  std::vector<std::string> upstream;
  std::vector<std::string> allow_recursion;
  std::optional<std::string> cluster_domain;
  std::optional<std::string> ttl;
  std::optional<std::string> max_concurrent_forwards;
  std::optional<std::string> threads;
  std::optional<std::string> tcp_max_connections;
  std::optional<std::string> tcp_max_connections_per_client;
  std::optional<std::string> tcp_max_queries_per_connection;
  std::optional<std::string> tcp_max_connection_age;
  std::optional<std::string> tcp_idle_timeout;
  std::optional<std::string> tcp_max_unsent;
};

void addDnsFlags(CLI::App& command, DnsFlags& flags);
// The setting names addDnsFlags adds, for the config file's check.
std::vector<std::string> dnsSettingNames();
// Resolves every DNS setting (flag > environment > config > default); throws CommandError with
// the offending setting named when one is malformed.
dns::DnsOptions resolveDnsOptions(Settings& settings, const DnsFlags& flags);
// Binds and starts the server, or throws CommandError naming --dns-listen.
std::unique_ptr<dns::DnsServer> startDnsServer(dns::DnsOptions options);

// serve's DNS consumer of each snapshot: publishes it (with the userspace relay's `listeners`
// where DNS answers those), counts commit-to-DNS latency and logs what the compile did.
void publishToDns(dns::DnsServer& server, ServeMetrics& metrics, const store::SnapshotPtr& previous,
                  const store::SnapshotPtr& current,
                  const std::vector<router::userspace::PortMapping>* listeners);

}  // namespace svcbox::app
