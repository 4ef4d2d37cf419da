#include "app/config.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "app/common.h"
#include "app/yaml_tree.h"

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
  std::error_code ec;
  std::ifstream in(config_path_, std::ios::binary);
  if (!in || std::filesystem::is_directory(config_path_, ec)) {
    throw CommandError(kExitUserError, "config file " + config_path_ + ": cannot read it");
  }
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    throw CommandError(kExitUserError, "config file " + config_path_ + ": cannot read it");
  }
  config_ = parseConfig(text, config_path_);
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

namespace {

[[noreturn]] void configError(const std::string& path, yaml::Mark mark,
                              const std::string& message) {
  throw CommandError(kExitUserError, "config file " + path + ":" + std::to_string(mark.line + 1) +
                                         ":" + std::to_string(mark.column + 1) + ": " + message);
}

}  // namespace

std::map<std::string, std::string> parseConfig(std::string_view text, const std::string& path) {
  std::map<std::string, std::string> config;
  bool seen_document = false;
  auto read = [&](const yaml::Node& root) {
    if (seen_document) {
      configError(path, root.Mark(), "a second document; the config file holds one mapping");
    }
    seen_document = true;
    if (!root.IsMap()) configError(path, root.Mark(), "expected a mapping of setting: value");
    for (const auto& [key, value] : root.items()) {
      if (!key.IsScalar()) configError(path, key.Mark(), "a setting's name must be a single value");
      const std::string& name = key.Scalar();
      if (value.IsSequence()) {
        // Repeatable settings (a list) are joined; the caller splits them.
        std::string joined;
        for (size_t i = 0; i < value.size(); ++i) {
          if (!value[i].IsScalar() || value[i].IsNull()) {
            configError(path, value[i].Mark(), name + ": a list of single values is expected");
          }
          joined += (i == 0 ? "" : ",") + value[i].Scalar();
        }
        config[name] = joined;
      } else if (value.IsScalar() && !value.IsNull()) {
        config[name] = value.Scalar();
      } else {
        configError(path, key.Mark(), name + " must be a single value or a list");
      }
    }
  };
  try {
    yaml::forEachDocument(text, read);
  } catch (const yaml::Error& error) {
    configError(path, error.mark(), std::string("not valid YAML: ") + error.what());
  }
  return config;
}

std::optional<uint64_t> parseWholeNumber(std::string_view text, uint64_t max) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || ptr != end || value > max) return std::nullopt;
  return value;
}

}  // namespace svcbox::app
