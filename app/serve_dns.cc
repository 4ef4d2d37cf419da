#include "app/serve_dns.h"

#include "app/common.h"
#include "app/log.h"
#include "dns/wire.h"

namespace svcbox::app {
namespace {

constexpr const char* kResolvConf = "/etc/resolv.conf";
constexpr uint32_t kMaxTtl = 0x7FFFFFFF;

std::optional<std::string> joined(const std::vector<std::string>& values) {
  if (values.empty()) return std::nullopt;
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : ",") + value;
  return text;
}

[[noreturn]] void badSetting(const Setting& setting, const std::string& name,
                             const std::string& what) {
  throw CommandError(kExitUserError,
                     "--" + name + " (" + setting.source + "): \"" + setting.value + "\": " + what);
}

uint64_t number(const Setting& setting, const std::string& name, uint64_t max) {
  auto value = parseWholeNumber(setting.value, max);
  if (!value) badSetting(setting, name, "must be a whole number from 0 to " + std::to_string(max));
  return *value;
}

dns::TcpLimits resolveTcpLimits(Settings& settings, const DnsFlags& flags) {
  auto positive = [&](const char* name, const std::optional<std::string>& flag,
                      const char* fallback, uint64_t max) {
    auto setting = settings.resolve(name, flag, fallback);
    uint64_t value = number(setting, name, max);
    if (value == 0) badSetting(setting, name, "must be at least 1");
    return static_cast<size_t>(value);
  };
  dns::TcpLimits limits;
  limits.max_connections =
      positive("dns-tcp-max-connections", flags.tcp_max_connections, "1024", 1000000);
  limits.max_connections_per_client = positive("dns-tcp-max-connections-per-client",
                                               flags.tcp_max_connections_per_client, "32", 1000000);
  // 0, no limit, as NSD's tcp-query-count and dnsdist's default: a client that pipelines loses
  // the queries it sent after the last one allowed (few clients retry them), and the other bounds
  // already cap what a connection holds.
  limits.max_queries_per_connection =
      static_cast<size_t>(number(settings.resolve("dns-tcp-max-queries-per-connection",
                                                  flags.tcp_max_queries_per_connection, "0"),
                                 "dns-tcp-max-queries-per-connection", 1000000000));
  // 0, no limit, as dnsdist's default: closing a busy connection loses the queries its client
  // pipelined past that moment (bench/hostile/soak lost one so), and the idle timeout already
  // ends connections whose client stops reading.
  auto age = settings.resolve("dns-tcp-max-connection-age", flags.tcp_max_connection_age, "0");
  limits.max_connection_age = age.value == "0" ? std::chrono::milliseconds(0)
                                               : parseDuration(age, "dns-tcp-max-connection-age");
  limits.idle_timeout =
      parseDuration(settings.resolve("dns-tcp-idle-timeout", flags.tcp_idle_timeout, "10s"),
                    "dns-tcp-idle-timeout");
  limits.max_unsent_bytes = positive("dns-tcp-max-unsent", flags.tcp_max_unsent, "32768", 1u << 30);
  return limits;
}

}  // namespace

