"""CRUDDUR_CAPTURE_STDIO: the app's own stdout/stderr lines reach the
CloudWatch Logs stand-in as log events, line by line, each tagged with the
trace of the request the writing thread was serving; the app's output
itself is byte-for-byte what it wrote; our own `cruddur:` lines are never
captured."""

import json
import re
import time

import harness
from harness import Conn, Ctx, timeout
from test_cloudwatch import GROUP, check_protocol, cw_env, need_shim, parse_text, receiver

TRACE_RE = re.compile(r"^(.*) trace_id=([0-9a-f]{32}) span_id=([0-9a-f]{16})$")


def c_lines(k):
    """What cserver's /log?id=k writes, as (fd, line)."""
    return [(1, "req %d printf 1" % k), (1, "req %d fprintf-out" % k), (2, "req %d fprintf-err" % k),
            (1, "req %d puts" % k), (1, "req %d fputs" % k), (1, "req %d fwrite" % k),
            (1, "req %d part-a part-b c" % k), (2, "req %d write" % k), (2, "req %d write2" % k)]


def app_events(rx, want, timeout_s=15):
    """Events that are not access lines (those match TEXT_RE), waiting for
    want of them."""
    deadline = time.monotonic() + timeout_s
    while True:
        evs = [e for _, _, e in rx.events() if not e["message"].startswith("20")
               or " trace_id=" not in e["message"] or not _is_access(e["message"])]
        if len(evs) >= want or time.monotonic() > deadline:
            return evs
        time.sleep(0.1)


def _is_access(msg):
    try:
        parse_text(msg)
        return True
    except AssertionError:
        return False


def split_text(msg):
    m = TRACE_RE.match(msg)
    return (m.group(1), m.group(2), m.group(3)) if m else (msg, None, None)


@timeout(90)
def test_stdio_capture_c_stdio_and_write():
    """cserver (thread per connection and epoll) writes with printf,
    fprintf, puts, fputs, fwrite, putchar/putc/fputc pieces, write and
    writev while serving: every line is one event, exactly once, with the
    request's trace and span id; nothing else is captured; stdout and
    stderr hold exactly what the app wrote."""
    need_shim()
    for mode in ("rw", "epoll"):
        with Ctx("test_stdio_capture_c_" + mode, allow_stderr=True) as ctx:
            rx = receiver(ctx)
            env = cw_env(rx, CRUDDUR_CAPTURE_STDIO="1", CRUDDUR_LOG="debug")
            srv = ctx.start_cserver(mode, extra_env=env)
            ids = list(range(1, 9))
            with Conn(srv.port) as c:
                exs = [c.request("GET", "/log?id=%d" % k) for k in ids]
            spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
            want = {}
            for k, ex in zip(ids, exs):
                sp = spans[ex.rid]
                for fd, line in c_lines(k):
                    want[line] = (sp["trace_id"], sp["span_id"])
            evs = app_events(rx, len(want))
            time.sleep(1.0)
            evs = app_events(rx, len(want), 0)
            got = {}
            errs = []
            for e in evs:
                text, tid, sid = split_text(e["message"])
                if "cruddur:" in text:
                    errs.append("our own line captured: %r" % text)
                    continue
                if text in got:
                    errs.append("line twice: %r" % text)
                got[text] = (tid, sid)
            for line, ids_ in want.items():
                if line not in got:
                    errs.append("missing %r" % line)
                elif got[line] != ids_:
                    errs.append("%r tagged %s, want %s" % (line, got[line], ids_))
            extra = set(got) - set(want)
            if extra:
                errs.append("unexpected events %s" % sorted(extra)[:5])
            if errs:
                raise AssertionError("; ".join(errs[:10]))
            check_protocol(rx)
            _check_passthrough(srv.proc, ids)


def _check_passthrough(proc, ids):
    """The app's stdout and stderr files hold exactly its lines (requests
    are sent one after the other, so in request order)."""
    deadline = time.monotonic() + 5
    want_out = "".join("%s\n" % l for k in ids for fd, l in c_lines(k) if fd == 1)
    while time.monotonic() < deadline and proc.stdout() != want_out:
        time.sleep(0.1)
    if proc.stdout() != want_out:
        raise AssertionError("stdout changed:\n%r\nwant\n%r" % (proc.stdout()[:400], want_out[:400]))
    err_lines = [l for l in proc.stderr().splitlines() if not l.startswith("cruddur:")]
    want_err = ["%s" % l for k in ids for fd, l in c_lines(k) if fd == 2]
    if err_lines != want_err:
        raise AssertionError("stderr changed: %r want %r" % (err_lines[:6], want_err[:6]))


PY_APP = r"""
import http.server, sys, time
sys.stdout.write("py ready\n")
sys.stdout.write("py tail-no-newline")   # completed by nothing: shipped on timeout
sys.stdout.flush()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        k = self.path.split("id=")[-1]
        print("py %s print" % k, flush=True)
        sys.stdout.write("py %s multi-a\npy %s multi-b\n" % (k, k)); sys.stdout.flush()
        sys.stderr.write("py %s err-part" % k); sys.stderr.flush()
        sys.stderr.write(" end\r\n"); sys.stderr.flush()
        body = b"ok\n"
        self.send_response(200)   # writes the access line to stderr
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
open(sys.argv[2], "w").write(str(srv.server_address[1]))
srv.serve_forever()
"""


