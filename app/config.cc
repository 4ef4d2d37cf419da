#include "app/config.h"

#include "app/common.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace svcbox::app {

std::string environmentName(const std::string& name) {
  std::string variable = "SVCBOX_";
  for (char c : name) variable += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return variable;
}

Settings::Settings(const std::optional<std::string>& config_flag) {
  if (config_flag) {
    config_path_ = *config_flag;
  } else if (const char* path = std::getenv("SVCBOX_CONFIG"); path && *path) {
    config_path_ = path;
  }
  if (config_path_.empty()) return;
  YAML::Node root;
  try {
    root = YAML::LoadFile(config_path_);
  } catch (const YAML::BadFile&) {
    throw CommandError(kExitUserError, "config file " + config_path_ + ": cannot read it");
  } catch (const YAML::Exception& error) {
    throw CommandError(kExitUserError, "config file " + config_path_ + ":" +
                                           std::to_string(error.mark.line + 1) +
                                           ": not valid YAML: " + error.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap())
    throw CommandError(kExitUserError,
                       "config file " + config_path_ + ": expected a mapping of setting: value");
  for (const auto& item : root) {
    auto key = item.first.as<std::string>();
    if (!item.second.IsScalar()) {
      // Repeatable settings (a list) are joined; the caller splits them.
      if (item.second.IsSequence()) {
        std::string joined;
        for (const auto& element : item.second)
          joined += (joined.empty() ? "" : ",") + element.as<std::string>();
        config_[key] = joined;
        continue;
      }
      throw CommandError(kExitUserError, "config file " + config_path_ + ":" +
                                             std::to_string(item.first.Mark().line + 1) + ": " +
                                             key + " must be a single value or a list");
    }
    config_[key] = item.second.Scalar();
  }
}

void Settings::requireKnown(const std::vector<std::string>& this_command,
                            const std::vector<std::string>& every_command) const {
  for (const auto& [key, value] : config_) {
    if (std::find(every_command.begin(), every_command.end(), key) != every_command.end()) {
      continue;
    }
    std::string list;
    for (const auto& name : this_command) list += (list.empty() ? "" : ", ") + name;
    throw CommandError(kExitUserError, "config file " + config_path_ + ": unknown setting \"" +
                                           key + "\"; this command knows: " + list +
                                           (this_command.size() < every_command.size()
                                                ? " (and leaves serve's settings to serve)"
                                                : ""));
  }
}

std::optional<Setting> Settings::find(const std::string& name,
                                      const std::optional<std::string>& flag) {
  auto setting = lookUp(name, flag);
  // Unset settings are listed too, so --print-config shows every setting there is.
  record(name, setting.value_or(Setting{"", "nothing sets it"}));
  return setting;
}

std::optional<Setting> Settings::lookUp(const std::string& name,
                                        const std::optional<std::string>& flag) const {
  std::optional<Setting> setting;
  if (flag) {
    setting = Setting{*flag, "flag --" + name};
  } else if (const char* value = std::getenv(environmentName(name).c_str()); value && *value) {
    setting = Setting{value, "environment " + environmentName(name)};
  } else if (auto it = config_.find(name); it != config_.end()) {
    setting = Setting{it->second, "config file " + config_path_};
  }
  return setting;
}

void Settings::record(const std::string& name, const Setting& setting) {
  // A later look at the same setting (a default described after an unset find) replaces it.
  for (auto& [known, value] : resolved_) {
    if (known == name) {
      value = setting;
      return;
    }
  }
  resolved_.emplace_back(name, setting);
}

Setting Settings::resolve(const std::string& name, const std::optional<std::string>& flag,
                          const std::string& fallback) {
  if (auto setting = lookUp(name, flag)) {
    record(name, *setting);
    return *setting;
  }
  Setting setting{fallback, "default"};
  record(name, setting);
  return setting;
}

std::optional<uint64_t> parseWholeNumber(std::string_view text, uint64_t max) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end || value > max) return std::nullopt;
  return value;
}

}  // namespace svcbox::app
