"""Spans finished before a crash are not lost (issue #8): the crash handler
saves the spans still queued into the spool (preload/spanspool.h), and
scripts/cruddur-run, or the next start of the library, ships them.

The server (tests/crash/crashsrv) serves N requests under a schedule delay
far longer than the test, so every span is still queued when it crashes
(SIGSEGV on GET /crash, SIGABRT on GET /abort); without the spool they
would all be lost, and the receiver is checked to hold none before the
crash."""

import os
import signal
import stat
import subprocess
import time

import harness
from harness import Conn, Ctx

CRASH_DIR = os.path.join(os.path.dirname(harness.LIB), "crash")
CRASHSRV = os.path.join(CRASH_DIR, "crashsrv")
CRUDDUR_RUN = os.path.join(harness.REPO, "scripts", "cruddur-run")
# Longer than any test: nothing is exported on schedule before the crash.
LONG_DELAY_MS = 600000
N = 7


def need_crashsrv():
    harness.need_lib()
    if not harness.SHIM:
        raise harness.Skip("--no-shim: crash spooling needs the library")
    if not os.path.exists(CRASHSRV):
        raise AssertionError("%s not built (make crash-progs)" % CRASHSRV)


def env_for(ctx, spool, service, **extra):
    env = harness.clean_env()
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": ctx.receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": str(LONG_DELAY_MS), "OTEL_SERVICE_NAME": service,
                "CRUDDUR_SPOOL_DIR": spool, "CRUDDUR_LIB": harness.LIB})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def serve_then_crash(ctx, proc, pf, how="/crash"):
    port = harness.wait_portfile(pf, 15, proc)
    paths = ["/served/%d" % i for i in range(N)]
    for p in paths:
        with Conn(port) as c:
            ex = c.request("GET", p + "?token=t0p-s3cret-%s&page=2" % p[-1])
            if ex.resp.status != 200:
                raise AssertionError("%s: status %s" % (p, ex.resp.status))
    time.sleep(0.3)
    if ctx.receiver.spans():
        raise AssertionError("spans exported before the crash: the test would prove nothing")
    try:
        with Conn(port) as c:
            c.request("GET", how)
    except (harness.ConnectionClosed, OSError):
        pass
    return paths


def spans_files(spool):
    return sorted(n for n in os.listdir(spool) if n.startswith("spans-"))


def check_shipped(ctx, paths, service, pid):
    spans = ctx.receiver.wait_for_spans(len(paths), timeout=15)
    time.sleep(0.5)
    spans = [s for s in ctx.receiver.spans()
             if s["attributes"].get("url.path", "").startswith("/served/")]
    got = sorted(s["attributes"]["url.path"] for s in spans)
    if got != sorted(paths):
        raise AssertionError("spans after the crash: %s, want %s" % (got, sorted(paths)))
    for s in spans:
        if s["resource"].get("service.name") != service:
            raise AssertionError("service.name %r" % s["resource"].get("service.name"))
        if s["attributes"].get("http.response.status_code") != 200:
            raise AssertionError("status %r" % s["attributes"].get("http.response.status_code"))
        q = s["attributes"].get("url.query")
        if q != "token=REDACTED&page=2":
            raise AssertionError("url.query %r" % q)
    if ctx.receiver.problems():
        raise AssertionError("receiver problems: %s" % ctx.receiver.problems()[:3])


