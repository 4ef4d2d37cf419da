#!/usr/bin/env python3
"""Writes a kubectl-shaped multi-document YAML manifest for bench/store.

N Services (default 10000), each selecting its own PODS_PER_SERVICE Pods (default 3), spread
round-robin over NAMESPACES namespaces (default 10). Shapes follow examples/service-test.yaml:

  Service ns-K/svc-I: selector {app: svc-I}, one TCP port 80 -> targetPort 8080
  Pod     ns-K/svc-I-J: labels {app: svc-I}, containerPort 8080, unique status.podIP,
                        no readinessProbe (so every pod is ready on apply)

Pod IPs are 10.X.Y.Z with Z in 1..254, allocated sequentially from 10.0.0.1; they stay clear of
svcbox's default service CIDR 10.96.0.0/12.

Usage: gen_manifest.py [--services N] [--pods-per-service P] [--namespaces K] [-o FILE]
"""

import argparse
import sys

HOSTS_PER_SUBNET = 254  # .1 .. .254 of every /24
FIRST_SERVICE_CIDR_OCTET = 96  # 10.96.0.0/12 belongs to ClusterIPs


def pod_ip(index):
    subnet, host = divmod(index, HOSTS_PER_SUBNET)
    second, third = divmod(subnet, 256)
    if second >= FIRST_SERVICE_CIDR_OCTET:
        raise SystemExit("gen_manifest.py: too many pods for 10.0.0.0/10 "
                         "(at most %d)" % (FIRST_SERVICE_CIDR_OCTET * 256 * HOSTS_PER_SUBNET))
    return "10.%d.%d.%d" % (second, third, host + 1)


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: {ns}
spec:
  selector:
    app: svc-{i}
  ports:
    - protocol: TCP
      port: 80
      targetPort: 8080
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: svc-{i}-{j}, namespace: {ns}, labels: {{app: svc-{i}}}}}
spec: {{containers: [{{name: web, image: any, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: {ip}}}
"""


def write_manifest(out, services, pods_per_service, namespaces):
    documents = []
    pod_index = 0
    for i in range(services):
        ns = "ns-%d" % (i % namespaces)
        documents.append(SERVICE.format(i=i, ns=ns))
        for j in range(pods_per_service):
            documents.append(POD.format(i=i, j=j, ns=ns, ip=pod_ip(pod_index)))
            pod_index += 1
    out.write("---\n".join(documents))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--pods-per-service", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args()
    if args.services < 1 or args.pods_per_service < 0 or args.namespaces < 1:
        parser.error("--services and --namespaces must be >= 1, --pods-per-service >= 0")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            write_manifest(out, args.services, args.pods_per_service, args.namespaces)
    else:
        write_manifest(sys.stdout, args.services, args.pods_per_service, args.namespaces)


if __name__ == "__main__":
    main()
