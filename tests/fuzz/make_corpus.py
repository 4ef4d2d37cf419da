#!/usr/bin/env python3
"""Writes the seed corpus: one query per record form svcbox answers, and the bad packets the e2e
test sends. Run once; the files are committed."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def name(text):
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\0"


def query(qname, qtype, edns=None, flags=0x0100, qd=1):
    packet = struct.pack("!HHHHHH", 7, flags, qd, 0, 0, 1 if edns else 0) + name(qname)
    packet += struct.pack("!HH", qtype, 1)
    if edns:
        packet += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return packet


seeds = {
    "a": query("web.default.svc.cluster.local", 1),
    "a-short": query("web.default.svc", 1, 1232),
    "aaaa": query("web.default.svc.cluster.local", 28),
    "srv": query("_http._tcp.db.prod.svc.cluster.local", 33, 4096),
    "ptr": query("10.0.96.10.in-addr.arpa", 12),
    "cname": query("ext.default.svc.cluster.local", 1),
    "nx": query("nope.default.svc.cluster.local", 1),
    "soa": query("cluster.local", 6),
    "forward": query("example.org", 1),
    "headless": query("db.prod.svc.cluster.local", 1),
    "response": query("a", 1, flags=0x8100),
    "two-questions": query("a", 1, qd=2),
    "opcode": query("a", 1, flags=0x1100),
    "pointer": struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1",
    "runt": b"\0\1",
    "upstream-answer": struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + name("example.org") +
    b"\0\1\0\1\xc0\x0c\0\1\0\1\0\0\1\x2c\0\4\xc0\0\2\x0a",
}
os.makedirs(HERE, exist_ok=True)
for key, packet in seeds.items():
    with open(os.path.join(HERE, key), "wb") as f:
        f.write(packet)
