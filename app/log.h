#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace svcbox::app {

// text: "2026-11-26T07:00:00.123Z info message"; json: one object per line with time, level, msg.
// Returns false for an unknown format or level.
bool configureLogging(const std::string& format, const std::string& level);
// What configureLogging accepts, checked without configuring anything (serve --print-config).
bool validLogSettings(const std::string& format, const std::string& level);
void logDebug(const std::string& message);
void logInfo(const std::string& message);
void logWarn(const std::string& message);
void logError(const std::string& message);
// The fields of a json line after the time, without the leading brace the pattern writes:
// `"level":"info","msg":"..."}`. Bytes that are not UTF-8 become U+FFFD.
std::string jsonLogFields(spdlog::level::level_enum level, const std::string& message);

// Relays a line from a part that reports through its own LogLevel enum (router::LogLevel,
// health::LogLevel: kDebug, kInfo, kWarn), prefixed with the part's name.
template <typename Level>
void logFrom(const char* part, Level level, const std::string& message) {
  std::string line = std::string(part) + ": " + message;
  if (level == Level::kDebug) {
    logDebug(line);
  } else if (level == Level::kInfo) {
    logInfo(line);
  } else {
    logWarn(line);
  }
}

}  // namespace svcbox::app
