"""`svcbox serve` as one process, end to end: readiness probes, the admin API, kill -9 and
restarts, writers beside it. Everything runs in network namespaces this test makes (see
../../../shared/testing.md): svcbox in the node namespace with every rule, pods and a client in
their own, nothing linked to the host's, and every traffic loop bounded.

    [client 10.0.0.2] --veth-- [node 10.0.0.1: svcbox serve] --veth-- [pod1..3 10.244.N.2:8080]
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import BIN, POD_IPS, Topology, require, svcbox_env, temp_dir, wait_for  # noqa: E402

CLIENT_LOOP = os.path.join(HERE, "client_loop.py")
CLUSTER_IP = "10.96.0.10"


def service(name="web", cluster_ip=CLUSTER_IP, port=80):
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  clusterIP: {cluster_ip}
  selector: {{app: web}}
  ports: [{{name: http, port: {port}, targetPort: 8080}}]
"""


def pod(name, probe=None):
    text = f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  containers:
  - name: main
    image: any
    ports: [{{name: http, containerPort: 8080}}]
"""
    if probe:
        text += f"    readinessProbe: {probe}\n"
    return text + f"status: {{podIP: {POD_IPS[name]}}}\n"


def documents(*texts):
    return "---\n".join(texts)


class ServeTestCase(unittest.TestCase):
    def setUp(self):
        require(self, "the serve e2e tests", tools=("ip", "iptables-legacy-save"))
        self.dir = temp_dir(self, "svcbox-serve-")
        os.chmod(self.dir, 0o755)
        self.db = os.path.join(self.dir, "registry.db")
        self.topo = Topology()
        self.addCleanup(self.topo.down)
        self.topo.up()
        self.env = svcbox_env(db=self.db)
        self.serves = []

    # --- helpers -------------------------------------------------------------------------------
    def svcbox(self, *args, input=None):
        result = self.topo.x(self.topo.node, BIN, *args, env=self.env, input=input, check=False)
        self.assertEqual(result.returncode, 0, f"svcbox {args}: {result.stdout}{result.stderr}")
        return result.stdout

    def apply(self, text):
        return self.svcbox("apply", "-f", "-", input=text)

    def serve(self, *args):
        log = os.path.join(self.dir, f"serve-{len(self.serves)}.log")
        serve = self.topo.start_serve("--proxy-mode", "iptables", "--dns-listen", "10.0.0.1:53",
                                      "--upstream", "127.0.0.1:9", *args, env=self.env, log=log)
        self.serves.append(serve)
        return serve

    def wait_for(self, what, predicate, timeout=15, interval=0.05):
        """wait_for, showing every serve's log when it fails."""
        return wait_for(what, predicate, timeout, interval,
                        context=lambda: "".join(serve.context() for serve in self.serves))

    def http(self, path, method="GET", body=None, token=None, base="http://127.0.0.1:9153",
             ns=None, content_type="application/json"):
        """The latest serve's admin API at base, asked from the namespace ns (the node's if None);
        /api/ requests carry serve's token unless token is given ("" sends none)."""
        namespace = self.topo.namespaces[ns] if ns else None
        return self.serves[-1].http(path, method, body, token, content_type=content_type,
                                    admin=base, namespace=namespace)

    def wait_ready(self, base="http://127.0.0.1:9153", ns=None):
        self.wait_for("/readyz says ready", lambda: self.http("/readyz", base=base, ns=ns)[0] == 200)

    def tables(self):
        """svcbox's lines of nat and filter, as iptables-legacy-save shows them."""
        lines = []
        for table in ("nat", "filter"):
            listing = self.topo.x(self.topo.node, "iptables-legacy-save", "-t", table).stdout
            lines += [f"{table} {line}" for line in listing.splitlines() if "SVCBOX" in line]
        return lines

    def nat(self):
        return self.topo.x(self.topo.node, "iptables-legacy-save", "-t", "nat").stdout

    def pods_in_rules(self):
        return {name for name, ip in POD_IPS.items() if f"{ip}:8080" in self.nat()}

    def traffic(self, mode, target, port, count, interval_ms):
        return self.topo.start(self.topo.client, "python3", CLIENT_LOOP, mode, target, str(port),
                               str(count), str(interval_ms), stdout=subprocess.PIPE, text=True)

    def results(self, client, timeout=120):
        out, _ = client.communicate(timeout=timeout)
        rows = []
        for line in out.splitlines():
            start, end, outcome, detail = line.split(" ", 3)
            rows.append((float(start), float(end), outcome == "ok", detail))
        return rows

    def curl_counts(self, url, count):
        config = "".join(f'url = "{url}"\n' for _ in range(count))
        out = self.topo.x(self.topo.client, "curl", "-sS", "--max-time", "3", "-K", "-", input=config,
                          check=False, timeout=60 + count).stdout
        counts = {}
        for line in out.split():
            counts[line] = counts.get(line, 0) + 1
        return counts

    def dig(self, *args):
        return self.topo.x(self.topo.client, "dig", "@10.0.0.1", "+tries=1", "+time=3", *args,
                           check=False).stdout


