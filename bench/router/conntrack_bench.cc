// What deleting stale UDP flows costs as the host's conntrack table grows, and what of it the
// router thread pays. Run through conntrack.sh: it needs CAP_NET_ADMIN and a network namespace of
// its own, whose conntrack table this fills.
//
//   conntrack_bench N [RUNS]
//
// N UDP entries: 1% are flows to the Service 10.96.0.10:53 (half answered by pod 10.244.1.2, half
// by 10.244.2.2), the rest flows to other ClusterIPs. Each run deletes pod 10.244.1.2's flows,
// as a sync does when that pod leaves, then puts them back for the next run.
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "router/conntrack_cleanup.h"

namespace {

using svcbox::router::StaleUdpFlow;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kService = 0x0a60000a;  // 10.96.0.10
constexpr uint32_t kPodA = 0x0af40102;     // 10.244.1.2
constexpr uint32_t kPodB = 0x0af40202;     // 10.244.2.2

struct Flow {
  uint32_t client;
  uint16_t client_port;
  uint32_t service;
  uint32_t pod;
};

bool insert(nfct_handle* handle, const Flow& flow) {
  std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)> ct(nfct_new(), &nfct_destroy);
  nfct_set_attr_u8(ct.get(), ATTR_ORIG_L3PROTO, AF_INET);
  nfct_set_attr_u8(ct.get(), ATTR_ORIG_L4PROTO, IPPROTO_UDP);
  nfct_set_attr_u32(ct.get(), ATTR_ORIG_IPV4_SRC, htonl(flow.client));
  nfct_set_attr_u32(ct.get(), ATTR_ORIG_IPV4_DST, htonl(flow.service));
  nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_SRC, htons(flow.client_port));
  nfct_set_attr_u16(ct.get(), ATTR_ORIG_PORT_DST, htons(53));
  // The reply comes from the pod the DNAT chose, as in a real Service flow.
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L3PROTO, AF_INET);
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L4PROTO, IPPROTO_UDP);
  nfct_set_attr_u32(ct.get(), ATTR_REPL_IPV4_SRC, htonl(flow.pod));
  nfct_set_attr_u32(ct.get(), ATTR_REPL_IPV4_DST, htonl(flow.client));
  nfct_set_attr_u16(ct.get(), ATTR_REPL_PORT_SRC, htons(53));
  nfct_set_attr_u16(ct.get(), ATTR_REPL_PORT_DST, htons(flow.client_port));
  nfct_set_attr_u32(ct.get(), ATTR_TIMEOUT, 600);
  return nfct_query(handle, NFCT_Q_CREATE, ct.get()) == 0;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: conntrack_bench N [RUNS]\n");
    return 2;
  }
  size_t entries = std::strtoul(argv[1], nullptr, 10);
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  std::unique_ptr<nfct_handle, decltype(&nfct_close)> handle(nfct_open(CONNTRACK, 0), &nfct_close);
  if (!handle) {
    std::perror("nfct_open");
    return 1;
  }
  std::vector<Flow> service_a;
  for (size_t i = 0; i < entries; ++i) {
    Flow flow{0x0a010000 + static_cast<uint32_t>(i / 50000),
              static_cast<uint16_t>(10000 + i % 50000),
              0x0a600000 + 100 + static_cast<uint32_t>(i % 5000),
              0x0af40000 + static_cast<uint32_t>(i % 250)};
    if (i % 100 == 0) {
      flow.service = kService;
      flow.pod = (i / 100) % 2 ? kPodB : kPodA;
    }
    if (!insert(handle.get(), flow)) {
      std::perror("inserting a conntrack entry");
      return 1;
    }
    if (flow.service == kService && flow.pod == kPodA) service_a.push_back(flow);
  }
  std::vector<StaleUdpFlow> stale{{kService, 53, kPodA}};
  std::vector<double> dump_ms, submit_us;
  int deleted = 0;
  for (int run = 0; run < runs; ++run) {
    std::string error;
    auto start = Clock::now();
    deleted = svcbox::router::deleteUdpFlows(stale, error);
    dump_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (deleted < 0) {
      std::fprintf(stderr, "deleteUdpFlows: %s\n", error.c_str());
      return 1;
    }
    for (const auto& flow : service_a) insert(handle.get(), flow);
    // What the router thread pays now: handing the same flows to the cleaner's thread.
    svcbox::router::ConntrackCleaner cleaner(nullptr);
    start = Clock::now();
    cleaner.submit(stale);
    submit_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    cleaner.stop();
    for (const auto& flow : service_a) insert(handle.get(), flow);
  }
  std::printf("| %zu | %d | %.2f | %.2f |\n", entries, deleted, median(dump_ms), median(submit_us));
  return 0;
}
