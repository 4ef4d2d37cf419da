#include "app/admin_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/common.h"
#include "app/serve_admin.h"
#include "tests/unit/temp_dir.h"

// A real AdminServer on 127.0.0.1:0 over a real registry file, asked by a real HTTP client.
namespace svcbox::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using nlohmann::json;
using ::testing::HasSubstr;

struct Reply {
  unsigned status = 0;
  std::string content_type;
  std::string body;
  json parsed() const { return json::parse(body, nullptr, false); }
};

constexpr const char* kService = R"({"apiVersion":"v1","kind":"Service",
  "metadata":{"name":"web"},
  "spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}})";
constexpr const char* kPod = R"({"apiVersion":"v1","kind":"Pod",
  "metadata":{"name":"web-1","labels":{"app":"web"}},
  "spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":8080}]}]},
  "status":{"podIP":"127.0.0.2"}})";

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto writer_registry = store::Registry::open(dir_.file("registry.db"));
    ASSERT_TRUE(writer_registry) << writer_registry.error().message;
    writer_ =
        std::make_unique<RegistryWriter>(std::move(*writer_registry), store::CidrChoice{}, [] {});
    auto reader = store::Registry::open(dir_.file("registry.db"));
    ASSERT_TRUE(reader) << reader.error().message;
    reader_ = std::move(*reader);
  }

  void startServer(std::optional<std::string> token = std::nullopt) {
    AdminHooks hooks;
    hooks.snapshot = [this] {
      std::lock_guard lock(reader_mutex_);
      if (published_) return published_;
      auto snapshot = reader_->loadSnapshot();
      return snapshot ? *snapshot : nullptr;
    };
    hooks.writer = writer_.get();
    hooks.not_ready = [this] {
      std::lock_guard lock(reader_mutex_);
      return not_ready_;
    };
    hooks.metrics = [] { return std::string("# TYPE svcbox_services gauge\nsvcbox_services 0\n"); };
    AdminOptions options;
    options.listen = "127.0.0.1:0";
    options.token = std::move(token);
    server_ = std::make_unique<AdminServer>(options, std::move(hooks));
    auto bound = server_->bind();
    ASSERT_TRUE(bound) << bound.error().message;
    server_->start();
    std::string address = server_->boundAddress();
    port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  Reply send(http::verb method, const std::string& target, const std::string& body = "",
             const std::string& token = "") {
    asio::io_context context;
    beast::tcp_stream stream(context);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    Reply reply = exchange(stream, method, target, body, token, false);
    return reply;
  }

  static Reply exchange(beast::tcp_stream& stream, http::verb method, const std::string& target,
                        const std::string& body, const std::string& token, bool keep_alive) {
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    if (!body.empty()) request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.keep_alive(keep_alive);
    request.prepare_payload();
    beast::error_code error;
    // The server may answer (413) before it read the whole body.
    http::write(stream, request, error);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    http::read(stream, buffer, parser, error);
    if (error) return Reply{0, "", error.message()};
    auto& response = parser.get();
    return Reply{response.result_int(), std::string(response[http::field::content_type]),
                 response.body()};
  }

  store::SnapshotPtr current() {
    std::lock_guard lock(reader_mutex_);
    return *reader_->loadSnapshot();
  }

  testing::TempDir dir_;
  std::unique_ptr<RegistryWriter> writer_;
  std::mutex reader_mutex_;
  // When set, what serve's watcher last published (otherwise the registry as it is now).
  store::SnapshotPtr published_;
  std::unique_ptr<store::Registry> reader_;
  std::vector<std::string> not_ready_;
  std::unique_ptr<AdminServer> server_;
  uint16_t port_ = 0;
};

