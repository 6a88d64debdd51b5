"""CloudWatch Logs integration: access-log events of real servers reach a
local CloudWatch Logs stand-in (tests/receiver/cloudwatch_receiver.py) that
recomputes every SigV4 signature with the known secret, creates and checks
groups and streams, and enforces the PutLogEvents limits like the service."""

import json
import re
import socket
import time

import harness
from harness import Conn, Ctx, timeout
from cloudwatch_receiver import CloudWatchReceiver

AKID = "AKIDCRUDDURTEST01"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLE//session+token/with=chars"
REGION = "eu-west-3"
GROUP = "/cruddur/it-access"


def cw_env(rx, token=None, **extra):
    env = {"CRUDDUR_CLOUDWATCH_LOG_GROUP": GROUP, "AWS_REGION": REGION,
           "AWS_DEFAULT_REGION": None, "AWS_ACCESS_KEY_ID": AKID,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": token,
           "AWS_ENDPOINT_URL": None, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": rx.endpoint if rx else None,
           "AWS_PROFILE": None, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    env.update(extra)
    return env


def need_shim():
    if not harness.SHIM:
        raise harness.Skip("CloudWatch events come from the shim (--no-shim)")


def receiver(ctx, token=None):
    rx = CloudWatchReceiver(access_key=AKID, secret_key=SECRET, region=REGION,
                            session_token=token).start()
    ctx.defer(rx.stop)
    return rx


TEXT_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S+) (\S+) (\S+) (\S+) (\S+) "
                     r"(\d+\.\d{3})ms trace_id=([0-9a-f]{32}) span_id=([0-9a-f]{16})$")


def parse_text(msg):
    m = TEXT_RE.match(msg)
    if not m:
        raise AssertionError("access line %r does not match the format" % msg)
    ts, client, method, scheme, path, status, dur, tid, sid = m.groups()
    return {"timestamp": ts, "client": client, "method": method, "scheme": scheme, "path": path,
            "status": int(status), "duration_ms": float(dur), "trace_id": tid, "span_id": sid}


def check_events(rx, exs, spans, parse, pid, service, stream=None):
    """One event per request, each matching its request and its span, in
    the stream given, else <host>/<service>/<pid>."""
    evs = rx.wait_for_events(len(exs), timeout=10)
    time.sleep(1.0)
    evs = rx.events()
    if len(evs) != len(exs):
        raise AssertionError("%d events, want %d: %s" % (len(evs), len(exs), [e[2] for e in evs]))
    by_span = {}
    for group, st, e in evs:
        if group != GROUP:
            raise AssertionError("event in group %r" % group)
        rec = parse(e["message"])
        rec["_stream"], rec["_ts"] = st, e["timestamp"]
        by_span[rec["span_id"]] = rec
    errs = []
    for ex in exs:
        sp = spans[ex.rid]
        rec = by_span.get(sp["span_id"])
        if rec is None:
            errs.append("no event for %s %s (span %s)" % (ex.req.method, ex.req.target, sp["span_id"]))
            continue
        want = {"client": "127.0.0.1", "method": ex.req.method, "scheme": "http",
                "path": ex.req.target, "status": ex.resp.status, "trace_id": sp["trace_id"]}
        for k, v in want.items():
            if rec[k] != v:
                errs.append("%s %s: %s=%r, want %r" % (ex.req.method, ex.req.target, k, rec[k], v))
        if stream is not None:
            if rec["_stream"] != stream:
                errs.append("stream %r, want %r" % (rec["_stream"], stream))
        elif rec["_stream"] != "%s/%s/%d" % (socket.gethostname(), service, pid):
            errs.append("stream %r, want <host>/<service>/%d" % (rec["_stream"], pid))
        end_ms = sp["end_ns"] // 1_000_000 if "end_ns" in sp else None
        if end_ms is not None and rec["_ts"] != end_ms:
            errs.append("timestamp %d, want the span end %d" % (rec["_ts"], end_ms))
        dur = (sp["end_ns"] - sp["start_ns"]) / 1e6 if "end_ns" in sp and "start_ns" in sp else None
        if dur is not None and abs(rec["duration_ms"] - dur) > 0.002:
            errs.append("duration %.3f, want %.3f" % (rec["duration_ms"], dur))
    if errs:
        raise AssertionError("; ".join(errs))
    return by_span


