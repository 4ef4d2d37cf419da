#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace svcbox::app {

// text: "2026-11-26T07:00:00.123Z info message"; json: one object per line with time, level, msg.
// Returns false for an unknown format or level.
bool configureLogging(const std::string& format, const std::string& level);
void logDebug(const std::string& message);
void logInfo(const std::string& message);
void logWarn(const std::string& message);
void logError(const std::string& message);

}  // namespace svcbox::app