TEST_F(AdminServerTest, HealthReadinessAndMetrics) {
  startServer("secret");  // these three stay open without the token
  Reply health = send(http::verb::get, "/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.body, "ok\n");
  EXPECT_EQ(send(http::verb::get, "/readyz").status, 200u);
  {
    std::lock_guard lock(reader_mutex_);
    not_ready_ = {"dns: not started", "registry: first snapshot not loaded"};
  }
  Reply ready = send(http::verb::get, "/readyz");
  EXPECT_EQ(ready.status, 503u);
  EXPECT_EQ(ready.body, "dns: not started\nregistry: first snapshot not loaded\n");
  Reply metrics = send(http::verb::get, "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(metrics.body, HasSubstr("svcbox_services 0\n"));
  EXPECT_EQ(send(http::verb::post, "/healthz").status, 405u);
  EXPECT_EQ(send(http::verb::get, "/nope").status, 404u);
}

TEST_F(AdminServerTest, CreateReplaceListAndDeleteServicesAndPods) {
  startServer();
  Reply created = send(http::verb::post, "/api/v1/namespaces/default/services", kService);
  ASSERT_EQ(created.status, 201u) << created.body;
  EXPECT_EQ(created.parsed()["metadata"]["name"], "web");
  EXPECT_TRUE(created.parsed()["spec"]["clusterIP"].is_string());  // allocated and shown
  Reply again = send(http::verb::post, "/api/v1/namespaces/default/services", kService);
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(again.parsed()["reason"], "AlreadyExists");

  EXPECT_EQ(send(http::verb::put, "/api/v1/namespaces/default/pods/web-1", kPod).status, 201u);
  std::string replaced = kPod;
  replaced.replace(replaced.find("127.0.0.2"), 9, "127.0.0.3");
  Reply put = send(http::verb::put, "/api/v1/namespaces/default/pods/web-1", replaced);
  EXPECT_EQ(put.status, 200u) << put.body;
  EXPECT_EQ(put.parsed()["status"]["podIP"], "127.0.0.3");

  Reply services = send(http::verb::get, "/api/v1/services");
  ASSERT_EQ(services.status, 200u);
  EXPECT_EQ(services.parsed()["kind"], "ServiceList");
  ASSERT_EQ(services.parsed()["items"].size(), 1u);
  Reply pods = send(http::verb::get, "/api/v1/namespaces/default/pods");
  EXPECT_EQ(pods.parsed()["kind"], "PodList");
  EXPECT_EQ(pods.parsed()["items"].size(), 1u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/namespaces/other/pods").parsed()["items"].size(), 0u);
  Reply one = send(http::verb::get, "/api/v1/namespaces/default/services/web");
  EXPECT_EQ(one.status, 200u);
  EXPECT_EQ(one.parsed()["kind"], "Service");

  Reply deleted = send(http::verb::delete_, "/api/v1/namespaces/default/services/web");
  EXPECT_EQ(deleted.status, 200u) << deleted.body;
  EXPECT_EQ(deleted.parsed()["status"], "Success");
  EXPECT_EQ(send(http::verb::delete_, "/api/v1/namespaces/default/services/web").status, 404u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/namespaces/default/services/web").status, 404u);
  EXPECT_TRUE(current()->services().empty());
}

TEST_F(AdminServerTest, APodReportsItsReadiness) {
  startServer();
  ASSERT_EQ(send(http::verb::put, "/api/v1/namespaces/default/pods/web-1", kPod).status, 201u);
  Reply reply = send(http::verb::put, "/api/v1/namespaces/default/pods/web-1/readiness",
                     R"({"ready": false, "reason": "warming up"})");
  ASSERT_EQ(reply.status, 200u) << reply.body;
  const store::Pod* pod = current()->findPod("default", "web-1");
  ASSERT_NE(pod, nullptr);
  EXPECT_FALSE(pod->readiness.ready);
  EXPECT_EQ(pod->readiness.reason, "reported by the pod: warming up");
  EXPECT_EQ(
      send(http::verb::put, "/api/v1/namespaces/default/pods/ghost/readiness", R"({"ready": true})")
          .status,
      404u);
  Reply extra = send(http::verb::put, "/api/v1/namespaces/default/pods/web-1/readiness",
                     R"({"ready": true, "colour": "green"})");
  EXPECT_EQ(extra.status, 400u);
  EXPECT_THAT(extra.parsed()["message"].get<std::string>(), HasSubstr("colour"));
}

TEST_F(AdminServerTest, APodCreatedAMomentAgoCanReportBeforeTheWatcherPublishedIt) {
  published_ = current();
  startServer();
  ASSERT_EQ(send(http::verb::put, "/api/v1/namespaces/default/pods/web-1", kPod).status, 201u);
  ASSERT_EQ(published_->findPod("default", "web-1"), nullptr);
  Reply reply = send(http::verb::put, "/api/v1/namespaces/default/pods/web-1/readiness",
                     R"({"ready": false, "reason": "warming up"})");
  ASSERT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(reply.parsed()["status"]["conditions"][0]["status"], "False") << reply.body;
  const store::Pod* pod = current()->findPod("default", "web-1");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->readiness.reason, "reported by the pod: warming up");
  uint64_t version = current()->version();
  EXPECT_EQ(
      send(http::verb::put, "/api/v1/namespaces/default/pods/ghost/readiness", R"({"ready": true})")
          .status,
      404u);
  EXPECT_EQ(current()->version(), version) << "a report for an unknown pod wrote something";
}

TEST_F(AdminServerTest, BadBodiesAreRefusedAndChangeNothing) {
  startServer();
  uint64_t before = current()->version();
  Reply bad_json = send(http::verb::post, "/api/v1/namespaces/default/services", "{\"kind\": ");
  EXPECT_EQ(bad_json.status, 400u);
  EXPECT_EQ(bad_json.parsed()["kind"], "Status");
  EXPECT_EQ(bad_json.parsed()["status"], "Failure");
  EXPECT_EQ(bad_json.parsed()["code"], 400);

  std::string unknown = kService;
  unknown.replace(unknown.find("\"selector\""), 10, "\"selectorr\"");
  Reply unknown_field = send(http::verb::post, "/api/v1/namespaces/default/services", unknown);
  EXPECT_EQ(unknown_field.status, 400u);
  EXPECT_THAT(unknown_field.parsed()["message"].get<std::string>(), HasSubstr("selectorr"));

  Reply mismatch = send(http::verb::post, "/api/v1/namespaces/default/services", kPod);
  EXPECT_EQ(mismatch.status, 400u);
  EXPECT_THAT(mismatch.parsed()["message"].get<std::string>(), HasSubstr("Service"));
  Reply other_name = send(http::verb::put, "/api/v1/namespaces/default/services/api", kService);
  EXPECT_EQ(other_name.status, 400u);
  EXPECT_THAT(other_name.parsed()["message"].get<std::string>(), HasSubstr("metadata.name"));
  Reply other_ns = send(http::verb::post, "/api/v1/namespaces/prod/services",
                        std::string(kService).replace(std::string(kService).find("\"web\"}"), 6,
                                                      "\"web\",\"namespace\":\"dev\"}"));
  EXPECT_EQ(other_ns.status, 400u) << other_ns.body;
  EXPECT_EQ(current()->version(), before);
  EXPECT_TRUE(current()->services().empty());
}

TEST_F(AdminServerTest, TokenIsRequiredForTheApi) {
  startServer("s3cret");
  Reply none = send(http::verb::get, "/api/v1/services");
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.parsed()["reason"], "Unauthorized");
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", "s3cre").status, 401u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", "s3cret").status, 200u);
}