def check_protocol(rx, token=None):
    reqs = rx.requests()
    bad = [(r["action"], r["sig_error"]) for r in reqs if r.get("sig_error")]
    if bad:
        raise AssertionError("bad signatures: %s" % bad)
    if rx.problems():
        raise AssertionError("receiver problems: %s" % rx.problems())
    actions = [r["action"] for r in reqs]
    if actions[:2] != ["CreateLogGroup", "CreateLogStream"] or "PutLogEvents" not in actions:
        raise AssertionError("actions %s" % actions)
    for r in reqs:
        hd = {k.lower(): v for k, v in r["headers"]}
        if hd.get("content-type") != "application/x-amz-json-1.1":
            raise AssertionError("content-type %r" % hd.get("content-type"))
        if not hd.get("authorization", "").startswith("AWS4-HMAC-SHA256 Credential=%s/" % AKID):
            raise AssertionError("authorization %r" % hd.get("authorization"))
        if "/%s/logs/aws4_request" % REGION not in hd["authorization"]:
            raise AssertionError("scope in %r" % hd["authorization"])
        if (token is None) != ("x-amz-security-token" not in hd):
            raise AssertionError("X-Amz-Security-Token presence wrong")


def no_secret_in_output(ctx):
    for p in ctx._procs:
        txt = p.stderr() + p.stdout()
        for s in (SECRET, TOKEN):
            if s in txt:
                raise AssertionError("%s printed a credential" % p.name)


def requests_for(c):
    return [c.request("GET", "/status/200"),
            c.request("GET", "/status/404?x=1&y=two"),
            c.request("POST", "/status/500", body=b"abc"),
            c.request("GET", "/status/201?q=%20sp")]


@timeout(60)
def test_cloudwatch_access_log_text():
    """Text access lines, one per request, each with the span's trace id;
    group and stream created; every request correctly signed."""
    need_shim()
    with Ctx("test_cloudwatch_access_log_text") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("epoll", extra_env=cw_env(rx))
        with Conn(srv.port) as c:
            exs = requests_for(c)
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        check_events(rx, exs, spans, parse_text, srv.pid, ctx.name)
        check_protocol(rx)
        no_secret_in_output(ctx)


@timeout(60)
def test_cloudwatch_access_log_json_session_token():
    """CRUDDUR_LOG_FORMAT=json, a session token (sent and signed), a set
    stream name, the region from AWS_DEFAULT_REGION and the endpoint from
    AWS_ENDPOINT_URL."""
    need_shim()
    with Ctx("test_cloudwatch_access_log_json_session_token") as ctx:
        rx = receiver(ctx, token=TOKEN)
        env = cw_env(rx, token=TOKEN, CRUDDUR_LOG_FORMAT="json", AWS_REGION=None,
                     AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=None,
                     AWS_ENDPOINT_URL=rx.endpoint,
                     CRUDDUR_CLOUDWATCH_LOG_STREAM="it-stream")
        srv = ctx.start_cserver("rw", extra_env=env)
        with Conn(srv.port) as c:
            exs = requests_for(c)
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        check_events(rx, exs, spans, json.loads, srv.pid, ctx.name, stream="it-stream")
        check_protocol(rx, token=TOKEN)
        no_secret_in_output(ctx)


