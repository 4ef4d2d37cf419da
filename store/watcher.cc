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
  if (on_snapshot_) on_snapshot_(nullptr, *snapshot);
  current_.store(*snapshot);
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

Watcher::Outcome Watcher::failed(const Error& error) {
  if (error.kind != ErrorKind::kReplaced) ++errors_;
  if (on_error_) on_error_(error);
  return error.kind == ErrorKind::kReplaced ? Outcome::kReplaced : Outcome::kFailed;
}

Watcher::Outcome Watcher::refresh() {
  // A stat() per poll: a deleted or replaced file changes no data_version of the old one.
  if (auto same = registry_->checkFile(); !same) return failed(same.error());
  if (auto now = std::chrono::steady_clock::now(); now >= next_identity_check_) {
    next_identity_check_ = now + std::chrono::seconds(1);
    if (auto same = registry_->checkIdentity(); !same) return failed(same.error());
  }
  auto version = registry_->dataVersion();
  if (!version) return failed(version.error());
  if (*version == data_version_) return Outcome::kCurrent;
  auto snapshot = registry_->loadSnapshot();
  if (!snapshot) return failed(snapshot.error());
  data_version_ = *version;
  auto previous = current_.load();
  // A commit that wrote no registry object (a no-op apply) keeps the published snapshot.
  if (previous && previous->version() == (*snapshot)->version()) return Outcome::kCurrent;
  // Published after the consumers took it: whoever sees current() (svcbox_registry_version,
  // the admin API) may rely on DNS answering from it.
  if (on_snapshot_) on_snapshot_(previous, *snapshot);
  current_.store(*snapshot);
  return Outcome::kCurrent;
}

void Watcher::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wakeup_.wait_for(lock, poll_interval_, [this] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
    }
    if (test_paused_ && test_paused_()) continue;
    if (refresh() == Outcome::kReplaced) return;
  }
}

}  // namespace svcbox::store
