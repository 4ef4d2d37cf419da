#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/registry.h"
#include "store/snapshot.h"

// The readiness prober: Kubernetes readinessProbe semantics for the pods of a snapshot.
//
// - A pod with a readinessProbe (tcpSocket or httpGet) gets one probe session against its first
//   IP. From not ready it needs successThreshold consecutive successes to become ready; from ready
//   it needs failureThreshold consecutive failures to become not ready. The session starts from
//   the readiness stored in the snapshot.
// - A pod without one, under DefaultProbe::kTcp, gets svcbox's default probe: a TCP connect to
//   every TCP target port that Services selecting it resolve for it, all of which must accept. A
//   pod with no such port is ready ("no TCP port to probe"). Under kNone, pods left not ready by
//   an earlier default probe are set back to ready.
// - The first probe of a pod stored "awaiting first readiness probe" waits initialDelaySeconds
//   from the moment it was stored so; any other session starts after a random jitter below
//   min(period, 1 s), so that a restart does not fire every probe at once.
// - Only verdicts that differ from the stored readiness are written, batched per round, and a
//   verdict written but not yet visible in a snapshot is not written again.
//
// See docs/health.md.
namespace svcbox::health {

enum class LogLevel { kDebug, kInfo, kWarn };
using LogFunction = std::function<void(LogLevel, const std::string&)>;

struct ProberOptions {
  store::DefaultProbe default_probe = store::DefaultProbe::kTcp;
  uint32_t default_period_seconds = 2;
  uint32_t default_timeout_seconds = 1;
  uint32_t default_failure_threshold = 3;
  // The length of one "second" in probe settings; tests shrink it (e.g. 50 ms) to run fast.
  std::chrono::milliseconds second{1000};
  // Probes in flight at once: each holds a socket (serve fits this under its descriptor limit).
  size_t max_in_flight = 256;
};

struct ProbeCounters {                                // cumulative, read by /metrics
  uint64_t tcp_success = 0, tcp_failure = 0;          // readinessProbe.tcpSocket
  uint64_t http_success = 0, http_failure = 0;        // readinessProbe.httpGet
  uint64_t default_success = 0, default_failure = 0;  // svcbox's default TCP probe
  uint64_t sessions = 0;                              // probe sessions running now (gauge)
};

class Prober {
 public:
  // Called once when a batch's write ends, from any thread, with whether it was recorded;
  // verdicts of a failed write are written again after the pod's next probe.
  using WriteDone = std::function<void(bool recorded)>;
  using WriteFunction =
      std::function<void(std::vector<store::ReadinessUpdate> batch, WriteDone done)>;

  // `write` receives every readiness transition found in one pass, as one batch, called from the
  // prober's own thread. It must not block there (a SQLite write can take seconds on a busy
  // registry, and probes would stall): it hands the batch to a writer and calls `done` later,
  // or at once. One batch is in flight at a time; verdicts found meanwhile wait for the next.
  Prober(ProberOptions options, WriteFunction write, LogFunction log);
  ~Prober();  // stops

  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts the prober's own thread. A Prober runs at most once: after stop() it stays stopped.
  void start();
  // Callable from any thread; returns at once. Sessions reconcile on the prober thread, with only
  // the latest of several snapshots that arrive meanwhile.
  void update(const store::SnapshotPtr& snapshot);
  // Returns within about 100 ms; probes in flight are abandoned and nothing more is written.
  void stop();
  ProbeCounters counters() const;  // thread-safe

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace svcbox::health
