#include <iostream>

#include "app/commands.h"
#include "app/common.h"

namespace svcbox::app {

void addVersionCommand(CLI::App& app) {
  auto* command = app.add_subcommand("version", "Print the svcbox version");
  command->callback([] {
    std::cout << "svcbox " SVCBOX_VERSION " (registry schema " << store::kSchemaVersion << ")\n";
  });
}

int runCli(int argc, char** argv) {
  CLI::App app{"svcbox: cluster DNS and Service routing (CoreDNS + kube-proxy) in one process",
               "svcbox"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every command");
  app.footer(kExitCodesHelp);
  addAdminCommands(app);
  addApplyCommand(app);
  addCleanupCommand(app);
  addDeleteCommand(app);
  addGetCommand(app);
  addRulesCommand(app);
  addServeCommand(app);
  addVersionCommand(app);
  if (argc > 1 && argv[1][0] != '-') {
    std::string name = argv[1];
    bool known = false;
    for (const auto* command : app.get_subcommands({})) known |= command->get_name() == name;
    if (!known) {
      std::cerr << "error: unknown command \"" << name
                << "\"; commands: admin-token, admin-url, apply, cleanup, delete, get, rules, "
                   "serve, version (see svcbox "
                   "--help)\n";
      return kExitUserError;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& error) {
    // Subcommand help arrives here too, as a ParseError with exit code 0.
    if (error.get_exit_code() == 0) return app.exit(error);
    std::cerr << "error: " << error.what()
              << "\nRun 'svcbox --help' or 'svcbox COMMAND --help' for usage.\n";
    return kExitUserError;
  } catch (const CommandError& error) {
    if (*error.what()) std::cerr << error.what() << "\n";
    return error.exitCode();
  } catch (const std::exception& error) {
    // Every error a user can fix is a CommandError; what is left failed inside (c-ares could
    // not start, memory ran out), as the exit codes' help says.
    std::cerr << "error: " << error.what() << "\n";
    return kExitInternalError;
  }
  return kExitOk;
}

}  // namespace svcbox::app
