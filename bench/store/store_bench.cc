// store_bench: how fast a large registry turns into a Snapshot, how soon a commit reaches the
// daemon's Watcher, and how much memory a Snapshot holds.
//
//   store_bench [--rebuilds N] [--commits N] [--strict] REGISTRY
//
// REGISTRY must already hold the objects (bench/store/run.sh applies the generated manifest).
// The bench commits a few small changes to it (one Pod's readiness, one Service's port name) and
// restores them afterwards. Results are printed as Markdown; --strict exits 1 when a goal is
// missed.

#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "store/registry.h"
#include "store/snapshot.h"
#include "store/watcher.h"

namespace {

using svcbox::store::Registry;
using svcbox::store::SnapshotPtr;
using Clock = std::chrono::steady_clock;

// The daemon's poll interval (app/cmd_serve.cc: kWatchInterval).
constexpr auto kWatchInterval = std::chrono::milliseconds(5);
// How long to wait for the watcher to publish a commit before calling it lost.
constexpr auto kPublishTimeout = std::chrono::seconds(10);
// Pause between commits, so each one meets an idle watcher.
constexpr auto kSettle = std::chrono::milliseconds(50);
constexpr double kRebuildGoalMs = 50.0;
constexpr double kWatcherGoalMs = 50.0;

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "store_bench: " << message << "\n";
  std::exit(2);
}

template <typename T>
T check(svcbox::store::Result<T> result, const std::string& what) {
  if (!result) fail(what + ": " + result.error().message);
  return std::move(*result);
}

double millisecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

struct Summary {
  double min = 0;
  double median = 0;
  double max = 0;
};

Summary summarize(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return {values.front(), median, values.back()};
}

std::string format(double value, int decimals = 1) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

// VmRSS / VmHWM from /proc/self/status and the bytes malloc has handed out, in KiB. RSS also
// counts what malloc keeps after free (per-thread arenas), so both are shown.
struct Memory {
  long rss_kib = 0;
  long hwm_kib = 0;
  long heap_kib = 0;
};

Memory readMemory() {
  Memory memory;
#ifdef __GLIBC__
  struct mallinfo2 info = mallinfo2();
  memory.heap_kib = static_cast<long>((info.uordblks + info.hblkhd) / 1024);
#endif
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string key;
    long value = 0;
    fields >> key >> value;
    if (key == "VmRSS:") memory.rss_kib = value;
    if (key == "VmHWM:") memory.hwm_kib = value;
  }
  return memory;
}

std::string mib(long kib) { return format(static_cast<double>(kib) / 1024.0) + " MiB"; }

// Every snapshot the watcher publishes, with the moment its callback ran.
class PublishLog {
 public:
  void record(const SnapshotPtr& snapshot) {
    auto now = Clock::now();
    {
      std::lock_guard lock(mutex_);
      latest_ = snapshot;
      published_at_ = now;
    }
    changed_.notify_all();
  }

  // Waits for a snapshot newer than `version`; returns it with its publication time.
  std::optional<std::pair<SnapshotPtr, Clock::time_point>> waitNewerThan(uint64_t version) {
    std::unique_lock lock(mutex_);
    bool published = changed_.wait_for(lock, kPublishTimeout,
                                       [&] { return latest_ && latest_->version() > version; });
    if (!published) return std::nullopt;
    return std::pair(latest_, published_at_);
  }

  void clear() {
    std::lock_guard lock(mutex_);
    latest_.reset();
  }

  uint64_t latestVersion() {
    std::lock_guard lock(mutex_);
    return latest_ ? latest_->version() : 0;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  SnapshotPtr latest_;
  Clock::time_point published_at_;
};

struct CommitTiming {
  std::vector<double> commit_ms;   // the writer's call, BEGIN IMMEDIATE .. COMMIT returned
  std::vector<double> latency_ms;  // commit returned -> on_snapshot ran with that version
};

// Commits `count` changes through `commit(i)` and times how soon the watcher publishes each.
// `verify(snapshot, i)` checks that the published snapshot really holds change i.
CommitTiming timeCommits(int count, PublishLog& log, const std::function<void(int)>& commit,
                         const std::function<bool(const SnapshotPtr&, int)>& verify) {
  CommitTiming timing;
  for (int i = 0; i < count; ++i) {
    // Let the watcher finish the previous round (it frees the replaced snapshot after
    // publishing), then land the commits at different points of the 5 ms poll cycle.
    std::this_thread::sleep_for(kSettle + std::chrono::microseconds((i * 1700) % 5000));
    uint64_t before = log.latestVersion();
    auto begin = Clock::now();
    commit(i);
    auto committed = Clock::now();
    auto published = log.waitNewerThan(before);
    if (!published) {
      fail("the watcher did not publish commit " + std::to_string(i) + " within 10 s");
    }
    if (!verify(published->first, i)) {
      fail("the snapshot published after commit " + std::to_string(i) + " does not hold it");
    }
    timing.commit_ms.push_back(millisecondsBetween(begin, committed));
    timing.latency_ms.push_back(millisecondsBetween(committed, published->second));
  }
  return timing;
}

struct Options {
  std::string path;
  int rebuilds = 20;
  int commits = 20;
  bool strict = false;
};

Options parseArguments(int argc, char** argv) {
  Options options;
  auto usage = [] { fail("usage: store_bench [--rebuilds N] [--commits N] [--strict] REGISTRY"); };
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if ((argument == "--rebuilds" || argument == "--commits") && i + 1 < argc) {
      int value = std::atoi(argv[++i]);
      if (value < 1) usage();
      (argument == "--rebuilds" ? options.rebuilds : options.commits) = value;
    } else if (argument == "--strict") {
      options.strict = true;
    } else if (!argument.empty() && argument[0] != '-' && options.path.empty()) {
      options.path = argument;
    } else {
      usage();
    }
  }
  if (options.path.empty()) usage();
  return options;
}

