"""Integration tests: scripts/cruddur-view, the trace viewer (issue 9).

Real JSONL from real servers under the shim, all writing one file (the
`file` exporter): a C server calling a downstream with libcurl
(server -> client -> downstream server, across two processes), the same
with a downstream answering 500, a transport failure, a CPython server that
waits, calls, waits (so its client span sits in the middle of the trace),
direct 500 and 404 answers, and a request carrying a traceparent from
elsewhere (an orphan). The expected waterfall is worked out here from the
file itself, independently of the viewer, and compared line by line; the
HTML page is loaded in headless Chromium and its DOM checked after the
script ran.
"""

import html.parser
import json
import os
import re
import shutil
import subprocess
import time

import harness
from harness import Conn, Ctx, Req, timeout

VIEW = os.path.join(harness.REPO, "scripts", "cruddur-view")
CURLSRV = os.path.join(harness.BUILD, "servers", "curlsrv")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
RED, YELLOW = "\x1b[31m", "\x1b[33m"

# A downstream: /slow waits, /boom is a 500, /nope a 404. Exits cleanly on
# SIGTERM so the library flushes its queue at exit.
DOWN_SCRIPT = r"""
import http.server, os, signal, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        code = 200
        if self.path.startswith("/slow"):
            time.sleep(0.03)
        elif self.path.startswith("/boom"):
            code = 500
        elif self.path.startswith("/nope"):
            code = 404
        self.send_response(code)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"hi\n")
    def log_message(self, *a):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
"""

# An upstream that waits 30 ms, calls the downstream's /slow (30 ms), waits
# 30 ms: its client span is the middle third of the trace.
MID_SCRIPT = r"""
import http.server, os, signal, sys, time, urllib.request
DOWN = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(0.03)
        with urllib.request.urlopen("http://127.0.0.1:%s/slow" % DOWN) as r:
            r.read()
        time.sleep(0.03)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
"""

N_SPANS = 15  # see make_traces


# ------------------------------------------------------------------ producing a real file

def _read_spans(path):
    """Our own minimal reading of the OTLP/JSON lines (not the viewer's)."""
    out = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.strip():
            continue
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            res = {a["key"]: list(a["value"].values())[0] for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    attrs = {}
                    for a in sp.get("attributes", []):
                        (k, v), = a["value"].items()
                        attrs[a["key"]] = int(v) if k == "intValue" else v
                    out.append({"trace": sp["traceId"], "id": sp["spanId"],
                                "parent": sp.get("parentSpanId", ""), "name": sp["name"],
                                "kind": sp["kind"], "start": int(sp["startTimeUnixNano"]),
                                "end": int(sp["endTimeUnixNano"]), "attrs": attrs,
                                "status": sp.get("status", {}).get("code", 0),
                                "service": res["service.name"]})
    return out


def _start_py(ctx, name, script, args=()):
    path = ctx.path(name + ".py")
    with open(path, "w") as f:
        f.write(script)
    pf = ctx.path(name + ".port")
    p = ctx.start([harness.PYTHON, path, pf] + list(args), env=ctx.env(_FILE_ENV(ctx), service=name),
                  name=name)
    return harness.wait_portfile(pf, 15, p), p


def _FILE_ENV(ctx):
    # Only the file exporter, every process appending to the same file.
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": None, "OTEL_TRACES_EXPORTER": "file",
            "CRUDDUR_FILE": ctx.path("traces.jsonl")}


