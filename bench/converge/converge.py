#!/usr/bin/env python3
"""converge.py SVCBOX N CHANGES: registry commit -> DNS answering and -> rules installed, at N
Services. Run inside a network namespace made for it (run.sh does): serve writes its rules there.

N ClusterIP Services with 3 pods each, plus one headless twin (same selector) for each Service a
change touches, so one change moves both a DNS answer (the twin's A records) and a rule (the
ClusterIP's DNAT). Changes cycle through endpoint added, endpoint removed and readiness flip; each
goes through serve's admin API, the path a pod registering itself takes. Latency is counted from
the commit time the registry recorded (meta committed_ms, written inside the transaction, so a
little before the commit really ends) until a UDP query gets the new answer, and until the
router's log line for a sync of that registry version (stamped by serve right after the kernel
commits, ms resolution; read from serve's log file, which costs serve nothing, unlike scraping
/metrics every few ms on two cores); the same from just before the
request is sent is reported too (*_from_send: includes the API's own work). Prints one JSON line."""
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

svcbox, services, changes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
DNS_PORT, ADMIN_PORT = 5300, 9154
GAP = 0.2  # between changes: longer than the router's 100 ms coalescing window
DEADLINE = 5.0  # per change and target; a miss is reported, never waited for longer


def pod_ip(n):
    return f"10.{1 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def pod_doc(name, app, ip):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "bench", "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
            "status": {"podIP": ip}}


targets = [(i * 7919) % services for i in range(min(changes, services))]
targets = list(dict.fromkeys(targets))
docs = []
for i in range(services):
    docs.append(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                            "spec": {"selector": {"app": f"a{i}"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    for j in range(3):
        docs.append(json.dumps(pod_doc(f"p-{i}-{j}", f"a{i}", pod_ip(i * 3 + j))))
for i in targets:
    docs.append(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"hl-{i}", "namespace": "bench"},
                            "spec": {"clusterIP": "None", "selector": {"app": f"a{i}"},
                                     "ports": [{"port": 80, "targetPort": 8080}]}}))

work = tempfile.mkdtemp(prefix="svcbox-converge-")
db = os.path.join(work, "registry.db")
env = {k: v for k, v in os.environ.items() if not k.startswith("SVCBOX_")}
env["SVCBOX_DB"] = db
subprocess.run([svcbox, "apply", "-f", "-"], input="\n---\n".join(docs), env=env, check=True,
               capture_output=True, text=True, timeout=600)
