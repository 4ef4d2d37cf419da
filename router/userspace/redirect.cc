#include "router/userspace/redirect.h"

// glibc's netinet/in.h first: the kernel header below then skips its own in.h.
#include <netinet/in.h>

#include <linux/netfilter/xt_conntrack.h>

#include <algorithm>
#include <map>
#include <string>

#include "router/chain_names.h"

namespace svcbox::router::userspace {

RedirectTables redirectTables(const store::Snapshot& snapshot,
                              const std::vector<PortMapping>& mapping) {
  RedirectTables tables;
  tables.nat.name = "nat";
  tables.filter.name = "filter";
  tables.mangle.name = "mangle";
  tables.nat.hooks = {{"PREROUTING", kServicesChain}, {"OUTPUT", kServicesChain}};
  Chain services{kServicesChain, {}};
  for (const auto& port : mapping) {
    const auto* entry = snapshot.findService(port.namespace_name, port.name);
    // IPv6 ClusterIPs are not routed by netfilter here yet (as in iptables mode).
    if (!entry || !entry->service.cluster_ip || !entry->service.cluster_ip->isV4()) continue;
    const auto& b = entry->service.cluster_ip->bytes;
    Rule rule;
    rule.destination = {
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]},
        32};
    rule.protocol = port.protocol == store::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
    rule.comment = port.namespace_name + "/" + port.name + ":" + std::to_string(port.service_port);
    rule.destination_port = port.service_port;
    rule.target.kind = TargetKind::kRedirect;
    rule.target.port = port.listen_port;
    services.rules.push_back(std::move(rule));
  }
  tables.nat.chains.push_back(std::move(services));
  // The listeners bind every address, so without these anyone who reaches the node would reach
  // every Service's pods through node:20080 (and a local user through 127.0.0.1:20080). A
  // redirected packet carries conntrack's DNAT state; anything else to a listener is rejected.
  // TCP is also checked by the proxy itself (SO_ORIGINAL_DST), in case this table is flushed.
  if (!mapping.empty()) {
    tables.filter.hooks = {{"INPUT", kProxyInputChain}};
    Chain input{kProxyInputChain, {}};
    for (const auto& port : mapping) {
      Rule redirected;
      redirected.protocol = port.protocol == store::Protocol::kUdp ? IPPROTO_UDP : IPPROTO_TCP;
      redirected.destination_port = port.listen_port;
      redirected.comment = port.namespace_name + "/" + port.name + ":" +
                           std::to_string(port.service_port) + " listener";
      redirected.ctstate = XT_CONNTRACK_STATE_DNAT;
      redirected.target.kind = TargetKind::kReturn;
      Rule direct = redirected;
      direct.ctstate = 0;
      direct.target.kind = TargetKind::kReject;
      input.rules.push_back(std::move(redirected));
      input.rules.push_back(std::move(direct));
    }
    tables.filter.chains.push_back(std::move(input));
  }
  tables.mangle.chains.push_back(Chain{kCanaryChain, {}});
  return tables;
}

RedirectRules::RedirectRules(std::unique_ptr<TableWriter> writer, RouterTiming timing,
                             LogFunction log)
    : writer_(writer ? std::move(writer) : std::make_unique<IptcTableWriter>()),
      timing_(timing),
      log_(std::move(log)) {}

RedirectRules::~RedirectRules() { stop(); }

bool RedirectRules::apply(const store::SnapshotPtr& snapshot,
                          const std::vector<PortMapping>& mapping, SyncFailure& failure) {
  std::lock_guard lock(mutex_);
  snapshot_ = snapshot;
  mapping_ = mapping;
  if (write(failure)) {
    retry_at_ = Clock::time_point::max();
    return true;
  }
  retry_at_ = Clock::now() + timing_.first_backoff;
  wakeup_.notify_one();
  return false;
}

bool RedirectRules::write(SyncFailure& failure) {
  auto tables = redirectTables(*snapshot_, mapping_);
  for (const Table* table : {&tables.nat, &tables.filter, &tables.mangle}) {
    TableSyncStats stats;
    if (!writer_->sync(*table, full_, nullptr, stats, failure)) {
      full_ = true;
      return false;
    }
  }
  full_ = false;
  return true;
}

void RedirectRules::startRepairs() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { repairLoop(); });
}

void RedirectRules::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_one();
  if (thread_.joinable()) thread_.join();
}

uint64_t RedirectRules::repairCount() const {
  std::lock_guard lock(mutex_);
  return repairs_;
}

void RedirectRules::repairLoop() {
  std::unique_lock lock(mutex_);
  auto now = Clock::now();
  auto next_full = now + timing_.sync_period;
  auto next_canary = now + timing_.canary_interval;
  int failures_in_row = 0;
  while (!stopping_) {
    wakeup_.wait_until(lock, std::min({next_full, next_canary, retry_at_}));
    if (stopping_) break;
    now = Clock::now();
    bool due = now >= next_full || now >= retry_at_;
    if (now >= next_canary) {
      next_canary = now + timing_.canary_interval;
      SyncFailure failure;
      bool present = writer_->chainExists("mangle", kCanaryChain, failure);
      if (!present && failure.message.empty() && snapshot_) {
        if (log_) {
          log_(LogLevel::kWarn, "canary chain mangle/" + std::string(kCanaryChain) +
                                    " is gone: the tables were flushed from outside; REDIRECT "
                                    "rules rewritten");
        }
        due = true;
      }
    }
    if (!due || !snapshot_) {
      if (now >= next_full) next_full = now + timing_.sync_period;
      continue;
    }
    full_ = true;
    SyncFailure failure;
    if (write(failure)) {
      ++repairs_;
      failures_in_row = 0;
      retry_at_ = Clock::time_point::max();
      next_full = now + timing_.sync_period;
      continue;
    }
    ++failures_in_row;
    auto backoff = std::min(timing_.first_backoff * (1 << std::min(failures_in_row - 1, 16)),
                            timing_.max_backoff);
    retry_at_ = now + backoff;
    if (log_) {
      log_(LogLevel::kWarn, "REDIRECT rules not written (" + failure.message + "); retry in " +
                                std::to_string(backoff.count()) + " ms");
    }
  }
}

}  // namespace svcbox::router::userspace
