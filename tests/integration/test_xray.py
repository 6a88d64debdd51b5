"""Integration tests: AWS X-Ray segments from real servers under the shim.

Each test points AWS_XRAY_DAEMON_ADDRESS at a local UDP receiver
(tests/receiver/xray_receiver.py, which checks every datagram against the
daemon's format and the segment document schema) while the usual OTLP
receiver collects the same requests' spans, so every segment is checked
field by field against the request we sent, the response we read, and the
OTLP span of the same request (same ids: one sampling decision for all).
"""

import json
import os
import random
import subprocess
import time

import harness
from harness import Conn, Ctx, Req, timeout
from xray_receiver import XRayReceiver

CURLSRV = os.path.join(harness.BUILD, "servers", "curlsrv")

# SDK local rules, version 2: every request (the tests count exactly).
ALL_RULES = {"version": 2, "default": {"fixed_target": 0, "rate": 1.0}}


def cli_rule(service, fixed_rate, reservoir, **kw):
    """A file for `aws xray create-sampling-rule --cli-input-json`, as a
    docker-compose set-up keeps it (aws/json/xray.json)."""
    rule = {"RuleName": "Cruddur", "ResourceARN": "*", "Priority": 9000,
            "FixedRate": fixed_rate, "ReservoirSize": reservoir, "ServiceName": service,
            "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1}
    rule.update(kw)
    return {"SamplingRule": rule}


def write_json(ctx, name, obj):
    path = ctx.path(name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    return path


def xray_env(ctx, rx, rules=None, **extra):
    env = {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % rx.port}
    if rules is not None:
        env["CRUDDUR_XRAY_SAMPLING_RULES"] = write_json(ctx, "rules-%d.json" % random.randrange(1 << 30),
                                                        rules)
    env.update(extra)
    return env


def start_rx(ctx):
    rx = XRayReceiver().start()
    ctx.defer(rx.stop)
    return rx


def expected_origin():
    """What the library detects (preload/xray.c detect_origin)."""
    if os.environ.get("ECS_CONTAINER_METADATA_URI_V4") or os.environ.get("ECS_CONTAINER_METADATA_URI"):
        return "AWS::ECS::Container"
    if os.path.exists("/var/elasticbeanstalk/xray/environment.conf"):
        return "AWS::ElasticBeanstalk::Environment"
    for path, test in (("/sys/devices/virtual/dmi/id/sys_vendor", lambda s: s == "Amazon EC2"),
                       ("/sys/hypervisor/uuid", lambda s: s.startswith("ec2"))):
        try:
            with open(path) as f:
                if test(f.readline().strip()):
                    return "AWS::EC2::Instance"
        except OSError:
            pass
    return None


def xray_trace_id(otlp_trace_id):
    return "1-%s-%s" % (otlp_trace_id[:8], otlp_trace_id[8:])


def time_text(ns):
    """Epoch seconds with exactly six decimals, truncated (not rounded)."""
    return "%d.%06d" % (ns // 1_000_000_000, ns % 1_000_000_000 // 1000)


def raw_of(rx, doc_id):
    for r in rx.records():
        if r["doc"].get("id") == doc_id:
            return r["raw"]
    raise AssertionError("no raw datagram for %s" % doc_id)


def no_problems(rx):
    probs = rx.problems()
    assert not probs, "X-Ray datagram problems:\n  " + "\n  ".join(probs[:10])


def settle(rx, n_segments, timeout_s=10.0, extra_wait=0.7):
    """Wait for n segments, then a little for anything extra."""
    rx.wait_for_segments(n_segments, timeout_s)
    time.sleep(extra_wait)
    no_problems(rx)
    return rx.segments()


def subsegments_of(rx, seg):
    """Inline subsegments of seg plus independent ones naming it parent."""
    out = [("inline", s) for s in seg.get("subsegments", [])]
    out += [("independent", d) for d in rx.independent_subsegments()
            if d.get("parent_id") == seg["id"] and d.get("trace_id") == seg["trace_id"]]
    return out


def noshim(ctx, rx):
    """--no-shim: the same servers without the library send nothing."""
    time.sleep(0.5)
    assert rx.datagrams() == 0, "no shim, yet %d datagrams" % rx.datagrams()
    ctx.expect_no_spans(0.1)


def random_root():
    return "1-%08x-%024x" % (int(time.time()), random.getrandbits(96) | 1)


# ------------------------------------------------------------------ segments

@timeout(90)
def test_xray_segment_fields():
    """Every request a C server answers becomes one segment whose every
    field matches the request, the response and the OTLP span."""
    with Ctx("test_xray_segment_fields") as ctx:
        rx = start_rx(ctx)
        srv = ctx.start_cserver("rw", extra_env=xray_env(
            ctx, rx, ALL_RULES, AWS_XRAY_TRACING_NAME="cruddur-backend",
            CRUDDUR_XRAY_NAMING="*.example.test*"))
        reqs = [
            Req("GET", "/hello?x=1&y=a%20b"),
            Req("GET", "/status/404"),
            Req("GET", "/status/429"),
            Req("GET", "/status/503"),
            Req("POST", "/upload", body=b"abcdef"),
            Req("GET", "/chunked"),
            Req("GET", "/proxied", xff="198.51.100.23"),
            Req("GET", "/named", host="api.example.test:8443"),
            Req("GET", "/status/500", host="other.test"),
            Req("DELETE", "/status/204"),
        ]
        with Conn(srv.port) as c:
            exs = [c.request(r) for r in reqs]
        if not ctx.shim:
            return noshim(ctx, rx)
        otlp = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        segs = settle(rx, len(exs))
        assert len(segs) == len(exs), "want %d segments, got %d" % (len(exs), len(segs))
        assert not rx.independent_subsegments(), rx.independent_subsegments()
        by_ua = {s["http"]["request"].get("user_agent"): s for s in segs}
        assert len(by_ua) == len(segs), "segments not one per request"
        origin = expected_origin()
        errs = []
        for ex in exs:
            req, resp = ex.req, ex.resp
            seg = by_ua.get(req.ua)
            if seg is None:
                errs.append("no segment for %s %s" % (req.method, req.target))
                continue
            sp = otlp[ex.rid]
            e = []

            def eq(what, got, want):
                if got != want:
                    e.append("%s = %r, want %r" % (what, got, want))

            host = req.host_value(srv.port)
            eq("name", seg["name"], host if host.endswith(".example.test:8443") else "cruddur-backend")
            eq("id", seg["id"], sp["span_id"])
            eq("trace_id", seg["trace_id"], xray_trace_id(sp["trace_id"]))
            eq("parent_id", seg.get("parent_id"), None)
            eq("type", seg.get("type"), None)
            raw = raw_of(rx, seg["id"])
            eq("start_time text", raw.split('"start_time":')[1].split(",")[0], time_text(sp["start_ns"]))
            eq("end_time text", raw.split('"end_time":')[1].split(",")[0], time_text(sp["end_ns"]))
            eq("origin", seg.get("origin"), origin)
            hq, hr = seg["http"]["request"], seg["http"].get("response", {})
            eq("http.request.method", hq.get("method"), req.method)
            path, _, query = req.target.partition("?")
            want_url = "http://%s%s" % (host, path)
            if query:
                want_url += "?" + query
            eq("http.request.url", hq.get("url"), want_url)
            eq("http.request.user_agent", hq.get("user_agent"), req.ua)
            eq("http.request.client_ip", hq.get("client_ip"), req.xff or "127.0.0.1")
            eq("http.request.x_forwarded_for", hq.get("x_forwarded_for"), True if req.xff else None)
            eq("http.response.status", hr.get("status"), resp.status)
            eq("http.response.content_length", hr.get("content_length"),
               len(resp.body) if resp.status != 204 else 0)
            st = resp.status
            eq("error", seg.get("error"), True if 400 <= st < 500 else None)
            eq("throttle", seg.get("throttle"), True if st == 429 else None)
            eq("fault", seg.get("fault"), True if st >= 500 else None)
            eq("aws.xray.sdk", seg.get("aws", {}).get("xray", {}).get("sdk"), "cruddur")
            eq("annotations", seg.get("annotations"), {"service": ctx.name, "pid": srv.pid})
            res = seg.get("metadata", {}).get("otel", {}).get("resource", {})
            eq("metadata resource service.name", res.get("service.name"), ctx.name)
            eq("metadata resource process.pid", res.get("process.pid"), srv.pid)
            eq("subsegments", seg.get("subsegments"), None)
            if e:
                errs.append("%s %s -> %s: %s" % (req.method, req.target, st, "; ".join(e)))
        assert not errs, harness.summarize(errs)


@timeout(60)
def test_xray_python_server_and_udp_tcp_address_form():
    """CPython's http.server, with the `tcp:... udp:...` address form and a
    host name: the same segments, the trace id equal to the OTLP one."""
    with Ctx("test_xray_python_server_and_udp_tcp_address_form") as ctx:
        rx = start_rx(ctx)
        env = xray_env(ctx, rx, ALL_RULES)
        env["AWS_XRAY_DAEMON_ADDRESS"] = "tcp:127.0.0.1:1 udp:localhost:%d" % rx.port
        srv = ctx.start_python11(extra_env=env)
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/"), c.request("GET", "/status/404"),
                   c.request("POST", "/p", body=b"xyz")]
        if not ctx.shim:
            return noshim(ctx, rx)
        otlp = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        segs = settle(rx, 3)
        assert len(segs) == 3, segs
        ids = {s["id"]: s for s in segs}
        for ex in exs:
            sp = otlp[ex.rid]
            seg = ids.get(sp["span_id"])
            assert seg, "no segment with the OTLP span id %s" % sp["span_id"]
            assert seg["trace_id"] == xray_trace_id(sp["trace_id"]), (seg, sp["trace_id"])
            assert seg["name"] == ctx.name, seg["name"]
            assert seg["http"]["response"]["status"] == ex.resp.status
            assert seg["http"]["request"]["method"] == ex.req.method


# ------------------------------------------------------------------ trace header

def _xreq(path, header):
    return Req("GET", path, headers=[("X-Amzn-Trace-Id", header)] if header else [])


@timeout(60)
def test_xray_incoming_header_beats_a_zero_rule():
    """Rules say 0%: only requests whose X-Amzn-Trace-Id says Sampled=1 are
    traced, continuing the caller's trace (Root, Parent)."""
    with Ctx("test_xray_incoming_header_beats_a_zero_rule") as ctx:
        rx = start_rx(ctx)
        srv = ctx.start_cserver("rw", extra_env=xray_env(ctx, rx, cli_rule(ctx.name, 0, 0)))
        r1, r2, r3, r4, r6 = (random_root() for _ in range(5))
        p1, p2, p4, p6 = ("%016x" % random.getrandbits(64) for _ in range(4))
        reqs = [
            _xreq("/a", "Root=%s;Parent=%s;Sampled=1" % (r1, p1)),
            _xreq("/b", "Root=%s;Parent=%s;Sampled=0" % (r2, p2)),
            _xreq("/c", "Root=%s;Sampled=1" % r3),                  # no Parent
            _xreq("/d", "Root=%s;Parent=%s;Sampled=?" % (r4, p4)),  # decide here: 0%
            _xreq("/e", None),                                      # no header: 0%
            _xreq("/f", "Sampled=1;Lineage=a87bd80c:0;Parent=%s;Root=%s" % (p6, r6)),
        ]
        with Conn(srv.port) as c:
            exs = [c.request(r) for r in reqs]
        assert all(ex.resp.status == 200 for ex in exs)
        if not ctx.shim:
            return noshim(ctx, rx)
        segs = settle(rx, 3)
        got = {s["http"]["request"]["url"].rsplit("/", 1)[1]: s for s in segs}
        assert sorted(got) == ["a", "c", "f"], "segments for %s, want a, c, f" % sorted(got)
        assert got["a"]["trace_id"] == r1 and got["a"]["parent_id"] == p1, got["a"]
        assert got["c"]["trace_id"] == r3 and "parent_id" not in got["c"], got["c"]
        assert got["f"]["trace_id"] == r6 and got["f"]["parent_id"] == p6, got["f"]
        # The OTLP spans follow the same decision.
        spans = ctx.receiver.wait_for_spans(3, 5)
        time.sleep(0.3)
        spans = ctx.receiver.spans()
        assert sorted(s["attributes"]["url.path"] for s in spans) == ["/a", "/c", "/f"], spans
        for s in spans:
            seg = got[s["attributes"]["url.path"][1:]]
            assert seg["id"] == s["span_id"] and seg["trace_id"] == xray_trace_id(s["trace_id"])


@timeout(60)
def test_xray_incoming_sampled_0_beats_a_full_rule():
    """Rules say 100%: Sampled=0 still wins; Sampled=? is decided here."""
    with Ctx("test_xray_incoming_sampled_0_beats_a_full_rule") as ctx:
        rx = start_rx(ctx)
        srv = ctx.start_cserver("rw", extra_env=xray_env(ctx, rx, cli_rule(ctx.name, 1, 0)))
        r1, r2 = random_root(), random_root()
        p2 = "%016x" % random.getrandbits(64)
        with Conn(srv.port) as c:
            exs = [c.request(_xreq("/zero", "Root=%s;Parent=%016x;Sampled=0" % (r1, 5))),
                   c.request(_xreq("/undecided", "Root=%s;Parent=%s;Sampled=?" % (r2, p2))),
                   c.request(_xreq("/plain", None))]
        assert all(ex.resp.status == 200 for ex in exs)
        if not ctx.shim:
            return noshim(ctx, rx)
        segs = settle(rx, 2)
        got = {s["http"]["request"]["url"].rsplit("/", 1)[1]: s for s in segs}
        assert sorted(got) == ["plain", "undecided"], sorted(got)
        assert got["undecided"]["trace_id"] == r2 and got["undecided"]["parent_id"] == p2
        assert "parent_id" not in got["plain"]


# ------------------------------------------------------------------ rules files

@timeout(90)
def test_xray_cli_rules_file_docker_compose():
    """The docker-compose set-up's CLI-format file (aws/json/xray.json):
    FixedRate 0 and ReservoirSize 0 -> nothing sampled, by any sink;
    ReservoirSize 2 -> exactly 2 per second (reservoir), shared with OTLP."""
    with Ctx("test_xray_cli_rules_file_docker_compose") as ctx:
        rx = start_rx(ctx)
        srv = ctx.start_cserver("rw", extra_env=xray_env(ctx, rx, cli_rule(ctx.name, 0, 0)))
        with Conn(srv.port) as c:
            for i in range(20):
                assert c.request("GET", "/api/activities/home?i=%d" % i).resp.status == 200
        if not ctx.shim:
            return noshim(ctx, rx)
        time.sleep(1.0)
        no_problems(rx)
        assert rx.datagrams() == 0, "FixedRate 0, ReservoirSize 0: %d datagrams" % rx.datagrams()
        ctx.expect_no_spans(0.2)
        srv.proc.stop()

        # A rule for another service does not apply: the SDK default rule
        # (1 per second first) does.
        srv = ctx.start_cserver("rw", extra_env=xray_env(
            ctx, rx, cli_rule("some-other-service", 0, 0)))
        with Conn(srv.port) as c:
            assert c.request("GET", "/first").resp.status == 200
        segs = settle(rx, 1)
        assert len(segs) == 1, segs
        srv.proc.stop()

        srv2 = ctx.start_cserver("rw", extra_env=xray_env(ctx, rx, cli_rule(ctx.name, 0, 2)))
        t0 = time.time()
        with Conn(srv2.port) as c:
            for i in range(20):
                assert c.request("GET", "/r%d" % i).resp.status == 200
        t1 = time.time()
        seconds = int(t1) - int(t0) + 1
        time.sleep(1.0)
        n = len(rx.segments()) - 1
        assert 2 <= n <= 2 * seconds, "ReservoirSize 2 over %d second(s): %d segments" % (seconds, n)
        spans = ctx.receiver.spans()
        assert len(spans) == n + 1, "OTLP got %d spans, X-Ray %d segments: one decision" % (
            len(spans), n + 1)
        assert {s["span_id"] for s in spans} == {s["id"] for s in rx.segments()}


@timeout(60)
def test_xray_bad_settings_are_reported_once():
    """A bad rules file: one `cruddur:` line, then the default rule (the
    first request of a second is traced). A bad daemon address: one line,
    no X-Ray, the app and OTLP unaffected. AWS_XRAY_SDK_DISABLED=true:
    silence."""
    with Ctx("test_xray_bad_settings_are_reported_once", allow_stderr=True) as ctx:
        rx = start_rx(ctx)
        bad = ctx.path("bad-rules.json")
        with open(bad, "w") as f:
            f.write('{"SamplingRule": {"RuleName": "Cruddur", "FixedRate": 0.1,}}')
        env = xray_env(ctx, rx)
        env["CRUDDUR_XRAY_SAMPLING_RULES"] = bad
        srv = ctx.start_cserver("rw", extra_env=env)
        with Conn(srv.port) as c:
            assert c.request("GET", "/one").resp.status == 200
        if not ctx.shim:
            return noshim(ctx, rx)
        segs = settle(rx, 1)
        assert len(segs) == 1, segs
        srv.proc.stop()
        msgs = [l for l in srv.proc.stderr().splitlines() if "cruddur:" in l]
        assert len(msgs) == 1, msgs
        assert "CRUDDUR_XRAY_SAMPLING_RULES=%s" % bad in msgs[0] and "line 1" in msgs[0] \
            and "default rule" in msgs[0], msgs[0]

        for env, want in ((xray_env(ctx, rx, AWS_XRAY_DAEMON_ADDRESS="127.0.0.1"),
                           "AWS_XRAY_DAEMON_ADDRESS=127.0.0.1: "),
                          (xray_env(ctx, rx, AWS_XRAY_SDK_DISABLED="true"), None)):
            before, n0 = rx.datagrams(), len(ctx.receiver.spans())
            srv = ctx.start_cserver("rw", extra_env=env)
            with Conn(srv.port) as c:
                exs = [c.request("GET", "/x%d" % i) for i in range(5)]
            time.sleep(0.8)
            assert rx.datagrams() == before, "X-Ray should be off (%s)" % env
            # X-Ray off: OTel's default sampler traces everything.
            spans = ctx.receiver.wait_for_spans(n0 + 5, 5)
            paths = {s["attributes"]["url.path"] for s in spans}
            assert all(ex.req.target in paths for ex in exs), paths
            srv.proc.stop()
            msgs = [l for l in srv.proc.stderr().splitlines() if "cruddur:" in l]
            if want is None:
                assert msgs == [], msgs
            else:
                assert len(msgs) == 1 and want in msgs[0] and "disabled" in msgs[0], msgs


# ------------------------------------------------------------------ client spans

@timeout(90)
def test_xray_curl_client_becomes_remote_subsegment():
    """A C server calling a downstream with curl_easy_perform on the request
    thread: the call is a "remote" subsegment of the request's segment, and
    the downstream's own segment (also under the shim) names that
    subsegment as its parent. A failed call is a fault with its cause."""
    if not os.path.exists(CURLSRV):
        r = subprocess.run(["make", "-s", "-C", harness.REPO, "build/servers/curlsrv"],
                           capture_output=True, text=True)
        if r.returncode:
            raise AssertionError("cannot build curlsrv: %s" % (r.stdout + r.stderr))
    with Ctx("test_xray_curl_client_becomes_remote_subsegment") as ctx:
        rx = start_rx(ctx)
        down = ctx.start_python11(extra_env=dict(xray_env(ctx, rx, ALL_RULES),
                                                 OTEL_SERVICE_NAME="down"))
        pf = ctx.path("curlsrv.port")
        env = ctx.env(xray_env(ctx, rx, ALL_RULES), service="up")
        url = "http://127.0.0.1:%d/query?token=s3cr3t&page=2" % down.port
        up = ctx.start([CURLSRV, "--port", "0", "--portfile", pf, "--downstream", url], env=env,
                       name="curlsrv")
        up_port = harness.wait_portfile(pf, 10, up)
        with Conn(up_port) as c:
            exs = [c.request("GET", "/call?i=1"), c.request("GET", "/call?i=2"),
                   c.request("GET", "/fail")]
        assert [ex.resp.status for ex in exs] == [200, 200, 502], exs
        if not ctx.shim:
            return noshim(ctx, rx)
        segs = settle(rx, 5)
        ups = sorted((s for s in segs if s["name"] == "up"), key=lambda s: s["start_time"])
        downs = {s["parent_id"]: s for s in segs if s["name"] == "down"}
        assert len(ups) == 3 and len(downs) == 2, [(s["name"], s["http"]) for s in segs]
        placements = []
        for seg, ex in zip(ups, exs):
            subs = subsegments_of(rx, seg)
            assert len(subs) == 1, "segment %s: %d subsegments" % (seg["http"], len(subs))
            how, sub = subs[0]
            placements.append(how)
            assert sub["namespace"] == "remote", sub
            assert sub["name"] == "127.0.0.1", sub
            assert seg["start_time"] <= sub["start_time"] <= sub["end_time"] <= seg["end_time"], (
                seg, sub)
            q = sub["http"]["request"]
            assert q["method"] == "GET", q
            if ex.req.target.startswith("/call"):
                assert q["url"] == url.replace("s3cr3t", "REDACTED"), q
                assert sub["http"]["response"]["status"] == 200, sub
                assert not any(k in sub for k in ("error", "fault", "throttle", "cause")), sub
                assert seg["http"]["response"]["status"] == 200
                # The downstream continued the trace from our subsegment.
                d = downs.get(sub["id"])
                assert d, "no downstream segment with parent_id %s" % sub["id"]
                assert d["trace_id"] == seg["trace_id"], (d, seg)
                assert d["http"]["request"]["url"].endswith("/query?token=REDACTED&page=2"), d
            else:
                assert q["url"] == "http://127.0.0.1:1/unreachable", q
                assert sub.get("fault") is True and "response" not in sub["http"], sub
                exc = sub["cause"]["exceptions"][0]
                assert exc["type"] == "CURLE_COULDNT_CONNECT" and exc["remote"] is True, exc
                assert seg["http"]["response"]["status"] == 502 and seg.get("fault") is True
            if how == "independent":
                assert sub["type"] == "subsegment" and sub["parent_id"] == seg["id"]
        print("subsegment placements: %s" % placements)
