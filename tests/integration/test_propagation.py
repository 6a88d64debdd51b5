"""Integration tests: client spans and context propagation (issue 3).

Chains of real processes, each under the shim, exporting to one receiver:
an upstream server that calls a downstream (with curl_easy_perform on the
request thread, or with CPython's urllib over raw sockets), a standalone
urllib client, and node's event loop. A downstream echo server answers with
the headers it actually received, so every test checks the parent/child
chain in the spans AND the bytes on the wire, for every request.
"""

import json
import os
import socket
import threading
import time

import harness
from harness import Conn, Ctx, Req, timeout

CURLSRV = os.path.join(harness.BUILD, "servers", "curlsrv")

# Answers every GET with {"path": ..., "headers": {lowercased: value}}.
ECHO_SCRIPT = r"""
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        hs = {}
        for k, v in self.headers.items():
            hs.setdefault(k.lower(), []).append(v)
        body = json.dumps({"path": self.path, "headers": hs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
"""

# An upstream CPython server whose handler calls the downstream with urllib
# (raw-socket client spans) on the request thread.
UP_SCRIPT = r"""
import http.server, sys, urllib.request
DOWN = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with urllib.request.urlopen("http://127.0.0.1:%s/down%s" % (DOWN, self.path)) as r:
            body = r.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
"""

# A standalone urllib client: GET each URL given, print each body.
CLIENT_SCRIPT = r"""
import sys, urllib.request
for url in sys.argv[1:]:
    with urllib.request.urlopen(url) as r:
        sys.stdout.write(r.read().decode() + "\n")
"""

# node: an event-loop server; /call?delay=ms waits, then calls the
# downstream with http.get and answers with the downstream's body.
NODE_UP = r"""
const http = require('http'), fs = require('fs');
const down = process.env.DOWN_PORT;
const srv = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  setTimeout(() => {
    http.get({host: '127.0.0.1', port: down, path: '/down' + u.pathname}, (r) => {
      let b = ''; r.on('data', (d) => b += d);
      r.on('end', () => { res.writeHead(200, {'Content-Length': Buffer.byteLength(b)}); res.end(b); });
    });
  }, Number(u.searchParams.get('delay') || 0));
});
srv.listen(0, '127.0.0.1', () => fs.writeFileSync(process.env.PORTFILE, String(srv.address().port)));
"""


def _script(ctx, name, text):
    path = ctx.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _start_py(ctx, name, text, args=(), service=None, extra_env=None):
    pf = ctx.path(name + ".port")
    env = ctx.env(extra_env, service=service or name)
    p = ctx.start([harness.PYTHON, _script(ctx, name + ".py", text), pf] + list(args), env=env,
                  name=name)
    return harness.wait_portfile(pf, 15, p), p


def _by_service(spans, service):
    return [s for s in spans if s["resource"].get("service.name") == service]


def _wait_spans(ctx, n, timeout_s=10.0):
    spans = ctx.receiver.wait_for_spans(n, timeout_s)
    time.sleep(0.5)  # anything extra?
    spans = ctx.receiver.spans()
    assert len(spans) == n, "want %d spans, got %d: %s" % (
        n, len(spans), [(s["resource"].get("service.name"), s["kind"], s["name"],
                         s["attributes"].get("url.path") or s["attributes"].get("url.full"))
                        for s in spans])
    return spans


def _tp_of(hs):
    v = hs.get("traceparent", [])
    assert len(v) == 1, "downstream got %d traceparent headers: %r" % (len(v), v)
    return v[0]


def _check_chain(server, client, down, echoed, xray=False):
    """server -> client -> down, and the wire header names the client span."""
    assert client["kind"] == 3, client
    assert server["kind"] == 2 and down["kind"] == 2
    assert client["trace_id"] == server["trace_id"] == down["trace_id"], (server, client, down)
    assert client["parent_span_id"] == server["span_id"], (server, client)
    assert down["parent_span_id"] == client["span_id"], (client, down)
    assert down["flags"] & 0x300 == 0x300, "downstream parent must be remote: %x" % down["flags"]
    hs = echoed["headers"]
    assert _tp_of(hs) == "00-%s-%s-01" % (client["trace_id"], client["span_id"]), hs
    if xray:
        x = hs.get("x-amzn-trace-id", [])
        t = client["trace_id"]
        assert x == ["Root=1-%s-%s;Parent=%s;Sampled=1" % (t[:8], t[8:], client["span_id"])], x