@timeout(90)
def test_cloudwatch_retries_and_recreate():
    """ThrottlingException and 503 are retried; a deleted stream is
    recreated on ResourceNotFoundException and the put retried once."""
    need_shim()
    with Ctx("test_cloudwatch_retries_and_recreate", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("epoll", extra_env=cw_env(rx, CRUDDUR_LOG="debug"))
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/status/200?first=1")]
        rx.wait_for_events(1, timeout=10)
        stream = rx.events()[0][1]
        rx.push_mode("throttle", "503")
        with Conn(srv.port) as c:
            exs.append(c.request("GET", "/status/200?second=1"))
        rx.wait_for_events(2, timeout=15)
        rx.delete_stream(GROUP, stream)
        with Conn(srv.port) as c:
            exs.append(c.request("GET", "/status/200?third=1"))
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid, max_latency=None)
        check_events(rx, exs, spans, parse_text, srv.pid, ctx.name)
        errs = [r["error"] for r in rx.requests() if r["error"]]
        for want in ("ThrottlingException", "ServiceUnavailableException", "ResourceNotFoundException"):
            if want not in errs:
                raise AssertionError("no %s answer seen: %s" % (want, errs))
        creates = [r["action"] for r in rx.requests() if r["action"].startswith("Create")]
        if creates.count("CreateLogStream") != 2:
            raise AssertionError("creates %s" % creates)
        check_protocol(rx)
        no_secret_in_output(ctx)  # with CRUDDUR_LOG=debug


@timeout(60)
def test_cloudwatch_missing_credentials_or_region():
    """No region, or no credentials: one clear message, CloudWatch off,
    the server and its spans unaffected; credentials never printed."""
    need_shim()
    for name, extra, want in (
            ("noregion", {"AWS_REGION": None, "AWS_DEFAULT_REGION": None}, "AWS_REGION"),
            ("nocreds", {"AWS_ACCESS_KEY_ID": None}, "AWS_ACCESS_KEY_ID")):
        with Ctx("test_cloudwatch_missing_" + name, allow_stderr=True) as ctx:
            rx = receiver(ctx)
            srv = ctx.start_cserver("epoll", extra_env=cw_env(rx, **extra))
            with Conn(srv.port) as c:
                exs = [c.request("GET", "/status/200")]
            ctx.expect_one_span_per_request(exs, pid=srv.pid)
            time.sleep(0.5)
            msgs = ctx.cruddur_messages()
            if len(msgs) != 1 or want not in msgs[0] or "CloudWatch disabled" not in msgs[0]:
                raise AssertionError("%s: messages %s" % (name, msgs))
            if rx.requests():
                raise AssertionError("%s: requests sent" % name)
            no_secret_in_output(ctx)


@timeout(60)
def test_cloudwatch_many_requests_one_event_each():
    """200 requests: exactly one event per request, every batch within the
    limits and sorted (the receiver refuses anything else)."""
    need_shim()
    with Ctx("test_cloudwatch_many_requests_one_event_each") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("epoll", extra_env=cw_env(rx))
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/status/200?i=%d" % i) for i in range(200)]
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
        check_events(rx, exs, spans, parse_text, srv.pid, ctx.name)
        check_protocol(rx)


