"""The README's run.sh demo as a test: SVCBOX_DEMO_CHECK=1 makes the script build its demo, run the
commands it would print (dig answers, 20 curls reach both pods, a killed pod leaves), tear down and
exit 0 or 1. Run once as root (network namespaces, iptables mode inside them) and once as nobody
(setpriv) inside a loopback-only namespace this test makes (userspace mode). See
../../../shared/testing.md; the script itself keeps every rule and packet inside its namespaces."""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from svcbox_e2e import (AS_NOBODY, BIN, REPO, Namespace, register_cleanup, require, run,  # noqa: E402
                        temp_dir)

# What the script needs from the checkout, copied where nobody can read it.
FILES = ["scripts/run.sh", "scripts/demo-pod.py", "examples/service-test.yaml"]


class DemoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(cls, "the demo e2e test (network namespaces; the non-root run drops to nobody itself)",
                tools=("setpriv", "dig", "curl", "ip"), netns=True)

    def setUp(self):
        self.dir = temp_dir(self, "svcbox-demo-test-")
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
        # Loopback only (checked as it is made), so nothing the script or svcbox sends can leave.
        ns = Namespace("demo")
        register_cleanup(self, ns.remove)
        env = dict(self.env(binary), HOME=self.tmp)
        result = ns.x(*AS_NOBODY, "bash", os.path.join(tree, "scripts/run.sh"), env=env, check=False,
                      timeout=180)
        output, _ = self.assertPassedAndClean(result)
        self.assertIn("layout local", output)
        self.assertIn("dig service-test.default.svc.cluster.local -> 127.0.0.1", output)
        self.assertIn("20 requests to http://127.0.0.1:20080/", output)


if __name__ == "__main__":
    unittest.main()
