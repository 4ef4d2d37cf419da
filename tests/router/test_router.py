"""End-to-end tests of iptables mode: the real binary writes real netfilter rules inside network
namespaces this test makes (never the host's), and real curl/TCP/UDP traffic goes through them.

Expected rulesets are written out by hand below; the SVC/AFF hashes were computed once with an
independent FNV-1a 64 + base32 in Python (not with svcbox)."""
import os
import random
import re
import shutil
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (AS_NOBODY, BIN, POD_IPS, Topology, require, run, svcbox_env,  # noqa: E402
                        temp_dir, wait_for)

MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: 10.96.0.11
  selector: {app: nothing}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.0.12
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  clusterIP: 10.96.0.13
  selector: {app: web}
  ports: [{protocol: UDP, port: 53, targetPort: echo}]
"""


def pod_manifest(name):
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  containers:
  - name: main
    image: any
    ports: [{{name: http, containerPort: 8080}}, {{name: echo, containerPort: 5353, protocol: UDP}}]
status: {{podIP: {POD_IPS[name]}}}
"""


EVERYTHING = "\n---\n".join([MANIFEST] + [pod_manifest(p) for p in POD_IPS])


def hand(text):
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def mark_masq(chain):
    return [f"-A {chain} -s 10.244.{i}.2/32 -j SVCBOX-MARK-MASQ" for i in (1, 2, 3)]


WEB = "SVCBOX-SVC-V2NN5WUJSMZPW"     # default/web:http/TCP
STICKY = "SVCBOX-SVC-IAGMCUSRCY55E"  # default/sticky:80/TCP
ECHO = "SVCBOX-SVC-SCPZ4VQ27XOQQ"    # default/echo:53/UDP
AFF = ["SVCBOX-AFF-E7FZA56HI7ZZ6", "SVCBOX-AFF-WM3C5A2M2425Y", "SVCBOX-AFF-CQKDJKSRDYLB2"]
RECENT = "--mask 255.255.255.255 --rsource"

EXPECTED_NAT = hand(f"""
:SVCBOX-MARK-MASQ - [0:0]
:SVCBOX-POSTROUTING - [0:0]
:SVCBOX-SERVICES - [0:0]
:{STICKY} - [0:0]
:{ECHO} - [0:0]
:{WEB} - [0:0]
-A PREROUTING -j SVCBOX-SERVICES
-A OUTPUT -j SVCBOX-SERVICES
-A POSTROUTING -j SVCBOX-POSTROUTING
-A SVCBOX-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A SVCBOX-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A SVCBOX-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A SVCBOX-POSTROUTING -j MASQUERADE
-A SVCBOX-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j {WEB}
-A SVCBOX-SERVICES -d 10.96.0.12/32 -p tcp -m comment --comment "default/sticky:80" -m tcp --dport 80 -j {STICKY}
-A SVCBOX-SERVICES -d 10.96.0.13/32 -p udp -m comment --comment "default/echo:53" -m udp --dport 53 -j {ECHO}
""") + mark_masq(STICKY) + hand(f"""
-A {STICKY} -p tcp -m recent --rcheck --seconds 300 --reap --name {AFF[0]} {RECENT} -j DNAT --to-destination 10.244.1.2:8080
-A {STICKY} -p tcp -m recent --rcheck --seconds 300 --reap --name {AFF[1]} {RECENT} -j DNAT --to-destination 10.244.2.2:8080
-A {STICKY} -p tcp -m recent --rcheck --seconds 300 --reap --name {AFF[2]} {RECENT} -j DNAT --to-destination 10.244.3.2:8080
-A {STICKY} -p tcp -m statistic --mode random --probability 0.33333333349 -m recent --set --name {AFF[0]} {RECENT} -j DNAT --to-destination 10.244.1.2:8080
-A {STICKY} -p tcp -m statistic --mode random --probability 0.50000000000 -m recent --set --name {AFF[1]} {RECENT} -j DNAT --to-destination 10.244.2.2:8080
-A {STICKY} -p tcp -m recent --set --name {AFF[2]} {RECENT} -j DNAT --to-destination 10.244.3.2:8080
""") + mark_masq(ECHO) + hand(f"""
-A {ECHO} -p udp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.1.2:5353
-A {ECHO} -p udp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.2.2:5353
-A {ECHO} -p udp -j DNAT --to-destination 10.244.3.2:5353
""") + mark_masq(WEB) + hand(f"""
-A {WEB} -p tcp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.244.1.2:8080
-A {WEB} -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.244.2.2:8080
-A {WEB} -p tcp -j DNAT --to-destination 10.244.3.2:8080
""")

