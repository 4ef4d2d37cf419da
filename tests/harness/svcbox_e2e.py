"""What every end-to-end suite needs, in one place, so that the safety rules of
../../../shared/testing.md are kept the same way everywhere: network namespaces with a per-run
prefix that are removed with everything in them, processes killed by the PID the test started,
bounded waits, and a missing capability that skips a test by hand but fails it in CI.

A suite imports it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
    from svcbox_e2e import ...
"""
import atexit
import ipaddress
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid

HARNESS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HARNESS, "..", ".."))
BIN = os.path.abspath(os.environ.get("SVCBOX_BIN", os.path.join(REPO, "build/release/app/svcbox")))
IN_CI = os.environ.get("CI") == "true"
# Every namespace of this run starts with it: parallel runs and a crashed run's leftovers never collide.
RUN_PREFIX = f"svbx-{uuid.uuid4().hex[:8]}"
# Runs the rest of a command as nobody for real (testing.md, rule 6).
AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
DEFAULT_ADMIN = "http://127.0.0.1:9153"


def run(*args, check=True, timeout=30, **kwargs):
    """A command to its end, bounded, with its output captured as text."""
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


def require(test_case_or_class, what, *, root=True, tools=(), netns=False):
    """Skips (by hand) or fails (CI=true) unless root, the tools and, with netns, `ip netns` are
    there: in CI a misfiring detection must not turn a suite into green skips."""
    missing = []
    if root and os.geteuid() != 0:
        missing.append("root")
    missing += [tool for tool in tools if shutil.which(tool) is None]
    if netns and not missing and run("ip", "netns", "list", check=False).returncode != 0:
        missing.append("a working `ip netns`")
    if not missing:
        return
    owner = test_case_or_class
    name = owner.__qualname__ if isinstance(owner, type) else owner.id()
    reason = f"{name}: {what} cannot run without {', '.join(missing)}"
    if IN_CI:
        raise AssertionError(f"CI=true, and {reason}")
    raise unittest.SkipTest(reason)


def wait_for(what, predicate, timeout=15, interval=0.05, context=lambda: ""):
    """The one polling loop of the suites: predicate's first truthy value, or an AssertionError
    naming what did not happen, with context() (serve's logs, say) to show why."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what}{context()}")
        time.sleep(interval)


def kill_process(popen, sig=signal.SIGTERM, timeout=10):
    """Signals the process the test started (by its PID, never by name), then SIGKILL after the
    bound; returns its exit code (negative: the signal that ended it)."""
    if popen.poll() is None:
        popen.send_signal(sig)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=timeout)
    return popen.returncode


def register_cleanup(test_case_or_class, function, *args, **kwargs):
    """Cleanup for a test (addCleanup) or a class (addClassCleanup): it runs also when setUp or
    setUpClass fails half-way, and cleanups run last registered first."""
    if isinstance(test_case_or_class, type):
        test_case_or_class.addClassCleanup(function, *args, **kwargs)
    else:
        test_case_or_class.addCleanup(function, *args, **kwargs)


def temp_dir(test_case_or_class, prefix):
    """A fresh directory, removed with its content when the test (or class) is cleaned up."""
    path = tempfile.mkdtemp(prefix=prefix)
    register_cleanup(test_case_or_class, shutil.rmtree, path, ignore_errors=True)
    return path


def registry_generation(db):
    """The registry's generation (meta key 'generation'), read on a connection of its own: the
    version a serve that follows the registry publishes (svcbox_registry_version)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(connection.execute("SELECT value FROM meta WHERE key = 'generation'")
                   .fetchone()[0])
    finally:
        connection.close()


def svcbox_env(db=None):
    """The environment for svcbox without the caller's SVCBOX_* settings (svcbox reads them as its
    own), plus SVCBOX_DB when db is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SVCBOX_")}
    if db:
        env["SVCBOX_DB"] = db
    return env


def use_private_xtables_lock():
    """The xtables lock is one file for every namespace. svcbox trusts a table it read ahead only
    while no other process took that lock, so tests running in parallel (or the host's own
    iptables users) would end each other's read-ahead. From here on every tool started inherits a
    lock of this run's own, which iptables and svcbox both honour; a lock the caller set stays."""
    if "XTABLES_LOCKFILE" not in os.environ:
        path = os.environ["XTABLES_LOCKFILE"] = f"/run/svcbox-test-{os.getpid()}.xtables.lock"
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))


