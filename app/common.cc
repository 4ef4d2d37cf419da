#include "app/common.h"

#include <cctype>
#include <filesystem>

#include "store/owner_lock.h"

namespace svcbox::app {

int exitCodeFor(const store::Error& error) {
  return error.kind == store::ErrorKind::kInternal ? kExitInternalError : kExitUserError;
}

void failWith(const store::Error& error) {
  bool named = error.field.empty() || error.message.find(error.field) != std::string::npos;
  std::string field = named ? "" : " (field " + error.field + ")";
  throw CommandError(exitCodeFor(error), error.message + field);
}

Setting registryPath(Settings& settings, const RegistryOptions& options) {
  return settings.resolve("db", options.db, store::defaultRegistryPath());
}

std::unique_ptr<store::Registry> openRegistry(const std::string& path) {
  namespace fs = std::filesystem;
  auto folder = fs::path(path).parent_path();
  std::error_code ec;
  if (!folder.empty() && !fs::exists(folder, ec)) {
    // Only svcbox's own default state folder is made: a missing folder in a path the user gave
    // is more likely a typo than a wish for a new, empty registry.
    if (path != store::defaultRegistryPath()) {
      throw CommandError(kExitUserError, "cannot open the registry " + path + ": the folder " +
                                             folder.string() +
                                             " does not exist; create it first or fix --db");
    }
    fs::create_directories(folder, ec);
    if (ec) {
      throw CommandError(kExitUserError, "cannot create the registry folder " + folder.string() +
                                             ": " + ec.message() +
                                             "; choose another path with --db");
    }
  }
  if (!fs::exists(path, ec)) {
    // A live serve still owns this path but its file is gone: a new file here would split the
    // registry in two (writes acknowledged on one, served from the other).
    if (auto owner = store::liveOwnerOfPath(path)) {
      throw CommandError(kExitUserError,
                         "error: " + path + " is missing but svcbox serve (pid " + *owner +
                             ") still owns that path: its registry file was deleted or moved "
                             "while it ran. Restart that serve (it stops on its own once it "
                             "notices) before creating a new registry here");
    }
  }
  auto registry = store::Registry::open(path);
  if (!registry) failWith(registry.error());
  return std::move(*registry);
}

store::CidrChoice cidrChoice(Settings& settings, const RegistryOptions& options) {
  auto setting = settings.find("service-cidr", options.service_cidr);
  if (!setting) return {};
  auto cidr = store::Cidr::parse(setting->value);
  if (!cidr) {
    throw CommandError(kExitUserError,
                       setting->source + ": \"" + setting->value +
                           "\" is not a CIDR such as 10.96.0.0/12 (no host bits set)");
  }
  if (cidr->hostBits() < 2) {
    throw CommandError(kExitUserError, setting->source + ": " + setting->value +
                                           " is too small to hold a ClusterIP");
  }
  return store::CidrChoice{cidr, setting->source};
}

store::ObjectKind parseResource(const std::string& text) {
  using store::ObjectKind;
  if (text == "svc" || text == "service" || text == "services") return ObjectKind::kService;
  if (text == "po" || text == "pod" || text == "pods") return ObjectKind::kPod;
  if (text == "ep" || text == "endpoints") return ObjectKind::kEndpoints;
  if (text == "endpointslice" || text == "endpointslices") return ObjectKind::kEndpointSlice;
  throw CommandError(kExitUserError, "error: the server doesn't have a resource type \"" + text +
                                         "\"; use svc, pods, endpoints or endpointslices");
}

std::string resourceSingular(store::ObjectKind kind) {
  std::string name = store::objectKindName(kind);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::string resourcePlural(store::ObjectKind kind) {
  switch (kind) {
    case store::ObjectKind::kService:
      return "services";
    case store::ObjectKind::kPod:
      return "pods";
    case store::ObjectKind::kEndpoints:
      return "endpoints";
    case store::ObjectKind::kEndpointSlice:
      return "endpointslices";
  }
  return "objects";
}

// "30s", "500ms", "2m".
std::vector<std::string> splitCommaList(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string part = text.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(part.begin());
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!part.empty()) parts.push_back(part);
    start = comma + 1;
  }
  return parts;
}

std::chrono::milliseconds parseDuration(const Setting& setting, const std::string& name) {
  const auto& value = setting.value;
  size_t digits = 0;
  while (digits < value.size() && std::isdigit(static_cast<unsigned char>(value[digits]))) ++digits;
  std::string unit = value.substr(digits);
  long long number = digits > 0 && digits < 10 ? std::stoll(value.substr(0, digits)) : -1;
  long long scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
  if (number <= 0 || scale == 0) {
    throw CommandError(kExitUserError, setting.source + ": --" + name +
                                           " must be a positive duration such as 30s, 500ms or "
                                           "2m, not \"" +
                                           value + "\"");
  }
  return std::chrono::milliseconds(number * scale);
}

// A whole number from 0 to `max`.
size_t parseCount(const Setting& setting, const std::string& name, size_t max) {
  auto value = parseWholeNumber(setting.value, max);
  if (!value) {
    throw CommandError(kExitUserError, setting.source + ": --" + name +
                                           " must be a whole number from 0 to " +
                                           std::to_string(max) + ", not \"" + setting.value + "\"");
  }
  return *value;
}

}  // namespace svcbox::app
