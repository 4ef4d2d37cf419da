#!/usr/bin/env python3
"""udp_client.py HOST PORT: one UDP socket (one conntrack flow); for every line on stdin it sends a
datagram and prints the reply, or "timeout" after 2 s. Ends at EOF."""
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 40000))
sock.settimeout(2)
for _ in sys.stdin:
    sock.sendto(b"ping", (host, port))
    try:
        print(sock.recvfrom(2048)[0].decode(), flush=True)
    except socket.timeout:
        print("timeout", flush=True)
