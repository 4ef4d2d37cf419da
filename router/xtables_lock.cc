#include "router/xtables_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace svcbox::router {

std::string XtablesLock::path() {
  const char* override_path = std::getenv("XTABLES_LOCKFILE");  // as iptables honours it
  return override_path && *override_path ? override_path : "/run/xtables.lock";
}

XtablesLock::~XtablesLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

bool XtablesLock::acquire(std::chrono::milliseconds timeout) {
  std::string file = path();
  // The file kept open from an earlier session must still be the one at the path: a lock on a
  // deleted file excludes no one.
  struct stat held, current;
  if (fd_ >= 0 && (::fstat(fd_, &held) != 0 || ::stat(file.c_str(), &current) != 0 ||
                   held.st_ino != current.st_ino || held.st_dev != current.st_dev)) {
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) fd_ = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    permission_denied_ = errno == EACCES || errno == EPERM || errno == EROFS;
    error_ = "cannot open the xtables lock " + file + ": " + std::strerror(errno);
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      error_ = "cannot lock " + file + ": " + std::strerror(errno);
      return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      error_ = "another iptables user held " + file + " for longer than " +
               std::to_string(timeout.count()) + " ms";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void XtablesLock::release() {
  if (fd_ >= 0) flock(fd_, LOCK_UN);
}

}  // namespace svcbox::router
