#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "app/commands.h"
#include "app/common.h"
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

std::string configErrorOf(const std::string& text) {
  try {
    parseConfig(text, "c.yaml");
  } catch (const CommandError& error) {
    EXPECT_EQ(error.exitCode(), kExitUserError);
    return error.what();
  }
  return "no error";
}

TEST(SettingsTest, TheConfigFileIsAMappingOfSettingsWithListsJoinedByCommas) {
  auto config =
      parseConfig("db: /tmp/r.db\nttl: 5\nupstream: [1.1.1.1, \"8.8.8.8:53\"]\n", "c.yaml");
  EXPECT_EQ(config, (std::map<std::string, std::string>{
                        {"db", "/tmp/r.db"}, {"ttl", "5"}, {"upstream", "1.1.1.1,8.8.8.8:53"}}));
  EXPECT_TRUE(parseConfig("", "c.yaml").empty());
  EXPECT_TRUE(parseConfig("# nothing yet\n---\n~\n", "c.yaml").empty());
}

TEST(SettingsTest, ConfigErrorsNameTheFileLineAndColumn) {
  EXPECT_EQ(configErrorOf("db: /tmp/r.db\nupstream: [1.1.1.1\n"),
            "config file c.yaml:3:1: not valid YAML: while parsing a flow sequence: did not find "
            "expected ',' or ']'");
  EXPECT_EQ(configErrorOf("- db\n"),
            "config file c.yaml:1:1: expected a mapping of setting: value");
  EXPECT_EQ(configErrorOf("db: /a\nttl:\n"),
            "config file c.yaml:2:1: ttl must be a single value or a list");
  EXPECT_EQ(configErrorOf("db: {path: /a}\n"),
            "config file c.yaml:1:1: db must be a single value or a list");
  EXPECT_EQ(configErrorOf("upstream: [1.1.1.1, [8.8.8.8]]\n"),
            "config file c.yaml:1:21: upstream: a list of single values is expected");
  EXPECT_EQ(configErrorOf("db: /a\n---\ndb: /b\n"),
            "config file c.yaml:3:1: a second document; the config file holds one mapping");
}

TEST(SettingsTest, TheConfigFileGoesThroughTheHardenedYamlLayer) {
  EXPECT_NE(configErrorOf("db: &x [*x]\n")
                .find("c.yaml:1:9: not valid YAML: alias *x stands for "
                      "a node that contains it"),
            std::string::npos);
  std::string fan_out = "a0: &a0 [x]\n";
  for (int level = 1; level < 10; ++level) {
    std::string previous = "*a" + std::to_string(level - 1);
    fan_out += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [" + previous;
    for (int i = 1; i < 10; ++i) fan_out += ", " + previous;
    fan_out += "]\n";
  }
  EXPECT_NE(configErrorOf(fan_out).find("refused"), std::string::npos);
  EXPECT_NE(configErrorOf("db: " + std::string(65, '[') + std::string(65, ']') + "\n")
                .find("nested deeper than 64 levels"),
            std::string::npos);
}

TEST(SettingsTest, AConfigFileThatCannotBeReadIsAnErrorNamingIt) {
  testing::TempDir dir;
  for (const auto& path : {dir.file("missing.yaml"), dir.file("")}) {
    try {
      Settings settings(path);
      FAIL() << path << " was read";
    } catch (const CommandError& error) {
      EXPECT_EQ(std::string(error.what()), "config file " + path + ": cannot read it");
    }
  }
  Settings settings(configFile(dir, "db: /tmp/r.db\nupstream:\n  - 1.1.1.1\n  - 9.9.9.9\n"));
  EXPECT_EQ(settings.resolve("upstream", std::nullopt, "").value, "1.1.1.1,9.9.9.9");
  EXPECT_EQ(settings.resolve("upstream", std::nullopt, "").source,
            "config file " + dir.file("svcbox.yaml"));
}

}  // namespace
}  // namespace svcbox::app