class ReadinessTest(ServeTestCase):
    def test_a_dead_pod_leaves_within_its_thresholds_and_new_connections_never_fail_after(self):
        period, failures = 1, 2
        probe = f"{{tcpSocket: {{port: http}}, periodSeconds: {period}, failureThreshold: {failures}}}"
        self.apply(documents(service(), *[pod(name, probe) for name in POD_IPS]))
        self.serve()
        self.wait_ready()
        self.wait_for("every probed pod in the rules", lambda: self.pods_in_rules() == set(POD_IPS))

        client = self.traffic("http", CLUSTER_IP, 80, 250, 20)  # about 5 s, bounded
        time.sleep(0.5)
        killed_at = time.monotonic()
        self.topo.kill(self.topo.processes[0], signal.SIGKILL)  # pod1's server: the first started
        gone = self.wait_for("pod1 out of the rules", lambda: "pod1" not in self.pods_in_rules() and
                             time.monotonic(), timeout=10, interval=0.01)
        took = gone - killed_at
        print(f"\n  dead pod out of the rules {took * 1000:.0f} ms after the kill "
              f"(bound: failureThreshold x periodSeconds + 200 ms = {failures * period * 1000 + 200} ms)")
        self.assertLessEqual(took, failures * period + 0.2)

        rows = self.results(client)
        after = [r for r in rows if r[0] >= gone]
        self.assertGreater(len(after), 50)
        self.assertEqual([r for r in after if not r[2]], [], "failed new connections after removal")
        self.assertEqual({r[3] for r in after}, {"pod2", "pod3"})
        reason = self.svcbox("get", "pod", "pod1", "-o", "wide")
        self.assertIn("NotReady", reason)
        self.assertIn("readiness probe failed", reason)

        self.topo.start_pod("pod1")
        self.wait_for("pod1 back in the rules", lambda: "pod1" in self.pods_in_rules(), timeout=10)
        self.assertIn("pod1", self.curl_counts(f"http://{CLUSTER_IP}/", 60))

    def test_http_probe_follows_the_status_code(self):
        probe = "{httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, failureThreshold: 1}"
        self.apply(documents(service(), *[pod(name, probe) for name in POD_IPS]))
        self.serve()
        self.wait_for("every probed pod in the rules", lambda: self.pods_in_rules() == set(POD_IPS))
        self.topo.x(self.topo.node, "curl", "-sS", "--max-time", "3", f"http://{POD_IPS['pod2']}:8080/fail")
        self.wait_for("pod2 out after a 503", lambda: self.pods_in_rules() == {"pod1", "pod3"}, timeout=10)
        self.assertIn("HTTP 503", self.svcbox("get", "pod", "pod2", "-o", "wide"))
        self.topo.x(self.topo.node, "curl", "-sS", "--max-time", "3", f"http://{POD_IPS['pod2']}:8080/recover")
        self.wait_for("pod2 back after a 200", lambda: self.pods_in_rules() == set(POD_IPS), timeout=10)

    def test_the_default_probe_keeps_a_pod_without_a_server_out(self):
        self.serve()
        self.wait_ready()
        self.topo.kill(self.topo.processes[2], signal.SIGKILL)  # pod3 has no server from now on
        # Registered while serve runs with the default TCP probe: not ready until a probe succeeds.
        self.apply(documents(service(), *[pod(name) for name in POD_IPS]))
        self.wait_for("pod1 and pod2 in the rules", lambda: self.pods_in_rules() == {"pod1", "pod2"})
        time.sleep(1)
        self.assertEqual(self.pods_in_rules(), {"pod1", "pod2"})
        listing = self.svcbox("get", "pods", "-o", "wide")
        self.assertRegex(listing, r"pod3\s+0/1\s+NotReady")
        self.assertEqual(self.curl_counts(f"http://{CLUSTER_IP}/", 40).keys(), {"pod1", "pod2"})


