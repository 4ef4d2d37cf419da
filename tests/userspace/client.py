#!/usr/bin/env python3
"""client.py MODE HOST PORT [COUNT]: the client side of the userspace proxy tests, run inside the
test's namespace. Every loop is bounded in count and time.

  http HOST PORT COUNT   COUNT HTTP/1.0 GETs, one connection each; prints each answer (a pod's
                         name) or "FAILED <reason>" per line
  udp HOST PORT COUNT    COUNT datagrams from one socket; prints "<reply> <from-address:port>"
  halfclose HOST PORT    sends 100 KB, half-closes, reads to the end; prints "<bytes echoed> <tail>"
  slow HOST PORT         writes for 5 s (at most 512 MiB) without ever reading; prints the bytes
                         the connection took"""
import socket
import sys
import time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = int(sys.argv[4]) if len(sys.argv) > 4 else 1

if mode == "http":
    for _ in range(count):
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while len(data) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.0 200"):
                print("FAILED", head[:40])
            else:
                print(body.decode().strip())
        except OSError as error:
            print("FAILED", error)
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for i in range(count):
        s.sendto(b"ping%d" % i, (host, port))
        try:
            data, peer = s.recvfrom(65536)
            print(data.decode(), f"{peer[0]}:{peer[1]}")
        except OSError as error:
            print("FAILED", error)
elif mode == "halfclose":
    with socket.create_connection((host, port), timeout=5) as s:
        payload = bytes(range(256)) * 400
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        echoed = data[:len(payload)]
        print(len(echoed) if echoed == payload else -1, data[len(payload):].decode())
elif mode == "slow":
    with socket.create_connection((host, port), timeout=5) as s:
        s.setblocking(False)
        chunk = b"x" * 65536
        sent = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sent < 512 * 1024 * 1024:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
        print(sent, flush=True)
        # Hold the connection while the test reads svcbox's memory.
        time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 2)
