#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into corpus/<target>/: for the DNS query path one
query per record form svcbox answers and the bad packets the e2e test sends; for the manifest
readers (YAML and JSON), the config file and the admin API, the documents and requests svcbox
reads every day next to the hostile ones of issue 18. Run once; the files are committed."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples")


def name(text):
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\0"


def query(qname, qtype, edns=None, flags=0x0100, qd=1):
    packet = struct.pack("!HHHHHH", 7, flags, qd, 0, 0, 1 if edns else 0) + name(qname)
    packet += struct.pack("!HH", qtype, 1)
    if edns:
        packet += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return packet


query_seeds = {
    "a": query("web.default.svc.cluster.local", 1),
    "a-short": query("web.default.svc", 1, 1232),
    "aaaa": query("web.default.svc.cluster.local", 28),
    "srv": query("_http._tcp.db.prod.svc.cluster.local", 33, 4096),
    "ptr": query("10.0.96.10.in-addr.arpa", 12),
    "cname": query("ext.default.svc.cluster.local", 1),
    "nx": query("nope.default.svc.cluster.local", 1),
    "soa": query("cluster.local", 6),
    "forward": query("example.org", 1),
    "headless": query("db.prod.svc.cluster.local", 1),
    "response": query("a", 1, flags=0x8100),
    "two-questions": query("a", 1, qd=2),
    "opcode": query("a", 1, flags=0x1100),
    "pointer": struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",
    "runt": b"\0\1",
    "upstream-answer": struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + name("example.org") +
    b"\0\1\0\1\xc0\x0c\0\1\0\1\0\0\1\x2c\0\4\xc0\0\2\x0a",
}


def example(file_name):
    with open(os.path.join(EXAMPLES, file_name), "rb") as f:
        return f.read()


# Issue 18's first crash: a List that is its own item (SIGSEGV in apply and in serve).
ALIAS_CYCLE = b"&r {kind: List, apiVersion: v1, items: [*r]}\n"
# Issue 18's fan-out: nine levels of ten-fold aliases, 10^9 nodes once expanded.
ALIAS_FAN_OUT = (b"apiVersion: v1\nkind: Service\nmetadata:\n  name: fan\n  a0: &a0 [x]\n" +
                 b"".join(b"  a%d: &a%d [%s]\n" % (n, n, b", ".join([b"*a%d" % (n - 1)] * 10))
                          for n in range(1, 10)) +
                 b"spec: {ports: [{port: 80}]}\n")
DEEP_YAML = b"a: " + b"[" * 70 + b"]" * 70 + b"\n"

POD = b"""apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: prod, labels: {app: db, version: "1"}}
spec:
  hostname: db-0
  subdomain: db
  containers:
  - name: db
    ports: [{name: pg, containerPort: 5432, protocol: TCP}]
    readinessProbe:
      httpGet: {path: /healthz, port: pg}
      periodSeconds: 2
      failureThreshold: 3
  - name: sidecar
    readinessProbe: {tcpSocket: {port: 9000}}
status: {podIP: 10.0.3.2, podIPs: [{ip: 10.0.3.2}, {ip: "fd00::3:2"}]}
"""
ENDPOINTS = b"""apiVersion: v1
kind: Endpoints
metadata: {name: legacy}
subsets:
- addresses: [{ip: 10.0.9.1, hostname: a, targetRef: {kind: Pod, name: legacy-a}}]
  notReadyAddresses: [{ip: 10.0.9.2}]
  ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: legacy-abc, labels: {kubernetes.io/service-name: legacy}}
addressType: IPv4
endpoints:
- addresses: [10.0.9.3]
  conditions: {ready: false}
ports: [{name: http, port: 8080}]
"""
SERVICES = b"""apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  items:
  - apiVersion: v1
    kind: Service
    metadata: {name: db, namespace: prod}
    spec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432, targetPort: pg}]}
- apiVersion: v1
  kind: Service
  metadata: {name: ext, annotations: {note: "an alias"}}
  spec: {type: ExternalName, externalName: example.org}
- apiVersion: v1
  kind: Service
  metadata: {name: sticky}
  spec:
    clusterIP: 10.96.0.20
    clusterIPs: [10.96.0.20]
    sessionAffinity: ClientIP
    sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
    ports: [{port: 53, protocol: UDP}]
"""
manifest_yaml_seeds = {
    "service-test": example("service-test.yaml"),
    "web": example("web.yaml"),
    "pod": POD,
    "endpoints": ENDPOINTS,
    "services-list": SERVICES,
    "alias-cycle": ALIAS_CYCLE,
    "alias-fan-out": ALIAS_FAN_OUT,
    "anchors": b"base: &labels {app: web}\n---\napiVersion: v1\nkind: Pod\n"
    b"metadata: {name: p, labels: *labels}\nspec: {containers: [{name: c}]}\n",
    "deep": DEEP_YAML,
    "label-list": b"apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: [x, y]}}\n"
    b"spec: {containers: [{name: c}]}\n",
    "label-number": b"apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {version: 1, "
    b"beta: yes}}\nspec: {ports: [{port: !!str 80, targetPort: '8080'}]}\n",
    "malformed": b"apiVersion: v1\nkind: Service\nmetadata: {name: [\n  - x\n",
}

