#include "app/serve_health.h"

#include "app/common.h"
#include "app/log.h"

namespace svcbox::app {

void addHealthFlags(CLI::App& command, HealthFlags& flags) {
  command.add_option("--default-probe", flags.default_probe,
                     "tcp (default): pods without a readinessProbe are probed by TCP connect to "
                     "the ports their Services target; none: they are ready as registered");
}

std::vector<std::string> healthSettingNames() { return {"default-probe"}; }

store::DefaultProbe resolveDefaultProbe(Settings& settings, const HealthFlags& flags) {
  auto setting = settings.resolve("default-probe", flags.default_probe, "tcp");
  if (setting.value == "tcp") return store::DefaultProbe::kTcp;
  if (setting.value == "none") return store::DefaultProbe::kNone;
  throw CommandError(kExitUserError, "--default-probe (" + setting.source + "): \"" +
                                         setting.value + "\": must be tcp or none");
}

std::unique_ptr<health::Prober> makeProber(store::DefaultProbe default_probe, size_t max_in_flight,
                                           RegistryWriter& writer) {
  health::ProberOptions options;
  options.default_probe = default_probe;
  options.max_in_flight = max_in_flight;
  // On the writer's worker: a busy registry delays the verdicts, not the probes.
  auto write = [&writer](std::vector<store::ReadinessUpdate> updates,
                         health::Prober::WriteDone done) {
    writer.post([&writer, updates = std::move(updates), done = std::move(done)] {
      auto written = writer.setReadiness(updates);
      if (!written) {
        logWarn(
            "cannot record " + std::to_string(updates.size()) +
            " readiness change(s), will retry after the next probes: " + written.error().message);
      }
      done(bool(written));
    });
  };
  auto log = [](health::LogLevel level, const std::string& message) {
    logFrom("prober", level, message);
  };
  return std::make_unique<health::Prober>(options, write, log);
}

}  // namespace svcbox::app