@timeout(60)
def test_cloudwatch_wrong_secret_rejected():
    """The receiver really checks signatures: signed with another secret,
    every call is refused (InvalidSignatureException), no event is stored,
    the sink says so once, and never prints the secret."""
    need_shim()
    with Ctx("test_cloudwatch_wrong_secret_rejected", allow_stderr=True) as ctx:
        rx = CloudWatchReceiver(access_key=AKID, secret_key=SECRET + "x", region=REGION).start()
        ctx.defer(rx.stop)
        srv = ctx.start_cserver("epoll", extra_env=cw_env(rx))
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/status/200")]
        ctx.expect_one_span_per_request(exs, pid=srv.pid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not rx.requests():
            time.sleep(0.05)
        time.sleep(0.5)
        reqs = rx.requests()
        if not reqs or any(r["error"] != "InvalidSignatureException" for r in reqs):
            raise AssertionError("answers %s" % [(r["action"], r["error"]) for r in reqs])
        if rx.events():
            raise AssertionError("events stored")
        msgs = ctx.cruddur_messages()
        if len(msgs) != 1 or "InvalidSignatureException" not in msgs[0]:
            raise AssertionError("messages %s" % msgs)
        no_secret_in_output(ctx)


def test_cloudwatch_receiver_sigv4_vectors():
    """The receiver's SigV4 code against the AWS SigV4 test suite
    (get-vanilla), and a tampered body or header is caught."""
    import hashlib
    import hmac as _hmac
    import cloudwatch_receiver as cr
    creq = cr.canonical_request("GET", "/", "", [("Host", "example.amazonaws.com"),
                                                 ("X-Amz-Date", "20150830T123600Z")],
                                ["host", "x-amz-date"], b"")
    sts = "\n".join(["AWS4-HMAC-SHA256", "20150830T123600Z",
                     "20150830/us-east-1/service/aws4_request",
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = _hmac.new(cr.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
                                   "us-east-1", "service"), sts.encode(), hashlib.sha256).hexdigest()
    if sig != "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31":
        raise AssertionError("get-vanilla signature %s" % sig)

    # A request signed now, then verified as is, with a changed body, and
    # with a changed signed header.
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    body = b'{"logGroupName":"g"}'
    hdrs = [("Host", "h:1"), ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "Logs_20140328.CreateLogGroup"), ("X-Amz-Date", now)]
    signed = ["content-type", "host", "x-amz-date", "x-amz-target"]
    creq = cr.canonical_request("POST", "/", "", hdrs, signed, body)
    sts = "\n".join(["AWS4-HMAC-SHA256", now, "%s/%s/logs/aws4_request" % (now[:8], REGION),
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = _hmac.new(cr.signing_key(SECRET, now[:8], REGION, "logs"), sts.encode(),
                    hashlib.sha256).hexdigest()
    auth = ("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s/%s/logs/aws4_request, "
            "SignedHeaders=%s, Signature=%s" % (AKID, now[:8], REGION, ";".join(signed), sig))
    kw = dict(access_key=AKID, secret_key=SECRET, region=REGION)
    ok = cr.verify_sigv4("POST", "/", "", hdrs + [auth], body, **kw)
    if ok is not None:
        raise AssertionError("valid request refused: %s" % ok)
    if cr.verify_sigv4("POST", "/", "", hdrs + [auth], body + b" ", **kw) is None:
        raise AssertionError("changed body accepted")
    bad = [(k, "Logs_20140328.PutLogEvents" if k == "X-Amz-Target" else v) for k, v in hdrs]
    if cr.verify_sigv4("POST", "/", "", bad + [auth], body, **kw) is None:
        raise AssertionError("changed header accepted")
    if cr.verify_sigv4("POST", "/", "", hdrs + [auth], body, session_token="t", **kw) is None:
        raise AssertionError("missing session token accepted")


@timeout(60)
def test_cloudwatch_exit_flush():
    """With a 60 s batch delay, events can only arrive through the exit
    flush on SIGTERM: the group and stream are created and the events put
    then, within the export timeout."""
    need_shim()
    with Ctx("test_cloudwatch_exit_flush") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=cw_env(rx, OTEL_BSP_SCHEDULE_DELAY="60000"))
        with Conn(srv.port) as c:
            exs = requests_for(c)
        time.sleep(0.3)
        if rx.requests():
            raise AssertionError("requests before exit despite OTEL_BSP_SCHEDULE_DELAY=60000")
        rc, how = srv.proc.stop(term_timeout=8)
        if how != "term" or rc != 0:
            raise AssertionError("SIGTERM -> rc=%s (%s), want a clean exit 0" % (rc, how))
        spans = ctx.expect_one_span_per_request(exs, pid=srv.pid, timeout=5, max_latency=None)
        check_events(rx, exs, spans, parse_text, srv.pid, ctx.name)
        check_protocol(rx)



@timeout(60)
def test_cloudwatch_logs_unsampled_requests():
    """An access log has every request: with the trace sampler dropping all
    traces, each request still gets its event, and no span is exported."""
    need_shim()
    with Ctx("test_cloudwatch_logs_unsampled_requests") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=cw_env(rx, OTEL_TRACES_SAMPLER="always_off"))
        with Conn(srv.port) as c:
            for i in range(5):
                c.request("GET", "/u%d" % i)
        evs = rx.wait_for_events(5, timeout=10)
        time.sleep(0.5)
        evs = rx.events()
        assert len(evs) == 5, evs
        ctx.expect_no_spans()
