#include "store/rows.h"

#include <unordered_map>

namespace svcbox::store::rows {
namespace {

using sqlite::Statement;

Protocol parseProtocol(std::string_view text) {
  return text == "UDP" ? Protocol::kUdp : Protocol::kTcp;
}

std::string where(const std::optional<NameFilter>& filter, std::string_view table) {
  if (!filter) return "";
  if (filter->id != 0) return " WHERE " + std::string(table) + ".id = ?1";
  return " WHERE " + std::string(table) + ".namespace = ?1 AND " + std::string(table) +
         ".name = ?2";
}

void bindFilter(Statement& statement, const std::optional<NameFilter>& filter) {
  if (filter && filter->id != 0) {
    statement.bind(1, filter->id);
  } else if (filter) {
    statement.bind(1, filter->namespace_name).bind(2, filter->name);
  }
}

std::vector<IpAddress> decodeIps(std::string_view text) {
  std::vector<IpAddress> ips;
  while (!text.empty()) {
    auto comma = text.find(',');
    if (auto ip = IpAddress::parse(text.substr(0, comma))) ips.push_back(*ip);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return ips;
}

std::string encodeIps(const std::vector<IpAddress>& ips) {
  std::string text;
  for (const auto& ip : ips) {
    if (!text.empty()) text += ',';
    text += ip.toString();
  }
  return text;
}

// Child rows come ordered by parent id; the index finds the parent for each.
template <typename T>
std::unordered_map<int64_t, T*> indexById(Loaded<T>& loaded) {
  std::unordered_map<int64_t, T*> index;
  index.reserve(loaded.ids.size());
  for (size_t i = 0; i < loaded.ids.size(); ++i) index.emplace(loaded.ids[i], &loaded.objects[i]);
  return index;
}

template <typename T>
void add(Loaded<T>& loaded, int64_t id, T object) {
  loaded.ids.push_back(id);
  loaded.objects.push_back(std::move(object));
}

int64_t rowCount(sqlite::Connection& db, const char* table,
                 const std::optional<NameFilter>& filter) {
  return filter ? 1 : db.queryInteger(std::string("SELECT max(id) FROM ") + table);
}

std::string childQuery(std::string_view columns, std::string_view child, std::string_view parent,
                       std::string_view key, const std::optional<NameFilter>& filter,
                       std::string_view order) {
  std::string sql = "SELECT " + std::string(child) + "." + std::string(key) + ", " +
                    std::string(columns) + " FROM " + std::string(child);
  if (filter) {
    sql += " JOIN " + std::string(parent) + " ON " + std::string(parent) +
           ".id = " + std::string(child) + "." + std::string(key) + where(filter, parent);
  }
  return sql + " ORDER BY " + std::string(order);
}

// Runs an upsert ending in RETURNING id, then drops the row's children so they can be rewritten.
int64_t upsertClearingChildren(
    sqlite::Connection& db, Statement& upsert,
    std::initializer_list<std::pair<const char*, const char*>> children) {
  upsert.step();
  int64_t row = upsert.integer(0);
  upsert.reset();
  for (const auto& [table, key] : children) {
    db.prepare(std::string("DELETE FROM ") + table + " WHERE " + key + " = ?1").bind(1, row).run();
  }
  return row;
}

std::string encodeLabels(const Labels& labels) {
  // Label keys and values cannot hold '=' or '\n', so this needs no escaping.
  std::string text;
  for (const auto& [key, value] : labels) {
    text += key;
    text += '=';
    text += value;
    text += '\n';
  }
  return text;
}

Labels decodeLabels(std::string_view text) {
  Labels labels;
  while (!text.empty()) {
    auto end = text.find('\n');
    auto line = text.substr(0, end);
    auto equals = line.find('=');
    if (equals != std::string_view::npos) {
      labels.emplace(std::string(line.substr(0, equals)), std::string(line.substr(equals + 1)));
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return labels;
}

}  // namespace

Loaded<Service> loadServices(sqlite::Connection& db, const std::optional<NameFilter>& filter) {
  Loaded<Service> services;
  services.ids.reserve(rowCount(db, "services", filter));
  services.objects.reserve(services.ids.capacity());
  Statement& rows = db.prepare(
      "SELECT id, namespace, name, type, external_name, headless, cluster_ip, selector, "
      "session_affinity, affinity_timeout, created_ms FROM services" +
      where(filter, "services") + " ORDER BY namespace, name");
  bindFilter(rows, filter);
  while (rows.step()) {
    Service service;
    service.namespace_name = rows.text(1);
    service.name = rows.text(2);
    service.type =
        rows.text(3) == "ExternalName" ? ServiceType::kExternalName : ServiceType::kClusterIP;
    service.external_name = rows.text(4);
    service.headless = rows.integer(5) != 0;
    if (!rows.isNull(6)) service.cluster_ip = IpAddress::parse(rows.text(6));
    if (!rows.isNull(7)) service.selector = decodeLabels(rows.text(7));
    service.session_affinity =
        rows.text(8) == "ClientIP" ? SessionAffinity::kClientIP : SessionAffinity::kNone;
    service.affinity_timeout_seconds = static_cast<uint32_t>(rows.integer(9));
    service.created_ms = rows.integer(10);
    add(services, rows.integer(0), std::move(service));
  }
  auto index = indexById(services);
  Statement& ports =
      db.prepare(childQuery("service_ports.name, protocol, port, target_port, target_port_name",
                            "service_ports", "services", "service_id", filter, "service_id, idx"));
  bindFilter(ports, filter);
  while (ports.step()) {
    auto it = index.find(ports.integer(0));
    if (it == index.end()) continue;
    ServicePort port;
    port.name = ports.text(1);
    port.protocol = parseProtocol(ports.text(2));
    port.port = static_cast<uint16_t>(ports.integer(3));
    port.target_port.number = static_cast<uint16_t>(ports.integer(4));
    port.target_port.name = ports.text(5);
    it->second->ports.push_back(std::move(port));
  }
  return services;
}

Loaded<Pod> loadPods(sqlite::Connection& db, const std::optional<NameFilter>& filter) {
  Loaded<Pod> pods;
  pods.ids.reserve(rowCount(db, "pods", filter));
  pods.objects.reserve(pods.ids.capacity());
  Statement& rows = db.prepare(
      "SELECT id, namespace, name, labels, ips, container_count, probe_kind, probe_port, "
      "probe_port_name, probe_path, probe_scheme, probe_initial_delay, probe_period, "
      "probe_timeout, probe_success, probe_failure, ready, ready_reason, "
      "ready_changed_ms, created_ms, hostname, subdomain FROM pods" +
      where(filter, "pods") + " ORDER BY namespace, name");
  bindFilter(rows, filter);
  while (rows.step()) {
    Pod pod;
    pod.namespace_name = rows.text(1);
    pod.name = rows.text(2);
    pod.labels = decodeLabels(rows.text(3));
    pod.ips = decodeIps(rows.text(4));
    pod.container_count = static_cast<uint32_t>(rows.integer(5));
    if (!rows.isNull(6)) {
      Probe probe;
      probe.kind = rows.text(6) == "httpGet" ? Probe::Kind::kHttpGet : Probe::Kind::kTcpSocket;
      probe.port.number = static_cast<uint16_t>(rows.integer(7));
      probe.port.name = rows.text(8);
      probe.path = rows.text(9);
      probe.scheme = rows.text(10);
      probe.initial_delay_seconds = static_cast<uint32_t>(rows.integer(11));
      probe.period_seconds = static_cast<uint32_t>(rows.integer(12));
      probe.timeout_seconds = static_cast<uint32_t>(rows.integer(13));
      probe.success_threshold = static_cast<uint32_t>(rows.integer(14));
      probe.failure_threshold = static_cast<uint32_t>(rows.integer(15));
      pod.readiness_probe = std::move(probe);
    }
    pod.readiness.ready = rows.integer(16) != 0;
    pod.readiness.reason = rows.text(17);
    pod.readiness.changed_ms = rows.integer(18);
    pod.created_ms = rows.integer(19);
    pod.hostname = rows.text(20);
    pod.subdomain = rows.text(21);
    add(pods, rows.integer(0), std::move(pod));
  }
  auto index = indexById(pods);
  Statement& ports = db.prepare(childQuery("container, pod_ports.name, container_port, protocol",
                                           "pod_ports", "pods", "pod_id", filter, "pod_id, idx"));
  bindFilter(ports, filter);
  while (ports.step()) {
    auto it = index.find(ports.integer(0));
    if (it == index.end()) continue;
    it->second->ports.push_back(
        ContainerPort{std::string(ports.text(1)), std::string(ports.text(2)),
                      static_cast<uint16_t>(ports.integer(3)), parseProtocol(ports.text(4))});
  }
  return pods;
}

Loaded<EndpointSet> loadEndpointSets(sqlite::Connection& db,
                                     const std::optional<NameFilter>& filter,
                                     EndpointSet::Kind kind) {
  Loaded<EndpointSet> sets;
  std::string kind_name = endpointSetKindName(kind);
  // With a filter, ?1/?2 are namespace and name; the kind is ?3 (or ?1 without a filter).
  std::string kind_param = filter ? "?3" : "?1";
  std::string kind_clause =
      (filter ? " AND " : " WHERE ") + std::string("endpoint_sets.kind = ") + kind_param;
  Statement& rows =
      db.prepare("SELECT id, namespace, name, service_name, created_ms FROM endpoint_sets" +
                 where(filter, "endpoint_sets") + kind_clause + " ORDER BY id");
  bindFilter(rows, filter);
  rows.bind(filter ? 3 : 1, kind_name);
  while (rows.step()) {
    EndpointSet set;
    set.kind = kind;
    set.namespace_name = rows.text(1);
    set.name = rows.text(2);
    set.service_name = rows.text(3);
    set.created_ms = rows.integer(4);
    add(sets, rows.integer(0), std::move(set));
  }
  auto index = indexById(sets);
  auto group = [](EndpointSet& set, int64_t number) -> EndpointGroup& {
    if (set.groups.size() <= static_cast<size_t>(number)) set.groups.resize(number + 1);
    return set.groups[number];
  };
  Statement& addresses =
      db.prepare(childQuery("grp, ip, ready, hostname, target_pod", "endpoint_addresses",
                            "endpoint_sets", "set_id", filter, "set_id, grp, idx"));
  bindFilter(addresses, filter);
  while (addresses.step()) {
    auto it = index.find(addresses.integer(0));
    auto ip = IpAddress::parse(addresses.text(2));
    if (it == index.end() || !ip) continue;
    group(*it->second, addresses.integer(1))
        .addresses.push_back(EndpointAddress{*ip, addresses.integer(3) != 0,
                                             std::string(addresses.text(4)),
                                             std::string(addresses.text(5))});
  }
  Statement& ports =
      db.prepare(childQuery("grp, endpoint_ports.name, port, protocol", "endpoint_ports",
                            "endpoint_sets", "set_id", filter, "set_id, grp, idx"));
  bindFilter(ports, filter);
  while (ports.step()) {
    auto it = index.find(ports.integer(0));
    if (it == index.end()) continue;
    group(*it->second, ports.integer(1))
        .ports.push_back(EndpointPort{std::string(ports.text(2)),
                                      static_cast<uint16_t>(ports.integer(3)),
                                      parseProtocol(ports.text(4))});
  }
  return sets;
}

void writeService(sqlite::Connection& db, int64_t id, const Service& service) {
  Statement& upsert = db.prepare(
      "INSERT INTO services (id, namespace, name, type, external_name, headless, "
      "cluster_ip, selector, session_affinity, affinity_timeout, created_ms, revision) VALUES "
      // Each written row records the generation its transaction will commit.
      "(NULLIF(?1, 0), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
      "(SELECT value + 1 FROM meta WHERE key = 'generation')) "
      "ON CONFLICT (id) DO UPDATE SET type = ?4, external_name = ?5, headless = ?6, "
      "cluster_ip = ?7, selector = ?8, session_affinity = ?9, affinity_timeout = ?10, "
      "revision = excluded.revision RETURNING id");
  upsert.bind(1, id)
      .bind(2, service.namespace_name)
      .bind(3, service.name)
      .bind(4, service.type == ServiceType::kExternalName ? "ExternalName" : "ClusterIP")
      .bind(5, service.external_name)
      .bind(6, int64_t{service.headless})
      .bindOptional(
          7, service.cluster_ip ? std::optional(service.cluster_ip->toString()) : std::nullopt)
      .bindOptional(
          8, service.selector ? std::optional(encodeLabels(*service.selector)) : std::nullopt)
      .bind(9, service.session_affinity == SessionAffinity::kClientIP ? "ClientIP" : "None")
      .bind(10, int64_t{service.affinity_timeout_seconds})
      .bind(11, service.created_ms);
  int64_t row = upsertClearingChildren(db, upsert, {{"service_ports", "service_id"}});
  Statement& insert = db.prepare(
      "INSERT INTO service_ports (service_id, idx, name, protocol, port, target_port, "
      "target_port_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  for (size_t i = 0; i < service.ports.size(); ++i) {
    const auto& port = service.ports[i];
    insert.bind(1, row)
        .bind(2, static_cast<int64_t>(i))
        .bind(3, port.name)
        .bind(4, protocolName(port.protocol))
        .bind(5, int64_t{port.port})
        .bind(6, int64_t{port.target_port.number})
        .bind(7, port.target_port.name)
        .run();
  }
}

void writePod(sqlite::Connection& db, int64_t id, const Pod& pod) {
  Statement& upsert = db.prepare(
      "INSERT INTO pods (id, namespace, name, labels, ips, container_count, probe_kind, "
      "probe_port, probe_port_name, probe_path, probe_scheme, probe_initial_delay, "
      "probe_period, probe_timeout, probe_success, probe_failure, ready, ready_reason, "
      "ready_changed_ms, created_ms, hostname, subdomain, revision) VALUES (NULLIF(?1, 0), "
      "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
      "?20, ?21, ?22, (SELECT value + 1 FROM meta WHERE key = 'generation')) "
      "ON CONFLICT (id) DO UPDATE SET labels = ?4, ips = ?5, container_count = ?6, "
      "probe_kind = ?7, probe_port = ?8, probe_port_name = ?9, probe_path = ?10, "
      "probe_scheme = ?11, probe_initial_delay = ?12, probe_period = ?13, "
      "probe_timeout = ?14, probe_success = ?15, probe_failure = ?16, ready = ?17, "
      "ready_reason = ?18, ready_changed_ms = ?19, hostname = ?21, subdomain = ?22, "
      "revision = excluded.revision RETURNING id");
  Probe probe = pod.readiness_probe.value_or(Probe{});
  upsert.bind(1, id)
      .bind(2, pod.namespace_name)
      .bind(3, pod.name)
      .bind(4, encodeLabels(pod.labels))
      .bind(5, encodeIps(pod.ips))
      .bind(6, int64_t{pod.container_count})
      .bindOptional(7, pod.readiness_probe
                           ? std::optional<std::string>(
                                 probe.kind == Probe::Kind::kHttpGet ? "httpGet" : "tcpSocket")
                           : std::nullopt)
      .bind(8, int64_t{probe.port.number})
      .bind(9, probe.port.name)
      .bind(10, probe.path)
      .bind(11, probe.scheme)
      .bind(12, int64_t{probe.initial_delay_seconds})
      .bind(13, int64_t{probe.period_seconds})
      .bind(14, int64_t{probe.timeout_seconds})
      .bind(15, int64_t{probe.success_threshold})
      .bind(16, int64_t{probe.failure_threshold})
      .bind(17, int64_t{pod.readiness.ready})
      .bind(18, pod.readiness.reason)
      .bind(19, pod.readiness.changed_ms)
      .bind(20, pod.created_ms)
      .bind(21, pod.hostname)
      .bind(22, pod.subdomain);
  int64_t row = upsertClearingChildren(db, upsert, {{"pod_ports", "pod_id"}});
  Statement& insert = db.prepare(
      "INSERT INTO pod_ports (pod_id, idx, container, name, container_port, protocol) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  for (size_t i = 0; i < pod.ports.size(); ++i) {
    const auto& port = pod.ports[i];
    insert.bind(1, row)
        .bind(2, static_cast<int64_t>(i))
        .bind(3, port.container)
        .bind(4, port.name)
        .bind(5, int64_t{port.container_port})
        .bind(6, protocolName(port.protocol))
        .run();
  }
}

void writeEndpointSet(sqlite::Connection& db, int64_t id, const EndpointSet& set) {
  Statement& upsert = db.prepare(
      "INSERT INTO endpoint_sets (id, kind, namespace, name, service_name, created_ms) "
      "VALUES (NULLIF(?1, 0), ?2, ?3, ?4, ?5, ?6) "
      "ON CONFLICT (id) DO UPDATE SET service_name = ?5 RETURNING id");
  upsert.bind(1, id)
      .bind(2, endpointSetKindName(set.kind))
      .bind(3, set.namespace_name)
      .bind(4, set.name)
      .bind(5, set.service_name)
      .bind(6, set.created_ms);
  int64_t row = upsertClearingChildren(
      db, upsert, {{"endpoint_addresses", "set_id"}, {"endpoint_ports", "set_id"}});
  Statement& address_insert = db.prepare(
      "INSERT INTO endpoint_addresses (set_id, grp, idx, ip, ready, hostname, "
      "target_pod) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  Statement& port_insert = db.prepare(
      "INSERT INTO endpoint_ports (set_id, grp, idx, name, port, protocol) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  for (size_t g = 0; g < set.groups.size(); ++g) {
    const auto& group = set.groups[g];
    for (size_t i = 0; i < group.addresses.size(); ++i) {
      const auto& address = group.addresses[i];
      address_insert.bind(1, row)
          .bind(2, static_cast<int64_t>(g))
          .bind(3, static_cast<int64_t>(i))
          .bind(4, address.ip.toString())
          .bind(5, int64_t{address.ready})
          .bind(6, address.hostname)
          .bind(7, address.target_pod)
          .run();
    }
    for (size_t i = 0; i < group.ports.size(); ++i) {
      const auto& port = group.ports[i];
      port_insert.bind(1, row)
          .bind(2, static_cast<int64_t>(g))
          .bind(3, static_cast<int64_t>(i))
          .bind(4, port.name)
          .bind(5, int64_t{port.port})
          .bind(6, protocolName(port.protocol))
          .run();
    }
  }
}

}  // namespace svcbox::store::rows