# The same objects as JSON, as kubectl and curl send them.
SERVICE_JSON = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
    "spec": {"clusterIP": "10.96.0.10", "selector": {"app": "web"},
             "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]},
}
POD_JSON = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-1", "labels": {"app": "web"}, "annotations": {"note": "caf\u00e9"}},
    "spec": {"containers": [{
        "name": "web", "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1.5},
    }]},
    "status": {"podIP": "10.0.1.2"},
}
SLICE_JSON = {
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv6",
    "endpoints": [{"addresses": ["fd00::1"], "conditions": {"ready": True}}],
    "ports": [{"port": 8080, "name": None}],
}


def dumped(value, **options):
    return json.dumps(value, **options).encode()


manifest_json_seeds = {
    "service": dumped(SERVICE_JSON, indent=2),
    "pod": dumped(POD_JSON),
    "slice": dumped(SLICE_JSON, indent="\t"),
    "list": dumped({"apiVersion": "v1", "kind": "List", "items": [
        SERVICE_JSON, {"apiVersion": "v1", "kind": "List", "items": [POD_JSON]}]}, indent=1),
    "label-number": dumped({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "labels": {"version": 1, "beta": True, "ratio": -2.5e3}},
        "spec": {"containers": [{"name": "c"}]}}),
    "duplicate-key": b'{"apiVersion": "v1", "kind": "Pod", "kind": "Service", "metadata": {}}',
    "deep": b"[" * 70 + b"]" * 70,
    "null": b"null",
    "trailing": b'{"kind": "List", "items": []} {}',
    "malformed": b'{\n  "apiVersion": "v1",\n  "kind": "Service"\n  "metadata": {}\n}',
    "escapes": b'{"apiVersion": "v1", "kind": "Service", '
    b'"metadata": {"name": "a\\u00e9\\ud83d\\ude00\\n"}}',
}

config_seeds = {
    "serve": b"""db: /var/lib/svcbox/registry.db
service-cidr: 10.96.0.0/12
log-format: json
dns-listen: 127.0.0.1:1053
upstream: [1.1.1.1, "8.8.8.8:53"]
allow-recursion:
  - 127.0.0.0/8
  - 10.0.0.0/8
ttl: 5
default-probe: tcp
admin-listen: 127.0.0.1:9153
""",
    "empty": b"",
    "null": b"~\n",
    "scalar": b"just a word\n",
    "nested": b"db: {path: /x}\nupstream: [[1.1.1.1]]\n",
    "null-value": b"db:\nupstream: [~]\n",
    "two-documents": b"db: /a\n---\ndb: /b\n",
    "alias-cycle": ALIAS_CYCLE,
    "alias-fan-out": ALIAS_FAN_OUT,
    "deep": DEEP_YAML,
}


def request(method, target, body=b"", content_type="", authorization="Bearer fuzz-token",
            host="127.0.0.1:9153", origin=""):
    """The admin API target's input: the fields the handler sees, separated by newlines."""
    head = [method, target, authorization, host, origin, content_type]
    return "\n".join(head).encode() + b"\n" + body


API = "/api/v1/namespaces/default"
NEW_SERVICE = dict(SERVICE_JSON, metadata={"name": "api", "namespace": "default"})
NEW_SERVICE["spec"] = {"selector": {"app": "web"}, "ports": [{"port": 8080}]}
admin_api_seeds = {
    "healthz": request("GET", "/healthz", authorization=""),
    "readyz": request("GET", "/readyz?verbose", authorization=""),
    "metrics": request("GET", "/metrics", authorization=""),
    "list-services": request("GET", "/api/v1/services"),
    "list-pods": request("HEAD", API + "/pods"),
    "get-pod": request("GET", API + "/pods/web-1"),
    "get-missing": request("GET", API + "/services/nope"),
    "create-json": request("POST", API + "/services", dumped(NEW_SERVICE), "application/json"),
    "replace-yaml": request("PUT", API + "/services/web",
                            b"apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                            b"spec: {selector: {app: web}, "
                            b"ports: [{port: 81, targetPort: 8080}]}\n",
                            "application/yaml; charset=utf-8"),
    "create-pod-json": request("POST", API + "/pods", dumped(POD_JSON | {
        "metadata": {"name": "web-9", "labels": {"app": "web"}}}), "application/json"),
    "delete": request("DELETE", API + "/services/api"),
    "readiness": request("PUT", API + "/pods/web-1/readiness",
                         b'{"ready": false, "reason": "draining"}', "application/json"),
    "alias-cycle": request("POST", API + "/pods", ALIAS_CYCLE, "application/yaml"),
    "alias-fan-out": request("POST", API + "/services", ALIAS_FAN_OUT, "text/yaml"),
    "deep-json": request("POST", API + "/pods", manifest_json_seeds["deep"], "application/json"),
    "wrong-type": request("POST", API + "/services", dumped(NEW_SERVICE), "text/plain"),
    "no-token": request("GET", "/api/v1/pods", authorization=""),
    "bad-host": request("GET", "/api/v1/pods", host="evil.example:9153"),
    "allowed-origin": request("GET", "/api/v1/services", host="svcbox.example",
                              origin="http://svcbox.example"),
    "cross-origin": request("POST", API + "/services", dumped(NEW_SERVICE), "application/json",
                            origin="http://evil.example"),
    "ipv6-host": request("GET", "/api/v1/services", host="[::1]:9153"),
    "bad-method": request("PATCH", API + "/services/web", b"{}", "application/json"),
}

for target, seeds in {"query": query_seeds, "manifest_yaml": manifest_yaml_seeds,
                      "manifest_json": manifest_json_seeds, "config": config_seeds,
                      "admin_api": admin_api_seeds}.items():
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for key, data in seeds.items():
        with open(os.path.join(folder, key), "wb") as f:
            f.write(data)
