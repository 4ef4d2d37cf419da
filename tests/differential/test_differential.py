"""A serve that followed any history answers and routes exactly as a serve started fresh on the
registry it ended with.

Serve A follows a seeded random history (history.py: applies and deletes of 1 to 2,000 objects,
readiness reports through the admin API). A third of the steps reach A as one snapshot (its
watcher held by a test hook meanwhile), as writes closer together than its polls would. After
each step, once A publishes the registry's generation (svcbox_registry_version, and in iptables
mode the rules installed from it; waited for, never slept), the registry is copied with SQLite's
backup API and a fresh serve B starts on the copy in a namespace of its own. Then:
  - DNS: A/AAAA/SRV/PTR/TXT/CNAME for every Service name, every named port, every headless
    endpoint's names and addresses, the zone apexes and a sample of absent names, asked of both
    through a batch client (dns_batch.py); answers compared as sets of records, the SOA serial
    included (it must also equal the generation);
  - iptables mode: `svcbox rules` of A and B per table and chain: in order inside a Service's
    chain, as a set in the dispatch chains (SVCBOX-SERVICES, its SVCBOX-IP-* buckets, the hooks);
  - userspace mode: the listener map (`svcbox get svc`) and the SRV ports (DNS as above
    otherwise); only a port that shared its number with another live Service since its listener
    opened may be placed differently, since the older Service keeps the number by design.
RegressionTest keeps, as short scripts, histories the random test found but reaches rarely.

A failure names the seed, the step and the first difference. SVCBOX_DIFF_STEPS (default 25) and
SVCBOX_DIFF_SEED (default random, printed) are for longer runs by hand; SVCBOX_DIFF_KEEP=DIR keeps
the registries and logs of a failing step there.

Safety (../../../shared/testing.md): both serves run in namespaces this test makes, with only
`lo`; every address in the registry is loopback or unroutable there; --default-probe none, and
recursion is allowed only to a TEST-NET address, so neither serve sends a packet anywhere; every
wait is bounded; namespaces, processes and files go in teardown.
"""
import collections
import contextlib
import ipaddress
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (BIN, Namespace, ServeProcess, registry_generation, require,  # noqa: E402
                        run, svcbox_env, temp_dir, use_private_xtables_lock, wait_for)

sys.path.insert(0, HERE)
import dns_batch  # noqa: E402
from history import History  # noqa: E402

STEPS = int(os.environ.get("SVCBOX_DIFF_STEPS", "25"))
SEED = os.environ.get("SVCBOX_DIFF_SEED")
KEEP = os.environ.get("SVCBOX_DIFF_KEEP")
DNS_BATCH = os.path.join(HERE, "dns_batch.py")
ZONE = "cluster.local."
PROXY_BASE = 20000
# Nothing is forwarded, ExternalName targets are not chased: answers depend on the registry alone.
NO_RECURSION = "192.0.2.1/32"


def reverse_name(ip):
    return ipaddress.ip_address(ip).reverse_pointer + "."


def dashed(ip):
    return ip.replace(".", "-").replace(":", "-")


