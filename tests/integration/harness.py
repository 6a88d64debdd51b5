"""harness.py - plumbing for cruddur's integration tests.

Paths, ports, processes under the shim, a raw-socket HTTP/1.x client, and the
span assertions that encode the library contract.

Typical test:

    def test_something():
        with harness.Ctx("test_something") as ctx:
            srv = ctx.start_cserver("epoll")
            with harness.Conn(srv.port) as c:
                exs = [c.request("GET", "/x?y=1"), c.request("POST", "/", body=b"abc")]
            ctx.expect_one_span_per_request(exs, pid=srv.pid)

Environment knobs:
  CRUDDUR_TEST_NOSHIM=1   run every server WITHOUT LD_PRELOAD and expect zero
                          spans (validates the plumbing without the library)
  CRUDDUR_TEST_KEEP=1     keep each test's temp dir (logs, configs)
  CRUDDUR_TEST_LIB=PATH   use another build of the library
  CRUDDUR_TEST_BUILD=DIR  take the test servers and proto modules from DIR
                          (default build/; `make test-asan` uses build-asan/)
  CRUDDUR_TEST_ASAN=1     the library is an ASan/UBSan build: every process
                          started with it preloaded gets the ASan runtime first
                          in LD_PRELOAD and ASAN_OPTIONS/UBSAN_OPTIONS that log
                          reports to files (run.py fails a test that left any)
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# ------------------------------------------------------------------ paths

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get("CRUDDUR_TEST_BUILD") or os.path.join(REPO, "build"))
LIB = os.path.abspath(os.environ.get("CRUDDUR_TEST_LIB") or os.path.join(BUILD, "libcruddur.so"))
CSERVER = os.path.join(BUILD, "servers", "cserver")
PROTO_PY = os.path.join(BUILD, "proto_py")
MAP_FILE = os.path.join(REPO, "preload", "cruddur.map")
PYTHON = "/usr/bin/python3"
NGINX = "/usr/sbin/nginx"
NODE = shutil.which("node") or "/usr/bin/node"

sys.path.insert(0, os.path.join(REPO, "tests", "receiver"))
if PROTO_PY not in sys.path:
    sys.path.insert(0, PROTO_PY)
from otlp_receiver import OTLPReceiver, PROTOBUF, JSON  # noqa: E402

SHIM = os.environ.get("CRUDDUR_TEST_NOSHIM", "") not in ("1", "true", "yes")
KEEP = os.environ.get("CRUDDUR_TEST_KEEP", "") in ("1", "true", "yes")

# ------------------------------------------------------------------ ASan mode
# (make test-asan). An ASan-built library can only be preloaded behind the
# ASan runtime (it must be the first object the loader maps, or it aborts),
# so with CRUDDUR_TEST_ASAN=1 every subprocess whose LD_PRELOAD names the
# library (or that is handed CRUDDUR_LIB, i.e. scripts/cruddur-run) gets the
# runtime put first; tests keep writing LD_PRELOAD=harness.LIB. The options:
# detect_leaks=0: leaks of nginx/node/python are not ours (the unit tests
# check ours, leak detection on); handle_*=0: the crash tests need our
# handlers and the default death, not ASan's SEGV report; disable_coredump=0:
# they also compare core dumps with and without us; log_path: reports
# land in files that run.py collects (stderr is asserted on by tests).
ASAN = os.environ.get("CRUDDUR_TEST_ASAN", "") in ("1", "true", "yes")
ASAN_RT = ""
ASAN_LOG = os.environ.get("CRUDDUR_TEST_ASAN_LOG") or os.path.join(tempfile.gettempdir(),
                                                                    "cruddur-asan")
ASAN_OPTIONS = ("detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:"
                "handle_abort=0:allow_user_segv_handler=1:disable_coredump=0:log_path=" + ASAN_LOG)
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1:log_path=" + ASAN_LOG


def _split_preload(v):
    return [p for p in re.split(r"[:\s]+", v or "") if p]


def asan_strip(v):
    """An LD_PRELOAD value without the ASan runtime (for tests that check
    the exact value a program saw)."""
    return ":".join(p for p in _split_preload(v) if p != ASAN_RT) if ASAN else v


def _asan_env(env):
    pre = _split_preload(env.get("LD_PRELOAD"))
    lib = os.path.realpath(LIB)
    if not (any(os.path.realpath(p) == lib for p in pre) or env.get("CRUDDUR_LIB")):
        return env
    env = dict(env)
    env["LD_PRELOAD"] = ":".join([ASAN_RT] + [p for p in pre if p != ASAN_RT])
    env.setdefault("ASAN_OPTIONS", ASAN_OPTIONS)
    env.setdefault("UBSAN_OPTIONS", UBSAN_OPTIONS)
    return env


if ASAN:
    ASAN_RT = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    ASAN_RT = os.path.realpath(ASAN_RT)
    if not os.path.isabs(ASAN_RT) or not os.path.exists(ASAN_RT):
        raise SystemExit("CRUDDUR_TEST_ASAN=1: no ASan runtime (gcc -print-file-name=libasan.so)")
    _popen_init = subprocess.Popen.__init__

    def _asan_popen_init(self, args, *a, **kw):
        if len(a) >= 9:  # env passed positionally (nobody does; keep it as is)
            return _popen_init(self, args, *a, **kw)
        kw["env"] = _asan_env(dict(os.environ) if kw.get("env") is None else kw["env"])
        return _popen_init(self, args, *a, **kw)

    subprocess.Popen.__init__ = _asan_popen_init

STD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
SPAN_KIND_SERVER = 2
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2

# Span timing slack: start may not precede our first byte by more than
# START_SLACK; end may follow our receipt of the last byte by END_SLACK (the
# server thread stamps the end after write() returns, possibly after we read).
START_SLACK_NS = 20_000_000
END_SLACK_NS = 250_000_000


class Skip(Exception):
    """Raise to skip a test (reason in the message)."""


def timeout(seconds):
    """Decorator: per-test timeout for run.py."""
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def need_lib():
    if SHIM and not os.path.exists(LIB):
        raise AssertionError("%s not found (run `make`)" % LIB)


# ------------------------------------------------------------------ ports

def free_port(host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_port(port, timeout=10.0, proc=None, host="127.0.0.1"):
    """Wait until host:port accepts a TCP connection. The probe connection
    sends nothing (so a correct shim makes no span for it)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError("%s exited (rc=%s) before listening on %d%s" % (
                proc.name, proc.returncode(), port, proc.log_tail()))
        try:
            s = socket.create_connection((host, port), timeout=0.5)
            s.close()
            return
        except OSError as e:
            last = e
            time.sleep(0.02)
    raise AssertionError("port %d not listening after %.1fs (%s)%s" % (
        port, timeout, last, proc.log_tail() if proc else ""))


