#pragma once

#include <memory>
#include <optional>
#include <string>

#include "app/admin_api.h"
#include "store/result.h"

// serve's admin HTTP server: /healthz, /readyz, /metrics and /api/v1 (see admin_api.h), on
// Boost.Beast with a thread of its own.
namespace svcbox::app {

// --admin-listen none: no admin server.
inline constexpr const char* kAdminDisabled = "none";

struct AdminOptions {
  std::string listen = "127.0.0.1:9153";  // ADDR:PORT or [v6]:PORT; port 0 picks one
  ApiAccess access;                       // the token, and the Host and Origin names accepted
  std::string token_file;                 // where the token is kept (never logged itself)
  std::string token_file_source;          // which setting named it
  // Connections whose last request was to /api/, and to /healthz, /readyz or /metrics: each
  // class has its own slots, so API clients cannot starve the health checks. A connection that
  // has not sent a request yet takes any free slot; when none is free, the connection that has
  // been idle longest is closed for the newcomer.
  size_t max_api_connections = 64;
  size_t max_health_connections = 16;
};

// Whether `options` can be served: --admin-listen parses as ADDR:PORT (or is "none"), and an
// address that is not loopback comes with a token. Checked at start and by --print-config.
store::Status checkAdminOptions(const AdminOptions& options);

class AdminServer {
 public:
  AdminServer(AdminOptions options, AdminHooks hooks);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the listen address; the error names --admin-listen and why. A listen address that is
  // not loopback needs a token (--admin-token-file). Registry writes run on hooks.writer's
  // worker, never on the server's thread, so a slow write delays only the writes.
  store::Status bind();
  // Serves on its own thread until stop().
  void start();
  void stop();
  // "127.0.0.1:9153" or "[::1]:9153", the port resolved; empty before bind().
  std::string boundAddress() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace svcbox::app
