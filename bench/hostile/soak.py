#!/usr/bin/env python3
"""bench/hostile/soak: svcbox serve under a steady mixed load for SOAK_SECONDS (issue 21, "Figures").

usage: soak.py SVCBOX_BINARY      (soak.sh runs it inside a network namespace made for it, under
                                   flock /tmp/bench.lock; it refuses to run anywhere else)

SERVICES ClusterIP Services (PODS_PER_SERVICE pods each, in NAMESPACES namespaces) are applied
with `svcbox apply -f -`; serve runs with --proxy-mode iptables (its rules exist only in this
namespace), DNS on 127.0.0.1:53, forwarding other names to soak_upstream.py on 127.0.0.1:5300,
--default-probe none, the admin API on 127.0.0.1:9153. For the whole run, at fixed rates:
- dnsperf over UDP (UDP_QPS) and over TCP (TCP_QPS), one run each, from a query file mixing
  cluster names (A of Services, SRV, PTR of ClusterIPs, NXDOMAIN names) and forwarded names
  (A answered by the upstream, NXDOMAIN from the upstream);
- admin API writes with the token (API_RATE a second, in a cycle): PUT a new pod into a random
  Service, PUT readiness false on a pod, PUT readiness true on the pod that went down longest
  ago, DELETE the oldest pod the churn added. Pod and not-ready counts stay constant, so the
  registry does not grow; every write changes a Service's endpoints, so the rules churn.
Every 10 s a sample goes to results/soak-<timestamp>.csv (written as it goes): serve's RSS (and
its lowest value since the last sample, read every 0.5 s; where it is: [heap], other anonymous mappings, file-backed pages), open fds, dnsperf's answers
and lost queries so far (its "> T" lines), API writes and errors, the registry version, serve's
sync and DNS counters, and duplicated SVCBOX- lines in iptables-legacy-save (nat and filter). At
the end the figures are printed against the goals (after the first WARMUP_SECONDS: RSS growth
<= 2 MiB, judged on the lowest RSS over the last minute against the lowest over the minute after
the warm-up, so a table copy one sync has in flight at a sample's instant does not count, fds growth <= 10, 0 crashes, 0 lost answers, 0 duplicated rules) with the RSS curve,
also saved as results/soak-<timestamp>.txt; when a goal is missed, serve's log (gzip) and
dnsperf's losses and totals are saved beside it. Exits 1 when a goal is missed.
"""
import collections
import csv
import datetime
import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SERVICES = int(os.environ.get("SERVICES", "10000"))
PODS_PER_SERVICE = int(os.environ.get("PODS_PER_SERVICE", "3"))
NAMESPACES = int(os.environ.get("NAMESPACES", "10"))
UDP_QPS = int(os.environ.get("UDP_QPS", "2000"))
TCP_QPS = int(os.environ.get("TCP_QPS", "200"))
API_RATE = float(os.environ.get("API_RATE", "5"))
WARMUP_SECONDS = int(os.environ.get("WARMUP_SECONDS", str(min(120, SOAK_SECONDS // 3))))
SAMPLE_SECONDS = 10
FLOOR_STEP_SECONDS = 0.5
FLOOR_WINDOW_SECONDS = 60  # the RSS floor compared: its lowest value over this long
DNSPERF_TIMEOUT = 5      # dnsperf -t: a query unanswered this long is lost
UPSTREAM_TTL = 5         # the forwarded answers' TTL: serve's cache expires them all the time
FORWARD_NAMES = 2000
QUERY_LINES = 20000
CHURN_PODS = 50          # pods the churn adds and deletes, alive at any time
FLAPPED_PODS = 20        # pods held not ready at any time
DNS, UPSTREAM, ADMIN = ("127.0.0.1", 53), ("127.0.0.1", 5300), ("127.0.0.1", 9153)
GOALS = {"rss_growth_mib": 2.0, "fds_growth": 10, "crashes": 0, "lost": 0, "dup_rules": 0}
MIB = 1024.0  # kB per MiB: /proc reports kB


def pod_ip(n):
    return f"10.{1 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def cluster_ip(s):
    n = (10 << 24) | (96 << 16) | (1 << 8)  # 10.96.1.0 + s, inside the default 10.96.0.0/12
    n += s
    return ".".join(str((n >> shift) & 255) for shift in (24, 16, 8, 0))


def namespace_of(s):
    return f"ns-{s % NAMESPACES}"


def pod_doc(namespace, name, service, ip):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": f"a{service}"}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]},
            "status": {"podIP": ip}}


def churn_ip(seq):
    return pod_ip(SERVICES * PODS_PER_SERVICE + seq % 4096)


def manifest(rng, churn):
    docs = []
    for s in range(SERVICES):
        ns = namespace_of(s)
        docs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": f"svc-{s}", "namespace": ns},
                     "spec": {"clusterIP": cluster_ip(s), "selector": {"app": f"a{s}"},
                              "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                         "protocol": "TCP"}]}})
        for j in range(PODS_PER_SERVICE):
            docs.append(pod_doc(ns, f"p-{s}-{j}", s, pod_ip(s * PODS_PER_SERVICE + j)))
    for seq in range(CHURN_PODS):
        s = rng.randrange(SERVICES)
        docs.append(pod_doc(namespace_of(s), f"churn-{seq}", s, churn_ip(seq)))
        churn.append((namespace_of(s), f"churn-{seq}"))
    return "\n---\n".join(json.dumps(d) for d in docs)


def query_file(rng):
    """70 % cluster names (40 A, 10 SRV, 10 PTR, 10 NXDOMAIN), 30 % forwarded (20 A, 10 NXDOMAIN)."""
    lines = []
    for j in range(QUERY_LINES):
        s = rng.randrange(SERVICES)
        zone = f"{namespace_of(s)}.svc.cluster.local"
        kind = j % 10
        if kind < 4:
            lines.append(f"svc-{s}.{zone} A")
        elif kind == 4:
            lines.append(f"_http._tcp.svc-{s}.{zone} SRV")
        elif kind == 5:
            lines.append(".".join(reversed(cluster_ip(s).split("."))) + ".in-addr.arpa PTR")
        elif kind == 6:
            lines.append(f"nope-{s}.{zone} A")
        elif kind < 9:
            lines.append(f"h{rng.randrange(FORWARD_NAMES)}.example.test A")
        else:
            lines.append(f"nx{rng.randrange(FORWARD_NAMES)}.example.test A")
    return "\n".join(lines) + "\n"


class Admin:
    """One keep-alive connection to serve's admin server, opened again after an error."""

    def __init__(self, token=None):
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, timeout=10):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last = None
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(*ADMIN, timeout=timeout)
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as error:
                last = error
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None, f"no answer: {last}"


class Churn(threading.Thread):
    """API writes at a fixed rate: PUT pod, readiness false, readiness true, DELETE pod."""

    def __init__(self, admin, rng, churn):
        super().__init__(daemon=True)
        self.admin, self.rng, self.churn = admin, rng, churn
        self.stop = threading.Event()
        self.flapped = collections.deque()
        self.next_seq = CHURN_PODS
        self.writes = 0
        self.errors = 0
        self.error_examples = []
        self.by_kind = collections.Counter()
        self.late = 0  # cycles the writer fell more than a second behind its schedule
        self.latencies = []
        self.lock = threading.Lock()

    def random_base_pod(self):
        while True:
            s, j = self.rng.randrange(SERVICES), self.rng.randrange(PODS_PER_SERVICE)
            if (s, j) not in self.flapped:
                return s, j

    def call(self, kind, method, path, body, ok):
        started = time.monotonic()
        status, text = self.admin.request(method, path, body)
        elapsed = time.monotonic() - started
        with self.lock:
            self.writes += 1
            self.by_kind[kind] += 1
            self.latencies.append(elapsed)
            if status not in ok:
                self.errors += 1
                if len(self.error_examples) < 5:
                    self.error_examples.append(f"{method} {path}: {status} {text[:200]}")

    def step(self, k):
        op = k % 4
        if op == 0:
            s = self.rng.randrange(SERVICES)
            ns, name = namespace_of(s), f"churn-{self.next_seq}"
            self.call("PUT pod", "PUT", f"/api/v1/namespaces/{ns}/pods/{name}",
                      pod_doc(ns, name, s, churn_ip(self.next_seq)), (200, 201))
            self.churn.append((ns, name))
            self.next_seq += 1
        elif op == 3:
            ns, name = self.churn.popleft()
            self.call("DELETE pod", "DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", None, (200,))
        elif op == 1 or len(self.flapped) < FLAPPED_PODS:
            s, j = self.random_base_pod()
            self.call("readiness false", "PUT",
                      f"/api/v1/namespaces/{namespace_of(s)}/pods/p-{s}-{j}/readiness",
                      {"ready": False, "reason": "soak: flapping"}, (200,))
            self.flapped.append((s, j))
        else:
            s, j = self.flapped.popleft()
            self.call("readiness true", "PUT",
                      f"/api/v1/namespaces/{namespace_of(s)}/pods/p-{s}-{j}/readiness",
                      {"ready": True, "reason": "soak: back"}, (200,))

    def run(self):
        period = 1.0 / API_RATE
        next_at = time.monotonic()
        k = 0
        while not self.stop.is_set():
            now = time.monotonic()
            if now < next_at:
                self.stop.wait(next_at - now)
                continue
            self.step(k)
            k += 1
            next_at += period
            if time.monotonic() - next_at > 1.0:
                self.late += 1
                next_at = time.monotonic()


class DnsperfLog:
    """Counts a running dnsperf -v output: answers ("> RCODE ...") and losses ("> T ...")."""

    def __init__(self, path):
        self.path = path
        self.file = None
        self.pending = b""
        self.answered = 0
        self.lost = 0

    def poll(self):
        if self.file is None:
            try:
                self.file = open(self.path, "rb")
            except OSError:
                return
        self.pending += self.file.read()
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.startswith(b"> T "):
                self.lost += 1
            elif line.startswith(b"> "):
                self.answered += 1

    def totals(self):
        with open(self.path, errors="replace") as f:
            text = f.read()
        figures = {}
        for key, pattern in (("sent", r"Queries sent:\s+(\d+)"), ("completed", r"Queries completed:\s+(\d+)"),
                             ("lost", r"Queries lost:\s+(\d+)"), ("reconnections", r"Reconnections:\s+(\d+)"),
                             ("average_latency", r"Average Latency \(s\):\s+([0-9.]+) \(min [0-9.]+, max ([0-9.]+)\)")):
            found = re.search(pattern, text)
            if found:
                figures[key] = found.group(1) if key != "average_latency" else (found.group(1), found.group(2))
        found = re.search(r"Response codes:\s+(.*)", text)
        figures["rcodes"] = found.group(1).strip() if found else "?"
        return figures


def vm_rss(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
    except (OSError, AttributeError):
        return None


def proc_status(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, hwm, fds, cpu
    except (OSError, AttributeError):
        return None


def memory_split(pid):
    """Where serve's RSS is, in kB: the main heap ([heap], brk), other anonymous mappings (malloc's
    thread arenas and its mmap'ed large blocks, thread stacks), file-backed pages (the binary and
    libraries as their code is touched), and the number of mappings. Tells a growing heap from
    code paged in late."""
    heap = anon = files = maps = 0
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
                    fields = line.split()
                    name = fields[5] if len(fields) > 5 else ""
                    maps += 1
                elif line.startswith("Rss:"):
                    kb = int(line.split()[1])
                    if name == "[heap]":
                        heap += kb
                    elif name == "" or name.startswith("[anon") or name == "[stack]":
                        anon += kb
                    else:
                        files += kb
    except OSError:
        return None
    return heap, anon, files, maps


def metric_values(text):
    values = {}
    for line in text.splitlines():
        match = re.match(r"(svcbox_\w+)(\{[^}]*\})? (\S+)$", line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def duplicated_rules():
    """(extra copies of SVCBOX- lines in nat and filter, SVCBOX- rules in nat, ms taken, examples)."""
    started = time.monotonic()
    duplicates, nat_rules, examples = 0, 0, []
    for table in ("nat", "filter"):
        text = subprocess.run(["iptables-legacy-save", "-t", table], capture_output=True,
                              text=True, timeout=60, check=True).stdout
        counts = collections.Counter(line for line in text.splitlines() if "SVCBOX-" in line)
        for line, count in counts.items():
            if count > 1:
                duplicates += count - 1
                if len(examples) < 3:
                    examples.append(f"{table}: {count}x {line}")
        if table == "nat":
            nat_rules = sum(count for line, count in counts.items() if line.startswith("-A "))
    return duplicates, nat_rules, (time.monotonic() - started) * 1000, examples


def ask(name, qtype, ident):
    """(rcode, answer count) of one UDP question to serve."""
    question = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question +
                    struct.pack("!HH", qtype, 1), DNS)
        reply = sock.recv(4096)
    return reply[3] & 15, struct.unpack("!H", reply[6:8])[0]


def check_answers():
    """One question of each kind in the query file, answered as it should be, before the load."""
    s = SERVICES - 1
    zone = f"{namespace_of(s)}.svc.cluster.local"
    reverse = ".".join(reversed(cluster_ip(s).split("."))) + ".in-addr.arpa"
    checks = [(f"svc-{s}.{zone}", 1, 0), (f"_http._tcp.svc-{s}.{zone}", 33, 0), (reverse, 12, 0),
              (f"nope-{s}.{zone}", 1, 3), ("h1.example.test", 1, 0), ("nx1.example.test", 1, 3)]
    for ident, (name, qtype, rcode) in enumerate(checks, 1):
        got = ask(name, qtype, ident)
        if got[0] != rcode or (rcode == 0 and got[1] < 1):
            raise SystemExit(f"{name} type {qtype}: rcode {got[0]} with {got[1]} answers, "
                             f"expected rcode {rcode} with answers")


def check_isolated():
    """Only a loopback interface and no route out: what testing.md asks before any traffic."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True,
                            check=True).stdout.strip()
    if names != ["lo"] or routes or not os.environ.get("SOAK_NETNS"):
        raise SystemExit(f"soak.py must run inside the namespace soak.sh makes (links {names}, "
                         f"routes {routes!r})")


def rss_curve(samples, warmup, height=12, width=72):
    """An ASCII chart of RSS over time: one column per sample (or per group of samples). The axis
    spans the samples after the warm-up (at least 2 MiB, the goal), so their growth shows; the
    warm-up's lower values sit on the bottom row as 'v'."""
    points = [(s["elapsed_s"], s["rss_kib"] / MIB) for s in samples if s["rss_kib"] != ""]
    if not points:
        return "(no RSS samples)"
    group = max(1, -(-len(points) // width))
    columns = [(points[i][0], max(v for _, v in points[i:i + group]))
               for i in range(0, len(points), group)]
    judged = [v for t, v in columns if t >= warmup] or [v for _, v in columns]
    lo, hi = min(judged), max(judged)
    if hi - lo < 2.0:  # at least 2 MiB (the goal) on the axis, so noise is not blown up
        lo = hi - 2.0
    step = (hi - lo) / (height - 1)
    rows = []
    for r in range(height):
        level = hi - r * step
        line = "".join("*" if abs(v - level) <= step / 2 else
                       ("v" if r == height - 1 and v < lo - step / 2 else
                        (":" if t == warmup else " ")) for t, v in columns)
        rows.append(f"{level:8.2f} MiB |{line}")
    axis = ["-"] * len(columns)
    labels = [" "] * (len(columns) + 8)
    for i, (t, _) in enumerate(columns):
        if t % 60 == 0:
            axis[i] = "+"
            text = f"{t // 60}m"
            for k, ch in enumerate(text):
                if i + k < len(labels):
                    labels[i + k] = ch
    rows.append(" " * 13 + "+" + "".join(axis))
    rows.append(" " * 14 + "".join(labels).rstrip())
    rows.append(" " * 14 + f"(one column per {group * SAMPLE_SECONDS} s; ':' marks the end of "
                f"the first {warmup} s; v: below the axis)")
    return "\n".join(rows)


def main():
    binary_arg = sys.argv[1]
    check_isolated()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(RESULTS, exist_ok=True)
    csv_path = os.path.join(RESULTS, f"soak-{stamp}.csv")
    txt_path = os.path.join(RESULTS, f"soak-{stamp}.txt")
    work = os.environ.get("SOAK_WORK") or tempfile.mkdtemp(prefix="svcbox-soak-")
    processes = {}
    churner = None
    serve_exit = None
    try:
        # Others rebuild the tree beside the bench: run a copy, so the binary cannot change under it.
        binary = os.path.join(work, "svcbox")
        shutil.copy2(binary_arg, binary)
        binary_info = (f"{binary_arg} ({os.path.getsize(binary_arg):,} bytes, built "
                       f"{datetime.datetime.fromtimestamp(os.path.getmtime(binary_arg)):%Y-%m-%d %H:%M})")
        rng = random.Random(21)
        db = os.path.join(work, "registry.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SVCBOX_")}
        env["SVCBOX_DB"] = db
        churn = collections.deque()
        started = time.monotonic()
        subprocess.run([binary, "apply", "-f", "-"], input=manifest(rng, churn), env=env,
                       check=True, capture_output=True, text=True, timeout=600)
        apply_s = time.monotonic() - started
        queries = os.path.join(work, "queries.txt")
        with open(queries, "w") as f:
            f.write(query_file(rng))

        upstream_log = open(os.path.join(work, "upstream.log"), "w")
        bound = SOAK_SECONDS + 900  # every process stops by itself after this at the latest
        processes["upstream"] = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "soak_upstream.py"), UPSTREAM[0], str(UPSTREAM[1]),
             str(UPSTREAM_TTL), str(bound)], stdout=upstream_log, stderr=subprocess.STDOUT)
        serve_log_path = os.path.join(work, "serve.log")
        serve_log = open(serve_log_path, "w")
        started = time.monotonic()
        processes["serve"] = serve = subprocess.Popen(
            [binary, "serve", "--db", db, "--proxy-mode", "iptables",
             "--dns-listen", f"{DNS[0]}:{DNS[1]}", "--upstream", f"{UPSTREAM[0]}:{UPSTREAM[1]}",
             "--admin-listen", f"{ADMIN[0]}:{ADMIN[1]}", "--default-probe", "none",
             *os.environ.get("SERVE_FLAGS", "").split()],
            env=env, stdout=serve_log, stderr=subprocess.STDOUT)
        health = Admin()
        while True:
            status, _ = health.request("GET", "/readyz", timeout=3)
            if status == 200:
                break
            if time.monotonic() - started > 300 or serve.poll() is not None:
                raise SystemExit("serve did not become ready:\n" + open(serve_log_path).read()[-3000:])
            time.sleep(0.2)
        ready_s = time.monotonic() - started
        token = subprocess.run([binary, "admin-token", "--db", db], env=env, check=True,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        if processes["upstream"].poll() is not None:
            raise SystemExit("the upstream did not start: " + open(upstream_log.name).read())
        check_answers()

        logs = {}
        for proto, qps in (("udp", UDP_QPS), ("tcp", TCP_QPS)):
            path = os.path.join(work, f"dnsperf-{proto}.txt")
            processes[f"dnsperf-{proto}"] = subprocess.Popen(
                ["dnsperf", "-s", DNS[0], "-p", str(DNS[1]), "-d", queries, "-m", proto,
                 "-Q", str(qps), "-l", str(SOAK_SECONDS), "-t", str(DNSPERF_TIMEOUT), "-v"],
                stdout=open(path, "w"), stderr=subprocess.STDOUT)
            logs[proto] = DnsperfLog(path)
        churner = Churn(Admin(token), rng, churn)
        load_started = time.monotonic()
        churner.start()

        columns = ["elapsed_s", "serve_alive", "rss_kib", "rss_floor_kib", "hwm_kib", "heap_kib", "anon_other_kib",
                   "file_kib", "mappings", "fds", "cpu_s",
                   "udp_answered", "udp_lost", "tcp_answered", "tcp_lost", "api_writes",
                   "api_errors", "registry_version", "rules_installed_version", "syncs",
                   "sync_failures", "forwarded", "forward_failures", "dns_dropped",
                   "nat_svcbox_rules", "dup_rules", "iptables_save_ms"]
        samples, dup_examples = [], []
        metrics_client = Admin()
        first_version = None
        last_metrics = {}
        with open(csv_path, "w", newline="") as csv_file:
            writer = csv.DictWriter(csv_file, fieldnames=columns)
            writer.writeheader()
            csv_file.flush()
            tick = 0
            while True:
                target = load_started + tick * SAMPLE_SECONDS
                # Between samples RSS is read every FLOOR_STEP_SECONDS: its lowest value in the
                # window is what stays, whatever one sync had in flight at the sample's instant.
                floor = None
                while True:
                    delay = target - time.monotonic()
                    rss_now = vm_rss(serve.pid)
                    if rss_now is not None:
                        floor = rss_now if floor is None else min(floor, rss_now)
                    if delay <= 0:
                        break
                    time.sleep(min(delay, FLOOR_STEP_SECONDS))
                elapsed = tick * SAMPLE_SECONDS
                alive = serve.poll() is None
                status = proc_status(serve.pid) if alive else None
                split = memory_split(serve.pid) if status else None
                alive = alive and status is not None
                for log in logs.values():
                    log.poll()
                values = {}
                if alive:
                    code, text = metrics_client.request("GET", "/metrics", timeout=5)
                    values = metric_values(text) if code == 200 else {}
                    last_metrics = values or last_metrics
                dups, nat_rules, save_ms, examples = duplicated_rules()
                if examples and not dup_examples:
                    dup_examples = examples
                with churner.lock:
                    writes, errors = churner.writes, churner.errors
                version = values.get("svcbox_registry_version")
                if first_version is None:
                    first_version = version
                sample = {
                    "elapsed_s": elapsed, "serve_alive": int(alive),
                    "rss_kib": status[0] if status else "", "hwm_kib": status[1] if status else "",
                    "rss_floor_kib": min(floor, status[0]) if status and floor else "",
                    "heap_kib": split[0] if split else "", "anon_other_kib": split[1] if split else "",
                    "file_kib": split[2] if split else "", "mappings": split[3] if split else "",
                    "fds": status[2] if status else "", "cpu_s": f"{status[3]:.2f}" if status else "",
                    "udp_answered": logs["udp"].answered, "udp_lost": logs["udp"].lost,
                    "tcp_answered": logs["tcp"].answered, "tcp_lost": logs["tcp"].lost,
                    "api_writes": writes, "api_errors": errors,
                    "registry_version": "" if version is None else int(version),
                    "rules_installed_version": int(values.get("svcbox_sync_proxy_rules_installed_version", -1)),
                    "syncs": int(values.get("svcbox_sync_proxy_rules_total", -1)),
                    "sync_failures": int(values.get("svcbox_sync_proxy_rules_failures_total", -1)),
                    "forwarded": int(values.get("svcbox_dns_forwarded_total", -1)),
                    "forward_failures": int(values.get("svcbox_dns_forward_failures_total", -1)),
                    "dns_dropped": int(values.get("svcbox_dns_dropped_total", -1)),
                    "nat_svcbox_rules": nat_rules, "dup_rules": dups,
                    "iptables_save_ms": f"{save_ms:.0f}",
                }
                writer.writerow(sample)
                csv_file.flush()
                samples.append(sample)
                print(f"[{elapsed:4d} s] alive={int(alive)} rss={sample['rss_kib']} kB "
                      f"fds={sample['fds']} lost udp/tcp={logs['udp'].lost}/{logs['tcp'].lost} "
                      f"api={writes}/{errors} err version={sample['registry_version']} "
                      f"dups={dups}", flush=True)
                if not alive or elapsed >= SOAK_SECONDS:
                    break
                tick += 1
        churner.stop.set()
        churner.join(timeout=30)
        serve_alive_at_end = serve.poll() is None

        for proto in ("udp", "tcp"):
            try:
                processes[f"dnsperf-{proto}"].wait(timeout=DNSPERF_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                processes[f"dnsperf-{proto}"].kill()
        totals = {proto: logs[proto].totals() for proto in ("udp", "tcp")}
        for log in logs.values():
            log.poll()

        # Stop serve the way an operator does; a clean exit is part of "no crash".
        if serve_alive_at_end:
            serve.terminate()
            try:
                serve_exit = serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve_exit = "killed after 30 s"
        else:
            serve_exit = serve.returncode
        processes["upstream"].terminate()
        try:
            processes["upstream"].wait(timeout=10)
        except subprocess.TimeoutExpired:
            processes["upstream"].kill()
        upstream_log.close()
        upstream_report = open(upstream_log.name).read().strip().splitlines()[-1:]
        serve_log.close()
        log_text = open(serve_log_path, errors="replace").read()
        warn_lines = [l for l in log_text.splitlines()
                      if re.match(r"\S+ (warn|warning|error|critical) ", l)]

        # Figures.
        live = [s for s in samples if s["rss_kib"] != ""]
        base = next((s for s in live if s["elapsed_s"] >= WARMUP_SECONDS), None)
        after = [s for s in live if base and s["elapsed_s"] >= base["elapsed_s"]]
        last = live[-1] if live else None
        rows, missed = [], []
        halves = None
        split_growth = None

        def judge(name, measured, goal, ok):
            rows.append((name, measured, goal, "PASS" if ok else "FAIL"))
            if not ok:
                missed.append(name)

        if base and last:
            growth = (last["rss_kib"] - base["rss_kib"]) / MIB
            peak = (max(s["rss_kib"] for s in after) - base["rss_kib"]) / MIB
            # What stays, not what one sync has in flight (libiptc's table copies, 20 MB each at
            # 10,000 Services, come and go several times a second under churn): the lowest RSS
            # over the minute after the warm-up against the lowest over the last minute, each
            # read every FLOOR_STEP_SECONDS.
            first_window = [s["rss_floor_kib"] for s in after if s["rss_floor_kib"] != "" and
                            base["elapsed_s"] < s["elapsed_s"] <= base["elapsed_s"] + FLOOR_WINDOW_SECONDS]
            last_window = [s["rss_floor_kib"] for s in after if s["rss_floor_kib"] != "" and
                           s["elapsed_s"] > last["elapsed_s"] - FLOOR_WINDOW_SECONDS]
            if first_window and last_window and last["elapsed_s"] - base["elapsed_s"] >= 2 * FLOOR_WINDOW_SECONDS:
                floor_growth = (min(last_window) - min(first_window)) / MIB
                judge(f"RSS growth after the first {WARMUP_SECONDS} s (lowest RSS over the last "
                      f"{FLOOR_WINDOW_SECONDS} s - lowest over the {FLOOR_WINDOW_SECONDS} s after "
                      f"the warm-up)",
                      f"{floor_growth:+.2f} MiB ({min(first_window) / MIB:.2f} -> "
                      f"{min(last_window) / MIB:.2f} MiB); single samples: end - at "
                      f"{base['elapsed_s']} s {growth:+.2f} MiB, peak {peak:+.2f} MiB",
                      f"<= {GOALS['rss_growth_mib']:g} MiB", floor_growth <= GOALS["rss_growth_mib"])
            else:
                judge(f"RSS growth after the first {WARMUP_SECONDS} s",
                      f"the soak is too short for two {FLOOR_WINDOW_SECONDS} s windows after the "
                      f"warm-up (end - at {base['elapsed_s']} s: {growth:+.2f} MiB)",
                      f"<= {GOALS['rss_growth_mib']:g} MiB", False)
            if after[-1]["heap_kib"] != "" and base["heap_kib"] != "":
                split_growth = ", ".join(
                    f"{label} {(last[key] - base[key]) / MIB:+.2f} MiB" for label, key in
                    (("[heap]", "heap_kib"), ("other anonymous", "anon_other_kib"),
                     ("file-backed", "file_kib"))) + f"; mappings {base['mappings']} -> {last['mappings']}"
            middle = next(s for s in after if s["elapsed_s"] >= (base["elapsed_s"] + last["elapsed_s"]) / 2)
            halves = (f"RSS after the warm-up: {(middle['rss_kib'] - base['rss_kib']) / MIB:+.2f} MiB "
                      f"from {base['elapsed_s']} to {middle['elapsed_s']} s, "
                      f"{(last['rss_kib'] - middle['rss_kib']) / MIB:+.2f} MiB from "
                      f"{middle['elapsed_s']} to {last['elapsed_s']} s")
            fds_growth = last["fds"] - base["fds"]
            judge(f"open fds growth after the first {WARMUP_SECONDS} s",
                  f"{fds_growth:+d} ({base['fds']} -> {last['fds']}; max {max(s['fds'] for s in after)})",
                  f"<= {GOALS['fds_growth']}", fds_growth <= GOALS["fds_growth"])
        else:
            judge("RSS and fds after the warm-up", "no sample after the warm-up", "", False)
        crashes = 0 if serve_alive_at_end else 1
        clean_exit = serve_exit == 0
        judge("crashes", f"{crashes} (serve alive at {sum(s['serve_alive'] for s in samples)}/"
              f"{len(samples)} samples; exit status on SIGTERM: {serve_exit})",
              "0", crashes == 0 and clean_exit)
        # A dnsperf that stopped sending (or never printed its totals) loses nothing by its own
        # count: what it should have sent at its fixed rate is checked too.
        parts, load_ok = [], True
        for proto, qps in (("udp", UDP_QPS), ("tcp", TCP_QPS)):
            t = totals[proto]
            if "sent" not in t:
                load_ok = False
                parts.append(f"{proto.upper()}: dnsperf printed no totals ({logs[proto].answered:,} "
                             f"answered, {logs[proto].lost} lost by its -v log)")
                continue
            expected = qps * SOAK_SECONDS
            parts.append(f"{proto.upper()} {t['lost']} of {int(t['sent']):,}")
            if int(t["sent"]) < 0.95 * expected:
                load_ok = False
                parts[-1] += f" (only {int(t['sent']) / expected:.0%} of the {expected:,} its rate asks)"
        lost_total = sum(int(totals[p].get("lost", logs[p].lost)) for p in ("udp", "tcp"))
        judge("lost answers (dnsperf, whole run)", ", ".join(parts), "0",
              lost_total == 0 and load_ok)
        max_dups = max(s["dup_rules"] for s in samples)
        judge("duplicated SVCBOX- rules (max over samples, nat + filter)", str(max_dups), "0",
              max_dups == 0)

        lat = sorted(churner.latencies)
        versions = [s["registry_version"] for s in samples if s["registry_version"] != ""]
        out = []
        out.append(f"## bench/hostile/soak: {SERVICES:,} Services, {SOAK_SECONDS} s "
                   f"({stamp}, load average at the end {os.getloadavg()[0]:.2f})\n")
        out.append(f"binary: {binary_info}")
        out.append(f"setup: apply of {SERVICES:,} Services + {SERVICES * PODS_PER_SERVICE + CHURN_PODS:,} "
                   f"pods {apply_s:.1f} s; serve ready (first rule sync included) {ready_s:.1f} s")
        out.append(f"load: dnsperf UDP {UDP_QPS} q/s + TCP {TCP_QPS} q/s (70 % cluster names: A, SRV, "
                   f"PTR, NXDOMAIN; 30 % forwarded to the upstream on {UPSTREAM[0]}:{UPSTREAM[1]}); "
                   f"API writes {API_RATE:g}/s with the token; serve --proxy-mode iptables "
                   f"--default-probe none {os.environ.get('SERVE_FLAGS', '')}\n")
        out.append("| figure | measured | goal | result |\n|---|---|---|---|")
        for row in rows:
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        for proto in ("udp", "tcp"):
            t = totals[proto]
            latency = t.get("average_latency", ("?", "?"))
            out.append(f"dnsperf {proto.upper()}: sent {t.get('sent', '?')}, completed "
                       f"{t.get('completed', '?')}, lost {t.get('lost', '?')}; {t['rcodes']}; "
                       f"average latency {latency[0]} s, max {latency[1]} s"
                       + (f"; reconnections {t['reconnections']}" if "reconnections" in t else ""))
        out.append(f"API writes: {churner.writes} ({', '.join(f'{k} {v}' for k, v in sorted(churner.by_kind.items()))}), "
                   f"errors {churner.errors}, writer late {churner.late} times; latency p50 "
                   f"{statistics.median(lat) * 1000:.1f} ms, p99 "
                   f"{lat[int(0.99 * (len(lat) - 1))] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
                   if lat else "API writes: none")
        for example in churner.error_examples:
            out.append(f"  API error: {example}")
        last_values = samples[-1]
        out.append(f"registry version {first_version and int(first_version)} -> "
                   f"{versions[-1] if versions else '?'}; rules installed version at the end "
                   f"{last_values['rules_installed_version']}; syncs {last_values['syncs']}, "
                   f"failed {last_values['sync_failures']}; SVCBOX- rules in nat "
                   f"{min(s['nat_svcbox_rules'] for s in samples)}-{max(s['nat_svcbox_rules'] for s in samples)}; "
                   f"iptables-legacy-save took up to {max(int(s['iptables_save_ms']) for s in samples)} ms")
        out.append(f"forwarded {last_values['forwarded']}, forward failures "
                   f"{last_values['forward_failures']}, DNS dropped {last_values['dns_dropped']}; "
                   + (upstream_report[0] if upstream_report else "upstream: no report"))
        if live:
            out.append(f"serve CPU {float(live[-1]['cpu_s']):.0f} s over the run; VmHWM "
                       f"{live[-1]['hwm_kib'] / MIB:.1f} MiB")
        out.append(f"serve log: {len(log_text.splitlines())} lines, {len(warn_lines)} warn/error")
        for line in warn_lines[:5]:
            out.append(f"  {line[:240]}")
        for example in dup_examples:
            out.append(f"  duplicated: {example[:240]}")
        if halves:
            out.append(halves)
        if split_growth:
            out.append(f"RSS growth after the warm-up by kind: {split_growth}")
        closes = {re.search(r'reason="([^"]*)"', k).group(1): int(v) for k, v in last_metrics.items()
                  if k.startswith("svcbox_dns_tcp_closed_total{") and 'reason="' in k and v}
        out.append("serve's DNS-over-TCP closes by reason: " +
                   (", ".join(f"{k} {v}" for k, v in sorted(closes.items())) or "none"))
        out.append("\nRSS over time:\n")
        out.append(rss_curve(samples, base["elapsed_s"] if base else WARMUP_SECONDS))
        out.append("\n| elapsed | RSS MiB | fds | answered UDP/TCP so far | lost UDP/TCP so far | "
                   "API writes/errors | registry version | dup rules |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in samples:
            if s["elapsed_s"] % 60 == 0 or s is samples[-1]:
                rss = f"{s['rss_kib'] / MIB:.2f}" if s["rss_kib"] != "" else "-"
                out.append(f"| {s['elapsed_s']} s | {rss} | {s['fds']} | {s['udp_answered']:,}/{s['tcp_answered']:,} | "
                           f"{s['udp_lost']}/{s['tcp_lost']} | "
                           f"{s['api_writes']}/{s['api_errors']} | {s['registry_version']} | {s['dup_rules']} |")
        out.append(f"\nsamples: {os.path.relpath(csv_path, os.path.dirname(os.path.dirname(HERE)))}")
        out.append("\n" + ("all goals met" if not missed else "MISSED: " + "; ".join(missed)))
        report = "\n".join(out)
        print("\n" + report, flush=True)
        with open(txt_path, "w") as f:
            f.write(report + "\n")
        if missed or os.environ.get("SOAK_KEEP_LOG"):
            # What explains a miss: serve's log, and dnsperf's status, losses and totals (its
            # answer lines, a million of them, are left out).
            with open(serve_log_path, "rb") as src, \
                    gzip.open(os.path.join(RESULTS, f"soak-{stamp}-serve.log.gz"), "wb") as dst:
                shutil.copyfileobj(src, dst)
            with open(os.path.join(RESULTS, f"soak-{stamp}-dnsperf.txt"), "w") as dst:
                for proto in ("udp", "tcp"):
                    dst.write(f"==> dnsperf {proto}\n")
                    with open(logs[proto].path, errors="replace") as src:
                        dst.writelines(line for line in src
                                       if not line.startswith("> ") or line.startswith("> T "))
        return 1 if missed else 0
    finally:
        if churner is not None:
            churner.stop.set()
        for name, process in reversed(list(processes.items())):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    sys.exit(main())
