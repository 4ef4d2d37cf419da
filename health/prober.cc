#include "health/prober.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "health/plan.h"
#include "health/probe.h"

namespace svcbox::health {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Probes in flight at once; sessions beyond it queue for a slot in arrival order.
// How long transitions are collected before one `write`, so a round of probes ending together
// costs one transaction.
constexpr auto kBatchWindow = std::chrono::milliseconds(10);

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct AtomicCounters {
  std::atomic<uint64_t> tcp_success{0}, tcp_failure{0};
  std::atomic<uint64_t> http_success{0}, http_failure{0};
  std::atomic<uint64_t> default_success{0}, default_failure{0};
  std::atomic<uint64_t> sessions{0};
};

}  // namespace

// Everything below runs on the prober thread, except update(), stop() and counters().
class Prober::Impl {
 public:
  Impl(ProberOptions options, WriteFunction write, LogFunction log)
      : options_(options),
        write_(std::move(write)),
        log_(std::move(log)),
        work_(asio::make_work_guard(context_)),
        flush_timer_(context_),
        random_(std::random_device{}()) {
    mailbox_->impl = this;
  }

  ~Impl() {
    stop();
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->impl = nullptr;
  }

  void start() {
    std::lock_guard lock(lifecycle_mutex_);
    if (thread_.joinable() || stopped_) return;
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    std::lock_guard lock(lifecycle_mutex_);
    stopped_ = true;
    // Abandoning the queue is the cancellation: handlers never run again, and the coroutine
    // frames (with their sockets) are destroyed with the io_context.
    context_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void update(const store::SnapshotPtr& snapshot) {
    std::lock_guard lock(snapshot_mutex_);
    latest_ = snapshot;
    if (reconcile_posted_) return;
    reconcile_posted_ = true;
    asio::post(context_, [this] { reconcileLatest(); });
  }

  ProbeCounters counters() const {
    ProbeCounters result;
    result.tcp_success = counters_.tcp_success.load(std::memory_order_relaxed);
    result.tcp_failure = counters_.tcp_failure.load(std::memory_order_relaxed);
    result.http_success = counters_.http_success.load(std::memory_order_relaxed);
    result.http_failure = counters_.http_failure.load(std::memory_order_relaxed);
    result.default_success = counters_.default_success.load(std::memory_order_relaxed);
    result.default_failure = counters_.default_failure.load(std::memory_order_relaxed);
    result.sessions = counters_.sessions.load(std::memory_order_relaxed);
    return result;
  }

 private:
  struct Session {
    explicit Session(asio::io_context& context) : timer(context) {}
    uint64_t id = 0;
    std::string namespace_name;
    std::string name;
    ProbePlan plan;
    asio::steady_timer timer;  // period waits and slot waits alike
    bool cancelled = false;
    bool slot_granted = false;
    uint32_t successes = 0;
    uint32_t failures = 0;
  };

  // What the prober knows of one pod between snapshots.
  struct Tracked {
    uint64_t id = 0;  // changes whenever the session restarts; stale pending writes are dropped
    std::string namespace_name;
    std::string name;
    PodPlan plan;
    std::vector<store::IpAddress> ips;
    store::Readiness stored;
    std::optional<store::Readiness> written;  // written but not yet seen in a snapshot
    std::shared_ptr<Session> session;
    // The pod object last reconciled (alive in reconciled_) and its default-probe ports: a
    // snapshot that shares both left this pod as it was, and is skipped without planning.
    const store::Pod* seen = nullptr;
    std::vector<uint16_t> default_ports;
    uint64_t visited = 0;  // the reconcile round that last saw the pod
  };

  struct PendingWrite {
    std::string key;
    uint64_t id;
    store::ReadinessUpdate update;
  };

  void run() {
    try {
      context_.run();
    } catch (const std::exception& error) {
      log(LogLevel::kWarn, std::string("readiness prober stopped: ") + error.what());
    }
    // Sessions stay as they are; ~Impl destroys them together with the io_context.
  }

  void log(LogLevel level, const std::string& message) {
    if (log_) log_(level, message);
  }

  void reconcileLatest() {
    store::SnapshotPtr snapshot;
    {
      std::lock_guard lock(snapshot_mutex_);
      snapshot = std::move(latest_);
      reconcile_posted_ = false;
    }
    if (!snapshot) return;
    auto started = std::chrono::steady_clock::now();
    reconcile(snapshot);
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    // Only a slow round is worth a line: at debug level every snapshot would log one.
    if (took < std::chrono::milliseconds(10)) return;
    log(LogLevel::kDebug, "snapshot " + std::to_string(snapshot->version()) + ": " +
                              std::to_string(tracked_.size()) + " pods reconciled in " +
                              std::to_string(took.count() / 1000) + " ms");
  }

  void reconcile(const store::SnapshotPtr& snapshot) {
    bool tcp = options_.default_probe == store::DefaultProbe::kTcp;
    bool targets_changed = tcp && (!reconciled_ || !sameProbeTargets(*reconciled_, *snapshot));
    if (targets_changed) default_ports_ = defaultProbePorts(*snapshot);
    if (reconciled_ && !targets_changed) {
      // Unchanged pods are the very objects of the previous snapshot: one walk over both sorted
      // lists finds the few that changed, without a lookup per pod.
      const auto& before = reconciled_->pods();
      const auto& after = snapshot->pods();
      size_t i = 0, j = 0;
      while (i < before.size() || j < after.size()) {
        auto order = i == before.size()  ? 1
                     : j == after.size() ? -1
                                         : compareNames(*before[i], *after[j]);
        if (order < 0) {
          forget(podKey(before[i]->namespace_name, before[i]->name));
          ++i;
        } else if (order > 0) {
          reconcilePod(*after[j++]);
        } else {
          if (before[i].get() != after[j].get()) reconcilePod(*after[j]);
          ++i;
          ++j;
        }
      }
    } else {
      ++round_;
      for (const auto& pod : snapshot->pods()) reconcilePod(*pod);
      for (auto it = tracked_.begin(); it != tracked_.end();) {
        if (it->second.visited == round_) {
          ++it;
          continue;
        }
        cancel(it->second);
        it = tracked_.erase(it);
      }
    }
    // Keeps every `seen` pointer valid until the next round compares with it.
    reconciled_ = snapshot;
  }

  static int compareNames(const store::Pod& a, const store::Pod& b) {
    if (int order = a.namespace_name.compare(b.namespace_name); order != 0) return order;
    return a.name.compare(b.name);
  }

  // What the default probe targets depends only on each Service's ports and on which pod
  // serves which port; readiness flips (the prober's own writes) leave it as it was.
  static bool sameProbeTargets(const store::Snapshot& a, const store::Snapshot& b) {
    const auto& xs = a.sharedServices();
    const auto& ys = b.sharedServices();
    if (xs.size() != ys.size()) return false;
    auto x = a.services();
    auto y = b.services();
    for (size_t s = 0; s < x.size(); ++s) {
      if (xs[s] == ys[s]) continue;  // an entry no change touched: shared by both snapshots
      if (x[s].service.namespace_name != y[s].service.namespace_name ||
          x[s].service.ports != y[s].service.ports ||
          x[s].endpoints.size() != y[s].endpoints.size()) {
        return false;
      }
      for (size_t e = 0; e < x[s].endpoints.size(); ++e) {
        const auto& p = x[s].endpoints[e];
        const auto& q = y[s].endpoints[e];
        if (p.pod_name != q.pod_name || p.ports != q.ports) return false;
      }
    }
    return true;
  }

  void forget(const std::string& key) {
    auto it = tracked_.find(key);
    if (it == tracked_.end()) return;
    cancel(it->second);
    tracked_.erase(it);
  }

  void reconcilePod(const store::Pod& pod) {
    static const std::vector<uint16_t> kNoPorts;
    std::string key = podKey(pod.namespace_name, pod.name);
    const std::vector<uint16_t>* ports = nullptr;
    if (options_.default_probe == store::DefaultProbe::kTcp) {
      auto found = default_ports_.find(key);
      if (found != default_ports_.end()) ports = &found->second;
    }
    auto old = tracked_.find(key);
    if (old != tracked_.end() && old->second.seen == &pod &&
        old->second.default_ports == (ports ? *ports : kNoPorts)) {
      old->second.visited = round_;
      return;
    }
    PodPlan plan = planFor(pod, ports, options_);
    if (old != tracked_.end() && sameShape(old->second, plan, pod)) {
      Tracked& kept = old->second;
      kept.stored = pod.readiness;
      if (kept.written && kept.written->ready == pod.readiness.ready &&
          kept.written->reason == pod.readiness.reason) {
        kept.written.reset();
      }
      kept.seen = &pod;
      kept.default_ports = ports ? *ports : kNoPorts;
      kept.visited = round_;
      return;
    }
    if (old != tracked_.end()) cancel(old->second);
    Tracked fresh;
    fresh.id = ++last_id_;
    fresh.namespace_name = pod.namespace_name;
    fresh.name = pod.name;
    fresh.plan = std::move(plan);
    fresh.ips = pod.ips;
    fresh.stored = pod.readiness;
    fresh.seen = &pod;
    fresh.default_ports = ports ? *ports : kNoPorts;
    fresh.visited = round_;
    if (fresh.plan.kind == PodPlan::Kind::kProbe) {
      fresh.session = startSession(fresh, pod);
    } else if (fresh.plan.kind == PodPlan::Kind::kVerdict &&
               (fresh.plan.verdict.ready != pod.readiness.ready ||
                fresh.plan.verdict.reason != pod.readiness.reason)) {
      emit(key, fresh, fresh.plan.verdict);
    }
    tracked_.insert_or_assign(std::move(key), std::move(fresh));
  }

  // Whether the pod is probed as before. The registry resets readiness to "awaiting" whenever
  // anything it probes changes; a reset with a new time therefore restarts the session too.
  static bool sameShape(const Tracked& tracked, const PodPlan& plan, const store::Pod& pod) {
    if (tracked.plan.kind != plan.kind || tracked.ips != pod.ips) return false;
    if (plan.kind == PodPlan::Kind::kProbe && !(tracked.plan.probe == plan.probe)) return false;
    if (plan.kind == PodPlan::Kind::kVerdict &&
        (tracked.plan.verdict.ready != plan.verdict.ready ||
         tracked.plan.verdict.reason != plan.verdict.reason)) {
      return false;
    }
    bool reset = isAwaitingReason(pod.readiness.reason) &&
                 (pod.readiness.reason != tracked.stored.reason ||
                  pod.readiness.changed_ms != tracked.stored.changed_ms);
    return !reset;
  }

  void cancel(Tracked& tracked) {
    if (!tracked.session) return;
    tracked.session->cancelled = true;
    tracked.session->timer.cancel();
    tracked.session.reset();
    counters_.sessions.fetch_sub(1, std::memory_order_relaxed);
  }

  std::shared_ptr<Session> startSession(const Tracked& tracked, const store::Pod& pod) {
    auto session = std::make_shared<Session>(context_);
    session->id = tracked.id;
    session->namespace_name = pod.namespace_name;
    session->name = pod.name;
    session->plan = tracked.plan.probe;
    counters_.sessions.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(context_, runSession(session, firstDelay(session->plan, pod.readiness)),
                   asio::detached);
    return session;
  }

  Clock::duration seconds(uint32_t count) const { return options_.second * count; }

  Clock::duration firstDelay(const ProbePlan& plan, const store::Readiness& stored) {
    if (stored.reason == store::kAwaitingProbe) {
      int64_t due_ms = stored.changed_ms + std::chrono::duration_cast<std::chrono::milliseconds>(
                                               seconds(plan.initial_delay_seconds))
                                               .count();
      return std::chrono::milliseconds(std::max<int64_t>(0, due_ms - nowMs()));
    }
    if (stored.reason == store::kAwaitingDefaultProbe) return Clock::duration::zero();
    auto bound = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(seconds(plan.period_seconds), seconds(1)));
    if (bound.count() <= 0) return Clock::duration::zero();
    std::uniform_int_distribution<int64_t> jitter(0, bound.count() - 1);
    return std::chrono::milliseconds(jitter(random_));
  }

