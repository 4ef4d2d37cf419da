#include "app/admin_server.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "dns/address.h"
#include "store/ip_asio.h"

namespace svcbox::app {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {

constexpr size_t kMaxBody = 1 << 20;
constexpr uint32_t kMaxHeader = 16 * 1024;
constexpr auto kTimeout = std::chrono::seconds(10);  // for a request to arrive, be read, be sent
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string endpointText(const tcp::endpoint& endpoint) {
  auto address = endpoint.address();
  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

http::response<http::string_body> toHttp(const ApiResponse& api, unsigned version, bool keep_alive,
                                         bool head) {
  http::response<http::string_body> response{static_cast<http::status>(api.status), version};
  response.set(http::field::server, "svcbox");
  response.set(http::field::content_type, api.content_type);
  if (!api.allow.empty()) response.set(http::field::allow, api.allow);
  response.body() = api.body;
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (head) response.body().clear();  // Content-Length stays that of the GET
  return response;
}

// A handler that throws (a bug) answers 500 and the server goes on.
ApiResponse handleCaught(const AdminApi& api, const ApiRequest& request) {
  try {
    return api.handle(request);
  } catch (const std::exception& error) {
    return statusResponse(500, "InternalError", error.what());
  }
}

}  // namespace

// Registry writes handed to the writer's worker. stop() closes the gate and waits for the one
// that runs, so a job never outlives the server it answers for; queued jobs then do nothing.
struct WriteGate {
  std::mutex mutex;
  std::condition_variable idle;
  size_t running = 0;
  bool closed = false;
};

class AdminServer::Impl {
 public:
  Impl(AdminOptions options, AdminHooks hooks)
      : options_(std::move(options)),
        writer_(hooks.writer),
        api_(std::move(hooks), options_.access) {}

  store::Status bind();
  void start();
  void stop();

  // One connection's place in the table, in accept order: its class and whether it idles.
  struct Connection {
    tcp::socket* socket = nullptr;
    std::optional<RequestClass> request_class;  // of its last request; none before the first
    bool idle = true;                           // waiting for the first byte of a request
    bool evicted = false;
    std::chrono::steady_clock::time_point idle_since;
  };
  using ConnectionList = std::list<Connection>;

  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(tcp::socket socket);
  bool makeRoom();
  std::optional<ApiResponse> claimSlot(Connection& connection, RequestClass request_class);
  asio::awaitable<ApiResponse> writeOnWorker(ApiRequest request);

