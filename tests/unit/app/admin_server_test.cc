#include "app/admin_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

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

// Every test's server has a token, as serve's does; `send` sends it unless told otherwise.
constexpr const char* kToken = "t0ken";

// What a request carries besides method and target; an empty field is not sent.
struct Headers {
  std::string authorization = std::string("Bearer ") + kToken;
  std::string host = "127.0.0.1";
  std::string origin;
  std::string content_type = "application/json";  // sent with a body
  Headers& auth(std::string value) { return authorization = std::move(value), *this; }
  Headers& at(std::string value) { return host = std::move(value), *this; }
  Headers& from(std::string value) { return origin = std::move(value), *this; }
  Headers& type(std::string value) { return content_type = std::move(value), *this; }
};

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

  void startServer(std::optional<std::string> token = kToken, AdminOptions options = {}) {
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
    options.listen = "127.0.0.1:0";
    options.access.token = std::move(token);
    server_ = std::make_unique<AdminServer>(options, std::move(hooks));
    auto bound = server_->bind();
    ASSERT_TRUE(bound) << bound.error().message;
    server_->start();
    std::string address = server_->boundAddress();
    port_ = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  Reply send(http::verb method, const std::string& target, const std::string& body = "",
             const Headers& headers = Headers()) {
    beast::tcp_stream stream(context_);
    connect(stream);
    return exchange(stream, method, target, body, headers, false);
  }

  void connect(beast::tcp_stream& stream) {
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  }

  static Reply exchange(beast::tcp_stream& stream, http::verb method, const std::string& target,
                        const std::string& body, const Headers& headers, bool keep_alive) {
    http::request<http::string_body> request{method, target, 11};
    if (!headers.host.empty()) request.set(http::field::host, headers.host);
    if (!headers.authorization.empty()) {
      request.set(http::field::authorization, headers.authorization);
    }
    if (!headers.origin.empty()) request.set(http::field::origin, headers.origin);
    if (!body.empty() && !headers.content_type.empty()) {
      request.set(http::field::content_type, headers.content_type);
    }
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

  asio::io_context context_;
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
  Reply none = send(http::verb::get, "/api/v1/services", "", Headers().auth(""));
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.parsed()["reason"], "Unauthorized");
  EXPECT_THAT(none.parsed()["message"].get<std::string>(), HasSubstr("svcbox admin-token"));
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().auth("Bearer s3cre")).status,
            401u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().auth("Basic s3cret")).status,
            401u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().auth("Bearer s3cret")).status,
            200u);
  // The scheme is case-insensitive (RFC 9110), the token is not.
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().auth("bEARER s3cret")).status,
            200u);
  EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().auth("Bearer S3CRET")).status,
            401u);
  EXPECT_EQ(send(http::verb::get, "/healthz", "", Headers().auth("")).status, 200u);
}

// What a page in a browser on the host can send without a CORS preflight: refused before the
// registry is touched, token or not.
TEST_F(AdminServerTest, ACrossSitePostFromABrowserIsRefusedAndWritesNothing) {
  startServer(std::nullopt);
  uint64_t before = current()->version();
  Reply plain = send(http::verb::post, "/api/v1/namespaces/default/pods", kPod,
                     Headers().auth("").type("text/plain"));
  EXPECT_EQ(plain.status, 415u) << plain.body;
  EXPECT_THAT(plain.parsed()["message"].get<std::string>(), HasSubstr("application/json"));
  Reply evil = send(http::verb::post, "/api/v1/namespaces/default/pods", kPod,
                    Headers().auth("").from("http://evil.example"));
  EXPECT_EQ(evil.status, 403u) << evil.body;
  EXPECT_THAT(evil.parsed()["message"].get<std::string>(), HasSubstr("--admin-allowed-origins"));
  EXPECT_EQ(current()->version(), before);
  EXPECT_TRUE(current()->pods().empty());
  // A page served by svcbox's own address may call it (the Origin is the request's own).
  std::string self = "127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(
      send(http::verb::get, "/api/v1/pods", "", Headers().at(self).from("http://" + self)).status,
      200u);
}

TEST_F(AdminServerTest, ListedOriginsAreAccepted) {
  AdminOptions options;
  options.access.allowed_origins = {"http://dashboard.lan:8080"};
  startServer(kToken, options);
  EXPECT_EQ(
      send(http::verb::get, "/api/v1/pods", "", Headers().from("http://dashboard.lan:8080")).status,
      200u);
  EXPECT_EQ(
      send(http::verb::get, "/api/v1/pods", "", Headers().from("http://dashboard.lan:8081")).status,
      403u);
}

