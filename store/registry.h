#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "store/result.h"
#include "store/snapshot.h"
#include "store/types.h"

namespace svcbox::store {

namespace sqlite {
class Connection;
}

constexpr int kSchemaVersion = 3;
constexpr int kDefaultBusyTimeoutMs = 5000;
inline constexpr const char* kDefaultServiceCidr = "10.96.0.0/12";

using Object = std::variant<Service, Pod, EndpointSet>;

enum class ObjectKind : uint8_t { kService, kPod, kEndpoints, kEndpointSlice };
const char* objectKindName(ObjectKind kind);

struct ObjectRef {
  ObjectKind kind = ObjectKind::kService;
  std::string namespace_name = "default";
  std::string name;
  std::string toString() const;  // "Service default/web"
};
ObjectRef refOf(const Object& object);

struct Change {
  enum class Action : uint8_t { kCreated, kConfigured, kUnchanged, kDeleted, kNotFound };
  ObjectRef ref;
  Action action = Action::kUnchanged;
  std::string detail;   // e.g. "clusterIP 10.96.0.1"
  std::string warning;  // stored, but not as the user may expect (said, not refused)
};
const char* actionName(Change::Action action);

// What `serve --default-probe` does to pods without a readinessProbe; recorded in the registry so
// that such pods are registered not ready while a serve probes them.
enum class DefaultProbe : uint8_t { kNone, kTcp };

inline constexpr const char* kNoReadinessProbe = "no readinessProbe";
inline constexpr const char* kAwaitingProbe = "awaiting first readiness probe";
inline constexpr const char* kAwaitingDefaultProbe = "awaiting first default probe";
// A pod registered without status.podIP: listed, never an endpoint, never probed.
inline constexpr const char* kNoPodIp = "no podIP";
// The prefix of a readiness a pod reported itself through the admin API.
inline constexpr const char* kReportedByPod = "reported by the pod";

struct ReadinessUpdate {
  std::string namespace_name;
  std::string name;
  Readiness readiness;
};

// Which service CIDR a command asked for; an explicit one must agree with the registry's.
struct CidrChoice {
  std::optional<Cidr> requested;  // --service-cidr / SVCBOX_SERVICE_CIDR / config file
  std::string source;             // where `requested` came from, for error messages
};

// The SQLite registry: the one source of truth. Every write is one transaction; every read of
// the whole registry is one snapshot.
class Registry {
 public:
  struct Options {
    int busy_timeout_ms = kDefaultBusyTimeoutMs;
    bool create = true;
  };
  static Result<std::unique_ptr<Registry>> open(const std::string& path, Options options);
  static Result<std::unique_ptr<Registry>> open(const std::string& path) {
    return open(path, Options{});
  }
  ~Registry();

  // Creates or updates every object, all or nothing. On error, Error::field names the field and
  // `failed_object` (when set) the index of the object to blame.
  Result<std::vector<Change>> apply(const std::vector<Object>& objects, const CidrChoice& cidr,
                                    size_t* failed_object = nullptr);
  // The CIDR ClusterIPs come from: recorded by the first command that needs it, after which an
  // explicit request must agree with it.
  Result<Cidr> serviceCidr(const CidrChoice& cidr);
  // Deletes the named objects in one transaction; missing ones are reported as kNotFound.
  Result<std::vector<Change>> remove(const std::vector<ObjectRef>& refs);
  // Records a prober's verdict; a write happens only when readiness really changes.
  Result<bool> setPodReadiness(const std::string& namespace_name, const std::string& name,
                               const Readiness& readiness);
  // Several verdicts in one transaction; returns how many pods changed.
  Result<size_t> setPodReadiness(const std::vector<ReadinessUpdate>& updates);
  // Pods applied from now on start not ready ("awaiting first default probe") under kTcp.
  Status setDefaultProbe(DefaultProbe probe);

  // One Service or Pod as stored (its ClusterIP, creation time and readiness), read by name
  // without building a snapshot; nullopt when there is none.
  Result<std::optional<Object>> find(const ObjectRef& ref);

  // The whole registry in one read transaction. Rows unchanged since this handle's previous
  // snapshot are shared with it, not read again.
  Result<SnapshotPtr> loadSnapshot();
  // Caps SQLite's page cache of this connection. A long-lived reader that only rereads changed
  // rows (serve's watcher) needs little of it, and every cached page is resident memory.
  Status limitPageCache(int kib);
  // Changes whenever another connection commits (SQLite's PRAGMA data_version).
  Result<int64_t> dataVersion();
  const std::string& path() const;
  // Whether the file at path() is still the one this handle opened (same device and inode); an
  // ErrorKind::kReplaced error says what happened to it otherwise. Every write transaction and
  // every snapshot also compare the registry UUID, which catches a file copied over in place.
  Status checkFile() const;
  // checkFile() and the UUID, in a read transaction of its own.
  Status checkIdentity();
  const std::string& uuid() const { return identity_.uuid; }

  // The registry's generation read on a connection of its own, opened for this one read and
  // never creating anything: a check that cannot share a stuck state with any other handle.
  static Result<uint64_t> peekGeneration(const std::string& path);

  // Test hook: after this many objects have been written inside apply's transaction the
  // process stops itself (SIGSTOP), so a test can kill -9 it mid-transaction.
  void setPauseAfterObjects(std::optional<size_t> count) { pause_after_objects_ = count; }

 private:
  struct SnapshotCache;
  struct Identity {
    uint64_t device = 0;
    uint64_t inode = 0;
    std::string uuid;
  };
  explicit Registry(std::unique_ptr<sqlite::Connection> connection, Identity identity);
  // Inside a transaction: the file and the UUID are still the ones this handle opened.
  Status checkIdentityIn(sqlite::Connection& db) const;
  std::unique_ptr<sqlite::Connection> connection_;
  Identity identity_;
  // Decoded rows of the last snapshot, by row id and revision, so the next one decodes only
  // what changed.
  std::unique_ptr<SnapshotCache> cache_;
  std::optional<size_t> pause_after_objects_;
};

// Where the registry lives when neither --db nor SVCBOX_DB says: /var/lib/svcbox/registry.db for
// root, $XDG_STATE_HOME/svcbox/registry.db (or ~/.local/state/...) otherwise.
std::string defaultRegistryPath();

}  // namespace svcbox::store
