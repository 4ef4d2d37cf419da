#!/usr/bin/env python3
"""conn_pair.py CLUSTER_IP PORT POD_IP POD_PORT COUNT -> connect() p50/p99 to both, interleaved.

Alternating one connection to the ClusterIP with one straight to a pod cancels the drift of a
shared, noisy machine that two separate runs (as conn.py makes) suffer from. Prints:
  cluster_p50 | cluster_p99 | pod_p50 | pod_p99 | overhead_p50 (median of pairwise differences)"""
import socket
import statistics
import sys
import time

cip, cport, pip, pport, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def connect_us(host, port):
    t0 = time.perf_counter_ns()
    s = socket.create_connection((host, port))
    t1 = time.perf_counter_ns()
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
    return (t1 - t0) / 1e3


cluster, pod = [], []
for _ in range(n):
    cluster.append(connect_us(cip, cport))
    pod.append(connect_us(pip, pport))
p99 = lambda xs: sorted(xs)[int(len(xs) * 0.99) - 1]
diff = statistics.median(c - p for c, p in zip(cluster, pod))
print(f"{statistics.median(cluster):.0f} | {p99(cluster):.0f} | {statistics.median(pod):.0f} | {p99(pod):.0f} | {diff:.0f}")
