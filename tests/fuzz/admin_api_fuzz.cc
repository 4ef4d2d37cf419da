// libFuzzer target for the admin API's request handling, without a socket: the input is one
// request whose fields are separated by newlines (which no request line or header can hold):
// method, target, Authorization, Host, Origin, Content-Type, then the body (the rest, newlines
// and all). The handler reads and writes a real registry, SQLite in a folder made once per
// process, so a request can find what an earlier one of the same run created; it starts with
// a Service and a Pod that the seed requests name.
#include <stdlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "app/admin_api.h"
#include "app/manifest.h"
#include "app/registry_writer.h"

namespace {

using namespace svcbox;

constexpr const char* kSeedObjects = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec:
  containers: [{name: web, ports: [{containerPort: 8080}]}]
status: {podIP: 10.0.1.2}
)";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "admin_api_fuzz: %s\n", message.c_str());
  abort();
}

class Fixture {
 public:
  Fixture() {
    // TMPDIR when set (run.sh points it into its scratch folder, which it removes even after a
    // crash, when no destructor runs), else tmpfs where there is one: every write commits with
    // fsync, which costs nothing there.
    const char* tmpdir = std::getenv("TMPDIR");
    std::string base = tmpdir && *tmpdir                           ? tmpdir
                       : std::filesystem::is_directory("/dev/shm") ? "/dev/shm"
                                                                   : "/tmp";
    std::string pattern = base + "/svcbox-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) die("cannot make a folder in " + base);
    dir_ = pattern;
    auto registry = store::Registry::open(dir_ + "/registry.db");
    if (!registry) die("cannot open the registry: " + registry.error().message);
    writer_ =
        std::make_unique<app::RegistryWriter>(std::move(*registry), store::CidrChoice{}, nullptr);
    std::vector<std::string> warnings;
    std::vector<store::Object> objects;
    for (auto& manifest : app::parseManifest(kSeedObjects, "seed", {}, warnings)) {
      objects.push_back(std::move(manifest.object));
    }
    if (auto applied = writer_->apply(objects); !applied) {
      die("cannot apply the seed objects: " + applied.error().message);
    }
    app::AdminHooks hooks;
    hooks.snapshot = [this]() -> store::SnapshotPtr {
      auto snapshot = writer_->read();
      return snapshot ? *snapshot : nullptr;
    };
    hooks.writer = writer_.get();
    hooks.not_ready = [] { return std::vector<std::string>{}; };
    hooks.metrics = [] { return std::string("svcbox_snapshot_version 1\n"); };
    app::ApiAccess access{"fuzz-token", {"svcbox.example"}, {"http://svcbox.example"}};
    api_ = std::make_unique<app::AdminApi>(std::move(hooks), std::move(access));
  }
  ~Fixture() {
    api_.reset();
    writer_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  const app::AdminApi& api() const { return *api_; }

 private:
  std::string dir_;
  std::unique_ptr<app::RegistryWriter> writer_;
  std::unique_ptr<app::AdminApi> api_;
};

app::ApiRequest split(std::string_view input) {
  app::ApiRequest request;
  for (std::string* field : {&request.method, &request.target, &request.authorization,
                             &request.host, &request.origin, &request.content_type}) {
    auto end = input.find('\n');
    if (end == std::string_view::npos) end = input.size();
    field->assign(input.substr(0, end));
    input.remove_prefix(std::min(end + 1, input.size()));
  }
  request.body.assign(input);
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  auto request = split(std::string_view(reinterpret_cast<const char*>(data), size));
  app::classify(request.target);
  app::isRegistryWrite(request);
  auto response = fixture.api().handle(request);
  // What serve would send must be a real status, and a JSON body must be JSON.
  if (response.status < 200 || response.status > 599) __builtin_trap();
  if (response.content_type == "application/json" && !nlohmann::json::accept(response.body)) {
    __builtin_trap();
  }
  return 0;
}
