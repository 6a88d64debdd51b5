"""Rollbar integration: 5xx answers of real servers become Rollbar items at a
local receiver (tests/receiver/rollbar_receiver.py), with the local
per-minute cap, the server's 429 pause, 413 trimming and retries exercised;
native crashes of our test programs (tests/crash/) are spooled and shipped,
by scripts/cruddur-run and by the next instrumented process."""

import json
import os
import signal
import socket
import subprocess
import time

import harness
from harness import Conn, Ctx, Req, timeout
from rollbar_receiver import RollbarReceiver

TOKEN = "0123456789abcdef0123456789abcdef"
SECRET_AUTH = "Bearer s3cr3t-auth-value"
SECRET_COOKIE = "session=c00kie-value"


def rb_env(ctx, rx, **extra):
    env = {"ROLLBAR_ACCESS_TOKEN": TOKEN, "ROLLBAR_ENDPOINT": rx.endpoint,
           "ROLLBAR_ENVIRONMENT": "it-env", "ROLLBAR_CODE_VERSION": "c0ffee1",
           "CRUDDUR_SPOOL_DIR": ctx.mkdir("spool")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def receiver(ctx, **kw):
    rx = RollbarReceiver(token=TOKEN, **kw).start()
    ctx.defer(rx.stop)
    return rx


def no_problems(items):
    bad = ["%s: %s" % (i["data"].get("title"), i["problems"]) for i in items if i["problems"]]
    if bad:
        raise AssertionError("items with problems: %s" % "; ".join(bad))


def settle(rx, n, wait=1.0):
    """Wait for n items, then a little longer: exactly n must arrive."""
    items = rx.wait_for_items(n, timeout=10)
    time.sleep(wait)
    items = rx.items()
    if len(items) != n:
        raise AssertionError("%d items arrived, want %d: %s" % (
            len(items), n, [i["data"].get("title") for i in items]))
    return items


def check_5xx_item(item, ex, *, pid, status, span=None):
    d = item["data"]
    errs = []

    def eq(what, got, want):
        if got != want:
            errs.append("%s: %r, want %r" % (what, got, want))

    path = ex.req.target.split("?")[0]
    eq("level", d.get("level"), "error")
    eq("environment", d.get("environment"), "it-env")
    eq("code_version", d.get("code_version"), "c0ffee1")
    eq("server.code_version", d.get("server", {}).get("code_version"), "c0ffee1")
    eq("server.pid", d.get("server", {}).get("pid"), pid)
    eq("server.host", d.get("server", {}).get("host"), socket.gethostname())
    eq("notifier.name", d.get("notifier", {}).get("name"), "cruddur")
    msg = d.get("body", {}).get("message", {}).get("body", "")
    if "%s %s answered HTTP %d" % (ex.req.method, path, status) not in msg:
        errs.append("message body %r does not describe %s %s -> %d" % (msg, ex.req.method, path, status))
    req = d.get("request", {})
    eq("request.method", req.get("method"), ex.req.method)
    if not str(req.get("url", "")).startswith("http://127.0.0.1:%d%s" % (ex.port, path)):
        errs.append("request.url %r" % req.get("url"))
    eq("request.user_ip", req.get("user_ip"), "127.0.0.1")
    hdrs = req.get("headers", {})
    eq("headers.Host", hdrs.get("Host"), "127.0.0.1:%d" % ex.port)
    if ex.req.ua:
        eq("headers.User-Agent", hdrs.get("User-Agent"), ex.req.ua)
    for h in hdrs:
        if h.lower() in ("authorization", "cookie"):
            errs.append("header %s reported" % h)
    if len(d.get("uuid", "")) != 36:
        errs.append("uuid %r" % d.get("uuid"))
    if not d.get("fingerprint"):
        errs.append("no fingerprint")
    custom = d.get("custom", {})
    if span is not None:
        eq("custom.trace_id", custom.get("trace_id"), span["trace_id"])
        eq("custom.span_id", custom.get("span_id"), span["span_id"])
    elif len(custom.get("trace_id", "")) != 32 or len(custom.get("span_id", "")) != 16:
        errs.append("custom trace/span ids %r %r" % (custom.get("trace_id"), custom.get("span_id")))
    if errs:
        raise AssertionError("item %s: %s\n%s" % (d.get("title"), "; ".join(errs),
                                                  json.dumps(d, indent=1)[:3000]))


# ------------------------------------------------------------------ 5xx items

@timeout(60)
def test_rollbar_5xx_items_cserver():
    """Every 5xx a C server answers becomes one item: fields, link to the
    OTLP span, fingerprint grouping, no secrets, the token header."""
    with Ctx("test_rollbar_5xx_items_cserver") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("epoll", extra_env=rb_env(ctx, rx))
        tp = harness.random_traceparent()
        with Conn(srv.port) as c:
            exs = [c.request("GET", "/status/500", headers=[("Authorization", SECRET_AUTH),
                                                           ("Cookie", SECRET_COOKIE)],
                             traceparent=tp),
                   c.request("GET", "/status/200"),
                   c.request("GET", "/status/500?api_key=zzz&n=1"),
                   c.request("POST", "/status/503", body=b"x" * 100),
                   c.request("GET", "/status/404")]
        for ex, st in zip(exs, (500, 200, 500, 503, 404)):
            if ex.resp.status != st:
                raise AssertionError("%s answered %s" % (ex.req.target, ex.resp.status))
        items = settle(rx, 3)
        no_problems(items)
        spans = ctx.receiver.wait_for_spans(5, timeout=10)
        by_ua = {s["attributes"].get("user_agent.original"): s for s in spans}
        by_ua_item = {i["data"]["request"]["headers"].get("User-Agent"): i for i in items}
        for ex, st in ((exs[0], 500), (exs[2], 500), (exs[3], 503)):
            item = by_ua_item.get(ex.req.ua)
            if item is None:
                raise AssertionError("no item for %s %s" % (ex.req.method, ex.req.target))
            check_5xx_item(item, ex, pid=srv.pid, status=st, span=by_ua.get(ex.req.ua))
        first, second, third = (by_ua_item[e.req.ua]["data"] for e in (exs[0], exs[2], exs[3]))
        if first["fingerprint"] != second["fingerprint"]:
            raise AssertionError("two 500s of GET /status/500 do not group")
        if first["fingerprint"] == third["fingerprint"]:
            raise AssertionError("GET 500 and POST 503 share a fingerprint")
        if first["request"]["headers"].get("traceparent") != tp:
            raise AssertionError("traceparent header not reported")
        if first["custom"]["trace_id"] != harness.parse_traceparent(tp)[0]:
            raise AssertionError("item not linked to the incoming trace")
        if "REDACTED" not in second["request"]["url"] or "zzz" in json.dumps(second):
            raise AssertionError("secret query value sent: %s" % second["request"]["url"])
        if len({i["data"]["uuid"] for i in items}) != 3:
            raise AssertionError("uuids not unique")
        for r in rx.requests():
            if r["token"] != TOKEN or r["content_type"] != "application/json":
                raise AssertionError("request headers: token %r content-type %r" % (
                    r["token"], r["content_type"]))
            for secret in (SECRET_AUTH, SECRET_COOKIE, TOKEN):
                if secret.encode() in r["raw"]:
                    raise AssertionError("%r in an item body" % secret)
        srv.proc.stop()


@timeout(90)
def test_rollbar_5xx_items_python_and_nginx():
    """The same from CPython's http.server and from an nginx worker (whose
    environment nginx clears: settings are read at load)."""
    with Ctx("test_rollbar_5xx_items_python_and_nginx") as ctx:
        rx = receiver(ctx)
        env = rb_env(ctx, rx)
        py = ctx.start_python11(extra_env=env)
        ng = ctx.nginx().start(extra_env=env)
        with Conn(py.port) as c:
            ex_py = c.request("GET", "/status/500")
            c.request("GET", "/")
        with Conn(ng.port) as c:
            ex_ng = c.request("GET", "/status/503")
            c.request("GET", "/index.html")
        items = settle(rx, 2)
        no_problems(items)
        by_ua = {i["data"]["request"]["headers"].get("User-Agent"): i for i in items}
        check_5xx_item(by_ua[ex_py.req.ua], ex_py, pid=py.pid, status=500)
        check_5xx_item(by_ua[ex_ng.req.ua], ex_ng, pid=ng.pid, status=503)


@timeout(60)
def test_rollbar_local_rate_limit():
    """CRUDDUR_ROLLBAR_MAX_PER_MIN=3: of 8 errors within a minute exactly 3
    are sent, and the drop is reported once."""
    with Ctx("test_rollbar_local_rate_limit", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx, CRUDDUR_ROLLBAR_MAX_PER_MIN=3))
        with Conn(srv.port) as c:
            for i in range(8):
                c.request("GET", "/status/500")
        settle(rx, 3, wait=1.5)
        if len(rx.requests()) != 3:
            raise AssertionError("%d requests for 3 allowed items" % len(rx.requests()))
        msgs = [m for m in ctx.cruddur_messages() if "not sent" in m]
        if len(msgs) != 1 or "5 5xx items" not in msgs[0]:
            raise AssertionError("drop report: %s" % ctx.cruddur_messages())


