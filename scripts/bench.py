#!/usr/bin/python3
"""scripts/bench.py - cruddur's performance benchmark (`make bench`).

Runs, side by side on this machine, and prints one table (also written as
JSON to build/bench.json for comparison across commits):

  1. micro    the hook path alone (tests/bench/hookpath.c: parse a request
              and a response and enqueue a span, no I/O) in ns/request, and
              the exporter's span view + OTLP protobuf/JSON encoders in
              us/span.
  2. nginx    nginx (1 worker) bare vs under the shim, wrk over loopback
              (keep-alive, 32 connections, maximum rate).
  3. node     node:http bare vs under the shim vs under OpenTelemetry JS
              (sdk-node + auto-instrumentations-node + OTLP/proto exporter,
              installed by npm into build/bench-node from bench/package.json;
              skipped with the reason if npm fails).
  4. paced    nginx and node, bare vs shim, at a fixed 20k requests/s
              (bench/pace.lua: wrk has no rate option; this is wrk2's -R):
              spans dropped at that rate, and CPU/request at equal load.
  5. evidence "no malloc, no global lock, no syscall of ours on the hook
              path": heap allocations per request on app threads
              (tests/bench/malloc_count.c preloaded with the shim) and
              system calls per request of nginx's worker thread
              (strace -f -ff, the exporter thread separated by its name).

Comparisons: the servers of a comparison run at the same time; wrk runs of
--duration seconds go to them in turn, A B, B A, A B ... (--pairs), so the
slow drifts of a shared machine cancel out; results are medians of per-pair
ratios. Per run: requests/s, CPU time per request (utime+stime from
/proc/<pid>/stat of every server process, all threads, the exporter thread
included; its own share from /proc/<pid>/task/<tid>/stat), p50/p99 latency
(wrk --latency). Per server: VmRSS (sum over its processes) at the end, and
spans served (nginx stub_status, node's own count) vs received; every server
stops gracefully (which flushes its queue) before spans are counted, so
dropped = served - received.

Sinks: every sink the library has, at 100% sampling, each enabled by its own
settings and pointed at a fast local stand-in: OTLP/HTTP protobuf to
build/bench/otlp_count (one-thread epoll receiver that counts spans exactly
by walking the protobuf, per endpoint path, so each server gets its own
path; about as cheap as an nginx answering `{}`); AWS_XRAY_DAEMON_ADDRESS to
its UDP port (one segment per datagram, counted); ROLLBAR_ENDPOINT (+ token)
and AWS_ENDPOINT_URL_CLOUDWATCH_LOGS to an uninstrumented nginx answering
`{}` (requests counted from its access log). A sink the library does not
have yet ignores its settings; it is measured the day it lands.
OTEL_TRACES_EXPORTER is left unset unless the library accepts names beyond
otlp (xray, rollbar, cloudwatch are probed).

CPU placement (2 cores): every server process on CPU 0, wrk, the stand-ins
and this script on CPU 1 (--no-pin to let the scheduler decide). The table
shows each server's CPU use (srv%), what wrk + stand-ins used, and the CPU
other processes of the machine took (the noise indicator).

Usage: scripts/bench.py [--pairs N] [--paced-pairs N] [--duration S]
                        [--warmup S] [--quick] [--no-pin] [--json PATH]
                        [--only micro,nginx,node,paced,evidence] [--perf]
Exit status: 0 when every section ran (targets are reported, not enforced).
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CRUDDUR_BENCH_BUILD=DIR: measure another build (make BUILD=DIR ... first).
BUILD = os.path.abspath(os.environ.get("CRUDDUR_BENCH_BUILD") or os.path.join(REPO, "build"))
LIB = os.path.join(BUILD, "libcruddur.so")
HOOKPATH = os.path.join(BUILD, "bench", "hookpath")
OTLP_COUNT = os.path.join(BUILD, "bench", "otlp_count")
MALLOC_COUNT = os.path.join(BUILD, "bench", "malloc_count.so")
BENCH_DIR = os.path.join(REPO, "bench")
NODE_PREFIX = os.path.join(BUILD, "bench-node")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODE = shutil.which("node") or "/usr/bin/node"
NPM = shutil.which("npm") or "/usr/bin/npm"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
STRACE = shutil.which("strace") or "/usr/bin/strace"
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXPORTER_THREAD = "cruddur-export"
# Exporters the issue plans; probed against the library at start-up.
FUTURE_EXPORTERS = ("xray", "rollbar", "cloudwatch")

TARGETS = {
    "nginx_cpu_ratio": 1.05,      # CPU/request, shim / bare, at most
    "nginx_rps_ratio": 0.95,      # requests/s, shim / bare, at least
    "node_cpu_ratio": 1.03,       # CPU/request, shim / bare, at most
    "node_vs_otel_rps": 4.0,      # requests/s, shim / OpenTelemetry JS, at least
    "hook_ns": 300.0,             # ns/request on the hook path, at most
    "paced_rate": 20000,          # requests/s for the zero-drop check
    "rss_mib": 8.0,               # RSS overhead, at most
}

# ---------------------------------------------------------------- utilities

_procs = []          # every process we started: (Popen, kill_group)
_cleanups = []       # callables run at exit, last first


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def spawn(argv, env=None, stdout=None, stderr=None, cwd=None):
    """Start a process in its own process group; remembered for cleanup."""
    p = subprocess.Popen(argv, env=env, stdout=stdout or subprocess.DEVNULL,
                         stderr=stderr or subprocess.DEVNULL, cwd=cwd,
                         start_new_session=True)
    _procs.append(p)
    return p


def kill_proc(p, sig=signal.SIGKILL):
    """Signal p's process group (p leads it: start_new_session)."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def cleanup():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    for p in _procs:
        kill_proc(p)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def on_signal(sig, frame):
    cleanup()
    sys.exit(128 + sig)


def wait_port(port, timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (rc=%s) before listening on %d" % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on 127.0.0.1:%d after %.0fs" % (port, timeout))


def wait_file(path, timeout=20.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                s = f.read().strip()
            if s:
                return s
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (rc=%s) before writing %s" % (proc.returncode, path))
        time.sleep(0.02)
    raise RuntimeError("%s not written after %.0fs" % (path, timeout))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=5.0):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.read().decode()


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_ticks(pid):
    """utime + stime of a whole process (all threads, dead ones too)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def thread_ticks(pid, name):
    """utime + stime of pid's threads called name (e.g. the exporter)."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != name:
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


def cpu_jiffies():
    """{cpu index: (busy, total)} from /proc/stat (USER_HZ ticks)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                idle = v[3] + v[4]
                out[int(m.group(1))] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def foreign_share(j0, j1, ours_s):
    """Share of all CPUs busy with other processes between two snapshots."""
    busy = sum(j1[c][0] - j0[c][0] for c in j1 if c in j0) / CLK_TCK
    total = sum(j1[c][1] - j0[c][1] for c in j1 if c in j0) / CLK_TCK
    return round(max(0.0, busy - ours_s) / total, 3) if total > 0 else None


def udp_rcvbuf_errors():
    """Datagrams the kernel dropped for full receive buffers (all sockets):
    an X-Ray loss our stand-in caused, not the library."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [l.split() for l in f if l.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return 0


