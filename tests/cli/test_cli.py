"""The real svcbox binary on real registry files: what a user of kubectl expects.

Run through ctest (which sets SVCBOX_BIN and SVCBOX_EXAMPLES) or by hand:
  SVCBOX_BIN=build/release/app/svcbox SVCBOX_EXAMPLES=examples python3 -m unittest -v test_cli
These tests touch files under a temporary folder. `serve` with pods runs inside a network
namespace the test makes with nothing but loopback (its prober sends packets to the pods'
addresses, which must not leave the machine), and writes no netfilter rule (--proxy-mode none).
"""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from svcbox_e2e import (AS_NOBODY, BIN, REPO, Namespace, ServeProcess, kill_process,  # noqa: E402
                        require, run, svcbox_env, temp_dir, wait_for)

EXAMPLES = os.path.abspath(os.environ.get("SVCBOX_EXAMPLES", os.path.join(REPO, "examples")))
SEED = os.path.join(EXAMPLES, "service-test.yaml")


def is_stopped(pid):
    """Whether the process is stopped (state T: it raised SIGSTOP at a test pause point)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1].startswith("T")


def read_seed():
    with open(SEED) as f:
        return f.read()


def big_manifest(services, pods_per_service):
    docs = []
    for i in range(services):
        docs.append(
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: bulk}}\n"
            f"spec: {{selector: {{app: a{i}}}, ports: [{{port: 80, targetPort: 8080}}]}}\n")
        for j in range(pods_per_service):
            n = i * pods_per_service + j
            docs.append(
                f"apiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{n}, namespace: bulk, labels: {{app: a{i}}}}}\n"
                f"spec: {{containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}\n"
                f"status: {{podIP: 10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}}}\n")
    return "---\n".join(docs)


class CliTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = temp_dir(self, "svcbox-cli-")
        self.db = os.path.join(self.dir, "registry.db")
        self.env = svcbox_env(db=self.db)

    def run_svcbox(self, *args, env=None, input=None, timeout=60):
        return run(BIN, *args, env=env or self.env, input=input, check=False, timeout=timeout)

    def ok(self, *args, **kwargs):
        result = self.run_svcbox(*args, **kwargs)
        self.assertEqual(result.returncode, 0, f"svcbox {' '.join(args)}\n{result.stdout}{result.stderr}")
        return result.stdout

    def fails(self, *args, code=1, **kwargs):
        result = self.run_svcbox(*args, **kwargs)
        self.assertEqual(result.returncode, code, f"svcbox {' '.join(args)}\n{result.stdout}{result.stderr}")
        return result.stderr

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def registry_rows(self, db=None):
        """Every row of every table: a registry's whole content, for before/after checks."""
        with sqlite3.connect(db or self.db) as connection:
            tables = [r[0] for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            return {t: sorted(connection.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}

    def integrity(self, db=None):
        with sqlite3.connect(db or self.db) as connection:
            return connection.execute("PRAGMA integrity_check").fetchone()[0]


class ApplyGetDeleteTest(CliTestCase):
    def test_seed_example_applies_and_lists_like_kubectl(self):
        out = self.ok("apply", "-f", SEED)
        self.assertEqual(out.splitlines(), [
            "service/service-test created (clusterIP 10.96.0.1)",
            "pod/server-pod-1 created",
            "pod/server-pod-2 created",
        ])
        lines = self.ok("get", "svc").splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"])
        self.assertEqual(lines[1].split()[:5], ["service-test", "ClusterIP", "10.96.0.1", "<none>", "80/TCP"])
        pods = self.ok("get", "pods").splitlines()
        self.assertEqual(pods[0].split(), ["NAME", "READY", "IP", "AGE"])
        self.assertEqual([p.split()[:3] for p in pods[1:]],
                         [["server-pod-1", "1/1", "10.0.1.2"], ["server-pod-2", "1/1", "10.0.2.2"]])
        endpoints = self.ok("get", "endpoints").splitlines()
        self.assertEqual(endpoints[0].split(), ["NAME", "ENDPOINTS", "AGE"])
        self.assertEqual(endpoints[1].split()[:2], ["service-test", "10.0.1.2:8080,10.0.2.2:8080"])

    def test_kubectl_aliases_and_output_formats(self):
        self.ok("apply", "-f", SEED)
        for alias in ("svc", "service", "services"):
            self.assertIn("service-test", self.ok("get", alias))
        for alias in ("po", "pod", "pods"):
            self.assertIn("server-pod-1", self.ok("get", alias))
        self.assertIn("10.0.1.2:8080", self.ok("get", "ep"))
        listing = json.loads(self.ok("get", "svc", "-o", "json"))
        self.assertEqual(listing["kind"], "List")
        service = listing["items"][0]
        self.assertEqual(service["spec"]["clusterIP"], "10.96.0.1")
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], 8080)
        one = json.loads(self.ok("get", "pod", "server-pod-2", "-o", "json"))
        self.assertEqual(one["status"]["podIP"], "10.0.2.2")
        self.assertEqual(one["status"]["conditions"][0]["status"], "True")
        endpoints = json.loads(self.ok("get", "ep", "service-test", "-o", "json"))
        self.assertEqual(sorted(a["ip"] for a in endpoints["subsets"][0]["addresses"]), ["10.0.1.2", "10.0.2.2"])
        yaml_text = self.ok("get", "svc", "service-test", "-o", "yaml")
        self.assertIn("clusterIP: 10.96.0.1", yaml_text)
        self.assertIn("kind: Service", yaml_text)
        wide = self.ok("get", "svc", "-o", "wide").splitlines()
        self.assertEqual(wide[0].split()[-1], "SELECTOR")
        self.assertEqual(wide[1].split()[-1], "app=server_pod1")

    def test_namespaces(self):
        self.ok("apply", "-f", SEED, "-n", "prod")
        self.assertIn("No resources found in default namespace", self.run_svcbox("get", "svc").stderr)
        self.assertIn("service-test", self.ok("get", "svc", "-n", "prod"))
        lines = self.ok("get", "svc", "-A").splitlines()
        self.assertEqual(lines[0].split()[0], "NAMESPACE")
        self.assertEqual(lines[1].split()[:2], ["prod", "service-test"])
        other = self.write("ns.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: dev}\n"
                                      "spec: {ports: [{port: 80}]}\n")
        self.assertIn("does not match -n prod", self.fails("apply", "-f", other, "-n", "prod"))

    def test_reapply_is_unchanged_and_edits_are_configured(self):
        self.ok("apply", "-f", SEED)
        self.assertEqual(self.ok("apply", "-f", SEED).split("\n")[0], "service/service-test unchanged")
        edited = read_seed().replace("port: 80\n", "port: 8000\n")
        out = self.ok("apply", "-f", self.write("edited.yaml", edited))
        self.assertIn("service/service-test configured", out)
        self.assertIn("pod/server-pod-1 unchanged", out)
        line = self.ok("get", "svc").splitlines()[1].split()
        self.assertEqual(line[2:5], ["10.96.0.1", "<none>", "8000/TCP"])  # the ClusterIP stays

    def test_apply_from_stdin_and_from_a_folder(self):
        self.ok("apply", "-f", "-", input=read_seed())
        folder = os.path.join(self.dir, "manifests")
        os.mkdir(folder)
        for i in range(3):
            with open(os.path.join(folder, f"{i}.yaml"), "w") as f:
                f.write(f"apiVersion: v1\nkind: Service\nmetadata: {{name: web-{i}}}\nspec: {{ports: [{{port: 80}}]}}\n")
        with open(os.path.join(folder, "README.txt"), "w") as f:
            f.write("not a manifest")
        out = self.ok("apply", "-f", folder)
        self.assertEqual(len(out.splitlines()), 3)

    def test_delete_by_name_and_by_file(self):
        self.ok("apply", "-f", SEED)
        self.assertEqual(self.ok("delete", "pod", "server-pod-2").strip(), 'pod "server-pod-2" deleted')
        self.assertEqual(self.ok("get", "ep").splitlines()[1].split()[1], "10.0.1.2:8080")
        err = self.fails("delete", "svc", "nope")
        self.assertIn('services "nope" not found', err)
        self.ok("delete", "svc", "nope", "--ignore-not-found")
        out = self.ok("delete", "-f", SEED, "--ignore-not-found")
        self.assertIn('service "service-test" deleted (released clusterIP 10.96.0.1)', out)
        self.assertIn("No resources found", self.run_svcbox("get", "pods").stderr)
        # The released address is handed out again.
        self.assertIn("clusterIP 10.96.0.1", self.ok("apply", "-f", SEED))

    def test_get_on_a_missing_registry_lists_nothing_and_creates_nothing(self):
        self.assertIn("No resources found", self.run_svcbox("get", "svc").stderr)
        self.assertEqual(json.loads(self.ok("get", "pods", "-o", "json"))["items"], [])
        self.assertFalse(os.path.exists(self.db))

    def test_get_unknown_name_and_resource(self):
        self.ok("apply", "-f", SEED)
        self.assertIn('services "ghost" not found', self.fails("get", "svc", "ghost"))
        self.assertIn("resource type \"deployments\"", self.fails("get", "deployments"))
        self.assertIn("-o table is not one of", self.fails("get", "svc", "-o", "table"))