@timeout(60)
def test_rollbar_429_pauses():
    """A 429 with X-Rate-Limit-Remaining-Seconds: 2 stops sending (no retry,
    items dropped) for 2 s; afterwards items flow again."""
    with Ctx("test_rollbar_429_pauses", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        rx.push_mode("429:2")
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx))
        with Conn(srv.port) as c:
            c.request("GET", "/status/500")
            reqs = rx.wait_for_requests(1, timeout=10)
            t429 = time.monotonic()
            if not reqs or reqs[0]["status"] != 429:
                raise AssertionError("first request not answered 429: %s" % reqs)
            for i in range(3):
                c.request("GET", "/status/502")
            time.sleep(1.0)
            if len(rx.requests()) != 1:
                raise AssertionError("sent during the 429 pause: %d requests" % len(rx.requests()))
            time.sleep(max(0.0, 2.3 - (time.monotonic() - t429)))
            ex = c.request("GET", "/status/504")
        items = settle(rx, 1)
        if items[0]["data"]["request"]["headers"].get("User-Agent") != ex.req.ua:
            raise AssertionError("the item after the pause is not the last request's")
        if len(rx.requests()) != 2:
            raise AssertionError("%d requests, want 2 (429'd item not retried)" % len(rx.requests()))


@timeout(60)
def test_rollbar_413_trims_and_5xx_retries():
    """413: the same item (same uuid) once more, trimmed. 503 from Rollbar:
    retried with the same uuid. 403 (bad token): not retried, token never
    printed."""
    with Ctx("test_rollbar_413_trims_and_5xx_retries", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        rx.push_mode("413")
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx))
        with Conn(srv.port) as c:
            c.request("GET", "/status/500", headers=[("User-Agent", "u" * 200)], ua=None)
            settle(rx, 1, wait=0.3)
            rx.push_mode("503")
            c.request("GET", "/status/501")
            settle(rx, 2, wait=0.3)
        reqs = rx.requests()
        if [r["status"] for r in reqs] != [413, 200, 503, 200]:
            raise AssertionError("answers %s" % [r["status"] for r in reqs])
        if reqs[0]["uuid"] != reqs[1]["uuid"] or reqs[2]["uuid"] != reqs[3]["uuid"]:
            raise AssertionError("retried items changed uuid")
        trimmed = reqs[1]["payload"]["data"]["request"]["headers"]
        if "User-Agent" in trimmed or "User-Agent" not in reqs[0]["payload"]["data"]["request"]["headers"]:
            raise AssertionError("413 retry not trimmed: %s" % trimmed)
        srv.proc.stop()

        # wrong token: 403, one request per item, no retry
        bad = "wrong-token-abcdef"
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx, ROLLBAR_ACCESS_TOKEN=bad))
        n0 = len(rx.requests())
        with Conn(srv.port) as c:
            c.request("GET", "/status/500")
            c.request("GET", "/status/500")
        time.sleep(2.0)
        reqs = rx.requests()[n0:]
        if [r["status"] for r in reqs] != [403, 403]:
            raise AssertionError("bad token: answers %s" % [r["status"] for r in reqs])
        srv.proc.stop()
        if bad in srv.proc.stderr():
            raise AssertionError("the token was printed: %s" % srv.proc.stderr())


