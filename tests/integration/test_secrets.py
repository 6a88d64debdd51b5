"""Secrets never leave the process (issue #8).

Real servers under the library with every sink on at once (OTLP protobuf,
console, file, X-Ray, Rollbar, CloudWatch Logs) answer requests carrying
secrets in headers (Authorization, Proxy-Authorization, Cookie), in query
values whose names look secret (token, api_key, X-Amz-*, password,
access_token, a CRUDDUR_REDACT name) and in URL userinfo (an absolute-form
target, a libcurl call to user:password@host). Every payload the receivers
got, every stderr line (CRUDDUR_LOG=debug), the traces file and every spool
file is searched for every secret string, and for our own credentials
(OTLP header values, HONEYCOMB_API_KEY, ROLLBAR_ACCESS_TOKEN,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), which may only travel in the
headers that authenticate us. Where a field is kept, it must say REDACTED.
Errors are provoked too (bad settings, back ends answering 400 with our
request headers echoed), and TLS verification is checked against an HTTPS
receiver with a self-signed certificate."""

import glob
import http.server
import json
import os
import signal
import socketserver
import ssl
import stat
import subprocess
import threading
import time

import harness
from harness import Conn, Ctx
from cloudwatch_receiver import CloudWatchReceiver
from rollbar_receiver import RollbarReceiver
from xray_receiver import XRayReceiver

# App secrets (in the requests).
QV = ["qv%d-s3cr3t-%s" % (i, "7f3a9c"[: (i % 5) + 1]) for i in range(1, 11)]
AUTH = "Bearer hv1-auth-s3cr3t-e1d2"
PROXY_AUTH = "Basic hv2-proxy-s3cr3t-b7c8"
COOKIE = "sid=hv3-cookie-s3cr3t-a4f5"
UPW = ["upw1-pass-s3cr3t-c9d0", "upw2-pass-s3cr3t-f1e2"]
# Our own credentials.
OTLP_KEY = "otlpkey-s3cr3t-5a6b7c8d"
HC_KEY = "hckey-s3cr3t-1a2b3c4d5e"
RB_TOKEN = "rbtok0s3cr3t0000000000000000abcd"
AWS_KEY_ID = "AKIDTESTSECRETS01"
AWS_SECRET = "awssecret-s3cr3t-9z8y7x6w"
AWS_SESSION = "awssession-s3cr3t-4q3r2s"
REGION = "us-east-1"

APP_SECRETS = QV + [AUTH.split()[1], PROXY_AUTH.split()[1], COOKIE.split("=")[1]] + UPW
OUR_SECRETS = [OTLP_KEY, HC_KEY, RB_TOKEN, AWS_SECRET, AWS_SESSION]
ALL_SECRETS = APP_SECRETS + OUR_SECRETS

SECRET_QUERY = ("token=%s&api_key=%s&X-Amz-Signature=%s&X-Amz-Credential=%s&password=%s"
                "&access_token=%s&ticket=%s&plain=visible1" % tuple(QV[:7]))
REDACTED_QUERY = ("token=REDACTED&api_key=REDACTED&X-Amz-Signature=REDACTED"
                  "&X-Amz-Credential=REDACTED&password=REDACTED&access_token=REDACTED"
                  "&ticket=REDACTED&plain=visible1")


def leaks(where, text, secrets=ALL_SECRETS):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return ["%s holds %r" % (where, s) for s in secrets if s in text]


