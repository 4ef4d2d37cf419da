#include "app/manifest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/unit/temp_dir.h"

namespace svcbox::app {
namespace {

using store::EndpointSet;
using store::Pod;
using store::Service;

std::vector<ManifestObject> parse(const std::string& text, ManifestOptions options = {}) {
  std::vector<std::string> warnings;
  return parseManifest(text, "m.yaml", options, warnings);
}

std::string errorOf(const std::string& text, ManifestOptions options = {}) {
  try {
    parse(text, options);
  } catch (const ManifestError& error) {
    return error.what();
  }
  return "no error";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ManifestTest, ReadsTheSeedExampleUnchanged) {
  auto objects = parse(readFile(std::string(SVCBOX_SOURCE_DIR) + "/examples/service-test.yaml"));
  ASSERT_EQ(objects.size(), 3u);
  const auto& service = std::get<Service>(objects[0].object);
  EXPECT_EQ(service.name, "service-test");
  EXPECT_EQ(service.namespace_name, "default");
  EXPECT_EQ(service.selector->at("app"), "server_pod1");
  ASSERT_EQ(service.ports.size(), 1u);
  EXPECT_EQ(service.ports[0].port, 80);
  EXPECT_EQ(service.ports[0].target_port.number, 8080);
  EXPECT_FALSE(service.cluster_ip);
  const auto& pod = std::get<Pod>(objects[2].object);
  EXPECT_EQ(pod.name, "server-pod-2");
  EXPECT_EQ(pod.ips[0].toString(), "10.0.2.2");
  EXPECT_EQ(pod.ports[0].container_port, 8080);
  EXPECT_EQ(objects[2].position.line, 19);
}

TEST(ManifestTest, UnknownFieldsAreErrorsWithTheirPosition) {
  std::string text =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n    "
      "tragetPort: 8080\n";
  auto error = errorOf(text);
  EXPECT_NE(error.find("m.yaml:8:5:"), std::string::npos) << error;
  EXPECT_NE(error.find("unknown field \"spec.ports[0].tragetPort\""), std::string::npos) << error;

  ManifestOptions warn;
  warn.validation = Validation::kWarn;
  std::vector<std::string> warnings;
  auto objects = parseManifest(text, "m.yaml", warn, warnings);
  EXPECT_EQ(objects.size(), 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("tragetPort"), std::string::npos);
}

TEST(ManifestTest, KnownKubernetesFieldsSvcboxIgnoresAreAccepted) {
  std::string text = R"(apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {a: b}, uid: x}
spec:
  restartPolicy: Always
  containers:
  - name: web
    image: nginx
    env: [{name: A, value: b}]
    resources: {limits: {cpu: 1}}
status: {phase: Running, podIP: 10.0.0.1}
)";
  EXPECT_EQ(parse(text).size(), 1u);
}

TEST(ManifestTest, ReportsBadValuesWithFileLineAndField) {
  EXPECT_NE(
      errorOf(
          "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 70000}]\n")
          .find("m.yaml:5:18: Service \"web\": spec.ports[0].port: 70000 is out of range"),
      std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: "
                    "80, protocol: SCTP}]\n")
                .find("protocol \"SCTP\" is not supported"),
            std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: "
                    "c}]}\nstatus: {podIP: 10.0.0.300}\n")
                .find("status.podIP: \"10.0.0.300\" is not an IPv4 or IPv6 address"),
            std::string::npos);
  EXPECT_NE(
      errorOf("apiVersion: apps/v1\nkind: Service\nmetadata: {name: web}\n").find("use \"v1\""),
      std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Deployment\nmetadata: {name: web}\n")
                .find("not served by svcbox"),
            std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\n").find("metadata: this field is required"),
            std::string::npos);
  EXPECT_NE(errorOf("kind: [\n").find("m.yaml:"), std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: NodePort, "
                    "ports: [{port: 80}]}\n")
                .find("not supported"),
            std::string::npos);
}

