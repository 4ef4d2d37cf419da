#!/usr/bin/env python3
"""report.py RESULTS: bench/proxy's tables from the per-round figures run.sh wrote.

RESULTS has one line per measured cell: ROUND CELL VALUE P50 ERRORS (tab-separated; P50 and
ERRORS are "-" for bulk cells). A ratio is taken per round between cells measured next to each
other, so a slow minute of the shared machine moves both sides of it; the verdict is on the
median of those per-round ratios, and the spread shows how much to trust it. Exits 1 when a goal
is missed.
"""
import collections
import statistics
import sys

GOALS = [  # (what, cell, base, target)
    ("userspace / direct, bulk", "userspace bulk", "direct bulk", 0.70),
    ("userspace / direct, short connections", "userspace short", "direct short", 0.50),
    ("iptables / direct+conntrack, keep-alive", "iptables keep-alive",
     "direct+conntrack keep-alive", 0.95),
    ("iptables / direct+conntrack, short connections", "iptables short",
     "direct+conntrack short", 0.95),
    ("iptables / direct+conntrack, bulk", "iptables bulk", "direct+conntrack bulk", 0.95),
]
INFO = [  # ratios worth seeing that have no goal
    ("iptables / direct, short (conntrack's cost included)", "iptables short", "direct short"),
    ("userspace / direct, keep-alive", "userspace keep-alive", "direct keep-alive"),
    # kube-proxy's iptables-mode rules for the same Service: what DNAT costs any iptables proxy.
    ("kube-proxy / direct+conntrack, keep-alive", "kube-proxy keep-alive",
     "direct+conntrack keep-alive"),
    ("kube-proxy / direct+conntrack, short", "kube-proxy short", "direct+conntrack short"),
    ("kube-proxy / direct+conntrack, bulk", "kube-proxy bulk", "direct+conntrack bulk"),
    ("iptables / kube-proxy, keep-alive", "iptables keep-alive", "kube-proxy keep-alive"),
    ("iptables / kube-proxy, short", "iptables short", "kube-proxy short"),
    ("iptables / kube-proxy, bulk", "iptables bulk", "kube-proxy bulk"),
    # With run.sh's COMPARE_FLAGS: the second proxy setting against the first, and against direct.
    ("userspace-alt / userspace, short", "userspace-alt short", "userspace short"),
    ("userspace-alt / userspace, bulk", "userspace-alt bulk", "userspace bulk"),
    ("userspace-alt / userspace, keep-alive", "userspace-alt keep-alive", "userspace keep-alive"),
    ("userspace-alt / direct, short", "userspace-alt short", "direct short"),
    ("userspace-alt / direct, bulk", "userspace-alt bulk", "direct bulk"),
]


def main(path):
    values = collections.defaultdict(dict)  # cell -> round -> value
    p50s = collections.defaultdict(list)
    errors = collections.defaultdict(list)
    order = []
    with open(path) as results:
        for line in results:
            round_, cell, value, p50, error = line.rstrip("\n").split("\t")
            if cell not in order:
                order.append(cell)
            values[cell][round_] = float(value)
            if p50 != "-":
                p50s[cell].append(p50)
            if error not in ("-", "none", ""):
                errors[cell].append(f"round {round_}: {error}")

    def spread(figures, digits):
        return f"{min(figures):,.{digits}f}–{max(figures):,.{digits}f}"

    print("| path | median | spread (min–max) | p50 latency per round | errors |")
    print("|---|---:|---:|---|---|")
    for cell in order:
        figures = list(values[cell].values())
        digits = 2 if "bulk" in cell else 0
        unit = " Gbit/s" if "bulk" in cell else " req/s"
        print(f"| {cell} | {statistics.median(figures):,.{digits}f}{unit} | "
              f"{spread(figures, digits)} | {' '.join(p50s[cell]) or '-'} | "
              f"{'; '.join(errors[cell]) or 'none'} |")

    def paired(cell, base):
        rounds = sorted(set(values[cell]) & set(values[base]))
        return [values[cell][r] / values[base][r] for r in rounds]

    print()
    print("| goal | median ratio | per-round ratios | target | result |")
    print("|---|---:|---|---:|---|")
    missed = 0
    for what, cell, base, target in GOALS:
        ratios = paired(cell, base)
        if not ratios:
            print(f"| {what} | - | - | ≥ {target:.2f} | NOT MEASURED |")
            missed += 1
            continue
        median = statistics.median(ratios)
        verdict = "PASS" if median >= target else "FAIL"
        missed += verdict == "FAIL"
        print(f"| {what} | {median:.2f} | {' '.join(f'{r:.2f}' for r in ratios)} | "
              f"≥ {target:.2f} | {verdict} |")
    for what, cell, base in INFO:
        ratios = paired(cell, base)
        if ratios:
            print(f"| {what} | {statistics.median(ratios):.2f} | "
                  f"{' '.join(f'{r:.2f}' for r in ratios)} | (none) | |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
