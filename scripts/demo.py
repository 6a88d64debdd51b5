#!/usr/bin/env python3
"""make demo: a real server under the shim, on the embedded default.

Starts CPython's http.server under LD_PRELOAD=build/libcruddur.so with no
exporter configured, so spans go to the embedded default: a JSONL file of
OTLP/JSON (CRUDDUR_FILE). Sends a handful of requests, stops the server
normally (its exit flushes the spans), and shows what was recorded.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "build", "libcruddur.so")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit("demo: the server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("demo: the server did not start")


def main():
    if not os.path.exists(LIB):
        sys.exit("demo: build/libcruddur.so missing: run make")
    out = os.path.join(ROOT, "build", "demo-traces.jsonl")
    if os.path.exists(out):
        os.unlink(out)
    site = tempfile.mkdtemp(prefix="cruddur-demo-")
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write("<h1>hello from cruddur's demo</h1>\n")
    port = free_port()
    env = dict(os.environ, LD_PRELOAD=LIB, CRUDDUR_FILE=out, OTEL_SERVICE_NAME="demo-http-server")
    for k in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
              "OTEL_TRACES_EXPORTER", "HONEYCOMB_API_KEY"):
        env.pop(k, None)
    print(f"$ LD_PRELOAD={os.path.relpath(LIB, ROOT)} python3 -m http.server {port}")
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", site], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, server)
        base = f"http://127.0.0.1:{port}"
        requests = [("GET", "/"), ("GET", "/index.html?lang=en"), ("HEAD", "/"),
                    ("GET", "/missing"), ("POST", "/form")]
        for method, path in requests:
            req = urllib.request.Request(base + path, method=method,
                                         data=b"a=1" if method == "POST" else None)
            if path == "/":
                req.add_header("traceparent",
                               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            print(f"  {method:5} {path:22} -> {status}")
    finally:
        server.send_signal(signal.SIGINT)  # KeyboardInterrupt: a normal exit
        try:
            _, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    for line in err.splitlines():
        if line.startswith("cruddur:"):
            print(line)
    spans = []
    if os.path.exists(out):
        with open(out) as f:
            for line in f:
                for rs in json.loads(line)["resourceSpans"]:
                    res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                    for ss in rs["scopeSpans"]:
                        for s in ss["spans"]:
                            spans.append((res, s))
    print(f"\n{len(spans)} spans written to {os.path.relpath(out, ROOT)} (OTLP/JSON lines):")
    for res, s in spans:
        attrs = {a["key"]: list(a["value"].values())[0] for a in s.get("attributes", [])}
        dur = (int(s["endTimeUnixNano"]) - int(s["startTimeUnixNano"])) / 1e6
        parent = s.get("parentSpanId") or "-"
        print(f"  {s['name']:5} {attrs.get('url.path', ''):14} "
              f"{attrs.get('http.response.status_code', '-'):>4} {dur:8.3f} ms  "
              f"trace {s['traceId']}  parent {parent}")
    if spans:
        res = spans[0][0]
        print(f"  resource: service.name={res['service.name']['stringValue']} "
              f"process.pid={res['process.pid']['intValue']}")
    if len(spans) != len(requests):
        sys.exit(f"demo: expected {len(requests)} spans, got {len(spans)}")


if __name__ == "__main__":
    main()