struct GoalRow {
  std::string name;
  double measured_ms;
  double goal_ms;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parseArguments(argc, argv);
  Memory baseline = readMemory();
  auto open = [&] {
    return check(Registry::open(options.path, Registry::Options{.create = false}),
                 "open " + options.path);
  };

  // (a) Snapshot rebuild: Registry::loadSnapshot() on a connection of its own. The first call
  // also prepares the statements; it is reported apart and left out of the statistics.
  auto reader = open();
  auto first_begin = Clock::now();
  SnapshotPtr held = check(reader->loadSnapshot(), "loadSnapshot");
  double first_ms = millisecondsBetween(first_begin, Clock::now());
  Memory holding = readMemory();
  if (held->services().empty() || held->pods().empty()) {
    fail(options.path + " holds no Services or no Pods; apply the manifest first");
  }
  std::vector<double> rebuild_ms;
  for (int i = 0; i < options.rebuilds; ++i) {
    auto begin = Clock::now();
    SnapshotPtr snapshot = check(reader->loadSnapshot(), "loadSnapshot");
    rebuild_ms.push_back(millisecondsBetween(begin, Clock::now()));
    if (snapshot->version() != held->version()) fail("the registry changed during the bench");
  }
  Memory rebuilt = readMemory();
  size_t endpoints = 0;
  size_t ready_endpoints = 0;
  for (const auto& entry : held->services()) {
    endpoints += entry.endpoints.size();
    for (const auto& endpoint : entry.endpoints) ready_endpoints += endpoint.ready ? 1 : 0;
  }

  // (b) Watcher latency: a Watcher on a second connection, polling like `svcbox serve`; a third
  // connection commits, as the prober (readiness) or `svcbox apply` (one Service) would.
  PublishLog log;
  auto watcher = std::make_unique<svcbox::store::Watcher>(
      open(), kWatchInterval,
      [&log](const SnapshotPtr&, const SnapshotPtr& current) { log.record(current); },
      [](const svcbox::store::Error& error) { fail("watcher: " + error.message); });
  if (auto started = watcher->start(); !started) fail("watcher: " + started.error().message);
  auto writer = open();

  const auto& pod = *held->pods()[held->pods().size() / 2];
  const auto original_readiness = pod.readiness;
  auto flip_reason = [](int i) { return "store_bench flip " + std::to_string(i); };
  CommitTiming readiness = timeCommits(
      options.commits, log,
      [&](int i) {
        svcbox::store::Readiness flipped{
            i % 2 == 0 ? !original_readiness.ready : original_readiness.ready, flip_reason(i), 0};
        if (!check(writer->setPodReadiness(pod.namespace_name, pod.name, flipped),
                   "setPodReadiness")) {
          fail("setPodReadiness wrote nothing");
        }
      },
      [&](const SnapshotPtr& snapshot, int i) {
        const auto* found = snapshot->findPod(pod.namespace_name, pod.name);
        return found && found->readiness.reason == flip_reason(i);
      });
  // Let the watcher's refresh() return, dropping the snapshot it replaced.
  std::this_thread::sleep_for(4 * kWatchInterval);
  Memory watching = readMemory();

  const auto& entry = held->services()[held->services().size() / 2];
  const auto original_service = entry.service;
  // Alternates between two port names the manifest never uses, so every apply changes the row.
  auto port_name = [&](int i) {
    std::string name = i % 2 == 0 ? "bench-a" : "bench-b";
    return name == original_service.ports.front().name ? std::string("bench-c") : name;
  };
  auto apply_service = [&](const std::string& name) {
    svcbox::store::Service service = original_service;
    service.ports.front().name = name;
    auto changes = check(writer->apply({service}, svcbox::store::CidrChoice{}), "apply Service");
    return changes.size() == 1 &&
           changes.front().action == svcbox::store::Change::Action::kConfigured;
  };
  CommitTiming service_apply = timeCommits(
      options.commits, log,
      [&](int i) {
        if (!apply_service(port_name(i))) fail("apply of a changed Service changed nothing");
      },
      [&](const SnapshotPtr& snapshot, int i) {
        const auto* found =
            snapshot->findService(original_service.namespace_name, original_service.name);
        return found && found->service.ports.front().name == port_name(i);
      });
  // Put back what the bench changed, so the registry reads as applied.
  check(writer->setPodReadiness(pod.namespace_name, pod.name, original_readiness),
        "restore readiness");
  if (!apply_service(original_service.ports.front().name)) fail("restoring the Service failed");
  watcher.reset();  // stops it and drops its snapshot
  log.clear();
  Memory final_memory = readMemory();

