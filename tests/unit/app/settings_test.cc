#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "app/commands.h"
#include "app/config.h"
#include "tests/unit/temp_dir.h"

namespace svcbox::app {
namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string configFile(const testing::TempDir& dir, const std::string& text) {
  auto path = dir.file("svcbox.yaml");
  std::ofstream(path) << text;
  return path;
}

TEST(SettingsTest, EveryServeFlagCanAlsoComeFromTheConfigFile) {
  CLI::App app;
  addServeCommand(app);
  auto* serve = app.get_subcommand("serve");
  size_t checked = 0;
  for (const auto* option : serve->get_options()) {
    for (const auto& name : option->get_lnames()) {
      if (name == "help" || name == "config" || name == "print-config") continue;
      EXPECT_TRUE(contains(serveSettingNames(), name)) << "--" << name << " is no config key";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20u);  // the loop saw serve's flags, not an empty list
}

TEST(SettingsTest, OneConfigFileServesEveryCommand) {
  testing::TempDir dir;
  Settings settings(configFile(dir, "db: /tmp/r.db\ndns-threads: 2\nproxy-mode: none\n"));
  EXPECT_NO_THROW(settings.requireKnown({"db", "service-cidr"}, serveSettingNames()));
  EXPECT_EQ(settings.resolve("db", std::nullopt, "default").value, "/tmp/r.db");
}

TEST(SettingsTest, AKeyNoCommandKnowsIsStillAnError) {
  testing::TempDir dir;
  Settings settings(configFile(dir, "db: /tmp/r.db\ndns-thread: 2\n"));
  try {
    settings.requireKnown({"db", "service-cidr"}, serveSettingNames());
    FAIL() << "dns-thread was accepted";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("unknown setting \"dns-thread\""), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace svcbox::app
