#!/usr/bin/env python3
"""pod_server.py NAME HTTP_PORT UDP_PORT: a pod's workload in svcbox_e2e.Topology (router, serve and
userspace e2e tests).

HTTP GET answers NAME (one connection per request: HTTP/1.0; GET /client answers the client's
address as the pod sees it; GET /healthz answers 200, or 503 after GET /fail until GET /recover,
for httpGet readiness probes), UDP echoes NAME to every datagram,
so a test can count which pod served each request. Runs until killed."""
import http.server
import socket
import sys
import threading

name, http_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


healthy = True


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global healthy
        status = 200
        if self.path in ("/fail", "/recover"):
            healthy = self.path == "/recover"
        if self.path == "/healthz" and not healthy:
            status = 503
        # /client answers the address the pod sees the connection from (masquerade tests).
        body = ((self.client_address[0] if self.path == "/client" else name) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", udp_port))
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(name.encode(), peer)


threading.Thread(target=udp_echo, daemon=True).start()
server = http.server.ThreadingHTTPServer(("0.0.0.0", http_port), Handler)
print("ready", flush=True)
server.serve_forever()
