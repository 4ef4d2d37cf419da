#include "store/registry.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include <boost/container/flat_map.hpp>

#include "store/allocator.h"
#include "store/rows.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/validation.h"

namespace svcbox::store {
namespace {

using sqlite::Connection;
using sqlite::SqliteError;
using sqlite::Transaction;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error fromSqlite(const SqliteError& error, const std::string& path) {
  if (error.code() == SQLITE_BUSY || error.code() == SQLITE_LOCKED) {
    return Error{ErrorKind::kBusy,
                 "registry busy: another process held " + path +
                     " for writing longer than the busy timeout; try again",
                 {}};
  }
  if (error.code() == SQLITE_NOTADB || error.code() == SQLITE_CORRUPT) {
    // Not svcbox's failure: the user pointed it at this file, and must point it elsewhere.
    return Error{ErrorKind::kInvalid,
                 path + " is not a usable svcbox registry (SQLite: " + error.what() +
                     "); point --db at another file or restore a backup",
                 {}};
  }
  return Error{ErrorKind::kInternal, "registry " + path + ": " + error.what(), {}};
}

static_assert(kMigrationCount == kSchemaVersion, "a migration was added: raise kSchemaVersion");

void checkSchemaVersion(int64_t version) {
  if (version > kMigrationCount) {
    throw std::runtime_error("the registry has schema version " + std::to_string(version) +
                             ", newer than this svcbox understands (" +
                             std::to_string(kMigrationCount) + "); upgrade svcbox");
  }
}

void migrate(Connection& db) {
  // Most opens find the schema current; only a migration needs the write lock.
  int64_t version = db.queryInteger("PRAGMA user_version");
  checkSchemaVersion(version);
  if (version == kMigrationCount) return;
  Transaction transaction(db, Transaction::Mode::kWrite);
  version = db.queryInteger("PRAGMA user_version");  // another process may have migrated
  checkSchemaVersion(version);
  if (version == kMigrationCount) return;
  for (int64_t step = version; step < kMigrationCount; ++step) db.exec(kMigrations[step]);
  db.exec("PRAGMA user_version = " + std::to_string(kMigrationCount));
  transaction.commit();
}

std::optional<std::string> metaValue(Connection& db, const std::string& key) {
  auto& query = db.prepare("SELECT value FROM meta WHERE key = ?1");
  query.bind(1, key);
  if (!query.step()) return std::nullopt;
  std::string value(query.text(0));
  query.reset();
  return value;
}

// A number the registry keeps in meta. A row edited by hand to hold something else is an error
// for the caller to report, not an exception that would end the thread reading the snapshot.
Result<int64_t> metaNumber(Connection& db, const std::string& key) {
  std::string text = metaValue(db, key).value_or("0");
  int64_t value = 0;
  auto [end, problem] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (problem != std::errc() || end != text.data() + text.size()) {
    return Error{ErrorKind::kInternal,
                 "the registry's meta row " + key + " holds \"" + text +
                     "\", not a number (edited by hand?)",
                 ""};
  }
  return value;
}

void setMeta(Connection& db, const std::string& key, const std::string& value) {
  db.prepare(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2")
      .bind(1, key)
      .bind(2, value)
      .run();
}

// Every commit that changes objects bumps the generation and records when it committed, so a
// snapshot can tell how long its change took to reach DNS answers and rules.
void bumpGeneration(Connection& db) {
  db.exec("UPDATE meta SET value = value + 1 WHERE key = 'generation'");
  setMeta(db, "committed_ms", std::to_string(nowMs()));
}

// The CIDR this registry allocates from. The first allocating command records it; later ones
// must agree, because the addresses already handed out come from it.
Result<Cidr> serviceCidrFor(Connection& db, const CidrChoice& choice) {
  auto stored_text = metaValue(db, "service_cidr");
  if (!stored_text) {
    Cidr cidr = choice.requested.value_or(*Cidr::parse(kDefaultServiceCidr));
    setMeta(db, "service_cidr", cidr.toString());
    return cidr;
  }
  auto stored = Cidr::parse(*stored_text);
  if (!stored) {
    return Error{ErrorKind::kInternal,
                 "the registry records an unreadable service CIDR \"" + *stored_text + "\"",
                 {}};
  }
  if (choice.requested && *choice.requested != *stored) {
    return Error{ErrorKind::kConflict,
                 "the registry " + db.path() + " allocates ClusterIPs from " + stored->toString() +
                     ", but " + choice.source + " asks for " + choice.requested->toString() +
                     "; use " + stored->toString() + " or a new registry file",
                 {}};
  }
  return *stored;
}

const char* defaultProbeName(DefaultProbe probe) {
  return probe == DefaultProbe::kTcp ? "tcp" : "none";
}

// Set by `serve --default-probe`; a registry no serve has run on has none.
DefaultProbe storedDefaultProbe(Connection& db) {
  return metaValue(db, "default_probe") == std::optional<std::string>("tcp") ? DefaultProbe::kTcp
                                                                             : DefaultProbe::kNone;
}

Readiness initialReadiness(const Pod& pod, int64_t now, DefaultProbe default_probe) {
  if (pod.ips.empty()) return Readiness{false, kNoPodIp, now};
  if (pod.readiness_probe) return Readiness{false, kAwaitingProbe, now};
  if (default_probe == DefaultProbe::kTcp) return Readiness{false, kAwaitingDefaultProbe, now};
  return Readiness{true, kNoReadinessProbe, now};
}

// What a probe sees; if any of it changes, earlier verdicts no longer apply.
auto probedShape(const Pod& pod) { return std::tie(pod.ips, pod.ports, pod.readiness_probe); }

rows::NameFilter filterFor(const std::string& namespace_name, const std::string& name) {
  return rows::NameFilter{namespace_name, name};
}

struct ApplyContext {
  Connection& db;
  ClusterIpAllocator& allocator;
  int64_t now;
  DefaultProbe default_probe;
};

Result<Change> applyService(ApplyContext& context, Service service) {
  ObjectRef ref{ObjectKind::kService, service.namespace_name, service.name};
  auto existing = rows::loadServices(context.db, filterFor(service.namespace_name, service.name));
  if (existing.empty()) {
    if (service.type == ServiceType::kClusterIP && !service.headless && !service.cluster_ip) {
      auto address = context.allocator.allocate();
      if (!address) return address.error();
      service.cluster_ip = *address;
    }
    service.created_ms = context.now;
    rows::writeService(context.db, 0, service);
    return Change{ref, Change::Action::kCreated, serviceAddressText(service), {}};
  }
  int64_t id = existing.ids.front();
  auto& old = existing.objects.front();
  service.created_ms = old.created_ms;
  bool both_cluster_ip =
      service.type == ServiceType::kClusterIP && old.type == ServiceType::kClusterIP;
  if (both_cluster_ip && service.headless != old.headless) {
    return invalid("spec.clusterIP", "the field is immutable: the Service is " +
                                         serviceAddressText(old) +
                                         "; delete it first to change that");
  }
  if (both_cluster_ip && !service.headless) {
    if (service.cluster_ip && service.cluster_ip != old.cluster_ip) {
      return invalid("spec.clusterIP", "the field is immutable: the Service holds " +
                                           old.cluster_ip->toString() +
                                           "; delete it first to change it");
    }
    service.cluster_ip = old.cluster_ip;
  } else if (service.type == ServiceType::kClusterIP && !service.headless && !service.cluster_ip) {
    auto address = context.allocator.allocate();
    if (!address) return address.error();
    service.cluster_ip = *address;
  }
  if (old.cluster_ip && old.cluster_ip != service.cluster_ip)
    context.allocator.release(*old.cluster_ip);
  if (service == old)
    return Change{ref, Change::Action::kUnchanged, serviceAddressText(service), {}};
  rows::writeService(context.db, id, service);
  return Change{ref, Change::Action::kConfigured, serviceAddressText(service), {}};
}

Result<Change> applyPod(ApplyContext& context, Pod pod) {
  ObjectRef ref{ObjectKind::kPod, pod.namespace_name, pod.name};
  auto existing = rows::loadPods(context.db, filterFor(pod.namespace_name, pod.name));
  if (existing.empty()) {
    pod.created_ms = context.now;
    pod.readiness = initialReadiness(pod, context.now, context.default_probe);
    rows::writePod(context.db, 0, pod);
    return Change{ref, Change::Action::kCreated, {}, {}};
  }
  int64_t id = existing.ids.front();
  auto& old = existing.objects.front();
  pod.created_ms = old.created_ms;
  pod.readiness = probedShape(pod) == probedShape(old)
                      ? old.readiness
                      : initialReadiness(pod, context.now, context.default_probe);
  if (pod == old) return Change{ref, Change::Action::kUnchanged, {}, {}};
  rows::writePod(context.db, id, pod);
  return Change{ref, Change::Action::kConfigured, {}, {}};
}

// As Kubernetes does, a Service with a selector takes its endpoints from the pods it selects;
// endpoints written for it by hand are kept but unused, which a user should hear about.
std::string unusedEndpointsWarning(Connection& db, const EndpointSet& set, const ObjectRef& ref) {
  auto& query =
      db.prepare("SELECT selector IS NOT NULL FROM services WHERE namespace = ?1 AND name = ?2");
  query.bind(1, set.namespace_name).bind(2, set.service_name);
  bool selects = query.step() && query.integer(0) != 0;
  query.reset();
  if (!selects) return "";
  return ref.toString() + " is stored but not used: Service " + set.namespace_name + "/" +
         set.service_name +
         " has a selector, so its endpoints are the pods it selects (remove the selector to use "
         "these)";
}

Result<Change> applyEndpointSet(ApplyContext& context, EndpointSet set) {
  ObjectRef ref{set.kind == EndpointSet::Kind::kEndpoints ? ObjectKind::kEndpoints
                                                          : ObjectKind::kEndpointSlice,
                set.namespace_name, set.name};
  auto existing =
      rows::loadEndpointSets(context.db, filterFor(set.namespace_name, set.name), set.kind);
  Change change{ref, Change::Action::kCreated, {}, {}};
  if (existing.empty()) {
    set.created_ms = context.now;
    rows::writeEndpointSet(context.db, 0, set);
    return change;
  }
  int64_t id = existing.ids.front();
  auto& old = existing.objects.front();
  set.created_ms = old.created_ms;
  change.action = set == old ? Change::Action::kUnchanged : Change::Action::kConfigured;
  if (change.action == Change::Action::kConfigured) rows::writeEndpointSet(context.db, id, set);
  return change;
}

Status validate(const Object& object) {
  return std::visit(
      [](const auto& value) -> Status {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, Service>) return validateService(value);
        if constexpr (std::is_same_v<T, Pod>) return validatePod(value);
        if constexpr (std::is_same_v<T, EndpointSet>) return validateEndpointSet(value);
      },
      object);
}

void loadUsedClusterIps(Connection& db, ClusterIpAllocator& allocator) {
  auto& query = db.prepare("SELECT cluster_ip FROM services WHERE cluster_ip IS NOT NULL");
  while (query.step()) {
    if (auto ip = IpAddress::parse(query.text(0))) allocator.markUsed(*ip);
  }
}

}  // namespace

const char* objectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kService:
      return "Service";
    case ObjectKind::kPod:
      return "Pod";
    case ObjectKind::kEndpoints:
      return "Endpoints";
    case ObjectKind::kEndpointSlice:
      return "EndpointSlice";
  }
  return "?";
}

