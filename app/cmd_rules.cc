#include <iostream>
#include <memory>

#include "app/commands.h"
#include "app/common.h"
#include "app/serve_router.h"
#include "router/chain_names.h"
#include "router/desired_state.h"
#include "router/router.h"
#include "router/rule_text.h"

// `svcbox rules` (what svcbox has installed, or would install) and `svcbox cleanup`.
namespace svcbox::app {
namespace {

struct RulesFlags {
  RegistryOptions registry;
  bool desired = false;
  // --desired computes with the options serve would use: --cluster-cidr, --masquerade-all.
  RouterFlags router;
};

// What the kernel holds, read back by the backend that owns svcbox's netfilter state.
int printInstalled() {
  auto provider = netfilterProvider();
  std::vector<std::string> lines;
  router::SyncFailure failure;
  if (!provider->installedRules(lines, failure)) {
    if (failure.permission_denied) {
      throw CommandError(kExitUserError, missingCapabilityMessage("svcbox rules", failure.message));
    }
    throw CommandError(kExitInternalError, "error: " + failure.message);
  }
  for (const auto& line : lines) std::cout << line << "\n";
  return kExitOk;
}

int printDesired(const RulesFlags& flags) {
  Settings settings(flags.registry.config);
  settings.requireKnown(serveSettingNames(), serveSettingNames());
  auto path = registryPath(settings, flags.registry);
  // The same settings serve resolves (flag, SVCBOX_*, config file), so the output compares with
  // what a serve started the same way installed.
  auto router_settings = resolveRouterSettings(settings, flags.router);
  auto registry = openRegistry(path.value);
  auto snapshot = registry->loadSnapshot();
  if (!snapshot) failWith(snapshot.error());
  auto state = router::computeDesiredState(**snapshot, router_settings.options);
  for (const auto* table : {&state.nat, &state.filter, &state.mangle}) {
    std::cout << "*" << table->name << "\n";
    for (const auto& line : router::tableText(*table)) std::cout << line << "\n";
    std::cout << "COMMIT\n";
  }
  return kExitOk;
}

}  // namespace

void addRulesCommand(CLI::App& app) {
  auto flags = std::make_shared<RulesFlags>();
  auto* command = app.add_subcommand(
      "rules", "Print svcbox's installed netfilter rules (iptables-save format)");
  command->add_flag("--desired", flags->desired,
                    "Print the rules the registry implies instead (with serve's --cluster-cidr "
                    "and --masquerade-all), no kernel");
  command->add_option("--cluster-cidr", flags->router.cluster_cidr,
                      "For --desired: serve's --cluster-cidr");
  command
      ->add_option("--masquerade-all", flags->router.masquerade_all,
                   "For --desired: serve's --masquerade-all")
      ->expected(0, 1)
      ->default_str("true");
  command->add_option("--db", flags->registry.db, "Registry file for --desired (env SVCBOX_DB)");
  command->add_option("--config", flags->registry.config, "YAML config file (env SVCBOX_CONFIG)");
  command->callback([flags] {
    int code = flags->desired ? printDesired(*flags) : printInstalled();
    if (code != kExitOk) throw CommandError(code, "");
  });
}

void addCleanupCommand(CLI::App& app) {
  auto* command = app.add_subcommand(
      "cleanup", "Remove every svcbox chain (SVCBOX-*) and every jump into one; leave the rest");
  command->callback([] {
    auto provider = netfilterProvider();
    router::SyncFailure failure;
    bool changed = false;
    if (!provider->cleanup(failure, changed)) {
      throw CommandError(kExitUserError,
                         failure.permission_denied
                             ? missingCapabilityMessage("svcbox cleanup", failure.message)
                             : "error: cleanup failed: " + failure.message);
    }
    std::cout << (changed ? "removed svcbox's chains and jumps from nat, filter and mangle\n"
                          : "nothing to remove: no svcbox chain or jump was installed\n");
  });
}

}  // namespace svcbox::app
