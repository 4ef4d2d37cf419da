#include "app/admin_api.h"

#include <nlohmann/json.hpp>

#include "app/manifest.h"
#include "app/render.h"
#include "store/ip.h"

namespace svcbox::app {
namespace {

using nlohmann::json;

constexpr std::string_view kServices = "services";
constexpr std::string_view kPods = "pods";

ApiResponse text(unsigned status, std::string body) {
  return ApiResponse{status, "text/plain; charset=utf-8", std::move(body), {}};
}

// Messages quote what the client sent (a path, a Host), which need not be UTF-8: invalid bytes
// are replaced rather than thrown on.
ApiResponse jsonResponse(unsigned status, const json& value) {
  return ApiResponse{status,
                     "application/json",
                     value.dump(-1, ' ', false, json::error_handler_t::replace) + "\n",
                     {}};
}

ApiResponse methodNotAllowed(const std::string& method, const std::string& allow) {
  ApiResponse response =
      statusResponse(405, "MethodNotAllowed", method + " is not allowed here; use " + allow);
  response.allow = allow;
  return response;
}

ApiResponse notFound(std::string_view kind, const std::string& namespace_name,
                     const std::string& name) {
  std::string singular = kind == kServices ? "service" : "pod";
  return statusResponse(404, "NotFound",
                        singular + " \"" + namespace_name + "/" + name + "\" not found");
}

// A registry error as a Status: what the user must change is 400, a clash 409, a busy or
// failing registry 503/500.
ApiResponse fromError(const store::Error& error) {
  std::string message = error.field.empty() || error.message.find(error.field) != std::string::npos
                            ? error.message
                            : error.field + ": " + error.message;
  switch (error.kind) {
    case store::ErrorKind::kInvalid:
      return statusResponse(400, "Invalid", message);
    case store::ErrorKind::kNotFound:
      return statusResponse(404, "NotFound", message);
    case store::ErrorKind::kConflict:
      return statusResponse(409, "Conflict", message);
    case store::ErrorKind::kBusy:
    case store::ErrorKind::kReplaced:  // serve is stopping to restart on the new file
      return statusResponse(503, "ServiceUnavailable", message);
    case store::ErrorKind::kInternal:
      break;
  }
  return statusResponse(500, "InternalError", message);
}

std::vector<std::string> splitPath(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < target.size()) {
    size_t slash = target.find('/', start);
    if (slash == std::string_view::npos) slash = target.size();
    if (slash > start) parts.emplace_back(target.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string lowered(std::string_view text) {
  std::string result(text);
  for (char& c : result) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

enum class BodyFormat { kJson, kYaml, kUnsupported };

// The media type without parameters (charset and the like), as RFC 9110 §8.3.1 reads it.
BodyFormat bodyFormat(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  while (!content_type.empty() && content_type.front() == ' ') content_type.remove_prefix(1);
  std::string type = lowered(content_type);
  if (type == "application/json") return BodyFormat::kJson;
  if (type == "application/yaml" || type == "application/x-yaml" || type == "text/yaml") {
    return BodyFormat::kYaml;
  }
  return BodyFormat::kUnsupported;
}

ApiResponse unsupportedMediaType(const std::string& content_type, const std::string& accepted) {
  return statusResponse(415, "UnsupportedMediaType",
                        "Content-Type " +
                            (content_type.empty() ? std::string("missing")
                                                  : "\"" + content_type + "\" is not accepted") +
                            "; send " + accepted);
}

bool isKind(std::string_view segment) { return segment == kServices || segment == kPods; }

const std::string* objectName(const store::Object& object) {
  if (const auto* service = std::get_if<store::Service>(&object)) return &service->name;
  if (const auto* pod = std::get_if<store::Pod>(&object)) return &pod->name;
  return nullptr;
}

json objectJson(const store::Snapshot& snapshot, std::string_view kind,
                const std::string& namespace_name, const std::string& name) {
  if (kind == kServices) {
    const auto* entry = snapshot.findService(namespace_name, name);
    return entry ? toJson(entry->service) : json();
  }
  const auto* pod = snapshot.findPod(namespace_name, name);
  return pod ? toJson(*pod) : json();
}

}  // namespace

bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  size_t length = std::max(a.size(), b.size());
  for (size_t i = 0; i < length; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned char>(x ^ y);
  }
  return difference == 0;
}

ApiResponse statusResponse(unsigned code, const std::string& reason, const std::string& message) {
  return jsonResponse(code, json{{"kind", "Status"},
                                 {"apiVersion", "v1"},
                                 {"metadata", json::object()},
                                 {"status", code < 300 ? "Success" : "Failure"},
                                 {"message", message},
                                 {"reason", reason},
                                 {"code", code}});
}

AdminApi::AdminApi(AdminHooks hooks, ApiAccess access)
    : hooks_(std::move(hooks)), access_(std::move(access)) {}

namespace {

bool isHealthPath(std::string_view target) {
  auto path = splitPath(target);
  return path.size() == 1 && (path[0] == "healthz" || path[0] == "readyz" || path[0] == "metrics");
}

// "Bearer <token>", the scheme in any case (RFC 9110 §11.1).
std::optional<std::string_view> bearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() || lowered(header.substr(0, kScheme.size())) != kScheme) {
    return std::nullopt;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  return header;
}

// The name part of a Host header ("name", "name:port", "1.2.3.4:port" or "[v6]:port"),
// lowercased.
std::string hostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return lowered(close == std::string_view::npos ? host : host.substr(0, close + 1));
  }
  return lowered(host.substr(0, host.rfind(':')));
}

bool isIpLiteral(const std::string& name) {
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    auto inner = store::IpAddress::parse(name.substr(1, name.size() - 2));
    return inner && !inner->isV4();
  }
  auto address = store::IpAddress::parse(name);
  return address && address->isV4();
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& entry : names) {
    if (lowered(entry) == name) return true;
  }
  return false;
}

}  // namespace

