"""The README's run.sh demo as a test: SVCBOX_DEMO_CHECK=1 makes the script build its demo, run the
commands it would print (dig answers, 20 curls reach both pods, a killed pod leaves), tear down and
exit 0 or 1. Run once as root (network namespaces, iptables mode inside them) and once as nobody
(setpriv) inside a loopback-only namespace this test makes (userspace mode). See
../../../shared/testing.md; the script itself keeps every rule and packet inside its namespaces."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "../.."))
BIN = os.environ.get("SVCBOX_BIN", os.path.join(REPO, "build/release/app/svcbox"))
IN_CI = os.environ.get("CI") == "true"
# What the script needs from the checkout, copied where nobody can read it.
FILES = ["scripts/run.sh", "scripts/demo-pod.py", "examples/service-test.yaml"]


def run(*args, check=True, timeout=30, **kwargs):
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        problem = None
        if os.geteuid() != 0:
            problem = "needs root (network namespaces; the non-root run drops to nobody itself)"
        elif any(shutil.which(t) is None for t in ("setpriv", "dig", "curl", "ip")):
            problem = "needs setpriv, dig, curl and ip"
        elif run("ip", "netns", "list", check=False).returncode != 0:
            problem = "cannot use ip netns here"
        if problem:
            if IN_CI:
                raise AssertionError(f"CI=true and the demo e2e test cannot run: {problem}")
            raise unittest.SkipTest(problem)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="svcbox-demo-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        os.chmod(self.dir, 0o755)
        # The script's own scratch directory goes here, so the test can see it removed.
        self.tmp = os.path.join(self.dir, "tmp")
        os.mkdir(self.tmp)
        os.chown(self.tmp, 65534, 65534)

    def env(self, binary):
        return dict(os.environ, SVCBOX_DEMO_CHECK="1", SVCBOX_SKIP_INSTALL="1", SVCBOX_BIN=binary,
                    TMPDIR=self.tmp)

    def assertPassedAndClean(self, result):
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("svcbox demo: check passed", output)
        self.assertRegex(output, r"20 requests to \S+:\n\s+\d+ server-pod-1\n\s+\d+ server-pod-2\n")
        self.assertRegex(output, r"after killing server-pod-2, 10 requests:\n\s+10 server-pod-1\n")
        prefix = re.search(r"namespaces (svd[0-9a-f]+)-\*", output).group(1)
        self.assertEqual([], os.listdir(self.tmp))
        return output, prefix

    def test_as_root_in_network_namespaces(self):
        """iptables mode in the demo's node namespace; the client resolves the ClusterIP by name."""
        result = run(os.path.join(REPO, "scripts/run.sh"), env=self.env(BIN), check=False, timeout=180)
        output, prefix = self.assertPassedAndClean(result)
        self.assertIn("layout netns", output)
        self.assertIn("dig service-test.default.svc.cluster.local -> 10.96.0.1", output)
        self.assertIn("20 requests to http://service-test.default.svc/", output)
        # Everything the run made is gone: namespaces and the client's resolv.conf.
        self.assertNotIn(prefix, run("ip", "netns", "list").stdout)
        self.assertFalse(os.path.exists(f"/etc/netns/{prefix}-cli"))

    def test_as_nobody_in_userspace_mode(self):
        """Without root: pods on 127.0.0.2/.3, DNS on 127.0.0.1:1053, port 80 relayed on 20080."""
        tree = os.path.join(self.dir, "checkout")
        for name in FILES:
            os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), os.path.join(tree, name))
        binary = shutil.copy(BIN, os.path.join(self.dir, "svcbox"))
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o755)
        ns = "sbd" + uuid.uuid4().hex[:6]  # "sbd" = svcbox demo test
        run("ip", "netns", "add", ns)
        self.addCleanup(run, "ip", "netns", "del", ns, check=False)
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # Rule 2: loopback only, so nothing the script or svcbox sends can leave this namespace.
        links = run("ip", "netns", "exec", ns, "ip", "-o", "link", "show").stdout.splitlines()
        self.assertTrue(len(links) == 1 and ": lo:" in links[0], links)
        env = dict(self.env(binary), HOME=self.tmp)
        result = run("ip", "netns", "exec", ns, "setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups", "bash", os.path.join(tree, "scripts/run.sh"), env=env,
                     check=False, timeout=180)
        output, _ = self.assertPassedAndClean(result)
        self.assertIn("layout local", output)
        self.assertIn("dig service-test.default.svc.cluster.local -> 127.0.0.1", output)
        self.assertIn("20 requests to http://127.0.0.1:20080/", output)


if __name__ == "__main__":
    unittest.main()