  Summary rebuild = summarize(rebuild_ms);
  Summary readiness_latency = summarize(readiness.latency_ms);
  Summary readiness_commit = summarize(readiness.commit_ms);
  Summary apply_latency = summarize(service_apply.latency_ms);
  Summary apply_commit = summarize(service_apply.commit_ms);

  struct stat file {};
  double file_mib = ::stat(options.path.c_str(), &file) == 0
                        ? static_cast<double>(file.st_size) / (1024.0 * 1024.0)
                        : 0.0;
  std::cout << "### Registry\n\n"
            << "| Services | Pods | Endpoints (ready) | Registry file |\n"
            << "|---:|---:|---:|---:|\n"
            << "| " << held->services().size() << " | " << held->pods().size() << " | " << endpoints
            << " (" << ready_endpoints << ") | " << format(file_mib) << " MiB |\n\n";

  auto row = [](const std::string& name, size_t runs, const Summary& s) {
    std::cout << "| " << name << " | " << runs << " | " << format(s.min) << " | "
              << format(s.median) << " | " << format(s.max) << " |\n";
  };
  std::cout << "### Timings (ms)\n\n"
            << "| Measurement | Runs | Min | Median | Max |\n"
            << "|---|---:|---:|---:|---:|\n";
  std::cout << "| Snapshot rebuild, first call (prepares statements) | 1 | " << format(first_ms)
            << " | " << format(first_ms) << " | " << format(first_ms) << " |\n";
  row("Snapshot rebuild (`Registry::loadSnapshot`)", rebuild_ms.size(), rebuild);
  row("Commit: `setPodReadiness` (one Pod)", readiness.commit_ms.size(), readiness_commit);
  row("Watcher latency after `setPodReadiness`: commit → `on_snapshot`",
      readiness.latency_ms.size(), readiness_latency);
  row("Commit: `apply` of one changed Service", service_apply.commit_ms.size(), apply_commit);
  row("Watcher latency after `apply`: commit → `on_snapshot`", service_apply.latency_ms.size(),
      apply_latency);
  std::cout << "\nWatcher poll interval " << kWatchInterval.count()
            << " ms (as in `svcbox serve`); the latency includes the watcher's own snapshot "
               "rebuild.\n\n";

  auto memory_row = [&](const std::string& point, const Memory& memory) {
    std::cout << "| " << point << " | " << mib(memory.rss_kib) << " | "
              << mib(memory.rss_kib - baseline.rss_kib) << " | " << mib(memory.heap_kib) << " |\n";
  };
  std::cout << "### Memory (this process)\n\n"
            << "| Point | VmRSS | VmRSS Δ from start | malloc in use |\n"
            << "|---|---:|---:|---:|\n";
  memory_row("Start (no registry open)", baseline);
  memory_row("Holding one snapshot", holding);
  memory_row("Same, after " + std::to_string(options.rebuilds) + " more rebuilds (each freed)",
             rebuilt);
  memory_row("Same + watcher running (it holds its own snapshot)", watching);
  memory_row("End (watcher destroyed; first snapshot still held)", final_memory);
  std::cout << "| Peak (VmHWM) | " << mib(final_memory.hwm_kib) << " | "
            << mib(final_memory.hwm_kib - baseline.rss_kib) << " | — |\n\n";

  std::vector<GoalRow> goals = {
      {"Snapshot rebuild, median", rebuild.median, kRebuildGoalMs},
      {"Snapshot rebuild, max", rebuild.max, kRebuildGoalMs},
      {"Watcher latency (readiness), median", readiness_latency.median, kWatcherGoalMs},
      {"Watcher latency (readiness), max", readiness_latency.max, kWatcherGoalMs},
      {"Watcher latency (apply), median", apply_latency.median, kWatcherGoalMs},
      {"Watcher latency (apply), max", apply_latency.max, kWatcherGoalMs},
  };
  bool all_pass = true;
  std::cout << "### Goals (headroom = goal / measured; ≥ 1.00 meets the goal)\n\n"
            << "| Goal | Measured | Target | Headroom | Result |\n"
            << "|---|---:|---:|---:|---|\n";
  for (const auto& goal : goals) {
    bool pass = goal.measured_ms <= goal.goal_ms;
    all_pass &= pass;
    double headroom = goal.measured_ms > 0 ? goal.goal_ms / goal.measured_ms : 0;
    std::cout << "| " << goal.name << " | " << format(goal.measured_ms) << " ms | ≤ "
              << format(goal.goal_ms, 0) << " ms | " << format(headroom, 2) << "× | "
              << (pass ? "PASS" : "MISS") << " |\n";
  }
  std::cout << "| RSS holding one snapshot | " << mib(holding.rss_kib)
            << " | — (no goal) | — | — |\n";
  std::cout.flush();
  return options.strict && !all_pass ? 1 : 0;
}
