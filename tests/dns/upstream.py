#!/usr/bin/env python3
"""A tiny upstream resolver for the DNS e2e tests, started by the test on loopback.

usage: upstream.py PORT LOGFILE [--blackhole]

Answers a fixed set of names over UDP and appends "name type" for every query to LOGFILE, so
the test can tell cache hits (svcbox did not ask) from misses. With --blackhole it reads and
never answers, which makes svcbox's upstream time out.
"""
import socket
import struct
import sys

# name -> type -> (rcode, [(type, ttl, rdata bytes)])
A, AAAA, SOA = 1, 28, 6
BIG_NAME, BIG_COUNT = "big.example.org", 40
SOA_RDATA = (b"\x02ns\x07example\x03org\x00" + b"\x04root\x07example\x03org\x00" +
             struct.pack("!IIIII", 1, 3600, 600, 86400, 30))


def answer(name, qtype):
    if name == "example.org" and qtype == A:
        return 0, [(A, 300, socket.inet_aton("192.0.2.10"))], []
    if name == "www.example.org" and qtype == A:
        return 0, [(A, 120, socket.inet_aton("192.0.2.20"))], []
    if name == BIG_NAME and qtype == A:
        # Larger than a client without EDNS can take over UDP (512 bytes).
        return 0, [(A, 300, socket.inet_aton(f"192.0.2.{i}")) for i in range(1, BIG_COUNT + 1)], []
    if name in ("example.org", "www.example.org", BIG_NAME):
        return 0, [], [(SOA, 60, SOA_RDATA)]
    return 3, [], [(SOA, 60, SOA_RDATA)]


def parse_question(packet):
    offset, labels = 12, []
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, = struct.unpack("!H", packet[offset + 1:offset + 3])
    return ".".join(labels).lower(), qtype, packet[12:offset + 5]


def respond(packet):
    ident, = struct.unpack("!H", packet[:2])
    name, qtype, question = parse_question(packet)
    rcode, answers, authority = answer(name, qtype)
    header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(answers), len(authority), 0)
    body = b""
    for rtype, ttl, rdata in answers:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
    for rtype, ttl, rdata in authority:
        body += (b"\x07example\x03org\x00" + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) +
                 rdata)
    return name, qtype, header + question + body


def main():
    port, log_path = int(sys.argv[1]), sys.argv[2]
    blackhole = "--blackhole" in sys.argv
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    with open(log_path, "a", buffering=1) as log:
        print("ready", file=log)
        while True:
            packet, peer = sock.recvfrom(4096)
            try:
                name, qtype, reply = respond(packet)
            except (IndexError, struct.error):
                continue
            print(f"{name} {qtype}", file=log)
            if not blackhole:
                sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
