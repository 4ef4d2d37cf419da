#!/usr/bin/env python3
"""Reads the harness's table and prints svcbox's figures against the goals of issue 3, as ratios
to the anchors measured in the same run. Exits 1 when a goal is missed or answers failed."""
import sys


def mean(cell):
    values = [float(v) for v in cell.split("/") if v.strip() not in ("", "-")]
    return sum(values) / len(values) if values else float("nan")


def main():
    rows = {}
    for line in open(sys.argv[1]):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] not in ("server", "---"):
            rows[cells[0]] = {"qps": mean(cells[3]), "cpu": mean(cells[4]),
                              "lost": sum(int(v) for v in cells[7].split("/")),
                              "rss": float(cells[9]), "checks": cells[10]}
    svcbox, knot = rows["candidate"], rows["knot"]
    anchors = {name: row for name, row in rows.items() if name != "candidate"}
    best = max(anchors, key=lambda name: anchors[name]["qps"])
    goals = [
        ("server CPU per query vs Knot", svcbox["cpu"] / knot["cpu"], "<= 0.80",
         svcbox["cpu"] / knot["cpu"] <= 0.80),
        (f"qps vs best anchor ({best})", svcbox["qps"] / anchors[best]["qps"], ">= 0.95",
         svcbox["qps"] / anchors[best]["qps"] >= 0.95),
        ("lost queries", svcbox["lost"], "== 0", svcbox["lost"] == 0),
        ("RSS vs Knot", svcbox["rss"] / knot["rss"], "<= 1.00", svcbox["rss"] <= knot["rss"]),
        ("answers pass the harness's checks", svcbox["checks"], "A SRV NX PTR",
         "FAIL" not in svcbox["checks"]),
    ]
    print("\n| goal | svcbox | target | result |\n|---|---:|---:|---|")
    for name, value, target, met in goals:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"| {name} | {shown} | {target} | {'PASS' if met else 'MISS'} |")
    print(f"\nsvcbox: {svcbox['qps']:.0f} qps, {svcbox['cpu']:.2f} µs CPU/query, "
          f"{svcbox['rss']:.1f} MiB; Knot: {knot['qps']:.0f} qps, {knot['cpu']:.2f} µs, "
          f"{knot['rss']:.1f} MiB")
    sys.exit(0 if all(met for *_, met in goals) else 1)


if __name__ == "__main__":
    main()
