#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

// What ends serve, and how: SIGTERM/SIGINT (exit 0), a fatal condition found by any thread
// (exit with its code), and SIGHUP, which never ends it.
namespace svcbox::app {

class ServeStop {
 public:
  // Blocks the signals serve waits for in the calling thread, so every thread started after this
  // inherits the mask and only wait() takes them. Construct before any other thread exists.
  ServeStop();

  // Any thread: ends wait() with `exit_code` after logging `reason` once (the first request
  // wins; later ones are logged as well but do not change the code).
  void fatal(int exit_code, const std::string& reason);

  // Blocks until serve should stop; returns its exit code. `on_hangup` runs on this thread for
  // each SIGHUP.
  int wait(const std::function<void()>& on_hangup);

 private:
  sigset_t signals_;
  std::mutex mutex_;
  int exit_code_ = -1;  // -1: no fatal request yet
};

}  // namespace svcbox::app