@timeout(40)
def test_rollbar_bad_settings_keep_app_running():
    """An unusable ROLLBAR_ENDPOINT: one message, no items, the server
    works; without a token nothing Rollbar happens at all."""
    with Ctx("test_rollbar_bad_settings_keep_app_running", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx, ROLLBAR_ENDPOINT="ftp://x/"))
        with Conn(srv.port) as c:
            ex = c.request("GET", "/status/500")
        if ex.resp.status != 500:
            raise AssertionError("server answered %s" % ex.resp.status)
        ctx.receiver.wait_for_spans(1, timeout=10)
        srv.proc.stop()
        err = [l for l in srv.proc.stderr().splitlines() if l.startswith("cruddur:")]
        if len(err) != 1 or "ROLLBAR_ENDPOINT" not in err[0] or TOKEN in err[0]:
            raise AssertionError("messages: %s" % err)
        if rx.requests():
            raise AssertionError("items sent with a bad endpoint")


# ------------------------------------------------------------------ crashes

CRASH_DIR = os.path.join(os.path.dirname(harness.LIB), "crash")
CRASHME = os.path.join(CRASH_DIR, "crashme")
CRASHSRV = os.path.join(CRASH_DIR, "crashsrv")
EXCPP = os.path.join(CRASH_DIR, "excpp")
PREHANDLER = os.path.join(CRASH_DIR, "prehandler.so")
CRUDDUR_RUN = os.path.join(harness.REPO, "scripts", "cruddur-run")