def sink_env(ctx, spool, xr, rb, cw, **extra):
    env = {
        "OTEL_TRACES_EXPORTER": "otlp,console,file",
        "CRUDDUR_FILE": ctx.path("spans.jsonl"),
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=%s" % OTLP_KEY,
        "HONEYCOMB_API_KEY": HC_KEY,
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % xr.port,
        "ROLLBAR_ACCESS_TOKEN": RB_TOKEN, "ROLLBAR_ENDPOINT": rb.endpoint,
        "CRUDDUR_CLOUDWATCH_LOG_GROUP": "/it/secrets", "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SESSION_TOKEN": AWS_SESSION, "AWS_ENDPOINT_URL": cw.endpoint,
        "CRUDDUR_LOG": "debug", "CRUDDUR_REDACT": "ticket", "CRUDDUR_SPOOL_DIR": spool,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        # every request sampled (X-Ray's default rule keeps 1 per second)
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def receivers(ctx):
    xr = XRayReceiver().start()
    ctx.defer(xr.stop)
    rb = RollbarReceiver(token=RB_TOKEN).start()
    ctx.defer(rb.stop)
    cw = CloudWatchReceiver(access_key=AWS_KEY_ID, secret_key=AWS_SECRET, region=REGION,
                            session_token=AWS_SESSION).start()
    ctx.defer(cw.stop)
    return xr, rb, cw


def attr_spans(rx, path):
    return [s for s in rx.spans() if s["attributes"].get("url.path") == path]


def test_secrets_never_exported_by_any_sink():
    with Ctx("test_secrets_sinks", allow_stderr=True) as ctx:
        xr, rb, cw = receivers(ctx)
        spool = ctx.mkdir("spool")
        srv = ctx.start_cserver("rw", extra_env=sink_env(ctx, spool, xr, rb, cw))
        hdrs = [("Authorization", AUTH), ("Proxy-Authorization", PROXY_AUTH), ("Cookie", COOKIE)]
        with Conn(srv.port) as c:
            e500 = c.request("GET", "/status/500?" + SECRET_QUERY, headers=hdrs)
            eabs = c.request("GET", "http://alice:%s@127.0.0.1:%d/abs?passwd=%s"
                             % (UPW[0], srv.port, QV[7]), headers=hdrs)
            down = "http://bob:%s@127.0.0.1:%d/down?token=%s" % (UPW[1], srv.port, QV[8])
            efetch = c.request("GET", "/fetch?secret_url=" + down, headers=hdrs)
        if (e500.resp.status, eabs.resp.status, efetch.resp.status) != (500, 200, 200):
            raise AssertionError("statuses %s %s %s" % (e500.resp.status, eabs.resp.status,
                                                        efetch.resp.status))
        # 3 server spans + the downstream server span + the client span
        ctx.receiver.wait_for_spans(5, timeout=15)
        rb.wait_for_items(1, timeout=15)
        cw.wait_for_events(4, timeout=15)
        xr.wait_for_segments(4, timeout=15)
        srv.stop()  # exit flush: everything sent
        errs = []

        # OTLP: what is kept says REDACTED
        spans = ctx.receiver.spans()
        # (the receiver notes each request's headers beside its spans:
        # those are checked below, where only our own key may be)
        errs += leaks("OTLP spans", json.dumps(
            [{k: v for k, v in sp.items() if k != "request_headers"} for sp in spans],
            default=str))
        for r in ctx.receiver.requests():
            errs += leaks("OTLP request headers", json.dumps(
                {k: v for k, v in r["headers"].items()
                 if k not in ("x-api-key", "x-honeycomb-team")}))
            if r["headers"].get("x-api-key") != OTLP_KEY:
                errs.append("OTLP request without our x-api-key header")
        s500 = attr_spans(ctx.receiver, "/status/500")
        if len(s500) != 1 or s500[0]["attributes"].get("url.query") != REDACTED_QUERY:
            errs.append("url.query of the 500: %r" % [s["attributes"].get("url.query")
                                                      for s in s500])
        if [s["attributes"].get("url.query") for s in attr_spans(ctx.receiver, "/abs")] != [
                "passwd=REDACTED"]:
            errs.append("/abs span: %r" % attr_spans(ctx.receiver, "/abs"))
        clients = [s for s in spans if "url.full" in s["attributes"]]
        want_full = "http://REDACTED:REDACTED@127.0.0.1:%d/down?token=REDACTED" % srv.port
        if [s["attributes"]["url.full"] for s in clients] != [want_full]:
            errs.append("url.full %r, want %r" % ([s["attributes"]["url.full"] for s in clients],
                                                   want_full))
        for s in spans:
            for k in s["attributes"]:
                if "authorization" in k.lower() or "cookie" in k.lower():
                    errs.append("attribute %s exported" % k)

        # X-Ray
        raws = [r["raw"] for r in xr.records()]
        errs += leaks("X-Ray documents", "\n".join(raws))
        if not any("token=REDACTED" in r for r in raws):
            errs.append("no X-Ray segment with the redacted query")

        # Rollbar: the 500 item, its url and query_string redacted, no
        # Authorization/Cookie header
        for r in rb.requests():
            errs += leaks("Rollbar item", r["raw"])
        items = rb.items()
        if len(items) != 1:
            errs.append("%d Rollbar items, want 1" % len(items))
        else:
            req = items[0]["data"].get("request", {})
            if req.get("query_string") != REDACTED_QUERY or REDACTED_QUERY not in req.get("url", ""):
                errs.append("Rollbar request %r" % req)
            if any(h.lower() in ("authorization", "cookie", "proxy-authorization")
                   for h in req.get("headers", {})):
                errs.append("Rollbar item has credential headers: %r" % req.get("headers"))

        # CloudWatch: bodies (the session token travels in its header only)
        for r in cw.requests():
            errs += leaks("CloudWatch body", r["body"])
        lines = [e[2]["message"] if isinstance(e[2], dict) else str(e[2]) for e in cw.events()]
        if not any("/status/500?" + REDACTED_QUERY in m for m in lines):
            errs.append("no access line with the redacted query: %r" % lines[:3])

        # file sink, console lines and every stderr line (debug)
        with open(ctx.path("spans.jsonl")) as f:
            text = f.read()
        errs += leaks("traces file", text)
        if REDACTED_QUERY not in text:
            errs.append("traces file lacks the redacted query")
        err = srv.proc.stderr()
        errs += leaks("stderr", err)
        if "span GET /status/500?" + REDACTED_QUERY not in err:
            errs.append("console line of the 500 missing or not redacted")
        for path in glob.glob(os.path.join(spool, "*")):
            with open(path, "rb") as f:
                errs += leaks(path, f.read())
        if errs:
            raise AssertionError("; ".join(errs[:12]))


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers 400 with every request header and the body echoed, as some
    proxies and back ends do in their error pages."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = ("".join("%s: %s\n" % kv for kv in self.headers.items())).encode() + body[:200]
        self.server.hits += 1
        self.send_response(400)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def serve(server_cls, handler, ctx, wrap=None):
    srv = server_cls(("127.0.0.1", 0), handler)
    srv.hits = 0
    if wrap:
        srv.socket = wrap(srv.socket)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()

    def stop():
        srv.shutdown()
        srv.server_close()
    ctx.defer(stop)
    return srv


class TServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def test_secrets_not_in_error_messages():
    """Back ends answering 400 with our request headers echoed, and bad
    settings echoing URLs: every message is there, no secret in any."""
    with Ctx("test_secrets_errors", receiver=False, allow_stderr=True) as ctx:
        echo = serve(TServer, EchoHandler, ctx)
        url = "http://127.0.0.1:%d" % echo.server_address[1]
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url,
               "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=%s,authorization=Bearer%%20%s" % (
                   OTLP_KEY, HC_KEY),
               "ROLLBAR_ACCESS_TOKEN": RB_TOKEN, "ROLLBAR_ENDPOINT": url + "/item/",
               "CRUDDUR_CLOUDWATCH_LOG_GROUP": "/it/secrets", "AWS_REGION": REGION,
               "AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
               "AWS_SESSION_TOKEN": AWS_SESSION, "AWS_ENDPOINT_URL": url,
               "CRUDDUR_LOG": "debug", "CRUDDUR_SPOOL_DIR": ctx.mkdir("spool"),
               "OTEL_BSP_SCHEDULE_DELAY": "50"}
        srv = ctx.start_cserver("rw", extra_env=env)
        with Conn(srv.port) as c:
            c.request("GET", "/status/500?token=" + QV[0])
        deadline = time.monotonic() + 15
        while echo.hits < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        srv.stop()
        err = srv.proc.stderr()
        errs = leaks("stderr (HTTP errors)", err)
        for what in ("OTLP export", "Rollbar", "CloudWatch"):
            if not any(what in line and "400" in line for line in err.splitlines()):
                errs.append("no %s HTTP 400 message (the test would prove nothing)" % what)
        if "REDACTED" not in err:
            errs.append("no echoed credential was replaced by REDACTED")

        # bad settings: each message printed, none with a secret
        bad = harness.clean_env()
        bad.update({"LD_PRELOAD": harness.LIB, "CRUDDUR_LOG": "debug",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://user:%s@collector" % UPW[0],
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=%s,broken" % OTLP_KEY,
                    "HONEYCOMB_API_KEY": HC_KEY,
                    "ROLLBAR_ACCESS_TOKEN": RB_TOKEN,
                    "ROLLBAR_ENDPOINT": "nope://x/?access_token=%s" % RB_TOKEN,
                    "CRUDDUR_CLOUDWATCH_LOG_GROUP": "/it/x", "AWS_REGION": "bad %s" % AWS_SECRET,
                    "AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
                    "AWS_SESSION_TOKEN": AWS_SESSION,
                    "AWS_XRAY_DAEMON_ADDRESS": "nohost-%s" % HC_KEY,
                    "OTEL_BSP_SCHEDULE_DELAY": "x%s" % OTLP_KEY})
        r = subprocess.run(["/bin/true"], env=bad, capture_output=True, text=True, timeout=30)
        msgs = [l for l in r.stderr.splitlines() if l.startswith("cruddur:")]
        errs += leaks("stderr (bad settings)", r.stderr)
        for must in ("OTEL_EXPORTER_OTLP_ENDPOINT", "ROLLBAR_ENDPOINT", "region",
                     "OTEL_BSP_SCHEDULE_DELAY"):
            if not any(must in m for m in msgs):
                errs.append("no message about %s: %r" % (must, msgs))
        if r.returncode != 0:
            errs.append("/bin/true exit %d" % r.returncode)

        # no curl verbose anywhere (it would print our request headers)
        for path in glob.glob(os.path.join(harness.REPO, "export", "*.c")) + glob.glob(
                os.path.join(harness.REPO, "preload", "*.c")):
            with open(path) as f:
                if "CURLOPT_VERBOSE" in f.read():
                    errs.append("%s sets CURLOPT_VERBOSE" % path)
        if errs:
            raise AssertionError("; ".join(errs[:12]))


class OkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.hits += 1
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_tls_verification_stays_on():
    """An HTTPS back end with a self-signed certificate gets nothing from
    OTLP, Rollbar or CloudWatch by default; with the certificate given as
    OTEL_EXPORTER_OTLP_CERTIFICATE, OTLP delivers (so the server works)."""
    harness.need_lib()
    with Ctx("test_tls_verify", receiver=False, allow_stderr=True) as ctx:
        cert, key = ctx.path("cert.pem"), ctx.path("key.pem")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "1", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise AssertionError("openssl: %s" % r.stderr[-300:])
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)

        def wrap(sock):
            return tls.wrap_socket(sock, server_side=True)

        hs = serve(TServer, OkHandler, ctx, wrap=wrap)
        url = "https://127.0.0.1:%d" % hs.server_address[1]
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "ROLLBAR_ACCESS_TOKEN": RB_TOKEN,
               "ROLLBAR_ENDPOINT": url + "/api/1/item/", "CRUDDUR_CLOUDWATCH_LOG_GROUP": "/it/t",
               "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
               "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_ENDPOINT_URL": url,
               "OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_BSP_EXPORT_TIMEOUT": "3000",
               "CRUDDUR_SPOOL_DIR": ctx.mkdir("spool")}
        srv = ctx.start_cserver("rw", extra_env=env)
        with Conn(srv.port) as c:
            c.request("GET", "/status/500")
        time.sleep(2.0)
        srv.stop()
        if hs.hits:
            raise AssertionError("%d requests delivered to a self-signed HTTPS server" % hs.hits)
        err = srv.proc.stderr()
        if "OTLP" not in err or "failed" not in err:
            raise AssertionError("no failure reported: %r" % err[-500:])

        # positive control: the CA given, OTLP goes through
        srv = ctx.start_cserver("rw", extra_env=dict(env, OTEL_EXPORTER_OTLP_CERTIFICATE=cert,
                                                     ROLLBAR_ACCESS_TOKEN=None,
                                                     CRUDDUR_CLOUDWATCH_LOG_GROUP=None))
        with Conn(srv.port) as c:
            c.request("GET", "/ok")
        deadline = time.monotonic() + 10
        while not hs.hits and time.monotonic() < deadline:
            time.sleep(0.1)
        srv.stop()
        if not hs.hits:
            raise AssertionError("nothing delivered even with OTEL_EXPORTER_OTLP_CERTIFICATE: %s"
                                 % srv.proc.stderr()[-500:])