# ------------------------------------------------------------------ curl

@timeout(90)
def test_curl_server_calls_downstream():
    """A C server calling a downstream with curl_easy_perform on the request
    thread: server -> client -> downstream server, for every request; the
    app's own header list is kept and restored; X-Amzn-Trace-Id agrees."""
    if not os.path.exists(CURLSRV):
        raise AssertionError("%s not built" % CURLSRV)
    with Ctx("test_curl_server_calls_downstream") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        pf = ctx.path("curlsrv.port")
        # X-Ray on (for X-Amzn-Trace-Id); every request sampled, not the X-Ray
        # default rule (1/s then 5%) that X-Ray sampling would apply.
        env = ctx.env({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9",
                       "OTEL_TRACES_SAMPLER": "parentbased_always_on"}, service="up")
        up = ctx.start([CURLSRV, "--port", "0", "--portfile", pf, "--downstream",
                        "http://127.0.0.1:%d/echo?token=s3cr3t&page=2" % down_port], env=env,
                       name="curlsrv")
        up_port = harness.wait_portfile(pf, 10, up)

        n = 6
        incoming = [harness.random_traceparent() if i % 2 else None for i in range(n)]
        bodies = []
        with Conn(up_port) as c:  # keep-alive: the thread reuses its curl handle
            for i in range(n):
                ex = c.request(Req("GET", "/call?i=%d" % i, traceparent=incoming[i]))
                assert ex.resp.status == 200, ex.resp
                bodies.append(json.loads(ex.resp.body))
        spans = _wait_spans(ctx, 3 * n)
        ups = _by_service(spans, "up")
        downs = _by_service(spans, "down")
        servers = sorted((s for s in ups if s["kind"] == 2), key=lambda s: s["start_ns"])
        clients = {s["parent_span_id"]: s for s in ups if s["kind"] == 3}
        downs_by_parent = {s["parent_span_id"]: s for s in downs}
        assert len(servers) == n and len(clients) == n and len(downs) == n
        for i, (srv, echoed) in enumerate(zip(servers, bodies)):
            assert srv["attributes"]["url.path"] == "/call", srv
            if incoming[i]:
                assert srv["trace_id"] == incoming[i][3:35], (incoming[i], srv)
            cl = clients[srv["span_id"]]
            _check_chain(srv, cl, downs_by_parent[cl["span_id"]], echoed, xray=True)
            # The app's own header went out once, ours did not replace it.
            assert echoed["headers"].get("x-app") == ["1"], echoed
            a = cl["attributes"]
            assert a["http.request.method"] == "GET" and a["http.response.status_code"] == 200, a
            assert a["url.full"] == "http://127.0.0.1:%d/echo?token=REDACTED&page=2" % down_port, a
            assert a["server.address"] == "127.0.0.1" and a["server.port"] == down_port, a
            assert a["network.peer.address"] == "127.0.0.1" and a["network.peer.port"] == down_port
            assert cl["status_code"] == 0 and "error.type" not in a, cl
            assert srv["start_ns"] <= cl["start_ns"] <= cl["end_ns"] <= srv["end_ns"], (srv, cl)