def vmrss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def git_describe():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------- wrk

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else None


def parse_wrk(out):
    r = {"requests": 0, "seconds": None, "rps": None, "p50_ms": None, "p99_ms": None,
         "errors": 0, "non2xx": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            r[key] = _ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="cruddur-bench-")
        os.chmod(self.tmp, 0o755)  # nginx workers run as nobody
        self.pin = not args.no_pin and (os.cpu_count() or 1) >= 2
        self.server_cpu = ["taskset", "-c", "0"] if self.pin else []
        self.load_cpu = ["taskset", "-c", "1"] if self.pin else []
        if self.pin:
            os.sched_setaffinity(0, {1})  # this script stays off the server's CPU
        self.results = {"micro": None, "nginx": None, "node": None, "paced": None,
                        "evidence": None, "errors": {}}
        self.notes = []
        self.counter = None
        self.standin = None
        self.counter_port = None
        self.standin_port = None
        self.udp_port = None
        self.exporters = []
        self.sink_log = []

    # ------------------------------------------------------------ helpers
    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def base_env(self):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
        return env

    def sink_env(self, service, tag=None):
        """Every exporter on, 100% sampling, all endpoints local."""
        env = {
            "OTEL_SERVICE_NAME": service,
            "OTEL_TRACES_SAMPLER": "always_on",
            # One path per server, so the receiver counts each one's spans.
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d%s" % (
                self.counter_port, "/" + tag if tag else ""),
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
            # Every other sink, enabled by its own settings: the X-Ray
            # daemon over UDP; Rollbar and CloudWatch Logs over HTTP to the
            # stand-in nginx.
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % self.udp_port,
            "ROLLBAR_ENDPOINT": "http://127.0.0.1:%d/api/1/item/" % self.standin_port,
            "ROLLBAR_ACCESS_TOKEN": "bench-token",
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:%d" % self.standin_port,
            # CloudWatch Logs is on only with a log group (created at the
            # stand-in, which answers {} to everything).
            "CRUDDUR_CLOUDWATCH_LOG_GROUP": "bench-" + service,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        if self.exporters:  # names beyond otlp the library accepts
            env["OTEL_TRACES_EXPORTER"] = ",".join(self.exporters)
        return env

    def counter_stats(self):
        return json.loads(http_get(self.counter_port, "/stats"))

    def wrk(self, port, seconds, latency=False, path="/", script=None, script_args=(), conns=32):
        argv = self.load_cpu + [WRK, "-t1", "-c%d" % conns, "-d%ss" % seconds]
        if latency:
            argv.append("--latency")
        if script:
            argv += ["-s", script]
        argv.append("http://127.0.0.1:%d%s" % (port, path))
        if script_args:
            argv += ["--"] + [str(a) for a in script_args]
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            raise RuntimeError("wrk failed: %s" % (r.stderr or r.stdout)[-500:])
        w = parse_wrk(r.stdout)
        w["cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        return w

    def standin_ticks(self):
        pids = [self.counter.pid] + (self.standin.pids() if self.standin else [])
        return sum(proc_ticks(p) for p in pids)

    # ------------------------------------------------------------ stand-ins
    def start_standins(self):
        # 1. OTLP (TCP) and the X-Ray daemon address (UDP): the counting
        # receiver.
        pf = self.path("otlp_count.port")
        p = spawn(self.load_cpu + [OTLP_COUNT, "--port", "0", "--udp", "--portfile", pf],
                  stderr=open(self.path("otlp_count.err"), "w"))
        self.counter = p
        self.counter_port, self.udp_port = (int(x) for x in wait_file(pf, 10, p).split())
        # Self-check: the shared OTLP test vector holds exactly one span.
        vec = os.path.join(REPO, "tests", "proto", "sample-export-trace-request.bin")
        if os.path.exists(vec):
            before = self.counter_stats()["spans"]
            req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % self.counter_port,
                                         data=open(vec, "rb").read(), method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
            urllib.request.urlopen(req, timeout=5).read()
            got = self.counter_stats()["spans"] - before
            if got != 1:
                raise RuntimeError("otlp_count self-check: %d spans counted in the test vector, "
                                   "expected 1" % got)
        # 2. HTTP stand-in for Rollbar / CloudWatch Logs: nginx answering {}
        # (its access log counts what they send).
        self.standin = Nginx(self, "standin", port=free_port(), standin=True)
        self.standin.start(env=self.base_env(), cpu=self.load_cpu)
        self.standin_port = self.standin.port
        _cleanups.append(self.standin.kill)

    def probe_exporters(self):
        """Which sinks the library turns on with sink_env(): its own words
        at load (CRUDDUR_LOG=debug), and OTEL_TRACES_EXPORTER names it knows
        beyond otlp (listed there only when it accepts them)."""
        env = self.base_env()
        env.update(self.sink_env("probe"))
        env.update({"LD_PRELOAD": LIB, "CRUDDUR_LOG": "debug",
                    "OTEL_TRACES_EXPORTER": ",".join(("otlp",) + FUTURE_EXPORTERS)})
        r = subprocess.run(["/bin/true"], env=env, capture_output=True, text=True, timeout=10)
        known = [e for e in FUTURE_EXPORTERS if "'%s'" % e not in r.stderr]
        self.exporters = ["otlp"] + known if known else []
        self.sink_log = [l for l in r.stderr.splitlines()
                         if l.startswith("cruddur:") and "loaded in" not in l
                         and "OTEL_TRACES_EXPORTER" not in l]
        self.notes.append("sinks: OTLP/protobuf -> otlp_count; X-Ray (AWS_XRAY_DAEMON_ADDRESS) -> "
                          "otlp_count UDP; Rollbar (ROLLBAR_ENDPOINT, 5xx only) and CloudWatch "
                          "Logs (AWS_ENDPOINT_URL_CLOUDWATCH_LOGS) -> stand-in nginx")
        for l in self.sink_log:
            self.notes.append("library at load: " + l[len("cruddur: "):])

    # ------------------------------------------------------------ one run
    def burst(self, srv, rate=None):
        """One measured wrk run against srv (at a fixed rate when given:
        bench/pace.lua): requests/s, CPU/request of all the server's
        processes and threads, the exporter thread's share, latency."""
        a = self.args
        pace = {}
        if rate:
            pace = {"script": os.path.join(BENCH_DIR, "pace.lua"), "script_args": (rate, 1)}
        pids = srv.pids()
        t0 = sum(proc_ticks(p) for p in pids)
        e0 = sum(thread_ticks(p, EXPORTER_THREAD) for p in pids)
        j0, s0 = cpu_jiffies(), self.standin_ticks()
        w = self.wrk(srv.port, a.duration, latency=True, **pace)
        j1, s1 = cpu_jiffies(), self.standin_ticks()
        pids = srv.pids()
        t1 = sum(proc_ticks(p) for p in pids)
        e1 = sum(thread_ticks(p, EXPORTER_THREAD) for p in pids)
        cpu_s = (t1 - t0) / CLK_TCK
        n = w["requests"]
        return {
            "rps": w["rps"], "requests": n,
            "cpu_us_per_req": cpu_s * 1e6 / n if n else None,
            "cpu_util": cpu_s / w["seconds"] if w["seconds"] else None,
            "exporter_cpu_us_per_req": (e1 - e0) / CLK_TCK * 1e6 / n if n else None,
            "p50_ms": w["p50_ms"], "p99_ms": w["p99_ms"],
            "wrk_errors": w["errors"] + w["non2xx"],
            "load_cpu_util": (w["cpu_s"] + (s1 - s0) / CLK_TCK) / w["seconds"]
            if w["seconds"] else None,
            # CPU used by processes that are not ours (other users of the
            # machine): the noise indicator, as a share of all CPUs.
            "foreign_cpu": foreign_share(j0, j1, cpu_s + w["cpu_s"] + (s1 - s0) / CLK_TCK),
        }

    def start_server(self, kind, mode, tag):
        if kind == "nginx":
            srv = Nginx(self, tag, port=free_port())
            env = self.base_env()
            env.update(self.sink_env("bench-nginx", tag))
            if mode == "shim":
                env["LD_PRELOAD"] = LIB
            srv.start(env=env, cpu=self.server_cpu)
        else:
            srv = NodeServer(self, mode, tag)
            srv.start()
        return srv

    def compare(self, kind, modes, pairs, rate=None):
        """All of modes' servers run at once, each on CPU 0; wrk runs go to
        them in turn (A B, B A, A B ...: slow drifts of a shared machine
        cancel out), then every server stops gracefully (flushing its
        spans) and each one's spans are counted at the stand-ins (one OTLP
        endpoint path per server). Returns {mode: {"runs": [...],
        "total": {...}}}."""
        a = self.args
        tag0 = "%s-%s" % (kind, "paced" if rate else "max")
        servers, out = {}, {}
        c0, h0, u0 = self.counter_stats(), self.standin.access_lines(), udp_rcvbuf_errors()
        try:
            for m in modes:
                servers[m] = self.start_server(kind, m, "%s-%s" % (tag0, m))
            pace = {"script": os.path.join(BENCH_DIR, "pace.lua"),
                    "script_args": (rate, 1)} if rate else {}
            for m in modes:
                self.wrk(servers[m].port, a.warmup, **pace)
            runs = {m: [] for m in modes}
            for i in range(pairs):
                order = modes if i % 2 == 0 else modes[::-1]
                log("%s%s: pair %d/%d (%s)" % (kind, " at %d req/s" % rate if rate else "",
                                                i + 1, pairs, " ".join(order)))
                for m in order:
                    runs[m].append(self.burst(servers[m], rate))
            for m in modes:
                srv = servers[m]
                out[m] = {"runs": runs[m], "total": {
                    "rss_mib": sum(vmrss_kib(p) for p in srv.pids()) / 1024.0,
                    "served": srv.served_before_stop()}}
            for m in modes:
                out[m]["total"]["stop_s"] = servers[m].stop()
                out[m]["total"]["served"] = servers[m].served_after_stop(
                    out[m]["total"]["served"])
                out[m]["total"]["messages"] = servers[m].messages()
        finally:
            for srv in servers.values():
                srv.kill()
        c1, h1, u1 = self.counter_stats(), self.standin.access_lines(), udp_rcvbuf_errors()
        xray = c1["udp_datagrams"] - c0["udp_datagrams"]
        for m in modes:
            t = out[m]["total"]
            tag = "%s-%s" % (tag0, m)
            p1, p0 = c1["paths"].get(tag, {}), c0["paths"].get(tag, {})
            t["spans_received"] = p1.get("spans", 0) - p0.get("spans", 0)
            t["otlp_posts"] = p1.get("requests", 0) - p0.get("requests", 0)
            served = t["served"]
            t["spans_dropped"] = served - t["spans_received"] if served is not None else None
            # Only the cruddur server of a comparison talks to these.
            if m == "shim":
                t["xray_segments"] = xray
                t["xray_dropped"] = served - xray if xray and served is not None else None
                t["udp_rcvbuf_errors"] = u1 - u0
                t["standin_requests"] = h1 - h0
        return out

    def run_micro(self):
        argv = self.server_cpu + [HOOKPATH, "--requests", str(self.args.micro_requests),
                                  "--rounds", "5"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                           env=self.base_env())
        if r.returncode != 0:
            raise RuntimeError("hookpath failed (rc=%d): %s" % (r.returncode, r.stderr[-800:]))
        m = json.loads(r.stdout)
        if m["spans_enqueued"] != m["spans_expected"]:
            self.notes.append("micro: %d spans enqueued for %d requests" % (
                m["spans_enqueued"], m["spans_expected"]))
        m.update(self.callgrind_hookpath())
        self.results["micro"] = m

    def callgrind_hookpath(self):
        """Instructions per request on the hook path (valgrind callgrind:
        deterministic, unlike times on a shared machine), and the functions
        that execute them. Two run lengths, so start-up cost cancels out."""
        vg = shutil.which("valgrind")
        if not vg:
            return {"callgrind": "valgrind not installed"}
        env = self.base_env()
        env.update({"HOOKPATH_REEXEC": "1", "OTEL_TRACES_EXPORTER": "none",
                    "OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_TRACES_SAMPLER": "always_on",
                    "OTEL_SERVICE_NAME": "hookpath"})
        total, out = {}, None
        for n in (10000, 30000):
            out = self.path("callgrind.%d" % n)
            r = subprocess.run([vg, "--tool=callgrind", "--callgrind-out-file=" + out, HOOKPATH,
                                "--profile", "--requests", str(n)], env=env,
                               capture_output=True, text=True, timeout=300)
            m = re.search(r"Collected : (\d+)", r.stderr)
            if r.returncode != 0 or not m:
                return {"callgrind": "failed: %s" % r.stderr[-300:]}
            total[n] = int(m.group(1))
        per_req = (total[30000] - total[10000]) / 20000
        ann = subprocess.run(["callgrind_annotate", "--threshold=100", out],
                             capture_output=True, text=True, timeout=120).stdout
        top = []
        for line in ann.splitlines():
            mm = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S+):(\S+)", line)
            if mm and "PROGRAM TOTALS" not in line:
                fn = mm.group(3)
                if fn.startswith("bench_keepalive") or fn.startswith("drain"):
                    continue
                top.append((fn, int(mm.group(1).replace(",", "")) / 30000,
                            os.path.basename(mm.group(2))))
        res = {"instructions_per_request": round(per_req, 1),
               "top_functions": [{"function": f, "file": fl, "instructions_per_request": round(i, 1)}
                                 for f, i, fl in top[:10]]}
        res.update(self.callgrind_export(vg, env))
        return res

    # What each sink's encoder costs per span (hookpath --profile-export):
    # callgrind's inclusive instructions of these functions / spans.
    EXPORT_FUNCS = (("view", "crd_span_view"), ("otlp_protobuf_size", "crd_otlp_pb_size"),
                    ("otlp_protobuf_encode", "crd_otlp_pb_encode"),
                    ("xray", "crd_xray_encode"), ("cloudwatch_line", "crd_cw_access_line"),
                    ("cloudwatch_body", "crd_cw_put_body"))

    def callgrind_export(self, vg, env):
        spans = 10 * 512
        out = self.path("callgrind.export")
        r = subprocess.run([vg, "--tool=callgrind", "--callgrind-out-file=" + out, HOOKPATH,
                            "--profile-export", "--requests", str(spans)], env=env,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return {"callgrind_export": "failed: %s" % r.stderr[-300:]}
        ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                             capture_output=True, text=True, timeout=120).stdout
        per = {}
        for line in ann.splitlines():
            mm = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+\S+:(\S+)\s", line)
            if mm:
                for key, fn in self.EXPORT_FUNCS:
                    if mm.group(2) == fn and key not in per:
                        per[key] = round(int(mm.group(1).replace(",", "")) / spans, 1)
        return {"export_instructions_per_span": per}

    def run_nginx(self):
        r = self.compare("nginx", ["bare", "shim"], self.args.pairs)
        self.results["nginx"] = {"modes": r, "summary": summarize_pair(r["bare"], r["shim"])}

    def run_node(self):
        modes = ["bare", "shim"]
        otel_skip = self.ensure_otel_js()
        if otel_skip:
            self.notes.append("node OpenTelemetry JS row skipped: " + otel_skip)
        else:
            modes.append("otel")
        r = self.compare("node", modes, self.args.pairs)
        res = {"modes": r, "summary": summarize_pair(r["bare"], r["shim"]),
               "otel_skipped": otel_skip}
        if "otel" in r:
            res["vs_otel"] = summarize_pair(r["otel"], r["shim"])
        self.results["node"] = res

    def run_paced(self):
        """A fixed TARGETS['paced_rate'] requests/s (bench/pace.lua), bare vs
        shim: spans dropped at that rate, and CPU/request at equal load (free
        of the load generator's limits and of batching differences between
        a saturated and an unsaturated server)."""
        rate = TARGETS["paced_rate"]
        out = {}
        for kind in ("nginx", "node"):
            r = self.compare(kind, ["bare", "shim"], self.args.paced_pairs, rate=rate)
            out[kind] = {"rate": rate, "modes": r,
                         "summary": summarize_pair(r["bare"], r["shim"])}
        self.results["paced"] = out

    def run_evidence(self):
        ev = {"malloc": {}, "syscalls": {}}
        # Heap allocations per request (app threads vs the exporter thread).
        for mode in ("bare", "shim"):
            log("malloc count, nginx %s" % mode)
            f = self.path("malloc-%s.count" % mode)
            with open(f, "wb") as fh:
                fh.write(b"\0" * 4096)
            os.chmod(f, 0o666)
            env = self.base_env()
            env.update(self.sink_env("bench-nginx"))
            env["MALLOC_COUNT_FILE"] = f
            env["LD_PRELOAD"] = MALLOC_COUNT + (":" + LIB if mode == "shim" else "")
            n = Nginx(self, "malloc-%s" % mode, port=free_port())
            n.start(env=env, cpu=self.server_cpu)
            try:
                self.wrk(n.port, 1)
                r0, m0 = n.stub_requests(), read_counts(f)
                self.wrk(n.port, 2)
                r1, m1 = n.stub_requests(), read_counts(f)
                req = r1 - r0
                ev["malloc"][mode] = {
                    "requests": req,
                    "app_calls_per_req": (m1[0] - m0[0]) / req,
                    "app_bytes_per_req": (m1[1] - m0[1]) / req,
                    "exporter_calls_per_req": (m1[2] - m0[2]) / req,
                    "exporter_bytes_per_req": (m1[3] - m0[3]) / req,
                }
                n.stop()
            finally:
                n.kill()
        # System calls per request, per thread of the nginx worker.
        if not os.path.exists(STRACE):
            self.notes.append("strace not installed: no syscall evidence")
        for mode in ("bare", "shim") if os.path.exists(STRACE) else ():
            log("strace, nginx %s" % mode)
            env = self.base_env()
            env.update(self.sink_env("bench-nginx"))
            if mode == "shim":
                env["LD_PRELOAD"] = LIB
            n = Nginx(self, "strace-%s" % mode, port=free_port())
            n.start(env=env, cpu=self.server_cpu)
            tdir = self.path("strace-%s-out" % mode)
            os.makedirs(tdir)
            st = None
            try:
                self.wrk(n.port, 1)  # the exporter thread exists from here on
                worker = n.worker_pid()
                names = thread_names(worker)
                st = spawn([STRACE, "-f", "-ff", "-qq", "-o", os.path.join(tdir, "t"),
                            "-p", str(worker)], stderr=open(os.path.join(tdir, "err"), "w"))
                time.sleep(1.0)  # attach
                r0 = n.stub_requests()
                self.wrk(n.port, 2)
                r1 = n.stub_requests()
                names.update(thread_names(worker))
                kill_proc(st, signal.SIGINT)
                st.wait(20)
                req = r1 - r0
                ev["syscalls"][mode] = count_syscalls(tdir, names, req)
                n.stop()
            finally:
                if st is not None:
                    kill_proc(st)
                n.kill()
        self.results["evidence"] = ev

    # ------------------------------------------------------------ OTel JS
    def ensure_otel_js(self):
        """npm install bench/package.json into build/bench-node (cached).
        Returns None when usable, else why not."""
        pkg = os.path.join(BENCH_DIR, "package.json")
        dst = os.path.join(NODE_PREFIX, "package.json")
        stamp = os.path.join(NODE_PREFIX, ".installed")
        want = open(pkg).read()
        mods = os.path.join(NODE_PREFIX, "node_modules")
        if os.path.exists(stamp) and open(stamp).read() == want and os.path.isdir(mods):
            return None
        if not os.path.exists(NPM):
            return "npm not installed"
        os.makedirs(NODE_PREFIX, exist_ok=True)
        with open(dst, "w") as f:
            f.write(want)
        log("npm install (OpenTelemetry JS) into %s" % os.path.relpath(NODE_PREFIX, REPO))
        try:
            r = subprocess.run([NPM, "install", "--no-audit", "--no-fund", "--loglevel=error",
                                "--prefer-offline"], cwd=NODE_PREFIX, capture_output=True,
                               text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            return "npm install failed: %s" % e
        if r.returncode != 0:
            return "npm install failed (rc=%d): %s" % (r.returncode,
                                                       (r.stderr or r.stdout).strip()[-300:])
        # The modules must load on this node.
        chk = subprocess.run([NODE, "-e", "require('@opentelemetry/sdk-node');"
                              "require('@opentelemetry/auto-instrumentations-node');"
                              "require('@opentelemetry/exporter-trace-otlp-proto')"],
                             env=dict(self.base_env(), NODE_PATH=mods), capture_output=True,
                             text=True, timeout=60)
        if chk.returncode != 0:
            return "OpenTelemetry JS does not load: %s" % chk.stderr.strip()[-300:]
        with open(stamp, "w") as f:
            f.write(want)
        return None

    # ------------------------------------------------------------ perf
    def run_perf(self):
        """--perf: perf record (cpu-clock, 4 kHz) the nginx worker, bare and
        under the shim, for the same wrk run; prints CPU per request by
        thread and library, and the symbols that grew most. The data stay in
        build/bench-perf-{bare,shim}.data for `perf report -g`."""
        hz = 4000
        prof = {}
        for mode in ("bare", "shim"):
            log("perf record, nginx %s" % mode)
            n = self.start_server("nginx", mode, "perf-%s" % mode)
            data = os.path.join(BUILD, "bench-perf-%s.data" % mode)
            try:
                self.wrk(n.port, 1)
                r0 = n.stub_requests()
                pr = spawn(["perf", "record", "-g", "-F", str(hz), "-o", data, "-p",
                            str(n.worker_pid())], stderr=open(self.path("perf.err"), "w"))
                time.sleep(0.5)
                self.wrk(n.port, self.args.duration)
                kill_proc(pr, signal.SIGINT)
                pr.wait(30)
                req = n.stub_requests() - r0
                n.stop()
            finally:
                n.kill()
            rep = subprocess.run(["perf", "report", "-i", data, "-n", "--no-children", "--stdio",
                                  "--sort", "comm,dso,symbol", "-g", "none"],
                                 capture_output=True, text=True, timeout=300).stdout
            rows = {}
            for line in rep.splitlines():
                mm = re.match(r"\s*[\d.]+%\s+(\d+)\s+(\S+)\s+(\S+)\s+\[.\]\s+(.+?)\s*$", line)
                if mm:
                    key = (mm.group(2), mm.group(3), mm.group(4))
                    rows[key] = rows.get(key, 0) + int(mm.group(1)) * 1e9 / hz / req
            prof[mode] = rows
        print("\nperf: CPU ns/request of the nginx worker process, by thread and object "
              "(build/bench-perf-{bare,shim}.data)")
        groups = {}
        for mode, rows in prof.items():
            for (comm, dso, _), ns in rows.items():
                groups.setdefault((comm, dso), {"bare": 0, "shim": 0})[mode] += ns
        for (comm, dso), v in sorted(groups.items(), key=lambda kv: -kv[1]["shim"]):
            if max(v.values()) >= 20:
                print("  %-16s %-22s bare %7.0f  shim %7.0f  %+7.0f" % (
                    comm, dso, v["bare"], v["shim"], v["shim"] - v["bare"]))
        print("  %-39s bare %7.0f  shim %7.0f  %+7.0f" % (
            "total", sum(prof["bare"].values()), sum(prof["shim"].values()),
            sum(prof["shim"].values()) - sum(prof["bare"].values())))
        keys = set(prof["bare"]) | set(prof["shim"])
        diff = sorted(((prof["shim"].get(k, 0) - prof["bare"].get(k, 0), k) for k in keys),
                      reverse=True)
        print("perf: symbols that grew most (ns/request, shim - bare)")
        for d, (comm, dso, sym) in diff[:25]:
            print("  %+6.0f  %-16s %-22s %s" % (d, comm, dso, sym))

    # ------------------------------------------------------------ main
    def run(self):
        a = self.args
        sections = a.only.split(",")
        self.start_standins()
        self.probe_exporters()
        for name in ("micro", "nginx", "node", "paced", "evidence"):
            if name not in sections:
                continue
            try:
                getattr(self, "run_" + name)()
            except Exception as e:  # noqa: BLE001 - a section's failure is reported
                self.results["errors"][name] = "%s: %s" % (type(e).__name__, e)
                log("bench: %s failed:\n%s" % (name, traceback.format_exc()))
        if a.perf:
            self.run_perf()


# ---------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, bench, name, port, standin=False):
        self.b = bench
        self.prefix = bench.path(name)
        os.makedirs(os.path.join(self.prefix, "html"))
        os.chmod(self.prefix, 0o755)
        os.chmod(os.path.join(self.prefix, "html"), 0o755)
        self.port = port
        self.standin = standin
        self.proc = None
        self.errlog = os.path.join(self.prefix, "error.log")
        self.stderr_path = os.path.join(self.prefix, "stderr")

    def write_conf(self):
        d = self.prefix
        # The 615-byte page of a stock nginx install, served by sendfile.
        idx = os.path.join(d, "html", "index.html")
        with open(idx, "w") as f:
            f.write("<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n"
                    "<body>" + "x" * 545 + "</body></html>\n")
        os.chmod(idx, 0o644)
        if self.standin:
            server = "location / { return 200 \"{}\"; }"
        else:
            server = ("root %s/html;\n        index index.html;\n"
                      "        location = /nginx_status { stub_status; }" % d)
        access = ("access_log %s/access.log;" % d) if self.standin else "access_log off;"
        conf = """
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {access}
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ text/html html; }}
    default_type application/json;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        {server}
    }}
}}
""".format(d=d, port=self.port, server=server, access=access)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self, env, cpu):
        self.write_conf()
        self.proc = spawn(cpu + [NGINX, "-p", self.prefix + "/", "-c", self.conf, "-e", self.errlog],
                          env=env, stderr=open(self.stderr_path, "w"))
        wait_port(self.port, 15, self.proc)
        deadline = time.monotonic() + 10
        while not children(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError("nginx %s: no worker" % self.prefix)
            time.sleep(0.02)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def worker_pid(self):
        return children(self.proc.pid)[0]

    def stub_requests(self):
        s = http_get(self.port, "/nginx_status")
        m = re.search(r"^\s*\d+\s+\d+\s+(\d+)", s, re.M)
        return int(m.group(1))

    def stop(self, timeout=40.0):
        """Graceful stop (SIGQUIT): the worker exits, flushing its spans."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_proc(self.proc)
                raise RuntimeError("nginx did not stop within %.0fs of SIGQUIT" % timeout)
        return time.monotonic() - t0

    def served_before_stop(self):
        return None if self.standin else self.stub_requests()

    def served_after_stop(self, served):
        return served

    def access_lines(self):
        try:
            with open(os.path.join(self.prefix, "access.log"), "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0

    def kill(self):
        if self.proc:
            kill_proc(self.proc)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def messages(self):
        out = []
        for p in (self.errlog, self.stderr_path):
            try:
                with open(p, errors="replace") as f:
                    out += [l.strip() for l in f if "cruddur" in l]
            except OSError:
                pass
        return out[:20]


# ---------------------------------------------------------------- node

class NodeServer:
    def __init__(self, bench, mode, name):
        self.b = bench
        self.name = name
        self.mode = mode
        self.dir = bench.path(name)
        os.makedirs(self.dir)
        self.portfile = os.path.join(self.dir, "port")
        self.countfile = os.path.join(self.dir, "count")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.proc = None
        self.port = None

    def start(self):
        env = self.b.base_env()
        env.update(self.b.sink_env("bench-node", self.name))
        env.update({"PORTFILE": self.portfile, "COUNTFILE": self.countfile})
        argv = [NODE]
        if self.mode == "shim":
            env["LD_PRELOAD"] = LIB
        elif self.mode == "otel":
            env.update({
                "NODE_PATH": os.path.join(NODE_PREFIX, "node_modules"),
                # Local detectors only: no cloud metadata requests.
                "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
            })
            argv += ["--require", os.path.join(BENCH_DIR, "otel.js")]
        argv.append(os.path.join(BENCH_DIR, "server.js"))
        self.proc = spawn(self.b.server_cpu + argv, env=env, stderr=open(self.stderr_path, "w"))
        self.port = int(wait_file(self.portfile, 30, self.proc))
        wait_port(self.port, 10, self.proc)

    def pids(self):
        return [self.proc.pid]

    def stop(self, timeout=40.0):
        t0 = time.monotonic()
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_proc(self.proc)
                raise RuntimeError("node did not exit within %.0fs of SIGTERM" % timeout)
        return time.monotonic() - t0

    def served_before_stop(self):
        return None

    def served_after_stop(self, served):
        try:
            with open(self.countfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return served

    def kill(self):
        if self.proc:
            kill_proc(self.proc)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def messages(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return [l.strip() for l in f if l.strip()][:20]
        except OSError:
            return []


# ---------------------------------------------------------------- evidence

def read_counts(path):
    with open(path, "rb") as f:
        b = f.read(32)
    return [int.from_bytes(b[i:i + 8], "little") for i in range(0, 32, 8)]


def thread_names(pid):
    names = {}
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    names[int(tid)] = f.read().strip()
            except OSError:
                pass
    except OSError:
        pass
    return names


_SYSCALL = re.compile(r"^(?:\d+\.\d+ )?([a-z_0-9]+)\(")


def count_syscalls(tdir, names, requests):
    """Per thread role: {syscall: calls per request}, from strace -ff files."""
    roles = {"app": {}, "exporter": {}}
    for fn in os.listdir(tdir):
        if not fn.startswith("t."):
            continue
        tid = int(fn[2:])
        role = "exporter" if names.get(tid) == EXPORTER_THREAD else "app"
        with open(os.path.join(tdir, fn), errors="replace") as f:
            for line in f:
                m = _SYSCALL.match(line)
                if m:  # "<... resumed>" lines continue a call already counted
                    roles[role][m.group(1)] = roles[role].get(m.group(1), 0) + 1
    out = {"requests": requests}
    for role, d in roles.items():
        out[role] = {k: v / requests for k, v in sorted(d.items())}
        out[role + "_total_per_req"] = sum(d.values()) / requests
    return out


# ---------------------------------------------------------------- summary

def summarize_pair(base, test):
    """base/test: compare() results of two modes. Medians over the runs of
    each mode, medians of per-pair ratios test/base (pairs in run order),
    and each server's totals (RSS, spans served and received)."""
    pairs = list(zip(base["runs"], test["runs"]))

    def ratio(key):
        return median([t[key] / b[key] for b, t in pairs if b.get(key) and t.get(key) is not None])

    s = {"pairs": len(pairs),
         "rps_ratio": ratio("rps"), "cpu_ratio": ratio("cpu_us_per_req"),
         "p50_ratio": ratio("p50_ms"), "p99_ratio": ratio("p99_ms"),
         "rss_delta_mib": test["total"]["rss_mib"] - base["total"]["rss_mib"]}
    for side, mode in (("base", base), ("test", test)):
        s[side] = {k: median([r.get(k) for r in mode["runs"]])
                   for k in ("rps", "cpu_us_per_req", "exporter_cpu_us_per_req", "p50_ms",
                             "p99_ms", "cpu_util", "load_cpu_util", "foreign_cpu")}
        t = mode["total"]
        s[side].update({k: t.get(k) for k in (
            "rss_mib", "served", "spans_received", "spans_dropped", "otlp_posts",
            "xray_segments", "xray_dropped", "udp_rcvbuf_errors", "standin_requests")})
        s[side]["spans_per_post"] = (t["spans_received"] / t["otlp_posts"]
                                     if t.get("otlp_posts") else None)
    return s


def fmt(x, spec="%.2f"):
    return "-" if x is None else spec % x


def verdict(ok):
    return "PASS" if ok else "MISS"


def report(b):
    r = b.results
    lines = []
    P = lines.append
    a = b.args
    P("")
    P("cruddur benchmark  %s  %s  %d cores, %s" % (
        git_describe(), datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), os.cpu_count() or 0,
        "server on CPU 0, load on CPU 1" if b.pin else "unpinned"))
    P("wrk -t1 -c32, %ss runs after %ss warm-up, %d A/B pairs, medians of per-pair ratios; "
      "every configured sink on, 100%% sampling" % (a.duration, a.warmup, a.pairs))
    for n in b.notes:
        P("note: " + n)

    m = r["micro"]
    if m:
        P("")
        P("hook path (tests/bench/hookpath.c: conn.c driven directly, no I/O; median 64-request "
          "block, median of %d rounds x %d requests)" % (m["rounds"], m["requests_per_round"]))
        P("  keep-alive request, wrk GET + nginx head + sendfile body  %7.1f ns/request" %
          m["ns_per_request_keepalive_nginx"])
        P("  keep-alive request, wrk GET + node head+body in one write %7.1f ns/request" %
          m["ns_per_request_keepalive_node"])
        P("  keep-alive request, browser GET (14 headers, traceparent) %7.1f ns/request" %
          m["ns_per_request_keepalive_rich"])
        P("  new connection + 1 request + close (getsockname)          %7.1f ns/connection" %
          m["ns_per_connection"])
        if m.get("instructions_per_request"):
            P("  callgrind: %.0f instructions per wrk/nginx keep-alive request; top: %s" % (
                m["instructions_per_request"], ", ".join(
                    "%s %.0f" % (t["function"], t["instructions_per_request"])
                    for t in m["top_functions"][:6])))
        elif m.get("callgrind"):
            P("  callgrind: " + m["callgrind"])
        P("exporter work, per span (batches of %d, from the spans above)" % m["batch"])
        P("  crd_span_view                                             %7.3f us/span" %
          m["us_per_span_view"])
        P("  OTLP protobuf  crd_otlp_pb_size + crd_otlp_pb_encode      %7.3f us/span  %5.0f B/span" % (
            m["us_per_span_otlp_protobuf"], m["bytes_per_span_otlp_protobuf"]))
        P("  OTLP JSON      crd_otlp_json_encode                       %7.3f us/span  %5.0f B/span" % (
            m["us_per_span_otlp_json"], m["bytes_per_span_otlp_json"]))
        if "us_per_span_xray_cloudwatch" in m:
            P("  X-Ray + CloudWatch (segments; access lines, body)        %7.3f us/span  %5.0f + %.0f B/span" % (
                m["us_per_span_xray_cloudwatch"], m["bytes_per_span_xray"],
                m["bytes_per_span_cloudwatch"]))
        if m.get("export_instructions_per_span"):
            P("  callgrind, instructions/span: " + ", ".join(
                "%s %.0f" % (k, v) for k, v in m["export_instructions_per_span"].items())
              + " (SHA-256 portable under valgrind)")

    def table(title, rows, saturation_note=True):
        P("")
        P(title)
        P("  %-21s %8s %9s %7s %6s %7s %8s %7s %8s %8s %7s" % (
            "", "req/s", "CPU us/rq", "export", "srv%", "p50 ms", "p99 ms", "RSS MiB", "served",
            "received", "dropped"))
        for name, s in rows:
            traced = s["spans_received"] or "bare" not in name
            P("  %-21s %8s %9s %7s %6s %7s %8s %7s %8s %8s %7s" % (
                name, fmt(s["rps"], "%.0f"), fmt(s["cpu_us_per_req"], "%.2f"),
                fmt(s["exporter_cpu_us_per_req"], "%.2f") if s["exporter_cpu_us_per_req"] else "-",
                fmt(s["cpu_util"] and 100 * s["cpu_util"], "%.0f"),
                fmt(s["p50_ms"], "%.3f"), fmt(s["p99_ms"], "%.2f"), fmt(s["rss_mib"], "%.1f"),
                s["served"], s["spans_received"] if traced else "-",
                s["spans_dropped"] if traced else "-"))
        for name, s in rows:
            if s.get("otlp_posts"):
                extra = ""
                if s.get("xray_segments"):
                    extra += "; X-Ray: %d segments, %d dropped%s" % (
                        s["xray_segments"], s["xray_dropped"],
                        " (%d lost in our UDP receive buffer)" % s["udp_rcvbuf_errors"]
                        if s["udp_rcvbuf_errors"] else "")
                if s.get("standin_requests"):
                    extra += "; Rollbar/CloudWatch stand-in: %d requests" % s["standin_requests"]
                P("  %s: OTLP %d spans in %d POSTs (%.0f spans/POST)%s" % (
                    name, s["spans_received"], s["otlp_posts"], s["spans_per_post"], extra))
        fr = [s["foreign_cpu"] for _, s in rows if s.get("foreign_cpu") is not None]
        ld = [s["load_cpu_util"] for _, s in rows if s.get("load_cpu_util") is not None]
        if fr:
            P("  wrk + stand-ins used %.0f%% of a CPU; other processes on the machine: %.0f%% of "
              "all CPUs (median)%s" % (100 * median(ld), 100 * median(fr),
                                       "  <- noisy machine: compare ratios, not absolutes"
                                       if median(fr) > 0.05 else ""))
        for name, s in rows if saturation_note else ():
            if s["cpu_util"] is not None and s["cpu_util"] < 0.9:
                P("  note: %s used %.0f%% of its CPU: not saturated (the load generator or other "
                  "processes limited it); CPU/request is the figure to compare" % (
                      name, 100 * s["cpu_util"]))
                break

    def ratios(label, s):
        P("  %-22s req/s %sx  CPU/req %sx  p50 %sx  p99 %sx  RSS %+.1f MiB" % (
            label, fmt(s["rps_ratio"], "%.3f"), fmt(s["cpu_ratio"], "%.3f"),
            fmt(s["p50_ratio"], "%.2f"), fmt(s["p99_ratio"], "%.2f"), s["rss_delta_mib"] or 0))

    ng = r["nginx"]
    if ng:
        s = ng["summary"]
        table("nginx 1.22, 1 worker, 615-byte static page (medians of %d runs; served/received/"
              "dropped: totals)" % s["pairs"], [("nginx bare", s["base"]), ("nginx + cruddur shim", s["test"])])
        ratios("shim / bare", s)
    nd = r["node"]
    if nd:
        s = nd["summary"]
        rows = [("node bare", s["base"]), ("node + cruddur shim", s["test"])]
        if nd.get("vs_otel"):
            rows.append(("node + OTel JS", nd["vs_otel"]["base"]))
        table("node:http (%s), 12-byte JSON answer (medians of %d runs)" % (
            node_version(), s["pairs"]), rows)
        ratios("shim / bare", s)
        if nd.get("vs_otel"):
            ratios("shim / OTel JS", nd["vs_otel"])
        elif nd.get("otel_skipped"):
            P("  node + OTel JS: skipped (%s)" % nd["otel_skipped"])
    pc = r["paced"]
    if pc:
        for kind, v in pc.items():
            s = v["summary"]
            table("%s at a fixed %d requests/s (bench/pace.lua; medians of %d runs)" % (
                kind, v["rate"], s["pairs"]), [("%s bare" % kind, s["base"]),
                                               ("%s + cruddur shim" % kind, s["test"])],
                  saturation_note=False)
            ratios("shim / bare", s)
    ev = r["evidence"]
    if ev:
        P("")
        P("hook path evidence, nginx worker (per request)")
        ma = ev["malloc"]
        if "bare" in ma and "shim" in ma:
            P("  heap allocations, app threads:    bare %.3f  shim %.3f  (delta %+.4f calls, %+.1f B)" % (
                ma["bare"]["app_calls_per_req"], ma["shim"]["app_calls_per_req"],
                ma["shim"]["app_calls_per_req"] - ma["bare"]["app_calls_per_req"],
                ma["shim"]["app_bytes_per_req"] - ma["bare"]["app_bytes_per_req"]))
            P("  heap allocations, exporter thread: %.4f calls, %.0f B" % (
                ma["shim"]["exporter_calls_per_req"], ma["shim"]["exporter_bytes_per_req"]))
        sc = ev["syscalls"]
        if "bare" in sc and "shim" in sc:
            P("  syscalls, worker thread:          bare %.3f  shim %.3f  (delta %+.4f)" % (
                sc["bare"]["app_total_per_req"], sc["shim"]["app_total_per_req"],
                sc["shim"]["app_total_per_req"] - sc["bare"]["app_total_per_req"]))
            names = sorted(set(sc["bare"]["app"]) | set(sc["shim"]["app"]))
            diff = [(n, sc["bare"]["app"].get(n, 0), sc["shim"]["app"].get(n, 0)) for n in names]
            P("    " + "  ".join("%s %.3f" % (n, s_) for n, _, s_ in diff if s_ >= 0.001))
            extra = [(n, bb, ss) for n, bb, ss in diff if abs(ss - bb) >= 0.002]
            P("    differing: " + (", ".join("%s %.4f -> %.4f" % t for t in extra) or "none"))
            P("    futex on the worker thread: %.5f/request (a wake per full batch: %.5f)" % (
                sc["shim"]["app"].get("futex", 0), 1 / 512))
            P("  syscalls, exporter thread:        %.4f/request (%s)" % (
                sc["shim"]["exporter_total_per_req"],
                ", ".join("%s %.4f" % (k, v) for k, v in sorted(
                    sc["shim"]["exporter"].items(), key=lambda kv: -kv[1])[:6])))

    P("")
    P("targets")
    for name, ok, text in targets(b):
        P("  %-4s %-28s %s" % ("-" if ok is None else verdict(ok), name, text))
    for k, e in r["errors"].items():
        P("  ERROR in %s: %s" % (k, e))
    return "\n".join(lines)


