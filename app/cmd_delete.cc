#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "app/manifest.h"

namespace svcbox::app {
namespace {

struct DeleteFlags {
  RegistryOptions registry;
  std::vector<std::string> files;
  std::vector<std::string> args;  // TYPE NAME...
  std::optional<std::string> namespace_name;
  bool ignore_not_found = false;
};

std::vector<store::ObjectRef> targets(const DeleteFlags& flags) {
  std::vector<store::ObjectRef> refs;
  std::string namespace_name = flags.namespace_name.value_or("default");
  if (!flags.files.empty()) {
    if (!flags.args.empty()) {
      throw CommandError(kExitUserError, "error: give either -f FILE or TYPE NAME..., not both");
    }
    ManifestOptions options;
    options.validation = Validation::kIgnore;  // deleting needs only kind, namespace and name
    options.namespace_name = namespace_name;
    options.namespace_given = flags.namespace_name.has_value();
    std::vector<std::string> warnings;
    try {
      for (const auto& manifest : loadManifests(flags.files, options, warnings)) {
        refs.push_back(store::refOf(manifest.object));
      }
    } catch (const ManifestError& error) {
      throw CommandError(kExitUserError,
                         std::string("error: ") + error.what() + "\nnothing was deleted");
    }
    return refs;
  }
  if (flags.args.size() < 2) {
    throw CommandError(
        kExitUserError,
        "error: say what to delete: svcbox delete svc|pod|ep NAME... [-n NS], or -f FILE");
  }
  auto kind = parseResource(flags.args[0]);
  for (size_t i = 1; i < flags.args.size(); ++i)
    refs.push_back(store::ObjectRef{kind, namespace_name, flags.args[i]});
  return refs;
}

void runDelete(const DeleteFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown({"db", "service-cidr"}, serveSettingNames());
  auto refs = targets(flags);
  auto registry = openRegistry(registryPath(settings, flags.registry).value);
  auto changes = registry->remove(refs);
  if (!changes) failWith(changes.error());
  bool missing = false;
  for (const auto& change : *changes) {
    std::string singular = resourceSingular(change.ref.kind);
    if (change.action == store::Change::Action::kDeleted) {
      std::cout << singular << " \"" << change.ref.name << "\" deleted";
      if (!change.detail.empty()) std::cout << " (" << change.detail << ")";
      std::cout << "\n";
    } else if (!flags.ignore_not_found) {
      missing = true;
      std::cerr << "Error from server (NotFound): " << resourcePlural(change.ref.kind) << " \""
                << change.ref.name << "\" not found in namespace " << change.ref.namespace_name
                << "\n";
    }
  }
  if (missing) throw CommandError(kExitUserError, "");
}

}  // namespace

void addDeleteCommand(CLI::App& app) {
  auto flags = std::make_shared<DeleteFlags>();
  auto* command = app.add_subcommand(
      "delete", "Delete objects by file or by TYPE NAME (svc, pod, ep, endpointslice)");
  command->add_option("args", flags->args, "TYPE NAME... (for example: svc web)");
  command->add_option("-f,--filename", flags->files,
                      "Manifest file or folder naming the objects to delete");
  command->add_option("-n,--namespace", flags->namespace_name, "Namespace (default: default)");
  command->add_flag("--ignore-not-found", flags->ignore_not_found,
                    "Objects that do not exist are not an error");
  command->add_option("--db", flags->registry.db, "Registry file (env SVCBOX_DB)");
  command->add_option("--config", flags->registry.config, "YAML config file (env SVCBOX_CONFIG)");
  command->callback([flags] { runDelete(*flags); });
}

}  // namespace svcbox::app