TEST_F(AdminServerTest, NotFoundMethodNotAllowedTooLargeAndKeepAlive) {
  startServer();
  EXPECT_EQ(send(http::verb::get, "/api/v1/namespaces/default/widgets").status, 404u);
  EXPECT_EQ(send(http::verb::get, "/api/v2/services").status, 404u);
  Reply wrong = send(http::verb::patch, "/api/v1/namespaces/default/services/web");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.parsed()["reason"], "MethodNotAllowed");
  Reply large = send(http::verb::post, "/api/v1/namespaces/default/services",
                     std::string((1 << 20) + 1, ' '));
  EXPECT_EQ(large.status, 413u);

  asio::io_context context;
  beast::tcp_stream stream(context);
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(exchange(stream, http::verb::get, "/healthz", "", "", true).status, 200u);
  }
}

TEST(AdminServerBindTest, ANonLoopbackAddressNeedsAToken) {
  AdminOptions options;
  options.listen = "0.0.0.0:0";
  AdminServer server(options, AdminHooks{});
  auto bound = server.bind();
  ASSERT_FALSE(bound);
  EXPECT_THAT(bound.error().message, HasSubstr("--admin-listen"));
  EXPECT_THAT(bound.error().message, HasSubstr("--admin-token-file"));
  AdminOptions v6;
  v6.listen = "[::1]:0";
  AdminServer loopback(v6, AdminHooks{});
  if (auto ok = loopback.bind(); ok) {  // hosts without IPv6 cannot bind ::1
    EXPECT_THAT(loopback.boundAddress(), HasSubstr("[::1]:"));
  }
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
}

TEST(AdminSettingsTest, TheTokenFileIsReadAndTrimmed) {
  testing::TempDir dir;
  std::ofstream(dir.file("token")) << "  s3cret \n";
  std::ofstream(dir.file("empty")) << " \n";
  Settings settings(std::nullopt);
  AdminFlags flags{std::string("none"), dir.file("token")};
  AdminOptions options = resolveAdminOptions(settings, flags);
  EXPECT_EQ(options.listen, "none");
  EXPECT_EQ(options.token, "s3cret");
  EXPECT_EQ(startAdminServer(options, AdminHooks{}), nullptr);
  for (const char* file : {"empty", "missing"}) {
    Settings again(std::nullopt);
    AdminFlags bad{std::nullopt, dir.file(file)};
    try {
      resolveAdminOptions(again, bad);
      ADD_FAILURE() << file << " was accepted";
    } catch (const CommandError& error) {
      EXPECT_THAT(error.what(), HasSubstr("--admin-token-file")) << file;
    }
  }
}

}  // namespace
}  // namespace svcbox::app
