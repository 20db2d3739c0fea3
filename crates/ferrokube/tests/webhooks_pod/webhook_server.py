"""A tiny admission webhook for the webhook-as-a-pod test.

Answers AdmissionReviews over HTTPS, with nothing but Python's standard
library: on /mutate it allows the object, labels it `webhook: mutated` and
annotates it with what the review said (`webhook.example.com/request`) with
a JSON patch; on /validate it refuses an object whose `data` holds the
key `forbidden`, and allows anything else; on /slow it answers after 3 s.

Usage: webhook_server.py CERT KEY PORT
"""
import base64
import http.server
import json
import signal
import ssl
import sys
import time

CERT, KEY, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])


def seen(request):
    """What the review said, for the test to read back."""
    kind = request.get("kind") or {}
    resource = request.get("resource") or {}
    return " ".join([
        request.get("operation", ""),
        f"{kind.get('group', '')}/{kind.get('version', '')}/{kind.get('kind', '')}",
        resource.get("resource", ""),
        request.get("namespace", ""),
        (request.get("userInfo") or {}).get("username", ""),
        f"dryRun={str(request.get('dryRun', False)).lower()}",
    ])


def mutate(request):
    metadata = (request.get("object") or {}).get("metadata", {})
    patch = []
    for field, key, value in (("labels", "webhook", "mutated"),
                              ("annotations", "webhook.example.com/request", seen(request))):
        if isinstance(metadata.get(field), dict):
            escaped = key.replace("~", "~0").replace("/", "~1")
            patch.append({"op": "add", "path": f"/metadata/{field}/{escaped}", "value": value})
        else:
            patch.append({"op": "add", "path": f"/metadata/{field}", "value": {key: value}})
    return {"allowed": True, "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode()}


def validate(request):
    data = (request.get("object") or {}).get("data") or {}
    if "forbidden" in data:
        return {"allowed": False,
                "status": {"code": 403, "reason": "Forbidden",
                           "message": 'the key "forbidden" is not allowed'}}
    return {"allowed": True}


class Handler(http.server.BaseHTTPRequestHandler):
    # Connections are kept, as the API server keeps them.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            review = json.loads(self.rfile.read(length))
            request = review["request"]
        except (ValueError, KeyError, TypeError):
            self.send_error(400, "not an AdmissionReview")
            return
        path = self.path.split("?")[0]
        if path == "/slow":
            # Longer than the webhook's timeoutSeconds: the caller gives up.
            time.sleep(3)
            response = {"allowed": True}
        elif path == "/mutate":
            response = mutate(request)
        elif path == "/validate":
            response = validate(request)
        else:
            self.send_error(404)
            return
        response["uid"] = request.get("uid", "")
        body = json.dumps({"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
                           "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# As the only process of its container, stop at once when asked to.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