def test_crash_spans_shipped_by_cruddur_run():
    """cruddur-run CMD: CMD dies by SIGSEGV with N spans queued; they all
    reach the OTLP receiver before cruddur-run exits, and the spool is
    empty afterwards. Then the same with SIGABRT."""
    need_crashsrv()
    for how, sig in (("/crash", signal.SIGSEGV), ("/abort", signal.SIGABRT)):
        with Ctx("test_crash_spans_cruddur_run", allow_stderr=True) as ctx:
            spool = ctx.mkdir("spool")
            env = env_for(ctx, spool, "crashy-run")
            pf = ctx.path("port")
            p = ctx.start([CRUDDUR_RUN, CRASHSRV, pf], env=env, name="cruddur-run crashsrv")
            paths = serve_then_crash(ctx, p, pf, how)
            rc = p.wait(60)
            if rc != 128 + sig:
                raise AssertionError("%s: cruddur-run exit %s, want %d%s" % (
                    how, rc, 128 + sig, p.log_tail()))
            # cruddur-run has exited: everything must be there already
            got = [s for s in ctx.receiver.spans()
                   if s["attributes"].get("url.path", "").startswith("/served/")]
            if len(got) != N:
                raise AssertionError("%s: %d spans at cruddur-run's exit, want %d%s" % (
                    how, len(got), N, p.log_tail()))
            check_shipped(ctx, paths, "crashy-run", None)
            if spans_files(spool):
                raise AssertionError("spool not emptied: %s" % spans_files(spool))


def test_crash_spans_next_start_ships_them():
    """Without cruddur-run: the spans file is written 0600 in a 0700
    directory even under umask 277, holds no secret, and the next start of
    the same service ships its spans (another service leaves it alone)."""
    need_crashsrv()
    with Ctx("test_crash_spans_next_start", allow_stderr=True) as ctx:
        spool = os.path.join(ctx.tmp, "spool-new")  # the library creates it
        env = env_for(ctx, spool, "crashy-next", LD_PRELOAD=harness.LIB)
        pf = ctx.path("port")
        # umask 277 for the crashing process (it would make the directory
        # 0500 and the file 0400): the modes must not depend on it
        old = os.umask(0o277)
        try:
            p = ctx.start([CRASHSRV, pf], env=env, name="crashsrv")
        finally:
            os.umask(old)
        paths = serve_then_crash(ctx, p, pf)
        rc = p.wait(20)
        if rc != -signal.SIGSEGV:
            raise AssertionError("crashsrv rc %s, want -SIGSEGV%s" % (rc, p.log_tail()))
        files = spans_files(spool)
        if len(files) != 1:
            raise AssertionError("spool holds %s, want one spans file" % os.listdir(spool))
        mode = stat.S_IMODE(os.stat(spool).st_mode)
        fmode = stat.S_IMODE(os.stat(os.path.join(spool, files[0])).st_mode)
        if mode != 0o700 or fmode != 0o600:
            raise AssertionError("modes: dir %o file %o, want 700/600" % (mode, fmode))
        with open(os.path.join(spool, files[0]), "rb") as f:
            raw = f.read()
        if b"t0p-s3cret" in raw:
            raise AssertionError("a secret query value is in the spans file")
        if raw.count(b"token=REDACTED&page=2") != N:
            raise AssertionError("the spans file does not hold the %d redacted queries" % N)

        # another service starting (and exporting) leaves the file alone
        env2 = env_for(ctx, spool, "someone-else", LD_PRELOAD=harness.LIB,
                       OTEL_BSP_SCHEDULE_DELAY=50)
        srv = ctx.start_cserver("rw", extra_env={k: env2[k] for k in (
            "CRUDDUR_SPOOL_DIR", "OTEL_SERVICE_NAME")})
        with Conn(srv.port) as c:
            c.request("GET", "/other")
        ctx.receiver.wait_for_spans(1, timeout=10)
        time.sleep(0.5)
        if spans_files(spool) != files:
            raise AssertionError("another service took the spans file")
        if any(s["attributes"].get("url.path", "").startswith("/served/")
               for s in ctx.receiver.spans()):
            raise AssertionError("another service sent the crashed service's spans")

        # the next start of the same service: shipped at its first export
        os.unlink(pf)
        env3 = dict(env, OTEL_BSP_SCHEDULE_DELAY="100")
        p2 = ctx.start([CRASHSRV, pf], env=env3, name="crashsrv again")
        port = harness.wait_portfile(pf, 15, p2)
        with Conn(port) as c:
            c.request("GET", "/after")
        check_shipped(ctx, paths, "crashy-next", None)
        if spans_files(spool):
            raise AssertionError("spool not emptied: %s" % os.listdir(spool))
