#!/usr/bin/env python3
"""The upstream resolver of bench/hostile/soak: a tiny DNS server on loopback, UDP and TCP.

usage: soak_upstream.py ADDR PORT TTL SECONDS

Answers every A question with one address derived from the name (198.51.100.0/24, TEST-NET-2)
and the given TTL, every name whose first label starts with "nx" with NXDOMAIN, and any other
type with an empty NOERROR (NODATA). Runs inside the soak's network namespace, stops by itself
after SECONDS (the soak's bound), and prints how many questions it answered when it stops
(SIGTERM included).
"""
import selectors
import signal
import socket
import struct
import sys
import time


def answer(query, ttl):
    """The response to one DNS message, or None for something that is not a plain query."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    end = 12
    labels = []
    while end < len(query) and query[end] != 0:
        length = query[end]
        if length & 0xC0:
            return None
        labels.append(query[end + 1:end + 1 + length])
        end += 1 + length
    end += 1
    if end + 4 > len(query):
        return None
    qtype = struct.unpack("!H", query[end:end + 2])[0]
    question = query[12:end + 4]
    rd = flags & 0x0100
    header_flags = 0x8000 | rd | 0x0080  # QR, RD copied, RA
    if labels and labels[0].lower().startswith(b"nx"):
        return struct.pack("!HHHHHH", ident, header_flags | 3, 1, 0, 0, 0) + question
    if qtype != 1:
        return struct.pack("!HHHHHH", ident, header_flags, 1, 0, 0, 0) + question
    host = (sum(b"".join(labels)) % 254) + 1
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + bytes([198, 51, 100, host])
    return struct.pack("!HHHHHH", ident, header_flags, 1, 1, 0, 0) + question + record


def main():
    addr, port, ttl, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    stop_at = time.monotonic() + seconds
    counts = {"udp": 0, "tcp": 0, "tcp_connections": 0}
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    signal.signal(signal.SIGINT, lambda *_: running.__setitem__(0, False))

    selector = selectors.DefaultSelector()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    udp.bind((addr, port))
    udp.setblocking(False)
    selector.register(udp, selectors.EVENT_READ, "udp")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(128)
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, "listen")
    print(f"upstream listening on {addr}:{port}", flush=True)

    buffers = {}  # TCP connection -> bytes received and not yet answered
    while running[0] and time.monotonic() < stop_at:
        for key, _ in selector.select(timeout=0.5):
            if key.data == "udp":
                for _ in range(256):
                    try:
                        message, peer = udp.recvfrom(4096)
                    except BlockingIOError:
                        break
                    reply = answer(message, ttl)
                    if reply is not None:
                        try:
                            udp.sendto(reply, peer)
                            counts["udp"] += 1
                        except OSError:
                            pass
            elif key.data == "listen":
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(True)
                conn.settimeout(2)  # answers are small: a send that blocks this long is a dead client
                selector.register(conn, selectors.EVENT_READ, "tcp")
                buffers[conn] = b""
                counts["tcp_connections"] += 1
            else:
                conn = key.fileobj
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    selector.unregister(conn)
                    conn.close()
                    del buffers[conn]
                    continue
                pending = buffers[conn] + data
                out = []
                while len(pending) >= 2:
                    length = struct.unpack("!H", pending[:2])[0]
                    if len(pending) < 2 + length:
                        break
                    reply = answer(pending[2:2 + length], ttl)
                    pending = pending[2 + length:]
                    if reply is not None:
                        out.append(struct.pack("!H", len(reply)) + reply)
                buffers[conn] = pending
                if out:
                    try:
                        conn.sendall(b"".join(out))
                        counts["tcp"] += len(out)
                    except OSError:
                        selector.unregister(conn)
                        conn.close()
                        del buffers[conn]
    print("upstream answered: " + ", ".join(f"{k}={v}" for k, v in counts.items()), flush=True)


if __name__ == "__main__":
    main()