RequestClass classify(std::string_view target) {
  return isHealthPath(target) ? RequestClass::kHealth : RequestClass::kApi;
}

bool isRegistryWrite(const ApiRequest& request) {
  if (request.method == "GET" || request.method == "HEAD") return false;
  auto path = splitPath(request.target);
  return path.size() >= 2 && path[0] == "api" && path[1] == "v1";
}

// A web page open in a browser on the host can send a cross-site POST (text/plain needs no
// preflight) and, through DNS rebinding, even read the answers. The token stops both; Host and
// Origin stop them before the token is looked at, and protect a server run without one.
std::optional<ApiResponse> AdminApi::refuseAccess(const ApiRequest& request) const {
  if (!request.host.empty()) {
    std::string host = hostName(request.host);
    if (!isIpLiteral(host) && host != "localhost" && !listed(access_.allowed_hosts, host)) {
      return statusResponse(403, "Forbidden",
                            "Host \"" + request.host +
                                "\" is not an IP address or localhost; name it with "
                                "--admin-allowed-hosts to accept it");
    }
  }
  if (!request.origin.empty()) {
    std::string origin = lowered(request.origin);
    if (origin != "http://" + lowered(request.host) && !listed(access_.allowed_origins, origin)) {
      return statusResponse(403, "Forbidden",
                            "Origin \"" + request.origin +
                                "\" is not this server; name it with --admin-allowed-origins to "
                                "accept requests from its pages");
    }
  }
  if (!access_.token) return std::nullopt;
  auto token = bearerToken(request.authorization);
  if (!token || !constantTimeEquals(*token, *access_.token)) {
    return statusResponse(401, "Unauthorized",
                          "this API needs \"Authorization: Bearer <token>\"; `svcbox admin-token` "
                          "prints the token of the local serve");
  }
  return std::nullopt;
}

ApiResponse AdminApi::handle(const ApiRequest& request) const {
  auto path = splitPath(request.target);
  bool reading = request.method == "GET" || request.method == "HEAD";
  if (isHealthPath(request.target)) {
    if (!reading) return methodNotAllowed(request.method, "GET");
    if (path[0] == "healthz") return text(200, "ok\n");
    if (path[0] == "metrics") {
      ApiResponse response = text(200, hooks_.metrics ? hooks_.metrics() : "");
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return response;
    }
    auto reasons = hooks_.not_ready ? hooks_.not_ready() : std::vector<std::string>{};
    if (reasons.empty()) return text(200, "ok\n");
    std::string body;
    for (const auto& reason : reasons) body += reason + "\n";
    return text(503, body);
  }
  if (path.size() >= 2 && path[0] == "api" && path[1] == "v1") {
    if (auto refused = refuseAccess(request)) return *refused;
    return api(request, path);
  }
  return statusResponse(404, "NotFound", "no such path: " + request.target);
}