def labels_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class RegistryView:
    """What the questions are made of, read from a registry file (the copy B serves)."""

    def __init__(self, path):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            self.generation = int(db.execute(
                "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            self.services = db.execute(
                "SELECT id, namespace, name, type, headless, cluster_ip, selector "
                "FROM services ORDER BY namespace, name").fetchall()
            self.ports = collections.defaultdict(list)
            for service_id, name, protocol, port in db.execute(
                    "SELECT service_id, name, protocol, port FROM service_ports ORDER BY idx"):
                self.ports[service_id].append((name, protocol, port))
            self.pods = db.execute(
                "SELECT namespace, name, labels, ips, hostname, subdomain FROM pods").fetchall()
            self.addresses = db.execute(
                "SELECT s.namespace, s.service_name, a.ip, a.hostname FROM endpoint_sets s "
                "JOIN endpoint_addresses a ON a.set_id = s.id").fetchall()

    def questions(self, rng):
        """[(name, type)]: every name the registry gives DNS, and absent ones beside them."""
        asked = []
        ask = asked.append
        pods_by_namespace = collections.defaultdict(list)
        for namespace, name, labels, ips, hostname, subdomain in self.pods:
            pods_by_namespace[namespace].append(
                (labels_of(labels), [ip for ip in ips.split(",") if ip], hostname, subdomain))
            if hostname and subdomain:
                ask((f"{hostname}.{subdomain}.{namespace}.svc.{ZONE}", "A"))
        explicit = collections.defaultdict(list)
        for namespace, service, ip, hostname in self.addresses:
            explicit[(namespace, service)].append((ip, hostname))
        namespaces = sorted({s[1] for s in self.services} | {p[0] for p in self.pods})
        for service_id, namespace, name, kind, headless, cluster_ip, selector in self.services:
            base = f"{name}.{namespace}.svc.{ZONE}"
            for qtype in ("A", "AAAA", "SRV", "TXT", "CNAME"):
                ask((base, qtype))
            ask((f"{name}.{namespace}.svc.", "A"))
            for port_name, protocol, _ in self.ports[service_id]:
                if port_name:
                    ask((f"_{port_name}._{protocol.lower()}.{base}", "SRV"))
                    ask((f"_{port_name}._{protocol.lower()}.{name}.{namespace}.svc.", "SRV"))
            ask((f"_none._tcp.{base}", "SRV"))
            if cluster_ip:
                ask((reverse_name(cluster_ip), "PTR"))
            if not headless:
                continue
            addresses = []  # (ip, hostname) of every pod or explicit address that may be one
            if selector is not None:
                wanted = labels_of(selector)
                for labels, ips, hostname, subdomain in pods_by_namespace[namespace]:
                    if all(labels.get(k) == v for k, v in wanted.items()):
                        addresses += [(ip, hostname if subdomain == name else "") for ip in ips]
            else:
                addresses = explicit[(namespace, name)]
            for ip, hostname in addresses:
                for label in {dashed(ip), hostname} - {""}:
                    ask((f"{label}.{base}", "A"))
                    ask((f"{label}.{base}", "AAAA"))
                ask((reverse_name(ip), "PTR"))
        for apex in (ZONE, "svc.", f"svc.{ZONE}", "96.10.in-addr.arpa."):
            for qtype in ("SOA", "NS", "A"):
                ask((apex, qtype))
        ask((f"dns-version.{ZONE}", "TXT"))
        for namespace in namespaces:
            ask((f"{namespace}.svc.{ZONE}", "A"))
        for i in range(200):  # absent names, of every shape
            namespace = rng.choice(namespaces or ["default"])
            absent = rng.choice((
                f"svc-{rng.randrange(100000)}.{namespace}.svc.{ZONE}",
                f"nothing-{i}.ghost-ns.svc.{ZONE}",
                f"x{i}.svc-{rng.randrange(1000)}.{namespace}.svc.{ZONE}",
                f"_nope._udp.svc-{rng.randrange(1000)}.{namespace}.svc.{ZONE}",
                f"a.b.c.{ZONE}",
                reverse_name(f"10.{rng.randrange(96, 112)}.{rng.randrange(256)}.1"),
                reverse_name(f"10.244.{rng.randrange(256)}.{rng.randrange(256)}")))
            ask((absent, rng.choice(("A", "AAAA", "SRV", "PTR"))))
        return list(dict.fromkeys(asked))


def parse_rules(text):
    """`svcbox rules` to {table: {"chains": set, "rules": {chain: [rule text]}}}."""
    tables, table = {}, None
    for line in text.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {"chains": set(), "rules": {}})
        elif line.startswith(":"):
            table["chains"].add(line[1:].split()[0])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            table["rules"].setdefault(chain, []).append(rule)
    return tables


def unordered_chain(chain):
    """The dispatch chains, whose order svcbox does not promise, and the built-in chains' hooks."""
    return chain == "SVCBOX-SERVICES" or chain.startswith("SVCBOX-IP-") or \
        not chain.startswith("SVCBOX-")


def rules_difference(a, b):
    """The first difference between two parse_rules() results, or None."""
    for name in sorted(set(a) | set(b)):
        ta, tb = a.get(name), b.get(name)
        if ta is None or tb is None:
            return f"table {name} only in {'B' if ta is None else 'A'}"
        if ta["chains"] != tb["chains"]:
            return (f"{name}: chains only in A: {sorted(ta['chains'] - tb['chains'])[:5]}, "
                    f"only in B: {sorted(tb['chains'] - ta['chains'])[:5]}")
        for chain in sorted(set(ta["rules"]) | set(tb["rules"])):
            ra, rb = ta["rules"].get(chain, []), tb["rules"].get(chain, [])
            if unordered_chain(chain):
                ca, cb = collections.Counter(ra), collections.Counter(rb)
                if ca != cb:
                    return (f"{name} {chain} (compared as a set): only in A: "
                            f"{sorted((ca - cb).elements())[:5]}, only in B: "
                            f"{sorted((cb - ca).elements())[:5]}")
            elif ra != rb:
                at = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y),
                          min(len(ra), len(rb)))
                return (f"{name} {chain} (in order) differs at rule {at + 1}: "
                        f"A: {ra[at] if at < len(ra) else '(none)'}; "
                        f"B: {rb[at] if at < len(rb) else '(none)'}\n  A: {ra}\n  B: {rb}")
    return None