// DNS rebinding: a name the attacker controls, pointed at 127.0.0.1.
TEST_F(AdminServerTest, AHostThatIsNotAnAddressOrLocalhostIsRefusedOnTheApiOnly) {
  AdminOptions options;
  options.access.allowed_hosts = {"svcbox.lan"};
  startServer(kToken, options);
  Reply rebound = send(http::verb::get, "/api/v1/services", "", Headers().at("evil.example:9153"));
  EXPECT_EQ(rebound.status, 403u);
  EXPECT_THAT(rebound.parsed()["message"].get<std::string>(), HasSubstr("--admin-allowed-hosts"));
  for (const char* host : {"127.0.0.1:9153", "localhost:9153", "LOCALHOST", "[::1]:9153",
                           "10.1.2.3", "svcbox.lan:9153", "SVCBOX.lan"}) {
    EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().at(host)).status, 200u)
        << host;
  }
  for (const char* host :
       {"127.0.0.1.evil.example", "localhost.evil.example", "[evil]:1", "1.2.3"}) {
    EXPECT_EQ(send(http::verb::get, "/api/v1/services", "", Headers().at(host)).status, 403u)
        << host;
  }
  // Quoted in the message as well as JSON can: bytes that are not UTF-8 are replaced.
  Reply binary = send(http::verb::get, "/api/v1/services", "", Headers().at("\xb3\xff:1"));
  EXPECT_EQ(binary.status, 403u);
  EXPECT_THAT(binary.parsed()["message"].get<std::string>(), HasSubstr("\xef\xbf\xbd"));
  EXPECT_EQ(send(http::verb::get, "/healthz", "", Headers().at("evil.example:9153")).status, 200u);
  EXPECT_EQ(send(http::verb::get, "/metrics", "", Headers().at("evil.example:9153")).status, 200u);
}

TEST_F(AdminServerTest, BodiesAreReadByTheirContentType) {
  startServer();
  std::string yaml =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
      "spec: {selector: {app: web}, ports: [{port: 80}]}\n";
  for (const char* type : {"application/yaml", "application/x-yaml", "text/yaml; charset=utf-8"}) {
    Reply created = send(http::verb::put, "/api/v1/namespaces/default/services/web", yaml,
                         Headers().type(type));
    EXPECT_TRUE(created.status == 201u || created.status == 200u) << type << ": " << created.body;
  }
  Reply json_as_json = send(http::verb::put, "/api/v1/namespaces/default/services/web", kService,
                            Headers().type("Application/JSON; charset=utf-8"));
  EXPECT_EQ(json_as_json.status, 200u) << json_as_json.body;
  // YAML sent as JSON is a JSON error, with where it is.
  Reply yaml_as_json = send(http::verb::put, "/api/v1/namespaces/default/services/web", yaml);
  EXPECT_EQ(yaml_as_json.status, 400u);
  EXPECT_THAT(yaml_as_json.parsed()["message"].get<std::string>(), HasSubstr("request body:1:"));
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", ""}) {
    Reply refused = send(http::verb::put, "/api/v1/namespaces/default/services/web", kService,
                         Headers().type(type));
    EXPECT_EQ(refused.status, 415u) << type;
    EXPECT_EQ(refused.parsed()["reason"], "UnsupportedMediaType");
  }
  EXPECT_EQ(send(http::verb::put, "/api/v1/namespaces/default/pods/web-1/readiness",
                 R"({"ready": true})", Headers().type("text/plain"))
                .status,
            415u);
}

// The container's HEALTHCHECK polls /healthz: idle API clients must not take its place.
TEST_F(AdminServerTest, SeventyIdleApiConnectionsLeaveHealthAnswered) {
  startServer();
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;
  size_t answered = 0, refused = 0;
  for (int i = 0; i < 70; ++i) {
    auto stream = std::make_unique<beast::tcp_stream>(context_);
    connect(*stream);
    unsigned status =
        exchange(*stream, http::verb::get, "/api/v1/services", "", Headers(), true).status;
    answered += status == 200u;
    refused += status == 503u;
    idle.push_back(std::move(stream));
  }
  EXPECT_EQ(answered, 64u);  // --admin-max-api-connections' default
  EXPECT_EQ(refused, 6u);
  // And as many connections again that never send a byte.
  for (int i = 0; i < 70; ++i) {
    auto stream = std::make_unique<beast::tcp_stream>(context_);
    connect(*stream);
    idle.push_back(std::move(stream));
  }
  // Within 100 ms, the issue's figure, judged on the median of five so that a loaded CI machine
  // (ASan, other suites beside) does not fail it on one slow scheduling; none may take a second.
  std::vector<std::chrono::steady_clock::duration> took;
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    Reply health = send(http::verb::get, "/healthz");
    took.push_back(std::chrono::steady_clock::now() - start);
    EXPECT_EQ(health.status, 200u);
    EXPECT_LT(took.back(), std::chrono::seconds(1));
  }
  std::sort(took.begin(), took.end());
  EXPECT_LT(took[2], std::chrono::milliseconds(100));
}