class BadInputTest(CliTestCase):
    def assert_rejected_and_unchanged(self, text, *expected, args=()):
        before = self.registry_rows()
        path = self.write("bad.yaml", text)
        err = self.fails("apply", "-f", path, *args)
        for part in expected:
            self.assertIn(part.replace("FILE", path), err)
        self.assertIn("nothing was applied", err)
        self.assertEqual(self.registry_rows(), before)
        return err

    def setUp(self):
        super().setUp()
        self.ok("apply", "-f", SEED)

    def test_errors_name_file_line_field_and_change_nothing(self):
        good = "apiVersion: v1\nkind: Service\nmetadata: {name: fine}\nspec: {ports: [{port: 80}]}\n---\n"
        self.assert_rejected_and_unchanged(
            good + "apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\nspec: {ports: [{port: 80}]}\n",
            "FILE:8:", "metadata.name", "DNS-1035")
        self.assert_rejected_and_unchanged(
            good + "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: 80\n"
                   "    tragetPort: 8080\n",
            "FILE:12:5:", 'unknown field "spec.ports[0].tragetPort"', "--validate=warn")
        self.assert_rejected_and_unchanged(
            good + "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: 'a b'}}\n"
                   "spec: {containers: [{name: c}]}\n",
            "FILE:8:", "label value")
        self.assert_rejected_and_unchanged(
            good + "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                   "spec: {ports: [{name: a, port: 80}, {name: a, port: 81}]}\n",
            "FILE:9:", "duplicate port name")
        self.assert_rejected_and_unchanged("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 0}]}\n",
                                           "FILE:4:", "spec.ports[0].port")
        self.assert_rejected_and_unchanged("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80, protocol: ICMP}]}\n",
                                           "TCP or UDP")
        self.assert_rejected_and_unchanged(": : :\n  - [", "FILE:", "not valid YAML")

    def test_alias_cycles_billion_laughs_and_deep_nesting_are_refused_and_change_nothing(self):
        self.assert_rejected_and_unchanged("&r {kind: List, apiVersion: v1, items: [*r]}\n",
                                           "FILE:1:41:", "cycle")
        laughs = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in range(1, 10):
            laughs += f"  a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]\n"
        self.assert_rejected_and_unchanged(laughs + "spec: {ports: [{port: 80}]}\n",
                                           "FILE:10:", "more than 1000000 nodes")
        self.assert_rejected_and_unchanged("a: " + "[" * 65 + "]" * 65 + "\n", "FILE:1:", "deeper than 64")
        self.assert_rejected_and_unchanged(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {version: 1}\n"
            "spec: {containers: [{name: c}]}\n", "FILE:5:21:", 'quote it ("1")')
        # The same cycle on standard input: refused, not a crash (it was SIGSEGV).
        result = self.run_svcbox("apply", "-f", "-", input="&r {kind: List, apiVersion: v1, items: [*r]}\n")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("cycle", result.stderr)

    def test_cluster_ip_outside_cidr_or_taken(self):
        self.assert_rejected_and_unchanged(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 192.168.1.1\n  ports: [{port: 80}]\n",
            "FILE:5:14:", "spec.clusterIP", "outside the service CIDR 10.96.0.0/12")
        self.assert_rejected_and_unchanged(
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  clusterIP: 10.96.0.1\n  ports: [{port: 80}]\n",
            "FILE:5:14:", "already allocated to Service default/service-test")

    def test_validate_warn_accepts_unknown_fields(self):
        path = self.write("warn.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], colour: red}\n")
        result = self.run_svcbox("apply", "-f", path, "--validate=warn")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('warning: ' + path + ':4:', result.stderr)
        self.assertIn('unknown field "spec.colour"', result.stderr)

    def test_flags_and_commands(self):
        self.assertIn("unknown command \"aply\"", self.fails("aply", "-f", SEED))
        self.assertIn("--bogus", self.fails("apply", "-f", SEED, "--bogus"))
        self.assertIn("-f", self.fails("apply"))
        self.assertIn("not one of strict, warn, ignore", self.fails("apply", "-f", SEED, "--validate=maybe"))
        self.assertIn("no such file", self.fails("apply", "-f", os.path.join(self.dir, "missing.yaml")))
        self.assertIn("is not a CIDR", self.fails("apply", "-f", SEED, "--service-cidr", "10.96.0.1/12"))
        # Router settings are checked before anything starts, and name the flag at fault.
        self.assertIn('--proxy-mode must be iptables, userspace, none or auto, not "fast"',
                      self.fails("serve", "--proxy-mode", "fast"))
        self.assertIn("--sync-period must be a positive duration", self.fails("serve", "--sync-period", "soon"))
        self.assertIn("--cluster-cidr must be an IPv4 CIDR", self.fails("serve", "--cluster-cidr", "10.244.0.0"))
        self.assertIn("--masquerade-all must be true or false",
                      self.fails("serve", "--masquerade-all", "maybe", "--proxy-mode", "none"))
        self.assertIn("proxy-mode: none    # environment SVCBOX_PROXY_MODE",
                      self.ok("serve", "--print-config", env=dict(self.env, SVCBOX_PROXY_MODE="none")))
        self.assertIn("proxy-threads: 2    # environment SVCBOX_PROXY_THREADS",
                      self.ok("serve", "--print-config", env=dict(self.env, SVCBOX_PROXY_THREADS="2")))
        self.assertIn("proxy-threads: 2    # default", self.ok("serve", "--print-config"))
        self.assertIn("--proxy-threads must be at least 1",
                      self.fails("serve", "--proxy-threads", "0", "--proxy-mode", "none"))
        for command in ([], ["apply"], ["delete"], ["get"], ["serve"], ["version"], ["rules"], ["cleanup"]):
            out = self.ok(*command, "--help")
            self.assertIn("Usage", out)
        self.assertRegex(self.ok("version"), r"^svcbox \d+\.\d+\.\d+")


