#!/usr/bin/env python3
"""Sends hand-made DNS packets to svcbox and prints what came back, for the bad-input tests.

usage: raw_client.py PORT udp HEX...   one line per packet: "rcode N id N qd N an N" or "none"
       raw_client.py PORT tcp HEX...   all packets on one connection, one line per answer
       raw_client.py PORT idle HEX     one query over TCP, then wait: "closed after N s" or "open"
"""
import socket
import struct
import sys
import time


def describe(reply):
    ident, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    return f"rcode {flags & 0xF} id {ident} qd {qd} an {an} tc {(flags >> 9) & 1}"


def main():
    port, transport, packets = int(sys.argv[1]), sys.argv[2], [bytes.fromhex(h) for h in sys.argv[3:]]
    if transport == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.5)
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))
            try:
                print(describe(sock.recv(65535)))
            except socket.timeout:
                print("none")
        return
    if transport == "idle":
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(struct.pack("!H", len(packets[0])) + packets[0])
        started = time.monotonic()
        received = b""
        while True:  # bounded by the 30 s socket timeout
            try:
                chunk = sock.recv(65535)
            except socket.timeout:
                print("open")
                return
            if not chunk:
                print(f"closed after {time.monotonic() - started:.0f} s, {len(received)} bytes")
                return
            received += chunk
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"".join(struct.pack("!H", len(p)) + p for p in packets))
    buffer = b""
    answers = 0
    while answers < len(packets):
        while len(buffer) < 2 or len(buffer) < 2 + struct.unpack("!H", buffer[:2])[0]:
            chunk = sock.recv(65535)
            if not chunk:
                print("closed")
                return
            buffer += chunk
        size, = struct.unpack("!H", buffer[:2])
        print(describe(buffer[2:2 + size]))
        buffer = buffer[2 + size:]
        answers += 1


if __name__ == "__main__":
    main()
