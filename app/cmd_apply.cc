#include <cstdlib>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "app/manifest.h"
#include "store/test_hooks.h"

namespace svcbox::app {
namespace {

struct ApplyFlags {
  RegistryOptions registry;
  std::vector<std::string> files;
  std::string validate = "strict";
  std::optional<std::string> namespace_name;
};

void runApply(const ApplyFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown({"db", "service-cidr"}, serveSettingNames());
  ManifestOptions options;
  if (!parseValidation(flags.validate, options.validation)) {
    throw CommandError(kExitUserError,
                       "--validate: \"" + flags.validate + "\" is not one of strict, warn, ignore");
  }
  if (flags.namespace_name) {
    options.namespace_name = *flags.namespace_name;
    options.namespace_given = true;
  }
  std::vector<std::string> warnings;
  std::vector<ManifestObject> manifests;
  try {
    manifests = loadManifests(flags.files, options, warnings);
  } catch (const ManifestError& error) {
    throw CommandError(kExitUserError,
                       std::string("error: ") + error.what() + "\nnothing was applied");
  }
  for (const auto& warning : warnings) std::cerr << "warning: " << warning << "\n";
  if (manifests.empty()) throw CommandError(kExitUserError, "error: no objects passed to apply");

  auto cidr = cidrChoice(settings, flags.registry);
  auto registry = openRegistry(registryPath(settings, flags.registry).value);
  if (const char* pause = SVCBOX_TEST_HOOK("SVCBOX_TEST_PAUSE_AFTER_OBJECTS")) {
    registry->setPauseAfterObjects(std::strtoull(pause, nullptr, 10));
  }
  std::vector<store::Object> objects;
  objects.reserve(manifests.size());
  for (const auto& manifest : manifests) objects.push_back(manifest.object);
  size_t failed = manifests.size();
  auto changes = registry->apply(objects, cidr, &failed);
  if (!changes) {
    std::string where =
        failed < manifests.size() ? manifests[failed].locate(changes.error().field) + ": " : "";
    throw CommandError(exitCodeFor(changes.error()),
                       "error: " + where + changes.error().message + "\nnothing was applied");
  }
  for (const auto& change : *changes) {
    if (!change.warning.empty()) std::cerr << "warning: " << change.warning << "\n";
    std::cout << resourceSingular(change.ref.kind) << "/" << change.ref.name << " "
              << store::actionName(change.action);
    if (change.action == store::Change::Action::kCreated && !change.detail.empty()) {
      std::cout << " (" << change.detail << ")";
    }
    std::cout << "\n";
  }
}

}  // namespace

void addApplyCommand(CLI::App& app) {
  auto flags = std::make_shared<ApplyFlags>();
  auto* command = app.add_subcommand("apply",
                                     "Create or update Services, Pods, Endpoints and "
                                     "EndpointSlices from manifests, all or nothing");
  command
      ->add_option("-f,--filename", flags->files,
                   "Manifest file, folder of .yaml/.yml/.json files, or - for stdin")
      ->required();
  command->add_option("-n,--namespace", flags->namespace_name,
                      "Namespace for objects that name none");
  command
      ->add_option("--validate", flags->validate, "Unknown fields: strict (error), warn, or ignore")
      ->capture_default_str();
  command->add_option("--db", flags->registry.db, "Registry file (env SVCBOX_DB)");
  command->add_option("--config", flags->registry.config, "YAML config file (env SVCBOX_CONFIG)");
  command->add_option(
      "--service-cidr", flags->registry.service_cidr,
      "CIDR ClusterIPs are allocated from (env SVCBOX_SERVICE_CIDR; default 10.96.0.0/12)");
  command->callback([flags] { runApply(*flags); });
}

}  // namespace svcbox::app
