#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/config.h"
#include "store/registry.h"

namespace svcbox::app {

enum ExitCode : int { kExitOk = 0, kExitUserError = 1, kExitInternalError = 2 };

// The exit codes, as `svcbox --help` and `svcbox serve --help` print them (the README's table
// says the same).
inline constexpr const char* kExitCodesHelp =
    "Exit codes:\n"
    "  0  done (serve: stopped by SIGTERM or SIGINT; SIGHUP only resyncs)\n"
    "  1  something you can fix: a bad flag, setting or manifest; a registry file that is\n"
    "     unusable, foreign, busy, owned by another serve, or deleted or replaced under serve;\n"
    "     a missing capability\n"
    "  2  a failure you cannot fix, after a start that went well: an I/O error on a registry\n"
    "     that was fine";

// Ends a command with a message for stderr and an exit code.
class CommandError : public std::runtime_error {
 public:
  CommandError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exitCode() const { return exit_code_; }

 private:
  int exit_code_;
};

int exitCodeFor(const store::Error& error);
[[noreturn]] void failWith(const store::Error& error);

// Options every registry command takes.
struct RegistryOptions {
  std::optional<std::string> config;
  std::optional<std::string> db;
  std::optional<std::string> service_cidr;
};

// The registry path after flag > environment > config file > default.
Setting registryPath(Settings& settings, const RegistryOptions& options);
// Opens (creating its folder) the registry, or throws CommandError.
std::unique_ptr<store::Registry> openRegistry(const std::string& path);
// --service-cidr / SVCBOX_SERVICE_CIDR / config, parsed; throws CommandError when malformed.
store::CidrChoice cidrChoice(Settings& settings, const RegistryOptions& options);

// "a, b,,c" -> {"a", "b", "c"}: a comma-separated setting, items trimmed of spaces, empty ones
// dropped.
std::vector<std::string> splitCommaList(const std::string& text);

// A duration setting: "30s", "500ms", "2m"; throws CommandError naming --name otherwise.
std::chrono::milliseconds parseDuration(const Setting& setting, const std::string& name);
// A whole-number setting from 0 to max; throws CommandError naming --name otherwise.
size_t parseCount(const Setting& setting, const std::string& name, size_t max);

// kubectl's resource names and aliases: svc/service/services, po/pod/pods, ep/endpoints,
// endpointslice(s). Throws CommandError for anything else.
store::ObjectKind parseResource(const std::string& text);
// "services", "pods", ... as kubectl names them in messages.
std::string resourcePlural(store::ObjectKind kind);
// "service", "pod", "endpoints", "endpointslice", as in kubectl's "service/web created".
std::string resourceSingular(store::ObjectKind kind);

}  // namespace svcbox::app