class FaultTest(ServeTestCase):
    def test_kill_9_under_load_then_a_restart_serves_again_with_the_same_rules(self):
        self.apply(documents(service(), *[pod(name) for name in POD_IPS]))
        self.serve()
        self.wait_ready()
        self.wait_for("every pod in the rules", lambda: self.pods_in_rules() == set(POD_IPS))
        rules_before = self.tables()
        pods_before = self.svcbox("get", "pods", "-o", "json")

        dns = self.traffic("dns", "web.default.svc.cluster.local", 53, 400, 10)  # about 4 s
        http = self.traffic("http", CLUSTER_IP, 80, 150, 25)
        time.sleep(1)
        self.serves[0].kill9()
        time.sleep(0.3)
        restarted = time.monotonic()
        self.serve()
        dns_rows, http_rows = self.results(dns), self.results(http)
        back = [r for r in dns_rows if r[2] and r[0] >= restarted]
        self.assertTrue(back, "DNS never answered after the restart")
        took = back[0][1] - restarted
        print(f"\n  DNS answering {took * 1000:.0f} ms after the restart began (goal 1 s)")
        self.assertLess(took, 5)
        self.assertEqual({r[3] for r in dns_rows if r[2]}, {CLUSTER_IP})
        # The kernel kept the rules while svcbox was down: no connection failed at any time.
        self.assertEqual([r for r in http_rows if not r[2]], [])

        self.wait_ready()
        self.assertEqual(self.tables(), rules_before)
        nat = self.nat()
        for hook in ("PREROUTING", "OUTPUT", "POSTROUTING"):
            self.assertEqual(len(re.findall(rf"^-A {hook} .*SVCBOX", nat, re.M)), 1, nat)
        with sqlite3.connect(self.db) as connection:
            self.assertEqual(connection.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(json.loads(self.svcbox("get", "pods", "-o", "json"))["items"],
                         json.loads(pods_before)["items"])

    def test_cli_writers_converge_and_sigterm_leaves_the_rules(self):
        self.apply(documents(service(), *[pod(name) for name in POD_IPS]))
        serve = self.serve()
        self.wait_ready()
        self.apply(service("api", "10.96.0.20", 8081))
        self.wait_for("dig answers the new Service",
                      lambda: self.dig("+short", "api.default.svc.cluster.local").strip() == "10.96.0.20")
        self.wait_for("the new Service routes", lambda: self.curl_counts("http://10.96.0.20:8081/", 3))
        self.svcbox("delete", "svc", "api")
        self.wait_for("dig says NXDOMAIN", lambda: "NXDOMAIN" in self.dig("api.default.svc.cluster.local"))
        self.wait_for("the rules forget it", lambda: "10.96.0.20" not in self.nat())

        # Upstream down (nothing listens on 127.0.0.1:9): SERVFAIL at once, cluster names fine.
        started = time.monotonic()
        self.assertIn("status: SERVFAIL", self.dig("example.org"))
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(self.dig("+short", "web.default.svc.cluster.local").strip(), CLUSTER_IP)

        rules = self.tables()
        started = time.monotonic()
        self.assertEqual(serve.stop(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 2)
        self.assertEqual(self.tables(), rules, "rules stay installed across a restart")
        self.assertEqual(len(self.curl_counts(f"http://{CLUSTER_IP}/", 20)), 3)


class AdminApiTest(ServeTestCase):
    TOKEN = "s3cret-token"

    def test_a_container_registers_itself_and_reports_readiness_over_the_api(self):
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(self.TOKEN + "\n")
        base = "http://10.0.0.1:9153"
        self.serve("--admin-listen", "10.0.0.1:9153", "--admin-token-file", token_file)
        client = self.topo.client
        self.wait_ready(base=base, ns=client)

        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"clusterIP": CLUSTER_IP, "selector": {"app": "web"},
                        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
        code, text = self.http("/api/v1/namespaces/default/services", "POST", json.dumps(svc),
                               token="", base=base, ns=client)
        self.assertEqual(code, 401, text)
        code, text = self.http("/api/v1/namespaces/default/services", "POST", json.dumps(svc),
                               token=self.TOKEN, base=base, ns=client)
        self.assertEqual(code, 201, text)
        for name, ip in POD_IPS.items():
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "ports": [{"containerPort": 8080}]}]},
                    "status": {"podIP": ip}}
            code, text = self.http(f"/api/v1/namespaces/default/pods/{name}", "PUT", json.dumps(body),
                                   token=self.TOKEN, base=base, ns=client)
            self.assertEqual(code, 201, text)
            # Answered as stored: what a GET answers, with its time and readiness reason.
            answered = json.loads(text)
            self.assertNotIn("1970", answered["metadata"]["creationTimestamp"])
            self.assertEqual(answered["status"]["conditions"][0]["reason"],
                             "awaiting first default probe")
        self.wait_for("API-registered pods in the rules", lambda: self.pods_in_rules() == set(POD_IPS))
        self.assertEqual(self.dig("+short", "web.default.svc.cluster.local").strip(), CLUSTER_IP)

        # Bad input names the field and changes nothing.
        before = self.http("/api/v1/pods", token=self.TOKEN, base=base, ns=client)
        bad = dict(body, spec={"containers": [{"name": "main", "portz": []}]})
        code, text = self.http("/api/v1/namespaces/default/pods/pod3", "PUT", json.dumps(bad),
                               token=self.TOKEN, base=base, ns=client)
        self.assertEqual(code, 400, text)
        self.assertIn("portz", json.loads(text)["message"])
        self.assertNotIn("--validate", json.loads(text)["message"])  # the API has no such flag
        code, text = self.http("/api/v1/namespaces/default/pods", "POST", "{not json",
                               token=self.TOKEN, base=base, ns=client)
        self.assertEqual(code, 400, text)
        # A body whose alias contains itself: refused with where, and serve lives (it was SIGSEGV).
        code, text = self.http("/api/v1/namespaces/default/pods", "POST",
                               "&r {kind: List, apiVersion: v1, items: [*r]}\n",
                               token=self.TOKEN, base=base, ns=client,
                               content_type="application/yaml")
        self.assertEqual(code, 400, text)
        self.assertIn("cycle", json.loads(text)["message"])
        self.assertEqual(self.dig("+short", "web.default.svc.cluster.local").strip(), CLUSTER_IP)
        self.assertEqual(self.http("/api/v1/pods", token=self.TOKEN, base=base, ns=client), before)

        # A pod reports itself not ready (say, draining): it leaves the rules; ready: it returns.
        report = json.dumps({"ready": False, "reason": "draining"})
        code, text = self.http("/api/v1/namespaces/default/pods/pod1/readiness", "PUT", report,
                               token=self.TOKEN, base=base, ns=client)
        self.assertEqual(code, 200, text)
        self.wait_for("pod1 out", lambda: self.pods_in_rules() == {"pod2", "pod3"})
        time.sleep(2.5)  # longer than the default probe's period: the report is not overridden
        self.assertEqual(self.pods_in_rules(), {"pod2", "pod3"})
        report = json.dumps({"ready": True, "reason": "drained and back"})
        self.http("/api/v1/namespaces/default/pods/pod1/readiness", "PUT", report,
                  token=self.TOKEN, base=base, ns=client)
        self.wait_for("pod1 back", lambda: self.pods_in_rules() == set(POD_IPS))
        code, _ = self.http("/api/v1/namespaces/default/pods/pod3", "DELETE", token=self.TOKEN,
                            base=base, ns=client)
        self.assertEqual(code, 200)
        self.wait_for("pod3 gone", lambda: self.pods_in_rules() == {"pod1", "pod2"})

        # Metrics and health stay open without the token.
        self.assertEqual(self.http("/healthz", base=base, ns=client)[0], 200)
        code, metrics = self.http("/metrics", base=base, ns=client)
        self.assertEqual(code, 200)
        for family in ("svcbox_dns_requests_total", "svcbox_dns_responses_total",
                       "svcbox_sync_proxy_rules_duration_seconds_bucket",
                       "svcbox_network_programming_duration_seconds_count",
                       "svcbox_probe_results_total", "svcbox_endpoints"):
            self.assertIn(family, metrics)
        ready = re.search(r'^svcbox_endpoints\{state="ready"\} (\d+)', metrics, re.M)
        self.assertIsNotNone(ready, metrics)
        self.assertEqual(int(ready.group(1)), 2)

    def test_serve_makes_a_token_at_first_start_and_refuses_browsers_and_rebinding(self):
        # Not loopback and no --admin-token-file: the token serve makes beside the registry.
        base = "http://10.0.0.1:9153"
        serve = self.serve("--admin-listen", "10.0.0.1:9153")
        client = self.topo.client
        self.wait_ready(base=base, ns=client)
        token_file = self.db + ".admin-token"
        self.assertEqual(os.stat(token_file).st_mode & 0o777, 0o600)
        token = self.svcbox("admin-token").strip()
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        with open(token_file) as f:
            self.assertEqual(f.read().strip(), token)
        self.assertEqual(self.svcbox("admin-url", "--admin-listen", "10.0.0.1:9153").strip(), base)

        pods = "/api/v1/namespaces/default/pods"
        pod = json.dumps({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": "evil", "labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
                          "status": {"podIP": "10.0.0.66"}})
        self.assertEqual(self.http(pods, "POST", pod, token="", base=base, ns=client)[0], 401)
        # What a page in a browser on the host sends without a CORS preflight.
        curl = ["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"]
        namespace = self.topo.namespaces[client]
        cross_site = namespace.x(*curl, "-X", "POST", "-H", "Content-Type: text/plain",
                                 "-H", "Origin: http://evil.example", "--data-binary", pod,
                                 base + pods, check=False).stdout
        self.assertEqual(cross_site, "403")
        as_text = namespace.x(*curl, "-X", "POST", "-H", "Content-Type: text/plain",
                              "-H", f"Authorization: Bearer {token}", "--data-binary", pod,
                              base + pods, check=False).stdout
        self.assertEqual(as_text, "415")
        # DNS rebinding: a name of the attacker's pointed at this address.
        rebound = namespace.x(*curl, "-H", "Host: evil.example:9153", "-H",
                              f"Authorization: Bearer {token}", base + "/api/v1/pods",
                              check=False).stdout
        self.assertEqual(rebound, "403")
        health = namespace.x(*curl, "-H", "Host: evil.example:9153", base + "/healthz",
                             check=False).stdout
        self.assertEqual(health, "200")
        code, text = self.http("/api/v1/pods", token=token, base=base, ns=client)
        self.assertEqual(code, 200, text)
        self.assertEqual(json.loads(text)["items"], [])  # nothing above was written
        self.assertNotIn(token, serve.log_text())

        # The next start keeps the token its clients hold.
        serve.signal(signal.SIGTERM)
        self.assertEqual(serve.wait_exit(15), 0)
        self.serve("--admin-listen", "10.0.0.1:9153")
        self.wait_ready(base=base, ns=client)
        self.assertEqual(self.svcbox("admin-token").strip(), token)
        self.assertEqual(self.http("/api/v1/pods", token=token, base=base, ns=client)[0], 200)


if __name__ == "__main__":
    unittest.main()
