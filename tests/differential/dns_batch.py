#!/usr/bin/env python3
"""A batch DNS client: many questions over one UDP socket (a window of them in flight), the
truncated ones again over one TCP connection, and a parser that turns an answer into sets of
(name, type, rdata) so two servers' answers can be compared whatever their record order and name
compression. Python's standard library only: queries are encoded and answers decoded by hand.

As a script (run inside a network namespace with `ip netns exec`):
    dns_batch.py SERVER PORT < questions.json > answers.json
questions: a JSON list of [name, type] (type a mnemonic: A, AAAA, SRV, PTR, TXT, SOA, NS, CNAME);
answers: a JSON list, in the same order, of each answer's bytes in hex with the ID zeroed, or null
when no answer came after three tries.
"""
import json
import select
import socket
import struct
import sys
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28,
         "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {number: name for name, number in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
EDNS_SIZE = 1232
WINDOW = 256  # questions in flight at once: well inside svcbox's socket buffer
TRIES = 3
TRY_TIMEOUT = 1.0


def encode_name(name):
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode()
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def encode_query(ident, name, qtype, edns=True):
    """A query without recursion desired (nothing here is for an upstream), EDNS0 by default."""
    header = struct.pack("!HHHHHH", ident, 0, 1, 0, 0, 1 if edns else 0)
    question = encode_name(name) + struct.pack("!HH", TYPES[qtype], 1)
    opt = b"\x00" + struct.pack("!HHIH", TYPES["OPT"], EDNS_SIZE, 0, 0) if edns else b""
    return header + question + opt


class ParseError(Exception):
    pass


