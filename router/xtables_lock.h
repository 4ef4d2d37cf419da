#pragma once

#include <chrono>
#include <string>

// The lock every iptables command takes with -w (/run/xtables.lock, or $XTABLES_LOCKFILE): held
// from reading a table to committing it, so svcbox never undoes a concurrent iptables user's change
// and is never undone by one.
namespace svcbox::router {

class XtablesLock {
 public:
  XtablesLock() = default;
  ~XtablesLock();
  XtablesLock(const XtablesLock&) = delete;
  XtablesLock& operator=(const XtablesLock&) = delete;

  // Waits up to `timeout`; on failure returns false and sets error(). The file stays open
  // after release() so that taking the lock again closes nothing: to a LockFileWatch, only
  // other processes end lock sessions.
  bool acquire(std::chrono::milliseconds timeout);
  void release();
  const std::string& error() const { return error_; }
  // The lock file could not be opened for lack of rights (not root, no CAP_DAC_OVERRIDE).
  bool permissionDenied() const { return permission_denied_; }
  static std::string path();

 private:
  int fd_ = -1;
  std::string error_;
  bool permission_denied_ = false;
};

}  // namespace svcbox::router