def dns_difference(question, a, b):
    """The first difference between two canonical answers to one question, or None."""
    if a == b:
        return None
    if "error" in a or "error" in b:
        return f"{question}: A: {a.get('error', 'answered')}; B: {b.get('error', 'answered')}"
    for key in ("rcode", "flags", "question", "edns", "duplicates"):
        if a[key] != b[key]:
            return f"{question}: {key} A: {a[key]}, B: {b[key]}"
    for section in ("answer", "authority", "additional"):
        if a[section] != b[section]:
            return (f"{question}: {section} only in A: {sorted(a[section] - b[section])[:6]}, "
                    f"only in B: {sorted(b[section] - a[section])[:6]}")
    return f"{question}: {a} vs {b}"


def get_svc_ports(output):
    """`svcbox get svc -A` to {(namespace, name, port, protocol): listener port} (proxied ports)."""
    mapping = {}
    lines = output.splitlines()
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 7:
            continue
        namespace, name, ports = fields[0], fields[1], fields[5]
        for entry in ports.split(","):
            number, _, protocol = entry.partition("/")
            if ":" in number:
                port, listener = number.split(":")
                mapping[(namespace, name, int(port), protocol)] = int(listener)
    return mapping


def listener_class(port, listener):
    return "own" if listener == port else "base" if listener == PROXY_BASE + port else "picked"