  // Returns false when the session was cancelled while it waited.
  asio::awaitable<bool> waitUntil(Session& session, Clock::time_point when) {
    session.timer.expires_at(when);
    co_await session.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !session.cancelled;
  }

  asio::awaitable<bool> acquireSlot(const std::shared_ptr<Session>& session) {
    if (in_flight_ < options_.max_in_flight) {
      ++in_flight_;
      co_return true;
    }
    session->slot_granted = false;
    waiting_.push_back(session);
    // Woken by releaseSlot (slot_granted) or by cancel(); the timer never expires by itself.
    co_await waitUntil(*session, Clock::time_point::max());
    if (session->slot_granted && session->cancelled) releaseSlot();
    co_return session->slot_granted && !session->cancelled;
  }

  void releaseSlot() {
    while (!waiting_.empty()) {
      auto next = waiting_.front().lock();
      waiting_.pop_front();
      if (!next || next->cancelled) continue;
      next->slot_granted = true;  // the slot passes straight to it
      next->timer.cancel();
      return;
    }
    --in_flight_;
  }

  asio::awaitable<ProbeResult> probeOnce(const ProbePlan& plan) {
    if (!plan.error.empty()) co_return ProbeResult{false, plan.error};
    auto timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(seconds(plan.timeout_seconds));
    ProbeResult result;
    // Every port of a default probe must accept; the first that does not decides.
    for (uint16_t port : plan.ports) {
      ProbeTarget target;
      target.kind = plan.kind == ProbePlan::Kind::kHttpGet ? ProbeTarget::Kind::kHttp
                                                           : ProbeTarget::Kind::kTcp;
      target.ip = plan.ip;
      target.port = port;
      target.path = plan.path;
      result = co_await runProbe(std::move(target), timeout, plan.timeout_seconds);
      if (!result.success) co_return result;
    }
    co_return result;
  }

