"""End-to-end tests of the userspace proxy mode, without root for real: svcbox runs as nobody
(setpriv) inside a network namespace this test makes, the pods are servers on 127.0.0.2-4 in that
namespace, and every packet stays on its loopback (see ../../../shared/testing.md).

svcbox in auto mode must pick userspace by itself; the client resolves through svcbox's DNS (dig)
and connects where the answers point."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SVCBOX_BIN", os.path.join(HERE, "../../build/release/app/svcbox"))
IN_CI = os.environ.get("CI") == "true"
DNS_PORT = 5300
ADMIN = "127.0.0.1:9901"
PODS = {"pod-a": "127.0.0.2", "pod-b": "127.0.0.3", "pod-c": "127.0.0.4"}

MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080}
    - {name: dns, protocol: UDP, port: 53, targetPort: 5353}
    - {name: echo, protocol: TCP, port: 9000, targetPort: 8081}
---
apiVersion: v1
kind: Service
metadata: {name: www}
spec:
  selector: {app: other}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
"""

POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec: {{containers: [{{name: w, image: any, ports: [{{containerPort: 8080}}, {{containerPort: 8081}},
  {{containerPort: 5353, protocol: UDP}}]}}]}}
status: {{podIP: {ip}}}
"""


def run(*args, check=True, timeout=30):
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True)


class UserspaceWithoutRootTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        problem = None
        if os.geteuid() != 0:
            problem = "needs root to make a network namespace (svcbox itself then runs as nobody)"
        elif shutil.which("setpriv") is None or shutil.which("dig") is None:
            problem = "needs setpriv and dig"
        elif run("ip", "netns", "list", check=False).returncode != 0:
            problem = "cannot use ip netns here"
        if problem:
            if IN_CI:
                raise AssertionError(f"CI=true and the userspace e2e tests cannot run: {problem}")
            raise unittest.SkipTest(problem)
        cls.ns = "sbu" + uuid.uuid4().hex[:6]  # "sbu" = svcbox userspace test
        cls.processes = {}
        cls.dir = tempfile.mkdtemp(prefix="svcbox-userspace-")
        try:
            cls.setUpWorld()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def setUpWorld(cls):
        run("ip", "netns", "add", cls.ns)
        cls.x("ip", "link", "set", "lo", "up")
        # Rule 2: this namespace has loopback only, so nothing can leave it.
        links = cls.x("ip", "-o", "link", "show").stdout.splitlines()
        assert len(links) == 1 and ": lo:" in links[0], links
        manifest = os.path.join(cls.dir, "all.yaml")
        with open(manifest, "w") as f:
            f.write(MANIFEST)
            for name, ip in PODS.items():
                f.write("---" + POD.format(name=name, ip=ip, app="other" if name == "pod-c" else "web"))
        db = os.path.join(cls.dir, "registry.db")
        run(BIN, "apply", "--db", db, "-f", manifest)
        os.chmod(cls.dir, 0o755)
        binary = shutil.copy(BIN, os.path.join(cls.dir, "svcbox"))
        for name in os.listdir(cls.dir):
            os.chown(os.path.join(cls.dir, name), 65534, 65534)
        os.chown(cls.dir, 65534, 65534)
        for name in PODS:
            cls.startPod(name)
        cls.log = os.path.join(cls.dir, "serve.log")
        with open(cls.log, "w") as out:
            cls.processes["svcbox"] = subprocess.Popen(
                ["ip", "netns", "exec", cls.ns, "setpriv", "--reuid=65534", "--regid=65534",
                 "--clear-groups", binary, "serve", "--db", db, "--proxy-mode", "auto",
                 "--dns-listen", f"127.0.0.1:{DNS_PORT}", "--upstream", "127.0.0.1:9",
                 "--admin-listen", ADMIN, "--default-probe", "none"],
                stdout=out, stderr=subprocess.STDOUT)
        cls.waitFor(lambda: "listens on" in cls.serveLog() and "registry loaded" in cls.serveLog())

    @classmethod
    def startPod(cls, name):
        process = subprocess.Popen(["ip", "netns", "exec", cls.ns, "python3",
                                    os.path.join(HERE, "pod_server.py"), name, PODS[name], "8080",
                                    "5353"], stdout=subprocess.PIPE, text=True)
        cls.processes[name] = process
        assert process.stdout.readline().strip() == "ready"

    @classmethod
    def stop(cls, name):
        process = cls.processes.pop(name, None)
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process and process.stdout:
            process.stdout.close()

    @classmethod
    def tearDownClass(cls):
        serve = cls.processes.get("svcbox")
        for name in list(cls.processes):
            cls.stop(name)
        log = cls.serveLog() if serve else ""
        run("ip", "netns", "del", cls.ns, check=False)
        shutil.rmtree(cls.dir, ignore_errors=True)
        # A clean stop on SIGTERM (under the asan preset a sanitizer report makes this fail).
        if serve and (serve.returncode != 0 or "Sanitizer" in log):
            raise AssertionError(f"serve stopped with {serve.returncode}:\n{log}")

    @classmethod
    def x(cls, *args, check=True, timeout=30):
        return run("ip", "netns", "exec", cls.ns, *args, check=check, timeout=timeout)

    @classmethod
    def serveLog(cls):
        with open(cls.log) as f:
            return f.read()

    @classmethod
    def waitFor(cls, condition, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError("timed out; serve log:\n" + cls.serveLog())

    def dig(self, name, qtype="A"):
        result = self.x("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p", str(DNS_PORT),
                        name, qtype)
        return result.stdout.split()

    def resolve(self, service, port_name, proto="tcp"):
        """The address from the A answer and the port from the SRV answer, as a client would."""
        (address,) = self.dig(f"{service}.default.svc.cluster.local")
        srv = self.dig(f"_{port_name}._{proto}.{service}.default.svc.cluster.local", "SRV")
        self.assertEqual(len(srv), 4, srv)
        return address, int(srv[2])

    def client(self, *args, timeout=60):
        return self.x("python3", os.path.join(HERE, "client.py"), *args,
                      timeout=timeout).stdout.splitlines()

    def metrics(self):
        return self.x("curl", "-s", "--max-time", "5", f"http://{ADMIN}/metrics").stdout

    def metric(self, text, service, port, result):
        pattern = (r'svcbox_proxy_connections_total\{service="%s",port="%s",result="%s"\} (\d+)'
                   % (re.escape(service), re.escape(port), result))
        match = re.search(pattern, text)
        self.assertIsNotNone(match, text)
        return int(match.group(1))

    def test_auto_picks_userspace_and_says_why(self):
        """Without CAP_NET_ADMIN, auto runs the userspace proxy and logs the reason."""
        log = self.serveLog()
        self.assertIn("proxy mode userspace (auto: svcbox cannot write netfilter rules", log)
        self.assertIn("grant CAP_NET_ADMIN and CAP_NET_RAW for the iptables mode", log)

    def test_low_port_is_mapped_and_shown(self):
        """Port 80 cannot be bound by nobody: 20080 instead, in the log and in SRV; A gives the
        proxy address; a port above 1024 keeps its number."""
        self.assertIn("default/web port 80/TCP listens on 127.0.0.1:20080 (port 80: Permission "
                      "denied; grant CAP_NET_BIND_SERVICE", self.serveLog())
        self.assertEqual(self.resolve("web", "http"), ("127.0.0.1", 20080))
        self.assertEqual(self.resolve("web", "echo"), ("127.0.0.1", 9000))
        self.assertEqual(self.resolve("web", "dns", "udp"), ("127.0.0.1", 20053))

    def test_get_svc_shows_the_mapping(self):
        """`svcbox get svc` (another process) shows the proxy address and PORT:LISTENER while
        serve runs."""
        out = run(BIN, "get", "svc", "--db", os.path.join(self.dir, "registry.db")).stdout
        web = [line.split() for line in out.splitlines() if line.startswith("web ")]
        self.assertEqual(len(web), 1, out)
        self.assertEqual(web[0][3], "127.0.0.1", out)
        self.assertEqual(web[0][4], "80:20080/TCP,53:20053/UDP,9000:9000/TCP", out)

    def test_services_sharing_a_port_are_told_apart_by_srv(self):
        """web and www both use port 80: each gets its own listener port, and SRV says which (web
        comes first in name order, so it has 20080 and www a port the kernel picked)."""
        web = self.resolve("web", "http")
        other = self.resolve("www", "http")
        self.assertNotEqual(web[1], other[1])
        self.assertEqual(set(self.client("http", *map(str, other), "4")), {"pod-c"})
        self.assertEqual(set(self.client("http", *map(str, web), "4")), {"pod-a", "pod-b"})

    def test_spread_over_pods(self):
        """Round-robin: 20 connections through the resolved address reach both pods evenly."""
        answers = self.client("http", *map(str, self.resolve("web", "http")), "20")
        self.assertEqual(answers.count("pod-a"), 10, answers)
        self.assertEqual(answers.count("pod-b"), 10, answers)

    def test_dead_pod_is_skipped_by_the_retry(self):
        """A pod whose process died (still ready: no probe) costs a retry, never a failed client
        connection."""
        address, port = self.resolve("web", "http")
        before = self.metrics()
        self.stop("pod-b")
        try:
            answers = self.client("http", address, str(port), "20")
            self.assertEqual(answers, ["pod-a"] * 20)
            after = self.metrics()
            self.assertEqual(self.metric(after, "default/web", "80/TCP", "failed"),
                             self.metric(before, "default/web", "80/TCP", "failed"))
            self.assertGreaterEqual(self.metric(after, "default/web", "80/TCP", "retried") -
                                    self.metric(before, "default/web", "80/TCP", "retried"), 9)
        finally:
            self.startPod("pod-b")

    def test_udp_echo(self):
        """UDP through the proxy: both pods by session, replies from the address asked."""
        address, port = self.resolve("web", "dns", "udp")
        replies = self.client("udp", address, str(port), "5")
        self.assertEqual(len(replies), 5, replies)
        pods = {line.split(":")[0] for line in replies}
        self.assertEqual(len(pods), 1, replies)  # one client socket: one session, one pod
        for line in replies:
            self.assertTrue(line.endswith(f" {address}:{port}"), line)
        seen = set()
        for _ in range(4):  # a new socket is a new session: round-robin moves on
            seen.add(self.client("udp", address, str(port), "1")[0].split(":")[0])
        self.assertEqual(seen, {"pod-a", "pod-b"})

    def test_half_close(self):
        """The client's half-close reaches the pod, which still answers and then closes."""
        address, port = self.resolve("web", "echo")
        (line,) = self.client("halfclose", address, str(port))
        count, tail = line.split(" ", 1)
        self.assertEqual(int(count), 102400)
        self.assertRegex(tail, r"^bye from pod-[ab]$")

    def test_slow_reader_does_not_make_svcbox_buffer(self):
        """A client that writes and never reads (the pod echoes) stalls at socket-buffer size;
        svcbox's memory does not grow with what the client tries to send."""
        pid = int(self.x("pgrep", "-u", "65534", "-x", "svcbox").stdout.split()[0])

        def rss_kib():
            with open(f"/proc/{pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

        before = rss_kib()
        address, port = self.resolve("web", "echo")
        process = subprocess.Popen(["ip", "netns", "exec", self.ns, "python3",
                                    os.path.join(HERE, "client.py"), "slow", address, str(port),
                                    "3"], stdout=subprocess.PIPE, text=True)
        try:
            sent = int(process.stdout.readline())
            during = rss_kib()
        finally:
            process.wait(timeout=30)
            process.stdout.close()
        # Five seconds of loopback could move gigabytes; only the socket buffers on the way hold.
        self.assertLess(sent, 64 * 1024 * 1024)
        self.assertLess(during - before, 16 * 1024, (before, during))



REDIRECT_MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
    - {name: http, protocol: TCP, port: 80, targetPort: 8080}
    - {name: echo, protocol: UDP, port: 53, targetPort: 5353}
"""


# The REDIRECT serve's full resync period: short, so that a repair shows within a test.
SYNC_PERIOD_S = 2


class UserspaceRedirectTest(unittest.TestCase):
    """With CAP_NET_ADMIN (root in the node namespace of the router tests' topology), an explicit
    --proxy-mode userspace REDIRECTs ClusterIP traffic to its listeners: the same client code
    reaches the pods through the ClusterIP."""

    @classmethod
    def setUpClass(cls):
        import sys
        sys.path.insert(0, os.path.join(HERE, "..", "router"))
        from topology import POD_IPS, Topology  # noqa: E402 (the router tests' namespaces)
        problem = None
        if os.geteuid() != 0:
            problem = "needs root for network namespaces and netfilter inside them"
        elif shutil.which("iptables-legacy-save") is None:
            problem = "needs iptables-legacy"
        elif run("ip", "netns", "list", check=False).returncode != 0:
            problem = "cannot use ip netns here"
        if problem:
            if IN_CI:
                raise AssertionError(f"CI=true and the REDIRECT e2e tests cannot run: {problem}")
            raise unittest.SkipTest(problem)
        cls.dir = tempfile.mkdtemp(prefix="svcbox-redirect-")
        cls.topo = Topology()
        try:
            cls.topo.up()
            manifest = os.path.join(cls.dir, "all.yaml")
            with open(manifest, "w") as f:
                f.write(REDIRECT_MANIFEST)
                for name, ip in POD_IPS.items():
                    f.write("---" + POD.format(name=name, ip=ip, app="web"))
            cls.db = os.path.join(cls.dir, "registry.db")
            run(BIN, "apply", "--db", cls.db, "-f", manifest)
            cls.log = os.path.join(cls.dir, "serve.log")
            cls.serve = cls.topo.start(cls.topo.node, BIN, "serve", "--db", cls.db,
                                       "--proxy-mode", "userspace", "--dns-listen",
                                       f"10.0.0.1:{DNS_PORT}", "--upstream", "127.0.0.1:9",
                                       "--admin-listen", "127.0.0.1:0", "--default-probe", "none",
                                       "--sync-period", f"{SYNC_PERIOD_S}s", log=cls.log)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "registry loaded" not in cls.serveLog():
                time.sleep(0.05)
            assert "registry loaded" in cls.serveLog(), cls.serveLog()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.topo.down()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def serveLog(cls):
        with open(cls.log) as f:
            return f.read()

    def client(self, *args):
        return run("ip", "netns", "exec", self.topo.client, "python3", os.path.join(HERE, "client.py"),
                   *args, timeout=60).stdout.splitlines()

    def test_rules_are_redirects_to_the_listeners(self):
        """nat holds one REDIRECT per Service port (to base + port), hooked from PREROUTING and
        OUTPUT; filter holds nothing of svcbox's."""
        self.assertIn("with REDIRECT", self.serveLog())
        nat = run("ip", "netns", "exec", self.topo.node, "iptables-legacy-save", "-t", "nat").stdout
        ours = sorted(line for line in nat.splitlines() if "SVCBOX" in line)
        self.assertEqual(ours, sorted([
            ":SVCBOX-SERVICES - [0:0]",
            "-A OUTPUT -j SVCBOX-SERVICES",
            "-A PREROUTING -j SVCBOX-SERVICES",
            '-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:80" '
            "-m tcp --dport 80 -j REDIRECT --to-ports 20080",
            '-A SVCBOX-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "default/web:53" '
            "-m udp --dport 53 -j REDIRECT --to-ports 20053",
        ]), nat)
        filt = run("ip", "netns", "exec", self.topo.node, "iptables-legacy-save", "-t", "filter").stdout
        self.assertNotIn("SVCBOX", filt)

    def iptables(self, *args):
        return run("ip", "netns", "exec", self.topo.node, "iptables-legacy", *args)

    def save(self, table):
        return run("ip", "netns", "exec", self.topo.node, "iptables-legacy-save", "-t", table).stdout

    def waitForRedirects(self):
        """Seconds until the nat table holds the jumps and the TCP REDIRECT again (bounded)."""
        started = time.monotonic()
        deadline = started + 10 * SYNC_PERIOD_S
        while time.monotonic() < deadline:
            nat = self.save("nat")
            if ("-A OUTPUT -j SVCBOX-SERVICES" in nat and "-A PREROUTING -j SVCBOX-SERVICES" in nat
                    and "--to-ports 20080" in nat):
                return time.monotonic() - started
            time.sleep(0.1)
        self.fail("the REDIRECT rules did not come back: " + self.save("nat"))

    def test_rules_flushed_from_outside_come_back(self):
        """An outside `iptables -t nat -F` removes the REDIRECTs and the jumps to them; the
        periodic full resync writes them back without a registry change, and clients reach the
        pods through the ClusterIP again."""
        self.iptables("-t", "nat", "-F")
        self.assertNotIn("-A OUTPUT -j SVCBOX-SERVICES", self.save("nat"))
        self.waitForRedirects()
        answers = self.client("http", "10.96.0.10", "80", "3")
        self.assertNotIn("FAILED", " ".join(answers))

    def test_tables_wiped_from_outside_come_back_with_the_canary(self):
        """A wipe of nat and mangle (flush, then delete every chain, as a foreign ruleset restore
        does) removes the canary chain too; the rules and the canary come back."""
        for table in ("nat", "mangle"):
            self.iptables("-t", table, "-F")
            self.iptables("-t", table, "-X")
        self.assertNotIn("SVCBOX-CANARY", self.save("mangle"))
        self.waitForRedirects()
        deadline = time.monotonic() + 10 * SYNC_PERIOD_S
        while "SVCBOX-CANARY" not in self.save("mangle") and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn(":SVCBOX-CANARY", self.save("mangle"))

    def test_get_svc_shows_the_listeners_and_no_external_address(self):
        """With REDIRECT clients use the ClusterIP: get svc shows the listener ports only."""
        out = run(BIN, "get", "svc", "--db", self.db).stdout
        web = [line.split() for line in out.splitlines() if line.startswith("web ")]
        self.assertEqual(web[0][2:5], ["10.96.0.10", "<none>", "80:20080/TCP,53:20053/UDP"], out)

    def test_client_resolves_the_cluster_ip_and_reaches_every_pod(self):
        """DNS answers the ClusterIP (no proxy address), and 30 connections to it through the
        REDIRECT spread over the three pods."""
        answer = run("ip", "netns", "exec", self.topo.client, "dig", "+short", "+time=2", "+tries=1",
                     "@10.0.0.1", "-p", str(DNS_PORT), "web.default.svc.cluster.local").stdout.split()
        self.assertEqual(answer, ["10.96.0.10"])
        answers = self.client("http", "10.96.0.10", "80", "30")
        self.assertNotIn("FAILED", " ".join(answers))
        for pod in ("pod1", "pod2", "pod3"):
            self.assertEqual(answers.count(pod), 10, answers)

    def test_udp_through_the_redirect_answers_from_the_cluster_ip(self):
        """A UDP reply relayed by the proxy comes back from ClusterIP:53, as the client asked."""
        replies = self.client("udp", "10.96.0.10", "53", "3")
        self.assertEqual(len(replies), 3, replies)
        for line in replies:
            self.assertRegex(line, r"^pod[123] 10\.96\.0\.10:53$")


if __name__ == "__main__":
    unittest.main()
