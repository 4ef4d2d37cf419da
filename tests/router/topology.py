"""Network namespaces for the router e2e tests (see ../../../shared/testing.md for the rules).

    [client 10.0.0.2] --veth-- [node: svcbox serve, every rule] --veth-- [pod1 10.244.1.2]
                                                                 --veth-- [pod2 10.244.2.2]
                                                                 --veth-- [pod3 10.244.3.2]

Nothing is linked to the host's namespace, no namespace has a route out, and every name carries a
per-run prefix so parallel runs and leftovers of a crashed run cannot collide. The node routes the
Service CIDR to a link to nowhere (as a host's default route would), so a packet to a ClusterIP without
endpoints reaches the filter table and its REJECT instead of failing the route lookup."""
import atexit
import ipaddress
import os
import subprocess
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
POD_IPS = {f"pod{i}": f"10.244.{i}.2" for i in (1, 2, 3)}
CLIENT_IP = "10.0.0.2"
OUR_NETWORKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/24", "10.244.0.0/16", "10.96.0.0/12")]

# The xtables lock is one file for every namespace. svcbox trusts a table it read ahead only while
# no other process took that lock, so tests running in parallel (or the host's own iptables users)
# would end each other's read-ahead. Every tool started from here inherits a lock of this run's
# own, which iptables and svcbox both honour; the tables themselves are per namespace anyway.
if "XTABLES_LOCKFILE" not in os.environ:
    LOCK_FILE = os.environ["XTABLES_LOCKFILE"] = f"/run/svcbox-test-{os.getpid()}.xtables.lock"
    atexit.register(lambda: os.path.exists(LOCK_FILE) and os.unlink(LOCK_FILE))


def run(*args, check=True, timeout=30, **kwargs):
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


class Topology:
    def __init__(self):
        self.prefix = "sbr" + uuid.uuid4().hex[:6]  # "sbr" = svcbox router test
        self.node, self.client = f"{self.prefix}-node", f"{self.prefix}-cli"
        self.pods = {name: f"{self.prefix}-{name}" for name in POD_IPS}
        self.namespaces = []
        self.processes = []

    def netns(self, name):
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.x(name, "ip", "link", "set", "lo", "up")

    def x(self, ns, *args, **kwargs):
        return run("ip", "netns", "exec", ns, *args, **kwargs)

    def link(self, ns, inner, inner_ip, node_if, node_ip):
        # Created inside the node namespace, then one end moved: never a link in the host's.
        self.x(self.node, "ip", "link", "add", node_if, "type", "veth", "peer", "name", inner, "netns", ns)
        self.x(self.node, "ip", "addr", "add", node_ip + "/24", "dev", node_if)
        self.x(self.node, "ip", "link", "set", node_if, "up")
        self.x(ns, "ip", "addr", "add", inner_ip + "/24", "dev", inner)
        self.x(ns, "ip", "link", "set", inner, "up")
        self.x(ns, "ip", "route", "add", "default", "via", node_ip)

    def up(self):
        try:
            self.netns(self.node)
            self.x(self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # A veth pair with both ends in the node: a link to nowhere (no dummy module here).
            self.x(self.node, "ip", "link", "add", "svc0", "type", "veth", "peer", "name", "svc1")
            self.x(self.node, "ip", "link", "set", "svc0", "up")
            self.x(self.node, "ip", "link", "set", "svc1", "up")
            self.x(self.node, "ip", "route", "add", "10.96.0.0/12", "dev", "svc0")
            self.netns(self.client)
            self.link(self.client, "eth0", CLIENT_IP, "c0", "10.0.0.1")
            for i, (name, ns) in enumerate(self.pods.items(), start=1):
                self.netns(ns)
                self.link(ns, "eth0", POD_IPS[name], f"p{i}", f"10.244.{i}.1")
            self.check_isolated()
            for name, ns in self.pods.items():
                self.start(ns, "python3", os.path.join(HERE, "pod_server.py"), name, "8080", "5353")
            for ip in POD_IPS.values():
                self.wait_tcp(ip, 8080)
        except BaseException:
            self.down()
            raise

    def check_isolated(self):
        """Rule 2 of testing.md: traffic only to addresses of these namespaces, none routed out."""
        for ns in self.namespaces:
            routes = self.x(ns, "ip", "-4", "route", "show").stdout.splitlines()
            for route in routes:
                dest = route.split()[0]
                if dest == "default":
                    gateway = ipaddress.ip_address(route.split()[2])
                    assert any(gateway in n for n in OUR_NETWORKS), f"{ns}: route out: {route}"
                else:
                    net = ipaddress.ip_network(dest, strict=False)
                    assert any(net.subnet_of(n) for n in OUR_NETWORKS), f"{ns}: foreign route {route}"
        node_default = self.x(self.node, "ip", "route", "show", "default").stdout.strip()
        assert node_default == "", f"the node namespace must have no default route: {node_default}"

    def start(self, ns, *args, env=None, log=None):
        out = open(log, "w") if log else subprocess.DEVNULL
        process = subprocess.Popen(["ip", "netns", "exec", ns, *args], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
        if log:
            out.close()
        self.processes.append(process)
        return process

    def wait_tcp(self, ip, port, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.x(self.client, "bash", "-c", f"echo > /dev/tcp/{ip}/{port}", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"{ip}:{port} did not come up")

    def kill(self, process, sig=15):
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def down(self):
        for process in self.processes:
            self.kill(process, 9)
        self.processes.clear()
        for ns in reversed(self.namespaces):
            run("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()
