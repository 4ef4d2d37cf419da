#include "store/generation_guard.h"

namespace svcbox::store {

GenerationGuard::GenerationGuard(ReadGeneration read, Published published,
                                 std::chrono::milliseconds interval, OnLag on_lag)
    : read_(std::move(read)),
      published_(std::move(published)),
      interval_(interval),
      on_lag_(std::move(on_lag)) {}

GenerationGuard::~GenerationGuard() { stop(); }

void GenerationGuard::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wakeup_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      check();
      lock.lock();
    }
  });
}

void GenerationGuard::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GenerationGuard::check() {
  ++checks_;
  auto published = published_();
  auto generation = read_();
  // Unreadable: the watcher's own reads fail too and are counted there; no verdict either way.
  if (!generation || !published) return;
  auto now = std::chrono::steady_clock::now();
  if (*generation <= *published) {
    behind_.reset();
    lag_ = 0;
    if (reported_ && on_lag_) on_lag_(std::nullopt);
    reported_ = false;
    return;
  }
  // Behind, but the watcher published something since the last check: it is moving.
  if (!behind_ || behind_->first != *published) {
    behind_ = {*published, now};
    return;
  }
  lag_ = *generation - *published;
  if (on_lag_) {
    on_lag_(Lag{*generation, *published,
                std::chrono::duration_cast<std::chrono::milliseconds>(now - behind_->second)});
  }
  reported_ = true;
}

}  // namespace svcbox::store
