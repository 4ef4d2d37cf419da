#!/usr/bin/env python3
"""demo-pod.py NAME ADDRESS PORT: the workload of one demo pod (scripts/run.sh).

Every HTTP GET is answered with NAME, so a client can see which pod served it. One connection per
request (HTTP/1.0), so repeated requests through svcbox spread over the pods. Runs until killed."""
import http.server
import sys

name, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # the demo's terminal belongs to svcbox's log


http.server.ThreadingHTTPServer((address, port), Handler).serve_forever()