EXPECTED_FILTER = hand("""
:SVCBOX-FORWARD - [0:0]
:SVCBOX-SERVICES - [0:0]
-A INPUT -j SVCBOX-SERVICES
-A FORWARD -j SVCBOX-FORWARD
-A OUTPUT -j SVCBOX-SERVICES
-A SVCBOX-FORWARD -j SVCBOX-SERVICES
-A SVCBOX-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT
-A SVCBOX-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A SVCBOX-SERVICES -d 10.96.0.11/32 -p tcp -m comment --comment "default/empty:80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
""")

# Rules another tool owns; svcbox must leave every one of them as it was.
FOREIGN = [
    ("nat", "-N", "FOREIGN-DNAT"),
    ("nat", "-A", "FOREIGN-DNAT", "-p", "tcp", "-j", "DNAT", "--to-destination", "10.244.1.2:8080"),
    ("nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9999", "-j", "FOREIGN-DNAT"),
    ("nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "MASQUERADE"),
    ("filter", "-A", "FORWARD", "-s", "192.0.2.0/24", "-j", "DROP"),
    ("filter", "-A", "OUTPUT", "-d", "198.51.100.7/32", "-j", "REJECT"),
    ("mangle", "-A", "PREROUTING", "-j", "MARK", "--set-mark", "0x1"),
]


def save_lines(topo, table):
    out = topo.x(topo.node, "iptables-legacy-save", "-t", table).stdout
    return [re.sub(r"\[\d+:\d+\]$", "[0:0]", line) for line in out.splitlines() if not line.startswith("#")]


def svcbox_part(lines):
    """svcbox's lines, in a stable shape: declarations, the hook jumps, then each chain's rules in
    order (chains sorted by name), as kube-proxy's tests compare rulesets."""
    declarations = sorted(l for l in lines if l.startswith(":SVCBOX-"))
    hooks = [l for l in lines if l.startswith("-A ") and not l.startswith("-A SVCBOX-") and " -j SVCBOX-" in l]
    rules = [l for l in lines if l.startswith("-A SVCBOX-")]
    rules.sort(key=lambda l: l.split()[1])  # stable: keeps each chain's order
    return declarations + hooks + rules


def foreign_part(lines):
    return [l for l in lines if "SVCBOX-" not in l]


class RouterTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(cls, "the router e2e tests", tools=("iptables-legacy-save", "curl"), netns=True)
        cls.dir = temp_dir(cls, "svcbox-router-")
        cls.topo = Topology()
        cls.addClassCleanup(cls.topo.down)
        cls.topo.up()
        cls.env = svcbox_env(db=os.path.join(cls.dir, "registry.db"))
        cls.serves = []  # ServeProcess (the pods' servers are in topo.processes too)
        cls.serves_started = 0  # numbers the serve logs

    def svcbox(self, *args, check=True):
        result = run(BIN, *args, env=self.env, check=False, timeout=60)
        if check:
            self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def apply(self, text):
        path = os.path.join(self.dir, f"m{random.randrange(10**9)}.yaml")
        with open(path, "w") as f:
            f.write(text)
        self.svcbox("apply", "-f", path)

    def serve(self, *args, env=None):
        type(self).serves_started += 1
        log = os.path.join(self.dir, f"serve-{self.serves_started}.log")
        # DNS and the admin API on free ports of the node's loopback, and no default probe: these
        # tests are about the rules (tests/serve covers readiness).
        serve = self.topo.start_serve("--proxy-mode", "iptables", "--dns-listen", "127.0.0.1:0",
                                      "--upstream", "127.0.0.1:9", "--admin-listen", "127.0.0.1:0",
                                      "--default-probe", "none", *args, env=env or self.env, log=log)
        self.serves.append(serve)
        return serve

    def wait_for(self, what, predicate, timeout=15, interval=0.05):
        """wait_for, showing the logs of every serve of this class when it fails."""
        return wait_for(what, predicate, timeout, interval,
                        context=lambda: "".join(serve.context() for serve in self.serves))

    def curl(self, ns, url, count=1, max_time=5):
        config = "".join(f'url = "{url}"\n' for _ in range(count))
        return self.topo.x(ns, "curl", "-sS", "--max-time", str(max_time), "-K", "-", input=config,
                           check=False, timeout=60 + count)


class TrafficTest(RouterTestCase):
    """One serve in the node namespace; traffic from the client and the pods."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        test = cls("test_rules_read_back_as_written")
        test.apply(EVERYTHING)
        cls.serve_process = test.serve()
        cls.serve_process.wait_log("full sync of snapshot")

    def test_rules_read_back_as_written(self):
        """The kernel lists exactly the hand-written ruleset (struct layouts, revisions, order)."""
        self.assertEqual(svcbox_part(save_lines(self.topo, "nat")), EXPECTED_NAT)
        self.assertEqual(svcbox_part(save_lines(self.topo, "filter")), EXPECTED_FILTER)
        self.assertEqual(svcbox_part(save_lines(self.topo, "mangle")), [":SVCBOX-CANARY - [0:0]"])
        # (Never `svcbox rules` in the host's namespace: even reading would instantiate legacy
        # tables there.)
        in_node = self.topo.x(self.topo.node, BIN, "rules").stdout.splitlines()
        self.assertIn(f"-A SVCBOX-SVC-V2NN5WUJSMZPW -p tcp -j DNAT --to-destination 10.244.3.2:8080", in_node)

    def test_curl_spreads_over_three_pods(self):
        """300 curls to the ClusterIP: every pod serves at least 20%."""
        result = self.curl(self.topo.client, "http://10.96.0.10/", count=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        served = result.stdout.split()
        self.assertEqual(len(served), 300)
        for pod in POD_IPS:
            self.assertGreaterEqual(served.count(pod), 60, f"{pod}: {served.count(pod)} of 300")

    def test_service_without_endpoints_refuses_at_once(self):
        """REJECT, not DROP: curl learns "connection refused" well before any timeout."""
        started = time.monotonic()
        result = self.curl(self.topo.client, "http://10.96.0.11/", max_time=20)
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 7, result.stderr)  # 7: failed to connect
        self.assertLess(elapsed, 5)
        # curl words it "Couldn't connect"; the errno tells REJECT (refused) from a lost route.
        probe = ("import socket\ntry:\n socket.create_connection(('10.96.0.11', 80), timeout=10)\n"
                 "except OSError as e:\n print(type(e).__name__)")
        out = self.topo.x(self.topo.client, "python3", "-c", probe).stdout.strip()
        self.assertEqual(out, "ConnectionRefusedError")

    def test_client_ip_affinity_sticks_to_one_pod(self):
        """sessionAffinity ClientIP: 20 requests from one client land on one pod."""
        result = self.curl(self.topo.client, "http://10.96.0.12/", count=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        served = result.stdout.split()
        self.assertEqual(len(served), 20)
        self.assertEqual(len(set(served)), 1, served)

    def test_hairpin_pod_reaches_itself_through_its_service(self):
        """A pod connecting to its own Service's ClusterIP is answered, by itself too."""
        result = self.curl(self.topo.pods["pod1"], "http://10.96.0.10/", count=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        served = result.stdout.split()
        self.assertEqual(len(served), 30)
        self.assertIn("pod1", served)  # (2/3)^30: never missing by chance

    def test_zz_udp_flow_moves_when_its_pod_leaves(self):
        """A UDP flow answered by a pod moves to a surviving pod once that pod leaves the registry
        (the pod process keeps running: only the conntrack cleanup can move the flow)."""
        client = self.topo.start(self.topo.client, "python3", os.path.join(HERE, "udp_client.py"),
                                 "10.96.0.13", "53", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)

        def ask():
            client.stdin.write("x\n")
            client.stdin.flush()
            return client.stdout.readline().strip()

        first = ask()
        self.assertIn(first, POD_IPS)
        self.assertEqual(ask(), first)  # same flow, same pod
        self.svcbox("delete", "pod", first)
        gone = f"--to-destination {POD_IPS[first]}:5353"
        self.wait_for("the pod's DNAT rule to go",
                      lambda: not any(gone in l for l in save_lines(self.topo, "nat")))
        # The flow's entry goes after the tables are committed; the sync logs it.
        self.serve_process.wait_log("stale UDP conntrack entries")
        after = ask()
        self.assertIn(after, POD_IPS)
        self.assertNotEqual(after, first)
        client.stdin.close()
        client.wait(timeout=10)
        client.stdout.close()
        self.apply(pod_manifest(first))


class LifecycleTest(RouterTestCase):
    """Restarts, crashes, other iptables users, external flushes, missing capability."""

    def setUp(self):
        for table, *args in FOREIGN:
            self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", table, *args)
        self.before = {t: save_lines(self.topo, t) for t in ("nat", "filter", "mangle")}

    def tearDown(self):
        for serve in self.serves:
            serve.kill9()
        self.serves.clear()
        self.topo.x(self.topo.node, BIN, "cleanup")
        for table in ("nat", "filter", "mangle"):
            self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", table, "-F")
            self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", table, "-X")

    def assert_converged(self):
        for table, expected in (("nat", EXPECTED_NAT), ("filter", EXPECTED_FILTER)):
            lines = save_lines(self.topo, table)
            self.assertEqual(svcbox_part(lines), expected, table)
            self.assertEqual(foreign_part(lines), self.before[table], f"foreign {table} rules changed")

    def converged(self):
        try:
            return all(svcbox_part(save_lines(self.topo, t)) == e
                       for t, e in (("nat", EXPECTED_NAT), ("filter", EXPECTED_FILTER)))
        except subprocess.CalledProcessError:
            return False

    def test_kill_9_mid_sync_then_restart_converges_without_duplicates(self):
        """kill -9 at many points of syncing (also between the nat and the filter commit), then a
        restart: the installed rules equal the desired ones, each hook jump exists once, and the
        other tools' rules are as they were."""
        self.apply(EVERYTHING)
        # Many Services make the first sync long enough to be hit in the middle.
        bulk = "".join(f"""---
apiVersion: v1
kind: Service
metadata: {{name: bulk{i}}}
spec: {{selector: {{app: web}}, ports: [{{port: {1000 + i}, targetPort: 8080}}]}}
""" for i in range(400))
        self.apply(bulk)
        for attempt in range(6):  # at random points of start-up and the first sync
            serve = self.serve()
            time.sleep(random.uniform(0.0, 0.3))
            serve.kill9()
        # At the test-only pause point: nat committed, filter not yet.
        self.topo.x(self.topo.node, BIN, "cleanup")
        paused = dict(self.env, SVCBOX_TEST_PAUSE_BETWEEN_TABLES_MS="3000")
        serve = self.serve(env=paused)
        self.wait_for("the nat commit", lambda: any("default/bulk399:1399" in l for l in save_lines(self.topo, "nat")))
        serve.kill9()
        self.assertEqual(svcbox_part(save_lines(self.topo, "filter")), [], "killed before the filter commit")
        self.svcbox("delete", "-f", self.write_bulk(bulk))
        serve = self.serve()
        self.wait_for("convergence after restart", self.converged)
        self.assert_converged()
        # And once more: a restart over installed rules adds no second jump.
        serve.kill9()
        self.serve().wait_log("full sync")
        self.assert_converged()
        nat = save_lines(self.topo, "nat")
        self.assertEqual(sum(1 for l in nat if l == "-A PREROUTING -j SVCBOX-SERVICES"), 1)

    def write_bulk(self, text):
        path = os.path.join(self.dir, "bulk.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_cleanup_leaves_only_the_foreign_rules(self):
        """svcbox cleanup removes every svcbox chain and jump; the tables are as before svcbox."""
        self.apply(EVERYTHING)
        serve = self.serve()
        self.wait_for("convergence", self.converged)
        serve.kill9()
        out = self.topo.x(self.topo.node, BIN, "cleanup").stdout
        self.assertIn("removed svcbox's chains and jumps", out)
        for table in ("nat", "filter", "mangle"):
            self.assertEqual(save_lines(self.topo, table), self.before[table], table)

    def test_cleanup_on_exit_removes_everything_at_sigterm(self):
        """--cleanup-on-exit: a clean stop leaves no svcbox chain or jump (by default the rules stay,
        so traffic keeps flowing while svcbox restarts)."""
        self.apply(EVERYTHING)
        serve = self.serve("--cleanup-on-exit")
        self.wait_for("convergence", self.converged)
        self.assertEqual(serve.stop(timeout=20), 0)
        self.assertIn("removed svcbox's chains and jumps", serve.log_text())
        for table in ("nat", "filter", "mangle"):
            self.assertEqual(save_lines(self.topo, table), self.before[table], table)

    def test_external_flush_is_repaired_through_the_canary(self):
        """Someone flushes every table (a firewall reload): svcbox notices and rewrites its rules."""
        self.apply(EVERYTHING)
        serve = self.serve()
        self.wait_for("convergence", self.converged)
        for table in ("nat", "filter", "mangle"):
            self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", table, "-F")
            self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", table, "-X")
        self.before = {t: save_lines(self.topo, t) for t in ("nat", "filter", "mangle")}
        self.wait_for("repair after the flush", self.converged, timeout=30)
        self.assertIn("canary chain mangle/SVCBOX-CANARY is gone", serve.log_text())
        self.assert_converged()

    def test_nat_read_ahead_never_undoes_another_iptables_user(self):
        """The router reads the nat table while idle so that the next change skips the read. An
        iptables user changing the table meanwhile, even without changing its shape (a rule
        replaced by one of the same size), makes svcbox read it again: its next commit keeps the
        other tool's rule."""
        self.apply(EVERYTHING)
        serve = self.serve()
        self.wait_for("convergence", self.converged)
        extra = """apiVersion: v1
kind: Service
metadata: {name: extra}
spec: {selector: {app: web}, ports: [{port: 81, targetPort: 8080}]}
"""
        nat_syncs = lambda: re.findall(r"nat \d+ written/\d+ kept/\d+ removed \((read(?: ahead)?) ",
                                       serve.log_text())
        before = len(nat_syncs())
        self.apply(extra)
        self.wait_for("a partial sync of the new Service", lambda: len(nat_syncs()) > before)
        self.assertEqual(nat_syncs()[-1], "read ahead", "the idle read was not used")
        time.sleep(0.5)  # the router reads ahead again after its sync
        postrouting = [l for l in save_lines(self.topo, "nat") if l.startswith("-A POSTROUTING")]
        number = postrouting.index("-A POSTROUTING -s 10.99.0.0/16 -j MASQUERADE") + 1
        self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", "nat", "-R", "POSTROUTING", str(number),
                    "-s", "10.98.0.0/16", "-j", "MASQUERADE")
        replaced = [l.replace("10.99.0.0/16", "10.98.0.0/16") for l in self.before["nat"]]
        self.assertNotEqual(replaced, self.before["nat"])
        self.before["nat"] = replaced
        before = len(nat_syncs())
        self.svcbox("delete", "service", "extra")
        self.wait_for("a partial sync without it", lambda: len(nat_syncs()) > before)
        self.assertEqual(nat_syncs()[-1], "read", "a table changed by another tool was not read again")
        self.assert_converged()

    def desired_nat(self):
        """`svcbox rules --desired`: the nat rules computed whole from the registry."""
        text = self.topo.x(self.topo.node, BIN, "rules", "--desired", env=self.env).stdout
        return text.split("*nat\n", 1)[1].split("COMMIT", 1)[0].splitlines()

    def test_endpoint_changes_rewrite_only_their_chains(self):
        """A pod leaving and coming back changes only the chains of its Services: the router then
        names just those to the writer, which rewrites them in the table it read ahead. The kernel
        ends up with what the registry implies, computed whole; after another tool edits the
        table, the same kind of change reads it again and keeps that tool's rule."""
        self.apply(EVERYTHING)
        serve = self.serve()
        self.wait_for("convergence", self.converged)
        nat_syncs = lambda: re.findall(r"nat (\d+) written/\d+ kept/\d+ removed \((read(?: ahead)?) ",
                                       serve.log_text())
        before = len(nat_syncs())
        self.svcbox("delete", "pod", "pod3")
        self.wait_for("a partial sync without pod3", lambda: len(nat_syncs()) > before)
        self.assertEqual(nat_syncs()[-1], ("3", "read ahead"))  # web, sticky, echo
        installed = svcbox_part(save_lines(self.topo, "nat"))
        self.assertEqual(installed, svcbox_part(self.desired_nat()))
        self.assertFalse([l for l in installed if "10.244.3.2" in l])
        self.assertEqual(foreign_part(save_lines(self.topo, "nat")), self.before["nat"])
        time.sleep(0.5)  # the router reads ahead again after its sync
        postrouting = [l for l in save_lines(self.topo, "nat") if l.startswith("-A POSTROUTING")]
        number = postrouting.index("-A POSTROUTING -s 10.99.0.0/16 -j MASQUERADE") + 1
        self.topo.x(self.topo.node, "iptables-legacy", "-w", "-t", "nat", "-R", "POSTROUTING", str(number),
                    "-s", "10.98.0.0/16", "-j", "MASQUERADE")
        self.before["nat"] = [l.replace("10.99.0.0/16", "10.98.0.0/16") for l in self.before["nat"]]
        before = len(nat_syncs())
        self.apply(pod_manifest("pod3"))
        self.wait_for("a partial sync with pod3", lambda: len(nat_syncs()) > before)
        self.assertEqual(nat_syncs()[-1], ("3", "read"))
        self.assert_converged()

    def test_masquerade_all_and_cluster_cidr_change_the_source_pods_see(self):
        """By default a pod sees the client's own address; --masquerade-all, or a client outside
        --cluster-cidr, makes it see the node's."""
        self.apply(EVERYTHING)
        seen = {}
        for name, args in (("default", []), ("all", ["--masquerade-all"]),
                           ("outside", ["--cluster-cidr", "10.244.0.0/16"])):
            serve = self.serve(*args)
            serve.wait_log("full sync")
            result = self.curl(self.topo.client, "http://10.96.0.10/client", count=3)
            self.assertEqual(result.returncode, 0, result.stderr)
            seen[name] = set(result.stdout.split())
            serve.kill9()
            self.topo.x(self.topo.node, BIN, "cleanup")
            self.topo.x(self.topo.node, "conntrack", "-F", check=False)
        self.assertEqual(seen["default"], {"10.0.0.2"})
        for name in ("all", "outside"):
            self.assertTrue(seen[name] and seen[name] <= {"10.244.1.1", "10.244.2.1", "10.244.3.1"}, seen)

    def test_many_services_dispatch_through_prefix_buckets(self):
        """Above 64 Service ports the dispatch goes through SVCBOX-IP-* bucket chains; traffic
        still reaches the pods and the bucket chains vanish when the Services do."""
        bulk = "".join(f"""---
apiVersion: v1
kind: Service
metadata: {{name: many{i}}}
spec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
""" for i in range(100))
        self.apply(EVERYTHING + "\n" + bulk)
        self.serve().wait_log("full sync")
        nat = save_lines(self.topo, "nat")
        self.assertTrue(any(l.startswith(":SVCBOX-IP-10.96.0.") for l in nat), nat[:20])
        self.assertFalse(any(l.startswith("-A SVCBOX-SERVICES -d 10.96.0.10/32") for l in nat))
        result = self.curl(self.topo.client, "http://10.96.0.10/", count=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(set(result.stdout.split()), set(POD_IPS))
        path = os.path.join(self.dir, "many.yaml")
        with open(path, "w") as f:
            f.write(bulk)
        self.svcbox("delete", "-f", path)
        self.wait_for("convergence without the buckets", self.converged)
        self.assert_converged()

    def test_without_cap_net_admin_one_line_error(self):
        """Dropped privileges for real: --proxy-mode iptables fails with one line naming the
        capability and the way out; auto falls back to the userspace proxy and keeps serving."""
        private = temp_dir(self, "svcbox-nocap-")
        os.chmod(private, 0o755)
        binary = shutil.copy(BIN, os.path.join(private, "svcbox"))
        shutil.copy(os.path.join(self.dir, "registry.db"), os.path.join(private, "registry.db")) \
            if os.path.exists(os.path.join(self.dir, "registry.db")) else None
        os.chown(private, 65534, 65534)
        for name in os.listdir(private):
            os.chown(os.path.join(private, name), 65534, 65534)
        env = dict(self.env, SVCBOX_DB=os.path.join(private, "registry.db"))
        args = ["--dns-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--default-probe", "none"]
        result = self.topo.x(self.topo.node, *AS_NOBODY, binary, "serve", *args, "--proxy-mode",
                             "iptables", env=env, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        # The start-up log line, then the error: one line, the last.
        errors = [l for l in result.stderr.splitlines() if l.startswith("error")]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertEqual(result.stderr.strip().splitlines()[-1], errors[0])
        self.assertIn("CAP_NET_ADMIN", errors[0])
        self.assertIn("--proxy-mode userspace", errors[0])
        self.assertIn("--proxy-mode none", errors[0])
        auto = self.topo.start_serve(*args, "--proxy-mode", "auto", env=env, binary=binary,
                                     wrapper=AS_NOBODY, log=os.path.join(self.dir, "auto.log"))
        line = auto.wait_log(r"^.*proxy mode userspace.*$", timeout=10).group(0)
        self.assertIn("proxy mode userspace (auto: svcbox cannot write netfilter rules", line)
        self.assertEqual(auto.stop(), 0)

if __name__ == "__main__":
    unittest.main()