@timeout(60)
def test_curl_app_traceparent_and_failure():
    """The app's own traceparent is never duplicated or overwritten (our
    span becomes its child); a transport failure is an ERROR client span."""
    with Ctx("test_curl_app_traceparent_and_failure") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        pf = ctx.path("curlsrv.port")
        up = ctx.start([CURLSRV, "--port", "0", "--portfile", pf, "--downstream",
                        "http://127.0.0.1:%d/echo" % down_port],
                       env=ctx.env(service="up"), name="curlsrv")
        up_port = harness.wait_portfile(pf, 10, up)
        with Conn(up_port) as c:
            own = json.loads(c.request(Req("GET", "/call-own")).resp.body)
            fail = c.request(Req("GET", "/fail"))
            plain = json.loads(c.request(Req("GET", "/call")).resp.body)
            twice = json.loads(c.request(Req("GET", "/twice")).resp.body)
        assert fail.resp.status == 502
        assert _tp_of(own["headers"]) == "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01"
        spans = _wait_spans(ctx, 4 + 5 + 4)  # up: 4 server + 5 client; down: 4
        clients = [s for s in spans if s["kind"] == 3]
        own_cl = [s for s in clients if s["trace_id"] == "a" * 32]
        assert len(own_cl) == 1 and own_cl[0]["parent_span_id"] == "b" * 16, clients
        fail_cl = [s for s in clients if s["attributes"].get("url.full", "").endswith("/unreachable")]
        assert len(fail_cl) == 1, clients
        assert fail_cl[0]["status_code"] == 2, fail_cl
        assert fail_cl[0]["attributes"]["error.type"] == "CURLE_COULDNT_CONNECT", fail_cl
        assert "http.response.status_code" not in fail_cl[0]["attributes"]
        # After both, the handle still sends exactly the app's list + ours.
        assert plain["headers"].get("x-app") == ["1"] and len(plain["headers"]["traceparent"]) == 1
        # A second transfer relying on the handle's kept list: the app's
        # list was put back (ours freed), and it gets a fresh span of its own.
        assert twice["headers"].get("x-app") == ["1"], twice
        tw = _tp_of(twice["headers"])
        tw_cl = [s for s in clients if s["span_id"] == tw[36:52]]
        assert len(tw_cl) == 1 and tw_cl[0]["trace_id"] == tw[3:35], (tw, clients)


# ------------------------------------------------------------------ raw sockets

@timeout(60)
def test_urllib_client_raw_sockets():
    """A standalone CPython urllib client: each request is a root CLIENT
    span and the downstream's server span is its child."""
    with Ctx("test_urllib_client_raw_sockets") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        urls = ["http://127.0.0.1:%d/r%d?q=%d" % (down_port, i, i) for i in range(5)]
        cl = ctx.start([harness.PYTHON, _script(ctx, "client.py", CLIENT_SCRIPT)] + urls,
                       env=ctx.env(service="client"), name="client")
        assert cl.wait(20) == 0, cl.log_tail()
        echoed = [json.loads(line) for line in cl.stdout().splitlines() if line.strip()]
        assert len(echoed) == 5
        spans = _wait_spans(ctx, 10)
        clients = {s["span_id"]: s for s in _by_service(spans, "client")}
        downs = _by_service(spans, "down")
        assert len(clients) == 5 and len(downs) == 5
        for e in echoed:
            tp = _tp_of(e["headers"])
            c = clients[tp[36:52]]
            assert c["kind"] == 3 and c["parent_span_id"] == "", c
            assert tp == "00-%s-%s-01" % (c["trace_id"], c["span_id"])
            d = [s for s in downs if s["attributes"]["url.path"] == e["path"].split("?")[0]][0]
            assert d["parent_span_id"] == c["span_id"] and d["trace_id"] == c["trace_id"]
            assert c["attributes"]["url.full"] == "http://127.0.0.1:%d%s" % (down_port, e["path"])
            assert c["attributes"]["http.response.status_code"] == 200


@timeout(60)
def test_python_server_calls_downstream_raw():
    """Thread-per-request CPython server calling urllib on the request
    thread: every client span's parent is exactly its server span."""
    with Ctx("test_python_server_calls_downstream_raw") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        up_port, _ = _start_py(ctx, "up", UP_SCRIPT, args=[str(down_port)])
        bodies = []
        with Conn(up_port) as c:
            for i in range(5):
                ex = c.request(Req("GET", "/p%d" % i, traceparent=harness.random_traceparent()))
                bodies.append(json.loads(ex.resp.body))
        spans = _wait_spans(ctx, 15)
        ups = _by_service(spans, "up")
        servers = {s["attributes"]["url.path"]: s for s in ups if s["kind"] == 2}
        clients = {s["parent_span_id"]: s for s in ups if s["kind"] == 3}
        downs = {s["parent_span_id"]: s for s in _by_service(spans, "down")}
        for i, echoed in enumerate(bodies):
            srv = servers["/p%d" % i]
            cl = clients[srv["span_id"]]
            _check_chain(srv, cl, downs[cl["span_id"]], echoed)