  asio::awaitable<void> runSession(std::shared_ptr<Session> session, Clock::duration delay) {
    if (!co_await waitUntil(*session, Clock::now() + delay)) co_return;
    for (;;) {
      if (!co_await acquireSlot(session)) co_return;
      auto started = Clock::now();
      ProbeResult result = co_await probeOnce(session->plan);
      releaseSlot();
      if (session->cancelled) co_return;
      record(*session, result);
      if (!co_await waitUntil(*session, started + seconds(session->plan.period_seconds))) {
        co_return;
      }
    }
  }

  void count(ProbePlan::Kind kind, bool success) {
    switch (kind) {
      case ProbePlan::Kind::kTcpSocket:
        (success ? counters_.tcp_success : counters_.tcp_failure).fetch_add(1);
        break;
      case ProbePlan::Kind::kHttpGet:
        (success ? counters_.http_success : counters_.http_failure).fetch_add(1);
        break;
      case ProbePlan::Kind::kDefaultTcp:
        (success ? counters_.default_success : counters_.default_failure).fetch_add(1);
        break;
    }
  }

  void record(Session& session, const ProbeResult& result) {
    count(session.plan.kind, result.success);
    std::optional<store::Readiness> verdict;
    if (result.success) {
      session.failures = 0;
      if (++session.successes >= session.plan.success_threshold) {
        verdict = store::Readiness{true, successReason(session.plan), 0};
      }
    } else {
      session.successes = 0;
      if (++session.failures == 1) {
        log(LogLevel::kDebug, "readiness probe of pod " +
                                  podKey(session.namespace_name, session.name) +
                                  " failed: " + result.detail);
      }
      if (session.failures >= session.plan.failure_threshold) {
        verdict = store::Readiness{false, failureReason(session.plan, result.detail), 0};
      }
    }
    if (!verdict) return;
    std::string key = podKey(session.namespace_name, session.name);
    auto tracked = tracked_.find(key);
    if (tracked == tracked_.end() || tracked->second.id != session.id) return;
    const store::Readiness& known =
        tracked->second.written ? *tracked->second.written : tracked->second.stored;
    if (needsWrite(*verdict, known)) emit(key, tracked->second, *verdict);
  }