TEST(ManifestTest, LabelSelectorAndAnnotationValuesMustBeStringsAsKubectlInsists) {
  const std::string pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n";
  const std::string spec = "spec: {containers: [{name: c}]}\n";
  EXPECT_NE(errorOf(pod + "  labels: {version: 1}\n" + spec)
                .find("m.yaml:5:21: Pod \"p\": metadata.labels.version: \"1\" is a number in "
                      "YAML, and this value must be a string: quote it (\"1\")"),
            std::string::npos);
  for (const char* value : {"true", "yes", "on", "N", "1.5", "0x1F", "-3", "1e3", ".inf"}) {
    EXPECT_NE(errorOf(pod + "  annotations: {a: " + value + "}\n" + spec).find("quote it"),
              std::string::npos)
        << value;
  }
  EXPECT_NE(errorOf(pod + "  labels: {a: [x, y]}\n" + spec).find("expected a single value"),
            std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {v: 2}}\n"
                    "spec: {ports: [{port: 80}]}\n")
                .find("quote it"),
            std::string::npos);
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                    "spec: {selector: {enabled: true}, ports: [{port: 80}]}\n")
                .find("spec.selector.enabled"),
            std::string::npos);
  // Quoted, or words that only look alike, are strings.
  auto objects = parse(pod + "  labels: {version: \"1\", tier: one, b: 'true', c: 1.2.3}\n" + spec);
  ASSERT_EQ(objects.size(), 1u);
  const auto& labels = std::get<store::Pod>(objects[0].object).labels;
  EXPECT_EQ(labels.at("version"), "1");
  EXPECT_EQ(labels.at("b"), "true");
  EXPECT_EQ(labels.at("c"), "1.2.3");
}

TEST(ManifestTest, DuplicateKeysAreErrors) {
  EXPECT_NE(
      errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"
              "  ports: [{port: 81}]\n")
          .find("m.yaml:6:3: Service \"web\": spec.ports: the key appears twice"),
      std::string::npos);
}

TEST(ManifestTest, TargetPortIsANumberOrAName) {
  auto objects = parse(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n"
      "  - {name: a, port: 80, targetPort: http}\n  - {name: b, port: 81}\n  - {name: c, port: 82, "
      "targetPort: \"8080\"}\n");
  const auto& ports = std::get<Service>(objects[0].object).ports;
  EXPECT_EQ(ports[0].target_port.name, "http");
  EXPECT_EQ(ports[1].target_port.number, 81);  // defaults to port
  // A quoted number is a string in Kubernetes' IntOrString, hence a (bad) port name.
  EXPECT_TRUE(ports[2].target_port.isNamed());
}

TEST(ManifestTest, NamespaceFlagFillsInAndMustAgree) {
  ManifestOptions options;
  options.namespace_name = "prod";
  options.namespace_given = true;
  auto objects =
      parse("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
            options);
  EXPECT_EQ(std::get<Service>(objects[0].object).namespace_name, "prod");
  EXPECT_NE(errorOf("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: dev}\nspec: "
                    "{ports: [{port: 80}]}\n",
                    options)
                .find("does not match -n prod"),
            std::string::npos);
}

TEST(ManifestTest, HeadlessExternalNameAndAffinity) {
  auto objects = parse(R"(apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
---
apiVersion: v1
kind: Service
metadata: {name: search}
spec: {type: ExternalName, externalName: example.com}
)");
  const auto& headless = std::get<Service>(objects[0].object);
  EXPECT_TRUE(headless.headless);
  EXPECT_EQ(headless.session_affinity, store::SessionAffinity::kClientIP);
  EXPECT_EQ(headless.affinity_timeout_seconds, 60u);
  const auto& external = std::get<Service>(objects[1].object);
  EXPECT_EQ(external.type, store::ServiceType::kExternalName);
  EXPECT_EQ(external.external_name, "example.com");
}

