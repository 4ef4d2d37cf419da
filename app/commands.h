#pragma once

#include <CLI/CLI.hpp>

// Each command adds its subcommand (flags, help and action) to the svcbox CLI.
namespace svcbox::app {

void addApplyCommand(CLI::App& app);
void addCleanupCommand(CLI::App& app);
void addDeleteCommand(CLI::App& app);
void addGetCommand(CLI::App& app);
void addRulesCommand(CLI::App& app);
void addServeCommand(CLI::App& app);
void addVersionCommand(CLI::App& app);

// Runs the CLI; returns the process exit code.
int runCli(int argc, char** argv);

}  // namespace svcbox::app
