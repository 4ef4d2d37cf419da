#include "app/serve_stop.h"

#include <pthread.h>
#include <unistd.h>

#include "app/log.h"

namespace svcbox::app {
namespace {

// Raised by fatal() to end the sigwait; kept blocked in every thread like the others.
constexpr int kFatalSignal = SIGUSR1;

}  // namespace

ServeStop::ServeStop() {
  sigemptyset(&signals_);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, kFatalSignal}) {
    sigaddset(&signals_, signal_number);
  }
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

void ServeStop::fatal(int exit_code, const std::string& reason) {
  logError(reason);
  {
    std::lock_guard lock(mutex_);
    if (exit_code_ >= 0) return;
    exit_code_ = exit_code;
  }
  kill(getpid(), kFatalSignal);
}

int ServeStop::wait(const std::function<void()>& on_hangup) {
  for (;;) {
    int signal_number = 0;
    sigwait(&signals_, &signal_number);
    switch (signal_number) {
      case SIGHUP:
        logInfo(
            "received SIGHUP: full resync of the rules and the registry (settings are read "
            "only at start: restart serve to change them)");
        if (on_hangup) on_hangup();
        continue;
      case SIGTERM:
      case SIGINT:
        logInfo(std::string("received ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT") +
                ", stopping");
        return 0;
      default: {
        std::lock_guard lock(mutex_);
        if (exit_code_ >= 0) {
          logInfo("stopping with exit code " + std::to_string(exit_code_));
          return exit_code_;
        }
        logWarn("received SIGUSR1, which serve does not use: ignored");
      }
    }
  }
}

}  // namespace svcbox::app
