#include "app/serve_admin.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "app/common.h"
#include "app/log.h"
#include "dns/address.h"

namespace svcbox::app {

void addAdminFlags(CLI::App& command, AdminFlags& flags) {
  command.add_option("--admin-listen", flags.listen,
                     "ADDR:PORT of the admin HTTP server (/healthz, /readyz, /metrics, /api/v1); "
                     "\"none\" turns it off (default 127.0.0.1:9153)");
  command.add_option("--admin-token-file", flags.token_file,
                     "File holding the bearer token every /api/ request must send, on loopback "
                     "too (default <registry>.admin-token, created 0600 with a random token when "
                     "missing; `svcbox admin-token` prints it)");
  command.add_option("--admin-allowed-hosts", flags.allowed_hosts,
                     "Host names /api/ accepts besides IP addresses and localhost, comma-separated "
                     "(against DNS rebinding)");
  command.add_option("--admin-allowed-origins", flags.allowed_origins,
                     "Origins (http://name:port) whose pages may call /api/, comma-separated; "
                     "otherwise a request with an Origin header must come from the server's own");
  command.add_option("--admin-max-api-connections", flags.max_api_connections,
                     "Connections /api/ clients may hold (default 64)");
  command.add_option("--admin-max-health-connections", flags.max_health_connections,
                     "Connections /healthz, /readyz and /metrics clients may hold, apart from the "
                     "API's (default 16)");
}

std::vector<std::string> adminSettingNames() {
  return {"admin-listen",          "admin-token-file",          "admin-allowed-hosts",
          "admin-allowed-origins", "admin-max-api-connections", "admin-max-health-connections"};
}

namespace {

std::string trimmed(std::string text) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.back())) text.pop_back();
  size_t start = 0;
  while (start < text.size() && space(text[start])) ++start;
  return text.substr(start);
}

[[noreturn]] void failToken(const Setting& file, const std::string& what) {
  throw CommandError(kExitUserError,
                     "--admin-token-file (" + file.source + "): \"" + file.value + "\": " + what);
}

}  // namespace

std::string readAdminToken(const Setting& file) {
  std::ifstream stream(file.value, std::ios::binary);
  if (!stream) failToken(file, "cannot be read: " + std::string(std::strerror(errno)));
  std::ostringstream text;
  text << stream.rdbuf();
  std::string token = trimmed(text.str());
  if (token.empty())
    failToken(file, "is empty; put the token in it (for example: openssl rand -hex 32)");
  return token;
}

namespace {

std::string randomToken() {
  std::array<unsigned char, 32> bytes;
  size_t filled = 0;
  while (filled < bytes.size()) {
    ssize_t got = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      throw CommandError(kExitInternalError, "cannot make an admin token: getrandom: " +
                                                 std::string(std::strerror(errno)));
    }
    filled += static_cast<size_t>(got);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char byte : bytes) {
    token += kHex[byte >> 4];
    token += kHex[byte & 15];
  }
  return token;
}

// O_EXCL: two serves starting at once (or a file made meanwhile) never overwrite a token a
// client already holds; the loser reads the winner's.
std::optional<std::string> createToken(const Setting& file) {
  int fd = ::open(file.value.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) return std::nullopt;
  if (fd < 0) {
    failToken(file, "does not exist and cannot be created: " + std::string(std::strerror(errno)) +
                        "; create it, or name another with --admin-token-file");
  }
  std::string token = randomToken();
  std::string line = token + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                 ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!written) {
    ::unlink(file.value.c_str());
    failToken(file, "cannot be written: " + std::string(std::strerror(saved)));
  }
  return token;
}

}  // namespace

Setting adminTokenFile(Settings& settings, const AdminFlags& flags,
                       const std::string& registry_path) {
  return settings.resolve("admin-token-file", flags.token_file, registry_path + ".admin-token");
}

