#pragma once

#include <memory>
#include <optional>
#include <string>

#include "store/result.h"

namespace svcbox::store {

// One serve per registry. Two locks, each for its own question:
// - an exclusive flock on the registry file itself, keyed by its device and inode, so a second
//   serve is refused whatever path (symlink, hard link, bind mount) it reached the file by;
// - an exclusive flock on "<canonical path>.serve.lock", holding the owner's PID, keyed by the
//   path: it lets the CLI refuse to create a new file where a live serve's file was deleted.
// Both are released by the kernel when the process dies, so kill -9 leaves no stale owner.
class OwnerLock {
 public:
  // An ErrorKind::kConflict error names the serve that owns the file, with its PID.
  static Result<std::unique_ptr<OwnerLock>> acquire(const std::string& registry_path);
  ~OwnerLock();
  OwnerLock(const OwnerLock&) = delete;
  OwnerLock& operator=(const OwnerLock&) = delete;

 private:
  OwnerLock(int registry_fd, int path_fd) : registry_fd_(registry_fd), path_fd_(path_fd) {}
  // Open until the process has closed every SQLite connection to the file: closing a file
  // descriptor drops the process's POSIX locks on that file, SQLite's included.
  int registry_fd_;
  int path_fd_;
};

// The PID of a live serve whose path lock for `registry_path` is held, if any.
std::optional<std::string> liveOwnerOfPath(const std::string& registry_path);

}  // namespace svcbox::store
