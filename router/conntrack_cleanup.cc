#include "router/conntrack_cleanup.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace svcbox::router {
namespace {

struct DumpContext {
  const std::vector<StaleUdpFlow>* flows;
  std::vector<std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)>> doomed;
};

bool matches(const StaleUdpFlow& flow, const nf_conntrack* ct) {
  if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_UDP) return false;
  if (ntohl(nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_DST)) != flow.cluster_ip) return false;
  if (ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST)) != flow.port) return false;
  return !flow.endpoint || ntohl(nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC)) == *flow.endpoint;
}

int collect(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto* context = static_cast<DumpContext*>(data);
  for (const auto& flow : *context->flows) {
    if (matches(flow, ct)) {
      context->doomed.emplace_back(nfct_clone(ct), &nfct_destroy);
      break;
    }
  }
  return NFCT_CB_CONTINUE;
}

}  // namespace

std::vector<StaleUdpFlow> staleUdpFlows(const std::vector<UdpServicePort>& before,
                                        const std::vector<UdpServicePort>& after) {
  std::map<std::pair<uint32_t, uint16_t>, const UdpServicePort*> now;
  for (const auto& port : after) now[{port.cluster_ip, port.port}] = &port;
  std::vector<StaleUdpFlow> stale;
  for (const auto& old : before) {
    auto it = now.find({old.cluster_ip, old.port});
    if (it == now.end()) {
      stale.push_back({old.cluster_ip, old.port, std::nullopt});
      continue;
    }
    const auto& current = it->second->endpoints;
    if (old.endpoints.empty() && !current.empty()) {
      stale.push_back({old.cluster_ip, old.port, std::nullopt});
      continue;
    }
    for (uint32_t endpoint : old.endpoints) {
      if (!std::binary_search(current.begin(), current.end(), endpoint)) {
        stale.push_back({old.cluster_ip, old.port, endpoint});
      }
    }
  }
  return stale;
}

int deleteUdpFlows(const std::vector<StaleUdpFlow>& flows, std::string& error) {
  if (flows.empty()) return 0;
  std::unique_ptr<nfct_handle, decltype(&nfct_close)> handle(nfct_open(CONNTRACK, 0), &nfct_close);
  if (!handle) {
    error = std::string("cannot open conntrack: ") + std::strerror(errno);
    return -1;
  }
  DumpContext context{&flows, {}};
  nfct_callback_register(handle.get(), NFCT_T_ALL, collect, &context);
  uint32_t family = AF_INET;
  if (nfct_query(handle.get(), NFCT_Q_DUMP, &family) < 0) {
    error = std::string("cannot list conntrack entries: ") + std::strerror(errno);
    return -1;
  }
  nfct_callback_unregister(handle.get());
  int deleted = 0;
  for (const auto& ct : context.doomed) {
    // ENOENT: the entry expired meanwhile, which is what we wanted.
    if (nfct_query(handle.get(), NFCT_Q_DESTROY, ct.get()) == 0 || errno == ENOENT) ++deleted;
  }
  return deleted;
}

ConntrackCleaner::ConntrackCleaner(Report report, DeleteFunction remove)
    : report_(std::move(report)), remove_(std::move(remove)), thread_([this] { run(); }) {}

ConntrackCleaner::~ConntrackCleaner() { stop(); }

void ConntrackCleaner::submit(std::vector<StaleUdpFlow> flows) {
  if (flows.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (auto& flow : flows) {
      if (std::find(queued_.begin(), queued_.end(), flow) == queued_.end()) {
        queued_.push_back(flow);
      }
    }
  }
  wake_.notify_one();
}

void ConntrackCleaner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

uint64_t ConntrackCleaner::cleanups() const {
  std::lock_guard lock(mutex_);
  return cleanups_;
}

void ConntrackCleaner::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (stopping_) return;
    std::vector<StaleUdpFlow> flows;
    flows.swap(queued_);
    lock.unlock();
    std::string error;
    int deleted = remove_(flows, error);
    if (report_) report_(deleted, error);
    lock.lock();
    ++cleanups_;
  }
}

}  // namespace svcbox::router
