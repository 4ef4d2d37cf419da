"""DNS end to end: the real svcbox binary inside a network namespace made for the test, asked by
real clients (dig, kdig, c-ares, glibc's getent), forwarding to an upstream the test started on
loopback. Expected answers are written out by hand from the manifest below."""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from svcbox_e2e import (BIN, REPO, Namespace, ServeProcess, register_cleanup, require, run,  # noqa: E402
                        svcbox_env, temp_dir, wait_for)

ARES = os.path.abspath(os.environ.get("SVCBOX_ARES_CLIENT",
                                      os.path.join(REPO, "build/release/tests/ares_client")))

UPSTREAM_PORT = 5399
BLACKHOLE_PORT = 5398

MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
  - {name: https, port: 8443}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: web, image: any, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.0.1.2}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db, namespace: prod}
subsets:
- addresses: [{ip: 10.1.0.5, hostname: db-0}, {ip: 10.1.0.6}]
  notReadyAddresses: [{ip: 10.1.0.7}]
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: empty}
subsets:
- notReadyAddresses: [{ip: 10.1.1.9}]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.org}
---
apiVersion: v1
kind: Service
metadata: {name: to-web}
spec: {type: ExternalName, externalName: web.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: to-db}
spec: {type: ExternalName, externalName: db.prod.svc.cluster.local.}
---
apiVersion: v1
kind: Service
metadata: {name: to-to-web}
spec: {type: ExternalName, externalName: to-web.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: to-ext}
spec: {type: ExternalName, externalName: ext.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: to-nothing}
spec: {type: ExternalName, externalName: gone.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: ext-big}
spec: {type: ExternalName, externalName: big.example.org}
---
apiVersion: v1
kind: Service
metadata: {name: dup}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dup-a, labels: {kubernetes.io/service-name: dup}}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints:
- {addresses: [10.3.0.1], hostname: dup-name}
- {addresses: [10.3.0.2], hostname: dup-name}
- {addresses: [10.3.0.3], hostname: other}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dup-b, labels: {kubernetes.io/service-name: dup}}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints:
- {addresses: [10.3.0.3], hostname: other}
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: big}
subsets:
- addresses: [%s]
  ports: [{port: 80}]