  void emit(const std::string& key, Tracked& tracked, store::Readiness verdict) {
    verdict.changed_ms = nowMs();
    tracked.written = verdict;
    pending_.push_back(PendingWrite{
        key, tracked.id, store::ReadinessUpdate{tracked.namespace_name, tracked.name, verdict}});
    if (flush_armed_) return;
    flush_armed_ = true;
    flush_timer_.expires_after(kBatchWindow);
    flush_timer_.async_wait([this](const boost::system::error_code&) { flush(); });
  }

  void flush() {
    flush_armed_ = false;
    if (write_in_flight_) return;  // writeDone() flushes what gathered meanwhile
    std::vector<store::ReadinessUpdate> batch;
    std::vector<std::string> keys;
    for (auto& pending : pending_) {
      // A session restarted or a pod removed since: its verdict no longer applies.
      auto tracked = tracked_.find(pending.key);
      if (tracked == tracked_.end() || tracked->second.id != pending.id) continue;
      batch.push_back(std::move(pending.update));
      keys.push_back(pending.key);
    }
    pending_.clear();
    if (batch.empty() || !write_) return;
    write_in_flight_ = true;
    // The writer may answer from its own thread after this Prober is gone: the mailbox says
    // whether there is still someone to tell.
    auto done = [mailbox = mailbox_, keys](bool recorded) mutable {
      std::lock_guard lock(mailbox->mutex);
      if (!mailbox->impl) return;
      Impl* impl = mailbox->impl;
      asio::post(impl->context_,
                 [impl, recorded, keys = std::move(keys)] { impl->writeDone(recorded, keys); });
    };
    try {
      write_(std::move(batch), std::move(done));
    } catch (const std::exception& error) {
      log(LogLevel::kWarn,
          std::string("readiness prober: writing verdicts failed: ") + error.what());
      writeDone(false, keys);
    }
  }