ApiResponse AdminApi::api(const ApiRequest& request, const std::vector<std::string>& path) const {
  const std::string& method = request.method;
  bool reading = method == "GET" || method == "HEAD";
  // /api/v1/services, /api/v1/pods
  if (path.size() == 3 && isKind(path[2])) {
    if (!reading) return methodNotAllowed(method, "GET");
    return list(path[2], nullptr);
  }
  if (path.size() < 5 || path[2] != "namespaces" || !isKind(path[4])) {
    return statusResponse(404, "NotFound", "no such path: " + request.target);
  }
  const std::string& namespace_name = path[3];
  const std::string& kind = path[4];
  if (path.size() == 5) {
    if (reading) return list(kind, &namespace_name);
    if (method == "POST") return write(request, kind, namespace_name, nullptr);
    return methodNotAllowed(method, "GET, POST");
  }
  const std::string& name = path[5];
  if (path.size() == 6) {
    if (reading) return get(kind, namespace_name, name);
    if (method == "PUT") return write(request, kind, namespace_name, &name);
    if (method == "DELETE") return remove(kind, namespace_name, name);
    return methodNotAllowed(method, "GET, PUT, DELETE");
  }
  if (path.size() == 7 && kind == kPods && path[6] == "readiness") {
    if (method == "PUT") return readiness(request, namespace_name, name);
    return methodNotAllowed(method, "PUT");
  }
  return statusResponse(404, "NotFound", "no such path: " + request.target);
}

ApiResponse AdminApi::list(std::string_view kind, const std::string* namespace_name) const {
  store::SnapshotPtr snapshot = hooks_.snapshot ? hooks_.snapshot() : nullptr;
  json items = json::array();
  if (snapshot && kind == kServices) {
    for (const auto& entry : snapshot->services()) {
      if (!namespace_name || entry.service.namespace_name == *namespace_name) {
        items.push_back(toJson(entry.service));
      }
    }
  } else if (snapshot) {
    for (const auto& pod : snapshot->pods()) {
      if (!namespace_name || pod->namespace_name == *namespace_name) items.push_back(toJson(*pod));
    }
  }
  std::string version = snapshot ? std::to_string(snapshot->version()) : "0";
  return jsonResponse(200, json{{"apiVersion", "v1"},
                                {"kind", kind == kServices ? "ServiceList" : "PodList"},
                                {"metadata", {{"resourceVersion", version}}},
                                {"items", std::move(items)}});
}

ApiResponse AdminApi::get(std::string_view kind, const std::string& namespace_name,
                          const std::string& name) const {
  store::SnapshotPtr snapshot = hooks_.snapshot ? hooks_.snapshot() : nullptr;
  json object = snapshot ? objectJson(*snapshot, kind, namespace_name, name) : json();
  if (object.is_null()) return notFound(kind, namespace_name, name);
  return jsonResponse(200, object);
}

ApiResponse AdminApi::write(const ApiRequest& request, std::string_view kind,
                            const std::string& namespace_name, const std::string* name) const {
  if (!hooks_.writer) return methodNotAllowed(request.method, "GET");
  BodyFormat format = bodyFormat(request.content_type);
  if (format == BodyFormat::kUnsupported) {
    return unsupportedMediaType(request.content_type,
                                "application/json, or application/yaml for YAML");
  }
  ManifestOptions options;
  options.validation = Validation::kStrict;
  options.namespace_name = namespace_name;
  options.namespace_given = true;      // an object naming another namespace is an error
  options.unknown_field_hint.clear();  // the API has no --validate
  std::vector<std::string> warnings;
  std::vector<ManifestObject> objects;
  try {
    objects =
        parseManifest(request.body, "request body", options, warnings,
                      format == BodyFormat::kJson ? ManifestFormat::kJson : ManifestFormat::kYaml);
  } catch (const ManifestError& error) {
    return statusResponse(400, "BadRequest", error.what());
  } catch (const std::exception& error) {
    return statusResponse(400, "BadRequest", std::string("request body: ") + error.what());
  }
  if (objects.size() != 1) {
    return statusResponse(
        400, "BadRequest",
        "request body: expected one object, found " + std::to_string(objects.size()));
  }
  const store::Object& object = objects.front().object;
  bool is_service = std::holds_alternative<store::Service>(object);
  bool is_pod = std::holds_alternative<store::Pod>(object);
  if ((kind == kServices && !is_service) || (kind == kPods && !is_pod)) {
    return statusResponse(400, "BadRequest",
                          "request body: kind must be " +
                              std::string(kind == kServices ? "Service" : "Pod") + " under /" +
                              std::string(kind));
  }
  const std::string& object_name = *objectName(object);
  if (name && object_name != *name) {
    return statusResponse(400, "BadRequest",
                          "metadata.name: \"" + object_name +
                              "\" does not match the name in the path, \"" + *name + "\"");
  }
  bool create_only = name == nullptr;
  bool existed = false;
  auto check = [&](const store::Snapshot& current) -> store::Status {
    existed = !objectJson(current, kind, namespace_name, object_name).is_null();
    if (create_only && existed) {
      return store::Error{store::ErrorKind::kConflict, "already exists", {}};
    }
    return store::Ok{};
  };
  // PUT creates or replaces, so it needs no check, and no snapshot read before its commit
  // (a full read costs tens of milliseconds on a large registry).
  auto changes =
      create_only ? hooks_.writer->applyIf(check, {object}) : hooks_.writer->apply({object});
  if (!changes) {
    if (create_only && existed) {
      return statusResponse(409, "AlreadyExists",
                            std::string(kind == kServices ? "service" : "pod") + " \"" +
                                namespace_name + "/" + object_name + "\" already exists");
    }
    return fromError(changes.error());
  }
  if (!create_only) {
    existed = !changes->empty() && changes->front().action != store::Change::Action::kCreated;
  }
  unsigned code = existed ? 200 : 201;
  // Answered as stored, what a GET answers: a Service with the ClusterIP it was given, a Pod
  // with its creation time and the readiness the registry gave it. One row is read, not the
  // registry.
  store::ObjectRef ref{is_service ? store::ObjectKind::kService : store::ObjectKind::kPod,
                       namespace_name, object_name};
  auto stored = hooks_.writer->find(ref);
  if (!stored) return fromError(stored.error());
  const std::optional<store::Object>& found = *stored;
  const store::Object& answer = found ? *found : object;
  return jsonResponse(code, is_service ? toJson(std::get<store::Service>(answer))
                                       : toJson(std::get<store::Pod>(answer)));
}