""" % ", ".join("{ip: 10.2.0.%d}" % i for i in range(1, 101))

SOA_CLUSTER = ("cluster.local.", "SOA")
SOA_SVC = ("svc.", "SOA")

# (name, type, status, answers as {(type, rdata)}, authority owner+type or None, authoritative)
CASES = [
    ("web.default.svc.cluster.local", "A", "NOERROR", {("A", "10.96.0.10")}, None, True),
    ("web.default.svc", "A", "NOERROR", {("A", "10.96.0.10")}, None, True),
    ("web.default.svc.cluster.local", "AAAA", "NOERROR", set(), SOA_CLUSTER, True),
    ("web.default.svc.cluster.local", "TXT", "NOERROR", set(), SOA_CLUSTER, True),
    ("_http._tcp.web.default.svc.cluster.local", "SRV", "NOERROR",
     {("SRV", "0 100 80 web.default.svc.cluster.local.")}, None, True),
    ("_dns._udp.web.default.svc.cluster.local", "SRV", "NOERROR",
     {("SRV", "0 100 53 web.default.svc.cluster.local.")}, None, True),
    ("_http._udp.web.default.svc.cluster.local", "SRV", "NXDOMAIN", set(), SOA_CLUSTER, True),
    ("_http._tcp.web.default.svc", "SRV", "NOERROR",
     {("SRV", "0 100 80 web.default.svc.")}, None, True),
    ("db.prod.svc.cluster.local", "A", "NOERROR", {("A", "10.1.0.5"), ("A", "10.1.0.6")}, None,
     True),
    ("db-0.db.prod.svc.cluster.local", "A", "NOERROR", {("A", "10.1.0.5")}, None, True),
    ("10-1-0-6.db.prod.svc.cluster.local", "A", "NOERROR", {("A", "10.1.0.6")}, None, True),
    ("10-1-0-7.db.prod.svc.cluster.local", "A", "NXDOMAIN", set(), SOA_CLUSTER, True),
    ("_pg._tcp.db.prod.svc.cluster.local", "SRV", "NOERROR",
     {("SRV", "0 50 5432 db-0.db.prod.svc.cluster.local."),
      ("SRV", "0 50 5432 10-1-0-6.db.prod.svc.cluster.local.")}, None, True),
    ("empty.default.svc.cluster.local", "A", "NXDOMAIN", set(), SOA_CLUSTER, True),
    # Deliberately unlike CoreDNS (docs/dns.md): no SRV at the bare name, no pod.<zone> names.
    ("web.default.svc.cluster.local", "SRV", "NOERROR", set(), SOA_CLUSTER, True),
    ("10-0-1-2.default.pod.cluster.local", "A", "NXDOMAIN", set(), SOA_CLUSTER, True),
    ("nosuch.default.svc.cluster.local", "A", "NXDOMAIN", set(), SOA_CLUSTER, True),
    ("nosuch.svc", "A", "NXDOMAIN", set(), SOA_SVC, True),
    ("default.svc.cluster.local", "A", "NOERROR", set(), SOA_CLUSTER, True),
    ("10.0.96.10.in-addr.arpa", "PTR", "NOERROR", {("PTR", "web.default.svc.cluster.local.")},
     None, True),
    ("5.0.1.10.in-addr.arpa", "PTR", "NOERROR", {("PTR", "db-0.db.prod.svc.cluster.local.")},
     None, True),
    ("6.0.1.10.in-addr.arpa", "PTR", "NOERROR",
     {("PTR", "10-1-0-6.db.prod.svc.cluster.local.")}, None, True),
    ("99.99.96.10.in-addr.arpa", "PTR", "NXDOMAIN", set(), ("96.10.in-addr.arpa.", "SOA"), True),
    ("ext.default.svc.cluster.local", "CNAME", "NOERROR", {("CNAME", "example.org.")}, None, True),
    ("ext.default.svc.cluster.local", "A", "NOERROR",
     {("CNAME", "example.org."), ("A", "192.0.2.10")}, None, True),
    # RFC 1034 §4.3.2 step 3a: a CNAME to a name in the server's own data is followed there.
    ("to-web.default.svc.cluster.local", "A", "NOERROR",
     {("CNAME", "web.default.svc.cluster.local."), ("A", "10.96.0.10")}, None, True),
    ("to-db.default.svc.cluster.local", "A", "NOERROR",
     {("CNAME", "db.prod.svc.cluster.local."), ("A", "10.1.0.5"), ("A", "10.1.0.6")}, None,
     True),
    ("to-to-web.default.svc", "A", "NOERROR",
     {("CNAME", "to-web.default.svc.cluster.local."), ("CNAME", "web.default.svc.cluster.local."),
      ("A", "10.96.0.10")}, None, True),
    # A chain that leaves the zones is resolved upstream from where it leaves them.
    ("to-ext.default.svc.cluster.local", "A", "NOERROR",
     {("CNAME", "ext.default.svc.cluster.local."), ("CNAME", "example.org."),
      ("A", "192.0.2.10")}, None, True),
    # RFC 6604: the RCODE is that of the last name in the chain.
    ("to-nothing.default.svc.cluster.local", "A", "NXDOMAIN",
     {("CNAME", "gone.default.svc.cluster.local.")}, SOA_CLUSTER, True),
    ("cluster.local", "NS", "NOERROR", {("NS", "ns.dns.cluster.local.")}, None, True),
    ("dns-version.cluster.local", "TXT", "NOERROR", {("TXT", '"1.1.0"')}, None, True),
    ("example.org", "A", "NOERROR", {("A", "192.0.2.10")}, None, False),
    ("nx.example.org", "A", "NXDOMAIN", set(), ("example.org.", "SOA"), False),
]


def parse_dig(text):
    """Status, header flags and sections of dig's or kdig's output."""
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r"[Ff]lags: ([a-z ]*);", text)
    sections, current = {}, None
    for line in text.splitlines():
        header = re.match(r";; (\w+) SECTION:", line)
        if header:
            current = header.group(1)
            sections[current] = []
        elif line.strip() and not line.startswith(";") and current:
            owner, _ttl, _klass, rtype, rdata = line.split(None, 4)
            sections[current].append((owner, rtype, rdata.strip()))
    return {"status": status.group(1) if status else None,
            "flags": set(flags.group(1).split()) if flags else set(),
            "sections": sections, "text": text}


class DnsEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require(cls, "the DNS e2e tests", tools=("ip", "dig", "kdig", "getent"))
        cls.dir = temp_dir(cls, "svcbox-dns-")
        cls.ns = Namespace("dns")
        register_cleanup(cls, cls.ns.remove)
        cls.manifest = os.path.join(cls.dir, "cluster.yaml")
        with open(cls.manifest, "w") as f:
            f.write(MANIFEST)
        cls.db = cls.new_registry()
        cls.upstream_log = os.path.join(cls.dir, "upstream.log")
        for port, extra in ((UPSTREAM_PORT, []), (BLACKHOLE_PORT, ["--blackhole"])):
            log = os.path.join(cls.dir, f"upstream-{port}.log")
            cls.ns.start("python3", os.path.join(HERE, "upstream.py"), str(port),
                         cls.upstream_log if port == UPSTREAM_PORT else log, *extra)
        cls.serve_count = 0
        cls.serve(["--dns-listen", "127.0.0.1:53", "--upstream", f"127.0.0.1:{UPSTREAM_PORT}"],
                  "127.0.0.1:53", db=cls.db)

    @classmethod
    def new_registry(cls):
        """A registry of its own for each serve: one serve owns a registry file."""
        db = os.path.join(cls.dir, f"registry-{uuid.uuid4().hex[:6]}.db")
        run(BIN, "apply", "--db", db, "-f", cls.manifest)
        return db

    @classmethod
    def serve(cls, args, listen, db=None, env=None):
        log_path = os.path.join(cls.dir, f"serve-{cls.serve_count}.log")
        cls.serve_count += 1
        # The registries hold pods at made-up addresses: no default probe, so headless
        # answers keep every endpoint (tests/serve covers readiness).
        serve = ServeProcess("--proxy-mode", "none", "--default-probe", "none", "--admin-listen",
                             "127.0.0.1:0", "--db", db or cls.new_registry(), *args, log=log_path,
                             namespace=cls.ns, env=env)
        serve.wait_log(re.escape(f"DNS listening on {listen}"), timeout=10)
        return serve

    def dig(self, name, rtype, *options, port=53, client="dig"):
        args = [client, "@127.0.0.1", "-p", str(port), name, rtype, *options]
        args += ["+tries=1", "+timeout=5"] if client == "dig" else ["+retry=0", "+timeout=5"]
        result = self.ns.x(*args, check=False)
        return parse_dig(result.stdout)

    def test_every_record_form_over_udp_and_tcp_with_dig_and_kdig(self):
        for client in ("dig", "kdig"):
            for transport in ([], ["+tcp"]):
                for name, rtype, status, answers, authority, authoritative in CASES:
                    with self.subTest(client=client, transport=transport, name=name, type=rtype):
                        reply = self.dig(name, rtype, *transport, client=client)
                        self.assertEqual(reply["status"], status, reply["text"])
                        got = {(t, d) for _, t, d in reply["sections"].get("ANSWER", [])}
                        self.assertEqual(got, answers, reply["text"])
                        if authority:
                            owners = {(o, t) for o, t, _ in reply["sections"].get("AUTHORITY", [])}
                            self.assertEqual(owners, {authority}, reply["text"])
                        self.assertEqual("aa" in reply["flags"], authoritative, reply["text"])

    def test_srv_answers_carry_the_targets_addresses(self):
        reply = self.dig("_pg._tcp.db.prod.svc.cluster.local", "SRV")
        additional = {(o, t, d) for o, t, d in reply["sections"].get("ADDITIONAL", [])}
        self.assertIn(("db-0.db.prod.svc.cluster.local.", "A", "10.1.0.5"), additional)
        self.assertIn(("10-1-0-6.db.prod.svc.cluster.local.", "A", "10.1.0.6"), additional)
        reply = self.dig("_http._tcp.web.default.svc.cluster.local", "SRV")
        additional = {(o, t, d) for o, t, d in reply["sections"].get("ADDITIONAL", [])}
        self.assertIn(("web.default.svc.cluster.local.", "A", "10.96.0.10"), additional)

    def test_matching_ignores_case_and_echoes_the_question_as_asked(self):
        reply = self.dig("WEB.Default.SVC.cluster.LOCAL", "A")
        self.assertEqual(reply["status"], "NOERROR")
        self.assertIn(";WEB.Default.SVC.cluster.LOCAL.", reply["text"])
        self.assertEqual(reply["sections"]["ANSWER"],
                         [("WEB.Default.SVC.cluster.LOCAL.", "A", "10.96.0.10")])

    def test_c_ares_reads_every_record_form(self):
        cases = [
            ("web.default.svc.cluster.local", "A", ["A 10.96.0.10"]),
            ("_http._tcp.web.default.svc.cluster.local", "SRV",
             ["SRV 0 100 80 web.default.svc.cluster.local"]),
            ("_pg._tcp.db.prod.svc.cluster.local", "SRV",
             ["SRV 0 50 5432 10-1-0-6.db.prod.svc.cluster.local",
              "SRV 0 50 5432 db-0.db.prod.svc.cluster.local"]),
            ("db.prod.svc.cluster.local", "A", ["A 10.1.0.5", "A 10.1.0.6"]),
            ("10.0.96.10.in-addr.arpa", "PTR", ["PTR web.default.svc.cluster.local"]),
            ("dns-version.cluster.local", "TXT", ["TXT 1.1.0"]),
            ("ext.default.svc.cluster.local", "A", ["A 192.0.2.10"]),
            ("to-to-web.default.svc.cluster.local", "A", ["A 10.96.0.10"]),
            ("to-nothing.default.svc.cluster.local", "A", ["status Domain name not found"]),
            ("web.default.svc.cluster.local", "AAAA", ["status DNS server returned answer with no data"]),
            ("nosuch.default.svc.cluster.local", "A", ["status Domain name not found"]),
        ]
        for transport in ([], ["tcp"]):
            for name, rtype, expected in cases:
                with self.subTest(name=name, type=rtype, transport=transport):
                    result = self.ns.x(ARES, "127.0.0.1", "53", name, rtype, *transport, check=False)
                    self.assertEqual(sorted(result.stdout.split("\n")[:-1]), expected,
                                     result.stdout + result.stderr)

    def test_glibc_resolves_short_names_through_a_kubernetes_style_resolv_conf(self):
        os.makedirs(f"/etc/netns/{self.ns.name}", exist_ok=True)
        with open(f"/etc/netns/{self.ns.name}/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.1\n"
                    "search default.svc.cluster.local svc.cluster.local cluster.local\n"
                    "options ndots:5 attempts:1 timeout:3\n")
        try:
            for name in ("web", "web.default", "web.default.svc", "db.prod", "to-web"):
                with self.subTest(name=name):
                    # getent hosts: gethostbyname2, which (unlike getaddrinfo's AI_ADDRCONFIG)
                    # asks even though the namespace has only loopback addresses.
                    result = self.ns.x("getent", "hosts", name, check=False)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    address, canonical = result.stdout.split()[:2]
                    if name == "db.prod":
                        self.assertIn(address, {"10.1.0.5", "10.1.0.6"})
                        self.assertEqual(canonical, "db.prod.svc.cluster.local")
                    else:
                        self.assertEqual((address, canonical),
                                         ("10.96.0.10", "web.default.svc.cluster.local"))
            # Default upstreams are resolv.conf's nameservers minus svcbox's own address.
            with open(f"/etc/netns/{self.ns.name}/resolv.conf", "a") as f:
                f.write("nameserver 127.0.0.2\n")
            config = self.ns.x(BIN, "serve", "--print-config", "--db", self.db,
                               "--dns-listen", "127.0.0.1:53", check=False).stdout
            self.assertRegex(config, r"upstream: 127\.0\.0\.2:53\b")
            self.assertNotIn("127.0.0.1:53    # from", config)
        finally:
            shutil.rmtree(f"/etc/netns/{self.ns.name}", ignore_errors=True)

    def test_long_answers_are_truncated_over_udp_and_complete_over_tcp(self):
        reply = self.dig("big.default.svc.cluster.local", "A", "+noedns", "+ignore")
        self.assertIn("tc", reply["flags"])
        self.assertEqual(reply["sections"].get("ANSWER", []), [])
        reply = self.dig("big.default.svc.cluster.local", "A", "+bufsize=1232", "+ignore")
        self.assertIn("tc", reply["flags"])
        for client in ("dig", "kdig"):
            reply = self.dig("big.default.svc.cluster.local", "A", client=client)
            self.assertEqual(len(reply["sections"]["ANSWER"]), 100, reply["text"][:400])
        reply = self.dig("big.default.svc.cluster.local", "A", "+tcp")
        self.assertEqual(len(reply["sections"]["ANSWER"]), 100)

    def test_a_set_holds_each_record_once_when_endpoints_share_a_hostname(self):
        # RFC 2181 §5: duplicate records in a set are suppressed. Slice dup-a has two endpoints
        # named dup-name, and both slices list 10.3.0.3 as `other`.
        for transport in ([], ["+tcp"]):
            reply = self.dig("_http._tcp.dup.default.svc.cluster.local", "SRV", *transport)
            targets = sorted(d for _, t, d in reply["sections"].get("ANSWER", []))
            self.assertEqual(len(targets), len(set(targets)), reply["text"])
            self.assertEqual({d.split()[3] for d in targets},
                             {"dup-name.dup.default.svc.cluster.local.",
                              "other.dup.default.svc.cluster.local."}, reply["text"])
            reply = self.dig("dup.default.svc.cluster.local", "A", *transport)
            addresses = sorted(d for _, _, d in reply["sections"].get("ANSWER", []))
            self.assertEqual(addresses, ["10.3.0.1", "10.3.0.2", "10.3.0.3"], reply["text"])
            reply = self.dig("other.dup.default.svc.cluster.local", "A", *transport)
            self.assertEqual([d for _, _, d in reply["sections"].get("ANSWER", [])],
                             ["10.3.0.3"], reply["text"])

    def test_an_external_name_answer_too_large_for_udp_is_truncated_and_complete_over_tcp(self):
        # RFC 1035 §4.2.1 / RFC 2181 §9: what does not fit is sent with TC, so the client retries
        # over TCP; the upstream's answer for big.example.org holds 40 A records (> 512 bytes).
        reply = self.dig("ext-big.default.svc.cluster.local", "A", "+noedns", "+ignore")
        self.assertIn("tc", reply["flags"], reply["text"])
        self.assertEqual(reply["status"], "NOERROR", reply["text"])
        self.assertEqual(reply["sections"].get("ANSWER", []), [], reply["text"])
        for options in (["+noedns"], ["+tcp"]):
            reply = self.dig("ext-big.default.svc.cluster.local", "A", *options)
            self.assertNotIn("tc", reply["flags"], reply["text"])
            answer = reply["sections"].get("ANSWER", [])
            self.assertEqual([r[1] for r in answer], ["CNAME"] + ["A"] * 40, reply["text"])

    def test_a_server_that_may_not_recurse_still_follows_chains_inside_its_zones(self):
        self.serve(["--dns-listen", "127.0.0.1:5358", "--upstream", f"127.0.0.1:{UPSTREAM_PORT}",
                    "--allow-recursion", "192.0.2.0/24"], "127.0.0.1:5358")
        for options in ([], ["+norec"]):
            reply = self.dig("to-to-web.default.svc.cluster.local", "A", *options, port=5358)
            self.assertEqual([(r[1], r[2]) for r in reply["sections"].get("ANSWER", [])],
                             [("CNAME", "to-web.default.svc.cluster.local."),
                              ("CNAME", "web.default.svc.cluster.local."), ("A", "10.96.0.10")],
                             reply["text"])
            self.assertIn("aa", reply["flags"])
            # A target outside the zones is this client's to resolve: the chain up to it.
            reply = self.dig("ext.default.svc.cluster.local", "A", *options, port=5358)
            self.assertEqual(reply["status"], "NOERROR", reply["text"])
            self.assertEqual([(r[1], r[2]) for r in reply["sections"].get("ANSWER", [])],
                             [("CNAME", "example.org.")], reply["text"])
            reply = self.dig("to-ext.default.svc.cluster.local", "A", *options, port=5358)
            self.assertEqual([(r[1], r[2]) for r in reply["sections"].get("ANSWER", [])],
                             [("CNAME", "ext.default.svc.cluster.local."),
                              ("CNAME", "example.org.")], reply["text"])

    def test_until_the_registry_is_loaded_cluster_names_get_servfail_not_a_cached_nxdomain(self):
        hold = os.path.join(self.dir, "hold-first-load")
        open(hold, "w").close()
        register_cleanup(self, lambda: os.path.exists(hold) and os.unlink(hold))
        serve = self.serve(["--dns-listen", "127.0.0.1:5359", "--upstream",
                            f"127.0.0.1:{UPSTREAM_PORT}"], "127.0.0.1:5359",
                           env={**svcbox_env(), "SVCBOX_TEST_HOLD_FIRST_LOAD_FILE": hold})
        for name in ("web.default.svc.cluster.local", "nosuch.default.svc.cluster.local",
                     "10.0.96.10.in-addr.arpa"):
            reply = self.dig(name, "PTR" if name.endswith("arpa") else "A", port=5359)
            self.assertEqual(reply["status"], "SERVFAIL", reply["text"])
            self.assertNotIn("aa", reply["flags"], reply["text"])
            self.assertEqual(reply["sections"].get("AUTHORITY", []), [], reply["text"])
        # Names outside the zones need nothing from the registry.
        self.assertEqual(self.dig("example.org", "A", port=5359)["status"], "NOERROR")
        self.assertIsNone(serve.process.poll())
        os.unlink(hold)
        wait_for("the registry to load", lambda: self.dig(
            "web.default.svc.cluster.local", "A", port=5359)["status"] == "NOERROR", 35,
            context=serve.context)
        self.assertEqual(self.dig("nosuch.default.svc.cluster.local", "A", port=5359)["status"],
                         "NXDOMAIN")

    def test_zone_transfers_are_refused(self):
        name = "07636c7573746572056c6f63616c00"  # cluster.local
        queries = [f"{ident:04x}00000001000000000000{name}{rtype:04x}0001"
                   for ident, rtype in ((31, 252), (32, 251))]  # AXFR, IXFR
        result = self.ns.x("python3", os.path.join(HERE, "raw_client.py"), "53", "tcp", *queries,
                           check=False)
        self.assertEqual(sorted(result.stdout.splitlines()),
                         [f"rcode 5 id {i} qd 1 an 0 tc 0" for i in (31, 32)], result.stderr)

    def test_edns_is_echoed_with_svcbox_size_and_newer_versions_get_badvers(self):
        reply = self.dig("web.default.svc.cluster.local", "A", "+bufsize=4096")
        self.assertRegex(reply["text"], r"EDNS: version: 0, flags:; udp: 1232")
        reply = self.dig("web.default.svc.cluster.local", "A", "+edns=1", "+noednsneg")
        self.assertEqual(reply["status"], "BADVERS")
        reply = self.dig("web.default.svc.cluster.local", "A", "+noedns")
        self.assertNotIn("EDNS:", reply["text"])

    def test_forwarded_answers_are_cached_with_aging_ttls(self):
        def asked(name):
            with open(self.upstream_log) as f:
                return sum(1 for line in f if line.split()[0] == name)

        first = self.dig("www.example.org", "A")
        self.assertEqual(first["sections"]["ANSWER"], [("www.example.org.", "A", "192.0.2.20")])
        self.assertEqual(asked("www.example.org"), 1)
        time.sleep(1.1)
        again = self.dig("WWW.example.ORG", "A")
        self.assertEqual(again["status"], "NOERROR")
        self.assertEqual(asked("www.example.org"), 1, "the second query reached the upstream")
        ttl = int(re.search(r"^WWW\.example\.ORG\.\s+(\d+)", again["text"], re.M).group(1))
        self.assertLess(ttl, 120)
        # Negative answers are cached too (SOA minimum 30 s).
        for _ in range(3):
            self.assertEqual(self.dig("missing.example.org", "A")["status"], "NXDOMAIN")
        self.assertEqual(asked("missing.example.org"), 1)

    def test_dead_upstreams_give_servfail_and_too_many_forwards_refused(self):
        self.serve(["--dns-listen", "127.0.0.1:5354", "--upstream", f"127.0.0.1:{BLACKHOLE_PORT}",
                    "--max-concurrent-forwards", "2"], "127.0.0.1:5354")
        started = time.monotonic()
        digs = [self.ns.start("dig", "@127.0.0.1", "-p", "5354", f"q{i}.example.net", "A", "+tries=1",
                              "+timeout=8", stdout=subprocess.PIPE, text=True) for i in range(6)]
        statuses = sorted(parse_dig(p.communicate(timeout=20)[0])["status"] for p in digs)
        elapsed = time.monotonic() - started
        self.assertEqual(statuses.count("SERVFAIL"), 2, statuses)
        self.assertEqual(statuses.count("REFUSED"), 4, statuses)
        self.assertLess(elapsed, 6, "SERVFAIL should come after about 2 s")
        # Cluster names never wait for an upstream.
        self.assertEqual(self.dig("web.default.svc.cluster.local", "A", port=5354)["status"],
                         "NOERROR")
        # Nothing listening upstream: SERVFAIL as well.
        self.serve(["--dns-listen", "127.0.0.1:5355", "--upstream", "127.0.0.1:5397"],
                   "127.0.0.1:5355")
        self.assertEqual(self.dig("example.org", "A", port=5355)["status"], "SERVFAIL")

    def test_recursion_only_for_allowed_clients_but_cluster_names_for_everyone(self):
        self.serve(["--dns-listen", "127.0.0.1:5356", "--upstream", f"127.0.0.1:{UPSTREAM_PORT}",
                    "--allow-recursion", "192.0.2.0/24"], "127.0.0.1:5356")
        reply = self.dig("example.org", "A", port=5356)
        self.assertEqual(reply["status"], "REFUSED")
        self.assertNotIn("ra", reply["flags"])
        reply = self.dig("web.default.svc.cluster.local", "A", port=5356)
        self.assertEqual(reply["status"], "NOERROR")
        self.assertEqual(reply["sections"]["ANSWER"][0][2], "10.96.0.10")

    def test_a_registry_change_reaches_answers_quickly(self):
        manifest = os.path.join(self.dir, "late.yaml")
        with open(manifest, "w") as f:
            f.write("apiVersion: v1\nkind: Service\nmetadata: {name: late}\n"
                    "spec: {clusterIP: 10.96.0.77, ports: [{port: 80}]}\n")
        self.assertEqual(self.dig("late.default.svc.cluster.local", "A")["status"], "NXDOMAIN")
        run(BIN, "apply", "--db", self.db, "-f", manifest)
        wait_for("the new Service in DNS",
                 lambda: self.dig("late.default.svc.cluster.local", "A")["status"] == "NOERROR", 5)
        self.assertEqual(self.dig("77.0.96.10.in-addr.arpa", "PTR")["sections"]["ANSWER"],
                         [("77.0.96.10.in-addr.arpa.", "PTR", "late.default.svc.cluster.local.")])
        run(BIN, "delete", "--db", self.db, "svc", "late")
        wait_for("the deleted Service to leave DNS",
                 lambda: self.dig("late.default.svc.cluster.local", "A")["status"] == "NXDOMAIN", 5)

    def test_bad_packets_get_formerr_notimp_or_silence_and_the_server_keeps_answering(self):
        query = "00070100000100000000000003776562076465666175" \
                "6c74037376630763" "6c7573746572056c6f63616c0000010001"
        header = lambda ident, flags, qd: f"{ident:04x}{flags:04x}{qd:04x}000000000000"
        packets = {
            "runt": ("0001", "none"),
            "response (QR=1)": (header(2, 0x8100, 1) + "0377656200" + "00010001", "none"),
            "two questions": (header(3, 0x0100, 2) + "0377656200000100010377656200000100 01"
                              .replace(" ", ""), "rcode 1 id 3"),
            "opcode STATUS": (header(4, 0x1100, 1) + "0377656200" + "00010001", "rcode 4 id 4"),
            "label over 63": (header(5, 0x0100, 1) + "40" + "61" * 64 + "00" + "00010001",
                              "rcode 1 id 5"),
            "pointer loop in question": (header(6, 0x0100, 1) + "c00c" + "00010001",
                                         "rcode 1 id 6"),
            "name over 255": (header(8, 0x0100, 1) + ("3f" + "61" * 63) * 4 + "00" + "00010001",
                              "rcode 1 id 8"),
            "no type and class": (header(9, 0x0100, 1) + "0377656200", "rcode 1 id 9"),
            "class CHAOS": (header(10, 0x0100, 1) + "0776657273696f6e0462696e6400" + "00100003",
                            "rcode 4 id 10"),
            "garbage after header": (header(11, 0x0100, 1) + "ff" * 40, "rcode 1 id 11"),
            "oversized datagram": (header(12, 0x0100, 1) + "00" * 5000, "none"),
            "valid": (query, "rcode 0 id 7 qd 1 an 1"),
        }
        names = list(packets)
        result = self.ns.x("python3", os.path.join(HERE, "raw_client.py"), "53", "udp",
                           *(packets[n][0] for n in names), check=False)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), len(names), result.stdout + result.stderr)
        for name, line in zip(names, lines):
            with self.subTest(packet=name):
                self.assertTrue(line.startswith(packets[name][1]), line)
        self.assertEqual(self.dig("web.default.svc.cluster.local", "A")["status"], "NOERROR")

    def test_tcp_takes_several_queries_on_one_connection(self):
        queries = []
        for ident in (21, 22, 23):
            queries.append(f"{ident:04x}0100000100000000000003776562076465666175"
                           "6c740373766307636c7573746572056c6f63616c0000010001")
        result = self.ns.x("python3", os.path.join(HERE, "raw_client.py"), "53", "tcp", *queries,
                           check=False)
        self.assertEqual(sorted(result.stdout.splitlines()),
                         [f"rcode 0 id {i} qd 1 an 1 tc 0" for i in (21, 22, 23)], result.stderr)

    def test_idle_tcp_connections_are_closed_after_ten_seconds(self):
        query = ("001f0100000100000000000003776562076465666175"
                 "6c740373766307636c7573746572056c6f63616c0000010001")
        result = self.ns.x("python3", os.path.join(HERE, "raw_client.py"), "53", "idle", query,
                           timeout=40, check=False)
        match = re.match(r"closed after (\d+) s, (\d+) bytes", result.stdout)
        self.assertIsNotNone(match, result.stdout + result.stderr)
        self.assertGreater(int(match.group(2)), 2)  # the answer came first
        self.assertIn(int(match.group(1)), range(9, 13))

    def test_ipv6_cluster_ips_get_aaaa_and_ip6_arpa_ptr(self):
        db = os.path.join(self.dir, "v6.db")
        manifest = os.path.join(self.dir, "v6.yaml")
        with open(manifest, "w") as f:
            f.write("apiVersion: v1\nkind: Service\nmetadata: {name: six}\n"
                    "spec: {clusterIP: 'fd00:96::a', ports: [{name: http, port: 80}]}\n")
        run(BIN, "apply", "--db", db, "--service-cidr", "fd00:96::/112", "-f", manifest)
        self.serve(["--dns-listen", "127.0.0.1:5357", "--upstream", f"127.0.0.1:{UPSTREAM_PORT}"],
                   "127.0.0.1:5357", db=db)
        reply = self.dig("six.default.svc.cluster.local", "AAAA", port=5357)
        self.assertEqual(reply["sections"]["ANSWER"],
                         [("six.default.svc.cluster.local.", "AAAA", "fd00:96::a")])
        reply = self.dig("six.default.svc.cluster.local", "A", port=5357)
        self.assertEqual((reply["status"], reply["sections"].get("ANSWER", [])), ("NOERROR", []))
        reply = self.dig("-x", "fd00:96::a", port=5357)
        self.assertEqual([r[2] for r in reply["sections"]["ANSWER"]],
                         ["six.default.svc.cluster.local."])


if __name__ == "__main__":
    unittest.main()