def read_name(message, offset):
    """(lower-cased dotted name, offset after the name in place); follows compression pointers,
    every length checked against the message."""
    labels, jumps, end = [], 0, None
    while True:
        if offset >= len(message):
            raise ParseError("name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise ParseError("pointer runs past the message")
            if end is None:
                end = offset + 2
            jumps += 1
            if jumps > 64:
                raise ParseError("compression loop")
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length & 0xC0:
            raise ParseError("bad label type")
        if length == 0:
            return ".".join(labels).lower() + ".", end if end is not None else offset + 1
        if offset + 1 + length > len(message):
            raise ParseError("label runs past the message")
        labels.append(message[offset + 1:offset + 1 + length].decode("latin-1"))
        offset += 1 + length


def rdata_text(message, rtype, start, length):
    data = message[start:start + length]
    if rtype == 1 and length == 4:
        return socket.inet_ntop(socket.AF_INET, data)
    if rtype == 28 and length == 16:
        return socket.inet_ntop(socket.AF_INET6, data)
    if rtype in (2, 5, 12):
        return read_name(message, start)[0]
    if rtype == 33 and length >= 7:
        priority, weight, port = struct.unpack("!HHH", data[:6])
        return f"{priority} {weight} {port} {read_name(message, start + 6)[0]}"
    if rtype == 6:
        mname, at = read_name(message, start)
        rname, at = read_name(message, at)
        if at + 20 > start + length:
            raise ParseError("SOA runs past its rdata")
        numbers = struct.unpack("!IIIII", message[at:at + 20])
        return f"{mname} {rname} " + " ".join(map(str, numbers))
    if rtype == 16:
        strings, at = [], 0
        while at < length:
            size = data[at]
            strings.append(data[at + 1:at + 1 + size].decode("latin-1"))
            at += 1 + size
        return " ".join(json.dumps(s) for s in strings)
    return data.hex()


def parse(message):
    """{"rcode", "flags" (AA, TC, RA...), "question", "answer"/"authority"/"additional": frozensets
    of (name, type, ttl, rdata)}; the OPT record is left out of additional (its flags are in
    "edns")."""
    if len(message) < 12:
        raise ParseError("shorter than a header")
    _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", message[:12])
    offset, question = 12, None
    for _ in range(qd):
        name, offset = read_name(message, offset)
        if offset + 4 > len(message):
            raise ParseError("question runs past the message")
        qtype, _ = struct.unpack("!HH", message[offset:offset + 4])
        question = (name, TYPE_NAMES.get(qtype, str(qtype)))
        offset += 4
    sections, edns = [], None
    for count in (an, ns, ar):
        records = []
        for _ in range(count):
            name, offset = read_name(message, offset)
            if offset + 10 > len(message):
                raise ParseError("record header runs past the message")
            rtype, rclass, ttl, length = struct.unpack("!HHIH", message[offset:offset + 10])
            offset += 10
            if offset + length > len(message):
                raise ParseError("rdata runs past the message")
            if rtype == 41:
                edns = (rclass, ttl)
            else:
                records.append((name, TYPE_NAMES.get(rtype, str(rtype)), ttl,
                                rdata_text(message, rtype, offset, length)))
            offset += length
        sections.append(records)
    if offset != len(message):
        raise ParseError(f"{len(message) - offset} bytes after the last record")
    names = [("QR", 15), ("AA", 10), ("TC", 9), ("RD", 8), ("RA", 7)]
    answer, authority, additional = sections
    return {"rcode": RCODES.get(flags & 0xF, str(flags & 0xF)),
            "flags": " ".join(n for n, bit in names if flags >> bit & 1),
            "question": question, "edns": edns,
            "answer": frozenset(answer), "authority": frozenset(authority),
            "additional": frozenset(additional),
            # Record sets must not hold duplicates: a set would hide them.
            "duplicates": sum(len(s) - len(set(s)) for s in sections)}


def canonical(message):
    """What a comparison looks at: parse() or, for bytes that do not parse, the error."""
    if message is None:
        return {"error": "no answer"}
    try:
        return parse(message)
    except ParseError as error:
        return {"error": f"unparsable answer: {error}: {message.hex()}"}


def _zero_id(message):
    return b"\x00\x00" + message[2:]


def ask_udp(server, questions, answers):
    """Fills answers[i] for each question answered over UDP; returns the indexes that came back
    truncated. Every loop is bounded: TRIES sends per question, TRY_TIMEOUT each."""
    sock = socket.socket(socket.AF_INET6 if ":" in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(server)
    sock.setblocking(False)
    pending = list(range(len(questions)))[::-1]  # a stack: questions not yet sent
    in_flight = {}  # id: (index, sent_at, tries)
    free_ids = list(range(1, 65536))[::-1]
    truncated = []
    deadline = time.monotonic() + 60 + len(questions) * 0.01
    while (pending or in_flight) and time.monotonic() < deadline:
        while pending and len(in_flight) < WINDOW:
            index = pending.pop()
            ident = free_ids.pop()
            name, qtype = questions[index]
            try:
                sock.send(encode_query(ident, name, qtype))
            except BlockingIOError:
                free_ids.append(ident)
                pending.append(index)
                break
            in_flight[ident] = (index, time.monotonic(), 1)
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            while True:
                try:
                    message = sock.recv(65535)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                if len(message) < 12:
                    continue
                ident, flags = struct.unpack("!HH", message[:4])
                entry = in_flight.pop(ident, None)
                if entry is None:
                    continue  # an answer to a retry already answered
                free_ids.append(ident)
                index = entry[0]
                if flags >> 9 & 1:
                    truncated.append(index)
                else:
                    answers[index] = _zero_id(message)
        now = time.monotonic()
        for ident, (index, sent_at, tries) in list(in_flight.items()):
            if now - sent_at < TRY_TIMEOUT:
                continue
            if tries >= TRIES:
                del in_flight[ident]
                free_ids.append(ident)
                continue
            name, qtype = questions[index]
            try:
                sock.send(encode_query(ident, name, qtype))
            except BlockingIOError:
                continue
            in_flight[ident] = (index, now, tries + 1)
    sock.close()
    return truncated


def ask_tcp(server, questions, indexes, answers):
    """The questions at indexes over one TCP connection, pipelined (RFC 7766), a window at a
    time."""
    if not indexes:
        return
    with socket.create_connection(server, timeout=10) as sock:
        for start in range(0, len(indexes), WINDOW):
            chunk = indexes[start:start + WINDOW]
            payload = b""
            for number, index in enumerate(chunk):
                name, qtype = questions[index]
                query = encode_query(number + 1, name, qtype)
                payload += struct.pack("!H", len(query)) + query
            sock.sendall(payload)
            buffer, got = b"", 0
            while got < len(chunk):  # bounded by the socket timeout
                while len(buffer) < 2 or len(buffer) < 2 + struct.unpack("!H", buffer[:2])[0]:
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    buffer += data
                size, = struct.unpack("!H", buffer[:2])
                message, buffer = buffer[2:2 + size], buffer[2 + size:]
                ident, = struct.unpack("!H", message[:2])
                answers[chunk[ident - 1]] = _zero_id(message)
                got += 1


def ask(server, questions):
    """One answer (bytes, ID zeroed) or None per question, in order."""
    answers = [None] * len(questions)
    truncated = ask_udp(server, questions, answers)
    ask_tcp(server, questions, sorted(truncated), answers)
    return answers


def main():
    server = (sys.argv[1], int(sys.argv[2]))
    questions = json.load(sys.stdin)
    answers = ask(server, questions)
    json.dump([a.hex() if a is not None else None for a in answers], sys.stdout)


if __name__ == "__main__":
    main()