# mode: (signal, the function the crash happens in)
CRASH_MODES = {
    "null": (signal.SIGSEGV, "crd_test_null_write"),
    "abort": (signal.SIGABRT, "crd_test_abort"),
    "fpe": (signal.SIGFPE, "crd_test_divide"),
    "trap": (signal.SIGILL, "crd_test_trap"),
    "bus": (signal.SIGBUS, "crd_test_bus"),
    "thread": (signal.SIGSEGV, "crd_test_thread_crash"),
    "handler": (signal.SIGSEGV, "crd_test_usr1_handler"),
}


def need_crash_progs():
    harness.need_lib()
    if not harness.SHIM:
        raise harness.Skip("--no-shim: crash capture needs the library")
    for p in (CRASHME, CRASHSRV, EXCPP, PREHANDLER):
        if not os.path.exists(p):
            raise AssertionError("%s not built (make crash-progs)" % p)


def crash_env(ctx, rx, spool, **extra):
    env = harness.clean_env()
    env.update({"ROLLBAR_ACCESS_TOKEN": TOKEN, "ROLLBAR_ENDPOINT": rx.endpoint,
                "CRUDDUR_SPOOL_DIR": spool, "OTEL_TRACES_EXPORTER": "none",
                "CRUDDUR_LIB": harness.LIB, "ROLLBAR_ENVIRONMENT": "it-env"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(argv, env, timeout_s=30, cwd=None):
    t = time.monotonic()
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=cwd)
    return r, time.monotonic() - t


def methods(item):
    return [f.get("method", "") for f in item["data"]["body"]["trace"]["frames"]]


def check_crash_item(item, sig, func, *, symbolized=True):
    d = item["data"]
    errs = []
    if d.get("level") != "critical":
        errs.append("level %r" % d.get("level"))
    exc = d.get("body", {}).get("trace", {}).get("exception", {})
    if exc.get("class") != signal.Signals(sig).name:
        errs.append("exception class %r, want %s" % (exc.get("class"), signal.Signals(sig).name))
    if "at address 0x" not in exc.get("message", ""):
        errs.append("exception message %r lacks the fault address" % exc.get("message"))
    ms = methods(item)
    frames = d["body"]["trace"]["frames"]
    if symbolized:
        if func not in ms:
            errs.append("%s not among the frames %s" % (func, ms))
        elif sig not in (signal.SIGABRT,) and ms[-1] != func and func != "crd_test_usr1_handler":
            errs.append("most recent frame (last) is %s, want %s" % (ms[-1], func))
        own = [f for f in frames if f.get("method") == func]
        if own and not (own[0].get("filename", "").endswith(".c") and own[0].get("lineno")):
            errs.append("no file:line for %s: %s" % (func, own[0]))
    if d.get("environment") != "it-env":
        errs.append("environment %r" % d.get("environment"))
    if item["problems"]:
        errs.append("problems: %s" % item["problems"])
    if errs:
        raise AssertionError("; ".join(errs) + "\n" + json.dumps(d, indent=1)[:3000])


def spool_files(spool):
    try:
        return sorted(n for n in os.listdir(spool) if not n.startswith("."))
    except FileNotFoundError:
        return []


@timeout(120)
def test_rollbar_crash_cruddur_run_ships_symbolized():
    """cruddur-run CMD: for each way to crash, CMD dies by its signal,
    cruddur-run exits 128+signal at once, and the item (level critical,
    class = the signal, the crashing function last with file:line) is at
    the receiver before cruddur-run exits; the spool is empty."""
    need_crash_progs()
    with Ctx("test_rollbar_crash_cruddur_run_ships_symbolized", receiver=False,
             allow_stderr=True) as ctx:
        rx = receiver(ctx)
        spool = ctx.mkdir("spool")
        env = crash_env(ctx, rx, spool)
        errs = []
        for mode, (sig, func) in CRASH_MODES.items():
            n0 = len(rx.items())
            r, dt = run([CRUDDUR_RUN, CRASHME, mode], env)
            if r.returncode != 128 + sig:
                errs.append("%s: cruddur-run exit %d, want %d: %s" % (mode, r.returncode, 128 + sig,
                                                                      r.stderr[-500:]))
                continue
            if dt > 8:
                errs.append("%s: took %.1fs" % (mode, dt))
            items = rx.items()[n0:]
            if len(items) != 1:
                errs.append("%s: %d items at cruddur-run's exit" % (mode, len(items)))
                continue
            try:
                check_crash_item(items[0], sig, func)
            except AssertionError as e:
                errs.append("%s: %s" % (mode, e))
            if mode == "handler":
                ms = methods(items[0])
                want = ["crd_test_raise_usr1", "__restore_rt", "crd_test_usr1_handler"]
                got = [m for m in ms if m in want]
                if got != want:
                    errs.append("handler: frames across the signal %s, want %s in order (%s)" % (
                        got, want, ms))
            if spool_files(spool):
                errs.append("%s: spool not empty: %s" % (mode, spool_files(spool)))
        if errs:
            raise AssertionError(harness.summarize(errs))


@timeout(90)
def test_rollbar_crash_same_death_and_next_start_ships():
    """Without the wrapper: each crash ends the process exactly as without
    the shim (signal, core dump), leaves one 0600 report in a 0700 spool
    directory; the next instrumented process (a server, at its first
    export) ships them all, raw (module+offset, build-ids)."""
    need_crash_progs()
    import resource
    with Ctx("test_rollbar_crash_same_death_and_next_start_ships", allow_stderr=True) as ctx:
        rx = receiver(ctx)
        spool = os.path.join(ctx.tmp, "spool")  # created by the crashing process
        env = crash_env(ctx, rx, spool)
        errs = []

        def status_of(argv, e, cwd):
            def core_on():
                resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                          resource.RLIM_INFINITY))
            p = subprocess.Popen(argv, env=e, cwd=cwd, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, preexec_fn=core_on)
            try:
                _, st = os.waitpid(p.pid, 0)
            finally:
                p.returncode = 0
            return st

        for mode, (sig, func) in CRASH_MODES.items():
            d_with, d_without = ctx.mkdir("core-with-" + mode), ctx.mkdir("core-without-" + mode)
            e_with = dict(env, LD_PRELOAD=harness.LIB)
            st_with = status_of([CRASHME, mode], e_with, d_with)
            st_without = status_of([CRASHME, mode], harness.clean_env(), d_without)
            got = (os.WIFSIGNALED(st_with) and os.WTERMSIG(st_with), os.WCOREDUMP(st_with))
            want = (os.WIFSIGNALED(st_without) and os.WTERMSIG(st_without), os.WCOREDUMP(st_without))
            if got != want or want[0] != sig:
                errs.append("%s: (signal, core) %s under the shim, %s without" % (mode, got, want))
        files = spool_files(spool)
        if len(files) != len(CRASH_MODES):
            errs.append("%d spool files for %d crashes: %s" % (len(files), len(CRASH_MODES), files))
        st = os.lstat(spool)
        if st.st_mode & 0o777 != 0o700:
            errs.append("spool directory mode %o" % (st.st_mode & 0o777))
        for f in files:
            m = os.lstat(os.path.join(spool, f)).st_mode & 0o777
            if m != 0o600:
                errs.append("%s mode %o" % (f, m))
        if errs:
            raise AssertionError(harness.summarize(errs))

        # the next start of any instrumented process ships them
        srv = ctx.start_cserver("rw", extra_env={k: env[k] for k in (
            "ROLLBAR_ACCESS_TOKEN", "ROLLBAR_ENDPOINT", "CRUDDUR_SPOOL_DIR", "ROLLBAR_ENVIRONMENT")})
        with Conn(srv.port) as c:
            c.request("GET", "/")
        items = rx.wait_for_items(len(CRASH_MODES), timeout=15)
        if len(items) != len(CRASH_MODES):
            raise AssertionError("%d items shipped by the next start, want %d" % (
                len(items), len(CRASH_MODES)))
        classes = sorted(i["data"]["body"]["trace"]["exception"]["class"] for i in items)
        want = sorted(signal.Signals(s).name for s, _ in CRASH_MODES.values())
        if classes != want:
            raise AssertionError("classes %s, want %s" % (classes, want))
        for it in items:
            check_crash_item(it, signal.Signals[it["data"]["body"]["trace"]["exception"]["class"]],
                             None, symbolized=False)
            c = it["data"]["custom"]
            if c.get("symbolized") is not False or not c.get("build_ids") or \
                    not any(m.startswith("crashme+0x") for m in methods(it)):
                raise AssertionError("raw item: %s" % json.dumps(it["data"])[:2000])
        deadline = time.monotonic() + 5
        while spool_files(spool) and time.monotonic() < deadline:
            time.sleep(0.1)
        if spool_files(spool):
            raise AssertionError("spool not emptied: %s" % spool_files(spool))
        srv.proc.stop()