def make_traces(ctx):
    """Run the servers, send the requests, stop everything (flushing), and
    return (path, spans as read by _read_spans)."""
    if not harness.SHIM:
        raise harness.Skip("--no-shim: no spans to view")
    if not os.path.exists(CURLSRV):
        raise AssertionError("%s not built" % CURLSRV)
    down, _ = _start_py(ctx, "down", DOWN_SCRIPT)
    mid, _ = _start_py(ctx, "mid", MID_SCRIPT, [str(down)])
    ups = {}
    for svc, path in (("up", "/slow"), ("up2", "/boom")):
        pf = ctx.path(svc + ".port")
        p = ctx.start([CURLSRV, "--port", "0", "--portfile", pf, "--downstream",
                       "http://127.0.0.1:%d%s" % (down, path)],
                      env=ctx.env(_FILE_ENV(ctx), service=svc), name=svc)
        ups[svc] = harness.wait_portfile(pf, 10, p)

    def get(port, target, **kw):
        with Conn(port) as c:
            ex = c.request(Req("GET", target, **kw))
        time.sleep(0.005)  # distinct trace start times: a defined order
        return ex.resp.status

    assert get(ups["up"], "/call") == 200        # 3 spans: up server, client, down /slow
    assert get(ups["up2"], "/call") == 200       # 3 spans, client and down server 500
    assert get(ups["up"], "/fail") == 502        # 2 spans: server 502, failed client
    assert get(down, "/boom") == 500             # 1 span
    assert get(down, "/orphan", traceparent=harness.random_traceparent()) == 200  # 1, orphan
    assert get(ups["up"], "/plain") == 200       # 1 span
    assert get(down, "/nope") == 404             # 1 span
    assert get(mid, "/mid") == 200               # 3 spans: mid server, client, down /slow
    path = ctx.path("traces.jsonl")
    deadline = time.monotonic() + 15
    while len(_read_spans(path)) < N_SPANS and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in ctx._procs:
        p.stop()
    spans = _read_spans(path)
    assert len(spans) == N_SPANS, "expected %d spans in %s, got %d" % (N_SPANS, path, len(spans))
    return path, spans


# ------------------------------------------------------------------ the expected waterfall

def expected_traces(spans):
    """[(trace_id, start, end, [(span, depth)...] in display order)] sorted by
    trace start: children under their parent by start time, a span whose
    parent is not in the file a root."""
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s["trace"], []).append(s)
    out = []
    for tid, lst in by_trace.items():
        ids = {s["id"] for s in lst}
        kids = {}
        for s in lst:
            kids.setdefault(s["parent"] if s["parent"] in ids else None, []).append(s)
        for v in kids.values():
            v.sort(key=lambda s: s["start"])
        order = []

        def walk(s, d):
            order.append((s, d))
            for k in kids.get(s["id"], []):
                walk(k, d + 1)
        for r in kids[None]:
            walk(r, 0)
        assert len(order) == len(lst)
        out.append((tid, min(s["start"] for s in lst), max(s["end"] for s in lst), order))
    out.sort(key=lambda t: t[1])
    return out


def exp_label(s):
    a = s["attrs"]
    if s["kind"] == 3:
        return "GET " + a["url.full"][len("http://"):]
    return "GET " + a["url.path"]


def is_err(s):
    return s["status"] == 2 or a_code(s) >= 500


def a_code(s):
    return s["attrs"].get("http.response.status_code", 0)


SPAN_RE = re.compile(r"^(?P<prefix>(?:[│ ]  |[├└]─ )*)(?P<label>\S.*?) +(?P<kind>server|client) +"
                     r"(?P<code>\S+) \|(?P<bar>[█ ]+)\| +\+(?P<off>[\d.]+)ms +(?P<dur>[\d.]+)ms"
                     r"(?:  (?P<extra>.*))?$")
HEAD_RE = re.compile(r"^trace (?P<tid>[0-9a-f]{32})  (?P<root>.+?)  (?P<dur>[\d.]+)ms  "
                     r"(?P<n>\d+) spans?  (?P<services>.+?)  \d{4}-\d\d-\d\d ")


