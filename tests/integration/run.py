#!/usr/bin/python3
"""run.py - cruddur's integration test runner (no pytest needed).

Discovers tests/integration/test_*.py, runs every function named test_* in
its own child process with a timeout, prints one line per test and ends with

    integration: N passed, N failed[, N skipped]

Exit code 1 if any test failed.

Usage: /usr/bin/python3 tests/integration/run.py [-k SUBSTR]... [-j JOBS]
           [--no-shim] [-v] [--timeout S] [--list]

  -k SUBSTR   run only tests whose "module::function" contains SUBSTR
  -j JOBS     run JOBS tests at once (default 1; timing checks are tight)
  --no-shim   run the servers without LD_PRELOAD and expect zero spans
              (checks the test plumbing itself; symbol tests skip)
  -v          print the full failure details and the child's output
  --timeout   default per-test timeout in seconds (tests may set their own)

Full output of each test goes to build/integration-logs/<module>.<test>.log
(<CRUDDUR_TEST_BUILD>/integration-logs when set).
"""

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOG_DIR = os.path.join(os.path.abspath(os.environ.get("CRUDDUR_TEST_BUILD") or os.path.join(REPO, "build")),
                       "integration-logs")
# make test-asan (see harness.py): each test's processes write their ASan/UBSan
# reports to <log>.asan.<pid>; a test that leaves any fails.
ASAN = os.environ.get("CRUDDUR_TEST_ASAN", "") in ("1", "true", "yes")
PYTHON = "/usr/bin/python3"
DEFAULT_TIMEOUT = 60


class _Interrupted(BaseException):
    pass


def _child(module, func, result_path):
    """Run one test in this process; write {status, reason, detail}."""
    sys.path.insert(0, HERE)

    def on_term(signum, frame):
        raise _Interrupted("timed out (runner sent SIGTERM)")

    signal.signal(signal.SIGTERM, on_term)
    res = {"status": "ok", "reason": "", "detail": ""}
    t0 = time.monotonic()
    try:
        import harness
        mod = importlib.import_module(module)
        getattr(mod, func)()
    except _Interrupted as e:
        res = {"status": "FAIL", "reason": str(e), "detail": traceback.format_exc()}
    except BaseException as e:  # noqa: B902 - report everything
        try:
            import harness
            skip = isinstance(e, harness.Skip)
        except Exception:
            skip = False
        if skip:
            res = {"status": "skip", "reason": str(e), "detail": ""}
        else:
            reason = "%s%s" % ("" if isinstance(e, AssertionError) else type(e).__name__ + ": ",
                               str(e).strip() or type(e).__name__)
            res = {"status": "FAIL", "reason": reason, "detail": traceback.format_exc()}
    res["duration"] = time.monotonic() - t0
    with open(result_path, "w") as f:
        json.dump(res, f)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def discover(patterns):
    sys.path.insert(0, HERE)
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        modname = fn[:-3]
        mod = importlib.import_module(modname)
        funcs = [(name, obj) for name, obj in vars(mod).items()
                 if name.startswith("test_") and callable(obj)
                 and getattr(obj, "__module__", None) == modname]
        funcs.sort(key=lambda it: it[1].__code__.co_firstlineno)
        for name, obj in funcs:
            tid = "%s::%s" % (modname, name)
            if patterns and not any(p in tid for p in patterns):
                continue
            tests.append((modname, name, getattr(obj, "timeout", None)))
    return tests


