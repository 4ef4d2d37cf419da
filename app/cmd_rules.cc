#include <cstdio>
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

bool isSvcboxLine(const std::string& line) {
  return line.starts_with(":SVCBOX-") || line.starts_with("-A SVCBOX-") ||
         line.find(" -j SVCBOX-") != std::string::npos;
}

// The installed rules come from iptables-legacy-save itself: the kernel's view, printed by the
// reference tool, not by svcbox's own idea of what it wrote.
int printInstalled() {
  for (const char* table : {"nat", "filter", "mangle"}) {
    std::string command = std::string("iptables-legacy-save -t ") + table + " 2>&1";
    std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), &pclose);
    if (!pipe) throw CommandError(kExitInternalError, "error: cannot run iptables-legacy-save");
    std::vector<std::string> lines;
    char buffer[4096];
    std::string line;
    while (std::fgets(buffer, sizeof buffer, pipe.get())) {
      line += buffer;
      if (line.back() != '\n') continue;
      line.pop_back();
      lines.push_back(line);
      line.clear();
    }
    int status = pclose(pipe.release());
    if (status != 0) {
      std::string output = lines.empty() ? "" : lines.front();
      if (output.find("Permission denied") != std::string::npos) {
        throw CommandError(kExitUserError, missingCapabilityMessage("svcbox rules", output));
      }
      throw CommandError(
          kExitInternalError,
          "error: iptables-legacy-save -t " + std::string(table) + " failed" +
              (output.empty() ? " (is the iptables package installed?)" : ": " + output));
    }
    std::cout << "*" << table << "\n";
    for (const auto& text : lines) {
      if (isSvcboxLine(text)) std::cout << text << "\n";
    }
    std::cout << "COMMIT\n";
  }
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
    router::SyncFailure failure;
    bool changed = false;
    if (!router::cleanupAll(failure, changed)) {
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
