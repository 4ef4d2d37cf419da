#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store/registry.h"

namespace svcbox::app {

// serve's one writing connection to the registry, shared by the prober and the admin API. The
// watcher reads on a connection of its own; after each commit it is woken so the change reaches
// DNS and the rules without waiting for the next poll.
//
// It also owns the worker thread those writes run on (a strand: one thread, in order), so that a
// slow or busy registry delays the writes only, never the admin server's I/O thread or the
// prober's. The methods themselves may be called from any thread; they serialize on a mutex.
class RegistryWriter {
  // First: the members below use them, and an `auto` function must be defined before its use.
  template <typename Function>
  auto locked(Function function) {
    std::lock_guard lock(mutex_);
    return function();
  }
  template <typename T>
  store::Result<T> committed(store::Result<T> result) {
    if (result && on_commit_) on_commit_();
    if (!result && result.error().kind == store::ErrorKind::kReplaced && on_replaced_) {
      on_replaced_(result.error());
    }
    return result;
  }

 public:
  // `on_replaced`: a write found that the file at the registry's path is no longer the one this
  // connection opened (and wrote nothing); called on the writing thread.
  RegistryWriter(std::unique_ptr<store::Registry> registry, store::CidrChoice cidr,
                 std::function<void()> on_commit,
                 std::function<void(const store::Error&)> on_replaced = nullptr)
      : registry_(std::move(registry)),
        cidr_(std::move(cidr)),
        on_commit_(std::move(on_commit)),
        on_replaced_(std::move(on_replaced)),
        worker_guard_(boost::asio::make_work_guard(worker_context_)),
        worker_([this] { worker_context_.run(); }) {}
  ~RegistryWriter() { stopWorker(); }
  RegistryWriter(const RegistryWriter&) = delete;
  RegistryWriter& operator=(const RegistryWriter&) = delete;

  // Where writes are run: post to it, or co_spawn a coroutine on it.
  boost::asio::any_io_executor worker() { return worker_context_.get_executor(); }
  // Runs `job` on the worker thread, after the jobs posted before it.
  template <typename Job>
  void post(Job job) {
    boost::asio::post(worker_context_, std::move(job));
  }
  // Lets the job that runs finish and drops the ones queued; called when no one posts any more
  // (serve stops the admin server and the prober first), so that nothing they own is destroyed
  // while a job uses it.
  void stopWorker() {
    std::lock_guard lock(worker_mutex_);
    worker_guard_.reset();
    worker_context_.stop();
    if (worker_.joinable()) worker_.join();
  }

  store::Result<std::vector<store::Change>> apply(const std::vector<store::Object>& objects,
                                                  size_t* failed_object = nullptr) {
    return committed(locked([&] { return registry_->apply(objects, cidr_, failed_object); }));
  }
  store::Result<std::vector<store::Change>> remove(const std::vector<store::ObjectRef>& refs) {
    return committed(locked([&] { return registry_->remove(refs); }));
  }
  store::Result<size_t> setReadiness(const std::vector<store::ReadinessUpdate>& updates) {
    return committed(locked([&] { return registry_->setPodReadiness(updates); }));
  }
  // The registry as this connection reads it now, under the writers' lock: what the admin API
  // checks before a create and answers after a write, without waiting for the watcher.
  store::Result<store::SnapshotPtr> read() {
    auto snapshot = locked([&] { return registry_->loadSnapshot(); });
    if (!snapshot && snapshot.error().kind == store::ErrorKind::kReplaced && on_replaced_) {
      on_replaced_(snapshot.error());
    }
    return snapshot;
  }
  // One object as this connection reads it now (cheap: no snapshot).
  store::Result<std::optional<store::Object>> find(const store::ObjectRef& ref) {
    auto found = locked([&] { return registry_->find(ref); });
    if (!found && found.error().kind == store::ErrorKind::kReplaced && on_replaced_) {
      on_replaced_(found.error());
    }
    return found;
  }
  // Runs `function(registry's current snapshot)` and, when it returns objects, applies them, all
  // under the writers' lock: a check-then-write no other writer of this process can interleave.
  store::Result<std::vector<store::Change>> applyIf(
      const std::function<store::Status(const store::Snapshot&)>& check,
      const std::vector<store::Object>& objects, size_t* failed_object = nullptr) {
    return committed(locked([&]() -> store::Result<std::vector<store::Change>> {
      auto current = registry_->loadSnapshot();
      if (!current) return current.error();
      auto allowed = check(**current);
      if (!allowed) return allowed.error();
      return registry_->apply(objects, cidr_, failed_object);
    }));
  }
  store::Status setDefaultProbe(store::DefaultProbe probe) {
    return committed(locked([&] { return registry_->setDefaultProbe(probe); }));
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<store::Registry> registry_;
  store::CidrChoice cidr_;
  std::function<void()> on_commit_;
  std::function<void(const store::Error&)> on_replaced_;
  std::mutex worker_mutex_;
  boost::asio::io_context worker_context_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> worker_guard_;
  std::thread worker_;  // last: it starts running in the constructor
};

}  // namespace svcbox::app
