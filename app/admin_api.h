#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/registry_writer.h"
#include "store/snapshot.h"

// What serve's admin HTTP server answers, apart from the HTTP plumbing: health, readiness,
// metrics and the Kubernetes-shaped /api/v1 for Services and Pods. Kept free of Beast so that
// the routing and the objects can be read (and tested) on their own.
namespace svcbox::app {

struct AdminHooks {
  std::function<store::SnapshotPtr()> snapshot;         // current registry snapshot
  RegistryWriter* writer = nullptr;                     // null: the API is read-only (405)
  std::function<std::vector<std::string>()> not_ready;  // /readyz: empty = ready, else reasons
  std::function<std::string()> metrics;                 // /metrics body
};

// One HTTP request as the handler sees it; an absent header is an empty string.
struct ApiRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query
  std::string authorization;
  std::string host;
  std::string origin;
  std::string content_type;
  std::string body;
};

// Who may use /api/: the bearer token, and the Host and Origin names accepted besides IP
// literals, localhost and the request's own origin (against DNS rebinding and cross-site
// requests from a browser on the host).
struct ApiAccess {
  std::optional<std::string> token;  // none: /api/ needs no token (tests and fuzzing only)
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
};

// Which connection class a request belongs to: health and metrics have slots of their own so
// that API clients cannot starve the health checks.
enum class RequestClass { kHealth, kApi };
RequestClass classify(std::string_view target);
// Whether the request changes the registry (and so runs on the writer's worker, not the I/O
// thread).
bool isRegistryWrite(const ApiRequest& request);

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // for 405: the methods the path takes
};

// A Kubernetes Status object ("kind":"Status") as the error body.
ApiResponse statusResponse(unsigned code, const std::string& reason, const std::string& message);

class AdminApi {
 public:
  AdminApi(AdminHooks hooks, ApiAccess access);
  ApiResponse handle(const ApiRequest& request) const;

 private:
  ApiResponse api(const ApiRequest& request, const std::vector<std::string>& path) const;
  ApiResponse list(std::string_view kind, const std::string* namespace_name) const;
  ApiResponse get(std::string_view kind, const std::string& namespace_name,
                  const std::string& name) const;
  ApiResponse write(const ApiRequest& request, std::string_view kind,
                    const std::string& namespace_name, const std::string* name) const;
  ApiResponse remove(std::string_view kind, const std::string& namespace_name,
                     const std::string& name) const;
  ApiResponse readiness(const ApiRequest& request, const std::string& namespace_name,
                        const std::string& name) const;
  std::optional<ApiResponse> refuseAccess(const ApiRequest& request) const;

  AdminHooks hooks_;
  ApiAccess access_;
};

// Equal strings in time that depends on their lengths only, not on where they differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace svcbox::app