ObjectRef refOf(const Object& object) {
  return std::visit(
      [](const auto& value) -> ObjectRef {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, Service>) {
          return {ObjectKind::kService, value.namespace_name, value.name};
        } else if constexpr (std::is_same_v<T, Pod>) {
          return {ObjectKind::kPod, value.namespace_name, value.name};
        } else {
          return {value.kind == EndpointSet::Kind::kEndpoints ? ObjectKind::kEndpoints
                                                              : ObjectKind::kEndpointSlice,
                  value.namespace_name, value.name};
        }
      },
      object);
}

std::string ObjectRef::toString() const {
  return std::string(objectKindName(kind)) + " " + namespace_name + "/" + name;
}

const char* actionName(Change::Action action) {
  switch (action) {
    case Change::Action::kCreated:
      return "created";
    case Change::Action::kConfigured:
      return "configured";
    case Change::Action::kUnchanged:
      return "unchanged";
    case Change::Action::kDeleted:
      return "deleted";
    case Change::Action::kNotFound:
      return "not found";
  }
  return "?";
}

namespace {

// Above this many changed rows, one read of the whole table beats reading them one by one.
constexpr size_t kFullReloadThreshold = 512;

template <typename T>
struct CachedRow {
  int64_t revision = -1;
  std::shared_ptr<const T> object;
};

// By id. Flat: at 10,000 Services and 30,000 pods a node per row costs a megabyte more, in
// small blocks scattered over the heap, and new rows (higher ids) are appended.
template <typename T>
using RowMap = boost::container::flat_map<int64_t, CachedRow<T>>;

template <typename T>
RowMap<T> rowMapOf(std::vector<std::pair<int64_t, CachedRow<T>>> rows) {
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return RowMap<T>(boost::container::ordered_unique_range, std::make_move_iterator(rows.begin()),
                   std::make_move_iterator(rows.end()));
}

// One table's rows as the last rebuild read them.
template <typename T>
struct RowCache {
  RowMap<T> rows;
  std::vector<int64_t> order;  // ids in name order
  int64_t generation = -1;     // the registry generation they are current for; -1: none yet
};

// Rows written since a rebuild at generation `since`; nullopt when there are too many to be worth
// it or some were deleted (then the caller scans the table).
template <typename T, typename Load>
std::optional<std::vector<std::shared_ptr<const T>>> refreshChangedRows(
    Connection& db, const std::string& table, RowCache<T>& cache, int64_t generation, Load load) {
  if (cache.generation < 0 || cache.generation > generation) return std::nullopt;
  auto& changed_scan = db.prepare("SELECT id, revision FROM " + table + " WHERE revision > ?1")
                           .bind(1, cache.generation);
  std::vector<std::pair<int64_t, int64_t>> changed;
  size_t added = 0;
  while (changed_scan.step()) {
    changed.emplace_back(changed_scan.integer(0), changed_scan.integer(1));
    if (!cache.rows.count(changed.back().first)) ++added;
    if (changed.size() > kFullReloadThreshold) {
      changed_scan.reset();
      return std::nullopt;
    }
  }
  // A deleted row leaves no revision behind: the count tells.
  auto total = static_cast<size_t>(db.queryInteger("SELECT count(*) FROM " + table));
  if (total != cache.rows.size() + added) return std::nullopt;
  auto name_of = [&](int64_t id) {
    const T& object = *cache.rows.at(id).object;
    return std::tie(object.namespace_name, object.name);
  };
  for (auto [id, revision] : changed) {
    auto loaded = load(rows::NameFilter{{}, {}, id});
    if (loaded.empty()) return std::nullopt;
    bool known = cache.rows.count(id) > 0;
    // SQLite hands the highest id out again once its row is deleted: a known id may now be
    // another object, whose place in the name order is elsewhere. The scan sorts it out.
    const T& fresh = loaded.objects.front();
    if (known && name_of(id) != std::tie(fresh.namespace_name, fresh.name)) return std::nullopt;
    cache.rows[id] =
        CachedRow<T>{revision, std::make_shared<const T>(std::move(loaded.objects.front()))};
    if (known) continue;  // same id, same name: its place in the order stays
    auto place = std::lower_bound(cache.order.begin(), cache.order.end(), id,
                                  [&](int64_t a, int64_t b) { return name_of(a) < name_of(b); });
    cache.order.insert(place, id);
  }
  cache.generation = generation;
  std::vector<std::shared_ptr<const T>> objects;
  objects.reserve(cache.order.size());
  for (int64_t id : cache.order) objects.push_back(cache.rows.at(id).object);
  return objects;
}

// Brings `cache` to the table's committed state: rows whose revision is unchanged are kept,
// the others are read again.
template <typename T, typename Load>
std::vector<std::shared_ptr<const T>> refreshRows(Connection& db, const char* table,
                                                  RowCache<T>& row_cache, int64_t generation,
                                                  Load load) {
  if (auto changed = refreshChangedRows(db, table, row_cache, generation, load)) {
    return std::move(*changed);
  }
  auto& cache = row_cache.rows;
  auto& scan =
      db.prepare(std::string("SELECT id, revision FROM ") + table + " ORDER BY namespace, name");
  std::vector<std::pair<int64_t, int64_t>> revisions;
  size_t stale = 0;
  while (scan.step()) {
    revisions.emplace_back(scan.integer(0), scan.integer(1));
    auto it = cache.find(revisions.back().first);
    if (it == cache.end() || it->second.revision != revisions.back().second) ++stale;
  }
  if (stale > kFullReloadThreshold) {
    std::unordered_map<int64_t, int64_t> revision_of(revisions.begin(), revisions.end());
    auto loaded = load(std::nullopt);
    std::vector<std::pair<int64_t, CachedRow<T>>> fresh;
    fresh.reserve(loaded.ids.size());
    for (size_t i = 0; i < loaded.ids.size(); ++i) {
      fresh.emplace_back(loaded.ids[i],
                         CachedRow<T>{revision_of[loaded.ids[i]],
                                      std::make_shared<const T>(std::move(loaded.objects[i]))});
    }
    cache = rowMapOf(std::move(fresh));
  } else if (stale > 0) {
    std::vector<std::pair<int64_t, CachedRow<T>>> fresh;  // inserted together: one merge
    for (auto [id, revision] : revisions) {
      auto it = cache.find(id);
      if (it != cache.end() && it->second.object && it->second.revision == revision) continue;
      auto loaded = load(rows::NameFilter{{}, {}, id});
      if (loaded.empty()) continue;
      CachedRow<T> row{revision, std::make_shared<const T>(std::move(loaded.objects.front()))};
      if (it != cache.end()) {
        it->second = std::move(row);
      } else {
        fresh.emplace_back(id, std::move(row));
      }
    }
    cache.insert(std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
  }
  if (cache.size() != revisions.size()) {
    // Rows were deleted: keep only what the scan saw.
    std::vector<std::pair<int64_t, CachedRow<T>>> kept;
    kept.reserve(revisions.size());
    for (auto [id, revision] : revisions) {
      if (auto it = cache.find(id); it != cache.end() && it->second.object) {
        kept.emplace_back(id, std::move(it->second));
      }
    }
    cache = rowMapOf(std::move(kept));
  }
  // In name order, as the snapshot keeps them.
  std::vector<std::shared_ptr<const T>> objects;
  objects.reserve(cache.size());
  row_cache.order.clear();
  for (auto [id, revision] : revisions) {
    if (auto it = cache.find(id); it != cache.end() && it->second.object) {
      objects.push_back(it->second.object);
      row_cache.order.push_back(id);
    }
  }
  row_cache.generation = generation;
  return objects;
}

}  // namespace

struct Registry::SnapshotCache {
  RowCache<Service> services;
  RowCache<Pod> pods;
  SnapshotPtr last;  // the latest snapshot built here: its entries are shared by the next one
};

Registry::Registry(std::unique_ptr<Connection> connection, Identity identity)
    : connection_(std::move(connection)),
      identity_(std::move(identity)),
      cache_(std::make_unique<SnapshotCache>()) {}
Registry::~Registry() = default;

const std::string& Registry::path() const { return connection_->path(); }

Status Registry::checkFile() const {
  struct stat now {};
  if (::stat(path().c_str(), &now) != 0) {
    int error = errno;
    return Error{ErrorKind::kReplaced,
                 "the registry file " + path() + " is gone (" + std::strerror(error) +
                     "): it was deleted or moved after it was opened",
                 {}};
  }
  if (now.st_dev != identity_.device || now.st_ino != identity_.inode) {
    return Error{ErrorKind::kReplaced,
                 path() + " is now another file (inode " + std::to_string(now.st_ino) +
                     ", opened as inode " + std::to_string(identity_.inode) +
                     "): the registry was replaced after it was opened",
                 {}};
  }
  return Ok{};
}

Status Registry::checkIdentityIn(Connection& db) const {
  if (auto file = checkFile(); !file) return file;
  auto uuid = metaValue(db, "registry_uuid").value_or("");
  if (uuid != identity_.uuid) {
    return Error{ErrorKind::kReplaced,
                 path() + " now holds registry " + (uuid.empty() ? "(none)" : uuid) +
                     ", not the registry " + identity_.uuid +
                     " opened here: it was copied over in place",
                 {}};
  }
  return Ok{};
}

Status Registry::checkIdentity() {
  try {
    Transaction transaction(*connection_, Transaction::Mode::kRead);
    auto same = checkIdentityIn(*connection_);
    transaction.commit();
    return same;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<uint64_t> Registry::peekGeneration(const std::string& path) {
  try {
    Connection connection(path, /*create=*/false, kDefaultBusyTimeoutMs);
    Transaction transaction(connection, Transaction::Mode::kRead);
    sqlite::Statement query(connection.handle(), "SELECT value FROM meta WHERE key = 'generation'");
    uint64_t generation = query.step() ? static_cast<uint64_t>(query.integer(0)) : 0;
    query.reset();
    transaction.commit();
    return generation;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path);
  }
}

Result<std::unique_ptr<Registry>> Registry::open(const std::string& path, Options options) {
  try {
    auto connection = std::make_unique<Connection>(path, options.create, options.busy_timeout_ms);
    migrate(*connection);
    Identity identity;
    struct stat opened {};
    if (::stat(path.c_str(), &opened) == 0) {
      identity.device = opened.st_dev;
      identity.inode = opened.st_ino;
    }
    identity.uuid = metaValue(*connection, "registry_uuid").value_or("");
    return std::unique_ptr<Registry>(new Registry(std::move(connection), std::move(identity)));
  } catch (const SqliteError& error) {
    if (error.code() == SQLITE_CANTOPEN) {
      return Error{ErrorKind::kInvalid,
                   "cannot open registry " + path + ": " + error.what() +
                       " (does the folder exist and is it writable?)",
                   {}};
    }
    return fromSqlite(error, path);
  } catch (const std::runtime_error& error) {
    return Error{ErrorKind::kInvalid, "registry " + path + ": " + error.what(), {}};
  }
}

Result<std::vector<Change>> Registry::apply(const std::vector<Object>& objects,
                                            const CidrChoice& cidr, size_t* failed_object) {
  auto blame = [&](size_t index, Error error) {
    if (failed_object) *failed_object = index;
    error.message = refOf(objects[index]).toString() + ": " +
                    (error.field.empty() ? "" : error.field + ": ") + error.message;
    return error;
  };
  // Syntax first, outside the write lock: a broken manifest never waits for the registry.
  std::set<std::tuple<ObjectKind, std::string, std::string>> seen;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (auto status = validate(objects[i]); !status) return blame(i, status.error());
    auto ref = refOf(objects[i]);
    if (!seen.insert({ref.kind, ref.namespace_name, ref.name}).second) {
      return blame(i, invalid("metadata.name", "this object appears more than once in the input"));
    }
  }
  try {
    Connection& db = *connection_;
    Transaction transaction(db, Transaction::Mode::kWrite);
    if (auto same = checkIdentityIn(db); !same) return same.error();
    auto service_cidr = serviceCidrFor(db, cidr);
    if (!service_cidr) return service_cidr.error();
    ClusterIpAllocator allocator(*service_cidr);
    loadUsedClusterIps(db, allocator);
    // Requested addresses are claimed before any allocation, so an allocated address never
    // takes one that a later object in the same input asks for.
    std::map<IpAddress, std::pair<std::string, std::string>> requested;
    for (size_t i = 0; i < objects.size(); ++i) {
      const auto* service = std::get_if<Service>(&objects[i]);
      if (!service || !service->cluster_ip) continue;
      if (auto problem = allocator.checkRequest(*service->cluster_ip); !problem.empty()) {
        return blame(i, invalid("spec.clusterIP", problem));
      }
      auto& owner = db.prepare("SELECT namespace, name FROM services WHERE cluster_ip = ?1");
      owner.bind(1, service->cluster_ip->toString());
      if (owner.step() &&
          (owner.text(0) != service->namespace_name || owner.text(1) != service->name)) {
        std::string holder = std::string(owner.text(0)) + "/" + std::string(owner.text(1));
        owner.reset();
        return blame(i,
                     Error{ErrorKind::kConflict,
                           service->cluster_ip->toString() + " is already allocated to Service " +
                               holder + "; choose a free address or leave spec.clusterIP out",
                           "spec.clusterIP"});
      }
      owner.reset();
      auto [claim, fresh] =
          requested.try_emplace(*service->cluster_ip, service->namespace_name, service->name);
      if (!fresh && claim->second != std::pair(service->namespace_name, service->name)) {
        return blame(
            i, Error{ErrorKind::kConflict,
                     service->cluster_ip->toString() + " is also requested by Service " +
                         claim->second.first + "/" + claim->second.second + " in the same input",
                     "spec.clusterIP"});
      }
      allocator.markUsed(*service->cluster_ip);
    }
    ApplyContext context{db, allocator, nowMs(), storedDefaultProbe(db)};
    std::vector<Change> changes;
    bool changed = false;
    for (size_t i = 0; i < objects.size(); ++i) {
      auto change = std::visit(
          [&](const auto& value) -> Result<Change> {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, Service>) return applyService(context, value);
            if constexpr (std::is_same_v<T, Pod>) return applyPod(context, value);
            if constexpr (std::is_same_v<T, EndpointSet>) return applyEndpointSet(context, value);
          },
          objects[i]);
      if (!change) return blame(i, change.error());
      changed |= change->action != Change::Action::kUnchanged;
      changes.push_back(std::move(*change));
      if (pause_after_objects_ && *pause_after_objects_ == i + 1) raise(SIGSTOP);
    }
    // After every object is in: a Service later in the same input counts too.
    for (size_t i = 0; i < objects.size(); ++i) {
      if (const auto* set = std::get_if<EndpointSet>(&objects[i])) {
        changes[i].warning = unusedEndpointsWarning(db, *set, changes[i].ref);
      }
    }
    if (changed) bumpGeneration(db);
    transaction.commit();
    return changes;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<Cidr> Registry::serviceCidr(const CidrChoice& cidr) {
  try {
    Transaction transaction(*connection_, Transaction::Mode::kWrite);
    if (auto same = checkIdentityIn(*connection_); !same) return same.error();
    auto result = serviceCidrFor(*connection_, cidr);
    if (result) transaction.commit();
    return result;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<std::vector<Change>> Registry::remove(const std::vector<ObjectRef>& refs) {
  try {
    Connection& db = *connection_;
    Transaction transaction(db, Transaction::Mode::kWrite);
    if (auto same = checkIdentityIn(db); !same) return same.error();
    std::vector<Change> changes;
    bool changed = false;
    for (const auto& ref : refs) {
      std::string sql;
      switch (ref.kind) {
        case ObjectKind::kService:
          sql = "DELETE FROM services WHERE namespace = ?1 AND name = ?2 RETURNING cluster_ip";
          break;
        case ObjectKind::kPod:
          sql = "DELETE FROM pods WHERE namespace = ?1 AND name = ?2 RETURNING ''";
          break;
        default:
          sql =
              "DELETE FROM endpoint_sets WHERE namespace = ?1 AND name = ?2 AND kind = ?3 "
              "RETURNING ''";
      }
      auto& statement = db.prepare(sql);
      statement.bind(1, ref.namespace_name).bind(2, ref.name);
      if (ref.kind == ObjectKind::kEndpoints || ref.kind == ObjectKind::kEndpointSlice) {
        statement.bind(3, objectKindName(ref.kind));
      }
      bool found = statement.step();
      std::string detail = found && !statement.isNull(0) ? std::string(statement.text(0)) : "";
      statement.reset();
      if (found && !detail.empty()) detail = "released clusterIP " + detail;
      changes.push_back(
          Change{ref, found ? Change::Action::kDeleted : Change::Action::kNotFound, detail, {}});
      changed |= found;
    }
    if (changed) bumpGeneration(db);
    transaction.commit();
    return changes;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<bool> Registry::setPodReadiness(const std::string& namespace_name, const std::string& name,
                                       const Readiness& readiness) {
  auto changed = setPodReadiness({ReadinessUpdate{namespace_name, name, readiness}});
  if (!changed) return changed.error();
  return *changed > 0;
}

Result<size_t> Registry::setPodReadiness(const std::vector<ReadinessUpdate>& updates) {
  try {
    Connection& db = *connection_;
    Transaction transaction(db, Transaction::Mode::kWrite);
    if (auto same = checkIdentityIn(db); !same) return same.error();
    size_t changed = 0;
    for (const auto& entry : updates) {
      auto& update = db.prepare(
          "UPDATE pods SET ready = ?3, ready_reason = ?4, ready_changed_ms = ?5, "
          "revision = (SELECT value + 1 FROM meta WHERE key = 'generation') "
          "WHERE namespace = ?1 AND name = ?2 AND (ready != ?3 OR ready_reason != ?4)");
      update.bind(1, entry.namespace_name)
          .bind(2, entry.name)
          .bind(3, int64_t{entry.readiness.ready})
          .bind(4, entry.readiness.reason)
          .bind(5, entry.readiness.changed_ms)
          .run();
      changed += static_cast<size_t>(sqlite3_changes(db.handle()));
    }
    if (changed > 0) bumpGeneration(db);
    transaction.commit();
    return changed;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Status Registry::setDefaultProbe(DefaultProbe probe) {
  try {
    Transaction transaction(*connection_, Transaction::Mode::kWrite);
    if (auto same = checkIdentityIn(*connection_); !same) return same.error();
    setMeta(*connection_, "default_probe", defaultProbeName(probe));
    transaction.commit();
    return Ok{};
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<SnapshotPtr> Registry::loadSnapshot() {
  try {
    Connection& db = *connection_;
    Transaction transaction(db, Transaction::Mode::kRead);
    if (auto same = checkIdentityIn(db); !same) return same.error();
    auto version = metaNumber(db, "generation");
    if (!version) return version.error();
    auto committed_ms = metaNumber(db, "committed_ms");
    if (!committed_ms) return committed_ms.error();
    std::optional<Cidr> cidr;
    if (auto text = metaValue(db, "service_cidr")) cidr = Cidr::parse(*text);
    auto generation = static_cast<int64_t>(*version);
    auto service_rows =
        refreshRows(db, "services", cache_->services, generation,
                    [&](const auto& filter) { return rows::loadServices(db, filter); });
    auto pods = refreshRows(db, "pods", cache_->pods, generation,
                            [&](const auto& filter) { return rows::loadPods(db, filter); });
    auto sets =
        std::move(rows::loadEndpointSets(db, std::nullopt, EndpointSet::Kind::kEndpoints).objects);
    for (auto& set :
         rows::loadEndpointSets(db, std::nullopt, EndpointSet::Kind::kEndpointSlice).objects) {
      sets.push_back(std::move(set));
    }
    transaction.commit();
    SnapshotPtr previous = cache_->last;
    auto entries = resolveEndpointsSharing(previous.get(), service_rows, pods, sets);
    // Cached Services point into the entry that holds them (an aliasing shared_ptr), so each
    // Service is kept once, and an unchanged row is recognised by the next rebuild as the
    // Service of an entry it can share.
    std::unordered_map<const Service*, const ServiceEntryPtr*> resolved;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (&entries[i]->service != service_rows[i].get())
        resolved.emplace(service_rows[i].get(), &entries[i]);
    }
    for (auto& [id, row] : cache_->services.rows) {
      if (resolved.empty()) break;
      auto found = resolved.find(row.object.get());
      if (found == resolved.end()) continue;
      const ServiceEntryPtr& entry = *found->second;
      row.object = std::shared_ptr<const Service>(entry, &entry->service);
    }
    auto snapshot = std::make_shared<const Snapshot>(
        static_cast<uint64_t>(*version), cidr, std::move(entries), std::move(pods), std::move(sets),
        *committed_ms, previous.get());
    cache_->last = snapshot;
    return SnapshotPtr(std::move(snapshot));
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<std::optional<Object>> Registry::find(const ObjectRef& ref) {
  try {
    Connection& db = *connection_;
    Transaction transaction(db, Transaction::Mode::kRead);
    if (auto same = checkIdentityIn(db); !same) return same.error();
    rows::NameFilter filter{ref.namespace_name, ref.name, 0};
    std::optional<Object> found;
    if (ref.kind == ObjectKind::kService) {
      auto loaded = rows::loadServices(db, filter);
      if (!loaded.objects.empty()) found = std::move(loaded.objects.front());
    } else if (ref.kind == ObjectKind::kPod) {
      auto loaded = rows::loadPods(db, filter);
      if (!loaded.objects.empty()) found = std::move(loaded.objects.front());
    } else {
      auto kind = ref.kind == ObjectKind::kEndpoints ? EndpointSet::Kind::kEndpoints
                                                     : EndpointSet::Kind::kEndpointSlice;
      auto loaded = rows::loadEndpointSets(db, filter, kind);
      if (!loaded.objects.empty()) found = std::move(loaded.objects.front());
    }
    transaction.commit();
    return found;
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Status Registry::limitPageCache(int kib) {
  try {
    connection_->exec("PRAGMA cache_size = -" + std::to_string(kib));
    return Ok{};
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

Result<int64_t> Registry::dataVersion() {
  try {
    return connection_->queryInteger("PRAGMA data_version");
  } catch (const SqliteError& error) {
    return fromSqlite(error, path());
  }
}

std::string defaultRegistryPath() {
  if (geteuid() == 0) return "/var/lib/svcbox/registry.db";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state) {
    return std::string(state) + "/svcbox/registry.db";
  }
  const char* home = std::getenv("HOME");
  std::string base =
      home && *home ? home : (getpwuid(geteuid()) ? getpwuid(geteuid())->pw_dir : "/tmp");
  return base + "/.local/state/svcbox/registry.db";
}

}  // namespace svcbox::store
