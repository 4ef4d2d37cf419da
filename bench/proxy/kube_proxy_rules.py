#!/usr/bin/env python3
"""kube_proxy_rules.py HARNESS_DIR POD_IP: kube-proxy's iptables-mode nat ruleset for bench/proxy's
Service (10.96.0.10, port 80 -> 8080 and 5201 -> 5201, one endpoint POD_IP), written by the shared
router harness's generator (../shared/bench/router/gen.py), so it has exactly the shape that
harness gives kube-proxy's rules: KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* -> DNAT, with the
masquerade marks. Prints iptables-restore input; the builtin-chain jumps are `gen.py jumps`."""
import argparse
import sys


def main(harness, pod_ip):
    sys.path.insert(0, harness)
    import gen  # the shared harness's generator

    ours = [("default/web:http", "10.96.0.10", 80, [f"{pod_ip}:8080"]),
            ("default/web:bulk", "10.96.0.10", 5201, [f"{pod_ip}:5201"])]
    gen.services = lambda *args, **kwargs: ours
    args = argparse.Namespace(n=len(ours), m=1, target="none", var=[], stale=[], partial=False)
    print("\n".join(gen.gen_ipt(args)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
