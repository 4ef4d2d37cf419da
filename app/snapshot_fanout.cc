#include "app/snapshot_fanout.h"

namespace svcbox::app {

SnapshotFanOut::SnapshotFanOut(SnapshotConsumers consumers) : consumers_(std::move(consumers)) {}

SnapshotFanOut::~SnapshotFanOut() { stop(); }

void SnapshotFanOut::offer(const store::SnapshotPtr& /*previous*/,
                           const store::SnapshotPtr& current) {
  std::unique_lock lock(mutex_);
  if (stopping_) return;
  if (!thread_.joinable()) {
    // The first snapshot: handed over here, then the thread takes the rest.
    lock.unlock();
    handOver(current);
    lock.lock();
    thread_ = std::thread([this] { run(); });
    return;
  }
  pending_ = current;
  wakeup_.notify_one();
}

void SnapshotFanOut::handOver(const store::SnapshotPtr& current) {
  auto* provider = consumers_.provider;
  bool listeners_first = provider && provider->dnsAnswersListeners();
  auto startProvider = [&] {
    router::SyncFailure failure;
    provider_started_ = true;
    if (!provider->start(current, failure)) {
      std::lock_guard lock(mutex_);
      start_failure_ = failure;
    }
  };
  if (provider) {
    if (!provider_started_ && listeners_first) {
      startProvider();
    } else if (provider_started_) {
      provider->update(current);
    }
  }
  if (consumers_.dns) {
    if (listeners_first) {
      auto listeners = provider->listenersFor(*current);
      consumers_.dns(last_, current, &listeners);
    } else {
      consumers_.dns(last_, current, nullptr);
    }
  }
  if (provider && !provider_started_) startProvider();
  if (consumers_.prober) consumers_.prober(current);
  if (consumers_.after) consumers_.after(last_, current);
  last_ = current;
  std::lock_guard lock(mutex_);
  handed_over_ = current;
}

void SnapshotFanOut::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wakeup_.wait(lock, [&] { return stopping_ || pending_; });
    if (!pending_) break;  // stopping, nothing left
    auto current = std::move(pending_);
    pending_.reset();
    lock.unlock();
    handOver(current);
    lock.lock();
  }
}

std::optional<router::SyncFailure> SnapshotFanOut::startFailure() const {
  std::lock_guard lock(mutex_);
  return start_failure_;
}

store::SnapshotPtr SnapshotFanOut::handedOver() const {
  std::lock_guard lock(mutex_);
  return handed_over_;
}

void SnapshotFanOut::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_one();
  if (thread_.joinable()) thread_.join();
}

}  // namespace svcbox::app
