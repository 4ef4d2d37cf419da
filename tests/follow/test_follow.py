"""serve never silently stops following its registry: bulk commits made while it runs, the
registry file deleted or replaced under it, a second serve through another path, SIGHUP, and a
held xtables lock at start. Each test first reproduces what a user saw go wrong, against a real
serve, real SQLite files and real DNS queries (dig).

Services here have no pods and pods only loopback addresses, and every serve on the host passes
--proxy-mode none, --default-probe none and a loopback upstream: nothing leaves the machine
(../../../shared/testing.md). The iptables-mode test runs serve inside a namespace it makes.
"""
import fcntl
import os
import shutil
import signal
import socket
import sqlite3
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from svcbox_e2e import (BIN, Namespace, ServeProcess, require, run, svcbox_env,  # noqa: E402
                        temp_dir, wait_for)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def services(prefix, count):
    return "".join(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {prefix}-{i}}}\n"
                   f"spec:\n  ports: [{{port: 80}}]\n" for i in range(count))


def pods(prefix, count):
    # Loopback addresses: nothing could leave the machine even if a probe ran.
    return "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {prefix}-{i}, "
                   f"labels: {{app: {prefix}}}}}\nspec:\n  containers: [{{name: c, image: x}}]\n"
                   f"status: {{podIP: 127.10.{i // 250}.{i % 250 + 1}}}\n" for i in range(count))


def generation(db):
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT value FROM meta WHERE key = 'generation'")
                   .fetchone()[0])


class FollowTestCase(unittest.TestCase):
    """One registry and one serve on loopback ports of its own per test."""

    def setUp(self):
        require(self, "the registry e2e tests", root=False, tools=("dig",))
        self.dir = temp_dir(self, "svcbox-follow-")
        self.db = os.path.join(self.dir, "registry.db")
        self.env = svcbox_env(self.db)
        self.serves = []

    def tearDown(self):
        for serve in self.serves:
            serve.stop()

    def svcbox(self, *args, input=None, code=0, timeout=120):
        result = run(BIN, *args, env=self.env, input=input, check=False, timeout=timeout)
        self.assertEqual(result.returncode, code, f"svcbox {args}: {result.stdout}{result.stderr}")
        return result

    def apply(self, text, **kwargs):
        return self.svcbox("apply", "-f", "-", input=text, **kwargs)

    def serve(self, *args, db=None):
        dns_port, admin_port = free_port(socket.SOCK_DGRAM), free_port()
        log = os.path.join(self.dir, f"serve-{len(self.serves)}.log")
        serve = ServeProcess("--db", db or self.db, "--proxy-mode", "none", "--default-probe",
                             "none", "--dns-listen", f"127.0.0.1:{dns_port}", "--upstream",
                             "127.0.0.1:9", "--admin-listen", f"127.0.0.1:{admin_port}", *args,
                             log=log, env=self.env, admin=f"http://127.0.0.1:{admin_port}")
        serve.dns_port = dns_port
        self.serves.append(serve)
        serve.wait_log(r"registry loaded: version \d+")
        return serve

    def dig(self, serve, name):
        result = run("dig", "@127.0.0.1", "-p", str(serve.dns_port), "+time=2", "+tries=1",
                     "+noall", "+comments", "+answer", f"{name}.default.svc.cluster.local", "A",
                     check=False)
        return result.stdout

    def wait_caught_up(self, serve):
        """serve publishes the registry's generation (an event serve reports, not a sleep)."""
        expected = generation(self.db)
        serve.wait_metric("svcbox_registry_version", lambda version: version == expected)
        return expected

    def assert_answers(self, serve, name):
        answer = self.dig(serve, name)
        self.assertIn("status: NOERROR", answer, answer)
        self.assertRegex(answer, rf"(?m)^{name}\.default\.svc\.cluster\.local\.\s+\d+\s+IN\s+A\s")

    def assert_nxdomain(self, serve, name):
        self.assertIn("status: NXDOMAIN", self.dig(serve, name))