ApiResponse AdminApi::remove(std::string_view kind, const std::string& namespace_name,
                             const std::string& name) const {
  if (!hooks_.writer) return methodNotAllowed("DELETE", "GET");
  store::ObjectRef ref{kind == kServices ? store::ObjectKind::kService : store::ObjectKind::kPod,
                       namespace_name, name};
  auto changes = hooks_.writer->remove({ref});
  if (!changes) return fromError(changes.error());
  if (changes->empty() || changes->front().action == store::Change::Action::kNotFound) {
    return notFound(kind, namespace_name, name);
  }
  ApiResponse response = statusResponse(200, "",
                                        std::string(kind == kServices ? "service" : "pod") + " \"" +
                                            namespace_name + "/" + name + "\" deleted");
  auto body = json::parse(response.body);
  body.erase("reason");
  body["details"] = {{"name", name}, {"kind", kind}};
  return jsonResponse(200, body);
}

ApiResponse AdminApi::readiness(const ApiRequest& request, const std::string& namespace_name,
                                const std::string& name) const {
  if (!hooks_.writer) return methodNotAllowed(request.method, "GET");
  if (bodyFormat(request.content_type) != BodyFormat::kJson) {
    return unsupportedMediaType(request.content_type, "application/json");
  }
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return statusResponse(400, "BadRequest",
                          "request body: expected a JSON object like {\"ready\": true, "
                          "\"reason\": \"...\"}");
  }
  store::Readiness readiness;
  bool has_ready = false;
  for (const auto& [field, value] : body.items()) {
    if (field == "ready" && value.is_boolean()) {
      readiness.ready = value.get<bool>();
      has_ready = true;
    } else if (field == "reason" && value.is_string()) {
      readiness.reason = value.get<std::string>();
    } else if (field == "ready" || field == "reason") {
      return statusResponse(
          400, "BadRequest",
          field + ": must be " + (field == "ready" ? "true or false" : "a string"));
    } else {
      return statusResponse(400, "BadRequest",
                            "unknown field \"" + field +
                                "\" (a readiness report has \"ready\" "
                                "and \"reason\")");
    }
  }
  if (!has_ready) return statusResponse(400, "BadRequest", "ready: required (true or false)");
  // The prober leaves pods that speak for themselves alone; the prefix is how it knows.
  readiness.reason = std::string(store::kReportedByPod) +
                     (readiness.reason.empty() ? "" : ": " + readiness.reason);
  readiness.changed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // Written first and then read back as one row: a pod created a moment ago (which the watcher
  // may not have published yet) is found, and an unknown pod is left unwritten, since the
  // update matches no row.
  auto changed = hooks_.writer->setReadiness({{namespace_name, name, readiness}});
  if (!changed) return fromError(changed.error());
  auto stored = hooks_.writer->find({store::ObjectKind::kPod, namespace_name, name});
  if (!stored) return fromError(stored.error());
  if (!*stored) return notFound(kPods, namespace_name, name);
  return jsonResponse(200, toJson(std::get<store::Pod>(**stored)));
}

}  // namespace svcbox::app
