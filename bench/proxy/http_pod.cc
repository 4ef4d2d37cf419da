// http_pod ADDRESS PORT NAME: the benchmark's pod. Answers every HTTP request with NAME, keeping
// the connection open unless the request says "Connection: close". Native and single-threaded, so
// that the pod is not what limits requests/s and the proxy's cost shows.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<void> serve(tcp::socket socket, std::string response) {
  std::string pending;
  char buffer[8192];
  for (;;) {
    auto [error, n] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
    if (error) co_return;
    pending.append(buffer, n);
    size_t end;
    while ((end = pending.find("\r\n\r\n")) != std::string::npos) {
      bool close = std::string_view(pending).substr(0, end).find("Connection: close") !=
                   std::string_view::npos;
      pending.erase(0, end + 4);
      auto [write_error, written] =
          co_await asio::async_write(socket, asio::buffer(response), kTuple);
      if (write_error || close) co_return;
    }
  }
}

asio::awaitable<void> accept(tcp::acceptor& acceptor, std::string response) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kTuple);
    if (error) continue;
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), response), asio::detached);
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: http_pod ADDRESS PORT NAME\n");
    return 2;
  }
  std::string body = std::string(argv[3]) + "\n";
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nContent-Type: text/plain\r\n\r\n" + body;
  asio::io_context context(1);
  tcp::endpoint endpoint(asio::ip::make_address(argv[1]),
                         static_cast<unsigned short>(std::stoi(argv[2])));
  tcp::acceptor acceptor(context, endpoint, true);
  asio::co_spawn(context, accept(acceptor, response), asio::detached);
  std::puts("ready");
  std::fflush(stdout);
  context.run();
}
