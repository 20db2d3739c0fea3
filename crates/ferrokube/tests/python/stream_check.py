#!/usr/bin/env python3
"""The official Python client's exec against a running pod, as its users
write it: a one-shot command, an interactive shell fed with text (which the
client sends as WebSocket text messages) and with bytes, `run_forever`, the
exit code and `close`; then the pod's log read over a WebSocket, with the
client's own WebSocket dialer, in the binary and the base64 protocols.

Usage: stream_check.py KUBECONFIG NAMESPACE POD EXPECTED_LOG
"""
import base64
import sys
import time

from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream.ws_client import create_websocket, get_websocket_url
from websocket import ABNF, WebSocketConnectionClosedException


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def read_until(resp, want, within=20.0):
    """Reads stdout until it holds `want` (bounded in time)."""
    got = ""
    deadline = time.time() + within
    while time.time() < deadline and resp.is_open():
        resp.update(timeout=1)
        got += resp.read_stdout(timeout=0) or ""
        if want in got:
            return got
    fail("stdout never held %r; got %r (open: %s)" % (want, got, resp.is_open()))


def open_socket(cfg, url, protocol):
    """A WebSocket to `url` asking for `protocol`, with the client's own
    dialer and credentials; fails unless the server picked that protocol."""
    headers = {"sec-websocket-protocol": protocol}
    if cfg.api_key.get("authorization"):
        headers["authorization"] = cfg.api_key["authorization"]
    ws = create_websocket(cfg, url, headers=headers)
    picked = ws.subprotocol or (ws.getheaders() or {}).get("sec-websocket-protocol")
    if picked != protocol:
        fail("%s: picked %r, want %r" % (url, picked, protocol))
    return ws


def messages(ws, within=20.0):
    """The data messages (opcode, bytes) until the server closes (bounded)."""
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            opcode, data = ws.recv_data()
        except WebSocketConnectionClosedException:
            return
        if opcode == ABNF.OPCODE_CLOSE:
            return
        yield opcode, data


def main():
    kubeconfig, ns, pod, expected_log = sys.argv[1:5]
    config.load_kube_config(config_file=kubeconfig)
    core = client.CoreV1Api()

    # One shot: the whole output, stdout then stderr.
    out = stream(core.connect_get_namespaced_pod_exec, pod, ns,
                 command=["sh", "-c", "echo one-shot; echo to-stderr >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    if "one-shot" not in out or "to-stderr" not in out:
        fail("one-shot exec output: %r" % out)

    # Interactive: text written to stdin, read back, then the exit code.
    resp = stream(core.connect_get_namespaced_pod_exec, pod, ns,
                  command=["/bin/sh"], stderr=True, stdin=True, stdout=True,
                  tty=False, _preload_content=False)
    resp.write_stdin("echo hello-$((6*7))\n")
    read_until(resp, "hello-42")
    resp.write_stdin(b"echo bytes-too\n")
    read_until(resp, "bytes-too")
    resp.write_stdin("exit 7\n")
    resp.run_forever(timeout=20)
    if resp.is_open():
        fail("the shell exited but the connection stayed open")
    if resp.returncode != 7:
        fail("exit code %r, want 7" % resp.returncode)
    resp.close()

    # A shell closed by the client before it ends: close must not hang or fail.
    resp = stream(core.connect_get_namespaced_pod_exec, pod, ns,
                  command=["/bin/sh"], stderr=True, stdin=True, stdout=True,
                  tty=False, _preload_content=False)
    resp.write_stdin("echo still-here\n")
    read_until(resp, "still-here")
    resp.close()

    # A command that fails: its exit code through the error channel.
    resp = stream(core.connect_get_namespaced_pod_exec, pod, ns,
                  command=["sh", "-c", "exit 3"], stderr=True, stdin=False,
                  stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    if resp.returncode != 3:
        fail("exit code %r, want 3" % resp.returncode)
    resp.close()

    # The older protocols a client may ask for: the channel byte, or in the
    # base64 protocols an ASCII digit and base64 data, in text messages.
    cfg = client.Configuration.get_default_copy()
    exec_url = get_websocket_url(
        cfg.host + "/api/v1/namespaces/%s/pods/%s/exec?command=sh&command=-c"
        "&command=echo+old-$((40%%2B2))%%3B+echo+err+%%3E%%262%%3B+exit+5"
        "&stdout=true&stderr=true" % (ns, pod))
    for protocol in ["v4.channel.k8s.io", "channel.k8s.io",
                     "v4.base64.channel.k8s.io", "base64.channel.k8s.io"]:
        ws = open_socket(cfg, exec_url, protocol)
        channels = {}
        for opcode, data in messages(ws):
            if not data:
                continue
            if "base64" in protocol:
                ch, payload = data[0] - ord("0"), base64.b64decode(data[1:])
            else:
                ch, payload = data[0], data[1:]
            channels[ch] = channels.get(ch, b"") + payload
        ws.close()
        if channels.get(1) != b"old-42\n" or channels.get(2) != b"err\n":
            fail("exec over %s: %r" % (protocol, channels))
        if protocol.startswith("v4") and b'"exitCode"' not in channels.get(3, b"") \
                and b"ExitCode" not in channels.get(3, b""):
            fail("exec over %s: no exit status: %r" % (protocol, channels.get(3)))

    # The log over a WebSocket: the whole log, then a normal close.
    url = get_websocket_url(cfg.host + "/api/v1/namespaces/%s/pods/%s/log" % (ns, pod))
    for protocol in ["binary.k8s.io", "base64.binary.k8s.io"]:
        ws = open_socket(cfg, url, protocol)
        got = b""
        for opcode, data in messages(ws):
            if protocol.startswith("base64"):
                if opcode != ABNF.OPCODE_TEXT:
                    fail("base64 log came as opcode %r" % opcode)
                got += base64.b64decode(data)
            else:
                if opcode != ABNF.OPCODE_BINARY:
                    fail("binary log came as opcode %r" % opcode)
                got += data
        ws.close()
        if got.decode() != expected_log.encode().decode("unicode_escape"):
            fail("log over %s: %r" % (protocol, got))
    print("python exec and logs: ok")


if __name__ == "__main__":
    main()