def test_secrets_not_in_crash_spool():
    """A crash with secrets in flight: the crash report and the spans file
    hold none (0600 files in a 0700 directory), and neither do the items
    and spans the next start ships from them."""
    harness.need_lib()
    crashsrv = os.path.join(os.path.dirname(harness.LIB), "crash", "crashsrv")
    if not os.path.exists(crashsrv):
        raise AssertionError("%s not built (make crash-progs)" % crashsrv)
    with Ctx("test_secrets_crash", allow_stderr=True) as ctx:
        rb = RollbarReceiver(token=RB_TOKEN).start()
        ctx.defer(rb.stop)
        spool = os.path.join(ctx.tmp, "spool")
        env = harness.clean_env()
        env.update({"LD_PRELOAD": harness.LIB, "OTEL_EXPORTER_OTLP_ENDPOINT": ctx.receiver.endpoint,
                    "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=%s" % OTLP_KEY,
                    "ROLLBAR_ACCESS_TOKEN": RB_TOKEN, "ROLLBAR_ENDPOINT": rb.endpoint,
                    "OTEL_SERVICE_NAME": "secret-crash", "CRUDDUR_SPOOL_DIR": spool,
                    "OTEL_BSP_SCHEDULE_DELAY": "600000", "CRUDDUR_LOG": "debug",
                    "CRUDDUR_REDACT": "ticket"})
        pf = ctx.path("port")
        p = ctx.start([crashsrv, pf], env=env, name="crashsrv")
        port = harness.wait_portfile(pf, 15, p)
        with Conn(port) as c:
            c.request("GET", "/q?" + SECRET_QUERY, headers=[("Authorization", AUTH)])
            c.request("GET", "http://alice:%s@127.0.0.1/abs?passwd=%s" % (UPW[0], QV[7]))
        try:
            with Conn(port) as c:
                c.request("GET", "/crash?token=%s" % QV[8], headers=[("Cookie", COOKIE)])
        except (harness.ConnectionClosed, OSError):
            pass
        rc = p.wait(20)
        if rc != -signal.SIGSEGV:
            raise AssertionError("crashsrv rc %s" % rc)
        errs = []
        files = sorted(os.listdir(spool))
        kinds = sorted(f.split("-")[0] for f in files)
        if kinds != ["crash", "spans"]:
            errs.append("spool holds %s, want a crash report and a spans file" % files)
        if stat.S_IMODE(os.stat(spool).st_mode) != 0o700:
            errs.append("spool dir mode %o" % stat.S_IMODE(os.stat(spool).st_mode))
        for f in files:
            path = os.path.join(spool, f)
            if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
                errs.append("%s mode %o" % (f, stat.S_IMODE(os.stat(path).st_mode)))
            with open(path, "rb") as fh:
                data = fh.read()
            errs += leaks(f, data)
            if f.startswith("spans-") and REDACTED_QUERY.encode() not in data:
                errs.append("spans file lacks the redacted query")
        errs += leaks("crashsrv stderr", p.stderr())

        # the next start ships both
        os.unlink(pf)
        p2 = ctx.start([crashsrv, pf], env=dict(env, OTEL_BSP_SCHEDULE_DELAY="50"),
                       name="crashsrv again")
        port = harness.wait_portfile(pf, 15, p2)
        with Conn(port) as c:
            c.request("GET", "/next")
        ctx.receiver.wait_for_spans(3, timeout=15)
        rb.wait_for_items(1, timeout=15)
        p2.stop()
        spans = ctx.receiver.spans()
        if sorted(s["attributes"].get("url.path") for s in spans) != ["/abs", "/next", "/q"]:
            errs.append("shipped spans: %r" % [s["attributes"].get("url.path") for s in spans])
        errs += leaks("shipped spans", json.dumps(
            [{k: v for k, v in sp.items() if k != "request_headers"} for sp in spans],
            default=str))
        for r in rb.requests():
            errs += leaks("Rollbar crash item", r["raw"])
        items = rb.items()
        if len(items) != 1 or items[0]["data"].get("request", {}).get("url") != "/crash":
            errs.append("crash item request %r" % [i["data"].get("request") for i in items])
        errs += leaks("crashsrv again stderr", p2.stderr())
        if errs:
            raise AssertionError("; ".join(errs[:12]))
