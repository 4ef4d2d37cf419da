"""DNS over TCP under clients that misbehave, one limit at a time (in the manner of dnsdist's
TCP-limit tests): the real svcbox binary in a network namespace of the test's, clients on
sockets the test opens inside that namespace, and each limit seen to act through its counter in
/metrics."""
import contextlib
import ctypes
import os
import re
import select
import socket
import struct
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (BIN, Namespace, ServeProcess, register_cleanup, require, run,  # noqa: E402
                        series_key, temp_dir, wait_for)

PORT = 5360
ADMIN_PORT = 9160
MANIFEST = """apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}
"""
NAME = b"".join(bytes([len(label)]) + label.encode()
                for label in "web.default.svc.cluster.local".split(".")) + b"\0"

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def inside(namespace):
    """The calling thread in the namespace: sockets made meanwhile stay in it afterwards."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace.name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test's namespace")
        yield
    finally:
        if _libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(home)
        os.close(target)


def query(ident):
    message = struct.pack("!HHHHHH", ident & 0xFFFF, 0x0100, 1, 0, 0, 0) + NAME + b"\0\1\0\1"
    return struct.pack("!H", len(message)) + message


def read_exactly(sock, size, deadline):
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise TimeoutError("no answer in time")
        try:
            chunk = sock.recv(size - len(data))
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return None  # closed by serve
        data += chunk
    return data


def read_answers(sock, timeout=10):
    """The IDs of every answer until serve closes the connection."""
    deadline, ids = time.monotonic() + timeout, []
    while True:
        length = read_exactly(sock, 2, deadline)
        if length is None:
            return ids
        body = read_exactly(sock, struct.unpack("!H", length)[0], deadline)
        if body is None:
            return ids
        ids.append(struct.unpack("!H", body[:2])[0])


class TcpLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(cls, "the DNS TCP limit tests", tools=("ip", "dig", "prlimit"))
        cls.dir = temp_dir(cls, "svcbox-tcp-")
        cls.ns = Namespace("tcplim")
        register_cleanup(cls, cls.ns.remove)
        cls.manifest = os.path.join(cls.dir, "web.yaml")
        with open(cls.manifest, "w") as f:
            f.write(MANIFEST)
        cls.serves = 0

    def serve(self, *flags, wrapper=()):
        """A serve of its own for the test, stopped when the test ends."""
        TcpLimits.serves += 1
        db = os.path.join(self.dir, f"registry-{self.serves}.db")
        run(BIN, "apply", "--db", db, "-f", self.manifest)
        serve = ServeProcess("--proxy-mode", "none", "--default-probe", "none", "--db", db,
                             "--dns-listen", f"127.0.0.1:{PORT}", "--upstream", "127.0.0.1:9",
                             "--admin-listen", f"127.0.0.1:{ADMIN_PORT}", *flags,
                             log=os.path.join(self.dir, f"serve-{self.serves}.log"),
                             namespace=self.ns, wrapper=wrapper,
                             admin=f"http://127.0.0.1:{ADMIN_PORT}")
        self.addCleanup(serve.stop)
        serve.wait_log(r"DNS listening on")
        serve.wait_metric("svcbox_dns_tcp_connections", lambda v: v == 0)
        return serve

    def connect(self, source="127.0.0.1", receive_buffer=None, port=PORT):
        with inside(self.ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if receive_buffer:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
        self.addCleanup(sock.close)
        return sock

    def ask(self, sock, ident=1):
        """One query and its answer; None when serve closed the connection instead."""
        try:
            sock.sendall(query(ident))
        except (BrokenPipeError, ConnectionResetError):
            return None
        deadline = time.monotonic() + 5
        length = read_exactly(sock, 2, deadline)
        if length is None:
            return None
        return read_exactly(sock, struct.unpack("!H", length)[0], deadline)

    def stall(self, serve, sock, sent_before=0, most=3000):
        """Pipelines up to `most` queries on sock (fewer if the socket blocks) without reading
        answers, then waits for serve to stop reading it; the number of queries sent. 3000
        answers are far more than 4 KiB unsent and the small socket buffers hold."""
        sock.setblocking(False)
        sent, pending = 0, b""
        while sent < most:
            if not pending:
                pending = query(sent)
            try:
                pending = pending[sock.send(pending):]
            except BlockingIOError:
                break
            if not pending:
                sent += 1
        sock.setblocking(True)
        self.assertGreater(sent, 0)
        serve.wait_metric("svcbox_dns_tcp_stalled_connections", lambda v: v == sent_before + 1)
        return sent, pending

    def counted(self, serve, family, reason):
        return serve.metric(family, {"reason": reason})

    def test_a_connection_is_closed_once_it_has_asked_its_last_query(self):
        serve = self.serve("--dns-tcp-max-queries-per-connection", "5")
        sock = self.connect()
        sock.sendall(b"".join(query(i) for i in range(8)))
        self.assertEqual(read_answers(sock), [0, 1, 2, 3, 4])
        serve.wait_metric("svcbox_dns_tcp_closed_total", lambda v: v == 1, {"reason": "queries"})

    def test_a_client_over_its_share_of_connections_is_refused_and_others_are_not(self):
        serve = self.serve("--dns-tcp-max-connections-per-client", "3")
        held = [self.connect() for _ in range(3)]
        for i, sock in enumerate(held):
            self.assertIsNotNone(self.ask(sock, i), f"connection {i}")
        self.assertIsNone(self.ask(self.connect(), 9), "a fourth connection was answered")
        self.assertEqual(self.counted(serve, "svcbox_dns_tcp_refused_total", "per_client"), 1)
        self.assertIsNotNone(self.ask(self.connect("127.0.0.2"), 10))

    def test_a_connection_is_closed_at_its_age_however_busy(self):
        serve = self.serve("--dns-tcp-max-connection-age", "1500ms")
        sock = self.connect()
        started, answered = time.monotonic(), 0
        for i in range(1000):  # bounded: the age ends it after about 1.5 s
            if self.ask(sock, i) is None:
                break
            answered += 1
            select.select([], [], [], 0.05)
        elapsed = time.monotonic() - started
        self.assertGreater(answered, 5)
        self.assertTrue(1.3 <= elapsed <= 4, f"closed after {elapsed:.2f} s")
        self.assertEqual(self.counted(serve, "svcbox_dns_tcp_closed_total", "age"), 1)

    def test_idle_counts_from_the_last_byte_the_client_read_not_its_last_query(self):
        serve = self.serve("--dns-tcp-idle-timeout", "1s", "--dns-tcp-max-unsent", "4096")
        # A slowloris: one byte of a query every 200 ms keeps sending but never completes.
        sock = self.connect()
        started, message = time.monotonic(), query(1)
        closed = False
        for i in range(40):  # 8 s at most
            try:
                sock.send(message[i % len(message):i % len(message) + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if select.select([sock], [], [], 0.2)[0] and not sock.recv(512):
                closed = True
                break
        self.assertTrue(closed, "serve kept a slowloris connection open")
        self.assertLess(time.monotonic() - started, 3)
        # A client that pipelines queries and reads nothing is idle however much it sends.
        greedy = self.connect(receive_buffer=4096)
        sent, _ = self.stall(serve, greedy)
        serve.wait_metric("svcbox_dns_tcp_closed_total", lambda v: v == 2, {"reason": "idle"})
        self.assertLess(len(read_answers(greedy)), sent)

    def test_answers_a_client_leaves_unread_stop_serve_reading_until_it_reads(self):
        serve = self.serve("--dns-tcp-max-unsent", "4096", "--dns-tcp-idle-timeout", "30s")
        rss_before = self.rss(serve)
        sock = self.connect(receive_buffer=4096)
        sent, pending = self.stall(serve, sock)
        read_by_serve = serve.metric("svcbox_dns_requests_total", {"proto": "tcp", "type": "A"})
        # What serve read is what 4 KiB of unsent answers and the two small socket buffers hold;
        # the rest waits in the kernel, unread.
        self.assertLess(read_by_serve, 1000)
        self.assertGreater(sent - read_by_serve, 500)
        # Sending more changes nothing serve holds: it no longer reads.
        # `pending` is the unsent rest of query `sent`, if the socket blocked in the middle of it.
        rest = pending + b"".join(query(i) for i in range(sent + bool(pending), sent + 2001))
        writer = threading.Thread(target=lambda: sock.sendall(rest))
        writer.start()
        answers = read_answers_until(sock, sent + 2001)
        writer.join(timeout=10)
        self.assertEqual(sorted(answers), sorted(i & 0xFFFF for i in range(sent + 2001)))
        serve.wait_metric("svcbox_dns_tcp_stalled_connections", lambda v: v == 0)
        self.assertLess(self.rss(serve) - rss_before, 16 << 20)

    def test_a_full_table_makes_room_by_closing_a_client_that_does_not_read_else_refuses(self):
        serve = self.serve("--dns-tcp-max-connections", "4", "--dns-tcp-max-unsent", "4096",
                           "--dns-tcp-idle-timeout", "30s")
        held = [self.connect(receive_buffer=4096) for _ in range(4)]
        for i, sock in enumerate(held):
            self.assertIsNotNone(self.ask(sock, i), f"connection {i}")
        # Every client read within the last second: the newcomer (from another address, since
        # one client's share is the whole table here) is refused.
        self.assertIsNone(self.ask(self.connect("127.0.0.2"), 9), "a fifth connection was answered")
        self.assertEqual(self.counted(serve, "svcbox_dns_tcp_refused_total", "table_full"), 1)
        # A client that leaves its answers unread makes room, however recently it read.
        sent, _ = self.stall(serve, held[3])
        for i in (0, 1, 2):
            self.assertIsNotNone(self.ask(held[i], 10 + i), f"connection {i}")
        self.assertIsNotNone(self.ask(self.connect("127.0.0.2"), 20), "newcomer refused")
        self.assertEqual(self.counted(serve, "svcbox_dns_tcp_closed_total", "evicted"), 1)
        self.assertLess(len(read_answers(held[3])), sent)  # it ends: serve closed it
        for i in (0, 1, 2):
            self.assertIsNotNone(self.ask(held[i], 30 + i), f"connection {i} lost")

    def test_under_a_low_descriptor_limit_every_cap_fits_and_fills_without_harm(self):
        serve = self.serve(wrapper=("prlimit", "--nofile=256:256", "--"))
        serve.wait_log(r"cannot hold every connection cap")
        caps = serve.wait_log(r"connection caps fitted: file_limit=256 dns_tcp_connections=(\d+) "
                              r"dns_tcp_per_client=(\d+) admin_api_connections=(\d+) "
                              r"admin_health_connections=(\d+)")
        dns_cap, per_client, api_cap, health_cap = (int(x) for x in caps.groups())
        admin_cap = api_cap + health_cap
        self.assertLess(dns_cap + admin_cap, 256)
        held = []
        for i in range(dns_cap):
            sock = self.connect(f"127.0.1.{i // per_client + 1}")
            self.assertIsNotNone(self.ask(sock, i), f"DNS connection {i} of {dns_cap}")
            held.append(sock)
        # One more is refused, or takes the place of one that read nothing for a second: the
        # table never holds more than its cap.
        held.append(self.connect("127.0.2.1"))
        self.ask(held[-1], 1)
        self.assertEqual(self.counted(serve, "svcbox_dns_tcp_refused_total", "table_full") +
                         self.counted(serve, "svcbox_dns_tcp_closed_total", "evicted"), 1)
        serve.wait_metric("svcbox_dns_tcp_connections", lambda v: v == dns_cap)
        # The admin server's slots, filled by connections that say nothing; one more takes the
        # place of the one idle longest, so the table stays at its cap and health is answered.
        admin = [self.connect(port=ADMIN_PORT) for _ in range(admin_cap)]
        over = self.connect(port=ADMIN_PORT)
        self.assertTrue(select.select([admin[0]], [], [], 5)[0], "the admin connection idle longest")
        with contextlib.suppress(ConnectionResetError):
            self.assertEqual(admin[0].recv(1), b"")
        over.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        self.assertTrue(select.select([over], [], [], 5)[0], "/healthz over the cap")
        self.assertTrue(over.recv(64).startswith(b"HTTP/1.1 200"))
        reply = self.ns.x("dig", "@127.0.0.1", "-p", str(PORT), "web.default.svc.cluster.local",
                          "+short", "+tries=1", "+timeout=3", check=False)
        self.assertEqual(reply.stdout.strip(), "10.96.0.10", "UDP stopped answering")
        for sock in held + admin:
            sock.close()
        serve.wait_metric("svcbox_dns_tcp_connections", lambda v: v == 0)
        self.assertIsNotNone(self.ask(self.connect(), 2))
        self.assertIsNone(serve.process.poll())

    def rss(self, serve):
        with open(f"/proc/{serve.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


def read_answers_until(sock, count, timeout=30):
    deadline, ids = time.monotonic() + timeout, []
    while len(ids) < count:
        try:
            length = read_exactly(sock, 2, deadline)
        except TimeoutError:
            raise TimeoutError(f"{len(ids)} answers of {count}") from None
        if length is None:
            break
        ids.append(struct.unpack("!H", read_exactly(sock, struct.unpack("!H", length)[0],
                                                     deadline)[:2])[0])
    return ids


if __name__ == "__main__":
    unittest.main()
