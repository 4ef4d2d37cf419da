#!/usr/bin/env python3
"""client_loop.py MODE TARGET PORT COUNT INTERVAL_MS: bounded traffic for the serve e2e tests.

MODE http: COUNT new TCP connections to TARGET:PORT, one GET each; MODE dns: COUNT UDP queries for
the name TARGET to PORT at 10.0.0.1. One line per attempt: "start end ok|fail detail", times from
CLOCK_MONOTONIC (shared by every process on the machine), so the test can line attempts up with
what it did. Stops by itself after COUNT attempts."""
import socket
import struct
import sys
import time

mode, target, port, count, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]) / 1000


def http_once():
    with socket.create_connection((target, port), timeout=1) as sock:
        sock.settimeout(1)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: svc\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") and not head.startswith(b"HTTP/1.1 200"):
        raise OSError(head.split(b"\r\n")[0].decode(errors="replace"))
    return body.decode().strip()


def dns_once(query_id):
    question = b"".join(bytes([len(label)]) + label.encode() for label in target.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(packet, ("10.0.0.1", port))
        reply = sock.recv(4096)
    rid, flags, _, answers = struct.unpack("!HHHH", reply[:8])
    if rid != query_id or flags & 0xF != 0 or answers == 0:
        raise OSError(f"rcode {flags & 0xF}, {answers} answers")
    return socket.inet_ntoa(reply[-4:])


for i in range(count):
    start = time.monotonic()
    try:
        detail = http_once() if mode == "http" else dns_once(i & 0xFFFF)
        outcome = "ok"
    except OSError as error:
        detail, outcome = str(error).replace(" ", "_") or type(error).__name__, "fail"
    end = time.monotonic()
    print(f"{start:.4f} {end:.4f} {outcome} {detail}", flush=True)
    time.sleep(max(0.0, interval - (end - start)))
