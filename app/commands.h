#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

// Each command adds its subcommand (flags, help and action) to the svcbox CLI.
namespace svcbox::app {

void addAdminCommands(CLI::App& app);  // admin-token, admin-url
void addApplyCommand(CLI::App& app);
void addCleanupCommand(CLI::App& app);
void addDeleteCommand(CLI::App& app);
void addGetCommand(CLI::App& app);
void addRulesCommand(CLI::App& app);
void addServeCommand(CLI::App& app);
void addVersionCommand(CLI::App& app);

// Every key a config file may hold: serve's settings, which include every other command's. One
// SVCBOX_CONFIG can then serve every command: each reads the keys it knows and ignores the
// others' (a key no command knows is still an error).
std::vector<std::string> serveSettingNames();

// Runs the CLI; returns the process exit code.
int runCli(int argc, char** argv);

}  // namespace svcbox::app
