"""A tiny extension API server for the aggregation test.

Serves the group version wardle.example.com/v1 (one resource, flunders) over
HTTPS, and trusts a request only when its client certificate was signed by
the request-header CA and names front-proxy-client, as extension servers
built on Kubernetes' apiserver library do. Each flunder it lists says who
the aggregator said was asking (X-Remote-User, X-Remote-Group).

Usage: extension_server.py CERT KEY REQUEST_HEADER_CA PORT
"""
import http.server
import json
import ssl
import sys

CERT, KEY, CLIENT_CA, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
GV = "wardle.example.com/v1"


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        names = [v for rdn in peer.get("subject", ()) for (k, v) in rdn if k == "commonName"]
        if names != ["front-proxy-client"]:
            self.reply(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
            return
        path = self.path.split("?")[0].rstrip("/")
        if path == "/apis/" + GV:
            self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
                             "resources": [{"name": "flunders", "singularName": "flunder",
                                            "namespaced": True, "kind": "Flunder",
                                            "verbs": ["get", "list"], "shortNames": ["fl"]}]})
            return
        parts = path.split("/")
        # /apis/wardle.example.com/v1/namespaces/NS/flunders
        if len(parts) == 7 and parts[4] == "namespaces" and parts[6] == "flunders":
            item = {"kind": "Flunder", "apiVersion": GV,
                    "metadata": {"name": "hello", "namespace": parts[5],
                                 "creationTimestamp": "2026-01-01T00:00:00Z"},
                    "spec": {"requestedBy": self.headers.get("X-Remote-User", ""),
                             "groups": self.headers.get_all("X-Remote-Group") or []}}
            self.reply(200, {"kind": "FlunderList", "apiVersion": GV,
                             "metadata": {"resourceVersion": "1"}, "items": [item]})
            return
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "message": "not found", "reason": "NotFound", "code": 404})

    def log_message(self, *args):
        pass


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
ctx.load_verify_locations(CLIENT_CA)
ctx.verify_mode = ssl.CERT_REQUIRED
server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
