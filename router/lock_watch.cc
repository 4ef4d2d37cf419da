#include "router/lock_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

namespace svcbox::router {

LockFileWatch::~LockFileWatch() {
  if (fd_ >= 0) ::close(fd_);
}

bool LockFileWatch::watch(const std::string& path) {
  if (fd_ >= 0) ::close(fd_);
  broken_ = false;
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return false;
  // A writer that waited for the lock while svcbox held it closes the file after its edit, so
  // the close is what matters, not the open.
  if (inotify_add_watch(fd_, path.c_str(), IN_CLOSE | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

uint64_t LockFileWatch::events() {
  if (fd_ < 0 || broken_) return ++events_;
  alignas(inotify_event) char buffer[4096];
  for (int reads = 0; reads < 1024; ++reads) {
    ssize_t got = ::read(fd_, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    for (ssize_t offset = 0; offset < got;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      ++events_;
      if (event->mask & (IN_IGNORED | IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF)) {
        broken_ = true;
      }
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
  return events_;
}

}  // namespace svcbox::router
