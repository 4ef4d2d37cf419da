#!/usr/bin/env python3
"""bench/hostile: serve's memory and a legitimate client's answers while hostile TCP clients
attack (run.sh runs this under flock /tmp/bench.lock).

usage: hostile.py SVCBOX_BINARY

In a network namespace of its own: serve on 127.0.0.1:53 with one Service; dnsperf asks for it
at a fixed rate over UDP and over TCP for the whole run (legitimate load); after a quiet start,
attack.py opens PIPELINERS connections that pipeline queries and never read, and SLOWLORIS
connections that send a byte a second, for ATTACK_SECONDS. serve's RSS is sampled throughout.
Prints the figures against the goals and exits 1 when one is missed.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ATTACK_SECONDS = int(os.environ.get("ATTACK_SECONDS", "60"))
PIPELINERS = int(os.environ.get("PIPELINERS", "1000"))
SLOWLORIS = int(os.environ.get("SLOWLORIS", "200"))
UDP_QPS = int(os.environ.get("UDP_QPS", "5000"))
TCP_QPS = int(os.environ.get("TCP_QPS", "500"))
QUIET_SECONDS = 5      # legitimate load alone, before and after the attack
SETTLE_SECONDS = 10    # after the attack, before the "after" RSS
GOALS = {"rss_peak_mib": 64, "rss_after_mib": 8, "lost": 0, "p99_ms": 10}
MANIFEST = """apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
"""


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


def metrics(ns):
    text = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3",
                           "http://127.0.0.1:9153/metrics"], capture_output=True, text=True).stdout
    values = {}
    for line in text.splitlines():
        match = re.match(r"(svcbox_dns_tcp_\w+)(\{[^}]*\})? (\S+)", line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def dnsperf_figures(path, window):
    """(sent, lost, p99 in ms) of a dnsperf -v output; p99 over answers whose arrival falls in
    `window` (start, end) seconds after the run's start, which dnsperf does not say: answers are
    spread by their order at the fixed rate."""
    with open(path) as f:
        text = f.read()
    sent = int(re.search(r"Queries sent:\s+(\d+)", text).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", text).group(1))
    latencies = [float(x) for x in re.findall(r"^> \w+ \S+ \S+ ([0-9.]+)$", text, re.M)]
    if not latencies:
        return sent, lost, float("nan"), float("nan")
    per_second = len(latencies) / max(1e-9, window[2])
    inside = latencies[int(window[0] * per_second):int(window[1] * per_second)] or latencies
    p99 = statistics.quantiles(inside, n=100)[98] * 1000
    return sent, lost, p99, statistics.quantiles(latencies, n=100)[98] * 1000


def main():
    binary = sys.argv[1]
    ns = f"svcbox-hostile-{os.getpid()}"
    work = tempfile.mkdtemp(prefix="svcbox-hostile-")
    processes = []
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        db, manifest = os.path.join(work, "registry.db"), os.path.join(work, "web.yaml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
        subprocess.run([binary, "apply", "--db", db, "-f", manifest], check=True,
                       stdout=subprocess.DEVNULL)
        queries = os.path.join(work, "queries.txt")
        with open(queries, "w") as f:
            f.write("web.default.svc.cluster.local A\n")
        log = open(os.path.join(work, "serve.log"), "w")
        serve = subprocess.Popen(["ip", "netns", "exec", ns, binary, "serve", "--db", db,
                                  "--dns-listen", "127.0.0.1:53", "--upstream", "127.0.0.1:9",
                                  "--proxy-mode", "none", "--default-probe", "none",
                                  "--admin-listen", "127.0.0.1:9153",
                                  *os.environ.get("SERVE_FLAGS", "").split()], stdout=log,
                                 stderr=subprocess.STDOUT)
        processes.append(serve)
        for _ in range(100):
            if "DNS listening" in open(log.name).read():
                break
            time.sleep(0.1)
        else:
            raise SystemExit("serve did not start: " + open(log.name).read())
        time.sleep(2)
        idle = statistics.median(rss(serve.pid) for _ in range(5))

        total = QUIET_SECONDS + ATTACK_SECONDS + SETTLE_SECONDS + QUIET_SECONDS
        outputs = {}
        for proto, qps in (("udp", UDP_QPS), ("tcp", TCP_QPS)):
            outputs[proto] = os.path.join(work, f"dnsperf-{proto}.txt")
            command = ["ip", "netns", "exec", ns, "dnsperf", "-s", "127.0.0.1", "-d", queries,
                       "-Q", str(qps), "-l", str(total), "-v", "-t", "2", "-m", proto]
            processes.append(subprocess.Popen(command, stdout=open(outputs[proto], "w"),
                                              stderr=subprocess.STDOUT))
        started = time.monotonic()
        time.sleep(QUIET_SECONDS)
        attack = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                   os.path.join(HERE, "attack.py"), "53", str(ATTACK_SECONDS),
                                   str(PIPELINERS), str(SLOWLORIS)], stdout=subprocess.PIPE,
                                  text=True)
        processes.append(attack)
        peak, during = idle, None
        while attack.poll() is None:
            peak = max(peak, rss(serve.pid))
            if during is None and time.monotonic() - started > QUIET_SECONDS + ATTACK_SECONDS / 2:
                during = metrics(ns)
            time.sleep(0.5)
        attack_report = attack.stdout.read().strip()
        time.sleep(SETTLE_SECONDS)
        after = statistics.median(rss(serve.pid) for _ in range(5))
        final = metrics(ns)
        for process in processes[1:3]:
            process.wait(timeout=total + 30)
        window = (QUIET_SECONDS, QUIET_SECONDS + ATTACK_SECONDS, total)
        rows, missed = [], []
        mib = 1 << 20
        rows.append(("serve RSS idle", f"{idle / mib:.1f} MiB", ""))
        rows.append(("RSS peak during the attack, above idle", f"{(peak - idle) / mib:.1f} MiB",
                     f"≤ {GOALS['rss_peak_mib']} MiB"))
        if (peak - idle) / mib > GOALS["rss_peak_mib"]:
            missed.append("peak RSS")
        rows.append((f"RSS {SETTLE_SECONDS} s after the attack, above idle",
                     f"{(after - idle) / mib:.1f} MiB", f"≤ {GOALS['rss_after_mib']} MiB"))
        if (after - idle) / mib > GOALS["rss_after_mib"]:
            missed.append("RSS after")
        for proto, qps in (("udp", UDP_QPS), ("tcp", TCP_QPS)):
            sent, lost, p99, p99_all = dnsperf_figures(outputs[proto], window)
            rows.append((f"legitimate {proto.upper()} at {qps} q/s: sent / lost",
                         f"{sent} / {lost}", "0 lost"))
            rows.append((f"legitimate {proto.upper()} p99 during the attack (whole run)",
                         f"{p99:.2f} ms ({p99_all:.2f} ms)", f"≤ {GOALS['p99_ms']} ms"))
            if lost > GOALS["lost"]:
                missed.append(f"{proto} lost")
            if not p99 <= GOALS["p99_ms"]:
                missed.append(f"{proto} p99")
        print(f"## bench/hostile: {PIPELINERS} pipelining and {SLOWLORIS} slowloris TCP "
              f"connections for {ATTACK_SECONDS} s\n")
        print("| figure | measured | goal |\n|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\nattackers: {attack_report}")
        print("serve's TCP counters mid-attack: " +
              ", ".join(f"{k}={v:g}" for k, v in sorted((during or {}).items())))
        print("serve's TCP counters at the end: " +
              ", ".join(f"{k}={v:g}" for k, v in sorted(final.items())))
        print("\n" + ("all goals met" if not missed else "MISSED: " + ", ".join(missed)))
        return 1 if missed else 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