TEST(ManifestTest, ReadinessProbes) {
  auto objects = parse(R"(apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: web}}
spec:
  containers:
  - name: web
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 2
      failureThreshold: 5
status: {podIP: 10.0.0.1, podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
)");
  const auto& pod = std::get<Pod>(objects[0].object);
  ASSERT_TRUE(pod.readiness_probe);
  EXPECT_EQ(pod.readiness_probe->kind, store::Probe::Kind::kHttpGet);
  EXPECT_EQ(pod.readiness_probe->port.name, "http");
  EXPECT_EQ(pod.readiness_probe->path, "/healthz");
  EXPECT_EQ(pod.readiness_probe->period_seconds, 2u);
  EXPECT_EQ(pod.readiness_probe->failure_threshold, 5u);
  EXPECT_EQ(pod.readiness_probe->timeout_seconds, 1u);  // Kubernetes default
  EXPECT_EQ(pod.ips.size(), 2u);
  EXPECT_NE(
      errorOf("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n"
              "    readinessProbe: {exec: {command: [true]}}\n")
          .find("exec and grpc are not supported"),
      std::string::npos);
}

TEST(ManifestTest, EndpointsAndEndpointSlices) {
  auto objects = parse(R"(apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 192.168.1.5}]
  notReadyAddresses: [{ip: 192.168.1.6}]
  ports: [{port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-x, labels: {kubernetes.io/service-name: db2}}
addressType: IPv4
endpoints:
- addresses: [192.168.2.5]
  conditions: {ready: false}
- addresses: [192.168.2.6]
ports: [{name: pg, port: 5432}]
)");
  const auto& endpoints = std::get<EndpointSet>(objects[0].object);
  EXPECT_EQ(endpoints.service_name, "db");
  ASSERT_EQ(endpoints.groups.size(), 1u);
  EXPECT_TRUE(endpoints.groups[0].addresses[0].ready);
  EXPECT_FALSE(endpoints.groups[0].addresses[1].ready);
  const auto& slice = std::get<EndpointSet>(objects[1].object);
  EXPECT_EQ(slice.kind, EndpointSet::Kind::kEndpointSlice);
  EXPECT_EQ(slice.service_name, "db2");
  EXPECT_FALSE(slice.groups[0].addresses[0].ready);
  EXPECT_TRUE(slice.groups[0].addresses[1].ready);  // no condition: ready
  EXPECT_NE(errorOf("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: "
                    "x}\naddressType: IPv4\n")
                .find("kubernetes.io/service-name"),
            std::string::npos);
}

TEST(ManifestTest, ListKindAndEmptyDocuments) {
  auto objects = parse(R"(---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}}
- {apiVersion: v1, kind: Service, metadata: {name: b}, spec: {ports: [{port: 80}]}}
)");
  EXPECT_EQ(objects.size(), 2u);
}

TEST(ManifestTest, LocateFallsBackToTheClosestParentField) {
  auto objects = parse(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.5\n  "
      "ports: [{port: 80}]\n");
  EXPECT_EQ(objects[0].locate("spec.clusterIP"), "m.yaml:5:14");
  EXPECT_EQ(objects[0].locate("spec.ports[0].nothing"), "m.yaml:6:10");
  EXPECT_EQ(objects[0].locate(""), "m.yaml:1:1");
}

std::vector<ManifestObject> parseJson(const std::string& text, ManifestOptions options = {}) {
  std::vector<std::string> warnings;
  return parseManifest(text, "m.json", options, warnings, ManifestFormat::kJson);
}

std::string jsonErrorOf(const std::string& text) {
  try {
    parseJson(text);
  } catch (const ManifestError& error) {
    return error.what();
  }
  return "no error";
}

TEST(ManifestJsonTest, JsonReadsIntoTheSameObjectsAsYaml) {
  auto objects = parseJson(R"({
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "v1", "kind": "Service",
       "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}]},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}},
     "spec": {"containers": [{"name": "web", "ports": [{"containerPort": 8080}],
                              "readinessProbe": {"httpGet": {"port": "http", "path": "/ready"}}}]},
     "status": {"podIP": "10.0.1.2"}}
  ]
})");
  ASSERT_EQ(objects.size(), 2u);  // the Lists flattened, as YAML's are
  const auto& service = std::get<Service>(objects[0].object);
  EXPECT_EQ(service.name, "web");
  EXPECT_EQ(service.namespace_name, "default");
  EXPECT_EQ(service.cluster_ip->toString(), "10.96.0.10");
  EXPECT_EQ(service.ports[0].target_port.number, 8080);
  EXPECT_EQ(objects[0].source, "m.json");
  EXPECT_EQ(objects[0].position.line, 6);
  EXPECT_EQ(objects[0].position.column, 7);
  EXPECT_EQ(objects[0].locate("spec.clusterIP"), "m.json:8:58");
  const auto& pod = std::get<Pod>(objects[1].object);
  EXPECT_EQ(pod.namespace_name, "prod");
  EXPECT_EQ(pod.readiness_probe->port.name, "http");
  EXPECT_EQ(pod.ips[0].toString(), "10.0.1.2");
}

