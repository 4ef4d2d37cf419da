"""End-to-end tests of the userspace proxy mode, without root for real: svcbox runs as nobody
(setpriv) inside a network namespace this test makes, the pods are servers on 127.0.0.2-4 in that
namespace, and every packet stays on its loopback (see ../../../shared/testing.md).

svcbox in auto mode must pick userspace by itself; the client resolves through svcbox's DNS (dig)
and connects where the answers point."""
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (AS_NOBODY, BIN, POD_IPS, Namespace, ServeProcess, Topology,  # noqa: E402
                        kill_process, register_cleanup, require, run, series_key, temp_dir,
                        wait_for)

CLIENT = os.path.join(HERE, "client.py")
DNS_PORT = 5300
ADMIN_LISTEN = "127.0.0.1:9901"
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


class UserspaceWithoutRootTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(cls, "the userspace e2e tests (root makes the namespace; svcbox runs as nobody)",
                tools=("setpriv", "dig"), netns=True)
        cls.dir = temp_dir(cls, "svcbox-userspace-")
        cls.ns = Namespace("userspace")
        register_cleanup(cls, cls.ns.remove)
        cls.pods = {}
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
        cls.serve = ServeProcess("--db", db, "--proxy-mode", "auto", "--dns-listen",
                                 f"127.0.0.1:{DNS_PORT}", "--upstream", "127.0.0.1:9",
                                 "--admin-listen", ADMIN_LISTEN, "--default-probe", "none",
                                 log=os.path.join(cls.dir, "serve.log"), namespace=cls.ns,
                                 binary=binary, wrapper=AS_NOBODY, admin=f"http://{ADMIN_LISTEN}")
        wait_for("serve to listen and load the registry",
                 lambda: "listens on" in cls.serve.log_text() and "registry loaded" in cls.serve.log_text(),
                 timeout=10, context=cls.serve.context)

    @classmethod
    def startPod(cls, name):
        process = cls.ns.start("python3", os.path.join(HERE, "pod_server.py"), name, PODS[name],
                               "8080", "5353", stdout=subprocess.PIPE, text=True)
        cls.pods[name] = process
        assert process.stdout.readline().strip() == "ready"

    @classmethod
    def stop(cls, name):
        process = cls.pods.pop(name)
        kill_process(process)
        process.stdout.close()

    @classmethod
    def tearDownClass(cls):
        for name in list(cls.pods):
            cls.stop(name)
        # A clean stop on SIGTERM (under the asan preset a sanitizer report makes this fail).
        code, log = cls.serve.stop(), cls.serve.log_text()
        if code != 0 or "Sanitizer" in log:
            raise AssertionError(f"serve stopped with {code}:\n{log}")

    def dig(self, name, qtype="A"):
        result = self.ns.x("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "-p",
                           str(DNS_PORT), name, qtype)
        return result.stdout.split()

    def resolve(self, service, port_name, proto="tcp"):
        """The address from the A answer and the port from the SRV answer, as a client would."""
        (address,) = self.dig(f"{service}.default.svc.cluster.local")
        srv = self.dig(f"_{port_name}._{proto}.{service}.default.svc.cluster.local", "SRV")
        self.assertEqual(len(srv), 4, srv)
        return address, int(srv[2])

    def client(self, *args, timeout=60):
        return self.ns.x("python3", CLIENT, *args, timeout=timeout).stdout.splitlines()

    def connections(self, metrics, result):
        """svcbox_proxy_connections_total of default/web's port 80 with this result."""
        key = series_key("svcbox_proxy_connections_total",
                         {"service": "default/web", "port": "80/TCP", "result": result})
        self.assertIn(key, metrics, metrics)
        return metrics[key]

    def test_auto_picks_userspace_and_says_why(self):
        """Without CAP_NET_ADMIN, auto runs the userspace proxy and logs the reason."""
        log = self.serve.log_text()
        self.assertIn("proxy mode userspace (auto: svcbox cannot write netfilter rules", log)
        self.assertIn("grant CAP_NET_ADMIN and CAP_NET_RAW for the iptables mode", log)

    def test_low_port_is_mapped_and_shown(self):
        """Port 80 cannot be bound by nobody: 20080 instead, in the log and in SRV; A gives the
        proxy address; a port above 1024 keeps its number."""
        self.assertIn("default/web port 80/TCP listens on 127.0.0.1:20080 (port 80: Permission "
                      "denied; grant CAP_NET_BIND_SERVICE", self.serve.log_text())
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
        before = self.serve.metrics()
        self.stop("pod-b")
        try:
            answers = self.client("http", address, str(port), "20")
            self.assertEqual(answers, ["pod-a"] * 20)
            after = self.serve.metrics()
            self.assertEqual(self.connections(after, "failed"), self.connections(before, "failed"))
            self.assertGreaterEqual(self.connections(after, "retried") -
                                    self.connections(before, "retried"), 9)
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
        def rss_kib():
            with open(f"/proc/{self.serve.pid}/status") as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

        before = rss_kib()
        address, port = self.resolve("web", "echo")
        process = self.ns.start("python3", CLIENT, "slow", address, str(port), "3",
                                stdout=subprocess.PIPE, text=True)
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
    """With CAP_NET_ADMIN (root in the node namespace of svcbox_e2e.Topology), an explicit
    --proxy-mode userspace REDIRECTs ClusterIP traffic to its listeners: the same client code
    reaches the pods through the ClusterIP."""

    @classmethod
    def setUpClass(cls):
        require(cls, "the REDIRECT e2e tests (netfilter inside network namespaces)",
                tools=("iptables-legacy-save",), netns=True)
        cls.dir = temp_dir(cls, "svcbox-redirect-")
        cls.topo = Topology()
        register_cleanup(cls, cls.topo.down)
        cls.topo.up()
        manifest = os.path.join(cls.dir, "all.yaml")
        with open(manifest, "w") as f:
            f.write(REDIRECT_MANIFEST)
            for name, ip in POD_IPS.items():
                f.write("---" + POD.format(name=name, ip=ip, app="web"))
        cls.db = os.path.join(cls.dir, "registry.db")
        run(BIN, "apply", "--db", cls.db, "-f", manifest)
        cls.serve = cls.topo.start_serve("--db", cls.db, "--proxy-mode", "userspace", "--dns-listen",
                                         f"10.0.0.1:{DNS_PORT}", "--upstream", "127.0.0.1:9",
                                         "--admin-listen", "127.0.0.1:0", "--default-probe", "none",
                                         "--sync-period", f"{SYNC_PERIOD_S}s",
                                         log=os.path.join(cls.dir, "serve.log"))
        cls.serve.wait_log("registry loaded", timeout=10)

    def client(self, *args):
        return self.topo.x(self.topo.client, "python3", CLIENT, *args, timeout=60).stdout.splitlines()

    def test_rules_are_redirects_to_the_listeners(self):
        """nat holds one REDIRECT per Service port (to base + port), hooked from PREROUTING and
        OUTPUT; filter's INPUT lets only redirected packets reach the listeners."""
        self.assertIn("with REDIRECT", self.serve.log_text())
        nat = self.save("nat")
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
        filt = self.save("filter")
        ours = [line for line in filt.splitlines() if "SVCBOX" in line]
        self.assertIn("-A INPUT -j SVCBOX-PROXY-INPUT", ours, filt)
        for proto, port in (("tcp", 20080), ("udp", 20053)):
            rules = [line for line in ours if f"--dport {port} " in line]
            self.assertEqual(len(rules), 2, filt)
            self.assertRegex(rules[0], rf"-p {proto} .*--ctstate DNAT -j RETURN$")
            self.assertRegex(rules[1], rf"-p {proto} .* -j REJECT")

    def iptables(self, *args):
        return self.topo.x(self.topo.node, "iptables-legacy", *args)

    def save(self, table):
        return self.topo.x(self.topo.node, "iptables-legacy-save", "-t", table).stdout

    def waitForRedirects(self):
        """Until the nat table holds the jumps and the TCP REDIRECT again (bounded)."""
        def restored():
            nat = self.save("nat")
            return ("-A OUTPUT -j SVCBOX-SERVICES" in nat and "-A PREROUTING -j SVCBOX-SERVICES" in nat
                    and "--to-ports 20080" in nat)
        wait_for("the REDIRECT rules to come back", restored, timeout=10 * SYNC_PERIOD_S,
                 interval=0.1, context=lambda: "\n" + self.save("nat"))

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
        wait_for("the canary chain to come back", lambda: ":SVCBOX-CANARY" in self.save("mangle"),
                 timeout=10 * SYNC_PERIOD_S, interval=0.1, context=lambda: "\n" + self.save("mangle"))

    def test_get_svc_shows_the_listeners_and_no_external_address(self):
        """With REDIRECT clients use the ClusterIP: get svc shows the listener ports only."""
        out = run(BIN, "get", "svc", "--db", self.db).stdout
        web = [line.split() for line in out.splitlines() if line.startswith("web ")]
        self.assertEqual(web[0][2:5], ["10.96.0.10", "<none>", "80:20080/TCP,53:20053/UDP"], out)

    def test_client_resolves_the_cluster_ip_and_reaches_every_pod(self):
        """DNS answers the ClusterIP (no proxy address), and 30 connections to it through the
        REDIRECT spread over the three pods."""
        answer = self.topo.x(self.topo.client, "dig", "+short", "+time=2", "+tries=1", "@10.0.0.1",
                             "-p", str(DNS_PORT), "web.default.svc.cluster.local").stdout.split()
        self.assertEqual(answer, ["10.96.0.10"])
        answers = self.client("http", "10.96.0.10", "80", "30")
        self.assertNotIn("FAILED", " ".join(answers))
        for pod in ("pod1", "pod2", "pod3"):
            self.assertEqual(answers.count(pod), 10, answers)

    def test_the_listeners_refuse_whatever_was_not_redirected_from_a_service(self):
        """Listening on every address must not expose every Service through node:20080: from
        another namespace through the node's address, and from the node to its loopback, the
        listeners refuse; the ClusterIP still works."""
        for host in ("10.0.0.1",):
            answers = self.client("http", host, "20080", "2")
            self.assertEqual([a.split()[0] for a in answers], ["FAILED", "FAILED"], answers)
            replies = self.client("udp", host, "20053", "1")
            self.assertEqual(replies[0].split()[0], "FAILED", replies)
        local = self.topo.x(self.topo.node, "python3", CLIENT, "http", "127.0.0.1", "20080", "1",
                            timeout=60).stdout.split()
        self.assertEqual(local[0], "FAILED", local)
        self.assertNotIn("FAILED", " ".join(self.client("http", "10.96.0.10", "80", "3")))
        # kube-proxy's CVE-2020-8558 came from route_localnet=1: svcbox never sets it.
        for conf in ("all", "default", "lo"):
            value = self.topo.x(self.topo.node, "cat",
                                f"/proc/sys/net/ipv4/conf/{conf}/route_localnet").stdout.strip()
            self.assertEqual(value, "0", conf)

    def test_the_proxy_itself_refuses_a_direct_tcp_connection_when_the_filter_is_gone(self):
        """SO_ORIGINAL_DST: with the INPUT jump deleted from outside (until the next resync puts
        it back), a direct connection reaches the listener and is reset there, no pod reached."""
        self.iptables("-D", "INPUT", "-j", "SVCBOX-PROXY-INPUT")
        try:
            answers = self.client("http", "10.0.0.1", "20080", "3")
        finally:
            wait_for("the INPUT jump to come back",
                     lambda: "-A INPUT -j SVCBOX-PROXY-INPUT" in self.save("filter"),
                     timeout=10 * SYNC_PERIOD_S, interval=0.1)
        for answer in answers:
            self.assertTrue(answer.startswith("FAILED"), answers)
            self.assertNotIn("pod", answer)

    def test_udp_through_the_redirect_answers_from_the_cluster_ip(self):
        """A UDP reply relayed by the proxy comes back from ClusterIP:53, as the client asked."""
        replies = self.client("udp", "10.96.0.10", "53", "3")
        self.assertEqual(len(replies), 3, replies)
        for line in replies:
            self.assertRegex(line, r"^pod[123] 10\.96\.0\.10:53$")


if __name__ == "__main__":
    unittest.main()