void addDnsFlags(CLI::App& command, DnsFlags& flags) {
  command.add_option("--dns-listen", flags.listen,
                     "ADDR:PORT for DNS over UDP and TCP; repeatable (default 127.0.0.1:53)");
  command.add_option("--cluster-domain", flags.cluster_domain,
                     "Cluster domain (default cluster.local)");
  command.add_option("--ttl", flags.ttl, "TTL of cluster answers in seconds (default 5)");
  command.add_option("--upstream", flags.upstream,
                     "IP[:PORT] of a resolver for other names; repeatable (default: the "
                     "nameservers of /etc/resolv.conf)");
  command.add_option("--allow-recursion", flags.allow_recursion,
                     "CIDR of clients whose other names are forwarded; repeatable (default "
                     "loopback and private ranges)");
  command.add_option("--max-concurrent-forwards", flags.max_concurrent_forwards,
                     "Forwarded queries in flight before REFUSED (default 1000)");
  command.add_option("--dns-threads", flags.threads,
                     "UDP worker threads (default 1; more only helps with several free cores)");
  command.add_option("--dns-tcp-max-connections", flags.tcp_max_connections,
                     "DNS-over-TCP connections open at once (default 1024); when full, one whose "
                     "client is not reading makes room, else the new one is closed");
  command.add_option("--dns-tcp-max-connections-per-client", flags.tcp_max_connections_per_client,
                     "DNS-over-TCP connections from one address (default 32)");
  command.add_option("--dns-tcp-max-queries-per-connection", flags.tcp_max_queries_per_connection,
                     "Queries one TCP connection may send before serve closes it (default 0: no "
                     "limit)");
  command.add_option("--dns-tcp-max-connection-age", flags.tcp_max_connection_age,
                     "How long a TCP connection may stay open at all (default 0: no limit)");
  command.add_option(
      "--dns-tcp-idle-timeout", flags.tcp_idle_timeout,
      "Close a TCP connection whose client read nothing for this long (default 10s)");
  command.add_option("--dns-tcp-max-unsent", flags.tcp_max_unsent,
                     "Bytes of answers a TCP client may leave unread before serve stops reading "
                     "its queries (default 32768)");
}

std::vector<std::string> dnsSettingNames() {
  return {"dns-listen",
          "cluster-domain",
          "ttl",
          "upstream",
          "allow-recursion",
          "max-concurrent-forwards",
          "dns-threads",
          "dns-tcp-max-connections",
          "dns-tcp-max-connections-per-client",
          "dns-tcp-max-queries-per-connection",
          "dns-tcp-max-connection-age",
          "dns-tcp-idle-timeout",
          "dns-tcp-max-unsent"};
}

dns::DnsOptions resolveDnsOptions(Settings& settings, const DnsFlags& flags) {
  dns::DnsOptions options;
  auto listen = settings.resolve("dns-listen", joined(flags.listen), "127.0.0.1:53");
  for (const auto& text : splitCommaList(listen.value)) {
    auto address = dns::parseListenAddress(text);
    if (!address) badSetting(listen, "dns-listen", address.error().message);
    options.listen.push_back(*address);
  }
  if (options.listen.empty()) badSetting(listen, "dns-listen", "give at least one ADDR:PORT");

  auto domain = settings.resolve("cluster-domain", flags.cluster_domain, "cluster.local");
  std::string wire = dns::nameToWire(domain.value);
  if (wire.size() <= 1) badSetting(domain, "cluster-domain", "not a valid domain name");
  options.zone.domain = dns::wireToName(wire);
  options.zone.domain.pop_back();  // no trailing dot
  options.zone.ttl =
      static_cast<uint32_t>(number(settings.resolve("ttl", flags.ttl, "5"), "ttl", kMaxTtl));
  for (const auto& address : options.listen) {
    if (!address.ip.isUnspecified()) {
      options.zone.ns_address = address.ip;
      break;
    }
  }

  auto upstream = settings.find("upstream", joined(flags.upstream));
  if (upstream) {
    for (const auto& text : splitCommaList(upstream->value)) {
      auto parsed = dns::parseUpstream(text);
      if (!parsed) badSetting(*upstream, "upstream", parsed.error().message);
      options.forwarder.upstreams.push_back(*parsed);
    }
  } else {
    std::vector<dns::OwnListener> own;
    for (const auto& address : options.listen) own.push_back({address.ip, address.port});
    options.forwarder.upstreams =
        dns::upstreamsFromResolvConf(kResolvConf, own, dns::localAddresses());
    std::string list;
    for (const auto& item : options.forwarder.upstreams)
      list += (list.empty() ? "" : ",") + item.toString();
    settings.resolve("upstream", std::nullopt,
                     list.empty() ? "none (no usable nameserver in /etc/resolv.conf)"
                                  : list + " (the nameservers of /etc/resolv.conf)");
  }

  auto recursion = settings.find("allow-recursion", joined(flags.allow_recursion));
  if (recursion) {
    for (const auto& text : splitCommaList(recursion->value)) {
      auto cidr = store::Cidr::parse(text);
      if (!cidr) badSetting(*recursion, "allow-recursion", "\"" + text + "\" is not a CIDR");
      options.allow_recursion.push_back(*cidr);
    }
  } else {
    options.allow_recursion = dns::defaultRecursionCidrs();
    std::string list;
    for (const auto& cidr : options.allow_recursion)
      list += (list.empty() ? "" : ",") + cidr.toString();
    settings.resolve("allow-recursion", std::nullopt, list);
  }
  options.forwarder.max_concurrent =
      number(settings.resolve("max-concurrent-forwards", flags.max_concurrent_forwards, "1000"),
             "max-concurrent-forwards", 1000000);
  options.threads = number(settings.resolve("dns-threads", flags.threads, "1"), "dns-threads", 64);
  if (options.threads == 0) options.threads = 1;
  options.tcp = resolveTcpLimits(settings, flags);
  return options;
}