def wait_portfile(path, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                txt = f.read().strip()
            if txt:
                return int(txt)
        except (OSError, ValueError):
            pass
        if proc is not None and not proc.alive():
            raise AssertionError("%s exited (rc=%s) before writing %s%s" % (
                proc.name, proc.returncode(), path, proc.log_tail()))
        time.sleep(0.02)
    raise AssertionError("no port in %s after %.1fs%s" % (
        path, timeout, proc.log_tail() if proc else ""))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def child_pids(pid):
    """Direct children of pid (scans /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return sorted(out)


# ------------------------------------------------------------------ env

def clean_env():
    """os.environ without anything that could configure the shim."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "CRUDDUR_")) and k not in ("LD_PRELOAD",)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return env


def shim_env(receiver_port, service, extra=None, shim=True):
    env = clean_env()
    if shim:
        env["LD_PRELOAD"] = LIB
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:%d" % receiver_port
    env["OTEL_BSP_SCHEDULE_DELAY"] = "50"
    env["OTEL_SERVICE_NAME"] = service
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# ------------------------------------------------------------------ processes

class Proc:
    """A child process with stdout/stderr in files."""

    def __init__(self, argv, env, cwd=None, name=None, log_dir=None, new_session=False):
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        log_dir = log_dir or tempfile.gettempdir()
        tag = "%s-%d" % (re.sub(r"[^A-Za-z0-9_.-]", "_", self.name), random.randrange(1 << 30))
        self.stdout_path = os.path.join(log_dir, tag + ".out")
        self.stderr_path = os.path.join(log_dir, tag + ".err")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.t_start = time.time()
        self.popen = subprocess.Popen(self.argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=self._err,
                                      start_new_session=new_session)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def wait(self, timeout):
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        if self.alive():
            try:
                self.popen.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, term_timeout=5.0, kill_timeout=3.0):
        """SIGTERM, then SIGKILL. Returns (returncode, how) where how is
        'exited' (already), 'term' or 'kill'."""
        if not self.alive():
            self._close_files()
            return self.popen.returncode, "exited"
        self.signal(signal.SIGTERM)
        rc = self.wait(term_timeout)
        how = "term"
        if rc is None:
            self.signal(signal.SIGKILL)
            rc = self.wait(kill_timeout)
            how = "kill"
        self._close_files()
        return rc, how

    def _close_files(self):
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass

    def stdout(self):
        return _read(self.stdout_path)

    def stderr(self):
        return _read(self.stderr_path)

    def log_tail(self, n=1500):
        out, err = self.stdout(), self.stderr()
        s = ""
        if err.strip():
            s += "\n  [%s stderr] %s" % (self.name, err[-n:].strip().replace("\n", "\n    "))
        if out.strip():
            s += "\n  [%s stdout] %s" % (self.name, out[-n:].strip().replace("\n", "\n    "))
        return s


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ------------------------------------------------------------------ servers

class Server:
    """A started server: .proc (the process we launched), .pid (the process
    that answers: for nginx the worker), .port."""

    def __init__(self, proc, port, pid=None, kind=""):
        self.proc = proc
        self.port = port
        self.pid = pid if pid is not None else (proc.pid if proc else None)
        self.kind = kind

    def stop(self):
        return self.proc.stop()


NODE_SCRIPT = r"""
const http = require('http');
const fs = require('fs');
const server = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (d) => { n += d.length; });
  req.on('end', () => {
    const u = new URL(req.url, 'http://x');
    let m = u.pathname.match(/^\/status\/(\d{3})$/);
    if (m) {
      const code = +m[1];
      res.writeHead(code, {'Content-Type': 'text/plain'});
      res.end('status ' + code + '\n');
    } else if (u.pathname === '/post') {
      const body = 'got ' + n + '\n';
      res.writeHead(201, {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body)});
      res.end(body);
    } else if (u.pathname === '/chunked') {
      res.writeHead(200, {'Content-Type': 'text/plain'});
      res.write('one\n'); res.write('two\n'); res.end('three\n');
    } else {
      res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 6});
      res.end('hello\n');
    }
  });
});
server.keepAliveTimeout = 30000;
process.on('SIGTERM', () => { process.exit(0); });
server.listen(+process.env.PORT || 0, '127.0.0.1', () => {
  const pf = process.env.PORTFILE;
  if (pf) { fs.writeFileSync(pf + '.tmp', String(server.address().port)); fs.renameSync(pf + '.tmp', pf); }
});
"""

PY11_SCRIPT = r'''
import http.server, signal, sys, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "py11"
    sys_version = ""
    def log_message(self, *a):
        pass
    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/status/500":
            self._send(500, b"boom\n")
        elif path == "/status/404":
            self._send(404, b"nope\n")
        elif path == "/query":
            self._send(200, ("q=" + query + "\n").encode())
        elif path == "/json":
            self._send(200, b'{"ok":true}\n', "application/json")
        else:
            self._send(200, b"hello\n")
    do_HEAD = do_GET
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        self._send(201, b"got %d\n" % len(data))
    do_PUT = do_POST
    def do_DELETE(self):
        self._send(204, b"")
def bye(*a):
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
pf = sys.argv[1]
with open(pf + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(pf + ".tmp", pf)
srv.serve_forever()
'''


