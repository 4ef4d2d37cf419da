"""A seeded random history of registry changes: applies and deletes of 1 to 2,000 objects
(Services of every type, Pods, Endpoints, EndpointSlices) and readiness reports, made from one
random.Random so a seed replays the same history.

The model keeps what the registry should hold, so every apply is valid and every delete names an
object that exists: a refused write is a failure of the test, not noise. Names come from bounded
pools, so objects are created, updated, deleted and created again under the same name.

Addresses are loopback (127.0.0.0/8) or of ranges no test namespace routes (10.244/16, 10.245/16,
fd00::/8): the serves run with --default-probe none and are never sent Service traffic, so no
packet goes to them, and in a namespace with only `lo` none could leave it (testing.md, rule 2).
"""
import json
import math

NAMESPACES = ("default", "default", "ns-a", "ns-b", "team-c")
APPS = tuple(f"app-{i}" for i in range(40))
TIERS = ("web", "db", "cache")
PORT_NAMES = ("http", "https", "metrics", "dns", "grpc", "admin")
SERVICE_PORTS = (80, 443, 53, 8080, 8443, 9090, 5000, 6379, 3306, 11211)
CONTAINER_PORTS = {"http": 8080, "https": 8443, "metrics": 9100, "dns": 5353, "grpc": 50051,
                   "admin": 9000}
SLICE_LABEL = "kubernetes.io/service-name"


def log_uniform(rng, low, high):
    """An integer in [low, high], small sizes as likely as large orders of magnitude."""
    return min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))