class SettingsTest(CliTestCase):
    def test_service_cidr_is_remembered_and_conflicts_refused(self):
        self.assertIn("clusterIP 10.100.0.1", self.ok("apply", "-f", SEED, "--service-cidr", "10.100.0.0/16"))
        web = self.write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
        self.assertIn("clusterIP 10.100.0.2", self.ok("apply", "-f", web))
        env = dict(self.env, SVCBOX_SERVICE_CIDR="10.96.0.0/12")
        err = self.fails("apply", "-f", web, env=env)
        self.assertIn("allocates ClusterIPs from 10.100.0.0/16, but environment SVCBOX_SERVICE_CIDR asks for 10.96.0.0/12", err)

    def test_precedence_flag_environment_config_default(self):
        config = self.write("svcbox.yaml", f"db: {self.dir}/from-config.db\nservice-cidr: 10.50.0.0/16\n")
        env = {k: v for k, v in self.env.items() if k != "SVCBOX_DB"}
        out = self.ok("serve", "--print-config", "--config", config, env=env)
        self.assertIn(f"db: {self.dir}/from-config.db    # config file {config}", out)
        self.assertIn("service-cidr: 10.50.0.0/16    # config file", out)
        self.assertIn("log-level: info    # default", out)
        env["SVCBOX_DB"] = f"{self.dir}/from-env.db"
        out = self.ok("serve", "--print-config", "--config", config, env=env)
        self.assertIn(f"db: {self.dir}/from-env.db    # environment SVCBOX_DB", out)
        out = self.ok("serve", "--print-config", "--config", config, "--db", f"{self.dir}/from-flag.db", env=env)
        self.assertIn(f"db: {self.dir}/from-flag.db    # flag --db", out)
        # apply follows the same order: the config file's CIDR and the environment's file.
        self.assertIn("clusterIP 10.50.0.1", self.ok("apply", "-f", SEED, "--config", config, env=env))
        self.assertTrue(os.path.exists(f"{self.dir}/from-env.db"))
        self.assertFalse(os.path.exists(f"{self.dir}/from-config.db"))
        bad = self.write("bad.yaml", "db: x\ncolour: red\n")
        self.assertIn('unknown setting "colour"', self.fails("apply", "-f", SEED, "--config", bad))

    def test_default_registry_location(self):
        env = {k: v for k, v in self.env.items() if k != "SVCBOX_DB"}
        if os.geteuid() == 0:
            out = self.ok("serve", "--print-config", env=env)
            self.assertIn("db: /var/lib/svcbox/registry.db    # default", out)
            # Without root for real: dropped privileges, the XDG state folder.
            state = os.path.join(self.dir, "state")
            os.mkdir(state)
            os.chown(state, 65534, 65534)
            os.chmod(self.dir, 0o755)
            env["XDG_STATE_HOME"] = state
            # A copy the unprivileged user can reach, wherever the checkout lives.
            binary = shutil.copy(BIN, os.path.join(self.dir, "svcbox"))
            seed = shutil.copy(SEED, os.path.join(self.dir, "seed.yaml"))
            result = run(*AS_NOBODY, binary, "apply", "-f", seed, env=env, check=False, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertTrue(os.path.exists(os.path.join(state, "svcbox", "registry.db")))
        else:
            env["XDG_STATE_HOME"] = os.path.join(self.dir, "state")
            self.ok("apply", "-f", SEED, env=env)
            self.assertTrue(os.path.exists(os.path.join(self.dir, "state", "svcbox", "registry.db")))


class DurabilityTest(CliTestCase):
    def test_concurrent_applies_both_land(self):
        files = []
        for side in ("a", "b"):
            docs = [f"apiVersion: v1\nkind: Service\nmetadata: {{name: {side}-{i}}}\nspec: {{ports: [{{port: 80}}]}}\n"
                    for i in range(300)]
            files.append(self.write(f"{side}.yaml", "---\n".join(docs)))
        self.ok("apply", "-f", SEED)
        for round_ in range(3):
            runs = [subprocess.Popen([BIN, "apply", "-f", f], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for f in files]
            results = [(r.wait(timeout=60), r.stderr.read()) for r in runs]
            for r in runs:
                r.stdout.close()
                r.stderr.close()
            for code, err in results:
                self.assertEqual(code, 0, err)
        listing = json.loads(self.ok("get", "svc", "-o", "json"))
        self.assertEqual(len(listing["items"]), 601)
        ips = [item["spec"]["clusterIP"] for item in listing["items"]]
        self.assertEqual(len(set(ips)), 601)

    def test_a_writer_held_past_the_busy_timeout_gets_registry_busy(self):
        self.ok("apply", "-f", SEED)
        before = self.registry_rows()
        blocker = sqlite3.connect(self.db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            web = self.write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
            started = time.monotonic()
            err = self.fails("apply", "-f", web)
            waited = time.monotonic() - started
            self.assertIn("registry busy", err)
            self.assertGreaterEqual(waited, 4.5)  # the 5 s busy timeout
            self.assertIn("service-test", self.ok("get", "svc"))  # readers are not blocked
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        self.assertEqual(self.registry_rows(), before)

    def _kill_and_check(self, process, before, after_keys):
        kill_process(process, signal.SIGKILL, timeout=30)
        self.assertEqual(self.integrity(), "ok")
        rows = self.registry_rows()
        if rows == before:
            return "before"
        self.assertEqual(len(rows["services"]), after_keys["services"])
        self.assertEqual(len(rows["pods"]), after_keys["pods"])
        return "after"

    def test_kill_9_during_a_large_apply_is_all_or_nothing(self):
        self.ok("apply", "-f", SEED)
        before = self.registry_rows()
        manifest = self.write("big.yaml", big_manifest(1500, 2))
        total = 1500 * 3
        full = {"services": 1 + 1500, "pods": 2 + 3000}

        # At a pause point inside the open transaction, at many depths.
        for pause_after in (1, 2, 500, 1501, 3000, total - 1, total):
            env = dict(self.env, SVCBOX_TEST_PAUSE_AFTER_OBJECTS=str(pause_after))
            process = subprocess.Popen([BIN, "apply", "-f", manifest], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            state = wait_for(f"apply to reach pause point {pause_after}",
                             lambda: "stopped" if is_stopped(process.pid) else
                             process.poll() is not None and "ended", timeout=60, interval=0.01)
            self.assertEqual(state, "stopped", "apply ended before its pause point")
            self.assertEqual(self._kill_and_check(process, before, full), "before",
                             f"a kill inside the transaction (after {pause_after} objects) left a partial apply")

        # At times spread over a whole apply, from start to past its end.
        started = time.monotonic()
        self.ok("apply", "-f", manifest, "--db", os.path.join(self.dir, "timing.db"))
        duration = time.monotonic() - started
        outcomes = []
        for step in range(16):
            delay = duration * step / 12  # the last few land after the commit
            rows_now = self.registry_rows()
            process = subprocess.Popen([BIN, "apply", "-f", manifest], env=self.env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if process.poll() is None:
                outcomes.append(self._kill_and_check(process, rows_now, full))
            else:
                outcomes.append("finished")
            if outcomes[-1] != "before" and self.registry_rows() != before:
                # Roll the registry back for the next kill by deleting what landed.
                self.ok("delete", "-f", manifest)
                self.assertEqual(len(self.registry_rows()["services"]), 1)
        self.assertIn("before", outcomes, outcomes)
        # The registry keeps working after every kill.
        self.ok("apply", "-f", manifest)
        self.assertEqual(len(self.registry_rows()["services"]), full["services"])


class AsDocumentedTest(CliTestCase):
    """What the README and docs say, each found once to disagree with the binary."""

    WEB_AND_POD = ("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                   "spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n---\n"
                   "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, labels: {app: web}}\n"
                   "spec: {containers: [{name: c, ports: [{containerPort: 8080}]}]}\n"
                   "status: {podIP: 10.244.1.2}\n")

    def test_one_config_file_serves_every_command(self):
        config = self.write("svcbox.yaml", f"db: {self.db}\ndns-threads: 2\nproxy-mode: none\n"
                                           "masquerade-all: true\n")
        env = dict(self.env, SVCBOX_CONFIG=config)
        printed = self.ok("serve", "--print-config", env=env)
        self.assertIn(f"dns-threads: 2    # config file {config}", printed)
        self.ok("apply", "-f", "-", env=env, input=self.WEB_AND_POD)
        self.assertIn("web", self.ok("get", "svc", env=env))
        self.ok("delete", "pod", "web-1", env=env)
        typo = self.write("typo.yaml", "dns-thread: 2\n")
        error = self.fails("get", "svc", env=dict(self.env, SVCBOX_CONFIG=typo))
        self.assertIn('unknown setting "dns-thread"', error)

    def test_print_config_refuses_what_serve_refuses_and_shows_unset_settings(self):
        for args, message in [(("--log-format", "xml"), "log format must be text or json"),
                              (("--proxy-threads", "0"), "--proxy-threads must be at least 1"),
                              (("--admin-listen", "0.0.0.0"), "expected ADDR:PORT"),
                              (("--admin-max-api-connections", "x"), "admin-max-api-connections")]:
            with self.subTest(args=args):
                self.assertIn(message, self.fails("serve", "--print-config", *args))
        printed = self.ok("serve", "--print-config", "--admin-listen", "0.0.0.0:9153")
        self.assertRegex(printed, r"(?m)^cluster-cidr: \(unset\)    # nothing sets it$")
        # The token file serve would make is named, and --print-config makes nothing.
        self.assertRegex(printed, r"(?m)^admin-token-file: \S+\.admin-token    # default$")
        token_file = re.search(r"(?m)^admin-token-file: (\S+)", printed).group(1)
        self.assertFalse(os.path.exists(token_file))
        names = [line.split(":")[0] for line in printed.splitlines()]
        self.assertEqual(len(names), len(set(names)), printed)

    def test_admin_token_and_url_resolve_what_serve_resolves(self):
        self.assertIn("serve creates it at its first start", self.fails("admin-token"))
        token_file = self.write("token", "  from-a-file \n")
        self.assertEqual(self.ok("admin-token", "--admin-token-file", token_file), "from-a-file\n")
        config = self.write("admin.yaml", f"admin-token-file: {token_file}\n"
                                          "admin-listen: 0.0.0.0:9200\n")
        env = dict(self.env, SVCBOX_CONFIG=config)
        self.assertEqual(self.ok("admin-token", env=env), "from-a-file\n")
        self.assertEqual(self.ok("admin-url", env=env), "http://127.0.0.1:9200\n")
        self.assertEqual(self.ok("admin-url"), "http://127.0.0.1:9153\n")
        self.assertIn("the admin server is off", self.fails("admin-url", "--admin-listen", "none"))

    def test_rules_desired_takes_serves_masquerade_and_cluster_cidr(self):
        self.ok("apply", "-f", "-", input=self.WEB_AND_POD)
        plain = self.ok("rules", "--desired").splitlines()
        masquerade_all = self.ok("rules", "--desired", "--masquerade-all").splitlines()
        cluster_cidr = self.ok("rules", "--desired", "--cluster-cidr", "10.244.0.0/16").splitlines()
        self.assertTrue(set(masquerade_all) - set(plain), "--masquerade-all changed nothing")
        self.assertTrue(any("! -s 10.244.0.0/16" in line for line in cluster_cidr), cluster_cidr)
        self.assertFalse(any("10.244.0.0/16" in line for line in plain))

    def test_a_pod_without_a_pod_ip_is_listed_not_ready_and_is_no_endpoint(self):
        self.ok("apply", "-f", "-", input=self.WEB_AND_POD.replace("status: {podIP: 10.244.1.2}\n", ""))
        pods = self.ok("get", "pods", "-o", "wide").splitlines()
        self.assertRegex(pods[1], r"^web-1\s+0/1\s+NotReady\s+<none>\s+\S+\s+no podIP$")
        self.assertRegex(self.ok("get", "endpoints", "web").splitlines()[1], r"^web\s+<none>")

    def test_endpoints_written_for_a_service_with_a_selector_are_stored_with_a_warning(self):
        endpoints = ("apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
                     "subsets: [{addresses: [{ip: 10.244.9.9}], ports: [{port: 8080}]}]\n")
        result = self.run_svcbox("apply", "-f", "-", input=endpoints + "---\n" + self.WEB_AND_POD)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: Endpoints default/web is stored but not used: Service default/web "
                      "has a selector", result.stderr)
        self.assertIn("endpoints/web created", result.stdout)

    def test_a_missing_folder_in_a_given_path_is_refused_and_nothing_is_created(self):
        typo = os.path.join(self.dir, "typo", "dir", "r.db")
        for args in (("apply", "--db", typo, "-f", SEED),
                     ("serve", "--db", typo, "--proxy-mode", "none", "--dns-listen", "127.0.0.1:0",
                      "--admin-listen", "none")):
            with self.subTest(command=args[0]):
                error = self.fails(*args)
                self.assertIn(f"the folder {os.path.dirname(typo)} does not exist", error)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "typo")))


class ServeTest(CliTestCase):
    def setUp(self):
        super().setUp()
        self.netns = None
        self.serves = 0

    def test_a_failure_inside_exits_2_with_its_cause(self):
        """Exit 2 is what the README promises for a failure a user cannot fix; c-ares failing to
        start (a test hook of the tests' build stands in for it) is one."""
        env = dict(self.env, SVCBOX_TEST_CARES_INIT_FAILS="1")
        result = self.isolated().x(BIN, "serve", "--proxy-mode", "none", "--dns-listen",
                                   "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--admin-listen",
                                   "none", env=env, check=False, timeout=60)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("c-ares could not be initialised", result.stderr)

    def isolated(self):
        """A network namespace with only loopback: whatever serve sends to a pod goes nowhere."""
        if not self.netns:
            require(self, "serve tests (a network namespace)", tools=("ip",))
            self.netns = Namespace("cli")
            self.addCleanup(self.netns.remove)
        return self.netns

    def start_serve(self, *args):
        self.serves += 1
        # DNS and the admin API on free loopback ports, an upstream nothing asks, no rules.
        return ServeProcess("--proxy-mode", "none", "--dns-listen", "127.0.0.1:0", "--upstream",
                            "127.0.0.1:9", "--admin-listen", "127.0.0.1:0", *args, env=self.env,
                            namespace=self.isolated(),
                            log=os.path.join(self.dir, f"serve-{self.serves}.log"))

    def wait_for_log(self, serve, text, timeout=10):
        return serve.wait_log(re.escape(text), timeout)

    def test_serve_publishes_and_logs_every_change_from_the_cli(self):
        self.ok("apply", "-f", SEED)
        serve = self.start_serve()
        self.wait_for_log(serve, "registry loaded: version 1, 1 service, 2 pods")
        web = self.write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                                     "spec: {selector: {app: server_pod1}, ports: [{port: 81, targetPort: 8080}]}\n")
        self.ok("apply", "-f", web)
        self.wait_for_log(serve, "snapshot 2: service default/web added (clusterIP 10.96.0.2, ports 81/TCP)", timeout=5)
        self.wait_for_log(serve, "snapshot 2: endpoints default/web: +10.0.1.2:8080 +10.0.2.2:8080")
        self.ok("delete", "pod", "server-pod-2")
        self.wait_for_log(serve, "snapshot 3: pod default/server-pod-2 removed")
        self.wait_for_log(serve, "endpoints default/service-test: -10.0.2.2:8080")

        # One serve per registry, and it says which one runs.
        second = self.isolated().x(BIN, "serve", "--proxy-mode", "none", env=self.env, check=False,
                                   timeout=10)
        self.assertEqual(second.returncode, 1)
        self.assertIn(f"another svcbox serve (pid {serve.pid}) already owns the registry", second.stderr)

        started = time.monotonic()
        self.assertEqual(serve.stop(timeout=10), 0)
        self.assertLess(time.monotonic() - started, 2)
        self.wait_for_log(serve, "received SIGTERM, stopping")

    def test_json_logs(self):
        serve = self.start_serve("--log-format", "json")
        self.wait_for_log(serve, "registry loaded")
        record = json.loads(serve.log_text().splitlines()[0])
        self.assertEqual(record["level"], "info")
        self.assertIn("serving registry", record["msg"])
        serve.signal(signal.SIGINT)
        self.assertEqual(serve.wait_exit(timeout=10), 0)
        self.assertIn("must be text or json", self.fails("serve", "--proxy-mode", "none", "--log-format", "xml"))

    def test_bad_dns_settings_name_the_flag(self):
        cases = [
            (["--dns-listen", "localhost:53"], '--dns-listen (flag --dns-listen): "localhost:53": '
                                               '"localhost" is not an IP address'),
            (["--dns-listen", "127.0.0.1"], "expected ADDR:PORT"),
            (["--ttl", "-1"], '--ttl (flag --ttl): "-1": must be a whole number'),
            (["--cluster-domain", "a..b"], "--cluster-domain (flag --cluster-domain): \"a..b\": "
                                           "not a valid domain name"),
            (["--upstream", "dns.google"], "--upstream (flag --upstream)"),
            (["--allow-recursion", "10.0.0.0/33"], '"10.0.0.0/33" is not a CIDR'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertIn(message, self.fails("serve", "--proxy-mode", "none", *args))

    def serve_fails(self, *args, env=None, timeout=30, admin=True):
        local = ["--dns-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"]
        local += ["--admin-listen", "127.0.0.1:0"] if admin else []
        result = run(BIN, "serve", "--proxy-mode", "none", *local, *args, env=env or self.env,
                     check=False, timeout=timeout)
        self.assertNotEqual(result.returncode, 0, result.stderr)
        return result.stderr

    def test_a_corrupt_registry_at_start_is_a_clear_error(self):
        with open(self.db, "wb") as f:
            f.write(b"this is not a database" * 100)
        self.assertIn(f"{self.db} is not a usable svcbox registry", self.serve_fails())

    def test_a_locked_registry_at_start_is_a_clear_error(self):
        self.ok("get", "svc")  # creates nothing
        with sqlite3.connect(self.db, isolation_level=None) as holder:
            holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
            holder.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            message = self.serve_fails(timeout=60)
            holder.execute("ROLLBACK")
        self.assertIn("registry busy", message)
        self.assertLess(time.monotonic() - started, 30)

    def test_an_unreadable_registry_at_start_is_a_clear_error(self):
        require(self, "this test (it drops root with setpriv)", tools=("setpriv",))
        self.ok("apply", "-f", SEED)
        os.chmod(self.db, 0o600)  # root's file; nobody may not read it
        os.chmod(self.dir, 0o755)
        result = run(*AS_NOBODY, BIN, "serve", "--proxy-mode", "none", "--dns-listen", "127.0.0.1:0",
                     "--admin-listen", "127.0.0.1:0", env=self.env, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(self.db, result.stderr)
        self.assertRegex(result.stderr, "(?i)(permission denied|unable to open|readonly|read-only)")

    def test_serve_flags_name_what_is_wrong(self):
        self.assertIn('--default-probe (flag --default-probe): "http": must be tcp or none',
                      self.serve_fails("--default-probe", "http"))
        self.assertIn('--proxy-bind must be an IP address such as 127.0.0.1, not "here"',
                      self.serve_fails("--proxy-bind", "here"))
        self.assertIn("--admin-listen", self.serve_fails("--admin-listen", "localhost", admin=False))

    def test_a_taken_dns_port_is_a_clear_error(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            result = run(BIN, "serve", "--proxy-mode", "none", "--dns-listen", f"127.0.0.1:{port}",
                         env=self.env, check=False, timeout=10)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"--dns-listen 127.0.0.1:{port}: cannot bind UDP: Address already in use",
                      result.stderr)


class CapabilityTest(CliTestCase):
    """Denied netfilter access names the capability that is missing: libiptc needs CAP_NET_RAW for its
    raw socket and CAP_NET_ADMIN for the tables, and both refusals are the same EPERM. Run as root
    with capabilities dropped for real (setpriv), in a throwaway network namespace (unshare --net)
    so that nothing could touch the host's tables even if the denial did not happen."""

    def without(self, caps, *args):
        require(self, "this test (it drops capabilities with setpriv in a new network namespace)",
                tools=("setpriv", "unshare"))
        drop = ",".join(f"-{cap}" for cap in caps)
        result = run("unshare", "--net", "--", "setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}",
                     BIN, *args, env=self.env, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        return result.stderr.strip().splitlines()[-1]

    def test_each_command_names_the_missing_capability(self):
        commands = [("cleanup",), ("rules",),
                    ("serve", "--proxy-mode", "iptables", "--dns-listen", "127.0.0.1:0",
                     "--admin-listen", "127.0.0.1:0", "--default-probe", "none")]
        cases = [(["net_raw"], "this process lacks CAP_NET_RAW, so the raw socket was refused"),
                 (["net_admin"], "this process lacks CAP_NET_ADMIN, so the tables were refused"),
                 (["net_raw", "net_admin"], "this process has neither")]
        for command in commands:
            for caps, cause in cases:
                with self.subTest(command=command[0], without=caps):
                    error = self.without(caps, *command)
                    self.assertTrue(error.startswith("error: "), error)
                    self.assertIn("needs CAP_NET_ADMIN and CAP_NET_RAW", error)
                    self.assertIn(cause, error)
                    self.assertIn("--proxy-mode userspace", error)


if __name__ == "__main__":
    unittest.main()