log = open(os.path.join(work, "serve.log"), "w")
serve = subprocess.Popen([svcbox, "serve", "--proxy-mode", "iptables", "--dns-listen", f"127.0.0.1:{DNS_PORT}",
                          "--admin-listen", f"127.0.0.1:{ADMIN_PORT}", "--upstream", "127.0.0.1:9",
                          "--default-probe", "none", "--log-level", os.environ.get("SERVE_LOG_LEVEL", "info")], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
admin = None
token = None


def request(method, path, body=None):
    global admin, token
    if token is None and path.startswith("/api/"):
        # serve made it at start; /readyz, awaited first, is answered only once it exists
        token = subprocess.run([svcbox, "admin-token"], env=env, check=True, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for _ in range(2):
        try:
            if admin is None:
                admin = http.client.HTTPConnection("127.0.0.1", ADMIN_PORT, timeout=10)
            admin.request(method, path, body=None if body is None else json.dumps(body),
                          headers=headers)
            response = admin.getresponse()
            return response.status, response.read().decode()
        except (OSError, http.client.HTTPException):
            admin = None
    raise RuntimeError(f"{method} {path}: no answer")


class SyncLog:
    """The router's log line for each sync, written right after the kernel commits: when the rules
    of a registry version were in the kernel, read from serve's log without asking serve anything
    (scraping /metrics every few ms took CPU the router needs on two cores)."""
    LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z info router: (?:partial|full) sync "
                      r"of snapshot (\d+):")

    def __init__(self, path):
        self.file = open(path)
        self.pending = ""
        self.installed = []  # (version, wall-clock seconds)

    def poll(self):
        self.pending += self.file.read()
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            found = self.LINE.match(line)
            if found:
                stamp = datetime.datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                self.installed.append((int(found.group(2)),
                                       stamp.replace(tzinfo=datetime.timezone.utc).timestamp()))

    def installed_at(self, version):
        """Wall-clock time of the first sync that installed `version` or a later one."""
        self.poll()
        return next((at for v, at in self.installed if v >= version), None)


def metric(text, name):
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1


try:
    started = time.monotonic()
    while True:
        try:
            if request("GET", "/readyz")[0] == 200:
                break
        except RuntimeError:
            pass
        if time.monotonic() - started > 300 or serve.poll() is not None:
            raise SystemExit("serve did not become ready")
        time.sleep(0.05)
    ready_after = time.monotonic() - started
    sync_log = SyncLog(os.path.join(work, "serve.log"))

    registry = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.settimeout(0.05)

    def committed():
        """The registry's version and the wall-clock time its commit recorded (ms resolution)."""
        rows = dict(registry.execute(
            "SELECT key, value FROM meta WHERE key IN ('generation', 'committed_ms')").fetchall())
        return int(rows["generation"]), int(rows["committed_ms"]) / 1000

    def answer(name, query_id):
        question = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
        dns.sendto(struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0\x01\0\x01",
                   ("127.0.0.1", DNS_PORT))
        while True:
            try:
                reply = dns.recv(4096)
            except socket.timeout:
                return None
            if struct.unpack("!H", reply[:2])[0] == query_id:
                break
        count = struct.unpack("!H", reply[6:8])[0]
        return {socket.inet_ntoa(reply[-4 - 16 * k:len(reply) - 16 * k]) for k in range(count)}

    ready = {i: {pod_ip(i * 3 + j) for j in range(3)} for i in targets}
    extra_ip = 200000
    results = []
    query_id = 0
    for c in range(changes):
        i = targets[c % len(targets)]
        kind = ("endpoint added", "endpoint removed", "readiness flip")[c % 3]
        if kind == "endpoint added":
            ip = pod_ip(extra_ip)
            extra_ip += 1
            call = ("PUT", f"/api/v1/namespaces/bench/pods/x-{c}", pod_doc(f"x-{c}", f"a{i}", ip))
            ready[i].add(ip)
        elif kind == "endpoint removed":
            call = ("DELETE", f"/api/v1/namespaces/bench/pods/p-{i}-2", None)
            ready[i].discard(pod_ip(i * 3 + 2))
        else:
            call = ("PUT", f"/api/v1/namespaces/bench/pods/p-{i}-0/readiness",
                    {"ready": False, "reason": "bench"})
            ready[i].discard(pod_ip(i * 3))
        expected = set(ready[i])
        sent = time.monotonic()
        status, body = request(*call)
        if status >= 300:
            raise SystemExit(f"{call[0]} {call[1]}: {status} {body}")
        target_version, committed_at = committed()
        # Wall clock now minus monotonic now: turns a monotonic observation into wall-clock time.
        offset = time.time() - time.monotonic()
        dns_at = rules_at = None
        while (dns_at is None or rules_at is None) and time.monotonic() - sent < DEADLINE:
            if dns_at is None:
                query_id = (query_id + 1) & 0xFFFF
                if answer(f"hl-{i}.bench.svc.cluster.local", query_id) == expected:
                    dns_at = time.monotonic()
            if rules_at is None:
                installed = sync_log.installed_at(target_version)
                if installed is not None:
                    rules_at = installed - offset  # back to this process's monotonic clock
            time.sleep(0.002)
        results.append({"kind": kind,
                        "dns_ms": None if dns_at is None else (dns_at + offset - committed_at) * 1000,
                        "rules_ms": None if rules_at is None else (rules_at + offset - committed_at) * 1000,
                        "dns_from_send_ms": None if dns_at is None else (dns_at - sent) * 1000,
                        "rules_from_send_ms": None if rules_at is None else (rules_at - sent) * 1000})
        time.sleep(GAP)

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    summary = {"services": services, "changes": changes, "ready_after_s": round(ready_after, 2),
               "by_kind": {k: sum(1 for r in results if r["kind"] == k) for k in
                           ("endpoint added", "endpoint removed", "readiness flip")}}
    for target in ("dns", "rules", "dns_from_send", "rules_from_send"):
        values = [r[f"{target}_ms"] for r in results if r[f"{target}_ms"] is not None]
        summary[target] = {"p50": round(pct(values, 50), 1), "p99": round(pct(values, 99), 1),
                           "max": round(max(values), 1), "missed": len(results) - len(values)}
    _, text = request("GET", "/metrics")
    # The log and the metrics must agree on what is installed: a check on the log parsing.
    sync_log.poll()
    installed_metric = metric(text, "svcbox_sync_proxy_rules_installed_version")
    if not sync_log.installed or sync_log.installed[-1][0] != installed_metric:
        raise SystemExit(f"sync log says {sync_log.installed[-1:]}, metrics say {installed_metric}")
    summary["self_reported"] = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^svcbox_network_programming_duration_seconds_(sum|count)\{target="rules"\} (\S+)$', text, re.M)}
    print(json.dumps(summary), flush=True)
finally:
    serve.terminate()
    try:
        serve.wait(timeout=10)
    except subprocess.TimeoutExpired:
        serve.kill()
    subprocess.run([svcbox, "cleanup"], env=env, capture_output=True, timeout=60)
    log.close()
    if os.environ.get("KEEP_SERVE_LOG"):
        shutil.copy(os.path.join(work, "serve.log"), os.environ["KEEP_SERVE_LOG"])
    shutil.rmtree(work, ignore_errors=True)
