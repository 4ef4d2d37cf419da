#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "router/provider.h"
#include "store/generation_guard.h"

namespace svcbox::app {

// What /readyz reports: every part has come up, and serve still follows its registry. The flags
// are set by serve's main thread; notReady() runs on the admin server's.
struct Readiness {
  std::atomic<bool> registry_loaded{false};
  std::atomic<bool> dns_bound{false};
  const router::Provider* provider = nullptr;  // null: --proxy-mode none
  const store::GenerationGuard* guard = nullptr;

  std::vector<std::string> notReady() const {
    std::vector<std::string> reasons;
    if (!registry_loaded) reasons.push_back("registry not loaded yet");
    if (!dns_bound) reasons.push_back("DNS not listening yet");
    if (provider) {
      auto stats = provider->stats();
      if (stats.syncs == 0) {
        reasons.push_back(
            stats.failures == 0
                ? "first rule sync not done yet"
                : "no rule sync has succeeded yet: " + std::to_string(stats.failures) +
                      " attempts failed, retried with backoff; last: " + stats.last_failure);
      }
    }
    if (guard && guard->lag() > 0) {
      reasons.push_back("serve is not following its registry: the registry is " +
                        std::to_string(guard->lag()) +
                        " generations ahead of what serve publishes");
    }
    return reasons;
  }
};

}  // namespace svcbox::app
