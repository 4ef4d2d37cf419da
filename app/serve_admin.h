#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/admin_server.h"
#include "app/config.h"

// serve's admin flags, their settings, the token file and the server they make.
namespace svcbox::app {

struct AdminFlags {
  std::optional<std::string> listen;
  std::optional<std::string> token_file;
  std::optional<std::string> allowed_hosts;
  std::optional<std::string> allowed_origins;
  std::optional<std::string> max_api_connections;
  std::optional<std::string> max_health_connections;
};

void addAdminFlags(CLI::App& command, AdminFlags& flags);
// The setting names addAdminFlags adds, for the config file's check.
std::vector<std::string> adminSettingNames();
// Resolves the admin settings (flag > environment > config > default). The token comes from
// --admin-token-file, else `<registry>.admin-token`; serve creates the file (0600, a random
// token) when it does not exist. Throws CommandError naming the setting when the file cannot be
// read, created or is empty. `listen` is kAdminDisabled when the server is off.
AdminOptions resolveAdminOptions(Settings& settings, const AdminFlags& flags,
                                 const std::string& registry_path);
// Reads the token file, or creates it (0600, a random token) when it does not exist, logging
// the creation and warning when others may read the file. Called after --print-config, which
// creates nothing.
void loadAdminToken(AdminOptions& options);
// The token in `file`, trimmed; throws CommandError when it cannot be read or is empty.
std::string readAdminToken(const Setting& file);
// The token file's path as serve resolves it, and the URL of the local serve's admin server,
// for `svcbox admin-token` and `svcbox admin-url`.
Setting adminTokenFile(Settings& settings, const AdminFlags& flags,
                       const std::string& registry_path);
std::string adminUrl(const std::string& listen);
// Binds and starts the server, or throws CommandError naming --admin-listen; null when
// options.listen is kAdminDisabled.
std::unique_ptr<AdminServer> startAdminServer(AdminOptions options, AdminHooks hooks);

}  // namespace svcbox::app
