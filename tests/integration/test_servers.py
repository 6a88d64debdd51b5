"""Integration tests: real servers under LD_PRELOAD=build/libcruddur.so.

Every test counts the requests it sends and expects exactly one span per
request at the local receiver, each checked against the library contract
(harness.check_span). With CRUDDUR_TEST_NOSHIM=1 (run.py --no-shim) the same
servers run without the library and the tests expect no spans at all.
"""

import os
import random
import re
import shutil
import subprocess
import threading
import time

import harness
from harness import Conn, Ctx, Req, check_responses, pattern, timeout

CSERVER_MODES = ("rw", "recvsend", "vec", "epoll")
HELLO = b"hello\n"


def _stop_clean(srv, what=None):
    """SIGTERM the server; it must exit 0 by itself (the shim's exit path
    must not crash, hang or change the exit status)."""
    rc, how = srv.proc.stop(term_timeout=8)
    if how != "term" or rc != 0:
        raise AssertionError("%s: SIGTERM -> rc=%s (%s), want a clean exit 0%s" % (
            what or srv.kind, rc, how, srv.proc.log_tail()))


# ------------------------------------------------------------------ CPython

@timeout(60)
def test_python_http_server_http10():
    """python3 -m http.server: HTTP/1.0, one connection per request."""
    with Ctx("test_python_http_server_http10") as ctx:
        www = ctx.mkdir("www")
        with open(os.path.join(www, "hello.txt"), "w") as f:
            f.write("hello from a file\n")
        os.makedirs(os.path.join(www, "sub"))
        srv = ctx.start_python_http_server(directory=www)
        tp = harness.random_traceparent()
        reqs = [
            Req("GET", "/hello.txt", version="1.0"),
            Req("GET", "/missing.txt", version="1.0"),
            Req("GET", "/?C=M;O=A", version="1.0"),
            Req("HEAD", "/hello.txt", version="1.0"),
            Req("GET", "/hello.txt?download=1", version="1.0", traceparent=tp,
                tracestate="vendor=abc"),
            Req("GET", "/sub/", version="1.0", xff="198.51.100.23"),
            Req("GET", "/hello.txt", version="1.0", ua=None),
            Req("GET", "/hello.txt", version="1.0", host="files.example.test:8443"),
        ]
        exs = []
        for r in reqs:
            with Conn(srv.port) as c:
                exs.append(c.request(r))
        check_responses(exs, [(200, b"hello from a file\n"), (404, None), (200, None), (200, None),
                              (200, None), (200, None), (200, None), (200, None)])
        for ex in exs:
            if ex.resp.version != "1.0":
                raise AssertionError("python http.server answered HTTP/%s" % ex.resp.version)
        ctx.expect_one_span_per_request(exs, pid=srv.pid)
        # python -m http.server has no SIGTERM handler: it dies by the signal
        rc, how = srv.proc.stop()
        if how != "term":
            raise AssertionError("python -m http.server did not stop on SIGTERM (%s)" % how)


@timeout(60)
def test_python_http11_keepalive():
    """BaseHTTPRequestHandler with protocol_version HTTP/1.1: keep-alive,
    500, POST/PUT bodies, HEAD, 204, pipelining."""
    with Ctx("test_python_http11_keepalive") as ctx:
        srv = ctx.start_python11()
        exs = []
        with Conn(srv.port) as c:
            exs.append(c.request("GET", "/"))
            exs.append(c.request("GET", "/query?a=1&b=two"))
            exs.append(c.request("GET", "/status/500"))
            exs.append(c.request("POST", "/post", body=b"p" * 5000))
            exs.append(c.request("PUT", "/put/1", body=b'{"k": "v"}',
                                 headers=[("Content-Type", "application/json")]))
            exs.append(c.request("HEAD", "/"))
            exs.append(c.request("DELETE", "/item/7"))
            exs.append(c.request("GET", "/json", traceparent=harness.random_traceparent()))
            exs.append(c.request("GET", "/status/404"))
            if c.connects != 1:
                raise AssertionError("keep-alive connection was not reused (%d connects)" % c.connects)
        with Conn(srv.port) as c:
            exs += c.pipeline([Req("GET", "/p%d" % i) for i in range(3)])
            exs.append(c.request("GET", "/bye", close=True))
        check_responses(exs, [(200, HELLO), (200, b"q=a=1&b=two\n"), (500, b"boom\n"),
                              (201, b"got 5000\n"), (201, b"got 10\n"), (200, b""), (204, b""),
                              (200, b'{"ok":true}\n'), (404, b"nope\n"), (200, HELLO),
                              (200, HELLO), (200, HELLO), (200, HELLO)])
        ctx.expect_one_span_per_request(exs, pid=srv.pid)
        _stop_clean(srv, "python HTTP/1.1 server")


# ------------------------------------------------------------------ nginx

def _nginx_requests(c):
    exs = []
    for i in range(24):
        k = i % 8
        if k == 0:
            exs.append(c.request("GET", "/index.html"))
        elif k == 1:
            exs.append(c.request("GET", "/index.html?v=%d&x=y" % i))
        elif k == 2:
            exs.append(c.request("GET", "/status/500"))
        elif k == 3:
            exs.append(c.request("GET", "/nope/%d" % i))
        elif k == 4:
            exs.append(c.request("GET", "/big.bin"))
        elif k == 5:
            exs.append(c.request("HEAD", "/index.html"))
        elif k == 6:
            exs.append(c.request("POST", "/post", body=b"field=value&n=%d" % i))
        else:
            exs.append(c.request("GET", "/status/503", traceparent=harness.random_traceparent(),
                                 tracestate="k=v"))
    return exs