AdminOptions resolveAdminOptions(Settings& settings, const AdminFlags& flags,
                                 const std::string& registry_path) {
  AdminOptions options;
  options.listen = settings.resolve("admin-listen", flags.listen, options.listen).value;
  auto token_file = adminTokenFile(settings, flags, registry_path);
  options.token_file = token_file.value;
  options.token_file_source = token_file.source;
  if (auto hosts = settings.find("admin-allowed-hosts", flags.allowed_hosts)) {
    options.access.allowed_hosts = splitCommaList(hosts->value);
  }
  if (auto origins = settings.find("admin-allowed-origins", flags.allowed_origins)) {
    options.access.allowed_origins = splitCommaList(origins->value);
  }
  options.max_api_connections =
      parseCount(settings.resolve("admin-max-api-connections", flags.max_api_connections,
                                  std::to_string(options.max_api_connections)),
                 "admin-max-api-connections", 65536);
  options.max_health_connections =
      parseCount(settings.resolve("admin-max-health-connections", flags.max_health_connections,
                                  std::to_string(options.max_health_connections)),
                 "admin-max-health-connections", 65536);
  if (options.listen == kAdminDisabled) return options;
  // Whether a token exists yet does not matter here (serve makes one): this check is about the
  // address and runs before --print-config, which must not create files.
  AdminOptions with_token = options;
  with_token.access.token = "";
  if (auto usable = checkAdminOptions(with_token); !usable) {
    throw CommandError(kExitUserError, usable.error().message);
  }
  return options;
}

void loadAdminToken(AdminOptions& options) {
  if (options.listen == kAdminDisabled) return;
  Setting file{options.token_file, options.token_file_source};
  struct stat status {};
  if (::stat(file.value.c_str(), &status) != 0 && errno == ENOENT) {
    if (auto created = createToken(file)) {
      options.access.token = std::move(*created);
      logInfo("admin token created: file=" + file.value +
              " (mode 0600; `svcbox admin-token` prints it)");
      return;
    }
  }
  options.access.token = readAdminToken(file);
  if (::stat(file.value.c_str(), &status) == 0 && (status.st_mode & 0077) != 0) {
    logWarn("admin token file is readable or writable by others: file=" + file.value + " mode=" +
            [&] {
              char mode[8];
              std::snprintf(mode, sizeof mode, "%04o", status.st_mode & 07777);
              return std::string(mode);
            }() +
            " (chmod 600 it: anyone who reads it can change the registry)");
  }
}

std::string adminUrl(const std::string& listen) {
  if (listen == kAdminDisabled) {
    throw CommandError(kExitUserError, "the admin server is off (--admin-listen none)");
  }
  auto parsed = dns::parseHostPort(listen);
  if (!parsed || !parsed->port) {
    throw CommandError(kExitUserError, "--admin-listen " + listen + ": expected ADDR:PORT");
  }
  if (*parsed->port == 0) {
    throw CommandError(kExitUserError,
                       "--admin-listen " + listen +
                           ": serve picks the port at start; its log line \"admin HTTP on "
                           "ADDR:PORT\" says which");
  }
  // Clients reach a server listening on every address through loopback.
  std::string host =
      parsed->ip.isUnspecified()
          ? (parsed->ip.isV4() ? "127.0.0.1" : "[::1]")
          : (parsed->ip.isV4() ? parsed->ip.toString() : "[" + parsed->ip.toString() + "]");
  return "http://" + host + ":" + std::to_string(*parsed->port);
}

std::unique_ptr<AdminServer> startAdminServer(AdminOptions options, AdminHooks hooks) {
  if (options.listen == kAdminDisabled) return nullptr;
  std::string token_file = options.token_file;
  auto server = std::make_unique<AdminServer>(std::move(options), std::move(hooks));
  if (auto bound = server->bind(); !bound) {
    throw CommandError(kExitUserError, bound.error().message);
  }
  server->start();
  logInfo("admin HTTP on " + server->boundAddress() +
          " (/healthz, /readyz, /metrics, /api/v1; /api/ needs the token of token_file=" +
          token_file + ")");
  return server;
}

}  // namespace svcbox::app