class BulkChangeTest(FollowTestCase):
    def test_a_bulk_apply_to_a_running_serve_is_followed_by_every_later_change(self):
        serve = self.serve()
        for count in (511, 512, 513, 10000):
            with self.subTest(services=count):
                self.apply(services(f"bulk{count}", count), timeout=300)
                self.wait_caught_up(serve)
                self.assert_answers(serve, f"bulk{count}-{count - 1}")
                self.apply(services(f"after{count}", 1))
                self.wait_caught_up(serve)
                self.assert_answers(serve, f"after{count}-0")
        self.svcbox("delete", "svc", "bulk10000-0")
        self.wait_caught_up(serve)
        self.assert_nxdomain(serve, "bulk10000-0")
        self.assertEqual(serve.metric("svcbox_registry_read_errors_total"), 0)
        self.assertEqual(serve.metric("svcbox_registry_generation_lag"), 0)

    def test_a_bulk_apply_of_pods_alone_is_followed_too(self):
        serve = self.serve()
        self.apply(pods("bulk", 513))
        self.wait_caught_up(serve)
        self.apply(services("after", 1))
        self.wait_caught_up(serve)
        self.assert_answers(serve, "after-0")

    def test_writes_through_the_admin_api_are_served_after_a_bulk_apply(self):
        serve = self.serve()
        self.apply(services("bulk", 600))
        self.wait_caught_up(serve)
        body = ('{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "from-api"}, '
                '"spec": {"ports": [{"port": 80}]}}')
        status, text = serve.http("/api/v1/namespaces/default/services", "POST", body)
        self.assertEqual(status, 201, text)
        self.wait_caught_up(serve)
        self.assert_answers(serve, "from-api")

    def test_the_wal_can_be_truncated_while_serve_runs(self):
        serve = self.serve()
        self.apply(services("bulk", 10000), timeout=300)
        self.wait_caught_up(serve)
        self.apply(services("after", 1))
        self.wait_caught_up(serve)
        wal = self.db + "-wal"
        self.assertGreater(os.path.getsize(wal), 1 << 20)
        with sqlite3.connect(self.db) as connection:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        self.assertEqual(busy, 0, "a reader in serve holds an old snapshot open")
        self.assertEqual(os.path.getsize(wal), 0)
        self.apply(services("later", 1))
        self.wait_caught_up(serve)
        self.assert_answers(serve, "later-0")


class RegistryIdentityTest(FollowTestCase):
    def test_a_registry_deleted_under_serve_stops_it_with_a_reason(self):
        self.apply(services("web", 1))
        serve = self.serve()
        os.unlink(self.db)
        self.assertEqual(serve.wait_exit(10), 1, serve.context())
        log = serve.log_text()
        self.assertIn(f"the registry file {self.db} is gone", log)
        self.assertIn("stopping so that a supervisor restarts serve", log)
        # The next apply makes a new registry, and a new serve follows it.
        self.apply(services("fresh", 1))
        self.assert_answers(self.serve(), "fresh-0")

    def test_a_registry_replaced_under_serve_stops_it_and_nothing_is_written_to_the_old_one(self):
        self.apply(services("web", 1))
        serve = self.serve()
        other = os.path.join(self.dir, "other.db")
        self.svcbox("apply", "--db", other, "-f", "-", input=services("other", 1))
        os.rename(other, self.db)
        self.assertEqual(serve.wait_exit(10), 1, serve.context())
        self.assertIn("the registry was replaced after it was opened", serve.log_text())
        with sqlite3.connect(self.db) as connection:
            names = {row[0] for row in connection.execute("SELECT name FROM services")}
        self.assertEqual(names, {"other-0"})

    def test_the_cli_refuses_a_new_registry_where_a_live_serves_file_was_deleted(self):
        self.apply(services("web", 1))
        serve = self.serve()
        serve.signal(signal.SIGSTOP)  # alive, but not yet aware of what follows
        try:
            os.unlink(self.db)
            result = self.apply(services("split", 1), code=1)
            self.assertIn(f"still owns that path", result.stderr)
            self.assertIn(f"(pid {serve.pid})", result.stderr)
            self.assertFalse(os.path.exists(self.db))
        finally:
            serve.signal(signal.SIGCONT)
        self.assertEqual(serve.wait_exit(10), 1, serve.context())

    def test_a_second_serve_is_refused_through_any_path_to_the_same_file(self):
        self.apply(services("web", 1))
        first = self.serve()
        link = os.path.join(self.dir, "link.db")
        os.symlink(self.db, link)
        os.mkdir(os.path.join(self.dir, "other"))
        hard = os.path.join(self.dir, "other", "hard.db")
        os.link(self.db, hard)
        for path in (self.db, link, hard):
            with self.subTest(path=path):
                result = run(BIN, "serve", "--db", path, "--proxy-mode", "none",
                             "--dns-listen", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                             "--admin-listen", "none", env=self.env, check=False)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(f"another svcbox serve (pid {first.pid}) already owns the registry",
                              result.stderr)
        self.assert_answers(first, "web-0")


