#include "router/userspace/provider.h"

#include "router/router.h"

namespace svcbox::router::userspace {
namespace {

// How long DNS waits for listeners before it publishes without them (a stuck relay thread must
// not stop DNS from following the registry).
constexpr auto kListenerWait = std::chrono::seconds(10);

}  // namespace

bool UserspaceProvider::Target::sync(const store::SnapshotPtr& snapshot, bool full,
                                     SyncFailure& failure) {
  auto mapping = proxy_.update(snapshot);
  if (mapping != reported_) {
    reported_ = mapping;
    if (on_listeners_changed) on_listeners_changed(mapping);
  }
  return !redirect_ || redirect_->write(*snapshot, mapping, full, failure);
}

bool UserspaceProvider::Target::stillInstalled(std::string& why_not) {
  return !redirect_ || redirect_->stillInstalled(why_not);
}

UserspaceProvider::UserspaceProvider(ProxyOptions options, std::unique_ptr<RedirectRules> redirect,
                                     RouterTiming timing, LogFunction log)
    : proxy_(std::move(options), log),
      target_(proxy_, std::move(redirect)),
      loop_(target_, timing, log, "userspace listeners and REDIRECT rules") {}

UserspaceProvider::~UserspaceProvider() { stop(); }

bool UserspaceProvider::canRun(SyncFailure& failure) const {
  return !target_.redirects() || canWriteNetfilter(failure);
}

bool UserspaceProvider::start(const store::SnapshotPtr& first, SyncFailure& failure) {
  proxy_.start();
  return loop_.start(first, failure);
}

void UserspaceProvider::stop() {
  loop_.stop();
  proxy_.stop();
}

bool UserspaceProvider::cleanup(SyncFailure& failure, bool& changed) {
  changed = false;
  return !target_.redirects() || cleanupAll(failure, changed);
}

ProviderStats UserspaceProvider::stats() const {
  ProviderStats stats;
  static_cast<SyncLoopStats&>(stats) = loop_.stats();
  stats.relay = proxy_.stats();
  return stats;
}

bool UserspaceProvider::installedRules(std::vector<std::string>& lines,
                                       SyncFailure& failure) const {
  // The REDIRECT rules are SVCBOX-* chains like the iptables mode's: read back the same way.
  if (!target_.redirects()) return true;
  return installedSvcboxRules(lines, failure);
}

std::vector<PortMapping> UserspaceProvider::listenersFor(const store::Snapshot& snapshot) {
  loop_.waitInstalled(snapshot.version(), kListenerWait);
  return proxy_.mapping();
}

void UserspaceProvider::setOnListenersChanged(
    std::function<void(const std::vector<PortMapping>&)> on_changed) {
  target_.on_listeners_changed = std::move(on_changed);
}

}  // namespace svcbox::router::userspace