@timeout(60)
def test_rollbar_crash_during_request():
    """A thread-per-connection server crashing while it serves GET /crash:
    the item carries the request in progress and links to its trace."""
    need_crash_progs()
    with Ctx("test_rollbar_crash_during_request", receiver=False, allow_stderr=True) as ctx:
        rx = receiver(ctx)
        spool = ctx.mkdir("spool")
        env = crash_env(ctx, rx, spool)
        pf = ctx.path("crashsrv.port")
        p = ctx.start([CRUDDUR_RUN, CRASHSRV, pf], env=env, name="cruddur-run crashsrv")
        port = harness.wait_portfile(pf, 15, p)
        with Conn(port) as c:
            c.request("GET", "/ok")
        tp = harness.random_traceparent()
        try:
            with Conn(port) as c:
                c.request("GET", "/crash?secret=1", traceparent=tp)
        except (harness.ConnectionClosed, OSError):
            pass
        rc = p.wait(20)
        if rc != 128 + signal.SIGSEGV:
            raise AssertionError("cruddur-run exit %s, want 139%s" % (rc, p.log_tail()))
        items = rx.items()
        if len(items) != 1:
            raise AssertionError("%d items" % len(items))
        check_crash_item(items[0], signal.SIGSEGV, "crd_test_request_crash")
        d = items[0]["data"]
        if d.get("request") != {"method": "GET", "url": "/crash"}:
            raise AssertionError("request %r (want the path, without the query)" % d.get("request"))
        if d["custom"].get("trace_id") != harness.parse_traceparent(tp)[0]:
            raise AssertionError("trace id %r, want %r" % (d["custom"].get("trace_id"), tp))
        if d["custom"].get("tid") == d["server"].get("pid"):
            raise AssertionError("crash not on the connection's thread")

        # a stack overflow on a serving thread: reported thanks to the
        # alternate stack the thread got at its first request
        p = ctx.start([CRUDDUR_RUN, CRASHSRV, pf + "2"], env=env, name="cruddur-run crashsrv 2")
        port = harness.wait_portfile(pf + "2", 15, p)
        try:
            with Conn(port) as c:
                c.request("GET", "/overflow")
        except (harness.ConnectionClosed, OSError):
            pass
        rc = p.wait(20)
        items = rx.items()[1:]
        if rc != 139 or len(items) != 1:
            raise AssertionError("overflow on a thread: rc %s, %d items%s" % (rc, len(items),
                                                                            p.log_tail()))
        check_crash_item(items[0], signal.SIGSEGV, "crd_test_request_recurse")
        if items[0]["data"].get("request", {}).get("url") != "/overflow":
            raise AssertionError("overflow: request %r" % items[0]["data"].get("request"))