std::unique_ptr<dns::DnsServer> startDnsServer(dns::DnsOptions options) {
  auto server = std::make_unique<dns::DnsServer>(std::move(options));
  if (auto bound = server->bind(); !bound)
    throw CommandError(kExitUserError, bound.error().message);
  server->start();
  std::string addresses;
  for (const auto& address : server->boundAddresses()) {
    addresses += (addresses.empty() ? "" : ", ") + address;
  }
  std::string upstreams;
  for (const auto& upstream : server->options().forwarder.upstreams) {
    upstreams += (upstreams.empty() ? "" : ", ") + upstream.toString();
  }
  logInfo("DNS listening on " + addresses + " (UDP and TCP), zone " +
          server->options().zone.domain + ", forwarding to " +
          (upstreams.empty() ? "nobody (other names get SERVFAIL)" : upstreams));
  return server;
}

namespace {

// What DNS answers for the Services the userspace relay listens for.
dns::ProxiedServices proxiedServices(const std::vector<router::userspace::PortMapping>& mapping) {
  dns::ProxiedServices out;
  for (const auto& port : mapping) {
    auto& service = out[{port.namespace_name, port.name}];
    service.address = port.address;
    service.ports[{port.protocol, port.service_port}] = port.listen_port;
  }
  return out;
}

}  // namespace

void publishToDns(dns::DnsServer& server, ServeMetrics& metrics, const store::SnapshotPtr& previous,
                  const store::SnapshotPtr& current,
                  const std::vector<router::userspace::PortMapping>* listeners) {
  if (previous && current->committedMs() > 0) {
    logDebug("snapshot " + std::to_string(current->version()) + " loaded " +
             std::to_string(wallClockMs() - current->committedMs()) + " ms after its commit");
  }
  dns::DnsServer::Published zone;
  if (listeners) {
    auto proxied = proxiedServices(*listeners);
    zone = server.publish(current, &proxied);
  } else {
    zone = server.publish(current, nullptr);
  }
  if (previous) observeProgramming(metrics, "dns", *current);
  if (zone.unchanged) {
    logDebug("DNS zone unchanged by snapshot " + std::to_string(current->version()));
    return;
  }
  logDebug("DNS zone of snapshot " + std::to_string(current->version()) + ": " +
           std::to_string(zone.names) + " names, " + std::to_string(zone.bytes / 1024) +
           " KiB, compiled in " + std::to_string(zone.took.count() / 1000) + "." +
           std::to_string(zone.took.count() / 100 % 10) + " ms (" + std::to_string(zone.encoded) +
           " Services encoded)");
}

}  // namespace svcbox::app
