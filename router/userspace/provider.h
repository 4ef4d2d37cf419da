#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "router/provider.h"
#include "router/sync_loop.h"
#include "router/userspace/proxy.h"
#include "router/userspace/redirect.h"

// The userspace proxy mode behind the Provider seam: the relay's listeners follow each snapshot,
// and where svcbox may write netfilter, REDIRECT rules send ClusterIP traffic to them. One
// SyncLoop drives both, so REDIRECT rules are coalesced, resynced and repaired as the iptables
// mode's are.
namespace svcbox::router::userspace {

class UserspaceProvider : public Provider {
 public:
  // `redirect`: null where the listeners are bound to one address and DNS answers it instead.
  UserspaceProvider(ProxyOptions options, std::unique_ptr<RedirectRules> redirect,
                    RouterTiming timing, LogFunction log);
  ~UserspaceProvider() override;

  std::string mode() const override { return "userspace"; }
  bool canRun(SyncFailure& failure) const override;
  // Starts the relay threads, then opens the first snapshot's listeners (and writes its rules).
  bool start(const store::SnapshotPtr& first, SyncFailure& failure) override;
  void update(const store::SnapshotPtr& snapshot) override { loop_.update(snapshot); }
  void requestFullSync() override { loop_.requestFullSync(); }
  // Stops the loop, then closes every listener and connection.
  void stop() override;
  // REDIRECT rules only; the listeners close with stop().
  bool cleanup(SyncFailure& failure, bool& changed) override;
  ProviderStats stats() const override;
  bool installedRules(std::vector<std::string>& lines, SyncFailure& failure) const override;
  bool dnsAnswersListeners() const override { return !target_.redirects(); }
  std::vector<PortMapping> listenersFor(const store::Snapshot& snapshot) override;
  void setOnListenersChanged(
      std::function<void(const std::vector<PortMapping>&)> on_changed) override;
  void setOnSynced(std::function<void(const store::SnapshotPtr& installed)> on_synced) override {
    loop_.setOnSynced(std::move(on_synced));
  }

  // Tests: the relay itself.
  UserspaceProxy& proxy() { return proxy_; }

 private:
  class Target : public SyncTarget {
   public:
    Target(UserspaceProxy& proxy, std::unique_ptr<RedirectRules> redirect)
        : proxy_(proxy), redirect_(std::move(redirect)) {}
    bool sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) override;
    bool stillInstalled(std::string& why_not) override;
    bool redirects() const { return redirect_ != nullptr; }
    std::function<void(const std::vector<PortMapping>&)> on_listeners_changed;

   private:
    UserspaceProxy& proxy_;
    std::unique_ptr<RedirectRules> redirect_;
    std::vector<PortMapping> reported_;  // what on_listeners_changed last heard
  };

  UserspaceProxy proxy_;
  Target target_;
  SyncLoop loop_;  // after what it drives
};

}  // namespace svcbox::router::userspace
