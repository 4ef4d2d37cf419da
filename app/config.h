#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Settings come from a flag, an SVCBOX_* environment variable, the YAML config file, or a
// built-in default, in that order of precedence.
namespace svcbox::app {

struct Setting {
  std::string value;
  std::string source;  // "flag --db", "environment SVCBOX_DB", "config file F", "default"
};

class Settings {
 public:
  // `config_flag` is --config; without it SVCBOX_CONFIG names the file, and without that there
  // is none. Throws CommandError (exit 1) when the file cannot be read or is malformed.
  explicit Settings(const std::optional<std::string>& config_flag);

  // `name` is the flag without dashes ("service-cidr"); its variable is SVCBOX_SERVICE_CIDR.
  Setting resolve(const std::string& name, const std::optional<std::string>& flag,
                  const std::string& fallback);
  // Like resolve, but with no default: empty when nothing sets it.
  std::optional<Setting> find(const std::string& name, const std::optional<std::string>& flag);

  // Throws when the config file holds a key that no command knows (`every_command`); keys
  // another command knows are left to it. `this_command` names what this one reads, for the
  // message.
  void requireKnown(const std::vector<std::string>& this_command,
                    const std::vector<std::string>& every_command) const;

  // Every setting asked for so far; one nothing set has an empty value.
  const std::vector<std::pair<std::string, Setting>>& resolved() const { return resolved_; }
  const std::string& configPath() const { return config_path_; }

 private:
  std::optional<Setting> lookUp(const std::string& name,
                                const std::optional<std::string>& flag) const;
  void record(const std::string& name, const Setting& setting);

  std::string config_path_;
  std::map<std::string, std::string> config_;
  std::vector<std::pair<std::string, Setting>> resolved_;
};

std::string environmentName(const std::string& name);

// The settings a config file's text holds: one mapping of setting: value (a list's values joined
// with commas); none in an empty file. Throws CommandError (exit 1) naming `path`, the line and
// the column of what is wrong. Read through the hardened YAML layer (yaml_tree.h), like manifests.
std::map<std::string, std::string> parseConfig(std::string_view text, const std::string& path);

// A whole number from 0 to `max` written in decimal digits only; empty otherwise. Each setting
// reports the error in its own words.
std::optional<uint64_t> parseWholeNumber(std::string_view text, uint64_t max);

}  // namespace svcbox::app
