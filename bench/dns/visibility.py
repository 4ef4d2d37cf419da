#!/usr/bin/env python3
"""Time from a registry commit to the answer, at 10,000 Services: svcbox serves the benchmark's
registry; `svcbox apply` adds one Service at a time while a loop asks for it every 2 ms over UDP.
Measured from the moment apply starts (so the apply itself is included), median and max of 10.

usage: visibility.py SVCBOX_BIN SERVICES_YAML"""
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

PORT = 5398


def query(name, ident):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0\0\1\0\1"


def main():
    binary, services = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="svcbox-visibility-")
    db = os.path.join(work, "registry.db")
    subprocess.run([binary, "apply", "--db", db, "-f", services], check=True,
                   stdout=subprocess.DEVNULL)
    server = subprocess.Popen([binary, "serve", "--db", db, "--dns-listen", f"127.0.0.1:{PORT}",
                               "--upstream", "127.0.0.1:9", "--proxy-mode", "none",
                               "--log-level", "warn"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.002)
    try:
        time.sleep(1.0)
        latencies = []
        for i in range(10):
            name = f"late-{i}.default.svc.cluster.local"
            manifest = os.path.join(work, f"late-{i}.yaml")
            with open(manifest, "w") as f:
                f.write(f"apiVersion: v1\nkind: Service\nmetadata: {{name: late-{i}}}\n"
                        "spec: {ports: [{port: 80}]}\n")
            started = time.monotonic()
            apply = subprocess.Popen([binary, "apply", "--db", db, "-f", manifest],
                                     stdout=subprocess.DEVNULL)
            answered = None
            for attempt in range(2500):  # bounded: 5 s at 2 ms
                sock.sendto(query(name, attempt), ("127.0.0.1", PORT))
                try:
                    reply = sock.recv(512)
                    if reply[3] & 0x0F == 0 and struct.unpack("!H", reply[6:8])[0] == 1:
                        answered = time.monotonic()
                        break
                except socket.timeout:
                    pass
                time.sleep(0.002)
            apply.wait(timeout=10)
            if answered is None:
                sys.exit(f"{name} never appeared")
            latencies.append((answered - started) * 1000)
        median, worst = statistics.median(latencies), max(latencies)
        print(f"\n| registry commit -> dig answer, 10,000 Services | median {median:.0f} ms | "
              f"max {worst:.0f} ms | goal <= 100 ms | {'PASS' if worst <= 100 else 'MISS'} |")
    finally:
        server.terminate()
        server.wait(timeout=10)
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
