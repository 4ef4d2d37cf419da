#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/config.h"
#include "app/registry_writer.h"
#include "health/prober.h"

// serve's side of the readiness prober: --default-probe, and a prober whose verdicts are written
// back to the registry.
namespace svcbox::app {

struct HealthFlags {
  std::optional<std::string> default_probe;
};

void addHealthFlags(CLI::App& command, HealthFlags& flags);
std::vector<std::string> healthSettingNames();
// Throws CommandError naming the setting when it is neither tcp nor none.
store::DefaultProbe resolveDefaultProbe(Settings& settings, const HealthFlags& flags);

// Not started. Verdicts go through `writer` in one transaction per batch; at most
// `max_in_flight` probes run at once.
std::unique_ptr<health::Prober> makeProber(store::DefaultProbe default_probe, size_t max_in_flight,
                                           RegistryWriter& writer);

}  // namespace svcbox::app
