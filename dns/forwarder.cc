#include "dns/forwarder.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "dns/address.h"
#include "dns/alias_chase.h"
#include "dns/responder.h"
#include "store/test_hooks.h"

namespace svcbox::dns {
namespace asio = boost::asio;

struct Forwarder::Watch {
  Watch(asio::io_context& context, ares_socket_t socket)
      : descriptor(context, socket), fd(socket) {}
  asio::posix::stream_descriptor descriptor;
  ares_socket_t fd;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  int upstream = -2;  // -2: not looked up yet (see upstreamOf)
};

namespace {

void initLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

// The question svcbox asks upstream: recursion desired, EDNS with its own UDP size.
std::vector<uint8_t> upstreamQuery(std::string_view lower_name, uint16_t type, uint16_t klass,
                                   bool dnssec_ok) {
  size_t question_end = kHeaderSize + lower_name.size() + 4;
  std::vector<uint8_t> packet(question_end + kOptRecordSize, 0);
  uint8_t* p = packet.data();
  writeU16(p + 2, kFlagRd);
  writeU16(p + 4, 1);
  writeU16(p + 10, 1);
  std::copy(lower_name.begin(), lower_name.end(), p + kHeaderSize);
  writeU16(p + question_end - 4, type);
  writeU16(p + question_end - 2, klass);
  writeOptRecord(p + question_end, 0, dnssec_ok);
  return packet;
}

}  // namespace

std::string Upstream::toString() const {
  return (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" +
         std::to_string(port);
}

Forwarder::Forwarder(asio::io_context& context, ForwarderOptions options, AnswerCache& cache)
    : context_(context),
      options_(std::move(options)),
      cache_(cache),
      timer_(context),
      upstream_latency_(options_.upstreams.size()) {
  initLibrary();
  for (const auto& upstream : options_.upstreams) {
    upstream_ips_.push_back(store::IpAddress::parse(upstream.address).value_or(store::IpAddress{}));
  }
  ares_options ares{};
  ares.sock_state_cb = &Forwarder::socketStateCallback;
  ares.sock_state_cb_data = this;
  size_t servers = std::max<size_t>(1, options_.upstreams.size());
  // c-ares tries each server once, so the per-server timeout shares out the total.
  ares.timeout = static_cast<int>(
      std::max<int64_t>(50, options_.timeout.count() / static_cast<int64_t>(servers)));
  ares.tries = 1;
  ares.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
  ares.ednspsz = kServerUdpSize;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
             ARES_OPT_EDNSPSZ;
  // The test hook stands in for a c-ares that cannot start (out of memory, say), which serve
  // reports as an internal error (exit 2).
  int status = SVCBOX_TEST_HOOK("SVCBOX_TEST_CARES_INIT_FAILS")
                   ? ARES_ENOMEM
                   : ares_init_options(&channel_, &ares, mask);
  if (status != ARES_SUCCESS) {
    throw std::runtime_error(std::string("c-ares could not be initialised: ") +
                             ares_strerror(status));
  }
  std::vector<ares_addr_port_node> nodes(options_.upstreams.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& upstream = options_.upstreams[i];
    auto& node = nodes[i];
    node.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
    if (inet_pton(AF_INET, upstream.address.c_str(), &node.addr.addr4) == 1) {
      node.family = AF_INET;
    } else {
      node.family = AF_INET6;
      inet_pton(AF_INET6, upstream.address.c_str(), &node.addr.addr6);
    }
    node.udp_port = upstream.port;
    node.tcp_port = upstream.port;
  }
  ares_set_servers_ports(channel_, nodes.empty() ? nullptr : nodes.data());
}

Forwarder::~Forwarder() { shutdown(); }

void Forwarder::shutdown() {
  if (!channel_) return;
  for (auto& [fd, watch] : watches_) {
    // c-ares owns these sockets and closes them itself.
    watch->descriptor.release();
  }
  watches_.clear();
  ares_destroy(channel_);
  channel_ = nullptr;
}

void Forwarder::submit(std::unique_ptr<ForwardJob> job) {
  // A handler must be copyable, so the job travels as a shared_ptr.
  asio::post(context_, [this, job = std::shared_ptr<ForwardJob>(std::move(job))] { start(job); });
}

void Forwarder::start(std::shared_ptr<ForwardJob> job) {
  std::array<uint8_t, 512> refusal;
  if (options_.upstreams.empty() || in_flight_ >= options_.max_concurrent) {
    bool over_limit = !options_.upstreams.empty();
    if (over_limit) counters_.refused_over_limit.fetch_add(1, std::memory_order_relaxed);
    if (!job->alias_answer.empty()) return job->reply(job->alias_answer);  // the CNAME alone
    size_t length = writeError(job->query, over_limit ? kRefused : kServFail, true, refusal);
    job->reply(std::span(refusal.data(), length));
    return;
  }
  std::vector<uint8_t> question;
  if (job->alias_target.empty()) {
    question = upstreamQuery(job->query.lowerName(), job->query.qtype, job->query.qclass,
                             job->query.dnssec_ok);
  } else {
    std::string target = nameToWire(job->alias_target);
    question = upstreamQuery(target, job->query.qtype, kClassIn, job->query.dnssec_ok);
  }
  ++in_flight_;
  counters_.forwarded.fetch_add(1, std::memory_order_relaxed);
  auto* in_flight = new InFlight{this, std::move(job), std::chrono::steady_clock::now()};
  ares_send(channel_, question.data(), static_cast<int>(question.size()),
            &Forwarder::answerCallback, in_flight);
  rearmTimer();
}

void Forwarder::answerCallback(void* arg, int status, int, unsigned char* answer, int length) {
  std::unique_ptr<InFlight> in_flight(static_cast<InFlight*>(arg));
  // At ares_destroy the loop is gone: nobody is waiting for a reply any more.
  if (status == ARES_EDESTRUCTION) return;
  std::span<const uint8_t> upstream;
  if (status == ARES_SUCCESS && length > 0) upstream = {answer, static_cast<size_t>(length)};
  Forwarder& self = *in_flight->self;
  if (!upstream.empty() && self.reading_upstream_ >= 0) {
    self.upstream_latency_[static_cast<size_t>(self.reading_upstream_)].observe(
        std::chrono::steady_clock::now() - in_flight->sent);
  }
  self.finish(*in_flight->job, upstream);
}

void Forwarder::finish(ForwardJob& job, std::span<const uint8_t> upstream) {
  --in_flight_;
  std::array<uint8_t, kMaxResponse> out;
  size_t length = 0;
  bool truncated = false;
  if (!upstream.empty() && !job.alias_target.empty()) {
    AliasAnswer combined = combineAliasAnswer(job.alias_answer, upstream, job.size_limit);
    length = writeAliasAnswer(combined, job.query, job.alias_answer, true, out);
    return job.reply(std::span(out.data(), length));
  }
  if (!upstream.empty()) {
    length = cache_.relay(job.query, upstream, out, job.size_limit, &truncated);
  }
  if (length == 0) {
    if (!job.alias_target.empty()) {
      job.reply(job.alias_answer);  // the CNAME alone; the client may chase it
      return;
    }
    counters_.upstream_failures.fetch_add(1, std::memory_order_relaxed);
    length = writeError(job.query, kServFail, true, out);
  }
  job.reply(std::span(out.data(), length));
}

int Forwarder::upstreamOf(ares_socket_t fd) const {
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) return -1;
  auto ip = addressOf(reinterpret_cast<const sockaddr*>(&peer));
  if (!ip) return -1;
  uint16_t port = peer.ss_family == AF_INET
                      ? ntohs(reinterpret_cast<const sockaddr_in*>(&peer)->sin_port)
                      : ntohs(reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_port);
  for (size_t i = 0; i < options_.upstreams.size(); ++i) {
    if (upstream_ips_[i] == *ip && options_.upstreams[i].port == port) return static_cast<int>(i);
  }
  return -1;
}

std::vector<UpstreamMetrics> Forwarder::upstreamMetrics() const {
  std::vector<UpstreamMetrics> metrics(options_.upstreams.size());
  for (size_t i = 0; i < metrics.size(); ++i) {
    metrics[i].to = options_.upstreams[i].toString();
    upstream_latency_[i].addTo(metrics[i].duration);
    metrics[i].requests = metrics[i].duration.count();
  }
  return metrics;
}

void Forwarder::socketStateCallback(void* self, ares_socket_t fd, int readable, int writable) {
  static_cast<Forwarder*>(self)->onSocketState(fd, readable != 0, writable != 0);
}

void Forwarder::onSocketState(ares_socket_t fd, bool readable, bool writable) {
  auto found = watches_.find(fd);
  if (!readable && !writable) {
    if (found == watches_.end()) return;
    found->second->descriptor.release();  // c-ares closes it
    watches_.erase(found);
    return;
  }
  if (found == watches_.end()) {
    found = watches_.emplace(fd, std::make_shared<Watch>(context_, fd)).first;
  }
  auto watch = found->second;
  watch->want_read = readable;
  watch->want_write = writable;
  if (readable && !watch->reading) arm(watch, true);
  if (writable && !watch->writing) arm(watch, false);
}

void Forwarder::arm(const std::shared_ptr<Watch>& watch, bool for_read) {
  (for_read ? watch->reading : watch->writing) = true;
  auto wait =
      for_read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write;
  watch->descriptor.async_wait(wait, [this, watch, for_read](boost::system::error_code error) {
    (for_read ? watch->reading : watch->writing) = false;
    auto current = watches_.find(watch->fd);
    if (error || current == watches_.end() || current->second != watch) return;
    if (for_read) {
      if (watch->upstream == -2) watch->upstream = upstreamOf(watch->fd);
      reading_upstream_ = watch->upstream;
    }
    ares_process_fd(channel_, for_read ? watch->fd : ARES_SOCKET_BAD,
                    for_read ? ARES_SOCKET_BAD : watch->fd);
    reading_upstream_ = -1;
    current = watches_.find(watch->fd);
    if (current != watches_.end() && current->second == watch) {
      bool wanted = for_read ? watch->want_read : watch->want_write;
      bool armed = for_read ? watch->reading : watch->writing;
      if (wanted && !armed) arm(watch, for_read);
    }
    rearmTimer();
  });
}

void Forwarder::rearmTimer() {
  timeval next{};
  if (!ares_timeout(channel_, nullptr, &next)) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::seconds(next.tv_sec) + std::chrono::microseconds(next.tv_usec));
  timer_.async_wait([this](boost::system::error_code error) {
    if (error) return;
    ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    rearmTimer();
  });
}