def run_view(args, env_extra=None, stdin=None):
    env = harness.clean_env()
    for k in ("NO_COLOR", "COLUMNS", "TERM"):
        env.pop(k, None)
    env.update(env_extra or {})
    r = subprocess.run([VIEW] + list(args), input=stdin, capture_output=True, env=env, timeout=60)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def check_waterfall(out, exp, width=None, full_labels=True):
    """Compare the terminal output with the expected traces, line by line."""
    lines = out.rstrip("\n").split("\n")
    i = 0
    for n, (tid, t0, t1, order) in enumerate(exp):
        if n:
            assert lines[i] == "", (i, lines[i])
            i += 1
        if width:
            assert len(lines[i]) <= width, lines[i]
        if full_labels:
            h = HEAD_RE.match(lines[i])
            assert h, "not a trace header: %r" % lines[i]
            assert h["tid"] == tid and int(h["n"]) == len(order), (lines[i], tid, len(order))
            assert abs(float(h["dur"]) - (t1 - t0) / 1e6) < 0.0015, (lines[i], t1 - t0)
            root = [s for s, d in order if d == 0 and not s["parent"]] or [order[0][0]]
            assert h["root"] == exp_label(root[0]), (lines[i], root[0])
            assert h["services"] == ", ".join(sorted({s["service"] for s, _ in order},
                                                     key=lambda v: min(x["start"] for x, _ in order
                                                                       if x["service"] == v))), lines[i]
        else:  # a narrow header may be cut anywhere after the id
            assert lines[i].startswith("trace " + tid), (lines[i], tid)
        i += 1
        rng = max(t1 - t0, 1)
        for s, depth in order:
            line = lines[i]
            m = SPAN_RE.match(line)
            assert m, "not a span line: %r" % line
            assert len(m["prefix"]) == 3 * depth, (line, depth)
            if depth:
                assert m["prefix"][-3:] in ("├─ ", "└─ "), line
            if full_labels:
                assert m["label"] == exp_label(s), (line, exp_label(s))
            else:
                assert exp_label(s).startswith(m["label"].rstrip("…")), (line, exp_label(s))
            assert m["kind"] == {2: "server", 3: "client"}[s["kind"]], line
            assert m["code"] == (str(a_code(s)) if a_code(s) else "ERR"), (line, s["attrs"])
            assert abs(float(m["off"]) - (s["start"] - t0) / 1e6) < 0.0015, (line, s["start"] - t0)
            assert abs(float(m["dur"]) - (s["end"] - s["start"]) / 1e6) < 0.0015, line
            # The bar: where it starts and ends is proportional to the
            # span's offset and end within the trace (one cell of rounding).
            bar = m["bar"]
            bw = len(bar)
            c0 = len(bar) - len(bar.lstrip(" "))
            c1 = len(bar.rstrip(" "))
            assert c1 > c0 and set(bar[c0:c1]) == {"█"}, line
            assert abs(c0 - (s["start"] - t0) * bw / rng) <= 1.0, (line, c0, (s["start"] - t0) / rng)
            assert abs(c1 - (s["end"] - t0) * bw / rng) <= 1.0, (line, c1, (s["end"] - t0) / rng)
            if m["extra"] is not None and full_labels:
                assert m["extra"].startswith(s["service"]), line
                if s["parent"] and depth == 0:
                    assert "orphan" in m["extra"], line
            if width:
                assert len(line) <= width, (len(line), line)
            i += 1
    assert i == len(lines), "extra lines: %r" % lines[i:]


# ------------------------------------------------------------------ tests

