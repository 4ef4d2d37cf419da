#include "store/watcher.h"

namespace svcbox::store {

Watcher::Watcher(std::unique_ptr<Registry> registry, std::chrono::milliseconds poll_interval,
                 OnSnapshot on_snapshot, OnError on_error)
    : registry_(std::move(registry)),
      poll_interval_(poll_interval),
      on_snapshot_(std::move(on_snapshot)),
      on_error_(std::move(on_error)) {}

Watcher::~Watcher() { stop(); }

Status Watcher::start() {
  auto version = registry_->dataVersion();
  if (!version) return version.error();
  auto snapshot = registry_->loadSnapshot();
  if (!snapshot) return snapshot.error();
  data_version_ = *version;
  current_.store(*snapshot);
  if (on_snapshot_) on_snapshot_(nullptr, *snapshot);
  thread_ = std::thread([this] { run(); });
  return Ok{};
}

void Watcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watcher::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wakeup_.notify_all();
}

bool Watcher::refresh() {
  auto version = registry_->dataVersion();
  if (!version) {
    ++errors_;
    if (on_error_) on_error_(version.error());
    return false;
  }
  if (*version == data_version_) return true;
  auto snapshot = registry_->loadSnapshot();
  if (!snapshot) {
    ++errors_;
    if (on_error_) on_error_(snapshot.error());
    return false;
  }
  data_version_ = *version;
  auto previous = current_.load();
  // A commit that wrote no registry object (a no-op apply) keeps the published snapshot.
  if (previous && previous->version() == (*snapshot)->version()) return true;
  current_.store(*snapshot);
  if (on_snapshot_) on_snapshot_(previous, *snapshot);
  return true;
}

void Watcher::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wakeup_.wait_for(lock, poll_interval_, [this] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
    }
    refresh();
  }
}

}  // namespace svcbox::store
