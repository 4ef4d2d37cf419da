#include "store/owner_lock.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace svcbox::store {
namespace {

// The path with its folder resolved, so "a/r.db" and "link-to-a/r.db" name one path lock. The
// file itself need not exist yet.
std::string canonicalPath(const std::string& path) {
  std::filesystem::path given(path);
  std::string folder = given.has_parent_path() ? given.parent_path().string() : ".";
  char resolved[PATH_MAX];
  if (!::realpath(folder.c_str(), resolved)) return path;
  std::string file = given.filename().string();
  // A symlink to the registry itself resolves to its target too.
  std::string candidate = std::string(resolved) + "/" + file;
  char target[PATH_MAX];
  if (::realpath(candidate.c_str(), target)) return target;
  return candidate;
}

std::string pathLockFile(const std::string& registry_path) {
  return canonicalPath(registry_path) + ".serve.lock";
}

std::string readPid(int fd) {
  char owner[32] = {};
  ssize_t size = pread(fd, owner, sizeof owner - 1, 0);
  std::string pid = size > 0 ? std::string(owner, static_cast<size_t>(size)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

// Who holds an flock on this file: the kernel lists every lock with its holder in /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 1234 08:02:131 0 EOF"; "->" lines are waiters).
std::string flockHolder(int fd) {
  struct stat file {};
  if (fstat(fd, &file) != 0) return "unknown";
  std::ostringstream key;
  key << std::hex;
  key.width(2);
  key.fill('0');
  key << major(file.st_dev) << ':';
  key.width(2);
  key << minor(file.st_dev) << ':' << std::dec << file.st_ino;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string number, kind, mode, access, pid, device;
    fields >> number >> kind;
    if (kind != "FLOCK") continue;
    fields >> mode >> access >> pid >> device;
    if (device == key.str()) return pid;
  }
  return "unknown";
}

Error ownedBy(const std::string& pid, const std::string& registry_path, const std::string& how) {
  return Error{ErrorKind::kConflict,
               "another svcbox serve (pid " + pid + ") already owns the registry " + registry_path +
                   how + "; stop it first or use another --db",
               {}};
}

}  // namespace

Result<std::unique_ptr<OwnerLock>> OwnerLock::acquire(const std::string& registry_path) {
  std::string lock_file = pathLockFile(registry_path);
  int path_fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (path_fd < 0) {
    return Error{
        ErrorKind::kInvalid, "cannot create " + lock_file + ": " + std::strerror(errno), {}};
  }
  if (flock(path_fd, LOCK_EX | LOCK_NB) != 0) {
    auto error = ownedBy(readPid(path_fd), registry_path, "");
    ::close(path_fd);
    return error;
  }
  int registry_fd = ::open(registry_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (registry_fd < 0) {
    int error = errno;
    ::close(path_fd);
    return Error{ErrorKind::kInvalid,
                 "cannot open " + registry_path + " to lock it: " + std::strerror(error),
                 {}};
  }
  if (flock(registry_fd, LOCK_EX | LOCK_NB) != 0) {
    auto error = ownedBy(flockHolder(registry_fd), registry_path,
                         " (the same file, reached through another path)");
    // No SQLite connection of this process holds a lock on the file yet worth keeping: the
    // caller gives up.
    ::close(registry_fd);
    ::close(path_fd);
    return error;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  // Without the PID the lock still holds; only a refused writer's message is poorer.
  (void)!ftruncate(path_fd, 0);
  (void)!pwrite(path_fd, pid.data(), pid.size(), 0);
  return std::unique_ptr<OwnerLock>(new OwnerLock(registry_fd, path_fd));
}

OwnerLock::~OwnerLock() {
  (void)!ftruncate(path_fd_, 0);
  ::close(path_fd_);
  ::close(registry_fd_);
}

std::optional<std::string> liveOwnerOfPath(const std::string& registry_path) {
  int fd = ::open(pathLockFile(registry_path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> owner;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    owner = readPid(fd);
  } else {
    flock(fd, LOCK_UN);
  }
  ::close(fd);
  return owner;
}

}  // namespace svcbox::store