@timeout(60)
def test_rollbar_crash_handlers_chain_and_app_handlers_win():
    """A SIGSEGV handler installed before ours (a preload library) runs,
    then the process dies by SIGSEGV with a report; a handler the app
    installs later replaces ours (exit 3, no report); a hanging earlier
    handler is ended by the watchdog; a stack overflow is reported (the
    alternate stack); two threads crashing at once give one report and one
    death."""
    need_crash_progs()
    with Ctx("test_rollbar_crash_handlers_chain_and_app_handlers_win", receiver=False,
             allow_stderr=True) as ctx:
        rx = receiver(ctx)
        errs = []
        spool = ctx.mkdir("spool-pre")
        env = dict(crash_env(ctx, rx, spool), LD_PRELOAD=harness.LIB + " " + PREHANDLER)
        r, dt = run([CRASHME, "null"], env)
        if r.returncode != -signal.SIGSEGV or "prehandler: SIGSEGV seen" not in r.stderr:
            errs.append("earlier handler: rc %d, stderr %r" % (r.returncode, r.stderr[-300:]))
        if len(spool_files(spool)) != 1:
            errs.append("earlier handler: %d reports" % len(spool_files(spool)))

        spool = ctx.mkdir("spool-own")
        r, dt = run([CRASHME, "own"], dict(crash_env(ctx, rx, spool), LD_PRELOAD=harness.LIB))
        if r.returncode != 3 or "own SIGSEGV handler" not in r.stderr or spool_files(spool):
            errs.append("app's own handler: rc %d, reports %s" % (r.returncode, spool_files(spool)))

        spool = ctx.mkdir("spool-hang")
        env = dict(crash_env(ctx, rx, spool), LD_PRELOAD=harness.LIB + " " + PREHANDLER,
                   PREHANDLER_HANG="1")
        r, dt = run([CRASHME, "null"], env, timeout_s=40)
        if r.returncode != -signal.SIGSEGV or dt > 20 or len(spool_files(spool)) != 1:
            errs.append("hanging earlier handler: rc %d after %.1fs, %d reports" % (
                r.returncode, dt, len(spool_files(spool))))

        spool = ctx.mkdir("spool-overflow")
        r, dt = run([CRASHME, "overflow"], dict(crash_env(ctx, rx, spool), LD_PRELOAD=harness.LIB))
        if r.returncode != -signal.SIGSEGV or len(spool_files(spool)) != 1:
            errs.append("main-thread stack overflow: rc %d, %d reports" % (
                r.returncode, len(spool_files(spool))))

        spool = ctx.mkdir("spool-two")
        for i in range(3):
            r, dt = run([CRASHME, "two"], dict(crash_env(ctx, rx, spool), LD_PRELOAD=harness.LIB))
            if r.returncode != -signal.SIGSEGV or dt > 8:
                errs.append("two threads: rc %d after %.1fs" % (r.returncode, dt))
        if len(spool_files(spool)) != 3:
            errs.append("two threads x3: %d reports" % len(spool_files(spool)))
        if errs:
            raise AssertionError(harness.summarize(errs))