class GenerationGuardTest(FollowTestCase):
    def test_a_stalled_watcher_is_an_error_a_metric_and_a_readyz_reason(self):
        """The watcher is stalled through a test hook (a file whose presence makes it skip its
        polls, as the watcher stuck in a read transaction did) and the guard checks every 100 ms
        instead of every 5 s."""
        pause = os.path.join(self.dir, "stall-watcher")
        self.env = dict(self.env, SVCBOX_TEST_GENERATION_CHECK_MS="100",
                        SVCBOX_TEST_WATCHER_PAUSE_FILE=pause)
        serve = self.serve()
        self.assertEqual(serve.http("/readyz")[0], 200)
        open(pause, "w").close()
        self.apply(services("unseen", 1))
        serve.wait_metric("svcbox_registry_generation_lag", lambda lag: lag == 1)
        serve.wait_log(r"error serve is not following its registry: registry_generation=1 "
                       r"published_version=0")
        status, text = serve.http("/readyz")
        self.assertEqual(status, 503, text)
        self.assertIn("serve is not following its registry", text)

        since = serve.log_size()
        os.unlink(pause)
        serve.wait_metric("svcbox_registry_generation_lag", lambda lag: lag == 0)
        serve.wait_log("serve follows its registry again", since=since)
        self.assertEqual(serve.http("/readyz")[0], 200)
        self.assert_answers(serve, "unseen-0")


class SignalTest(FollowTestCase):
    def test_sighup_is_logged_and_serve_keeps_answering(self):
        self.apply(services("web", 1))
        serve = self.serve()
        since = serve.log_size()
        serve.signal(signal.SIGHUP)
        serve.wait_log("received SIGHUP: full resync", since=since)
        self.assertIsNone(serve.process.poll())
        self.assert_answers(serve, "web-0")
        self.apply(services("after", 1))
        self.wait_caught_up(serve)
        self.assert_answers(serve, "after-0")
        self.assertEqual(serve.stop(), 0)


class ExitCodeTest(FollowTestCase):
    def test_help_lists_the_exit_codes(self):
        for args in (("--help",), ("serve", "--help")):
            with self.subTest(args=args):
                text = self.svcbox(*args).stdout
                self.assertIn("Exit codes:", text)
                self.assertRegex(text, r"(?m)^  1  something you can fix")
                self.assertRegex(text, r"(?m)^  2  a failure you cannot fix")

    def test_a_file_that_is_no_registry_is_the_users_to_fix(self):
        with open(self.db, "wb") as f:
            f.write(b"this is not a database" * 100)
        result = run(BIN, "serve", "--proxy-mode", "none", "--dns-listen", "127.0.0.1:0",
                     "--admin-listen", "none", env=self.env, check=False)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(f"{self.db} is not a usable svcbox registry", result.stderr)
        self.assertEqual(self.apply(services("web", 1), code=1).returncode, 1)


class HeldXtablesLockTest(FollowTestCase):
    """The xtables lock held by another program when serve starts in iptables mode: DNS answers,
    /readyz says why it is not ready, every retry is counted, and the rules arrive once the lock
    is free. serve runs in a namespace of its own, with a lock file of the test's own."""

    def test_dns_answers_and_readyz_waits_until_the_lock_is_free(self):
        require(self, "the held-lock test", tools=("ip", "iptables-legacy-save", "dig"), netns=True)
        self.apply(services("web", 1))
        node = Namespace("lock")
        self.addCleanup(node.remove)
        lock_path = os.path.join(self.dir, "xtables.lock")
        holder = open(lock_path, "w")
        self.addCleanup(holder.close)
        fcntl.flock(holder, fcntl.LOCK_EX)
        env = dict(self.env, XTABLES_LOCKFILE=lock_path)
        serve = ServeProcess("--proxy-mode", "iptables", "--default-probe", "none",
                             "--dns-listen", "127.0.0.1:53", "--upstream", "127.0.0.1:9",
                             log=os.path.join(self.dir, "serve-lock.log"), namespace=node,
                             env=env)
        self.serves.append(serve)
        serve.wait_log("admin HTTP on")
        serve.wait_metric("svcbox_sync_proxy_rules_failures_total", lambda failed: failed >= 2)
        answer = node.x("dig", "@127.0.0.1", "+time=2", "+tries=1", "+short",
                        "web-0.default.svc.cluster.local", check=False).stdout
        self.assertRegex(answer, r"^10\.96\.\d+\.\d+")
        status, text = serve.http("/readyz")
        self.assertEqual(status, 503, text)
        self.assertIn("no rule sync has succeeded yet", text)
        self.assertIn(lock_path, text)
        self.assertIsNone(serve.process.poll())

        fcntl.flock(holder, fcntl.LOCK_UN)
        serve.wait_metric("svcbox_sync_proxy_rules_total", lambda synced: synced >= 1)
        wait_for("/readyz to say ready", lambda: serve.http("/readyz")[0] == 200,
                 context=serve.context)
        self.assertIn("-A PREROUTING -j SVCBOX-SERVICES",
                      node.x("iptables-legacy-save", "-t", "nat").stdout)
        # web-0 has no endpoints: its ClusterIP is rejected at once.
        cluster_ip = answer.split()[0]
        self.assertRegex(node.x("iptables-legacy-save", "-t", "filter").stdout,
                         rf"-d {cluster_ip}/32 .*-j REJECT")


if __name__ == "__main__":
    unittest.main()