def _check_nginx_responses(exs):
    want = {"/index.html": 200, "/status/500": 500, "/big.bin": 200, "/post": 200,
            "/status/503": 503}
    errs = []
    for ex in exs:
        p = ex.req.target.partition("?")[0]
        st = want.get(p, 404)
        if ex.resp.status != st:
            errs.append("%s %s -> %s, want %s" % (ex.req.method, ex.req.target, ex.resp.status, st))
        if p == "/big.bin" and ex.req.method == "GET" and len(ex.resp.body) != 300 * 1024:
            errs.append("/big.bin body %d bytes" % len(ex.resp.body))
    if errs:
        raise AssertionError(harness.summarize(errs))


@timeout(60)
def test_nginx_keepalive_pipelined():
    """nginx master + 1 worker: 24 requests on one keep-alive connection,
    8 pipelined in one write, then `nginx -s quit`."""
    with Ctx("test_nginx_keepalive_pipelined") as ctx:
        ng = ctx.nginx()
        srv = ng.start()
        if srv.pid == ng.master_pid:
            raise AssertionError("could not tell the worker from the master")
        with Conn(srv.port) as c:
            exs = _nginx_requests(c)
            # nginx closes the connection after a bare `return 500` (special
            # response); every other response keeps it open
            n500 = sum(1 for ex in exs if ex.resp.status == 500)
            if c.connects != 1 + n500:
                raise AssertionError("keep-alive connection was not reused (%d connects for %d "
                                     "responses 500)" % (c.connects, n500))
            pipe = [Req("GET", "/index.html"), Req("HEAD", "/index.html"), Req("GET", "/nope"),
                    Req("POST", "/post", body=b"abc"), Req("GET", "/index.html?p=1"),
                    Req("GET", "/big.bin"), Req("GET", "/status/503"), Req("GET", "/status/500")]
            exs += c.pipeline(pipe)
        _check_nginx_responses(exs)
        ng.quit()
        ctx.expect_one_span_per_request(exs, pid=ng.worker_pid, pid_not=ng.master_pid)


@timeout(60)
def test_nginx_quit_flushes():
    """With a 60 s batch delay the spans can only arrive through the flush at
    the worker's exit after `nginx -s quit`."""
    with Ctx("test_nginx_quit_flushes") as ctx:
        ng = ctx.nginx()
        srv = ng.start(extra_env={"OTEL_BSP_SCHEDULE_DELAY": "60000"})
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/index.html"), c.request("GET", "/status/500"),
                   c.request("POST", "/post", body=b"x=1")]
        time.sleep(0.3)
        early = len(ctx.receiver.spans())
        ng.quit()
        ctx.expect_one_span_per_request(exs, pid=ng.worker_pid, pid_not=ng.master_pid, timeout=8,
                                        max_latency=None)
        if harness.SHIM and early:
            raise AssertionError("%d spans arrived before quit despite OTEL_BSP_SCHEDULE_DELAY=60000"
                                 % early)


# ------------------------------------------------------------------ node

