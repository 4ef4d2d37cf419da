#!/usr/bin/env python3
"""pod_server.py NAME ADDRESS HTTP_PORT UDP_PORT: a pod's workload for the userspace proxy tests.

Pods here share one network namespace and differ by loopback address (127.0.0.2, 127.0.0.3), so
the server binds ADDRESS. HTTP GET answers NAME (HTTP/1.0, one connection per request); GET /echo
with a body is not needed: the TCP echo port HTTP_PORT+1 echoes bytes until the client half-closes,
then closes its side (half-close tests); UDP echoes "NAME:payload" to every datagram. Runs until
killed."""
import http.server
import socket
import socketserver
import sys
import threading

name, address, http_port, udp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self.echo()
        except OSError:
            pass  # the slow-reader test walks away mid-stream

    def echo(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)
        # The client's half-close arrived: answer with our name, then close our side.
        self.request.sendall(("bye from " + name).encode())
        self.request.shutdown(socket.SHUT_WR)


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, udp_port))
    while True:
        data, peer = sock.recvfrom(65536)
        sock.sendto(name.encode() + b":" + data, peer)


threading.Thread(target=udp_echo, daemon=True).start()
echo = EchoServer((address, http_port + 1), Echo)
threading.Thread(target=echo.serve_forever, daemon=True).start()
server = http.server.ThreadingHTTPServer((address, http_port), Handler)
print("ready", flush=True)
server.serve_forever()