  AdminOptions options_;
  RegistryWriter* writer_;
  AdminApi api_;
  std::shared_ptr<WriteGate> gate_ = std::make_shared<WriteGate>();
  ConnectionList connections_;   // touched on the server's thread only
  size_t live_connections_ = 0;  // connections_ less the evicted ones on their way out
  std::string bound_;
  std::thread thread_;
  // Last: destroying it destroys suspended sessions, which still erase themselves from
  // connections_.
  asio::io_context context_;
  std::optional<tcp::acceptor> acceptor_;
};

store::Status checkAdminOptions(const AdminOptions& options) {
  if (options.listen == kAdminDisabled) return store::Ok{};
  auto fail = [&](const std::string& why) {
    return store::invalid("admin-listen", "--admin-listen " + options.listen + ": " + why);
  };
  auto parsed = dns::parseHostPort(options.listen);
  if (!parsed) return fail(parsed.error().message);
  if (!parsed->port) return fail("expected ADDR:PORT, for example 127.0.0.1:9153");
  if (!parsed->ip.isLoopback() && !options.access.token) {
    return fail(
        "the admin API can change the registry, so an address that is not loopback needs a "
        "token: give --admin-token-file FILE (clients send \"Authorization: Bearer <token>\"), "
        "or listen on 127.0.0.1");
  }
  return store::Ok{};
}

store::Status AdminServer::Impl::bind() {
  if (auto usable = checkAdminOptions(options_); !usable) return usable;
  auto parsed = dns::parseHostPort(options_.listen);
  boost::system::error_code error;
  auto ip = store::toAsioAddress(parsed->ip);
  tcp::endpoint endpoint(ip, *parsed->port);
  acceptor_.emplace(context_);
  acceptor_->open(endpoint.protocol(), error);
  if (!error && ip.is_v6()) acceptor_->set_option(asio::ip::v6_only(true), error);
  if (!error) acceptor_->set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor_->bind(endpoint, error);
  if (!error) acceptor_->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    std::string why = "cannot bind: " + error.message();
    if (error == asio::error::address_in_use) why += " (another svcbox serve runs there?)";
    acceptor_.reset();
    return store::invalid("admin-listen", "--admin-listen " + options_.listen + ": " + why);
  }
  bound_ = endpointText(acceptor_->local_endpoint());
  return store::Ok{};
}

void AdminServer::Impl::start() {
  if (!acceptor_ || thread_.joinable()) return;
  asio::co_spawn(context_, acceptLoop(), asio::detached);
  thread_ = std::thread([this] { context_.run(); });
}

void AdminServer::Impl::stop() {
  {
    std::unique_lock lock(gate_->mutex);
    gate_->closed = true;
    gate_->idle.wait(lock, [this] { return gate_->running == 0; });
  }
  if (!thread_.joinable()) return;
  context_.stop();
  thread_.join();
}

// Every slot taken: the connection idle longest (any class) makes room for the newcomer, which
// may be the health check. Only when every connection is inside a request (each bounded by
// kTimeout) is the newcomer refused.
bool AdminServer::Impl::makeRoom() {
  if (live_connections_ < options_.max_api_connections + options_.max_health_connections) {
    return true;
  }
  Connection* oldest = nullptr;
  for (auto& connection : connections_) {
    if (connection.evicted || !connection.idle) continue;
    if (!oldest || connection.idle_since < oldest->idle_since) oldest = &connection;
  }
  if (!oldest) return false;
  oldest->evicted = true;
  --live_connections_;
  boost::system::error_code ignored;
  oldest->socket->close(ignored);
  return true;
}

// A request of a class whose slots are all taken by other connections is answered 503 and its
// connection closed; the client may retry.
std::optional<ApiResponse> AdminServer::Impl::claimSlot(Connection& connection,
                                                        RequestClass request_class) {
  if (connection.request_class == request_class) return std::nullopt;
  size_t taken = 0;
  for (const auto& other : connections_) {
    if (&other != &connection && !other.evicted && other.request_class == request_class) ++taken;
  }
  bool api = request_class == RequestClass::kApi;
  size_t limit = api ? options_.max_api_connections : options_.max_health_connections;
  if (taken >= limit) {
    return statusResponse(
        503, "ServiceUnavailable",
        std::string("every ") + (api ? "API" : "health and metrics") +
            " connection slot is taken (" +
            (api ? "--admin-max-api-connections " : "--admin-max-health-connections ") +
            std::to_string(limit) + "); retry, or close idle connections");
  }
  connection.request_class = request_class;
  return std::nullopt;
}

asio::awaitable<ApiResponse> AdminServer::Impl::writeOnWorker(ApiRequest request) {
  auto answer = std::make_shared<ApiResponse>();
  asio::steady_timer done(context_, asio::steady_timer::time_point::max());
  // `done` lives in this suspended frame until the job wakes it: the frame is destroyed only
  // with context_, and then the posted wake-up never runs.
  writer_->post([this, gate = gate_, answer, &done, request = std::move(request)] {
    {
      std::lock_guard lock(gate->mutex);
      if (gate->closed) return;
      ++gate->running;
    }
    *answer = handleCaught(api_, request);
    asio::post(context_, [&done] { done.cancel(); });
    std::lock_guard lock(gate->mutex);
    --gate->running;
    gate->idle.notify_all();
  });
  co_await done.async_wait(kTuple);
  co_return std::move(*answer);
}

asio::awaitable<void> AdminServer::Impl::acceptLoop() {
  while (acceptor_->is_open()) {
    auto [error, socket] = co_await acceptor_->async_accept(kTuple);
    if (error == asio::error::operation_aborted) co_return;
    if (error) {
      // Out of descriptors, say: the connection waits in the backlog while some close, and
      // retrying at once would spin on the same error.
      asio::steady_timer pause(context_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    if (!makeRoom()) {
      boost::system::error_code ignored;
      socket.close(ignored);  // every connection is inside a request: refused at once
      continue;
    }
    asio::co_spawn(context_, session(std::move(socket)), asio::detached);
  }
}

// Closing with the client's body still unread would reset the connection and could destroy
// the answer before the client reads it: read and drop what it still sends, within bounds.
static asio::awaitable<void> lingeringClose(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 64 * 1024> sink;
  stream.expires_after(std::chrono::seconds(2));
  for (size_t drained = 0; drained < 4 * kMaxBody;) {
    auto [error, read] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (error) break;
    drained += read;
  }
}

asio::awaitable<void> AdminServer::Impl::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  ++live_connections_;
  auto self = connections_.insert(connections_.end(), Connection{});
  self->socket = &stream.socket();
  struct Release {
    Impl& impl;
    ConnectionList::iterator self;
    ~Release() {
      if (!self->evicted) --impl.live_connections_;
      impl.connections_.erase(self);
    }
  } release{*this, self};
  beast::flat_buffer buffer;
  // Bounded by the client: every request needs a read, and every read has a deadline.
  for (;;) {
    if (buffer.size() == 0) {
      // Idle until the first byte: while it waits, the connection may be closed for a newcomer.
      self->idle = true;
      self->idle_since = std::chrono::steady_clock::now();
      stream.expires_after(kTimeout);
      auto [error, read] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
      self->idle = false;
      if (error || self->evicted) break;
      buffer.commit(read);
    }
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    parser.header_limit(kMaxHeader);
    stream.expires_after(kTimeout);
    auto [error, read] = co_await http::async_read(stream, buffer, parser, kTuple);
    (void)read;
    if (error == http::error::body_limit) {
      ApiResponse api =
          statusResponse(413, "RequestEntityTooLarge", "the request body is over the 1 MiB limit");
      auto response = toHttp(api, parser.get().version(), false, false);
      stream.expires_after(kTimeout);
      co_await http::async_write(stream, response, kTuple);
      co_await lingeringClose(stream);
      co_return;
    }
    if (error == http::error::header_limit) {
      auto response = toHttp(statusResponse(431, "BadRequest", "request header too large"),
                             parser.get().version(), false, false);
      stream.expires_after(kTimeout);
      co_await http::async_write(stream, response, kTuple);
      break;
    }
    if (error) break;  // closed, timed out or not HTTP
    const auto& request = parser.get();
    ApiRequest api_request{std::string(request.method_string()),
                           std::string(request.target()),
                           std::string(request[http::field::authorization]),
                           std::string(request[http::field::host]),
                           std::string(request[http::field::origin]),
                           std::string(request[http::field::content_type]),
                           request.body()};
    bool keep_alive = request.keep_alive();
    ApiResponse api;
    if (auto refused = claimSlot(*self, classify(api_request.target))) {
      api = std::move(*refused);
      keep_alive = false;
    } else if (writer_ && isRegistryWrite(api_request)) {
      api = co_await writeOnWorker(std::move(api_request));
    } else {
      api = handleCaught(api_, api_request);
    }
    auto response =
        toHttp(api, request.version(), keep_alive, request.method() == http::verb::head);
    stream.expires_after(kTimeout);
    auto [write_error, written] = co_await http::async_write(stream, response, kTuple);
    (void)written;
    if (write_error || !response.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

AdminServer::AdminServer(AdminOptions options, AdminHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(hooks))) {}
AdminServer::~AdminServer() { stop(); }
store::Status AdminServer::bind() { return impl_->bind(); }
void AdminServer::start() { impl_->start(); }
void AdminServer::stop() { impl_->stop(); }
std::string AdminServer::boundAddress() const { return impl_->bound_; }

}  // namespace svcbox::app