@timeout(60)
def test_node_keepalive_traceparent():
    with Ctx("test_node_keepalive_traceparent") as ctx:
        srv = ctx.start_node()
        tp1 = harness.random_traceparent()
        tp2 = harness.random_traceparent()
        exs = []
        with Conn(srv.port) as c:
            exs.append(c.request("GET", "/", traceparent=tp1,
                                 tracestate="rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
            exs.append(c.request("GET", "/status/503", traceparent=tp2))
            exs.append(c.request("POST", "/post", body=b"n" * 3000))
            exs.append(c.request("POST", "/post?chunked=1", chunks=[b"a" * 10, b"b" * 1000, b"c"]))
            exs.append(c.request("GET", "/chunked"))
            exs.append(c.request("HEAD", "/"))
            exs.append(c.request("GET", "/search?q=node", xff="192.0.2.1, 10.0.0.2"))
            if c.connects != 1:
                raise AssertionError("keep-alive connection was not reused (%d connects)" % c.connects)
            exs += c.pipeline([Req("GET", "/pipe/%d" % i, traceparent=harness.random_traceparent())
                               for i in range(4)])
        check_responses(exs, [(200, HELLO), (503, b"status 503\n"), (201, b"got 3000\n"),
                              (201, b"got 1011\n"), (200, b"one\ntwo\nthree\n"), (200, b""),
                              (200, HELLO)] + [(200, HELLO)] * 4)
        if not exs[4].resp.chunked:
            raise AssertionError("node /chunked was not chunked")
        ctx.expect_one_span_per_request(exs, pid=srv.pid)
        _stop_clean(srv, "node")


# ------------------------------------------------------------------ cserver

def _cserver_scenario(mode, name=None):
    with Ctx(name or "test_cserver_" + mode) as ctx:
        srv = ctx.start_cserver(mode)
        exs, want = [], []

        def add(ex, status, body):
            exs.append(ex)
            want.append((status, body))

        with Conn(srv.port) as c:
            add(c.request("GET", "/search?q=abc&n=1"), 200, HELLO)
            add(c.request("POST", "/submit", body=b"x" * 1234,
                          headers=[("Content-Type", "application/octet-stream")]), 200, HELLO)
            add(c.request("POST", "/upload", chunks=[b"a" * 100, b"b" * 7, b"c" * 4000]), 200, HELLO)
            add(c.request("GET", "/chunked"), 200,
                b"first chunk\nsecond\nthe third chunk, a little longer\n4\n")
            add(c.request("GET", "/file?size=1048576"), 200, pattern(1048576))
            add(c.request("GET", "/status/503"), 503, b"status 503\n")
            add(c.request("HEAD", "/big"), 200, b"")
            add(c.request("GET", "/big"), 200, pattern(102400))
            add(c.request("PURGE", "/cache/item"), 200, HELLO)
            add(c.request("GET", "/status/404", xff="203.0.113.9, 10.1.1.1"), 404, b"status 404\n")
            time.sleep(0.15)  # idle keep-alive gap: the next span starts at its own first byte
            add(c.request("GET", "/split/one/byte?at=a&time=1", pieces=1, delay=0.001), 200, HELLO)
            add(c.request("POST", "/split/body", body=b"0123456789" * 5, pieces=1, delay=0.0002),
                200, HELLO)
            add(c.request_expect100(Req("PUT", "/expect", body=b"e" * 2048)), 200, HELLO)
            for ex in c.pipeline([Req("GET", "/pipe/%d?i=%d" % (i, i)) for i in range(10)]):
                add(ex, 200, HELLO)
            add(c.request("DELETE", "/status/204"), 204, b"")
            add(c.request("GET", "/x", host="api.example.test"), 200, HELLO)
            if c.connects != 1 or len({ex.client_port for ex in exs}) != 1:
                raise AssertionError("keep-alive connection was not reused")
            add(c.request("GET", "/last", close=True), 200, HELLO)
        with Conn(srv.port) as c:  # HTTP/1.0, no Host
            add(c.request("GET", "/old?v=10", version="1.0", host=None), 200, HELLO)
        with Conn(srv.port) as c:  # HTTP/1.0 keep-alive
            add(c.request("GET", "/ka10", version="1.0", headers=[("Connection", "keep-alive")]),
                200, HELLO)
            add(c.request("GET", "/ka10b", version="1.0", headers=[("Connection", "keep-alive")]),
                200, HELLO)
        with Conn(srv.port) as c:
            add(c.request("GET", "/sleep?ms=150"), 200, b"slept\n")
        check_responses(exs, want)
        ch = exs[3].resp
        if not ch.chunked:
            raise AssertionError("/chunked response not chunked")
        if not exs[12].resp.interim:
            raise AssertionError("no 100 Continue for Expect: 100-continue")
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        if spans:
            errs = []
            s = spans[exs[-1].rid]
            dur = (s["end_ns"] - s["start_ns"]) / 1e6
            if dur < 150:
                errs.append("/sleep?ms=150 span lasted %.1f ms (< 150)" % dur)
            # the one-byte-at-a-time request: the span starts at its first byte
            split_ex = exs[10]
            s = spans[split_ex.rid]
            sent_ms = (split_ex.t_recv_ns - split_ex.t_send_ns) / 1e6
            dur = (s["end_ns"] - s["start_ns"]) / 1e6
            if dur < 0.5 * sent_ms:
                errs.append("one-byte-split request took %.1f ms to send, its span lasted only "
                            "%.1f ms (start must be the first byte)" % (sent_ms, dur))
            if errs:
                raise AssertionError(harness.summarize(errs))
        _stop_clean(srv)


@timeout(60)
def test_cserver_rw():
    _cserver_scenario("rw")


@timeout(60)
def test_cserver_recvsend():
    _cserver_scenario("recvsend")


@timeout(60)
def test_cserver_vec():
    _cserver_scenario("vec")


@timeout(60)
def test_cserver_epoll():
    _cserver_scenario("epoll")


@timeout(60)
def test_cserver_exit_flush():
    """With a 60 s batch delay, spans can only arrive through the exit flush
    on SIGTERM (exit(0) -> destructors)."""
    with Ctx("test_cserver_exit_flush") as ctx:
        srv = ctx.start_cserver("rw", extra_env={"OTEL_BSP_SCHEDULE_DELAY": "60000"})
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/a"), c.request("GET", "/status/500"),
                   c.request("POST", "/b", body=b"zz")]
        time.sleep(0.3)
        early = len(ctx.receiver.spans())
        t = time.monotonic()
        _stop_clean(srv)
        if time.monotonic() - t > 5:
            raise AssertionError("exit took %.1fs" % (time.monotonic() - t))
        ctx.expect_one_span_per_request(exs, pid=srv.pid, timeout=5, max_latency=None)
        if harness.SHIM and early:
            raise AssertionError("%d spans before exit despite OTEL_BSP_SCHEDULE_DELAY=60000" % early)


@timeout(60)
def test_cserver_concurrent_rw():
    """8 client threads x 25 keep-alive requests against the threaded server."""
    with Ctx("test_cserver_concurrent_rw") as ctx:
        srv = ctx.start_cserver("rw")
        results, errors = [], []
        lock = threading.Lock()

        def worker(k):
            try:
                with Conn(srv.port) as c:
                    mine = []
                    for i in range(25):
                        if i % 5 == 4:
                            mine.append(c.request("POST", "/w%d/%d" % (k, i), body=b"q" * (i + 1)))
                        else:
                            mine.append(c.request("GET", "/w%d/%d?i=%d" % (k, i, i)))
                with lock:
                    results.extend(mine)
            except Exception as e:  # report in the main thread
                with lock:
                    errors.append("worker %d: %r" % (k, e))

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        if errors:
            raise AssertionError("; ".join(errors))
        if len(results) != 200 or any(ex.resp.status != 200 for ex in results):
            raise AssertionError("client side: %d results" % len(results))
        ctx.expect_one_span_per_request(results, pid=srv.pid, timeout=15)


@timeout(60)
def test_cserver_epoll_ab_load():
    """ab -k -n 1500 -c 8 against the epoll server: exactly 1500 spans
    (several export batches of OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512)."""
    ab = shutil.which("ab")
    if not ab:
        raise harness.Skip("ab not installed")
    with Ctx("test_cserver_epoll_ab_load") as ctx:
        srv = ctx.start_cserver("epoll")
        n = 1500
        r = subprocess.run([ab, "-q", "-k", "-n", str(n), "-c", "8", "-s", "20",
                            "http://127.0.0.1:%d/ab?load=1" % srv.port],
                           capture_output=True, text=True, timeout=40, env=harness.clean_env())
        m = re.search(r"Complete requests:\s+(\d+)", r.stdout)
        f = re.search(r"Failed requests:\s+(\d+)", r.stdout)
        if r.returncode != 0 or not m or int(m.group(1)) != n or int(f.group(1)) != 0:
            raise AssertionError("ab failed rc=%d: %s %s" % (r.returncode, r.stdout[-800:], r.stderr[-400:]))
        if not ctx.shim:
            ctx.expect_no_spans(0.5)
            return
        spans = ctx.receiver.wait_for_spans(n, timeout=20)
        time.sleep(0.5)
        spans = ctx.receiver.spans()
        errs = []
        if len(spans) != n:
            errs.append("ab completed %d requests, got %d spans" % (n, len(spans)))
        if len({s["span_id"] for s in spans}) != len(spans):
            errs.append("duplicate span ids")
        if len({s["trace_id"] for s in spans}) != len(spans):
            errs.append("duplicate trace ids among new traces")
        ports = {s["attributes"].get("network.peer.port") for s in spans}
        if len(ports) > 8 or len(ports) < 1:
            errs.append("network.peer.port values: %d distinct, want 1..8 (ab -c 8 -k)" % len(ports))
        for s in spans:
            a = s["attributes"]
            bad = []
            if s["name"] != "GET" or s["kind"] != 2:
                bad.append("name/kind %s/%s" % (s["name"], s["kind"]))
            if a.get("url.path") != "/ab" or a.get("url.query") != "load=1":
                bad.append("url %r %r" % (a.get("url.path"), a.get("url.query")))
            if a.get("http.response.status_code") != 200 or a.get("http.response.body.size") != 6:
                bad.append("status/body.size %r/%r" % (a.get("http.response.status_code"),
                                                       a.get("http.response.body.size")))
            if a.get("network.protocol.version") != "1.0":
                bad.append("protocol %r (ab sends HTTP/1.0)" % a.get("network.protocol.version"))
            if s["resource"].get("process.pid") != srv.pid:
                bad.append("process.pid %r" % s["resource"].get("process.pid"))
            if bad:
                errs.append(harness.brief(s) + ": " + ", ".join(bad))
                if len(errs) > 8:
                    break
        if errs:
            raise AssertionError(harness.summarize(errs))
        _stop_clean(srv)


@timeout(90)
def test_cserver_epoll_wrk_stress():
    """wrk -t1 -c8 -d1s against the epoll server with a queue big enough
    for everything: every response wrk counted has its span (wrk may cut up
    to one in-flight request per connection at the end), nothing dropped."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise harness.Skip("wrk not installed")
    with Ctx("test_cserver_epoll_wrk_stress") as ctx:
        srv = ctx.start_cserver("epoll", extra_env={"OTEL_BSP_MAX_QUEUE_SIZE": "262144"})
        r = subprocess.run([wrk, "-t1", "-c8", "-d1s", "http://127.0.0.1:%d/wrk?x=1" % srv.port],
                           capture_output=True, text=True, timeout=30, env=harness.clean_env())
        m = re.search(r"(\d+) requests in", r.stdout)
        if r.returncode != 0 or not m or "Socket errors" in r.stdout or "Non-2xx" in r.stdout:
            raise AssertionError("wrk failed rc=%d: %s %s" % (r.returncode, r.stdout[-600:], r.stderr[-300:]))
        n = int(m.group(1))
        if not ctx.shim:
            ctx.expect_no_spans(0.5)
            return
        spans = ctx.receiver.wait_for_spans(n, timeout=40)
        time.sleep(1.0)
        spans = ctx.receiver.spans()
        errs = []
        if not n <= len(spans) <= n + 8:
            errs.append("wrk counted %d responses, got %d spans (want %d..%d)" % (n, len(spans), n, n + 8))
        if len({s["span_id"] for s in spans}) != len(spans):
            errs.append("duplicate span ids")
        wrong = [s for s in spans if s["attributes"].get("url.path") != "/wrk"
                 or s["attributes"].get("url.query") != "x=1"
                 or s["attributes"].get("http.response.status_code") != 200]
        if wrong:
            errs.append("%d spans with wrong attributes, e.g. %s" % (len(wrong), harness.brief(wrong[0])))
        if ctx.receiver.bad_requests():
            errs.append("receiver rejected %d exports" % len(ctx.receiver.bad_requests()))
        if errs:
            raise AssertionError(harness.summarize(errs))
        _stop_clean(srv)


@timeout(60)
def test_cserver_edge_requests():
    """Odd but valid requests still get exactly one span each: a 3000-byte
    target (url.path may be truncated), an 8 KB Cookie, PATCH with a body,
    OPTIONS, M-SEARCH and lowercase "get" (not standard: _OTHER), an empty
    query, a 1 KB User-Agent (may be truncated), a close-delimited
    response."""
    with Ctx("test_cserver_edge_requests") as ctx:
        srv = ctx.start_cserver("epoll")
        long_path = "/long/" + "a" * 3000
        with Conn(srv.port) as c:
            long_ex = c.request("GET", long_path)
            exs = [c.request("GET", "/cookie", headers=[("Cookie", "c=" + "v" * 8000)]),
                   c.request("PATCH", "/item/1?fields=a,b", body=b'{"a":1}'),
                   c.request("OPTIONS", "/any"),
                   c.request("M-SEARCH", "/ssdp"),
                   c.request("get", "/lowercase-method-is-not-GET"),
                   c.request("GET", "/q?", ua="x" * 20)]
            long_ua = Req("GET", "/long-ua")
            long_ua.ua += "/" + "u" * 1000
            long_ua_ex = c.request(long_ua)
            eof_ex = c.request("GET", "/eof")
        check_responses([long_ex] + exs + [long_ua_ex, eof_ex], [(200, HELLO)] * 8 +
                        [(200, b"until eof\n")])
        if not eof_ex.resp.close_delimited:
            raise AssertionError("/eof was not close-delimited")
        exs.append(eof_ex)
        # the empty query ("/q?") is unspecified: accept url.query "" or absent
        q_ex = exs.pop(-2)
        odd = (long_ex.req.ua, q_ex.req.ua)
        spans = ctx.expect_one_span_per_request(
            exs, pid=srv.pid,
            ignore=lambda s: s["attributes"].get("user_agent.original") in odd
            or s["attributes"].get("url.path") == "/long-ua")
        if spans is not None and ctx.shim:
            all_spans = ctx.receiver.spans()
            ls = [s for s in all_spans if s["attributes"].get("user_agent.original") == long_ex.req.ua]
            qs = [s for s in all_spans if s["attributes"].get("user_agent.original") == q_ex.req.ua]
            errs = []
            if len(ls) != 1:
                errs.append("long target: %d spans, want 1" % len(ls))
            else:
                errs += ["long target: " + e for e in harness.check_span(
                    ls[0], long_ex, service=ctx.name, pid=srv.pid, path_prefix_ok=True)]
            if len(qs) != 1:
                errs.append("'/q?': %d spans, want 1" % len(qs))
            elif qs[0]["attributes"].get("url.path") != "/q":
                errs.append("'/q?': url.path %r" % qs[0]["attributes"].get("url.path"))
            us = [s for s in all_spans if s["attributes"].get("url.path") == "/long-ua"]
            if len(us) != 1:
                errs.append("1 KB User-Agent: %d spans, want 1" % len(us))
            else:
                ua = us[0]["attributes"].get("user_agent.original")
                if not isinstance(ua, str) or not ua or not long_ua.ua.startswith(ua):
                    errs.append("1 KB User-Agent: user_agent.original %r is not a prefix of the "
                                "header" % (ua[:40] if isinstance(ua, str) else ua))
            if errs:
                raise AssertionError(harness.summarize(errs))


@timeout(60)
def test_cserver_fragmented_pipeline():
    """12 pipelined requests (bodies, chunked bodies, HEAD, queries) sent in
    random 1..40-byte pieces, against every cserver mode."""
    with Ctx("test_cserver_fragmented_pipeline") as ctx:
        rng = random.Random(1234)
        for mode in CSERVER_MODES:
            ctx.receiver.clear()
            srv = ctx.start_cserver(mode)
            reqs = []
            for i in range(12):
                k = i % 4
                if k == 0:
                    reqs.append(Req("GET", "/frag/%d?mode=%s&i=%d" % (i, mode, i)))
                elif k == 1:
                    reqs.append(Req("POST", "/frag/%d" % i, body=bytes(rng.randrange(97, 123)
                                                                      for _ in range(rng.randrange(1, 300)))))
                elif k == 2:
                    reqs.append(Req("PUT", "/frag/%d" % i, chunks=[b"k" * rng.randrange(1, 90)
                                                                  for _ in range(3)]))
                else:
                    reqs.append(Req("HEAD", "/big"))
            with Conn(srv.port) as c:
                exs = c.pipeline(reqs, split=lambda: rng.randrange(1, 41), delay=0.0002)
            check_responses(exs, [(200, b"" if r.method == "HEAD" else HELLO) for r in reqs])
            ctx.expect_one_span_per_request(exs, pid=srv.pid, service="test_cserver_fragmented_pipeline")
            _stop_clean(srv)


@timeout(60)
def test_header_values_escaping():
    """Header values with quotes, backslashes, tabs, UTF-8 and non-UTF-8
    (obs-text) bytes: one span each, exported in protobuf and in JSON (the
    receiver rejects invalid UTF-8 in protobuf strings and bad JSON)."""
    for proto, ctype in (("http/protobuf", harness.PROTOBUF), ("http/json", harness.JSON)):
        with Ctx("test_header_values_escaping") as ctx:
            srv = ctx.start_cserver("rw", extra_env={"OTEL_EXPORTER_OTLP_PROTOCOL": proto})
            # (User-Agent as sent (latin-1 str = raw bytes), expected attribute or None = any)
            cases = [('say "hi" \\ back\\slash', 'say "hi" \\ back\\slash'),
                     ("tab\there", "tab\there"),
                     ("caf\xc3\xa9 \xe2\x9c\x93", "caf\u00e9 \u2713"),
                     ("bad \xff\xfe bytes", None),
                     ("</script><b>&amp;", "</script><b>&amp;")]
            exs = []
            with Conn(srv.port) as c:
                for i, (ua, _) in enumerate(cases):
                    exs.append(c.request("GET", "/esc/%d?q=%%22x%%22&u=caf%%C3%%A9" % i, ua=ua))
            check_responses(exs, [(200, HELLO)] * len(cases))
            if not ctx.shim:
                ctx.expect_no_spans(0.5)
                continue
            spans = ctx.receiver.wait_for_spans(len(cases), timeout=10)
            time.sleep(0.4)
            spans = ctx.receiver.spans()
            errs = []
            bad = ctx.receiver.bad_requests()
            if bad:
                errs.append("receiver rejected exports: %s" % "; ".join(str(r["error"]) for r in bad[:3]))
            if ctx.receiver.problems():
                errs.append("format problems: %s" % "; ".join(ctx.receiver.problems()[:3]))
            by_path = {}
            for s in spans:
                by_path.setdefault(s["attributes"].get("url.path"), []).append(s)
            for i, (ua, want) in enumerate(cases):
                ss = by_path.get("/esc/%d" % i, [])
                if len(ss) != 1:
                    errs.append("case %d (%r): %d spans, want 1" % (i, ua, len(ss)))
                    continue
                a = ss[0]["attributes"]
                got = a.get("user_agent.original")
                if want is not None and got != want:
                    errs.append("case %d: user_agent.original %r, want %r" % (i, got, want))
                if want is None and not isinstance(got, str):
                    errs.append("case %d: user_agent.original %r, want a string" % (i, got))
                if a.get("url.query") != "q=%22x%22&u=caf%C3%A9":
                    errs.append("case %d: url.query %r" % (i, a.get("url.query")))
                errs += ["case %d: %s" % (i, e) for e in harness.check_span(
                    ss[0], exs[i], service=ctx.name, pid=srv.pid, content_type=ctype)
                    if "user_agent" not in e]
            if len(spans) != len(cases):
                errs.append("%d requests, %d spans" % (len(cases), len(spans)))
            if errs:
                raise AssertionError("%s: %s" % (proto, harness.summarize(errs)))
            _stop_clean(srv)


# ------------------------------------------------------------------ trace context

TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


@timeout(60)
def test_traceparent_valid():
    with Ctx("test_traceparent_valid") as ctx:
        srv = ctx.start_cserver("rw")
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/a", traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                             tracestate=TRACESTATE),
                   c.request("GET", "/b", traceparent=harness.random_traceparent()),
                   c.request("POST", "/c", body=b"1", traceparent=harness.random_traceparent(),
                             tracestate="a=1"),
                   c.request("GET", "/status/500", traceparent=harness.random_traceparent())]
            exs += c.pipeline([Req("GET", "/p%d" % i, traceparent=harness.random_traceparent(),
                                   tracestate="v%d=x" % i) for i in range(4)])
            # the same trace twice: both spans in it, distinct span ids
            tp = harness.random_traceparent()
            exs += [c.request("GET", "/same1", traceparent=tp), c.request("GET", "/same2", traceparent=tp)]
        ctx.expect_one_span_per_request(exs, pid=srv.pid)


INVALID_TRACEPARENTS = [
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",   # uppercase hex
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   # zero trace id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   # zero parent id
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   # version ff
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",    # trace id 31 chars
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",    # parent id 15 chars
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",  # flags 3 chars
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",      # no flags
    "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",   # non-hex
    "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    # version 1 char
    "",                                                          # empty
]


@timeout(60)
def test_traceparent_invalid():
    """Invalid traceparent -> a new trace (fresh epoch-prefixed trace id, no
    parent, tracestate dropped)."""
    with Ctx("test_traceparent_invalid") as ctx:
        srv = ctx.start_cserver("recvsend")
        exs = []
        with Conn(srv.port) as c:
            for tp in INVALID_TRACEPARENTS:
                exs.append(c.request("GET", "/inv", traceparent=tp, tracestate=TRACESTATE))
            exs.append(c.request("GET", "/none"))
        ctx.expect_one_span_per_request(exs, pid=srv.pid)


@timeout(60)
def test_traceparent_duplicate_header():
    """Two traceparent headers make the context invalid (W3C trace-context;
    preload/span.h CRD_REQ_DUP_TRACEPARENT) -> new trace."""
    with Ctx("test_traceparent_duplicate_header") as ctx:
        srv = ctx.start_cserver("rw")
        tp1 = harness.random_traceparent()
        tp2 = harness.random_traceparent()
        with Conn(srv.port) as c:
            ex = c.request("GET", "/dup", traceparent=tp1, headers=[("traceparent", tp2)])
        ex.req.traceparent = "invalid (two headers)"
        spans = ctx.expect_one_span_per_request([ex], pid=srv.pid)
        if spans:
            tid = spans[ex.rid]["trace_id"]
            if tid in (tp1.split("-")[1], tp2.split("-")[1]):
                raise AssertionError("trace id %s taken from one of two traceparent headers" % tid)


# ------------------------------------------------------------------ exporter configuration

def _few_requests(port):
    with Conn(port) as c:
        return [c.request("GET", "/cfg?x=1"), c.request("POST", "/cfg", body=b"abc"),
                c.request("GET", "/status/502", traceparent=harness.random_traceparent(),
                          tracestate="t=1"),
                c.request("HEAD", "/big")]


def _config_test(name, env, mode="epoll", **check):
    with Ctx(name) as ctx:
        srv = ctx.start_cserver(mode, extra_env=env)
        exs = _few_requests(srv.port)
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid, **check)
        _stop_clean(srv)
        return ctx, spans


@timeout(40)
def test_export_protobuf_default():
    ctx, _ = _config_test("test_export_protobuf_default", {}, content_type=harness.PROTOBUF)
    if ctx.shim:
        for r in ctx.receiver.requests():
            if r["headers"].get("content-type") != "application/x-protobuf":
                raise AssertionError("Content-Type %r" % r["headers"].get("content-type"))


@timeout(40)
def test_export_protobuf_explicit():
    _config_test("test_export_protobuf_explicit", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
                 content_type=harness.PROTOBUF)


@timeout(40)
def test_export_json():
    _config_test("test_export_json", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, content_type=harness.JSON)


@timeout(40)
def test_export_gzip():
    ctx, _ = _config_test("test_export_gzip", {"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
                          content_type=harness.PROTOBUF, content_encoding="gzip")


@timeout(40)
def test_export_json_gzip():
    _config_test("test_export_json_gzip", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                               "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
                 content_type=harness.JSON, content_encoding="gzip", mode="vec")


@timeout(40)
def test_export_headers():
    ctx, spans = _config_test("test_export_headers", {"OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=abc%20d,x-b=2"})
    if ctx.shim:
        errs = []
        for r in ctx.receiver.requests():
            h = r["headers"]
            if h.get("x-honeycomb-team") != "abc d" or h.get("x-b") != "2":
                errs.append("export request headers: x-honeycomb-team=%r x-b=%r" % (
                    h.get("x-honeycomb-team"), h.get("x-b")))
        if errs:
            raise AssertionError(harness.summarize(sorted(set(errs))))


@timeout(40)
def test_resource_attributes():
    _config_test("test_resource_attributes", {"OTEL_RESOURCE_ATTRIBUTES":
                              "deployment.environment=ci,team.name=obs%20team,service.name=overridden"},
                 resource_extra={"deployment.environment": "ci", "team.name": "obs team"},
                 mode="rw")


def _no_span_test(name, env, mode="rw"):
    """The server must behave normally and no span may arrive, not even at
    the exit flush."""
    with Ctx(name) as ctx:
        srv = ctx.start_cserver(mode, extra_env=env)
        exs = _few_requests(srv.port)
        check_responses(exs, [(200, HELLO), (200, HELLO), (502, b"status 502\n"), (200, b"")])
        _stop_clean(srv)
        ctx.expect_no_spans(1.0)


@timeout(40)
def test_sampler_always_off():
    _no_span_test("test_sampler_always_off", {"OTEL_TRACES_SAMPLER": "always_off"})


@timeout(40)
def test_sampler_traceidratio_zero():
    with Ctx("test_sampler_traceidratio_zero") as ctx:
        srv = ctx.start_cserver("epoll", extra_env={"OTEL_TRACES_SAMPLER": "traceidratio",
                                                    "OTEL_TRACES_SAMPLER_ARG": "0"})
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/r%d" % i) for i in range(20)]
        check_responses(exs, [(200, HELLO)] * 20)
        _stop_clean(srv)
        ctx.expect_no_spans(1.0)


@timeout(40)
def test_otel_sdk_disabled():
    _no_span_test("test_otel_sdk_disabled", {"OTEL_SDK_DISABLED": "true"}, mode="vec")


@timeout(40)
def test_cruddur_disabled():
    _no_span_test("test_cruddur_disabled", {"CRUDDUR_DISABLED": "1"}, mode="epoll")


# ------------------------------------------------------------------ byte-identical behaviour

BAD_UA = "cruddur-it/identical-bad"


def _cserver_transcript(port):
    """Responses (raw bytes) to a fixed set of requests."""
    out = []
    exs = []
    with Conn(port) as c:
        for r in [Req("GET", "/"), Req("GET", "/chunked"), Req("GET", "/file?size=300001"),
                  Req("GET", "/big"), Req("HEAD", "/big"), Req("POST", "/p", body=b"b" * 777),
                  Req("POST", "/c", chunks=[b"x" * 5, b"y" * 70000]), Req("GET", "/status/503"),
                  Req("GET", "/status/204"), Req("GET", "/status/304"), Req("PURGE", "/x"),
                  Req("GET", "/h10", version="1.0", headers=[("Connection", "keep-alive")])]:
            exs.append(c.request(r))
        exs += c.pipeline([Req("GET", "/pipe%d" % i) for i in range(10)])
        exs.append(c.request("GET", "/split?q=1", pieces=3))
        exs.append(c.request_expect100(Req("POST", "/e", body=b"E" * 100)))
        exs.append(c.request("GET", "/end", close=True))
    with Conn(port) as c:
        exs.append(c.request("GET", "/h10c", version="1.0"))
    out = [ex.resp.raw for ex in exs]
    with Conn(port) as c:  # malformed: 400 and close
        c.send_raw(b"BAD REQUEST LINE\r\nUser-Agent: %s\r\n\r\n" % BAD_UA.encode())
        out.append(c.read_until_close())
    return out, exs


def _compare(a, b, what):
    errs = []
    if len(a) != len(b):
        errs.append("%s: %d responses without the shim, %d with" % (what, len(a), len(b)))
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = harness.strip_date(x), harness.strip_date(y)
        if x != y:
            k = next((j for j in range(min(len(x), len(y))) if x[j] != y[j]), min(len(x), len(y)))
            errs.append("%s response %d differs at byte %d (len %d vs %d): %r vs %r" % (
                what, i, k, len(x), len(y), x[max(0, k - 20):k + 40], y[max(0, k - 20):k + 40]))
    if errs:
        raise AssertionError(harness.summarize(errs))


@timeout(90)
def test_identical_responses_cserver():
    with Ctx("test_identical_responses_cserver") as ctx:
        for mode in CSERVER_MODES:
            plain = ctx.start_cserver(mode, shim=False)
            ref, ref_exs = _cserver_transcript(plain.port)
            _stop_clean(plain)
            want = [200, 200, 200, 200, 200, 200, 200, 503, 204, 304, 200, 200] + [200] * 14
            got_st = [ex.resp.status for ex in ref_exs]
            if got_st != want or not ref[-1].startswith(b"HTTP/1.1 400 "):
                raise AssertionError("cserver %s without the shim answered %s, want %s" % (
                    mode, got_st, want))
            ctx.receiver.clear()
            shimmed = ctx.start_cserver(mode)
            got, exs = _cserver_transcript(shimmed.port)
            _compare(ref, got, "cserver --mode " + mode)
            # the malformed request's span is unspecified
            ctx.expect_one_span_per_request(
                exs, pid=shimmed.pid,
                ignore=lambda s: s["attributes"].get("user_agent.original") == BAD_UA
                or not s["attributes"].get("user_agent.original"))
            _stop_clean(shimmed)
            ctx.receiver.clear()


def _nginx_transcript(port):
    exs = []
    with Conn(port) as c:
        for r in [Req("GET", "/index.html"), Req("GET", "/big.bin"), Req("HEAD", "/index.html"),
                  Req("GET", "/nope"), Req("GET", "/status/500"), Req("GET", "/status/503"),
                  Req("POST", "/post", body=b"a=b"), Req("POST", "/post", chunks=[b"12", b"345"]),
                  Req("GET", "/index.html", headers=[("If-None-Match", "\"nomatch\"")]),
                  Req("GET", "/index.html", headers=[("Range", "bytes=0-9")])]:
            exs.append(c.request(r))
        exs += c.pipeline([Req("GET", "/index.html"), Req("GET", "/nope"), Req("GET", "/big.bin")])
        exs.append(c.request("GET", "/index.html", pieces=2))
        exs.append(c.request("GET", "/index.html", close=True))
    with Conn(port) as c:
        exs.append(c.request("GET", "/index.html", version="1.0"))
    return [ex.resp.raw for ex in exs], exs


@timeout(90)
def test_identical_responses_nginx():
    with Ctx("test_identical_responses_nginx") as ctx:
        prefix = ctx.mkdir("nginx")
        ng = harness.Nginx(ctx, prefix=prefix)
        ng.start(shim=False)
        ref, ref_exs = _nginx_transcript(ng.port)
        ng.quit()
        want = [200, 200, 200, 404, 500, 503, 200, 200, 200, 206, 200, 404, 200, 200, 200, 200]
        got_st = [ex.resp.status for ex in ref_exs]
        if got_st != want:
            raise AssertionError("nginx without the shim answered %s, want %s" % (got_st, want))
        ng2 = harness.Nginx(ctx, prefix=prefix)
        ng2.start()
        got, exs = _nginx_transcript(ng2.port)
        _compare(ref, got, "nginx")
        ng2.quit()
        ctx.expect_one_span_per_request(exs, pid=ng2.worker_pid, pid_not=ng2.master_pid)