class Running:
    def __init__(self, mod, func, timeout, env, verbose):
        self.mod, self.func, self.timeout = mod, func, timeout
        self.tid = "%s::%s" % (mod, func)
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, "%s.%s.log" % (mod, func))
        self.result_path = self.log_path + ".result"
        if os.path.exists(self.result_path):
            os.unlink(self.result_path)
        self.asan_log = self.log_path[:-len(".log")] + ".asan"
        if ASAN:
            for old in asan_reports(self.asan_log):
                os.unlink(old)
            env = dict(env, CRUDDUR_TEST_ASAN_LOG=self.asan_log)
        self.log = open(self.log_path, "wb")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen([PYTHON, os.path.abspath(__file__), "--child", mod, func,
                                   self.result_path], stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                  start_new_session=True)
        self.timed_out = False
        self.term_sent = None

    def poll(self):
        """None while running, else the result dict."""
        rc = self.p.poll()
        now = time.monotonic()
        if rc is None:
            if self.term_sent is None and now - self.t0 > self.timeout:
                self.timed_out = True
                self.term_sent = now
                try:
                    os.kill(self.p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            elif self.term_sent is not None and now - self.term_sent > 8:
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return None
        # kill anything the test left in its process group
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()
        res = None
        try:
            with open(self.result_path) as f:
                res = json.load(f)
        except (OSError, ValueError):
            pass
        if res is None:
            res = {"status": "FAIL", "reason": "test process died (rc=%s)" % rc, "detail": ""}
        if self.timed_out:
            res["status"] = "FAIL"
            res["reason"] = "timeout after %ds; %s" % (self.timeout, res.get("reason", ""))
        reports = asan_reports(self.asan_log) if ASAN else []
        if reports:
            res["status"] = "FAIL"
            res["reason"] = "sanitizer report(s) %s: %s; %s" % (
                " ".join(os.path.relpath(r, REPO) for r in reports), asan_summary(reports[0]),
                res.get("reason", ""))
        res["duration"] = now - self.t0
        with open(self.log_path, "a") as f:
            f.write("\n==== %s: %s\n%s\n%s\n" % (self.tid, res["status"], res.get("reason", ""),
                                                 res.get("detail", "")))
        return res


def asan_reports(prefix):
    d, base = os.path.split(prefix)
    try:
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith(base + "."))
    except OSError:
        return []


def asan_summary(path):
    """The SUMMARY line of a sanitizer report (else its first line)."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return "?"
    summ = [l for l in lines if l.startswith("SUMMARY:") or "runtime error:" in l]
    return (summ or lines or ["(empty)"])[0][:300]


def one_line(s, limit=600):
    s = " | ".join(x.strip() for x in s.strip().splitlines() if x.strip())
    return s if len(s) <= limit else s[:limit] + " ..."


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[])
    ap.add_argument("-j", type=int, default=1)
    ap.add_argument("--no-shim", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run make for the test server and proto modules")
    a = ap.parse_args()

    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    if a.no_shim:
        env["CRUDDUR_TEST_NOSHIM"] = "1"
    os.environ.update({k: env[k] for k in ("CRUDDUR_TEST_NOSHIM",) if k in env})
    sys.dont_write_bytecode = True

    if not a.no_build:
        # test-side artefacts only; the library itself is built by `make`.
        # CRUDDUR_TEST_BUILD=DIR: DIR's (make passes its SAN_FLAGS on).
        bd = os.path.relpath(os.path.dirname(LOG_DIR), REPO)
        r = subprocess.run(["make", "-s", "-C", REPO] + (["BUILD=" + bd] if bd != "build" else []) +
                           [bd + "/servers/cserver",
                            bd + "/proto_py/opentelemetry/proto/collector/trace/v1/trace_service_pb2.py"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("FAIL build of test artefacts: %s" % one_line(r.stdout + r.stderr))
            print("integration: 0 passed, 1 failed")
            return 1

    tests = discover(a.k)
    if a.list:
        for m, f, t in tests:
            print("%s::%s" % (m, f))
        return 0
    if not tests:
        print("no tests matched")
        print("integration: 0 passed, 0 failed")
        return 1

    passed = failed = skipped = 0
    t_all = time.monotonic()
    pending = list(tests)
    running = []
    jobs = max(1, a.j)
    while pending or running:
        while pending and len(running) < jobs:
            m, f, t = pending.pop(0)
            running.append(Running(m, f, t or a.timeout, env, a.verbose))
        time.sleep(0.02)
        for r in list(running):
            res = r.poll()
            if res is None:
                continue
            running.remove(r)
            st = res["status"]
            d = res.get("duration", 0.0)
            if st == "ok":
                passed += 1
                print("ok   %s (%.1fs)" % (r.tid, d), flush=True)
            elif st == "skip":
                skipped += 1
                print("skip %s: %s" % (r.tid, one_line(res.get("reason", ""))), flush=True)
            else:
                failed += 1
                print("FAIL %s (%.1fs): %s [log: %s]" % (r.tid, d, one_line(res.get("reason", "")),
                                                        os.path.relpath(r.log_path, REPO)), flush=True)
                if a.verbose:
                    print("     " + res.get("reason", "").replace("\n", "\n     "))
                    with open(r.log_path, errors="replace") as f:
                        out = f.read()
                    print("     ---- output ----\n     " + out[-4000:].replace("\n", "\n     "))
    line = "integration: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    sys.stderr.write("(%.1fs)\n" % (time.monotonic() - t_all))
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