@timeout(60)
def test_split_head_and_propagate_off():
    """A request head written in pieces is sent untouched (no header we
    could duplicate), yet still gets a client span; CRUDDUR_PROPAGATE=0
    turns injection off everywhere."""
    split_client = r"""
import socket, sys, json
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
for part in (b"GET /split HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
    s.sendall(part)
data = b""
while b"\r\n\r\n" not in data:
    data += s.recv(65536)
head, body = data.split(b"\r\n\r\n", 1)
n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
while len(body) < n:
    body += s.recv(65536)
print(body.decode())
"""
    with Ctx("test_split_head_and_propagate_off") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        p = ctx.start([harness.PYTHON, _script(ctx, "split.py", split_client), str(down_port)],
                      env=ctx.env(service="split"), name="split")
        assert p.wait(20) == 0, p.log_tail()
        echoed = json.loads(p.stdout())
        assert "traceparent" not in echoed["headers"], echoed
        url = "http://127.0.0.1:%d/off" % down_port
        q = ctx.start([harness.PYTHON, _script(ctx, "client.py", CLIENT_SCRIPT), url],
                      env=ctx.env({"CRUDDUR_PROPAGATE": "0"}, service="off"), name="off")
        assert q.wait(20) == 0, q.log_tail()
        assert "traceparent" not in json.loads(q.stdout())["headers"]
        spans = _wait_spans(ctx, 4)
        for svc in ("split", "off"):
            cl = _by_service(spans, svc)
            assert len(cl) == 1 and cl[0]["kind"] == 3, cl
            assert cl[0]["attributes"]["http.response.status_code"] == 200
        # The downstream spans are new roots: nothing linked them.
        for d in _by_service(spans, "down"):
            assert d["parent_span_id"] == "", d


# ------------------------------------------------------------------ event loop

@timeout(90)
def test_node_event_loop_links_only_when_unambiguous():
    """node serves many requests on one thread. A call made while exactly
    one request is in progress is linked to it; calls made while several
    are in progress start their own traces instead of being glued into
    one."""
    if not os.path.exists(harness.NODE):
        raise harness.Skip("node not installed")
    with Ctx("test_node_event_loop_links_only_when_unambiguous") as ctx:
        down_port, _ = _start_py(ctx, "down", ECHO_SCRIPT)
        pf = ctx.path("node.port")
        env = ctx.env({"DOWN_PORT": down_port, "PORTFILE": pf}, service="node-up")
        p = ctx.start([harness.NODE, "-e", NODE_UP], env=env, name="node")
        up_port = harness.wait_portfile(pf, 20, p)

        with Conn(up_port) as c:  # alone: linked
            alone = json.loads(c.request(Req("GET", "/alone")).resp.body)
        results = {}

        def one(i):
            with Conn(up_port) as c:
                results[i] = json.loads(c.request(Req("GET", "/busy%d?delay=300" % i)).resp.body)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        assert len(results) == 3
        spans = _wait_spans(ctx, 3 * 4)
        ups = _by_service(spans, "node-up")
        servers = {s["attributes"]["url.path"]: s for s in ups if s["kind"] == 2}
        clients = [s for s in ups if s["kind"] == 3]
        downs = {s["parent_span_id"]: s for s in _by_service(spans, "down")}
        srv = servers["/alone"]
        cl = [c for c in clients if c["parent_span_id"] == srv["span_id"]]
        assert len(cl) == 1, (srv, clients)
        _check_chain(srv, cl[0], downs[cl[0]["span_id"]], alone)
        busy_ids = {servers["/busy%d" % i]["span_id"] for i in range(3)}
        busy_clients = [c for c in clients if c is not cl[0]]
        assert len(busy_clients) == 3
        for c in busy_clients:
            assert c["parent_span_id"] not in busy_ids, "glued to another request: %s" % c
            assert c["parent_span_id"] == "", c
        assert len({c["trace_id"] for c in busy_clients}) == 3, "one giant trace"
