#include "router/router.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "router/chain_names.h"
#include "router/iptc_sync.h"
#include "store/test_hooks.h"

namespace svcbox::router {
namespace {

using Clock = std::chrono::steady_clock;

std::string millis(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// A test-only pause between the nat and the filter commit, so an e2e test can kill svcbox at the
// one point where the two tables disagree.
std::chrono::milliseconds testPauseBetweenTables() {
  const char* value = SVCBOX_TEST_HOOK("SVCBOX_TEST_PAUSE_BETWEEN_TABLES_MS");
  return std::chrono::milliseconds(value ? std::atol(value) : 0);
}

TableRuleCount countRules(const Table& table) {
  TableRuleCount count{table.name, table.hooks.size(), table.chains.size()};
  for (const auto& chain : table.chains) count.rules += chain.rules.size();
  return count;
}

bool isSvcboxLine(const std::string& line) {
  return line.starts_with(":SVCBOX-") || line.starts_with("-A SVCBOX-") ||
         line.find(" -j SVCBOX-") != std::string::npos;
}

}  // namespace

Router::Target::Target(RouterOptions options, LogFunction log, std::unique_ptr<TableWriter> writer)
    : tracker_(std::move(options)),
      log_(std::move(log)),
      conntrack_cleaner_([this](int deleted, const std::string& error) {
        if (deleted < 0) {
          log_(LogLevel::kWarn, "UDP conntrack cleanup failed: " + error);
        } else if (deleted > 0) {
          log_(LogLevel::kInfo,
               "deleted " + std::to_string(deleted) + " stale UDP conntrack entries");
        }
      }),
      writer_(std::move(writer)),
      test_pause_between_tables_(testPauseBetweenTables()) {}

bool Router::Target::sync(const store::SnapshotPtr& snapshot, bool full, SyncFailure& failure) {
  auto started = Clock::now();
  DesiredStateTracker::Change change;
  const DesiredState& desired = tracker_.update(snapshot, change);
  double compute_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  std::string summary;
  std::vector<std::string> committed_tables;
  for (const Table* table : {&desired.nat, &desired.filter, &desired.mangle}) {
    TableSyncStats stats;
    // Only the nat chains of the Services whose endpoints moved: the other tables are unchanged.
    static const std::vector<std::string> kNoChains;
    const std::vector<std::string>* changed_chains = !change.incremental     ? nullptr
                                                     : table == &desired.nat ? &change.nat_chains
                                                                             : &kNoChains;
    if (!writer_->sync(*table, full, changed_chains, stats, failure)) {
      failure.message = table->name + " table: " + failure.message;
      return false;
    }
    summary += ", " + table->name + " " + std::to_string(stats.chains_written) + " written/" +
               std::to_string(stats.chains_kept) + " kept/" + std::to_string(stats.chains_removed) +
               " removed" +
               (stats.committed
                    ? std::string(stats.read_ahead ? " (read ahead " : " (read ") +
                          millis(stats.init_ms) + " ms, commit " + millis(stats.commit_ms) + " ms)"
                    : " (unchanged)");
    if (stats.committed) committed_tables.push_back(table->name);
    if (table == &desired.nat && test_pause_between_tables_.count() > 0) {
      std::this_thread::sleep_for(test_pause_between_tables_);
    }
  }
  // Only after the rules changed: deleting the flows earlier would let them re-form the old way.
  auto stale = staleUdpFlows(applied_udp_, desired.udp_ports);
  if (applied_udp_ != desired.udp_ports) applied_udp_ = desired.udp_ports;
  conntrack_cleaner_.submit(std::move(stale));
  double total_ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  log_(LogLevel::kInfo, std::string(full ? "full" : "partial") + " sync of snapshot " +
                            std::to_string(snapshot->version()) + ": " +
                            std::to_string(desired.service_ports) + " service ports in " +
                            millis(total_ms) + " ms (rules computed in " + millis(compute_ms) +
                            " ms" + summary + ")");
  if (desired.skipped_ipv6 > 0 && desired.skipped_ipv6 != reported_ipv6_) {
    log_(LogLevel::kWarn, std::to_string(desired.skipped_ipv6) +
                              " IPv6 service ports have no rules: svcbox routes IPv4 only");
  }
  reported_ipv6_ = desired.skipped_ipv6;
  {
    std::lock_guard lock(tables_mutex_);
    tables_ = {countRules(desired.nat), countRules(desired.filter), countRules(desired.mangle)};
  }
  read_ahead_tables_ = std::move(committed_tables);
  return true;
}

bool Router::Target::stillInstalled(std::string& why_not) {
  return canaryStillInstalled(*writer_, why_not);
}

void Router::Target::afterSync() {
  for (const auto& table : read_ahead_tables_) writer_->prepare(table);
  read_ahead_tables_.clear();
}

std::vector<TableRuleCount> Router::Target::tables() const {
  std::lock_guard lock(tables_mutex_);
  return tables_;
}

Router::Router(RouterOptions options, RouterTiming timing, LogFunction log,
               std::unique_ptr<TableWriter> writer)
    : target_(std::move(options), log,
              writer ? std::move(writer) : std::make_unique<IptcTableWriter>(timing.lock_wait)),
      loop_(target_, timing, log, "iptables rules") {}

Router::~Router() { stop(); }

bool Router::canRun(SyncFailure& failure) const { return canWriteNetfilter(failure); }

bool Router::start(const store::SnapshotPtr& first, SyncFailure& failure) {
  return loop_.start(first, failure);
}

void Router::stop() {
  loop_.stop();
  target_.stopConntrackCleanup();
}

bool Router::cleanup(SyncFailure& failure, bool& changed) { return cleanupAll(failure, changed); }

RouterStats Router::stats() const {
  RouterStats stats;
  static_cast<SyncLoopStats&>(stats) = loop_.stats();
  stats.tables = target_.tables();
  return stats;
}

bool Router::installedRules(std::vector<std::string>& lines, SyncFailure& failure) const {
  return installedSvcboxRules(lines, failure);
}

// The installed rules come from iptables-legacy-save itself: the kernel's view, printed by the
// reference tool, not by svcbox's own idea of what it wrote.
bool installedSvcboxRules(std::vector<std::string>& out, SyncFailure& failure) {
  for (const char* table : {"nat", "filter", "mangle"}) {
    std::string command = std::string("iptables-legacy-save -t ") + table + " 2>&1";
    std::unique_ptr<FILE, decltype(&pclose)> pipe(popen(command.c_str(), "r"), &pclose);
    if (!pipe) {
      failure.message = "cannot run iptables-legacy-save";
      return false;
    }
    std::vector<std::string> lines;
    char buffer[4096];
    std::string line;
    while (std::fgets(buffer, sizeof buffer, pipe.get())) {
      line += buffer;
      if (line.back() != '\n') continue;
      line.pop_back();
      lines.push_back(line);
      line.clear();
    }
    int status = pclose(pipe.release());
    if (status != 0) {
      std::string output = lines.empty() ? "" : lines.front();
      failure.permission_denied = output.find("Permission denied") != std::string::npos;
      failure.message =
          failure.permission_denied
              ? output
              : "iptables-legacy-save -t " + std::string(table) + " failed" +
                    (output.empty() ? " (is the iptables package installed?)" : ": " + output);
      return false;
    }
    out.push_back("*" + std::string(table));
    for (const auto& text : lines) {
      if (isSvcboxLine(text)) out.push_back(text);
    }
    out.push_back("COMMIT");
  }
  return true;
}

bool canWriteNetfilter(SyncFailure& failure) { return canReadTable("nat", failure); }

bool cleanupAll(SyncFailure& failure, bool& changed) {
  IptcTableWriter writer;
  changed = false;
  for (const char* table : {"nat", "filter", "mangle"}) {
    bool table_changed = false;
    if (!writer.cleanup(table, table_changed, failure)) return false;
    changed = changed || table_changed;
  }
  return true;
}

}  // namespace svcbox::router