// A registry write waits for SQLite's lock on the writer's worker; health, metrics and reads
// are answered meanwhile.
TEST_F(AdminServerTest, ASlowRegistryWriteDelaysOnlyTheWrites) {
  startServer();
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.file("registry.db").c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto write = std::async(std::launch::async, [this] {
    return send(http::verb::post, "/api/v1/namespaces/default/services", kService);
  });
  // The write is in: it waits on the lock while these are answered.
  ASSERT_EQ(write.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  for (const char* target : {"/healthz", "/metrics", "/api/v1/services"}) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(send(http::verb::get, target).status, 200u) << target;
    // Written inline, the write would hold the server's thread until SQLite gave up on the lock
    // (seconds); a second leaves room for a loaded CI machine.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << target;
  }
  ASSERT_EQ(write.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(blocker);
  Reply created = write.get();
  EXPECT_EQ(created.status, 201u) << created.body;
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
    EXPECT_EQ(exchange(stream, http::verb::get, "/healthz", "", Headers(), true).status, 200u);
  }
}

TEST(AdminServerBindTest, ANonLoopbackAddressNeedsAToken) {
  AdminOptions options;
  options.listen = "0.0.0.0:0";
  options.access.token.reset();
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
  ::chmod(dir.file("token").c_str(), 0600);
  Settings settings(std::nullopt);
  AdminFlags flags;
  flags.token_file = dir.file("token");
  AdminOptions options = resolveAdminOptions(settings, flags, dir.file("registry.db"));
  loadAdminToken(options);
  EXPECT_EQ(options.access.token, "s3cret");
  for (const char* file : {"empty", "token-dir/missing"}) {
    Settings again(std::nullopt);
    AdminFlags bad;
    bad.token_file = dir.file(file);
    try {
      AdminOptions unusable = resolveAdminOptions(again, bad, dir.file("registry.db"));
      loadAdminToken(unusable);
      ADD_FAILURE() << file << " was accepted";
    } catch (const CommandError& error) {
      EXPECT_THAT(error.what(), HasSubstr("--admin-token-file")) << file;
    }
  }
}

TEST(AdminSettingsTest, FirstStartCreatesAPrivateRandomTokenBesideTheRegistry) {
  testing::TempDir dir;
  Settings settings(std::nullopt);
  AdminOptions first = resolveAdminOptions(settings, AdminFlags{}, dir.file("registry.db"));
  EXPECT_EQ(first.token_file, dir.file("registry.db.admin-token"));
  loadAdminToken(first);
  ASSERT_TRUE(first.access.token);
  EXPECT_EQ(first.access.token->size(), 64u);  // 32 random bytes in hex
  struct stat status {};
  ASSERT_EQ(::stat(first.token_file.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  // The next start keeps it: clients holding it go on working.
  AdminOptions second = resolveAdminOptions(settings, AdminFlags{}, dir.file("registry.db"));
  loadAdminToken(second);
  EXPECT_EQ(second.access.token, first.access.token);
  testing::TempDir other;
  AdminOptions elsewhere = resolveAdminOptions(settings, AdminFlags{}, other.file("registry.db"));
  loadAdminToken(elsewhere);
  EXPECT_NE(elsewhere.access.token, first.access.token);
}

TEST(AdminSettingsTest, TheAdminUrlIsWhereALocalClientReachesServe) {
  EXPECT_EQ(adminUrl("127.0.0.1:9153"), "http://127.0.0.1:9153");
  EXPECT_EQ(adminUrl("0.0.0.0:9000"), "http://127.0.0.1:9000");
  EXPECT_EQ(adminUrl("[::]:9153"), "http://[::1]:9153");
  EXPECT_EQ(adminUrl("10.0.0.1:80"), "http://10.0.0.1:80");
  EXPECT_THROW(adminUrl("none"), CommandError);
  EXPECT_THROW(adminUrl("127.0.0.1:0"), CommandError);
}

}  // namespace
}  // namespace svcbox::app
