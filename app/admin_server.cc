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
constexpr auto kTimeout = std::chrono::seconds(10);
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

}  // namespace

class AdminServer::Impl {
 public:
  Impl(AdminOptions options, AdminHooks hooks)
      : options_(std::move(options)), api_(std::move(hooks), options_.token) {}

  store::Status bind();
  void start();
  void stop();

  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> session(tcp::socket socket);

  AdminOptions options_;
  AdminApi api_;
  size_t connections_ = 0;  // touched on the server's thread only
  std::string bound_;
  std::thread thread_;
  // Last: destroying it destroys suspended sessions, which still count connections_ down.
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
  if (!parsed->ip.isLoopback() && !options.token) {
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
  if (!thread_.joinable()) return;
  context_.stop();
  thread_.join();
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
    if (connections_ >= options_.max_connections) {
      boost::system::error_code ignored;
      socket.close(ignored);  // over the limit: refused at once
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
  ++connections_;
  struct Release {
    size_t& count;
    ~Release() { --count; }
  } release{connections_};
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  // Bounded by the client: every request needs a read, and every read has a deadline.
  for (;;) {
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
    ApiRequest api_request{std::string(request.method_string()), std::string(request.target()),
                           std::string(request[http::field::authorization]), request.body()};
    ApiResponse api = api_.handle(api_request);
    auto response =
        toHttp(api, request.version(), request.keep_alive(), request.method() == http::verb::head);
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