def _popen(command, log, env, popen_options):
    """Popen of the command itself (no shell), so that .pid is the process the test kills; its
    output to the file log, else as popen_options say (stdout=PIPE...), else nowhere."""
    if log is not None:
        with open(log, "w") as out:
            return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    **popen_options)
    if "stdout" not in popen_options:
        popen_options = dict(popen_options, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return subprocess.Popen(command, env=env, **popen_options)


class Namespace:
    """A network namespace named RUN_PREFIX-name, with loopback up and nothing else: no link to
    the host's interfaces and no route out, checked at creation (testing.md, rule 2). remove()
    kills what was started in it and deletes it, with its /etc/netns files."""

    def __init__(self, name):
        self.name = f"{RUN_PREFIX}-{name}"
        self.processes = []
        run("ip", "netns", "add", self.name)
        try:
            self.x("ip", "link", "set", "lo", "up")
            self._check_loopback_only()
        except BaseException:
            self.remove()
            raise

    def _check_loopback_only(self):
        links = self.x("ip", "-o", "link", "show").stdout.splitlines()
        if len(links) != 1 or ": lo:" not in links[0]:
            raise AssertionError(f"namespace {self.name} has links besides lo: {links}")
        main = self.x("ip", "-4", "route", "show").stdout.strip()
        if main:
            raise AssertionError(f"namespace {self.name} has routes: {main}")
        for route in self.x("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
            if "dev lo" not in route:
                raise AssertionError(f"namespace {self.name} has a route out: {route}")

    def x(self, *args, **kwargs):
        """run() inside the namespace."""
        return run("ip", "netns", "exec", self.name, *args, **kwargs)

    def start(self, *args, log=None, env=None, **popen_options):
        """A process inside the namespace (`ip netns exec` execs it: .pid is the process itself)."""
        process = _popen(["ip", "netns", "exec", self.name, *args], log, env, popen_options)
        self.processes.append(process)
        return process

    def remove(self):
        for process in self.processes:
            kill_process(process, signal.SIGKILL)
        self.processes.clear()
        run("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(f"/etc/netns/{self.name}", ignore_errors=True)


SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"')


def series_key(name, labels=None):
    """A metric series' key in parse_metrics's dict: name{label="value",...}, labels by name."""
    if not labels:
        return name
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse_metrics(text):
    """Prometheus text format to {series_key: value}."""
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            name, labels, value = match.groups()
            samples[series_key(name, dict(LABEL.findall(labels or "")))] = float(value)
    return samples


class ServeProcess:
    """One running `svcbox serve` ([wrapper...] binary serve args...) in a Namespace or on the
    host, its output in the file log; what the suites ask of it, each wait bounded and failing
    with the log."""

    def __init__(self, *args, log, namespace=None, env=None, binary=BIN, wrapper=(),
                 admin=DEFAULT_ADMIN):
        command = [*wrapper, binary, "serve", *args]
        self.namespace, self.log, self.admin = namespace, log, admin
        self.process = namespace.start(*command, log=log, env=env) if namespace else \
            _popen(command, log, env, {})

    @property
    def pid(self):
        return self.process.pid

    def log_size(self):
        """The log's length in bytes: wait_log(..., since=log_size()) waits for a new line."""
        return os.path.getsize(self.log)

    def log_text(self, since=0):
        with open(self.log, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def context(self):
        status = "" if self.process.poll() is None else f" (exited with {self.process.returncode})"
        return f"\n--- serve log {self.log}{status}:\n{self.log_text()}"

    def wait_log(self, pattern, timeout=15, since=0):
        """The first match of the regex (multiline) in the log after byte offset since."""
        regex = re.compile(pattern, re.M)
        return wait_for(f"serve to log /{pattern}/", lambda: regex.search(self.log_text(since)),
                        timeout, context=self.context)

    def token(self):
        """The admin token of this serve, read from the file its log names (serve creates it at
        first start and never logs the token itself)."""
        match = self.wait_log(r"token_file=(\S+)\)")
        with open(match.group(1)) as f:
            return f.read().strip()

    def http(self, path, method="GET", body=None, token=None, content_type="application/json",
             admin=None, namespace=None):
        """(status, body) of a request to the admin API (admin: its base URL), sent from
        namespace, else from serve's own; status 0 when nothing answered within 5 s. /api/
        requests carry serve's token unless token is given ("" sends none)."""
        url = (admin or self.admin) + path
        if token is None and path.startswith("/api/"):
            token = self.token()
        namespace = namespace or self.namespace
        if namespace:
            command = ["curl", "-sS", "--max-time", "5", "-X", method, "-w", "\n%{http_code}"]
            if token:
                command += ["-H", f"Authorization: Bearer {token}"]
            if body is not None:
                command += ["-H", f"Content-Type: {content_type}", "--data-binary", "@-"]
            result = namespace.x(*command, url, input=body, check=False)
            text, _, code = result.stdout.rpartition("\n")
            return int(code or 0), text
        request = urllib.request.Request(url, method=method,
                                         data=None if body is None else body.encode())
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if body is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def metrics(self, admin=None):
        """{series_key: value} from /metrics."""
        status, text = self.http("/metrics", admin=admin)
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {text}{self.context()}")
        return parse_metrics(text)

    def metric(self, name, labels=None):
        """One series' value now, None while serve does not show it."""
        return self.metrics().get(series_key(name, labels))

    def wait_metric(self, name, predicate, labels=None, timeout=15):
        """The series' first value that predicate accepts."""
        def accepted():
            value = self.metric(name, labels)
            return value is not None and predicate(value) and (value,)  # (0.0,) is truthy
        return wait_for(f"metric {series_key(name, labels)} to satisfy the predicate", accepted,
                        timeout, context=self.context)[0]

    def signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, timeout):
        """The exit code; an AssertionError with the log if serve still runs after timeout."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve still runs after {timeout}s{self.context()}") from None

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after the bound; the exit code (0: a clean stop)."""
        return kill_process(self.process, signal.SIGTERM, timeout)

    def kill9(self):
        return kill_process(self.process, signal.SIGKILL)


POD_IPS = {f"pod{i}": f"10.244.{i}.2" for i in (1, 2, 3)}
CLIENT_IP = "10.0.0.2"
TOPOLOGY_NETWORKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/24", "10.244.0.0/16", "10.96.0.0/12")]
POD_SERVER = os.path.join(HARNESS, "pod_server.py")


class Topology:
    """A node, a client and three pods, each a Namespace (node, client and pods[name] are their
    names):

        [client 10.0.0.2] --veth-- [node: svcbox serve, every rule] --veth-- [pod1 10.244.1.2]
                                                                     --veth-- [pod2 10.244.2.2]
                                                                     --veth-- [pod3 10.244.3.2]

    Nothing is linked to the host's namespace and no namespace has a route out. Every pod runs
    pod_server.py (HTTP 8080, UDP echo 5353). The node routes the Service CIDR to a link to
    nowhere (as a host's default route would), so a packet to a ClusterIP without endpoints
    reaches the filter table and its REJECT instead of failing the route lookup."""

    made = 0  # topologies of this run, for their namespaces' names

    def __init__(self):
        use_private_xtables_lock()
        Topology.made += 1
        self.tag = f"t{Topology.made}"
        self.prefix = f"{RUN_PREFIX}-{self.tag}"
        self.node, self.client = f"{self.prefix}-node", f"{self.prefix}-cli"
        self.pods = {name: f"{self.prefix}-{name}" for name in POD_IPS}
        self.namespaces = {}  # name: Namespace
        self.processes = []  # the pods' servers first, in POD_IPS order

    def netns(self, short_name):
        namespace = Namespace(f"{self.tag}-{short_name}")
        self.namespaces[namespace.name] = namespace

    def x(self, ns, *args, **kwargs):
        return self.namespaces[ns].x(*args, **kwargs)

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
            self.netns("node")
            self.x(self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            # A veth pair with both ends in the node: a link to nowhere (no dummy module here).
            self.x(self.node, "ip", "link", "add", "svc0", "type", "veth", "peer", "name", "svc1")
            self.x(self.node, "ip", "link", "set", "svc0", "up")
            self.x(self.node, "ip", "link", "set", "svc1", "up")
            self.x(self.node, "ip", "route", "add", "10.96.0.0/12", "dev", "svc0")
            self.netns("cli")
            self.link(self.client, "eth0", CLIENT_IP, "c0", "10.0.0.1")
            for i, (name, ns) in enumerate(self.pods.items(), start=1):
                self.netns(name)
                self.link(ns, "eth0", POD_IPS[name], f"p{i}", f"10.244.{i}.1")
            self.check_isolated()
            for name in self.pods:
                self.start_pod(name)
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
                    assert any(gateway in n for n in TOPOLOGY_NETWORKS), f"{ns}: route out: {route}"
                else:
                    net = ipaddress.ip_network(dest, strict=False)
                    assert any(net.subnet_of(n) for n in TOPOLOGY_NETWORKS), f"{ns}: foreign route {route}"
        node_default = self.x(self.node, "ip", "route", "show", "default").stdout.strip()
        assert node_default == "", f"the node namespace must have no default route: {node_default}"

    def start(self, ns, *args, env=None, log=None, **popen_options):
        process = self.namespaces[ns].start(*args, env=env, log=log, **popen_options)
        self.processes.append(process)
        return process

    def start_pod(self, name):
        """The pod's server (again, after a test killed it)."""
        return self.start(self.pods[name], "python3", POD_SERVER, name, "8080", "5353")

    def start_serve(self, *args, log, env=None, **serve_options):
        """svcbox serve in the node namespace, stopped by down() at the latest."""
        serve = ServeProcess(*args, log=log, namespace=self.namespaces[self.node], env=env,
                             **serve_options)
        self.processes.append(serve.process)
        return serve

    def wait_tcp(self, ip, port, timeout=10):
        wait_for(f"{ip}:{port} to come up", lambda: self.x(
            self.client, "bash", "-c", f"echo > /dev/tcp/{ip}/{port}", check=False).returncode == 0,
            timeout, interval=0.1)

    def kill(self, process, sig=signal.SIGTERM):
        kill_process(process, sig)

    def down(self):
        for process in self.processes:
            kill_process(process, signal.SIGKILL)
        self.processes.clear()
        for namespace in reversed(self.namespaces.values()):
            namespace.remove()
        self.namespaces.clear()
