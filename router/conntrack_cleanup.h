#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/desired_state.h"

// UDP has no connection to end: conntrack keeps a client's flow pointed at the pod it was first
// sent to (or, before there were endpoints, at no pod) for as long as datagrams keep coming. After
// such a change svcbox deletes those entries so the next datagram is routed afresh.
namespace svcbox::router {

struct StaleUdpFlow {
  uint32_t cluster_ip = 0;
  uint16_t port = 0;
  std::optional<uint32_t> endpoint;  // only flows answered by this pod; none: every flow
  bool operator==(const StaleUdpFlow&) const = default;
};

// What changed between two syncs: endpoints that left, Service ports that went from no endpoint
// to some (their flows hit REJECT or nothing), and Service ports that are gone.
std::vector<StaleUdpFlow> staleUdpFlows(const std::vector<UdpServicePort>& before,
                                        const std::vector<UdpServicePort>& after);

// Deletes the matching conntrack entries of this network namespace. Returns the number deleted,
// or -1 with `error` set.
int deleteUdpFlows(const std::vector<StaleUdpFlow>& flows, std::string& error);

// Runs deleteUdpFlows on a thread of its own. Finding the entries means dumping the whole
// conntrack table, whose size is the host's traffic, not svcbox's (bench/router/conntrack.sh:
// tens of milliseconds at 100,000 entries), and the router thread must not wait for it between
// syncs. Flows handed over while a cleanup runs are merged into the next one: one dump for all.
//
// Thread contract: submit() and cleanups() from any thread; stop() (or the destructor) from the
// owner, after its last submit().
class ConntrackCleaner {
 public:
  using DeleteFunction = std::function<int(const std::vector<StaleUdpFlow>&, std::string&)>;
  // Called on the cleaner's thread after each cleanup: entries deleted, or -1 and the error.
  using Report = std::function<void(int deleted, const std::string& error)>;

  explicit ConntrackCleaner(Report report, DeleteFunction remove = deleteUdpFlows);
  ~ConntrackCleaner();
  ConntrackCleaner(const ConntrackCleaner&) = delete;
  ConntrackCleaner& operator=(const ConntrackCleaner&) = delete;

  // Returns at once.
  void submit(std::vector<StaleUdpFlow> flows);
  // Waits for the cleanup that runs; flows still queued are dropped (the next start's first sync
  // has nothing to compare with, so they stay until conntrack expires them, as after a crash).
  void stop();
  uint64_t cleanups() const;  // cleanups finished, for tests

 private:
  void run();

  Report report_;
  DeleteFunction remove_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<StaleUdpFlow> queued_;
  bool stopping_ = false;
  uint64_t cleanups_ = 0;
  std::thread thread_;  // last: it starts in the constructor
};

}  // namespace svcbox::router