@timeout(60)
def test_rollbar_cpp_exceptions_and_demangled_crash():
    """C++ throw/catch still works under the shim (libunwind is private);
    a crash in a C++ method is reported with its demangled name."""
    need_crash_progs()
    with Ctx("test_rollbar_cpp_exceptions_and_demangled_crash", receiver=False,
             allow_stderr=True) as ctx:
        rx = receiver(ctx)
        spool = ctx.mkdir("spool")
        env = crash_env(ctx, rx, spool)
        r, _ = run([EXCPP, "throw"], dict(env, LD_PRELOAD=harness.LIB))
        if r.returncode != 0 or r.stdout.strip() != "caught 1000":
            raise AssertionError("excpp throw: rc %d stdout %r stderr %r" % (
                r.returncode, r.stdout, r.stderr[-500:]))
        r, _ = run([CRUDDUR_RUN, EXCPP, "crash"], env)
        if r.returncode != 139:
            raise AssertionError("excpp crash: rc %d %s" % (r.returncode, r.stderr[-500:]))
        items = rx.items()
        if len(items) != 1 or "shapes::Widget::explode(int)" not in methods(items[0]):
            raise AssertionError("C++ crash item: %s" % [methods(i) for i in items])


def _zombies_of(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] == "Z" and int(fields[1]) == ppid:
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