namespace {

bool isOwn(const Upstream& upstream, const std::vector<OwnListener>& listeners,
           const std::vector<store::IpAddress>& local_addresses) {
  auto ip = *store::IpAddress::parse(upstream.address);
  for (const auto& listener : listeners) {
    if (listener.port != upstream.port) continue;
    if (listener.ip == ip) return true;
    if (listener.ip.isUnspecified() && listener.ip.family == ip.family &&
        (ip.isLoopback() ||
         std::find(local_addresses.begin(), local_addresses.end(), ip) != local_addresses.end())) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<Upstream> upstreamsFromResolvConf(
    const std::string& path, const std::vector<OwnListener>& listeners,
    const std::vector<store::IpAddress>& local_addresses) {
  std::vector<Upstream> upstreams;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream words(line);
    std::string keyword;
    std::string address;
    if (!(words >> keyword >> address) || keyword != "nameserver") continue;
    // A scoped IPv6 address ("fe80::1%eth0") cannot be given to c-ares by number alone.
    if (address.find('%') != std::string::npos) continue;
    auto parsed = parseUpstream(address);
    if (parsed && !isOwn(*parsed, listeners, local_addresses)) upstreams.push_back(*parsed);
  }
  return upstreams;
}

std::vector<store::IpAddress> localAddresses() {
  std::vector<store::IpAddress> addresses;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return addresses;
  for (ifaddrs* item = list; item; item = item->ifa_next) {
    if (!item->ifa_addr) continue;
    if (auto address = addressOf(item->ifa_addr)) addresses.push_back(*address);
  }
  freeifaddrs(list);
  return addresses;
}

store::Result<Upstream> parseUpstream(std::string_view text) {
  auto parsed = parseHostPort(text);
  if (!parsed) return parsed.error();
  if (parsed->port == 0) return store::invalid("", "an upstream's port must be 1-65535");
  return Upstream{parsed->ip.toString(), parsed->port.value_or(53)};
}

}  // namespace svcbox::dns