def node_version():
    try:
        return subprocess.run([NODE, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def targets(b):
    r = b.results
    T = TARGETS
    out = []
    ng, nd, m, pc = r["nginx"], r["node"], r["micro"], r["paced"]
    def at_rate(kind):
        if pc and kind in pc:
            return "; at %d req/s: %sx" % (pc[kind]["rate"], fmt(pc[kind]["summary"]["cpu_ratio"], "%.3f"))
        return ""

    if ng:
        s = ng["summary"]
        out.append(("nginx CPU/request", s["cpu_ratio"] is not None and s["cpu_ratio"] <= T["nginx_cpu_ratio"],
                    "%sx bare at max rate (target <= %.2fx)%s" % (
                        fmt(s["cpu_ratio"], "%.3f"), T["nginx_cpu_ratio"], at_rate("nginx"))))
        out.append(("nginx throughput", s["rps_ratio"] is not None and s["rps_ratio"] >= T["nginx_rps_ratio"],
                    "%sx bare (target >= %.2fx)" % (fmt(s["rps_ratio"], "%.3f"), T["nginx_rps_ratio"])))
    if nd:
        s = nd["summary"]
        out.append(("node CPU/request", s["cpu_ratio"] is not None and s["cpu_ratio"] <= T["node_cpu_ratio"],
                    "%sx bare at max rate (target <= %.2fx)%s" % (
                        fmt(s["cpu_ratio"], "%.3f"), T["node_cpu_ratio"], at_rate("node"))))
        if nd.get("vs_otel"):
            v = nd["vs_otel"]["rps_ratio"]
            out.append(("node throughput vs OTel JS", v is not None and v >= T["node_vs_otel_rps"],
                        "%sx OpenTelemetry JS (target >= %.1fx)" % (fmt(v, "%.2f"), T["node_vs_otel_rps"])))
        else:
            out.append(("node throughput vs OTel JS", None, "skipped: %s" % nd.get("otel_skipped")))
    if m:
        v = m["ns_per_request_keepalive_nginx"]
        out.append(("hook path", v <= T["hook_ns"], "%.0f ns/request (target <= %.0f)" % (v, T["hook_ns"])))
    if pc or ng:
        # Verdict: the paced nginx run (20k/s reached, zero drops); without
        # it, the maximum-rate runs if they reached 20k/s. Drops at the
        # maximum rate are shown either way.
        parts, ok = [], None
        if pc:
            for k, v in pc.items():
                t = v["summary"]["test"]
                reached = (t["rps"] or 0) >= 0.95 * v["rate"]
                parts.append("%s at %d/s: %d dropped (achieved %.0f req/s%s)" % (
                    k, v["rate"], t["spans_dropped"], t["rps"] or 0,
                    "" if reached else ", rate not reached"))
                if k == "nginx":
                    # Not reached with zero drops: inconclusive (busy machine).
                    ok = (t["spans_dropped"] == 0) if reached else (
                        False if t["spans_dropped"] else None)
        for name, res in (("nginx", ng), ("node", nd)):
            if res:
                t = res["summary"]["test"]
                parts.append("%s at max rate (%.0f req/s): %d dropped" % (
                    name, t["rps"] or 0, t["spans_dropped"]))
                if ok is None and name == "nginx" and (t["rps"] or 0) >= T["paced_rate"]:
                    ok = t["spans_dropped"] == 0
        out.append(("zero drops at 20k req/s", ok, "; ".join(parts)))
    deltas = [res["summary"]["rss_delta_mib"] for res in (ng, nd) if res]
    if deltas:
        worst = max(deltas)
        out.append(("RSS overhead", worst <= T["rss_mib"],
                    "+%.1f MiB worst (nginx %s, node %s; target <= %.0f MiB)" % (
                        worst, fmt(ng and ng["summary"]["rss_delta_mib"], "%+.1f"),
                        fmt(nd and nd["summary"]["rss_delta_mib"], "%+.1f"), T["rss_mib"])))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=5, help="A/B pairs per comparison (5)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run (5)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run (1)")
    ap.add_argument("--paced-pairs", type=int, default=3,
                    help="A/B pairs at the fixed rate (3)")
    ap.add_argument("--micro-requests", type=int, default=500000)
    ap.add_argument("--only", default="micro,nginx,node,paced,evidence")
    ap.add_argument("--quick", action="store_true", help="1 pair, 2 s runs (smoke test)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server/load to CPUs")
    ap.add_argument("--json", default=os.path.join(BUILD, "bench.json"))
    ap.add_argument("--perf", action="store_true",
                    help="also perf record -g the instrumented nginx worker and print the profile")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    a = ap.parse_args(argv)
    if a.quick:
        a.pairs, a.paced_pairs, a.duration, a.micro_requests = 1, 1, 2, 100000
    for exe in (LIB, HOOKPATH, OTLP_COUNT, MALLOC_COUNT):
        if not os.path.exists(exe):
            sys.exit("bench: %s missing: run `make bench`" % os.path.relpath(exe, REPO))
    for exe, what in ((NGINX, "nginx"), (NODE, "node"), (WRK, "wrk")):
        if not os.path.exists(exe):
            sys.exit("bench: %s not installed (scripts/install-deps.sh)" % what)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    b = Bench(a)
    t0 = time.monotonic()
    try:
        b.run()
    finally:
        cleanup()
        if not a.keep:
            shutil.rmtree(b.tmp, ignore_errors=True)
        else:
            log("kept %s" % b.tmp)
    text = report(b)
    print(text)
    doc = {"commit": git_describe(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "host": {"cpus": os.cpu_count(), "kernel": platform.release(), "pinned": b.pin,
                    "node": node_version()},
           "config": {"pairs": a.pairs, "duration_s": a.duration, "warmup_s": a.warmup,
                      "connections": 32, "exporters": b.exporters},
           "targets": {name: {"pass": ok, "detail": text_} for name, ok, text_ in targets(b)},
           "notes": b.notes, "seconds": round(time.monotonic() - t0, 1)}
    doc.update(b.results)
    doc["sink_log"] = b.sink_log
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
    print("\nwritten: %s (%.0f s)" % (os.path.relpath(a.json, REPO) if a.json.startswith(REPO)
                                      else a.json, time.monotonic() - t0))
    return 1 if b.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