def start_py_app(ctx, env):
    path = ctx.path("app.py")
    with open(path, "w") as f:
        f.write(PY_APP)
    pf = ctx.path("app.port")
    p = ctx.start([harness.PYTHON, path, "0", pf], extra_env=env, name="pylog")
    port = harness.wait_portfile(pf, 15, p)
    return harness.Server(p, port, kind="pylog")


def _py_want(k):
    return [(1, "py %d print" % k), (1, "py %d multi-a" % k), (1, "py %d multi-b" % k),
            (2, "py %d err-part end" % k)]


@timeout(90)
def test_stdio_capture_python_text_and_json():
    """A Python server (write(2) underneath): lines split from one write,
    a line written in two pieces, \\r\\n endings, the startup line (no
    trace), a partial line never completed (shipped after the timeout
    while the app runs), http.server's own access line on stderr (tagged);
    text and JSON formats."""
    need_shim()
    for fmt in ("text", "json"):
        with Ctx("test_stdio_capture_python_" + fmt) as ctx:
            rx = receiver(ctx)
            env = cw_env(rx, CRUDDUR_CAPTURE_STDIO="true", CRUDDUR_LOG_FORMAT=fmt,
                         PYTHONUNBUFFERED="1")
            srv = start_py_app(ctx, env)
            # The unfinished line is shipped after the partial-line timeout,
            # while the app runs (and before a request continues it).
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    "py tail-no-newline" in e["message"] for _, _, e in rx.events()):
                time.sleep(0.05)
            ids = [1, 2, 3]
            with Conn(srv.port) as c:
                exs = [c.request("GET", "/log?id=%d" % k) for k in ids]
            spans = ctx.expect_one_span_per_request(exs, pid=srv.pid)
            want = {"py ready": (1, None, None), "py tail-no-newline": (1, None, None)}
            for k, ex in zip(ids, exs):
                sp = spans[ex.rid]
                for fd, line in _py_want(k):
                    want[line] = (fd, sp["trace_id"], sp["span_id"])
            n_access = len(ids)  # http.server's own lines
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                evs = [e for _, _, e in rx.events()]
                if len(evs) >= len(want) + n_access + len(ids):
                    break
                time.sleep(0.1)
            time.sleep(0.5)
            got, errs, access = {}, [], 0
            for _, _, e in rx.events():
                msg = e["message"]
                if fmt == "json":
                    o = json.loads(msg)
                    if "stream" not in o:
                        continue  # our access line
                    text, fd = o["message"], {"stdout": 1, "stderr": 2}[o["stream"]]
                    tid, sid = o["trace_id"], o["span_id"]
                    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["timestamp"]):
                        errs.append("timestamp %r" % o["timestamp"])
                else:
                    if _is_access(msg):
                        continue
                    text, tid, sid = split_text(msg)
                    fd = None
                if '"GET /log?id=' in text:
                    access += 1
                    k = int(text.split("id=")[1].split()[0])
                    sp = spans[exs[ids.index(k)].rid]
                    if (tid, sid) != (sp["trace_id"], sp["span_id"]):
                        errs.append("access line %r tagged %s" % (text, (tid, sid)))
                    continue
                if text in got:
                    errs.append("twice: %r" % text)
                got[text] = (fd, tid, sid)
            for line, (fd, tid, sid) in want.items():
                g = got.get(line)
                if g is None:
                    errs.append("missing %r" % line)
                elif g[1:] != (tid, sid) or (fmt == "json" and g[0] != fd):
                    errs.append("%r: got %s want %s" % (line, g, (fd, tid, sid)))
            if set(got) - set(want):
                errs.append("unexpected %s" % sorted(set(got) - set(want))[:5])
            if access != len(ids):
                errs.append("%d http.server access lines, want %d" % (access, len(ids)))
            if errs:
                raise AssertionError("; ".join(errs[:10]))
            check_protocol(rx)


@timeout(60)
def test_stdio_capture_settings():
    """Capture off by default; a bad value is reported once and the app
    runs; CRUDDUR_CAPTURE_STDIO without a log group is reported and
    ignored."""
    need_shim()
    with Ctx("test_stdio_capture_off") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=cw_env(rx))
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/log?id=7")]
        ctx.expect_one_span_per_request(exs, pid=srv.pid)
        rx.wait_for_events(1, timeout=10)
        time.sleep(1.0)
        if len(rx.events()) != 1 or not _is_access(rx.events()[0][2]["message"]):
            raise AssertionError("capture off, yet events %s" % [e[2]["message"] for e in rx.events()])
    for val, extra, want in (("maybe", {}, "CRUDDUR_CAPTURE_STDIO=maybe"),
                             ("1", {"CRUDDUR_CLOUDWATCH_LOG_GROUP": None}, "CRUDDUR_CLOUDWATCH_LOG_GROUP")):
        with Ctx("test_stdio_capture_bad_" + val, allow_stderr=True) as ctx:
            rx = receiver(ctx)
            srv = ctx.start_cserver("rw", extra_env=cw_env(rx, CRUDDUR_CAPTURE_STDIO=val, **extra))
            with Conn(srv.port) as c:
                exs = [c.request("GET", "/log?id=%d" % k) for k in (1, 2)]
            harness.check_responses(exs, [(200, None), (200, None)])
            time.sleep(1.0)
            msgs = ctx.cruddur_messages()
            if len([m for m in msgs if want in m]) != 1:
                raise AssertionError("messages %s, want one about %s" % (msgs, want))
            if any(not _is_access(e[2]["message"]) for e in rx.events()):
                raise AssertionError("captured although disabled")
