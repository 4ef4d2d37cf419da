#pragma once

#include <cstdint>
#include <string>

// Counts the lock sessions other processes end on the xtables lock file. Every cooperating
// iptables user (iptables, iptables-restore, Docker through them, kube-proxy) opens the file,
// takes the lock, edits and closes it, so a table read under the lock is still what the kernel
// holds as long as this count has not moved. That lets the router read its big nat table while
// it is idle instead of between a change and its commit.
namespace svcbox::router {

class LockFileWatch {
 public:
  LockFileWatch() = default;
  ~LockFileWatch();
  LockFileWatch(const LockFileWatch&) = delete;
  LockFileWatch& operator=(const LockFileWatch&) = delete;

  // Starts watching `path` (the file must exist). False when inotify cannot watch it: then
  // nothing read ahead may be trusted.
  bool watch(const std::string& path);
  // False before watch() and once the file was deleted or moved: then watch() again.
  bool watching() const { return fd_ >= 0 && !broken_; }
  // Lock sessions ended (and other changes to the file) seen so far; reads what is queued. A
  // watch that broke (the file deleted or moved) counts as an event on every call.
  uint64_t events();

 private:
  int fd_ = -1;
  uint64_t events_ = 0;
  bool broken_ = false;
};

}  // namespace svcbox::router
