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

struct ApiRequest {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // path and query
  std::string authorization;
  std::string body;
};

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
  AdminApi(AdminHooks hooks, std::optional<std::string> token);
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
  bool authorized(const std::string& header) const;

  AdminHooks hooks_;
  std::optional<std::string> token_;
};

// Equal strings in time that depends on their lengths only, not on where they differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace svcbox::app
