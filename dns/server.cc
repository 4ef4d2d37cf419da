#include "dns/server.h"

#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>

#include "dns/address.h"
#include "dns/alias_chase.h"
#include "dns/responder.h"
#include "dns/wire.h"

namespace svcbox::dns {
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBatch = 32;
// A query in one Ethernet frame; anything larger is not a query a resolver sends (and the
// buffers of every batch are resident memory).
constexpr size_t kMaxUdpQuery = 1500;
constexpr size_t kMaxDrainRounds = 16;  // then let the loop run other work
// A publish that encoded more Services than this gives freed pages back to the system.
constexpr size_t kTrimAfterEncoded = 100;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Per-worker counters: written by one thread, read by the metrics reader.
struct Counters {
  std::atomic<uint64_t> udp_queries{0};
  std::atomic<uint64_t> tcp_queries{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> truncated{0};
  std::atomic<uint64_t> nxdomain{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> cache_hits{0};
  std::atomic<uint64_t> cache_misses{0};
  void add(std::atomic<uint64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace

std::string ListenAddress::toString() const {
  return (ip.isV4() ? ip.toString() : "[" + ip.toString() + "]") + ":" + std::to_string(port);
}

store::Result<ListenAddress> parseListenAddress(std::string_view text) {
  auto parsed = parseHostPort(text);
  if (!parsed) return parsed.error();
  if (!parsed->port) return store::invalid("", "expected ADDR:PORT, for example 127.0.0.1:53");
  return ListenAddress{parsed->ip, *parsed->port};
}

std::vector<store::Cidr> defaultRecursionCidrs() {
  std::vector<store::Cidr> cidrs;
  for (const char* text : {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                           "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10"}) {
    cidrs.push_back(*store::Cidr::parse(text));
  }
  return cidrs;
}

class DnsServer::Impl {
 public:
  struct Worker;

  // The table every worker answers from; workers re-read it only when the generation moved.
  struct TableSlot {
    std::mutex mutex;
    AnswerTablePtr table;
    std::atomic<uint64_t> generation{0};
  };

  explicit Impl(const DnsOptions& options)
      : options_(options),
        cache_(options.cache),
        forwarder_(forwarder_context_, options.forwarder, cache_) {
    size_t threads = options.threads ? options.threads : std::thread::hardware_concurrency();
    for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
      workers_.push_back(std::make_unique<Worker>(*this));
    }
    // TCP gets a thread of its own: a thousand busy connections then share one thread among
    // themselves instead of taking turns with the UDP sockets, whose clients never notice them.
    udp_workers_ = workers_.size();
    workers_.push_back(std::make_unique<Worker>(*this));
    table_.table = AnswerTable::awaitingRegistry(options_.zone, options_.service_cidr);
  }

  bool recursionAllowed(const sockaddr_storage& client) const {
    auto address = addressOf(reinterpret_cast<const sockaddr*>(&client));
    return address && recursionAllowed(*address);
  }
  bool recursionAllowed(const store::IpAddress& client) const {
    for (const auto& cidr : options_.allow_recursion) {
      if (cidr.contains(client)) return true;
    }
    return false;
  }

  store::Status bind();
  void start();
  void stop();

  const DnsOptions& options_;
  TableSlot table_;
  AnswerCache cache_;
  asio::io_context forwarder_context_;
  Forwarder forwarder_;
  std::thread forwarder_thread_;
  // Before the workers: TCP sessions left in a worker's loop at stop release themselves here
  // when the loop is destroyed.
  TcpCounters tcp_counters_;
  TcpConnectionTable tcp_table_{options_.tcp, tcp_counters_};
  std::vector<std::unique_ptr<Worker>> workers_;  // the UDP workers, then the TCP one
  size_t udp_workers_ = 0;
  Worker& tcpWorker() { return *workers_.back(); }
  std::vector<std::string> bound_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  // Responses to forwarded queries: written by the forwarder's thread only.
  QueryCounters forwarded_queries_;
  bool started_ = false;
};

struct DnsServer::Impl::Worker {
  explicit Worker(Impl& owner) : server(owner) {}

  const AnswerTable& table() {
    uint64_t generation = server.table_.generation.load(std::memory_order_acquire);
    if (!current || generation != seen_generation) {
      std::lock_guard lock(server.table_.mutex);
      current = server.table_.table;
      seen_generation = generation;
    }
    return *current;
  }

  // Answers `query` from the table or the cache into `out` and returns the length to send; 0
  // with `job` set when the answer needs the network (the transport adds how to reply), 0 alone
  // when nothing is to be said. Shared by UDP and TCP.
  // `started`: when the query arrived, for the duration histogram.
  size_t answer(const AnswerTable& table, std::span<const uint8_t> packet, const Query& query,
                const ClientContext& client, Proto proto, Clock::time_point started,
                std::span<uint8_t> out, std::unique_ptr<ForwardJob>& job);
  void count(const Response& response);

  Impl& server;
  asio::io_context context;
  std::thread thread;
  std::vector<std::unique_ptr<class UdpListener>> listeners;
  AnswerTablePtr current;
  uint64_t seen_generation = 0;
  // The TCP worker's answer buffer, reused by every query (all run on its thread): a 64 KiB
  // buffer made per query would cost more than the answer.
  std::vector<uint8_t> tcp_out;
  // The TCP worker's low-priority turns: connections whose client leaves answers unread, each
  // answered one query per turn only after every ready event (a reading client's query among
  // them) has been handled. See runTcp().
  std::deque<std::function<void()>> background;
  Counters counters;
  QueryCounters queries;
};

namespace {

std::unique_ptr<ForwardJob> forwardJob(std::span<const uint8_t> packet, size_t size_limit,
                                       std::span<const uint8_t> alias_answer,
                                       std::string_view alias_target) {
  auto job = std::make_unique<ForwardJob>();
  job->packet.assign(packet.begin(), packet.end());
  job->query = parseQuery(job->packet);
  job->size_limit = size_limit;
  job->alias_answer.assign(alias_answer.begin(), alias_answer.end());
  job->alias_target = alias_target;
  return job;
}

}  // namespace

size_t DnsServer::Impl::Worker::answer(const AnswerTable& table, std::span<const uint8_t> packet,
                                       const Query& query, const ClientContext& client, Proto proto,
                                       Clock::time_point started, std::span<uint8_t> out,
                                       std::unique_ptr<ForwardJob>& job) {
  Response response = respond(query, table, client, out);
  if (response.disposition != Disposition::kDrop) queries.request(proto, query.qtype);
  switch (response.disposition) {
    case Disposition::kDrop:
      counters.add(counters.dropped);
      return 0;
    case Disposition::kSend:
      count(response);
      queries.response(response.rcode, Clock::now() - started);
      return response.length;
    case Disposition::kForward: {
      bool truncated = false;
      size_t length = server.cache_.lookup(query, out, client.size_limit, &truncated);
      if (length) {
        counters.add(counters.cache_hits);
        if (truncated) counters.add(counters.truncated);
        queries.response(out.data(), length, Clock::now() - started);
        return length;
      }
      counters.add(counters.cache_misses);
      job = forwardJob(packet, client.size_limit, {}, {});
      return 0;
    }
    case Disposition::kChaseAlias: {
      AliasAnswer chased = chaseInOwnZones(table, query, out.first(response.length),
                                           table.aliasTarget(*response.alias), client.size_limit);
      // Where the chain leaves the zones, a client that may recurse gets the rest from upstream;
      // another gets the chain so far and resolves its end itself.
      if (chased.outcome == AliasAnswer::Outcome::kCombined && !chased.outside_target.empty() &&
          client.recursion_allowed) {
        job = forwardJob(packet, client.size_limit, chased.bytes, chased.outside_target);
        return 0;
      }
      // The chase always returns a chain (the CNAME at least), so it stands in for the CNAME.
      size_t length = writeAliasAnswer(chased, query, chased.bytes, client.recursion_allowed, out);
      if (readU16(out.data() + 2) & kFlagTc) counters.add(counters.truncated);
      queries.response(out.data(), length, Clock::now() - started);
      return length;
    }
  }
  return 0;
}

void DnsServer::Impl::Worker::count(const Response& response) {
  if (response.truncated) counters.add(counters.truncated);
  if (response.rcode == kNxDomain) counters.add(counters.nxdomain);
  if (response.rcode == kRefused) counters.add(counters.refused);
  if (response.rcode == kFormErr) counters.add(counters.malformed);
}

// One UDP socket of one worker: drains the queue with recvmmsg and answers with sendmmsg.
class UdpListener {
 public:
  UdpListener(DnsServer::Impl::Worker& worker, udp::socket socket)
      : worker_(worker), socket_(std::move(socket)) {
    for (size_t i = 0; i < kBatch; ++i) {
      in_iov_[i] = {in_[i].data(), in_[i].size()};
      in_headers_[i].msg_hdr = {};
      in_headers_[i].msg_hdr.msg_name = &peers_[i];
      in_headers_[i].msg_hdr.msg_iov = &in_iov_[i];
      in_headers_[i].msg_hdr.msg_iovlen = 1;
    }
  }

  void wait() {
    socket_.async_wait(udp::socket::wait_read, [this](boost::system::error_code error) {
      if (!error) serve();
    });
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  // The socket is edge-triggered: datagrams left in it raise no new event, so when a drain stops
  // at its round limit the rest is drained after other work had its turn, not left waiting.
  void serve() {
    if (drain()) {
      asio::post(socket_.get_executor(), [this] {
        if (socket_.is_open()) serve();
      });
    } else {
      wait();
    }
  }

  // Answers what is queued; true when it stopped at the round limit with more perhaps waiting.
  bool drain() {
    int fd = socket_.native_handle();
    for (size_t round = 0; round < kMaxDrainRounds; ++round) {
      for (size_t i = 0; i < kBatch; ++i) {
        in_headers_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        in_headers_[i].msg_hdr.msg_flags = 0;
      }
      int received = recvmmsg(fd, in_headers_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (received <= 0) return false;
      const AnswerTable& table = worker_.table();
      size_t replies = 0;
      for (size_t i = 0; i < static_cast<size_t>(received); ++i) {
        size_t length = answer(i, table);
        if (length == 0) continue;
        out_iov_[replies] = {out_[i].data(), length};
        out_headers_[replies].msg_hdr = {};
        out_headers_[replies].msg_hdr.msg_name = &peers_[i];
        out_headers_[replies].msg_hdr.msg_namelen = in_headers_[i].msg_hdr.msg_namelen;
        out_headers_[replies].msg_hdr.msg_iov = &out_iov_[replies];
        out_headers_[replies].msg_hdr.msg_iovlen = 1;
        ++replies;
      }
      size_t sent = 0;
      while (sent < replies) {
        int count = sendmmsg(fd, out_headers_.data() + sent, static_cast<unsigned>(replies - sent),
                             MSG_DONTWAIT);
        if (count <= 0) break;  // a full send buffer drops answers, as a busy UDP server must
        sent += static_cast<size_t>(count);
      }
      if (static_cast<size_t>(received) < kBatch) return false;
    }
    return true;
  }

  // Answers datagram i into out_[i]; 0 when nothing is to be sent now.
  size_t answer(size_t i, const AnswerTable& table) {
    auto started = Clock::now();
    Counters& counters = worker_.counters;
    counters.add(counters.udp_queries);
    if (in_headers_[i].msg_hdr.msg_flags & MSG_TRUNC) {
      counters.add(counters.dropped);
      return 0;
    }
    std::span<const uint8_t> packet(in_[i].data(), in_headers_[i].msg_len);
    Query query = parseQuery(packet);
    ClientContext client{worker_.server.recursionAllowed(peers_[i]), query.udpLimit()};
    std::unique_ptr<ForwardJob> job;
    size_t length = worker_.answer(table, packet, query, client, kProtoUdp, started, out_[i], job);
    if (job) forward(i, std::move(job), started);
    return length;
  }

  void forward(size_t i, std::unique_ptr<ForwardJob> job, Clock::time_point started) {
    int fd = socket_.native_handle();
    sockaddr_storage peer = peers_[i];
    socklen_t peer_length = in_headers_[i].msg_hdr.msg_namelen;
    QueryCounters* queries = &worker_.server.forwarded_queries_;
    // Sent from the forwarder's thread: a datagram socket takes sendto from any thread.
    job->reply = [fd, peer, peer_length, queries, started](std::span<const uint8_t> bytes) {
      (void)!::sendto(fd, bytes.data(), bytes.size(), MSG_DONTWAIT,
                      reinterpret_cast<const sockaddr*>(&peer), peer_length);
      queries->response(bytes.data(), bytes.size(), Clock::now() - started);
    };
    worker_.server.forwarder_.submit(std::move(job));
  }

  DnsServer::Impl::Worker& worker_;
  udp::socket socket_;
  std::array<std::array<uint8_t, kMaxUdpQuery>, kBatch> in_;
  std::array<std::array<uint8_t, kServerUdpSize>, kBatch> out_;
  std::array<sockaddr_storage, kBatch> peers_;
  std::array<iovec, kBatch> in_iov_;
  std::array<iovec, kBatch> out_iov_;
  std::array<mmsghdr, kBatch> in_headers_;
  std::array<mmsghdr, kBatch> out_headers_;
};

// One TCP connection (RFC 7766): length-prefixed queries, answered in any order, until the
// client closes or one of the TcpLimits ends it. Thread contract: everything runs on the TCP
// worker's thread, except the reply of a forwarded query, which posts itself there.
class TcpSession : public std::enable_shared_from_this<TcpSession> {
 public:
  TcpSession(DnsServer::Impl::Worker& worker, tcp::socket socket, store::IpAddress client)
      : worker_(worker),
        limits_(worker.server.options_.tcp),
        socket_(std::move(socket)),
        client_(client),
        idle_(socket_.get_executor()),
        age_(socket_.get_executor()) {}
  ~TcpSession() {
    if (!id_) return;
    auto& table = worker_.server.tcp_table_;
    table.release(*id_);
    // A surge of connections (an attack, say) leaves their buffers in malloc's free lists; give
    // the pages back once it is over, so that serve's memory returns to what it was.
    if (table.surgeEnded()) malloc_trim(0);
  }

  void start(TcpConnectionTable::Id id) {
    id_ = id;
    recursion_allowed_ = worker_.server.recursionAllowed(client_);
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::send_buffer_size(static_cast<int>(kSendBuffer)), ignored);
    // Each answer goes out as it is written: Nagle would hold a small answer back until the
    // client's delayed ACK of the previous one (40 ms and more).
    socket_.set_option(tcp::no_delay(true), ignored);
    if (limits_.max_connection_age.count() > 0) {
      age_.expires_after(limits_.max_connection_age);
      age_.async_wait([self = shared_from_this()](boost::system::error_code error) {
        if (!error) self->close(TcpClose::kAge);
      });
    }
    armIdle();
    readMore();
  }

  // Closes the connection at once (the table evicts it, or a limit ends it).
  void close(std::optional<TcpClose> why = std::nullopt) {
    if (closed_) return;
    closed_ = true;
    if (why) worker_.server.tcp_counters_.close(*why);
    boost::system::error_code ignored;
    socket_.close(ignored);
    idle_.cancel();
    age_.cancel();
  }

  // Answers wait in one contiguous buffer, not one allocation each: a connection holds what
  // it has not sent, byte for byte, and answers queued meanwhile go out in one write.
  void deliver(std::span<const uint8_t> bytes) {
    if (closed_) return;
    size_t at = outbox_.size();
    outbox_.resize(at + 2 + bytes.size());
    writeU16(outbox_.data() + at, static_cast<uint16_t>(bytes.size()));
    std::memcpy(outbox_.data() + at + 2, bytes.data(), bytes.size());
    unsent_ += 2 + bytes.size();
    if (!writing_) writeNext();
  }

 private:
  // What the kernel holds for a client beyond --dns-tcp-max-unsent: small, because a client
  // that reads nothing makes serve answer whatever fits there before it stalls. (Linux doubles
  // the value; answers larger than it are written in pieces as the client reads.)
  static constexpr size_t kSendBuffer = 4096;
  // What one read takes (a query longer than this grows the inbox to hold it), and the queries
  // a reading client has answered per turn.
  static constexpr size_t kInboxSize = 4096;
  static constexpr size_t kReaderBudget = 16;
  static constexpr size_t kKeptOutbox = 4096;

  // Re-armed only when the client takes bytes (a write completes), never by its queries.
  void armIdle() {
    idle_.expires_after(limits_.idle_timeout);
    idle_.async_wait([self = shared_from_this()](boost::system::error_code error) {
      if (!error) self->close(TcpClose::kIdle);
    });
  }

  // Answers the next queries unless the client must first read its answers or has asked its
  // last: those already read first, then a read for more.
  void readNextIfAllowed() {
    if (closed_ || busy_) return;
    if (queries_ >= limits_.max_queries_per_connection && limits_.max_queries_per_connection) {
      if (unsent_ == 0 && outstanding_ == 0) close(TcpClose::kQueries);
      return;
    }
    bool stalled = unsent_ > limits_.max_unsent_bytes;
    if (stalled != stalled_) {
      stalled_ = stalled;
      worker_.server.tcp_table_.setStalled(*id_, stalled);
    }
    if (stalled) return;
    if (completeFrame()) {
      // Back of the queue: every other connection gets its turn before this one's next batch,
      // and one that leaves answers unread waits until nothing else is ready.
      busy_ = true;
      auto turn = [self = shared_from_this()] {
        self->busy_ = false;
        self->answerBatch();
      };
      if (unsent_ == 0) {
        asio::post(socket_.get_executor(), std::move(turn));
      } else {
        worker_.background.push_back(std::move(turn));
      }
      return;
    }
    if (client_done_) {  // it may still read what it asked for (RFC 7766 §6.2.4)
      if (unsent_ == 0 && outstanding_ == 0) close();
      return;
    }
    readMore();
  }

  // The length of the first whole query in the inbox, or 0 while it is still arriving.
  size_t completeFrame() const {
    size_t held = inbox_end_ - inbox_start_;
    if (held < 2) return 0;
    size_t size = readU16(inbox_.data() + inbox_start_);
    return held >= 2 + size ? size : 0;
  }

  // One read takes whatever the client sent, up to the inbox's room: a client that pipelines
  // costs one system call per batch of queries, not two per query.
  void readMore() {
    if (inbox_start_ > 0) {
      std::memmove(inbox_.data(), inbox_.data() + inbox_start_, inbox_end_ - inbox_start_);
      inbox_end_ -= inbox_start_;
      inbox_start_ = 0;
    }
    size_t needed = inbox_end_ >= 2 ? 2 + size_t{readU16(inbox_.data())} : 2;
    if (inbox_.size() < std::max(needed, kInboxSize)) inbox_.resize(std::max(needed, kInboxSize));
    busy_ = true;
    socket_.async_read_some(
        asio::buffer(inbox_.data() + inbox_end_, inbox_.size() - inbox_end_),
        [self = shared_from_this()](boost::system::error_code error, size_t read) {
          self->busy_ = false;
          if (error == asio::error::eof) {
            self->client_done_ = true;
            return self->readNextIfAllowed();
          }
          if (error) return self->close();
          self->inbox_end_ += read;
          if (self->inbox_end_ >= 2 && readU16(self->inbox_.data()) < kHeaderSize) {
            return self->close();  // nothing to answer
          }
          self->answerBatch();
        });
  }

  // At most a turn's worth of the queries read: a client that reads its answers as they come
  // gets a batch (what it pipelined while it waited for its turn), one that leaves answers
  // unread one query per turn. With a thousand connections pipelining at once, a client asking
  // at a steady rate then waits one round of turns, not one round per query it queued.
  void answerBatch() {
    size_t budget = unsent_ == 0 ? kReaderBudget : 1;
    while (budget-- > 0 && !closed_) {
      size_t size = completeFrame();
      if (size == 0) break;
      if (size < kHeaderSize) return close();  // nothing to answer
      if (limits_.max_queries_per_connection && queries_ >= limits_.max_queries_per_connection) {
        break;
      }
      if (unsent_ > limits_.max_unsent_bytes) break;
      query_.assign(inbox_.begin() + static_cast<std::ptrdiff_t>(inbox_start_ + 2),
                    inbox_.begin() + static_cast<std::ptrdiff_t>(inbox_start_ + 2 + size));
      inbox_start_ += 2 + size;
      ++queries_;
      answer();
    }
    readNextIfAllowed();
  }

  void answer() {
    auto started = Clock::now();
    worker_.counters.add(worker_.counters.tcp_queries);
    Query query = parseQuery(query_);
    ClientContext client{recursion_allowed_, kMaxResponse};
    std::vector<uint8_t>& out = worker_.tcp_out;
    out.resize(kMaxResponse);
    std::unique_ptr<ForwardJob> job;
    // The table is fetched once: a second call may swap it.
    size_t length =
        worker_.answer(worker_.table(), query_, query, client, kProtoTcp, started, out, job);
    if (job) return forward(std::move(job), started);
    if (length) deliver(std::span(out.data(), length));
  }

  void forward(std::unique_ptr<ForwardJob> job, Clock::time_point started) {
    std::weak_ptr<TcpSession> weak = shared_from_this();
    auto executor = socket_.get_executor();
    QueryCounters* queries = &worker_.server.forwarded_queries_;
    ++outstanding_;
    job->reply = [weak, executor, queries, started](std::span<const uint8_t> bytes) {
      // Counted on the forwarder's thread (the counters' one writer), as the answer is handed
      // to the connection.
      queries->response(bytes.data(), bytes.size(), Clock::now() - started);
      asio::post(executor, [weak, copy = std::vector<uint8_t>(bytes.begin(), bytes.end())] {
        if (auto self = weak.lock()) {
          --self->outstanding_;
          self->deliver(copy);
          self->readNextIfAllowed();
        }
      });
    };
    worker_.server.forwarder_.submit(std::move(job));
  }

  void writeNext() {
    in_write_.swap(outbox_);
    writing_ = true;
    asio::async_write(socket_, asio::buffer(in_write_),
                      [self = shared_from_this()](boost::system::error_code error, size_t) {
                        self->writing_ = false;
                        if (error) return self->close();
                        self->unsent_ -= self->in_write_.size();
                        self->in_write_.clear();
                        // A stalled client's buffer grew to --dns-tcp-max-unsent: not kept.
                        if (self->in_write_.capacity() > kKeptOutbox) {
                          std::vector<uint8_t>().swap(self->in_write_);
                        }
                        self->armIdle();
                        self->worker_.server.tcp_table_.clientRead(*self->id_, Clock::now());
                        if (!self->outbox_.empty()) self->writeNext();
                        self->readNextIfAllowed();
                      });
  }

  DnsServer::Impl::Worker& worker_;
  const TcpLimits& limits_;
  tcp::socket socket_;
  store::IpAddress client_;
  asio::steady_timer idle_;
  asio::steady_timer age_;
  std::optional<TcpConnectionTable::Id> id_;
  std::vector<uint8_t> inbox_;  // queries read, not yet answered: [inbox_start_, inbox_end_)
  size_t inbox_start_ = 0;
  size_t inbox_end_ = 0;
  std::vector<uint8_t> query_;
  std::vector<uint8_t> outbox_;    // answers not yet handed to a write
  std::vector<uint8_t> in_write_;  // answers the write under way sends
  bool writing_ = false;
  size_t unsent_ = 0;         // bytes in outbox_ and in_write_
  size_t queries_ = 0;        // read so far
  size_t outstanding_ = 0;    // forwarded, not yet answered
  bool busy_ = false;         // a read, or a turn to answer, is under way
  bool client_done_ = false;  // it sent its last query (and shut its side)
  bool stalled_ = false;
  bool closed_ = false;
  bool recursion_allowed_ = false;
};

namespace {

constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr auto kFullTablePause = std::chrono::milliseconds(10);

// Returns false when the table is full (the caller then pauses accepting).
bool admit(DnsServer::Impl::Worker& worker, tcp::socket socket) {
  auto& server = worker.server;
  boost::system::error_code error;
  auto peer = socket.remote_endpoint(error);
  if (error) return true;  // gone already
  auto client = addressOf(reinterpret_cast<const sockaddr*>(peer.data()));
  if (!client) return true;
  auto session = std::make_shared<TcpSession>(worker, std::move(socket), *client);
  std::weak_ptr<TcpSession> weak = session;
  auto admission = server.tcp_table_.admit(*client, Clock::now(), [weak] {
    if (auto evicted = weak.lock()) evicted->close();
  });
  if (!admission.id) {
    server.tcp_counters_.refuse(admission.refusal);
    return admission.refusal != TcpRefusal::kTableFull;  // the session closes its socket
  }
  session->start(*admission.id);
  return true;
}

void pauseAccepting(DnsServer::Impl::Worker& worker, tcp::acceptor& acceptor,
                    std::chrono::milliseconds pause);

// Accepts until the acceptor closes. Running out of file descriptors pauses accepting for a
// moment (the connection waits in the backlog) rather than spinning on the error.
void acceptLoop(DnsServer::Impl::Worker& worker, tcp::acceptor& acceptor) {
  acceptor.async_accept([&worker, &acceptor](boost::system::error_code error, tcp::socket socket) {
    if (error == asio::error::operation_aborted) return;
    auto& server = worker.server;
    if (error == asio::error::no_descriptors || error.value() == ENFILE ||
        error == asio::error::no_buffer_space || error == asio::error::no_memory) {
      server.tcp_counters_.refuse(TcpRefusal::kFileLimit);
      return pauseAccepting(worker, acceptor, kAcceptPause);
    }
    // A full table: the next connections wait in the listen backlog for a moment instead of
    // being accepted and closed one by one, which an attacker that reconnects at once would
    // turn into a loop as fast as the TCP thread can go.
    if (!error && !admit(worker, std::move(socket))) {
      return pauseAccepting(worker, acceptor, kFullTablePause);
    }
    acceptLoop(worker, acceptor);
  });
}

void pauseAccepting(DnsServer::Impl::Worker& worker, tcp::acceptor& acceptor,
                    std::chrono::milliseconds pause) {
  auto timer = std::make_shared<asio::steady_timer>(worker.context, pause);
  timer->async_wait([&worker, &acceptor, timer](boost::system::error_code waited) {
    if (!waited) acceptLoop(worker, acceptor);
  });
}

std::string bindError(const ListenAddress& address, const char* what,
                      const boost::system::error_code& error) {
  std::string message =
      "--dns-listen " + address.toString() + ": cannot bind " + what + ": " + error.message();
  if (error == asio::error::access_denied && address.port < 1024) {
    message += " (ports below 1024 need root or CAP_NET_BIND_SERVICE; or pick a port >= 1024)";
  }
  if (error == asio::error::address_in_use) message += " (another DNS server runs there?)";
  return message;
}

}  // namespace

store::Status DnsServer::Impl::bind() {
  // Port 0 lets the kernel pick a free UDP port; the same number may be taken for TCP, so a
  // picked port that TCP cannot have is given back and another one picked.
  constexpr int kPickAttempts = 16;
  for (const auto& requested : options_.listen) {
    asio::ip::address ip =
        requested.ip.isV4() ? asio::ip::address(asio::ip::make_address_v4(requested.ip.toString()))
                            : asio::ip::address(asio::ip::make_address_v6(requested.ip.toString()));
    for (int attempt = 1;; ++attempt) {
      ListenAddress address = requested;
      std::vector<std::unique_ptr<UdpListener>> listeners;
      for (size_t w = 0; w < udp_workers_; ++w) {
        auto& worker = workers_[w];
        udp::socket socket(worker->context);
        boost::system::error_code error;
        socket.open(ip.is_v4() ? udp::v4() : udp::v6(), error);
        if (!error && ip.is_v6()) socket.set_option(asio::ip::v6_only(true), error);
        if (!error) socket.set_option(ReusePort(true), error);
        if (!error) socket.non_blocking(true, error);
        if (!error) socket.bind(udp::endpoint(ip, address.port), error);
        if (error) return store::invalid("dns-listen", bindError(address, "UDP", error));
        // Every other worker's socket joins the port the first one got.
        address.port = socket.local_endpoint().port();
        listeners.push_back(std::make_unique<UdpListener>(*worker, std::move(socket)));
      }
      auto acceptor = std::make_unique<tcp::acceptor>(tcpWorker().context);
      boost::system::error_code error;
      acceptor->open(ip.is_v4() ? tcp::v4() : tcp::v6(), error);
      if (!error && ip.is_v6()) acceptor->set_option(asio::ip::v6_only(true), error);
      if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
      if (!error) acceptor->bind(tcp::endpoint(ip, address.port), error);
      if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
      if (error == asio::error::address_in_use && requested.port == 0 && attempt < kPickAttempts) {
        continue;  // the UDP sockets close with `listeners`
      }
      if (error) return store::invalid("dns-listen", bindError(address, "TCP", error));
      for (size_t i = 0; i < udp_workers_; ++i) {
        workers_[i]->listeners.push_back(std::move(listeners[i]));
      }
      acceptors_.push_back(std::move(acceptor));
      bound_.push_back(address.toString());
      break;
    }
  }
  return store::Ok{};
}

// The TCP worker's loop: every ready event first (accepts, reads, writes, timers, the turns of
// clients that read their answers), then a few turns of clients that do not. A thousand
// connections pipelining without reading then cannot queue ahead of a client that asks at a
// steady rate and reads: its query waits for one pass, not for a turn of every attacker.
void runTcp(DnsServer::Impl::Worker& worker) {
  constexpr size_t kBackgroundTurnsPerPass = 8;
  auto guard = asio::make_work_guard(worker.context);
  while (!worker.context.stopped()) {
    worker.context.poll();
    if (worker.background.empty()) {
      worker.context.run_one();  // sleeps until something happens
      continue;
    }
    for (size_t i = 0; i < kBackgroundTurnsPerPass && !worker.background.empty(); ++i) {
      auto turn = std::move(worker.background.front());
      worker.background.pop_front();
      turn();
    }
  }
  worker.background.clear();  // the sessions they hold go with the context's handlers
}

void DnsServer::Impl::start() {
  for (auto& acceptor : acceptors_) acceptLoop(tcpWorker(), *acceptor);
  for (auto& worker : workers_) {
    for (auto& listener : worker->listeners) listener->wait();
    if (worker.get() == &tcpWorker()) {
      worker->thread = std::thread([&worker = *worker] { runTcp(worker); });
      continue;
    }
    worker->thread = std::thread([&context = worker->context] {
      auto guard = asio::make_work_guard(context);
      context.run();
    });
  }
  forwarder_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(forwarder_context_);
    forwarder_context_.run();
  });
  started_ = true;
}

void DnsServer::Impl::stop() {
  if (!started_) return;
  started_ = false;
  forwarder_context_.stop();
  forwarder_thread_.join();
  for (auto& worker : workers_) {
    worker->context.stop();
    worker->thread.join();
  }
  forwarder_.shutdown();
  for (auto& worker : workers_) {
    for (auto& listener : worker->listeners) listener->close();
  }
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
}

DnsServer::DnsServer(DnsOptions options)
    : options_(std::move(options)),
      impl_(std::make_unique<Impl>(options_)),
      compiler_(options_.zone) {}

DnsServer::~DnsServer() { stop(); }

store::Status DnsServer::bind() { return impl_->bind(); }
void DnsServer::start() { impl_->start(); }
void DnsServer::stop() { impl_->stop(); }

DnsServer::Published DnsServer::publish(const store::SnapshotPtr& snapshot,
                                        const ProxiedServices* proxied) {
  auto started = std::chrono::steady_clock::now();
  auto compiled = compiler_.compile(snapshot, proxied);
  if (!compiled.table) return Published{.unchanged = true};
  Published published{false, compiled.table->nodeCount(), compiled.table->memoryUsage(),
                      compiled.encoded,
                      std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::steady_clock::now() - started)};
  {
    std::lock_guard lock(impl_->table_.mutex);
    impl_->table_.table = std::move(compiled.table);
    impl_->table_.generation.fetch_add(1, std::memory_order_release);
  }
  // Compiling many Services churns through short-lived drafts; hand their pages back to the
  // system. A compile that reused nearly everything has little to give back.
  if (compiled.whole || compiled.rebuilt || compiled.encoded > kTrimAfterEncoded) malloc_trim(0);
  return published;
}

std::vector<std::string> DnsServer::boundAddresses() const { return impl_->bound_; }

DnsCounters DnsServer::counters() const {
  DnsCounters total;
  auto read = [](const std::atomic<uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  };
  for (const auto& worker : impl_->workers_) {
    const Counters& c = worker->counters;
    total.udp_queries += read(c.udp_queries);
    total.tcp_queries += read(c.tcp_queries);
    total.dropped += read(c.dropped);
    total.malformed += read(c.malformed);
    total.truncated += read(c.truncated);
    total.nxdomain += read(c.nxdomain);
    total.refused += read(c.refused);
    total.cache_hits += read(c.cache_hits);
    total.cache_misses += read(c.cache_misses);
  }
  const auto& forwarder = impl_->forwarder_.counters();
  total.forwarded = read(forwarder.forwarded);
  total.upstream_failures = read(forwarder.upstream_failures);
  total.refused_over_limit = read(forwarder.refused_over_limit);
  return total;
}

}  // namespace svcbox::dns

namespace svcbox::dns {

DnsMetrics DnsServer::metrics() const {
  DnsMetrics total;
  auto read = [](const std::atomic<uint64_t>& counter) {
    return counter.load(std::memory_order_relaxed);
  };
  auto addQueries = [&](const QueryCounters& queries) {
    for (size_t proto = 0; proto < kProtoSlots; ++proto) {
      for (size_t slot = 0; slot < kQtypeSlots; ++slot) {
        total.requests[proto][slot] += read(queries.requests[proto][slot]);
      }
    }
    for (size_t slot = 0; slot < kRcodeSlots; ++slot) {
      total.responses[slot] += read(queries.responses[slot]);
    }
    queries.duration.addTo(total.request_duration);
  };
  for (const auto& worker : impl_->workers_) addQueries(worker->queries);
  addQueries(impl_->forwarded_queries_);
  DnsCounters sums = counters();
  total.cache_hits = sums.cache_hits;
  total.cache_misses = sums.cache_misses;
  total.forwarded = sums.forwarded;
  total.upstream_failures = sums.upstream_failures;
  total.refused_over_limit = sums.refused_over_limit;
  total.dropped = sums.dropped;
  total.malformed = sums.malformed;
  total.truncated = sums.truncated;
  total.upstreams = impl_->forwarder_.upstreamMetrics();
  const TcpCounters& tcp = impl_->tcp_counters_;
  total.tcp_connections = read(tcp.open);
  total.tcp_stalled = read(tcp.stalled);
  for (size_t i = 0; i < total.tcp_refused.size(); ++i) total.tcp_refused[i] = read(tcp.refused[i]);
  for (size_t i = 0; i < total.tcp_closed.size(); ++i) total.tcp_closed[i] = read(tcp.closed[i]);
  return total;
}

}  // namespace svcbox::dns
