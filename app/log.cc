#include "app/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <nlohmann/json.hpp>

namespace svcbox::app {
namespace {

bool json_format = false;

void log(spdlog::level::level_enum level, const std::string& message) {
  if (!json_format) {
    spdlog::log(level, "{}", message);
    return;
  }
  // The message is escaped here because spdlog's pattern cannot escape it.
  spdlog::log(level, "{}", jsonLogFields(level, message));
}

}  // namespace

std::string jsonLogFields(spdlog::level::level_enum level, const std::string& message) {
  nlohmann::json line{{"level", spdlog::level::to_string_view(level).data()}, {"msg", message}};
  // A message can carry bytes from outside (a path, a name a client sent) that are not UTF-8;
  // JSON cannot, and dump() would throw: they become U+FFFD.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(1);
}

bool validLogSettings(const std::string& format, const std::string& level) {
  if (format != "text" && format != "json") return false;
  return spdlog::level::from_str(level) != spdlog::level::off || level == "off";
}

bool configureLogging(const std::string& format, const std::string& level) {
  if (!validLogSettings(format, level)) return false;
  auto parsed = spdlog::level::from_str(level);
  json_format = format == "json";
  auto logger = spdlog::stderr_logger_mt("svcbox");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::trace);
  logger->set_pattern(
      json_format ? "{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",%v" : "%Y-%m-%dT%H:%M:%S.%eZ %l %v",
      spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  return true;
}

void logDebug(const std::string& message) { log(spdlog::level::debug, message); }
void logInfo(const std::string& message) { log(spdlog::level::info, message); }
void logWarn(const std::string& message) { log(spdlog::level::warn, message); }
void logError(const std::string& message) { log(spdlog::level::err, message); }

}  // namespace svcbox::app
