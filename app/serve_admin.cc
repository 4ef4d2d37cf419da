#include "app/serve_admin.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "app/common.h"
#include "app/log.h"

namespace svcbox::app {

void addAdminFlags(CLI::App& command, AdminFlags& flags) {
  command.add_option("--admin-listen", flags.listen,
                     "ADDR:PORT of the admin HTTP server (/healthz, /readyz, /metrics, /api/v1); "
                     "\"none\" turns it off (default 127.0.0.1:9153)");
  command.add_option("--admin-token-file", flags.token_file,
                     "File holding the bearer token /api/ requests must send; required when "
                     "--admin-listen is not loopback");
}

std::vector<std::string> adminSettingNames() { return {"admin-listen", "admin-token-file"}; }

namespace {

const AdminOptions& checked(const AdminOptions& options) {
  if (auto usable = checkAdminOptions(options); !usable) {
    throw CommandError(kExitUserError, usable.error().message);
  }
  return options;
}

}  // namespace

AdminOptions resolveAdminOptions(Settings& settings, const AdminFlags& flags) {
  AdminOptions options;
  options.listen = settings.resolve("admin-listen", flags.listen, options.listen).value;
  auto token_file = settings.find("admin-token-file", flags.token_file);
  if (!token_file) return checked(options);
  auto fail = [&](const std::string& what) {
    throw CommandError(kExitUserError, "--admin-token-file (" + token_file->source + "): \"" +
                                           token_file->value + "\": " + what);
  };
  std::ifstream file(token_file->value, std::ios::binary);
  if (!file) fail("cannot be read: " + std::string(std::strerror(errno)));
  std::ostringstream text;
  text << file.rdbuf();
  std::string token = text.str();
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!token.empty() && space(token.back())) token.pop_back();
  size_t start = 0;
  while (start < token.size() && space(token[start])) ++start;
  token.erase(0, start);
  if (token.empty()) fail("is empty; put the token in it (for example: openssl rand -hex 32)");
  options.token = std::move(token);
  return checked(options);
}

std::unique_ptr<AdminServer> startAdminServer(AdminOptions options, AdminHooks hooks) {
  if (options.listen == kAdminDisabled) return nullptr;
  bool token = options.token.has_value();
  auto server = std::make_unique<AdminServer>(std::move(options), std::move(hooks));
  if (auto bound = server->bind(); !bound) {
    throw CommandError(kExitUserError, bound.error().message);
  }
  server->start();
  logInfo("admin HTTP on " + server->boundAddress() + " (/healthz, /readyz, /metrics, /api/v1" +
          (token ? ", token required for /api/)" : ")"));
  return server;
}

}  // namespace svcbox::app