@timeout(120)
def test_viewer_terminal():
    """The waterfall on a real multi-process file: order, nesting, bars,
    orphans, colours only when asked (or on a TTY, not with NO_COLOR),
    widths, filters, several files and stdin."""
    with Ctx("test_viewer_terminal", receiver=False) as ctx:
        path, spans = make_traces(ctx)
        exp = expected_traces(spans)
        assert len(exp) == 8, [(t[0], len(t[3])) for t in exp]
        # The file really has what the test is about.
        assert any(len({s["service"] for s, _ in t[3]}) == 2 and max(d for _, d in t[3]) == 2
                   for t in exp), "no server -> client -> server trace across processes"
        assert sum(1 for s in spans if s["parent"] and s["parent"] not in {x["id"] for x in spans}) == 1
        mid = [t for t in exp if t[3][0][0]["service"] == "mid"][0]
        mid_client = [s for s, d in mid[3] if s["kind"] == 3][0]
        frac = (mid_client["start"] - mid[1]) / (mid[2] - mid[1])
        assert 0.15 < frac < 0.6, frac  # waits 30 ms before the call: mid-trace

        rc, out, err = run_view(["--width", "160", path])
        assert rc == 0 and err == "", (rc, err)
        assert "\x1b" not in out  # not a TTY: no colour
        check_waterfall(out, exp, width=160)
        # The mid trace's client bar starts about a third of the way in.
        line = [ln for ln in out.splitlines() if "client" in ln and "mid" in ln][0]
        bar = SPAN_RE.match(line)["bar"]
        assert 0.15 < (len(bar) - len(bar.lstrip())) / len(bar) < 0.6, line

        # Colours when asked: the same text plus escapes; error spans red,
        # a 5xx code red, a 4xx code yellow, no red elsewhere.
        rc, cout, _ = run_view(["--width", "160", "--color=always", path])
        assert rc == 0 and ANSI_RE.sub("", cout) == out
        plain_lines, col_lines = out.splitlines(), cout.splitlines()
        for pl, cl in zip(plain_lines, col_lines):
            m = SPAN_RE.match(pl)
            if not m:
                continue
            code = m["code"]
            red = m["label"] + "\x1b[0m"
            if code.startswith("5") or code == "ERR":
                assert RED + code.rjust(3) in cl, cl
            elif code.startswith("4"):
                assert YELLOW + code in cl, cl
            else:
                assert RED + code not in cl and YELLOW + code not in cl, cl
            s = [x for t in exp for x, _ in t[3]
                 if x["service"] == m["extra"].split()[0] and exp_label(x) == m["label"]
                 and abs((x["end"] - x["start"]) / 1e6 - float(m["dur"])) < 0.0015][0]
            assert (RED + red in cl) == (s["status"] == 2), (cl, s["status"])
            assert (RED + "█" in cl) == (s["status"] == 2), cl
        # --color=always beats NO_COLOR; never/NO_COLOR give none.
        assert run_view(["--color=always", path], {"NO_COLOR": "1"})[1] != run_view([path])[1]
        assert "\x1b" not in run_view(["--color=never", path])[1]

        # On a terminal: colour and the terminal's width, unless NO_COLOR.
        tty_out = _run_in_pty([VIEW, path], cols=100)
        assert RED in tty_out, tty_out[:500]
        check_waterfall(ANSI_RE.sub("", tty_out), exp, width=100, full_labels=False)
        tty_nc = _run_in_pty([VIEW, path], cols=100, env_extra={"NO_COLOR": "1"})
        assert "\x1b" not in tty_nc and tty_nc == ANSI_RE.sub("", tty_out)

        # Narrow: nothing wider than asked (the header is cut too), still
        # proportional bars.
        rc, nout, _ = run_view(["--width", "72", path])
        check_waterfall(nout, exp, width=72, full_labels=False)
        assert all(len(ln) <= 72 for ln in nout.splitlines())

        # ASCII glyphs.
        rc, aout, _ = run_view(["--width", "160", "--ascii", path])
        assert rc == 0 and not any(ord(c) > 127 for c in aout)
        assert "`- " in aout and "#" in aout

        # Filters.
        tids = [t[0] for t in exp]
        rc, o, _ = run_view(["--width", "160", "--trace", tids[2][:12], path])
        assert rc == 0
        check_waterfall(o, [exp[2]])
        rc, o, _ = run_view(["--width", "160", "--limit", "2", path])
        check_waterfall(o, exp[-2:])
        rc, o, _ = run_view(["--width", "160", "--errors", path])
        errs = [t for t in exp if any(is_err(s) for s, _ in t[3])]
        assert len(errs) == 3, errs  # up2's 500 chain, the failed call, the direct 500
        check_waterfall(o, errs)
        rc, o, e = run_view(["--trace", "f" * 32, path])
        assert rc == 1 and o == "" and "no trace matches" in e, (rc, o, e)

        # Several files (one per process) merge into the same traces; stdin.
        by_svc = {}
        with open(path) as f:
            for line in f:
                svc = json.loads(line)["resourceSpans"][0]["resource"]["attributes"][0]["value"]
                by_svc.setdefault(svc["stringValue"], []).append(line)
        assert len(by_svc) == 4, by_svc.keys()
        parts = []
        for svc, lines in by_svc.items():
            p = ctx.path("part-%s.jsonl" % svc)
            with open(p, "w") as f:
                f.writelines(lines)
            parts.append(p)
        rc, o, e = run_view(["--width", "160"] + parts)
        assert rc == 0 and e == "" and o == out, (e, o)
        with open(path, "rb") as f:
            rc, o, e = run_view(["--width", "160", "-"], stdin=f.read())
        assert rc == 0 and o == out, e
        # The same file twice: no duplicated spans.
        assert run_view(["--width", "160", path, path])[1] == out