class DifferentialCase(unittest.TestCase):
    """Serve A, the steps, and the comparison with a fresh serve B after each."""

    def setUp(self):
        require(self, "the differential test", tools=("ip", "iptables-legacy-save", "curl"),
                netns=True)
        use_private_xtables_lock()
        self.dir = temp_dir(self, "svcbox-diff-")
        os.chmod(self.dir, 0o755)
        self.db = os.path.join(self.dir, "registry.db")
        self.pause_file = os.path.join(self.dir, "pause-watcher")
        self.env = svcbox_env(self.db)
        self.seed = int(SEED) if SEED else random.SystemRandom().randrange(1 << 32)

    # --- serves ----------------------------------------------------------------------------
    def start_serve(self, tag, db, mode):
        namespace = Namespace(tag)
        self.addCleanup(namespace.remove)
        flags = ["--db", db, "--default-probe", "none", "--dns-listen", "127.0.0.1:53",
                 "--upstream", "127.0.0.1:9", "--allow-recursion", NO_RECURSION,
                 # A periodic full resync could hide what the incremental path got wrong.
                 "--sync-period", "1440m"]
        if mode == "iptables":
            flags += ["--proxy-mode", "iptables"]
        else:
            flags += ["--proxy-mode", "userspace", "--proxy-bind", "127.0.0.1"]
        env = svcbox_env(db)
        if tag == "a":
            # A test hook of serve's watcher: while this file exists it skips its polls, so the
            # writes of a step reach serve as one snapshot (see run_history).
            env["SVCBOX_TEST_WATCHER_PAUSE_FILE"] = self.pause_file
        serve = ServeProcess(*flags, log=os.path.join(self.dir, f"serve-{tag}.log"),
                             namespace=namespace, env=env)
        wait_for("serve to start (or exit)", lambda: serve.process.poll() is not None or
                 "admin HTTP on" in serve.log_text(), timeout=60, context=serve.context)
        if serve.process.poll() is not None:
            raise AssertionError(f"serve {tag} did not start{serve.context()}")
        return serve

    def wait_caught_up(self, serve, generation, rules):
        """serve publishes the generation (DNS answers from it) and, with rules, has installed
        its rules: events serve reports in its metrics, never a sleep."""
        serve.wait_metric("svcbox_registry_version", lambda v: v == generation, timeout=120)
        if rules:
            serve.wait_metric("svcbox_sync_proxy_rules_installed_version",
                              lambda v: v == generation, timeout=120)

    # --- writes ----------------------------------------------------------------------------
    def write(self, serve, kind, payload):
        if kind == "readiness":
            self.report_readiness(serve, payload)
            return
        command = ["apply", "-f", "-"] if kind == "apply" else ["delete", "-f", "-"]
        result = run(BIN, *command, env=self.env, input=payload, check=False, timeout=300)
        if result.returncode != 0:
            raise AssertionError(f"svcbox {command[0]} failed ({result.returncode}): "
                                 f"{result.stderr[-2000:]}")

    def report_readiness(self, serve, reports):
        """PUT .../readiness for each pod, all through one curl inside A's namespace."""
        args = []
        token = serve.token()
        for i, (namespace, name, ready) in enumerate(reports):
            if i:
                args.append("--next")
            body = json.dumps({"ready": ready, "reason": "differential test"})
            args += ["-sS", "-o", "/dev/null", "-w", "%{http_code}\n", "--max-time", "10",
                     "-X", "PUT", "-H", "Content-Type: application/json",
                     "-H", f"Authorization: Bearer {token}", "--data-binary", body,
                     f"{serve.admin}/api/v1/namespaces/{namespace}/pods/{name}/readiness"]
        result = serve.namespace.x("curl", *args, check=False, timeout=120)
        codes = result.stdout.split()
        if codes != ["200"] * len(reports):
            raise AssertionError(f"readiness reports answered {codes}: {result.stderr}")

    # --- comparisons -----------------------------------------------------------------------
    def ask_both(self, a, b, questions):
        """Both serves' answers, asked at once (one batch client in each namespace)."""
        payload = json.dumps(questions)
        clients = [serve.namespace.start("python3", DNS_BATCH, "127.0.0.1", "53",
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
                   for serve in (a, b)]
        answers = []
        # communicate() one at a time would serialise the two: feed both, then read both.
        for client in clients:
            client.stdin.write(payload)
            client.stdin.close()
        for name, client in zip("AB", clients):
            with client.stdout, client.stderr:
                out, err = client.stdout.read(), client.stderr.read()
            if client.wait(timeout=300) != 0:
                raise AssertionError(f"dns_batch.py asking {name} exited with "
                                     f"{client.returncode}: {err or out[-300:]}")
            answers.append([bytes.fromhex(h) if h else None for h in json.loads(out)])
        return answers

    def compare_dns(self, a, b, view, rng, normalize=None):
        questions = view.questions(rng)
        answers_a, answers_b = self.ask_both(a, b, questions)
        self.asked = (len(questions), sum(1 for answer in answers_a
                                          if answer and answer[6:8] != b"\0\0"))
        soa = dns_batch.canonical(answers_a[questions.index((ZONE, "SOA"))])
        serial = next((int(r[3].split()[2]) for r in soa.get("answer", ()) if r[1] == "SOA"), None)
        if serial != view.generation:
            return f"A's SOA serial is {serial}, the registry's generation {view.generation}"
        for question, answer_a, answer_b in zip(questions, answers_a, answers_b):
            if answer_a is None or answer_b is None:
                silent = " and ".join(n for n, x in (("A", answer_a), ("B", answer_b)) if x is None)
                return f"DNS {question}: {silent} did not answer (three tries)"
            if answer_a == answer_b:
                continue
            ca, cb = dns_batch.canonical(answer_a), dns_batch.canonical(answer_b)
            if normalize:
                ca, cb = normalize(question, ca, "A"), normalize(question, cb, "B")
            difference = dns_difference(question, ca, cb)
            if difference:
                return f"DNS {difference}"
        return None

    def rules_of(self, serve):
        return parse_rules(serve.namespace.x(BIN, "rules", env=svcbox_env(), timeout=120).stdout)

    # --- the run -----------------------------------------------------------------------------
    def run_history(self, mode, history, steps=STEPS):
        print(f"\n  {self.id()}: seed {self.seed}, {steps} steps "
              f"(again: SVCBOX_DIFF_SEED={self.seed} SVCBOX_DIFF_STEPS={steps})",
              file=sys.stderr, flush=True)
        # Apart from the history's own: which steps are coalesced, and the absent names asked.
        rng = random.Random(f"{self.seed}/coalesce")
        questions_rng = random.Random(f"{self.seed}/dns")
        a = self.start_serve("a", self.db, mode)
        started, sizes, slowest = time.monotonic(), [], (0, None)
        for step in range(steps):
            ops, description, coalesce = history.step()
            step_started = time.monotonic()
            # A third of the steps reach A as one snapshot of all their writes (its watcher
            # paused meanwhile): a delete and an apply coalesced, say, which a serve that polls
            # every 5 ms sees only by chance otherwise.
            coalesce = len(ops) > 1 and (coalesce or rng.random() < 0.35)
            if coalesce:
                description += " (coalesced)"
            for kind, payload in ops:
                if coalesce:
                    open(self.pause_file, "w").close()
                self.write(a, kind, payload)
            self.resume()
            generation = registry_generation(self.db)
            self.wait_caught_up(a, generation, rules=mode == "iptables")
            caught_up = time.monotonic()
            copy = os.path.join(self.dir, f"copy-{step}.db")
            with contextlib.closing(sqlite3.connect(self.db)) as source, \
                    contextlib.closing(sqlite3.connect(copy)) as target:
                source.backup(target)
            view = RegistryView(copy)
            if view.generation != generation:
                raise AssertionError(f"the registry moved from generation {generation} to "
                                     f"{view.generation} with no write made")
            b = self.start_serve(f"b{step}", copy, mode)
            try:
                self.wait_caught_up(b, generation, rules=mode == "iptables")
                fresh = time.monotonic()
                difference = self.compare(mode, a, b, copy, view, questions_rng, history)
                if difference:
                    self.fail_step(step, description, difference, a, b, copy)
            finally:
                b.stop()
                b.namespace.remove()
                for suffix in ("", "-wal", "-shm", ".serve.lock", ".proxy-ports"):
                    if os.path.exists(copy + suffix):
                        os.unlink(copy + suffix)
            took = time.monotonic() - step_started
            sizes.append(len(view.services) + len(view.pods))
            slowest = max(slowest, (took, step))
            print(f"  step {step}: {description}: generation {generation}, "
                  f"{len(view.services)} Services, {len(view.pods)} Pods; {self.asked[0]} "
                  f"questions ({self.asked[1]} with answers): equal in {took:.1f} s (A caught "
                  f"up {caught_up - step_started:.1f}, B fresh {fresh - caught_up:.1f}, "
                  f"compared {time.monotonic() - fresh:.1f})",
                  file=sys.stderr, flush=True)
        self.assertIsNone(a.process.poll(), a.context())
        total = time.monotonic() - started
        print(f"  seed {self.seed}: {steps} steps equal in {total:.0f} s ({total / steps:.2f} s a "
              f"step, slowest {slowest[0]:.1f} s at step {slowest[1]}); largest registry "
              f"{max(sizes)} Services and Pods", file=sys.stderr, flush=True)

    def resume(self):
        """Lets A's watcher poll again."""
        if os.path.exists(self.pause_file):
            os.unlink(self.pause_file)

    def compare(self, mode, a, b, copy, view, rng, history):
        if mode == "iptables":
            difference = rules_difference(self.rules_of(a), self.rules_of(b))
            if difference:
                return f"rules: {difference}"
            return self.compare_dns(a, b, view, rng)
        return self.compare_listeners(a, b, copy, view, rng, history)

    def compare_listeners(self, a, b, copy, view, rng, history):
        """Userspace mode: the same Service ports proxied, each placed alike (its own number, base +
        number, a port the kernel picked), except ports that shared their number with another
        Service since their listener opened (history.shared_listeners): which one holds the number
        is history, by design (docs/userspace.md), and those are compared as a multiset. DNS answers
        then compare with each SRV port replaced by its placement, after checking that each serve's
        SRV ports are its own listeners."""
        maps = {}
        for name, db in (("A", self.db), ("B", copy)):
            maps[name] = get_svc_ports(run(BIN, "get", "svc", "-A", "--db", db,
                                           env=svcbox_env(), timeout=60).stdout)
        if set(maps["A"]) != set(maps["B"]):
            return (f"listeners only in A: {sorted(set(maps['A']) - set(maps['B']))[:5]}, "
                    f"only in B: {sorted(set(maps['B']) - set(maps['A']))[:5]}")
        shared = history.shared_listeners
        for key in sorted(set(maps["A"]) - shared):
            placed = {name: listener_class(key[2], maps[name][key]) for name in maps}
            if placed["A"] != placed["B"]:
                return (f"listener of {key}: A {maps['A'][key]} ({placed['A']}), "
                        f"B {maps['B'][key]} ({placed['B']}); the port was never shared")
        # Which Service port an SRV question names: (namespace, name, port, protocol).
        srv_port = {}
        for service_id, namespace, name, _, _, _, _ in view.services:
            for port_name, protocol, number in view.ports[service_id]:
                for base in (f"{name}.{namespace}.svc.{ZONE}", f"{name}.{namespace}.svc."):
                    srv_port[(f"_{port_name}._{protocol.lower()}.{base}", "SRV")] = \
                        (namespace, name, number, protocol)
        problems = []

        def normalize(question, answer, server):
            key = srv_port.get(question)
            if key not in maps[server] or "answer" not in answer:
                return answer
            records = set()
            for owner, rtype, ttl, rdata in answer["answer"]:
                if rtype == "SRV":
                    priority, weight, port, target = rdata.split()
                    if int(port) != maps[server][key]:
                        problems.append(f"{server}'s SRV {question[0]} says port {port}, its "
                                        f"listener is {maps[server][key]}")
                    placed = "shared" if key in shared else listener_class(key[2], int(port))
                    rdata = f"{priority} {weight} {placed} {target}"
                records.add((owner, rtype, ttl, rdata))
            return dict(answer, answer=frozenset(records))

        difference = self.compare_dns(a, b, view, rng, normalize)
        if problems:
            return problems[0]
        return difference

    def fail_step(self, step, description, difference, a, b, copy):
        kept = ""
        if KEEP:
            target = os.path.join(KEEP, f"seed{self.seed}-step{step}")
            os.makedirs(target, exist_ok=True)
            for path in (copy, a.log, b.log):
                shutil.copy(path, target)
            kept = f"\n  kept: {target} (the registry B served, both logs)"

        def tail(serve):
            return "\n".join(serve.log_text().splitlines()[-15:])
        raise AssertionError(
            f"seed {self.seed}, step {step} ({description}): {difference}{kept}\n"
            f"  again: SVCBOX_DIFF_SEED={self.seed} SVCBOX_DIFF_STEPS={step + 1}\n"
            f"--- A's log, last lines:\n{tail(a)}\n--- B's log, last lines:\n{tail(b)}")



class DifferentialTest(DifferentialCase):
    def test_iptables_mode_after_any_history_equals_a_fresh_serve(self):
        self.run_history("iptables", History(random.Random(self.seed)))

    def test_userspace_listeners_after_any_history_equal_a_fresh_serves(self):
        # Fewer objects: every ClusterIP Service port is a listening socket in each serve.
        self.run_history("userspace", History(random.Random(self.seed), max_objects=300,
                                              target=1500, services=400, pods=800,
                                              userspace=True))


class Script:
    """A history written out by hand, as History.step() gives it: (ops, description, coalesce)."""

    shared_listeners = frozenset()

    def __init__(self, *steps):
        self.steps = list(steps)

    def step(self):
        return self.steps.pop(0)


def documents(*manifests):
    return "\n---\n".join(json.dumps(m) for m in manifests)


def pod(name, app, ip, **labels):
    return History.manifest("Pod", "default", name, labels={"app": app, **labels},
                            spec={"containers": [{"name": "c", "image": "x"}]},
                            status={"podIP": ip})


class RegressionTest(DifferentialCase):
    """Histories the random test found hard to reach, kept as scripts."""

    def test_a_deleted_rows_id_taken_by_a_new_row_keeps_the_pods_in_name_order(self):
        """SQLite gives the highest id again once its row is deleted. A delete of the newest pod
        and a new pod in one snapshot leave the row cache's count as it was, and the new pod
        took the old one's place in the name order (refreshChangedRows: "same id, same name").
        The next change to a selected pod resolved its Service among pods looked up by name in
        that misordered list (resolveEndpointsSharing), and p03 was lost."""
        service = History.manifest("Service", "default", "s",
                                   spec={"clusterIP": "None", "selector": {"app": "x"},
                                         "ports": [{"port": 80}]})
        pods = [pod(f"p0{i}", "x", f"127.0.1.{i + 1}") for i in range(4)]
        script = Script(
            ([("apply", documents(service, *pods, pod("zz", "y", "127.0.1.5")))], "five pods",
             False),
            ([("delete", documents(pod("zz", "y", "127.0.1.5"))),
              ("apply", documents(pod("a00", "y", "127.0.1.6")))],
             "the newest pod deleted, a pod named before every other made", True),
            ([("apply", documents(pod("p00", "x", "127.0.1.1", tier="web")))],
             "a selected pod relabelled", False))
        self.run_history("iptables", script, steps=3)


if __name__ == "__main__":
    unittest.main()