@timeout(90)
def test_cruddur_run_status_signals_preload_and_pid1():
    """cruddur-run passes the exit status through, forwards TERM, INT, HUP,
    QUIT, USR1, USR2, appends to LD_PRELOAD once, and as PID 1 reaps
    orphans and ships a crash; the app itself as PID 1 never hangs."""
    need_crash_progs()
    with Ctx("test_cruddur_run_status_signals_preload_and_pid1", receiver=False,
             allow_stderr=True) as ctx:
        rx = receiver(ctx)
        spool = ctx.mkdir("spool")
        env = crash_env(ctx, rx, spool)
        errs = []
        r, _ = run([CRUDDUR_RUN, "sh", "-c", "exit 7"], env)
        if r.returncode != 7:
            errs.append("exit 7 -> %d" % r.returncode)
        r, _ = run([CRUDDUR_RUN, "/nonexistent/prog"], env)
        if r.returncode != 127:
            errs.append("missing program -> %d" % r.returncode)
        r, _ = run([CRUDDUR_RUN, "sh", "-c", 'echo "$LD_PRELOAD"'], dict(env, LD_PRELOAD=PREHANDLER))
        if harness.asan_strip(r.stdout.strip()) != PREHANDLER + ":" + harness.LIB:
            errs.append("LD_PRELOAD appended: %r" % r.stdout)
        r, _ = run([CRUDDUR_RUN, "sh", "-c", 'echo "$LD_PRELOAD"'], dict(env, LD_PRELOAD=harness.LIB))
        if harness.asan_strip(r.stdout.strip()) != harness.LIB:
            errs.append("LD_PRELOAD duplicated: %r" % r.stdout)

        script = ("import signal, sys, time\n"
                  "s = int(sys.argv[1])\n"
                  "signal.signal(s, lambda *a: sys.exit(40 + s))\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(30)\n")
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                    signal.SIGUSR1, signal.SIGUSR2):
            p = subprocess.Popen([CRUDDUR_RUN, harness.PYTHON, "-c", script, str(int(sig))],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
            line = p.stdout.readline()
            p.send_signal(sig)
            try:
                rc = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = None
            if line.strip() != "ready" or rc != 40 + sig:
                errs.append("%s: forwarded -> rc %s (want %d)" % (sig.name, rc, 40 + sig))
        p = subprocess.Popen([CRUDDUR_RUN, "sleep", "30"], env=env)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(15)
        if rc != 128 + signal.SIGTERM:
            errs.append("sleep killed by SIGTERM -> %d, want 143" % rc)

        # PID 1: orphans are reaped
        p = subprocess.Popen(["unshare", "--pid", "--fork", CRUDDUR_RUN, "sh", "-c",
                              "(sleep 0.2 &); (sleep 0.3 &); sleep 1.5; exit 5"], env=env)
        time.sleep(0.2)
        kids = harness.child_pids(p.pid)
        time.sleep(0.9)
        zombies = [z for k in kids for z in _zombies_of(k)]
        rc = p.wait(15)
        if not kids or zombies or rc != 5:
            errs.append("PID 1: init pid %s, zombies %s, rc %s" % (kids, zombies, rc))

        # PID 1 wrapper, crash: shipped, 128+signal
        n0 = len(rx.items())
        r, dt = run(["unshare", "--pid", "--fork", CRUDDUR_RUN, CRASHME, "abort"], env)
        items = rx.items()[n0:]
        if r.returncode != 134 or len(items) != 1:
            errs.append("PID 1 wrapper, abort: rc %d, %d items" % (r.returncode, len(items)))
        # the app itself as PID 1 (no wrapper): never hangs
        for mode, want in (("abort", 134), ("null", -signal.SIGSEGV)):
            r, dt = run(["unshare", "--pid", "--fork", CRASHME, mode],
                        dict(env, LD_PRELOAD=harness.LIB), timeout_s=30)
            if r.returncode not in (want, 128 + signal.SIGSEGV, -signal.SIGSEGV) or dt > 15:
                errs.append("app as PID 1, %s: rc %d after %.1fs" % (mode, r.returncode, dt))
        if errs:
            raise AssertionError(harness.summarize(errs))


@timeout(60)
def test_rollbar_5xx_reported_when_trace_not_sampled():
    """Error reporting does not depend on trace sampling: with every trace
    dropped by the sampler, each 5xx still becomes an item, and no span
    reaches the trace back end."""
    with Ctx("test_rollbar_5xx_reported_when_trace_not_sampled") as ctx:
        rx = receiver(ctx)
        srv = ctx.start_cserver("rw", extra_env=rb_env(ctx, rx, OTEL_TRACES_SAMPLER="always_off"))
        with Conn(srv.port) as c:
            for path in ("/status/500", "/", "/status/503", "/status/404"):
                c.request("GET", path)
        items = settle(rx, 2)
        codes = sorted(str(i["data"]["custom"]) for i in items)
        assert len(codes) == 2, codes
        if ctx.shim:
            ctx.expect_no_spans()
