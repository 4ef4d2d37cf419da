#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/admin_server.h"
#include "app/config.h"

// serve's admin flags, their settings and the server they make.
namespace svcbox::app {

struct AdminFlags {
  std::optional<std::string> listen;
  std::optional<std::string> token_file;
};

void addAdminFlags(CLI::App& command, AdminFlags& flags);
// The setting names addAdminFlags adds, for the config file's check.
std::vector<std::string> adminSettingNames();
// Resolves the admin settings (flag > environment > config > default) and reads the token
// file; throws CommandError naming the setting when the file cannot be read or is empty.
// `listen` is kAdminDisabled when the server is off.
AdminOptions resolveAdminOptions(Settings& settings, const AdminFlags& flags);
// Binds and starts the server, or throws CommandError naming --admin-listen; null when
// options.listen is kAdminDisabled.
std::unique_ptr<AdminServer> startAdminServer(AdminOptions options, AdminHooks hooks);

}  // namespace svcbox::app