def _run_in_pty(argv, cols, env_extra=None):
    import fcntl
    import pty
    import struct
    import termios
    env = harness.clean_env()
    for k in ("NO_COLOR", "COLUMNS"):
        env.pop(k, None)
    env["TERM"] = "xterm"
    env.update(env_extra or {})
    m, s = pty.openpty()
    fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    attrs = termios.tcgetattr(s)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as is
    termios.tcsetattr(s, termios.TCSANOW, attrs)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=s, stderr=subprocess.PIPE, env=env)
    os.close(s)
    buf = b""
    while True:
        try:
            d = os.read(m, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not d:
            break
        buf += d
    os.close(m)
    p.wait(30)
    assert p.returncode == 0, (p.returncode, p.stderr.read())
    return buf.decode("utf-8")


@timeout(90)
def test_viewer_bad_lines():
    """Lines that are not span JSON are skipped and counted once at the
    end; the good ones render as if alone; no spans at all: exit 1, no
    traceback."""
    with Ctx("test_viewer_bad_lines", receiver=False) as ctx:
        path, spans = make_traces(ctx)
        rc, good, err = run_view(["--width", "160", path])
        assert rc == 0 and err == ""
        with open(path) as f:
            real = f.read().splitlines()
        bad = ["not json at all", '{"foo": 1}', "[1, 2, 3]", real[0][:len(real[0]) // 2],
               '{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "no ids"}]}]}]}',
               "\x00\xff garbage", '"a string"']
        mixed = ctx.path("mixed.jsonl")
        with open(mixed, "w") as f:
            f.write("\n".join([bad[0]] + real[:2] + bad[1:4] + [""] + real[2:] + bad[4:]) + "\n")
        rc, o, e = run_view(["--width", "160", mixed])
        assert rc == 0 and o == good, (rc, e)
        assert e == "cruddur-view: 7 lines skipped (not span JSON)\n", e
        check_waterfall(o, expected_traces(spans))
        # Nothing usable at all.
        junk = ctx.path("junk.jsonl")
        with open(junk, "w") as f:
            f.write("\n".join(bad) + "\n")
        for args in ([junk], ["--html", ctx.path("junk.html"), junk]):
            rc, o, e = run_view(args)
            assert rc != 0 and o == "", (rc, o)
            assert "Traceback" not in e and "no spans found" in e, e
            assert e.count("\n") == 2 and "7 lines skipped (not span JSON)" in e, e
        assert not os.path.exists(ctx.path("junk.html"))
        rc, o, e = run_view([os.devnull])
        assert rc == 1 and "no spans found" in e and "Traceback" not in e, (rc, e)
        rc, o, e = run_view([ctx.path("missing.jsonl")])
        assert rc == 2 and "missing.jsonl" in e and "Traceback" not in e, (rc, e)


class _Dom(html.parser.HTMLParser):
    """Collects, from Chromium's dump of the DOM: span nodes (id, depth,
    enclosing span node, trace section, label, bar style, classes)."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, info or None)
        self.nodes = {}
        self.sections = []
        self.body = {}
        self._text_into = None

    def _enclosing(self, kind):
        for _tag, info in reversed(self.stack):
            if info and info["kind"] == kind:
                return info
        return None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        info = None
        if tag == "body":
            self.body = a
        if tag == "section" and "trace" in cls:
            info = {"kind": "section", "trace_id": a.get("data-trace-id"), "spans": []}
            self.sections.append(info)
        elif tag == "div" and "node" in cls:
            parent = self._enclosing("node")
            sec = self._enclosing("section")
            info = {"kind": "node", "id": a.get("data-span-id"), "depth": int(a.get("data-depth")),
                    "dom_parent": parent["id"] if parent else "", "classes": cls, "label": "",
                    "bar": None, "title": None, "children_classes": None, "toggle": "",
                    "details": ""}
            sec["spans"].append(info["id"])
            self.nodes[info["id"]] = info
        else:
            node = self._enclosing("node")
            if node is not None:
                if tag == "div" and "bar" in cls:
                    node["bar"] = a.get("style", "")
                elif tag == "div" and "row" in cls:
                    node["title"] = a.get("title")
                elif tag == "div" and "children" in cls:
                    node["children_classes"] = cls
                elif tag == "span" and "label" in cls:
                    self._text_into = (node, "label")
                elif tag == "button" and "toggle" in cls:
                    self._text_into = (node, "toggle")
                elif tag == "div" and "details" in cls:
                    info = {"kind": "details", "node": node}
        if tag not in self.VOID:
            self.stack.append((tag, info))

    def handle_endtag(self, tag):
        self._text_into = None
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        if self._text_into:
            node, field = self._text_into
            node[field] += data
        det = self._enclosing("details")
        if det is not None:
            det["node"]["details"] += data + "\n"


def _chromium_dom(ctx, html_path):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise harness.Skip("chromium not installed (scripts/install-deps.sh installs it)")
    r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--no-first-run", "--user-data-dir=" + ctx.mkdir("chromium-profile"),
                        "--dump-dom", "file://" + html_path],
                       capture_output=True, timeout=90, env=dict(harness.clean_env(), HOME=ctx.tmp))
    assert r.returncode == 0, (r.returncode, r.stderr.decode()[-2000:])
    d = _Dom()
    d.feed(r.stdout.decode("utf-8"))
    return d


def _pct(style, prop):
    m = re.search(r"(?:^|;)\s*%s:\s*([\d.]+)%%" % prop, style)
    assert m, (style, prop)
    return float(m.group(1))


@timeout(150)
def test_viewer_html_in_chromium():
    """--html writes one self-contained page; in headless Chromium, after
    its script ran, the DOM has every span once, nested under its parent,
    bars at the right place and size, attributes on hover and click, and
    collapsing works."""
    with Ctx("test_viewer_html_in_chromium", receiver=False) as ctx:
        path, spans = make_traces(ctx)
        exp = expected_traces(spans)
        out = ctx.path("view.html")
        rc, o, e = run_view(["--html", out, path])
        assert rc == 0 and o == "", (rc, o, e)
        with open(out, encoding="utf-8") as f:
            page = f.read()
        # Self-contained: nothing fetched from anywhere.
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), "external reference"
        assert "@import" not in page and "fetch(" not in page and "XMLHttpRequest" not in page
        assert page.count("</html>") == 1

        dom = _chromium_dom(ctx, out)
        assert dom.body.get("data-rendered") == str(len(exp)), dom.body
        assert [s["trace_id"] for s in dom.sections] == [t[0] for t in exp]
        assert len(dom.nodes) == N_SPANS
        for (tid, t0, t1, order), sec in zip(exp, dom.sections):
            assert sec["spans"] == [s["id"] for s, _ in order], (sec["spans"], order)
            rng = max(t1 - t0, 1)
            ids = {s["id"] for s, _ in order}
            for s, depth in order:
                n = dom.nodes[s["id"]]
                assert n["depth"] == depth, (n, depth)
                assert n["dom_parent"] == (s["parent"] if s["parent"] in ids else ""), n
                assert n["label"] == exp_label(s), n
                left, width = _pct(n["bar"], "left"), _pct(n["bar"], "width")
                assert abs(left - 100.0 * (s["start"] - t0) / rng) < 0.01, (n["bar"], s)
                assert abs(width - 100.0 * (s["end"] - s["start"]) / rng) < 0.01, (n["bar"], s)
                assert ("error" in n["classes"]) == (s["status"] == 2), n
                # Hover: every attribute in the row's title; click: the table.
                for k, v in s["attrs"].items():
                    assert "%s = %s" % (k, v) in n["title"], (k, n["title"])
                    assert k in n["details"] and str(v) in n["details"], (k, n["details"])
                assert s["id"] in n["details"]
                has_kids = any(p["parent"] == s["id"] for p, _ in order)
                assert (n["toggle"] == "\u25be") == has_kids, n

        # Interaction: collapse the first span with children, open a client
        # span's details (real clicks, dispatched in the page).
        nested = [s for t in exp for s, d in t[3] if any(p["parent"] == s["id"] for p, _ in t[3])][0]
        client = [s for s in spans if s["kind"] == 3][0]
        script = ("<script>(function(){"
                  "var n=document.querySelector('.node[data-span-id=\"%s\"]');"
                  "n.querySelector('.toggle').click();"
                  "document.querySelector('.node[data-span-id=\"%s\"] > .row').click();"
                  "})();</script></body>" % (nested["id"], client["id"]))
        clicked = ctx.path("clicked.html")
        with open(clicked, "w", encoding="utf-8") as f:
            f.write(page.replace("</body>", script))
        dom2 = _chromium_dom(ctx, clicked)
        n = dom2.nodes[nested["id"]]
        assert "hidden" in n["children_classes"] and n["toggle"] == "\u25b8", n
        assert "open" in dom2.nodes[client["id"]]["classes"], dom2.nodes[client["id"]]
        others = [x for i, x in dom2.nodes.items() if i not in (nested["id"], client["id"])]
        assert not any("open" in x["classes"] for x in others)
        assert not any("hidden" in (x["children_classes"] or []) for x in others)