TEST(ManifestJsonTest, FieldErrorsNameTheLineAndColumnInTheJson) {
  auto error = jsonErrorOf(
      "{\"apiVersion\": \"v1\", \"kind\": \"Service\",\n \"metadata\": {\"name\": \"web\"},\n"
      " \"spec\": {\"ports\": [{\"port\": 70000}]}}");
  EXPECT_NE(error.find("m.json:3:30: Service \"web\": spec.ports[0].port: 70000 is out of range"),
            std::string::npos)
      << error;
  // A quoted number is a string in JSON as in YAML: not a port number.
  error = jsonErrorOf(
      R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
          "spec": {"ports": [{"port": "80"}]}})");
  EXPECT_NE(error.find("spec.ports[0].port: \"80\" is not an integer"), std::string::npos) << error;
  error = jsonErrorOf(R"({"apiVersion": "v1", "kind": "Pod", "kind": "Pod"})");
  EXPECT_NE(error.find("m.json:1:37: Pod: kind: the key appears twice"), std::string::npos)
      << error;
  EXPECT_NE(jsonErrorOf("[{\"kind\": \"Service\"}]").find("must be a mapping"), std::string::npos);
}

TEST(ManifestJsonTest, LabelAndAnnotationValuesMustBeJsonStrings) {
  auto pod = [](const std::string& labels) {
    return R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": )" + labels +
           R"(}, "spec": {"containers": [{"name": "c"}]}})";
  };
  EXPECT_NE(jsonErrorOf(pod(R"({"version": 1})"))
                .find("m.json:1:85: Pod \"p\": metadata.labels.version: 1 is a number in JSON, "
                      "and this value must be a string: quote it (\"1\")"),
            std::string::npos)
      << jsonErrorOf(pod(R"({"version": 1})"));
  EXPECT_NE(jsonErrorOf(pod(R"({"a": true})")).find("is a boolean in JSON"), std::string::npos);
  EXPECT_NE(jsonErrorOf(pod(R"({"a": -2.5e3})")).find("quote it"), std::string::npos);
  EXPECT_NE(jsonErrorOf(pod(R"({"a": ["x"]})")).find("expected a single value"), std::string::npos);
  auto objects = parseJson(pod(R"({"version": "1", "b": "true", "c": null})"));
  const auto& labels = std::get<Pod>(objects[0].object).labels;
  EXPECT_EQ(labels.at("version"), "1");
  EXPECT_EQ(labels.at("b"), "true");
  EXPECT_EQ(labels.at("c"), "");  // as YAML's null
}

TEST(ManifestJsonTest, SyntaxErrorsAndDeepNestingAreRefusedWithTheirPosition) {
  auto error =
      jsonErrorOf("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\"\n  \"metadata\": {}\n}");
  EXPECT_NE(error.find("m.json:4:12: not valid JSON: syntax error"), std::string::npos) << error;
  error = jsonErrorOf("{\"apiVersion\": \"v1\", \"metadata\": " + std::string(100, '[') + "}");
  EXPECT_NE(error.find("m.json:1:97: not valid JSON: nested deeper than 64 levels"),
            std::string::npos)
      << error;
  // YAML reads all of these; JSON does not.
  EXPECT_NE(jsonErrorOf("apiVersion: v1\n").find("not valid JSON"), std::string::npos);
  EXPECT_NE(jsonErrorOf("{} # comment").find("not valid JSON"), std::string::npos);
  EXPECT_NE(jsonErrorOf("").find("m.json:1:1: not valid JSON"), std::string::npos);
  EXPECT_TRUE(parseJson("null").empty());
}

TEST(ManifestJsonTest, ApplyReadsJsonFilesAsJsonAndEverythingElseAsYaml) {
  testing::TempDir dir;
  // Valid YAML (a comment), not valid JSON.
  std::string text =
      "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"web\"}}\n# x\n";
  std::ofstream(dir.file("web.json")) << text;
  std::ofstream(dir.file("web.yaml")) << text;
  std::vector<std::string> warnings;
  EXPECT_EQ(loadManifests({dir.file("web.yaml")}, {}, warnings).size(), 1u);
  try {
    loadManifests({dir.file("web.json")}, {}, warnings);
    FAIL() << "a comment was read from a .json file";
  } catch (const ManifestError& error) {
    EXPECT_NE(std::string(error.what()).find(dir.file("web.json") + ":2:1: not valid JSON"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace svcbox::app
