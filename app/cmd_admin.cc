#include <unistd.h>

#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/common.h"
#include "app/serve_admin.h"

// `svcbox admin-token` and `svcbox admin-url`: what a client of the local serve's admin API needs,
// resolved from the same settings serve reads (flags, SVCBOX_* variables, the config file).
namespace svcbox::app {
namespace {

struct AdminClientFlags {
  RegistryOptions registry;
  AdminFlags admin;
};

void addClientFlags(CLI::App& command, AdminClientFlags& flags) {
  command.add_option("--db", flags.registry.db, "Registry file serve uses (env SVCBOX_DB)");
  command.add_option("--config", flags.registry.config, "serve's config file (env SVCBOX_CONFIG)");
  command.add_option("--admin-listen", flags.admin.listen, "serve's --admin-listen");
  command.add_option("--admin-token-file", flags.admin.token_file, "serve's --admin-token-file");
}

void printToken(const AdminClientFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown(serveSettingNames(), serveSettingNames());
  auto path = registryPath(settings, flags.registry);
  auto file = adminTokenFile(settings, flags.admin, path.value);
  if (::access(file.value.c_str(), F_OK) != 0) {
    throw CommandError(kExitUserError, "no admin token at " + file.value + " (" + file.source +
                                           "): serve creates it at its first start");
  }
  std::cout << readAdminToken(file) << "\n";
}

void printUrl(const AdminClientFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown(serveSettingNames(), serveSettingNames());
  auto listen = settings.resolve("admin-listen", flags.admin.listen, AdminOptions{}.listen);
  std::cout << adminUrl(listen.value) << "\n";
}

}  // namespace

void addAdminCommands(CLI::App& app) {
  auto token_flags = std::make_shared<AdminClientFlags>();
  auto* token = app.add_subcommand(
      "admin-token", "Print the bearer token of the local serve's admin API (/api/ needs it)");
  addClientFlags(*token, *token_flags);
  token->footer(
      "Example: curl -H \"Authorization: Bearer $(svcbox admin-token)\" "
      "\"$(svcbox admin-url)/api/v1/services\"");
  token->callback([token_flags] { printToken(*token_flags); });

  auto url_flags = std::make_shared<AdminClientFlags>();
  auto* url = app.add_subcommand("admin-url", "Print the URL of the local serve's admin server");
  addClientFlags(*url, *url_flags);
  url->callback([url_flags] { printUrl(*url_flags); });
}

}  // namespace svcbox::app