  void writeDone(bool recorded, const std::vector<std::string>& keys) {
    write_in_flight_ = false;
    if (!recorded) {
      // Forget them, so the next probe result finds the stored readiness still wrong and writes
      // again (a busy registry, say).
      for (const auto& key : keys) {
        if (auto tracked = tracked_.find(key); tracked != tracked_.end()) {
          tracked->second.written.reset();
        }
      }
    }
    if (!pending_.empty() && !flush_armed_) flush();
  }

  const ProberOptions options_;
  const WriteFunction write_;
  const LogFunction log_;
  // Declared before everything that holds its handlers or I/O objects, so it is destroyed last.
  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer flush_timer_;
  std::mt19937_64 random_;
  AtomicCounters counters_;

  std::mutex lifecycle_mutex_;
  std::thread thread_;
  bool stopped_ = false;

  std::mutex snapshot_mutex_;
  store::SnapshotPtr latest_;
  bool reconcile_posted_ = false;

  std::unordered_map<std::string, Tracked> tracked_;
  uint64_t last_id_ = 0;
  size_t in_flight_ = 0;
  std::deque<std::weak_ptr<Session>> waiting_;
  std::vector<PendingWrite> pending_;
  bool flush_armed_ = false;
  bool write_in_flight_ = false;
  struct Mailbox {
    std::mutex mutex;
    Impl* impl = nullptr;
  };
  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  uint64_t round_ = 0;
  store::SnapshotPtr reconciled_;
  // The default probe's ports of every pod, recomputed only when the Services' targets change.
  std::unordered_map<std::string, std::vector<uint16_t>> default_ports_;
};

Prober::Prober(ProberOptions options, WriteFunction write, LogFunction log)
    : impl_(std::make_unique<Impl>(options, std::move(write), std::move(log))) {}

Prober::~Prober() = default;

void Prober::start() { impl_->start(); }

void Prober::update(const store::SnapshotPtr& snapshot) { impl_->update(snapshot); }

void Prober::stop() { impl_->stop(); }

ProbeCounters Prober::counters() const { return impl_->counters(); }

}  // namespace svcbox::health
