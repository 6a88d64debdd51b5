"""Library hygiene: what build/libcruddur.so exports, how it calls the
functions it hooks, what it links against, and that preloading it into
programs that do no HTTP changes nothing."""

import os
import re
import subprocess
import time

import harness
from harness import LIB, MAP_FILE, timeout

IGNORED_EXPORTS = {"_init", "_fini"}
ALLOWED_NEEDED = {
    "linux-vdso.so.1", "linux-gate.so.1", "libc.so.6", "libdl.so.2", "libpthread.so.0",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "ld-linux.so.2", "ld-linux-armhf.so.3",
}
GOT_PLT_RELOCS = re.compile(r"^R_[A-Z0-9_]+_(JUMP_SLOT|GLOB_DAT)$")


def _need():
    if not harness.SHIM:
        raise harness.Skip("--no-shim: library hygiene not checked")
    if not os.path.exists(LIB):
        raise AssertionError("%s not found (run `make`)" % LIB)


def _run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError("%s failed (rc=%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r.stdout


def parse_version_script(path):
    """(global names, version node names) of a GNU ld version script."""
    if not os.path.exists(path):
        raise AssertionError("%s not found" % path)
    with open(path) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"(#|//)[^\n]*", " ", text)
    nodes = re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\{", text)
    names = set()
    for m in re.finditer(r"global\s*:(.*?)(?=local\s*:|\})", text, flags=re.S):
        for tok in re.split(r"[;\s]+", m.group(1)):
            tok = tok.strip()
            if tok:
                if any(ch in tok for ch in "*?["):
                    raise AssertionError("%s: wildcard %r in global: (list names explicitly)" % (path, tok))
                names.add(tok)
    if not names:
        raise AssertionError("%s: no names in a global: section" % path)
    return names, set(n for n in nodes if n not in ("extern",))


def exported_symbols(lib):
    """{name: nm type} of the defined dynamic symbols."""
    out = {}
    for line in _run(["nm", "-D", "--defined-only", lib]).splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        typ, name = parts[-2], parts[-1]
        name = name.split("@")[0]
        out[name] = typ
    return out


@timeout(30)
def test_exports_equal_version_script():
    """nm -D --defined-only == the global: names of preload/cruddur.map."""
    _need()
    names, nodes = parse_version_script(MAP_FILE)
    syms = exported_symbols(LIB)
    exported = {n for n, t in syms.items()
                if n not in IGNORED_EXPORTS and n not in nodes and t != "A"}
    errs = []
    extra = sorted(exported - names)
    missing = sorted(names - exported)
    if extra:
        errs.append("exported but not in %s: %s" % (os.path.basename(MAP_FILE), ", ".join(extra)))
    if missing:
        errs.append("listed in %s but not exported: %s" % (os.path.basename(MAP_FILE), ", ".join(missing)))
    data = sorted(n for n in names & exported if syms[n] not in ("T", "W", "i"))
    if data:
        errs.append("exported but not as functions: %s" % ", ".join(
            "%s (%s)" % (n, syms[n]) for n in data))
    if errs:
        raise AssertionError(harness.summarize(errs))


@timeout(30)
def test_no_plt_or_got_calls_to_hooked_functions():
    """The library must reach the real functions through dlsym(RTLD_NEXT)
    (or raw syscalls), never through its own PLT/GOT, which would bind to
    its own interposers (or the app's)."""
    _need()
    names, _ = parse_version_script(MAP_FILE)
    bad = set()
    for line in _run(["readelf", "-rW", LIB]).splitlines():
        parts = line.split()
        if len(parts) >= 5 and GOT_PLT_RELOCS.match(parts[2]):
            sym = parts[4].split("@")[0]
            if sym in names:
                bad.add("%s %s" % (parts[2], sym))
    if bad:
        raise AssertionError("relocations against hooked functions: %s" % ", ".join(sorted(bad)))


@timeout(30)
def test_ldd_only_libc():
    """Only libc/libdl/libpthread/the loader/vdso: everything else (libcurl,
    zlib...) must be dlopen'ed RTLD_LOCAL at run time."""
    _need()
    if harness.ASAN:
        raise harness.Skip("ASan build: it needs libasan/libubsan by design (`make test` checks this)")
    errs = []
    for line in _run(["ldd", LIB]).splitlines():
        line = line.strip()
        if not line:
            continue
        name = os.path.basename(line.split()[0])
        if name not in ALLOWED_NEEDED:
            errs.append("ldd: %s" % line)
    for line in _run(["readelf", "-dW", LIB]).splitlines():
        m = re.search(r"\(NEEDED\)\s+Shared library: \[(.+)\]", line)
        if m and m.group(1) not in ALLOWED_NEEDED:
            errs.append("DT_NEEDED %s" % m.group(1))
    if errs:
        raise AssertionError("unexpected dependencies: " + "; ".join(sorted(set(errs))))


def _preload_run(argv, extra=None, timeout_s=10):
    env = harness.shim_env(harness.free_port(), "test_preload_into_programs_without_http", extra)  # nobody listens there
    t = time.monotonic()
    r = subprocess.run(argv, env=env, capture_output=True, timeout=timeout_s)
    return r, time.monotonic() - t


@timeout(40)
def test_preload_into_programs_without_http():
    """Preloading into ordinary programs changes neither their output nor
    their exit status, and adds no noticeable delay at exit."""
    _need()
    errs = []
    for argv, want_out, want_rc in [(["/bin/true"], b"", 0),
                                    (["/bin/sh", "-c", "echo hi; echo err >&2; exit 3"], b"hi\n", 3),
                                    ([harness.PYTHON, "-c", "import socket; print(42)"], b"42\n", 0)]:
        r, dt = _preload_run(argv)
        want_err = b"err\n" if "err" in " ".join(argv) else b""
        if r.returncode != want_rc or r.stdout != want_out or r.stderr != want_err:
            errs.append("%s: rc=%d stdout=%r stderr=%r (want rc=%d stdout=%r stderr=%r)" % (
                " ".join(argv), r.returncode, r.stdout[:200], r.stderr[:300], want_rc, want_out, want_err))
        if dt > 2.0:
            errs.append("%s took %.1fs under the shim" % (" ".join(argv), dt))
    if errs:
        raise AssertionError(harness.summarize(errs))


@timeout(40)
def test_exit_with_unreachable_receiver():
    """A server with spans to export exits on SIGTERM within
    OTEL_BSP_EXPORT_TIMEOUT (the exit flush limit, retries included) even
    when nothing listens at the endpoint."""
    _need()
    with harness.Ctx("test_exit_with_unreachable_receiver", receiver=False, allow_stderr=True) as ctx:
        srv = ctx.start_cserver("rw", extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT":
                                                 "http://127.0.0.1:%d" % harness.free_port(),
                                                 "OTEL_BSP_EXPORT_TIMEOUT": "2000",
                                                 "OTEL_BSP_SCHEDULE_DELAY": "60000"})
        with harness.Conn(srv.port) as c:
            for i in range(5):
                ex = c.request("GET", "/u%d" % i)
                if ex.resp.status != 200:
                    raise AssertionError("status %s" % ex.resp.status)
        t = time.monotonic()
        rc, how = srv.proc.stop(term_timeout=10)
        dt = time.monotonic() - t
        if how != "term" or rc != 0:
            raise AssertionError("SIGTERM -> rc=%s (%s)%s" % (rc, how, srv.proc.log_tail()))
        if dt > 4:
            raise AssertionError("exit took %.1fs with an unreachable receiver and "
                                 "OTEL_BSP_EXPORT_TIMEOUT=2000" % dt)