class History:
    """The model and the generator. `userspace`: Service port numbers are unique among live
    ClusterIP Service ports (freed numbers are taken again, often in the same step), except for a
    few deliberate shares, so a listener map can be compared with a fresh serve's."""

    def __init__(self, rng, *, max_objects=2000, target=5000, services=1000, pods=2000,
                 userspace=False):
        self.rng = rng
        self.max_objects, self.target = max_objects, target
        self.service_pool, self.pod_pool = services, pods
        self.userspace = userspace
        self.objects = {}  # (kind, namespace, name): manifest dict
        self.requested_ips = {}  # (namespace, name): a clusterIP the Service asked for
        self.next_requested = 0
        self.pod_ips = []  # every IPv4 given so far: some pods reuse one on purpose
        # Userspace mode: the proxied Service ports (namespace, name, port, protocol) that shared
        # their number with another live one at some point since their listener opened. Which of
        # them holds the number is history (the older keeps it), not a function of the registry.
        self.shared_listeners = set()
        self.step_start_ports = set()

    # --- what exists -----------------------------------------------------------------------
    def of_kind(self, kind):
        return [key for key in self.objects if key[0] == kind]

    def service_kind(self, namespace, name):
        """'external', 'headless', 'clusterip' or None: a Service keeps its kind while it exists
        (a ClusterIP cannot change; delete the Service first)."""
        manifest = self.objects.get(("Service", namespace, name))
        if not manifest:
            return None
        spec = manifest["spec"]
        if spec.get("type") == "ExternalName":
            return "external"
        return "headless" if spec.get("clusterIP") == "None" else "clusterip"

    def proxied_ports(self):
        """{(namespace, name, port, protocol)}: every ClusterIP Service port, which the userspace
        mode gives a listener."""
        keys = set()
        for (kind, ns, name), manifest in self.objects.items():
            if kind == "Service" and self.service_kind(ns, name) == "clusterip":
                keys.update((ns, name, p["port"], p.get("protocol", "TCP"))
                            for p in manifest["spec"].get("ports", []))
        return keys

    def note_shares(self, step_end=False):
        """After each write: ports sharing their number now are marked. At a step's end, a port
        that is gone loses its mark (serve saw that state: its listener was closed); within a step
        serve may have coalesced the writes and never seen the port go, so it stays marked."""
        if not self.userspace:
            return
        live = self.proxied_ports()
        groups = {}
        for key in live:
            groups.setdefault(key[2:], []).append(key)
        for keys in groups.values():
            if len(keys) > 1:
                self.shared_listeners.update(keys)
        if step_end:
            self.shared_listeners &= live

    def live_service_ports(self):
        ports = set()
        for (kind, ns, name), manifest in self.objects.items():
            if kind == "Service" and self.service_kind(ns, name) == "clusterip":
                ports.update(p["port"] for p in manifest["spec"].get("ports", []))
        return ports

    # --- objects -----------------------------------------------------------------------------
    def namespace(self):
        return self.rng.choice(NAMESPACES)

    def labels(self):
        labels = {"app": self.rng.choice(APPS)}
        if self.rng.random() < 0.6:
            labels["tier"] = self.rng.choice(TIERS)
        return labels

    def ipv4(self, base="10.244"):
        rng = self.rng
        if base == "10.244" and self.pod_ips and rng.random() < 0.03:
            return rng.choice(self.pod_ips)  # two pods, one address: the first by name wins
        if rng.random() < 0.1:
            ip = f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        else:
            ip = f"{base}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if base == "10.244":
            self.pod_ips.append(ip)
        return ip

    def ipv6(self, prefix="fd00:244"):
        return f"{prefix}::{self.rng.randrange(1, 65536):x}:{self.rng.randrange(1, 65536):x}"

    def service_port_numbers(self, count, own):
        """`count` distinct port numbers; in userspace mode unique among live Services (`own`:
        this Service's current numbers, which it may keep)."""
        rng = self.rng
        if not self.userspace:
            return rng.sample(SERVICE_PORTS, count)
        taken = self.live_service_ports() - own
        # Numbers other Services let go of in this step: a Service replaced by another on the
        # same port, which serve must hand the number to in one snapshot.
        freed = sorted(self.step_start_ports - taken - own)
        numbers = []
        while len(numbers) < count:  # bounded: 9,999 numbers, a few thousand taken at most
            if freed and rng.random() < 0.3:
                number = rng.choice(freed)
            elif taken and rng.random() < 0.05:
                number = rng.choice(sorted(taken))  # a deliberate share
            elif own and rng.random() < 0.5:
                number = rng.choice(sorted(own))
            else:
                number = rng.randrange(1, 10000)
                if number in taken:
                    continue
            if number not in numbers:
                numbers.append(number)
        return numbers

    def service(self, namespace, name):
        rng = self.rng
        kind = self.service_kind(namespace, name)
        if kind is None:
            kind = rng.choices(("clusterip", "headless", "external"), (70, 20, 10))[0]
            self.requested_ips.pop((namespace, name), None)
            if kind == "clusterip" and rng.random() < 0.05:
                self.next_requested += 1
                n = self.next_requested
                self.requested_ips[(namespace, name)] = f"10.100.{n // 250 % 250}.{n % 250 + 1}"
        spec = {}
        if kind == "external":
            spec["type"] = "ExternalName"
            spec["externalName"] = rng.choice((
                f"ext-{rng.randrange(50)}.example.org",
                f"svc-{rng.randrange(self.service_pool)}.{self.namespace()}.svc.cluster.local"))
            if rng.random() < 0.3:
                spec["ports"] = [{"port": rng.choice(SERVICE_PORTS)}]
            return self.manifest("Service", namespace, name, spec=spec)
        if kind == "headless":
            spec["clusterIP"] = "None"
        elif (namespace, name) in self.requested_ips:
            spec["clusterIP"] = self.requested_ips[(namespace, name)]
        if rng.random() < 0.75:
            selector = {"app": rng.choice(APPS)}
            if rng.random() < 0.3:
                selector["tier"] = rng.choice(TIERS)
            spec["selector"] = selector
        count = 0 if kind == "headless" and rng.random() < 0.1 else rng.choice((1, 1, 1, 2, 3))
        old = self.objects.get(("Service", namespace, name))
        own = {p["port"] for p in old["spec"].get("ports", [])} if old else set()
        names = rng.sample(PORT_NAMES, count)
        ports = []
        for port_name, number in zip(names, self.service_port_numbers(count, own)):
            port = {"port": number}
            if count > 1 or rng.random() < 0.6:
                port["name"] = port_name
            if port_name == "dns" or rng.random() < 0.1:
                port["protocol"] = "UDP"
            roll = rng.random()
            if roll < 0.35:
                port["targetPort"] = rng.choice(PORT_NAMES)  # resolved per pod, or not at all
            elif roll < 0.7:
                port["targetPort"] = CONTAINER_PORTS[port_name]
            ports.append(port)
        if ports:
            spec["ports"] = ports
        if kind == "clusterip" and rng.random() < 0.15:
            spec["sessionAffinity"] = "ClientIP"
            if rng.random() < 0.5:
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds":
                                                              rng.choice((60, 600, 10800))}}
        return self.manifest("Service", namespace, name, spec=spec)

    def pod(self, namespace, name):
        rng = self.rng
        old = self.objects.get(("Pod", namespace, name))
        if old and rng.random() < 0.5:  # a label change only: readiness is kept
            pod = json.loads(json.dumps(old))
            pod["metadata"]["labels"] = self.labels()
            return pod
        containers = [{"name": "main", "image": "any", "ports": []}]
        names = rng.sample(sorted(CONTAINER_PORTS), rng.randrange(0, 4))
        for port_name in names:
            port = {"containerPort": CONTAINER_PORTS[port_name] + rng.choice((0, 0, 1))}
            if rng.random() < 0.85:
                port["name"] = port_name
            if port_name == "dns":
                port["protocol"] = "UDP"
            containers[0]["ports"].append(port)
        if rng.random() < 0.2:
            containers.append({"name": "side", "image": "any",
                               "ports": [{"name": "side", "containerPort": 7000}]})
        spec = {"containers": containers}
        if rng.random() < 0.15:
            spec["hostname"] = f"h-{rng.randrange(20)}"
            spec["subdomain"] = f"svc-{rng.randrange(self.service_pool)}"
        status = {}
        roll = rng.random()
        if roll < 0.03:
            pass  # no address yet
        elif roll < 0.2:
            v4 = self.ipv4()
            status = {"podIP": v4, "podIPs": [{"ip": v4}, {"ip": self.ipv6()}]}
        elif roll < 0.25:
            status = {"podIP": self.ipv6()}
        else:
            status = {"podIP": self.ipv4()}
        return self.manifest("Pod", namespace, name, labels=self.labels(), spec=spec,
                             status=status)

    def endpoint_ports(self, service):
        """Ports named like the Service's (the way they are matched), a few wrong on purpose."""
        rng = self.rng
        ports = []
        manifest = self.objects.get(("Service",) + service)
        service_ports = manifest["spec"].get("ports", []) if manifest else []
        for i, port in enumerate(service_ports or [{"port": 80}]):
            if rng.random() < 0.1:
                continue
            entry = {"port": rng.choice((8080, 9000, port["port"]))}
            if "name" in port:
                entry["name"] = port["name"] if rng.random() < 0.9 else f"other-{i}"
            if port.get("protocol") == "UDP":
                entry["protocol"] = "UDP"
            ports.append(entry)
        return ports

    def selectorless_service(self):
        """A Service (namespace, name) for endpoints to name: one without a selector when there is
        one, else any name of the pool (endpoints of an absent Service are kept, unused)."""
        candidates = [(ns, name) for (kind, ns, name), manifest in self.objects.items()
                      if kind == "Service" and "selector" not in manifest["spec"]]
        if candidates and self.rng.random() < 0.85:
            return self.rng.choice(candidates)
        return self.namespace(), f"svc-{self.rng.randrange(self.service_pool)}"

    def endpoint_address(self, v6=False):
        rng = self.rng
        address = {"ip": self.ipv6("fd00:245") if v6 else self.ipv4("10.245")}
        if rng.random() < 0.3:
            address["hostname"] = f"e-{rng.randrange(30)}"
        if rng.random() < 0.3:
            address["targetRef"] = {"kind": "Pod", "name": f"pod-{rng.randrange(self.pod_pool)}"}
        return address

    def endpoints(self, namespace, name):
        rng = self.rng
        subsets = []
        for _ in range(rng.randrange(0, 3)):
            subset = {"addresses": [self.endpoint_address(rng.random() < 0.1)
                                    for _ in range(rng.randrange(0, 6))],
                      "ports": self.endpoint_ports((namespace, name))}
            if rng.random() < 0.4:
                subset["notReadyAddresses"] = [self.endpoint_address()
                                               for _ in range(rng.randrange(1, 3))]
            subsets.append(subset)
        return self.manifest("Endpoints", namespace, name, subsets=subsets)

    def slice(self, namespace, name, service):
        rng = self.rng
        v6 = rng.random() < 0.15
        endpoints = []
        for _ in range(rng.randrange(0, 8)):
            address = self.endpoint_address(v6)
            endpoint = {"addresses": [address.pop("ip")], **address}
            if rng.random() < 0.3:
                endpoint["conditions"] = {"ready": rng.random() < 0.5}
            endpoints.append(endpoint)
        return self.manifest("EndpointSlice", namespace, name, labels={SLICE_LABEL: service},
                             addressType="IPv6" if v6 else "IPv4", endpoints=endpoints,
                             ports=self.endpoint_ports((namespace, service)))

    @staticmethod
    def manifest(kind, namespace, name, labels=None, **body):
        metadata = {"name": name, "namespace": namespace}
        if labels is not None:
            metadata["labels"] = labels
        api = "discovery.k8s.io/v1" if kind == "EndpointSlice" else "v1"
        return {"apiVersion": api, "kind": kind, "metadata": metadata, **body}

    # --- operations ----------------------------------------------------------------------------
    def apply_op(self, size):
        """Up to `size` objects created or replaced in one apply: (yaml text, description)."""
        rng = self.rng
        chosen = {}
        for _ in range(size):
            kind = rng.choices(("Pod", "Service", "Endpoints", "EndpointSlice"),
                               (45, 30, 10, 15))[0]
            if kind == "Pod":
                key = (kind, self.namespace(), f"pod-{rng.randrange(self.pod_pool)}")
                chosen[key] = self.pod(*key[1:])
            elif kind == "Service":
                key = (kind, self.namespace(), f"svc-{rng.randrange(self.service_pool)}")
                chosen[key] = self.service(*key[1:])
            elif kind == "Endpoints":
                namespace, service = self.selectorless_service()
                key = (kind, namespace, service)
                chosen[key] = self.endpoints(namespace, service)
            else:
                namespace, service = self.selectorless_service()
                key = (kind, namespace, f"{service}-{rng.randrange(3)}")
                chosen[key] = self.slice(namespace, key[2], service)
            # Later objects of this apply see earlier ones (a Service's ports for its endpoints).
            self.objects[key] = chosen[key]
        text = "\n---\n".join(json.dumps(m, separators=(",", ":")) for m in chosen.values())
        kinds = {}
        for key in chosen:
            kinds[key[0]] = kinds.get(key[0], 0) + 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return text, f"apply {len(chosen)} ({counts})"

    def delete_op(self, size, newest=False):
        """Up to `size` existing objects deleted in one `delete -f`: (yaml text, description).
        `newest`: the objects of one kind created last (the rows with the highest ids, which
        SQLite gives again to the next rows inserted)."""
        if newest:
            kind = self.rng.choice(("Pod", "Service", "EndpointSlice"))
            keys = self.of_kind(kind)[-size:]  # dicts keep insertion order; updates keep a key's
        else:
            keys = self.rng.sample(sorted(self.objects), min(size, len(self.objects)))
        # Whole manifests: `delete -f` reads them as `apply` does, then only their names count.
        docs = [json.dumps(self.objects.pop(key), separators=(",", ":")) for key in keys]
        return "\n---\n".join(docs), f"delete {len(keys)}"

    def readiness_op(self, size):
        """Readiness reports for up to `size` pods: [(namespace, name, ready)], description."""
        pods = self.of_kind("Pod")
        chosen = self.rng.sample(sorted(pods), min(size, len(pods)))
        reports = [(ns, name, self.rng.random() < 0.5) for _, ns, name in chosen]
        return reports, f"readiness of {len(reports)} pods"

    def step(self):
        """One step: one to three operations, carried out back to back: [("apply"|"delete", text)
        | ("readiness", reports)], a description, and whether the step must reach serve as one
        snapshot (else the caller decides)."""
        rng = self.rng
        ops, described, coalesce = [], [], False
        if self.userspace:
            self.step_start_ports = self.live_service_ports()
        for _ in range(rng.choice((1, 1, 2, 3))):
            # Deletes grow likelier with the registry: its size hovers around `target`.
            delete_weight = max(1.0, 5.0 * len(self.objects) / self.target)
            kind = rng.choices(("apply", "delete", "readiness"), (5, delete_weight, 2))[0]
            if kind == "delete" and not self.objects:
                kind = "apply"
            if kind == "readiness" and not self.of_kind("Pod"):
                kind = "apply"
            size = log_uniform(rng, 1, self.max_objects)
            if kind == "apply":
                text, what = self.apply_op(size)
            elif kind == "delete" and rng.random() < 0.3:
                # The newest rows deleted and new ones made at once: their ids are taken again.
                text, what = self.delete_op(rng.randrange(1, 4), newest=True)
                ops.append((kind, text))
                described.append(what + " newest")
                kind, (text, what) = "apply", self.apply_op(rng.randrange(1, 6))
                coalesce = True  # else serve sees the rows go before their ids come back
            elif kind == "delete":
                text, what = self.delete_op(size)
            else:
                text, what = self.readiness_op(min(size, 40))
            ops.append((kind, text))
            described.append(what)
            self.note_shares()
        self.note_shares(step_end=True)
        return ops, "; ".join(described), coalesce