class Nginx:
    """nginx in a temp prefix: daemon, master + 1 worker."""

    def __init__(self, ctx, prefix=None, port=None):
        self.ctx = ctx
        self.prefix = prefix or ctx.mkdir("nginx")
        # the worker runs as nobody: it must reach the html dir
        os.chmod(ctx.tmp, 0o755)
        os.chmod(self.prefix, 0o755)
        self.html = os.path.join(self.prefix, "html")
        os.makedirs(self.html, exist_ok=True)
        os.chmod(self.html, 0o755)
        self.port = port or free_port()
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.pidfile = os.path.join(self.prefix, "nginx.pid")
        self.errlog = os.path.join(self.prefix, "error.log")
        self.master_pid = None
        self.worker_pid = None
        self.launcher = None
        ctx._nginx.append(self)

    def write_files(self):
        idx = os.path.join(self.html, "index.html")
        if not os.path.exists(idx):
            with open(idx, "w") as f:
                f.write("<html><body>cruddur nginx test</body></html>\n")
            big = os.path.join(self.html, "big.bin")
            with open(big, "wb") as f:
                f.write(bytes((97 + i % 26) for i in range(300 * 1024)))
            for p in (idx, big):
                os.chmod(p, 0o644)
        d = self.prefix
        conf = """
daemon on;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    types {{ text/html html; application/octet-stream bin; }}
    sendfile on;
    keepalive_requests 10000;
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {d}/html;
        location = /index.html {{ }}
        location = /big.bin {{ }}
        location /status/500 {{ return 500; }}
        location /status/503 {{ return 503 "unavailable\\n"; }}
        location /post {{ return 200 "posted\\n"; }}
        location / {{ return 404; }}
    }}
}}
""".format(d=d, port=self.port)
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self, shim=None, extra_env=None, timeout=10.0):
        self.write_files()
        for p in (self.pidfile,):
            if os.path.exists(p):
                os.unlink(p)
        env = self.ctx.env(extra_env, shim=shim)
        self.launcher = self.ctx.start([NGINX, "-p", self.prefix + "/", "-c", self.conf,
                                        "-e", self.errlog],
                                       env=env, name="nginx", track=False)
        rc = self.launcher.wait(timeout)
        if rc != 0:
            raise AssertionError("nginx launcher rc=%s%s\n  error.log: %s" % (
                rc, self.launcher.log_tail(), _read(self.errlog)[-1500:]))
        self.ctx.defer(self.kill)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.master_pid = int(open(self.pidfile).read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.02)
        if not self.master_pid:
            raise AssertionError("nginx wrote no pid file; error.log: %s" % _read(self.errlog)[-1500:])
        wait_port(self.port, timeout)
        while time.monotonic() < deadline:
            kids = child_pids(self.master_pid)
            if kids:
                self.worker_pid = kids[0]
                break
            time.sleep(0.02)
        if not self.worker_pid:
            raise AssertionError("nginx master %d has no worker" % self.master_pid)
        return Server(self.launcher, self.port, pid=self.worker_pid, kind="nginx")

    def quit(self, timeout=10.0):
        """Graceful stop (nginx -s quit), wait for master and worker to exit."""
        r = subprocess.run([NGINX, "-p", self.prefix + "/", "-c", self.conf, "-e", self.errlog,
                            "-s", "quit"], env=clean_env(), capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("nginx -s quit rc=%d: %s" % (r.returncode, r.stderr.decode()))
        deadline = time.monotonic() + timeout
        pids = [p for p in (self.master_pid, self.worker_pid) if p]
        while time.monotonic() < deadline:
            if not any(pid_alive(p) for p in pids):
                return
            time.sleep(0.02)
        raise AssertionError("nginx still running %.0fs after -s quit" % timeout)

    def kill(self):
        pids = [p for p in (self.master_pid, self.worker_pid) if p]
        if self.master_pid:
            pids += child_pids(self.master_pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            live = [p for p in set(pids) if pid_alive(p)]
            if not live:
                return
            for p in live:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and any(pid_alive(p) for p in live):
                time.sleep(0.02)

    def error_log(self):
        return _read(self.errlog)


# ------------------------------------------------------------------ test context

class Ctx:
    """Per-test context: temp dir, receiver, processes, cleanup."""

    def __init__(self, name, shim=None, receiver=True, receiver_mode="ok", allow_stderr=False):
        """allow_stderr: do not fail the test when a process printed
        `cruddur:` messages (by default any such message is a failure: the
        library only speaks up about problems)."""
        self.name = name
        self.allow_stderr = allow_stderr
        self._nginx = []
        self.shim = SHIM if shim is None else shim
        self._want_receiver = receiver
        self._receiver_mode = receiver_mode
        self.receiver = None
        self.tmp = None
        self._cleanups = []
        self._procs = []
        self.t0_ns = None

    def __enter__(self):
        if self.shim:
            need_lib()
        self.t0_ns = time.time_ns()
        self.tmp = tempfile.mkdtemp(prefix="cruddur-it-%s-" % self.name)
        if self._want_receiver:
            self.receiver = OTLPReceiver(mode=self._receiver_mode).start()
        return self

    def cruddur_messages(self):
        """`cruddur:` lines the processes of this test printed on stderr
        (nginx workers' stderr goes to the error log)."""
        msgs = []
        sources = [(p.name, p.stderr()) for p in self._procs]
        sources += [("nginx error.log", ng.error_log()) for ng in self._nginx]
        sources += [("nginx launcher", ng.launcher.stderr()) for ng in self._nginx if ng.launcher]
        for name, text in sources:
            for line in text.splitlines():
                if "cruddur:" in line:
                    msgs.append("%s: %s" % (name, line.strip()[:300]))
        return msgs

    def _save_sanitizer_stderr(self):
        """ASan mode: with GCC, UBSan reports (and ASan ones a UBSan
        runtime re-routed) go to stderr whatever log_path says; copy every
        stderr that has one next to the ASan logs, where run.py finds it."""
        sources = [(p.name, p.stderr()) for p in self._procs]
        sources += [("nginx-error.log", ng.error_log()) for ng in self._nginx]
        sources += [("nginx-launcher", ng.launcher.stderr()) for ng in self._nginx if ng.launcher]
        for i, (name, text) in enumerate(sources):
            if re.search(r"runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer", text):
                with open("%s.stderr-%s-%d" % (ASAN_LOG, re.sub(r"[^\w.-]", "_", name), i), "w") as f:
                    f.write(text)

    def _dump_logs(self):
        for p in self._procs:
            sys.stderr.write("---- %s pid=%s rc=%s argv=%s\n%s\n" % (
                p.name, p.pid, p.returncode(), " ".join(p.argv)[:200], p.log_tail(4000)))
        for ng in self._nginx:
            sys.stderr.write("---- nginx error.log\n%s\n" % ng.error_log()[-4000:])
        if self.receiver is not None:
            for r in self.receiver.requests()[-20:]:
                sys.stderr.write("receiver: %s %s ct=%r ce=%r -> %s spans=%d %s\n" % (
                    r["method"], r["path"], r["content_type"], r["content_encoding"], r["status"],
                    r["spans"], r["error"] or ""))

    def __exit__(self, et, ev, tb):
        errors = []
        if et is not None:
            try:
                self._dump_logs()
            except Exception:
                pass
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning
                errors.append("%s: %s" % (getattr(fn, "__name__", fn), e))
        for p in reversed(self._procs):
            try:
                p.stop(term_timeout=3)
            except Exception as e:
                errors.append("stop %s: %s" % (p.name, e))
        if self.receiver is not None:
            self.receiver.stop()
        if ASAN:
            self._save_sanitizer_stderr()
        if et is None and self.shim and not self.allow_stderr:
            msgs = self.cruddur_messages()
            if msgs:
                errors.append("the library printed on stderr: " + " | ".join(msgs[:5]))
        if self.tmp and not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            sys.stderr.write("kept %s\n" % self.tmp)
        if errors and et is None:
            raise AssertionError("; ".join(errors))
        return False

    def defer(self, fn):
        self._cleanups.append(fn)

    def mkdir(self, name):
        p = os.path.join(self.tmp, name)
        os.makedirs(p, exist_ok=True)
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def env(self, extra=None, shim=None, service=None):
        shim = self.shim if shim is None else shim
        port = self.receiver.port if self.receiver else 9  # discard port
        return shim_env(port, service or self.name, extra, shim=shim)

    def start(self, argv, env=None, extra_env=None, shim=None, cwd=None, name=None, track=True):
        if env is None:
            env = self.env(extra_env, shim=shim)
        p = Proc(argv, env, cwd=cwd or self.tmp, name=name, log_dir=self.tmp)
        if track:
            self._procs.append(p)
        return p

    # -- specific servers --
    def start_cserver(self, mode, extra_env=None, shim=None, timeout=10.0):
        if not os.path.exists(CSERVER):
            raise AssertionError("%s not built (make %s)" % (CSERVER, os.path.relpath(CSERVER, REPO)))
        pf = self.path("cserver-%s-%d.port" % (mode, random.randrange(1 << 30)))
        p = self.start([CSERVER, "--port", "0", "--mode", mode, "--portfile", pf],
                       extra_env=extra_env, shim=shim, name="cserver-" + mode)
        port = wait_portfile(pf, timeout, p)
        return Server(p, port, kind="cserver-" + mode)

    def start_python_http_server(self, extra_env=None, shim=None, directory=None):
        port = free_port()
        directory = directory or self.mkdir("www")
        p = self.start([PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                        "--directory", directory], extra_env=extra_env, shim=shim,
                       name="python-http.server")
        wait_port(port, 15, p)
        return Server(p, port, kind="python-http.server")

    def start_python11(self, extra_env=None, shim=None):
        script = self.path("py11_server.py")
        with open(script, "w") as f:
            f.write(PY11_SCRIPT)
        pf = self.path("py11.port")
        p = self.start([PYTHON, script, pf], extra_env=extra_env, shim=shim, name="python11")
        port = wait_portfile(pf, 15, p)
        return Server(p, port, kind="python11")

    def start_node(self, extra_env=None, shim=None):
        if not os.path.exists(NODE):
            raise Skip("node not installed")
        pf = self.path("node.port")
        extra = dict(extra_env or {})
        extra["PORTFILE"] = pf
        p = self.start([NODE, "-e", NODE_SCRIPT], extra_env=extra, shim=shim, name="node")
        port = wait_portfile(pf, 20, p)
        return Server(p, port, kind="node")

    def nginx(self, prefix=None):
        return Nginx(self, prefix=prefix)

    # -- assertions --
    def expect_one_span_per_request(self, exchanges, **kw):
        """See expect_one_span_per_request(); here max_latency defaults to
        3 s (servers run with OTEL_BSP_SCHEDULE_DELAY=50): pass None when
        spans may only arrive at exit."""
        kw.setdefault("max_latency", 3.0)
        return expect_one_span_per_request(self.receiver, exchanges, service=kw.pop("service", self.name),
                                           shim=self.shim, t0_ns=self.t0_ns, **kw)

    def expect_no_spans(self, wait=1.0):
        expect_no_spans(self.receiver, wait)


# ------------------------------------------------------------------ HTTP client

_RID_PREFIX = "%04x" % random.randrange(1 << 16)
_rid_counter = [0]
_rid_lock = threading.Lock()
AUTO = object()


def new_rid():
    with _rid_lock:
        _rid_counter[0] += 1
        return "%s-%d" % (_RID_PREFIX, _rid_counter[0])


def ua_for(rid):
    return "cruddur-it/%s" % rid


class Req:
    """One request to send. headers: list of (name, value); host: the Host
    value (AUTO = 127.0.0.1:<port>, None = no Host header); ua: the
    User-Agent (AUTO = unique per request, used to match its span; None =
    none); chunks: send body with Transfer-Encoding: chunked split into these
    pieces."""

    def __init__(self, method="GET", target="/", headers=None, body=None, chunks=None,
                 version="1.1", host=AUTO, ua=AUTO, close=False, traceparent=None,
                 tracestate=None, xff=None):
        self.method = method
        self.target = target
        self.headers = list(headers or [])
        self.body = body
        self.chunks = chunks
        self.version = version
        self.host = host
        self.rid = new_rid()
        self.ua = ua_for(self.rid) if ua is AUTO else ua
        self.close = close
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.xff = xff

    @property
    def minor(self):
        return int(self.version.split(".")[1])

    def body_bytes(self):
        if self.chunks is not None:
            return b"".join(self.chunks)
        return self.body

    def has_body(self):
        b = self.body_bytes()
        return b is not None and len(b) > 0

    def host_value(self, port):
        if self.host is AUTO:
            return "127.0.0.1:%d" % port
        return self.host

    def to_bytes(self, port):
        lines = ["%s %s HTTP/%s" % (self.method, self.target, self.version)]
        h = self.host_value(port)
        if h is not None:
            lines.append("Host: %s" % h)
        if self.ua is not None:
            lines.append("User-Agent: %s" % self.ua)
        if self.traceparent is not None:
            lines.append("traceparent: %s" % self.traceparent)
        if self.tracestate is not None:
            lines.append("tracestate: %s" % self.tracestate)
        if self.xff is not None:
            lines.append("X-Forwarded-For: %s" % self.xff)
        for k, v in self.headers:
            lines.append("%s: %s" % (k, v))
        if self.close:
            lines.append("Connection: close")
        body = b""
        if self.chunks is not None:
            lines.append("Transfer-Encoding: chunked")
            for c in self.chunks:
                if c:
                    body += b"%x\r\n%s\r\n" % (len(c), c)
            body += b"0\r\n\r\n"
        elif self.body is not None:
            if not any(k.lower() == "content-length" for k, _ in self.headers):
                lines.append("Content-Length: %d" % len(self.body))
            body = self.body
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []
        self.body = b""
        self.raw = b""
        self.interim = []
        self.chunked = False
        self.content_length = None
        self.close_delimited = False
        self.no_body = False

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def __repr__(self):
        return "<Response %s %s %d bytes>" % (self.status, self.reason, len(self.body))


class Exchange:
    """A request we sent and the response we read, with timings."""

    def __init__(self, req, port, client_port, conn_id):
        self.req = req
        self.port = port
        self.client_port = client_port
        self.conn_id = conn_id
        self.resp = None
        self.t_send_ns = None
        self.t_recv_ns = None

    @property
    def rid(self):
        return self.req.rid

    def __repr__(self):
        return "<%s %s %s -> %s>" % (self.rid, self.req.method, self.req.target,
                                     self.resp.status if self.resp else None)


class ConnectionClosed(Exception):
    pass


class Conn:
    """A raw-socket HTTP/1.x client connection (keep-alive, pipelining,
    split writes). Responses are read honouring Content-Length, chunked
    coding, and close-delimited bodies."""

    _ids = [0]

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = bytearray()
        self.eof = False
        self.connects = 0
        self.connect()

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.connects += 1
        Conn._ids[0] += 1
        self.conn_id = Conn._ids[0]
        self.local_port = self.sock.getsockname()[1]

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- low level --
    def send_raw(self, data, pieces=None, delay=0.0):
        """Send bytes; pieces=k splits them into k-byte writes."""
        if pieces:
            for i in range(0, len(data), pieces):
                self.sock.sendall(data[i:i + pieces])
                if delay:
                    time.sleep(delay)
        else:
            self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            d = self.sock.recv(262144)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("connection closed with %d of %d bytes" % (len(self.buf), n))
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                return self._take(i + 2)
            if not self._fill():
                raise ConnectionClosed("connection closed in a line (%r)" % bytes(self.buf[:80]))

    def read_response(self, head_request=False):
        r = Response()
        raw = bytearray()
        while True:
            while True:
                i = self.buf.find(b"\r\n\r\n")
                if i >= 0:
                    break
                if not self._fill():
                    if not self.buf and not raw:
                        raise ConnectionClosed("connection closed before a response")
                    raise ConnectionClosed("connection closed in a response head (%r)" % bytes(self.buf[:200]))
            head = self._take(i + 4)
            raw += head
            lines = head[:-4].decode("latin-1").split("\r\n")
            m = re.match(r"^HTTP/(\d\.\d) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError("bad status line %r" % lines[0])
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers.append((k.strip(), v.strip()))
            status = int(m.group(2))
            if 100 <= status < 200 and status != 101:
                r.interim.append((status, headers))
                continue
            r.version, r.status, r.reason, r.headers = m.group(1), status, m.group(3) or "", headers
            break
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if head_request or status in (204, 304):
            r.no_body = True
        elif "chunked" in te:
            r.chunked = True
            body = bytearray()
            while True:
                line = self._line()
                raw += line
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        t = self._line()
                        raw += t
                        if t == b"\r\n":
                            break
                    break
                data = self._take(size + 2)
                raw += data
                body += data[:-2]
            r.body = bytes(body)
        elif cl is not None:
            r.content_length = int(cl)
            r.body = self._take(r.content_length)
            raw += r.body
        else:
            r.close_delimited = True
            while self._fill():
                pass
            r.body = bytes(self.buf)
            raw += self.buf
            self.buf = bytearray()
        r.raw = bytes(raw)
        return r

    def read_until_close(self):
        while self._fill():
            pass
        d = bytes(self.buf)
        self.buf = bytearray()
        return d

    # -- high level --
    def request(self, method="GET", target="/", pieces=None, delay=0.0, **kw):
        """Send one request (a Req or its fields) and read its response."""
        req = method if isinstance(method, Req) else Req(method, target, **kw)
        if self.sock is None or self.eof:
            self.connect()
        ex = Exchange(req, self.port, self.local_port, self.conn_id)
        data = req.to_bytes(self.port)
        ex.t_send_ns = time.time_ns()
        self.send_raw(data, pieces=pieces, delay=delay)
        ex.resp = self.read_response(head_request=req.method == "HEAD")
        ex.t_recv_ns = time.time_ns()
        if _wants_close(req, ex.resp):
            self.read_until_close()
            self.close()
            self.eof = True
        return ex

    def request_expect100(self, req, wait_continue=True):
        """Send the head with Expect: 100-continue, wait for the interim
        100 response, then the body; read the final response."""
        if self.sock is None or self.eof:
            self.connect()
        req.headers.append(("Expect", "100-continue"))
        data = req.to_bytes(self.port)
        i = data.index(b"\r\n\r\n") + 4
        ex = Exchange(req, self.port, self.local_port, self.conn_id)
        ex.t_send_ns = time.time_ns()
        self.send_raw(data[:i])
        interim = None
        if wait_continue:
            while True:
                j = self.buf.find(b"\r\n\r\n")
                if j >= 0:
                    break
                if not self._fill():
                    raise ConnectionClosed("closed while waiting for 100 Continue")
            interim = self._take(j + 4)
            if not interim.startswith(b"HTTP/1.1 100"):
                raise AssertionError("expected 100 Continue, got %r" % interim[:60])
        self.send_raw(data[i:])
        ex.resp = self.read_response(head_request=req.method == "HEAD")
        if interim is not None:
            ex.resp.interim.insert(0, (100, []))
            ex.resp.raw = interim + ex.resp.raw
        ex.t_recv_ns = time.time_ns()
        if _wants_close(req, ex.resp):
            self.read_until_close()
            self.close()
            self.eof = True
        return ex

    def pipeline(self, reqs, split=None, delay=0.0):
        """Send all requests back to back, then read the responses in order.
        Without split: one write. With split (an int, or a callable
        returning the next piece size) the bytes go out in pieces from a
        sender thread (so large responses cannot deadlock us) with delay
        seconds between pieces."""
        if self.sock is None or self.eof:
            self.connect()
        exs = [Exchange(r, self.port, self.local_port, self.conn_id) for r in reqs]
        data = b"".join(r.to_bytes(self.port) for r in reqs)
        t = time.time_ns()
        for ex in exs:
            ex.t_send_ns = t
        sender = None
        send_err = []
        if split is None:
            self.send_raw(data)
        else:
            nxt = split if callable(split) else (lambda: split)

            def send_pieces():
                try:
                    i = 0
                    while i < len(data):
                        n = max(1, int(nxt()))
                        self.sock.sendall(data[i:i + n])
                        i += n
                        if delay:
                            time.sleep(delay)
                except OSError as e:
                    send_err.append(e)

            sender = threading.Thread(target=send_pieces, daemon=True)
            sender.start()
        try:
            for ex in exs:
                ex.resp = self.read_response(head_request=ex.req.method == "HEAD")
                ex.t_recv_ns = time.time_ns()
        finally:
            if sender is not None:
                sender.join(30)
        if send_err:
            raise AssertionError("sending the pipeline failed: %s" % send_err[0])
        if exs and _wants_close(exs[-1].req, exs[-1].resp):
            self.read_until_close()
            self.close()
            self.eof = True
        return exs


def _wants_close(req, resp):
    c = (resp.header("Connection") or "").lower()
    if "close" in c or req.close or resp.close_delimited:
        return True
    if resp.version == "1.0" and "keep-alive" not in c:
        return True
    return False


def get(port, target="/", **kw):
    """One request on a fresh connection (closed afterwards)."""
    with Conn(port) as c:
        return c.request("GET", target, **kw)


def strip_date(raw):
    """Remove Date: header lines from raw response bytes."""
    return re.sub(rb"(?im)^date:[^\r\n]*\r\n", b"", raw)


def exchange_raw(port, data, expect_responses, head_flags=None, pieces=None):
    """Send raw bytes on a new connection and return the raw bytes of the
    expected number of responses (plus anything until close if the server
    closes)."""
    with Conn(port) as c:
        c.send_raw(data, pieces=pieces)
        out = b""
        for i in range(expect_responses):
            r = c.read_response(head_request=bool(head_flags and head_flags[i]))
            out += r.raw
        return out


# ------------------------------------------------------------------ trace context

_TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse_traceparent(tp):
    """(trace_id, parent_id, flags) for a valid version-00 traceparent, else None."""
    if tp is None:
        return None
    m = _TP_RE.match(tp)
    if not m:
        return None
    tid, pid, fl = m.group(1), m.group(2), int(m.group(3), 16)
    if tid == "0" * 32 or pid == "0" * 16:
        return None
    return tid, pid, fl


def random_traceparent(sampled=True):
    return "00-%032x-%016x-%s" % (random.getrandbits(128) | 1, random.getrandbits(64) | 1,
                                  "01" if sampled else "00")


# ------------------------------------------------------------------ span assertions

def expected_resp_body_size(ex):
    """The response body size a correct span reports, or None when it may be
    absent or 0 (HEAD, 204, 304)."""
    r = ex.resp
    if r.no_body:
        return None
    return len(r.body)


def check_span(span, ex, *, service=None, pid=None, pid_not=None, content_type=PROTOBUF,
               content_encoding="", resource_extra=None, server_port=None, peer_ip="127.0.0.1",
               t0_ns=None, check_timing=True, path_prefix_ok=False):
    """Return a list of contract violations of span for exchange ex."""
    errs = []
    req, resp = ex.req, ex.resp
    a = span["attributes"]

    def eq(what, got, want):
        if got != want:
            errs.append("%s = %r, want %r" % (what, got, want))

    def attr(key, want):
        if key not in a:
            errs.append("attribute %s missing (want %r)" % (key, want))
        elif type(a[key]) is not type(want) or a[key] != want:
            errs.append("attribute %s = %r (%s), want %r (%s)" % (
                key, a[key], type(a[key]).__name__, want, type(want).__name__))

    def absent(key, why):
        if key in a:
            errs.append("attribute %s = %r present, want absent (%s)" % (key, a[key], why))

    eq("kind", span["kind"], SPAN_KIND_SERVER)
    m = req.method
    if m in STD_METHODS:
        eq("name", span["name"], m)
        attr("http.request.method", m)
        absent("http.request.method_original", "standard method")
    else:
        eq("name", span["name"], "HTTP")
        attr("http.request.method", "_OTHER")
        attr("http.request.method_original", m)

    path, qmark, query = req.target.partition("?")
    if path_prefix_ok:
        got = a.get("url.path")
        if not isinstance(got, str) or not got or not path.startswith(got):
            errs.append("url.path = %r, want a prefix of %r" % (got, path[:60] + "..."))
    else:
        attr("url.path", path)
        if qmark:
            attr("url.query", query)
        else:
            absent("url.query", "target has no query")
    attr("url.scheme", "http")

    host = req.host_value(ex.port)
    sport = server_port if server_port is not None else ex.port
    if host is not None:
        hname, hport = split_host(host)
        attr("server.address", hname)
        attr("server.port", hport if hport is not None else sport)
    else:
        attr("server.port", sport)
    if req.xff:
        attr("client.address", req.xff.split(",")[0].strip())
    else:
        attr("client.address", peer_ip)
    attr("network.peer.address", peer_ip)
    attr("network.peer.port", ex.client_port)
    attr("network.protocol.version", "1.%d" % req.minor)
    if req.ua is not None:
        attr("user_agent.original", req.ua)
    else:
        absent("user_agent.original", "no User-Agent sent")

    attr("http.response.status_code", resp.status)
    want_bs = expected_resp_body_size(ex)
    if want_bs is None:
        if a.get("http.response.body.size", 0) != 0:
            errs.append("http.response.body.size = %r for a bodiless response (%s %s), want "
                        "absent or 0" % (a.get("http.response.body.size"), req.method, resp.status))
    else:
        attr("http.response.body.size", want_bs)
    if req.has_body():
        attr("http.request.body.size", len(req.body_bytes()))
    else:
        absent("http.request.body.size", "request had no body")
    if resp.status >= 500:
        attr("error.type", str(resp.status))
        eq("status_code", span["status_code"], STATUS_ERROR)
    else:
        absent("error.type", "status %d" % resp.status)
        eq("status_code", span["status_code"], STATUS_UNSET)

    # timing
    s, e = span["start_ns"], span["end_ns"]
    if not (isinstance(s, int) and isinstance(e, int) and 0 < s < e):
        errs.append("start_ns=%r end_ns=%r: want 0 < start < end" % (s, e))
    elif check_timing:
        if s < ex.t_send_ns - START_SLACK_NS:
            errs.append("start_ns is %.3f ms before the request was sent" % ((ex.t_send_ns - s) / 1e6))
        if e > ex.t_recv_ns + END_SLACK_NS:
            errs.append("end_ns is %.3f ms after the response was received" % ((e - ex.t_recv_ns) / 1e6))
        if t0_ns is not None and s < t0_ns - START_SLACK_NS:
            errs.append("start_ns before the test started")

    # ids and trace context
    tid, sid, par = span["trace_id"], span["span_id"], span["parent_span_id"]
    if not re.match(r"^[0-9a-f]{32}$", tid) or tid == "0" * 32:
        errs.append("bad trace_id %r" % tid)
    if not re.match(r"^[0-9a-f]{16}$", sid) or sid == "0" * 16:
        errs.append("bad span_id %r" % sid)
    tp = parse_traceparent(req.traceparent)
    if tp:
        eq("trace_id", tid, tp[0])
        eq("parent_span_id", par, tp[1])
        if sid == tp[1]:
            errs.append("span_id equals the incoming parent id")
        if span["flags"] & 0x300 != 0x300:
            errs.append("flags = %#x: want has-is-remote and is-remote (0x300) set" % span["flags"])
        if span["flags"] & 1 != tp[2] & 1:
            errs.append("flags = %#x: sampled bit should be %d" % (span["flags"], tp[2] & 1))
        if req.tracestate is not None:
            eq("trace_state", span["trace_state"], req.tracestate)
    else:
        eq("parent_span_id", par, "")
        if req.traceparent is not None:
            bad_tid = req.traceparent.split("-")[1] if req.traceparent.count("-") >= 1 else ""
            if tid.lower() == bad_tid.lower():
                errs.append("trace_id taken from an invalid traceparent %r" % req.traceparent)
        if span["flags"] & 0x200:
            errs.append("flags = %#x: is-remote set on a root span" % span["flags"])
        if span["trace_state"]:
            errs.append("trace_state %r on a new trace" % span["trace_state"])
        if re.match(r"^[0-9a-f]{32}$", tid):
            secs = int(tid[:8], 16)
            now = ex.t_recv_ns // 1_000_000_000
            if abs(secs - now) > 5:
                errs.append("trace_id %s: first 4 bytes = %d, want epoch seconds ~%d" % (tid, secs, now))

    # resource
    res = span["resource"]

    def rattr(key, want):
        if key not in res:
            errs.append("resource %s missing (want %r)" % (key, want))
        elif type(res[key]) is not type(want) or res[key] != want:
            errs.append("resource %s = %r, want %r" % (key, res[key], want))

    if service is not None:
        rattr("service.name", service)
    rattr("telemetry.sdk.name", "cruddur")
    rattr("telemetry.sdk.language", "c")
    if not isinstance(res.get("host.name"), str) or not res.get("host.name"):
        errs.append("resource host.name missing")
    elif res["host.name"] != socket.gethostname():
        errs.append("resource host.name = %r, want %r" % (res["host.name"], socket.gethostname()))
    if pid is not None:
        rattr("process.pid", pid)
    elif not isinstance(res.get("process.pid"), int):
        errs.append("resource process.pid = %r, want an int" % (res.get("process.pid"),))
    if pid_not is not None and res.get("process.pid") == pid_not:
        errs.append("resource process.pid = %r is the pid it must not be" % pid_not)
    for k, v in (resource_extra or {}).items():
        rattr(k, v)
    eq("content type", span.get("content_type"), content_type)
    eq("content encoding", span.get("content_encoding", ""), content_encoding)
    return errs


def split_host(host):
    """'h:1' -> ('h', 1); 'h' -> ('h', None); '[::1]:8' -> ('[::1]'?, 8)."""
    if host.startswith("["):
        end = host.find("]")
        name = host[1:end]
        rest = host[end + 1:]
        return name, int(rest[1:]) if rest.startswith(":") else None
    if ":" in host:
        h, _, p = host.rpartition(":")
        return h, int(p)
    return host, None


def _span_key(span):
    ua = span["attributes"].get("user_agent.original")
    return ua if isinstance(ua, str) else None


def expect_one_span_per_request(receiver, exchanges, *, service, shim=True, timeout=10.0,
                                settle=0.5, t0_ns=None, ignore=None, max_latency=None, **check_kw):
    """Wait for exactly one span per exchange and check each against the
    contract. Returns {rid: span}. Without the shim, asserts that no span
    arrives and returns {}.

    Spans are matched to requests by their unique User-Agent; requests sent
    without one are matched by (method, target, status). ignore(span) -> True
    drops a span before matching (for requests whose span is unspecified).
    max_latency: seconds from a response to its span's arrival."""
    n = len(exchanges)
    if not shim:
        time.sleep(settle)
        got = receiver.spans()
        if got:
            raise AssertionError("no shim, yet %d spans arrived" % len(got))
        return {}
    spans = receiver.wait_for_spans(n, timeout)
    if len(spans) >= n:
        time.sleep(settle)  # anything extra?
        spans = receiver.spans()
    if ignore is not None:
        spans = [s for s in spans if not ignore(s)]
    errs = []
    bad = receiver.bad_requests()
    if bad:
        errs.append("receiver rejected %d export request(s): %s" % (len(bad), "; ".join(
            "%s %s ct=%r ce=%r -> %s %s" % (r["method"], r["path"], r["content_type"],
                                            r["content_encoding"], r["status"], r["error"])
            for r in bad[:3])))
    probs = receiver.problems()
    if probs:
        errs.append("export format problems: %s" % "; ".join(sorted(set(probs))[:5]))

    by_ua = {}
    for ex in exchanges:
        if ex.req.ua is not None:
            by_ua[ex.req.ua] = ex
    matched = {}
    leftovers = []
    for s in spans:
        k = _span_key(s)
        if k in by_ua:
            matched.setdefault(by_ua[k].rid, []).append(s)
        else:
            leftovers.append(s)
    for ex in exchanges:
        if ex.req.ua is not None:
            continue
        for s in list(leftovers):
            a = s["attributes"]
            path = ex.req.target.partition("?")[0]
            if (a.get("http.response.status_code") == ex.resp.status and a.get("url.path") == path
                    and (a.get("http.request.method") == ex.req.method or
                         a.get("http.request.method_original") == ex.req.method)):
                matched.setdefault(ex.rid, []).append(s)
                leftovers.remove(s)
                break

    missing = [ex for ex in exchanges if not matched.get(ex.rid)]
    dups = [ex for ex in exchanges if len(matched.get(ex.rid, [])) > 1]
    if len(spans) != n or missing or dups or leftovers:
        errs.insert(0, "sent %d requests, got %d spans (%d requests without a span, %d with "
                       "several, %d unmatched spans)" % (n, len(spans), len(missing), len(dups),
                                                          len(leftovers)))
        for ex in missing[:4]:
            errs.append("no span for %s %s -> %s" % (ex.req.method, ex.req.target[:80], ex.resp.status))
        for ex in dups[:3]:
            errs.append("%d spans for %s %s" % (len(matched[ex.rid]), ex.req.method, ex.req.target[:80]))
        for s in leftovers[:3]:
            errs.append("unmatched span: %s" % brief(s))
    span_ids = [s["span_id"] for s in spans]
    if len(set(span_ids)) != len(span_ids):
        errs.append("duplicate span ids")
    roots = [matched[ex.rid][0]["trace_id"] for ex in exchanges
             if matched.get(ex.rid) and parse_traceparent(ex.req.traceparent) is None]
    if len(set(roots)) != len(roots):
        errs.append("new traces share trace ids")
    out = {}
    for ex in exchanges:
        ss = matched.get(ex.rid)
        if not ss:
            continue
        out[ex.rid] = ss[0]
        e = check_span(ss[0], ex, service=service, t0_ns=t0_ns, **check_kw)
        if max_latency is not None and "received_at" in ss[0]:
            lat = ss[0]["received_at"] - ex.t_recv_ns / 1e9
            if lat > max_latency:
                e.append("span arrived %.1fs after the response (max %.1fs with "
                         "OTEL_BSP_SCHEDULE_DELAY=50)" % (lat, max_latency))
        if e:
            errs.append("%s %s -> %s: %s" % (ex.req.method, ex.req.target[:60], ex.resp.status,
                                             "; ".join(e)))
    if errs:
        raise AssertionError(summarize(errs))
    return out


def expect_no_spans(receiver, wait=1.0):
    time.sleep(wait)
    got = receiver.spans()
    if got:
        raise AssertionError("expected no spans, got %d: %s" % (len(got), brief(got[0])))
    reqs = receiver.requests()
    if reqs:
        raise AssertionError("expected no export requests, got %d" % len(reqs))


def brief(span):
    a = span.get("attributes", {})
    return "%s %s%s status=%s ua=%s" % (span.get("name"), a.get("url.path"),
                                        "?" + a["url.query"] if "url.query" in a else "",
                                        a.get("http.response.status_code"),
                                        a.get("user_agent.original"))


def summarize(errs, limit=12):
    more = len(errs) - limit
    s = "\n  - ".join(errs[:limit])
    if more > 0:
        s += "\n  - ... and %d more" % more
    return "\n  - " + s if len(errs) > 1 else s


def check_responses(exs, expected):
    """expected: list of (status, body or None) per exchange."""
    errs = []
    for ex, (st, body) in zip(exs, expected):
        if ex.resp.status != st:
            errs.append("%s %s: status %s, want %s" % (ex.req.method, ex.req.target, ex.resp.status, st))
        if body is not None and ex.resp.body != body:
            errs.append("%s %s: body %r..., want %r..." % (ex.req.method, ex.req.target,
                                                           ex.resp.body[:40], body[:40]))
    if errs:
        raise AssertionError(summarize(errs))


def pattern(n):
    """The a..z pattern cserver sends for /file and /big."""
    full = bytes(range(97, 123))
    return (full * (n // 26 + 1))[:n]
