#!/usr/bin/env python3
"""startup.py SVCBOX_BIN MODE [RUNS]: time from starting `svcbox serve` on an empty registry to
its first 200 from /readyz, as a test fixture would see it (docs/fixture.md).

Each run: a fresh registry file, DNS and admin on 127.0.0.1 port 0 (the ports come from the log
lines "DNS listening on" and "admin HTTP on", as a fixture reads them), /readyz polled every 1 ms
over a new connection, then SIGTERM. Prints each run and the median in milliseconds. Everything
stays on loopback; the upstream is a loopback port where nothing listens. Run it as the user the
fixture runs as (tests here: nobody, inside a loopback-only network namespace)."""
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

binary, mode = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
times = []
for _ in range(runs):
    scratch = tempfile.mkdtemp(prefix="svcbox-startup-")
    start = time.monotonic()
    serve = subprocess.Popen([binary, "serve", "--db", f"{scratch}/r.db", "--proxy-mode", mode,
                              "--proxy-bind", "127.0.0.1", "--dns-listen", "127.0.0.1:0",
                              "--admin-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9",
                              "--default-probe", "none"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        admin = None
        for _ in range(100):  # the start-up log is a handful of lines
            line = serve.stdout.readline()
            match = re.search(r"admin HTTP on 127\.0\.0\.1:(\d+)", line)
            if match:
                admin = int(match.group(1))
                break
        assert admin, "no admin port in the log"
        deadline = start + 10
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", admin, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.001)
        else:
            raise AssertionError("not ready within 10 s")
        times.append((time.monotonic() - start) * 1000)
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)
print(mode, " ".join(f"{t:.1f}" for t in times), "ms")
print(f"{mode} median {statistics.median(times):.1f} ms over {runs} runs")
