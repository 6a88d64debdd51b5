"""Packaging (issue #9): make install/uninstall, the Docker example (no
Docker engine here: the Dockerfile and compose file are parsed and what
they rely on is exercised), cruddur-run's preload detection and --check,
and cruddur-run as PID 1 in a PID namespace."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import Conn, Ctx, timeout

REPO = harness.REPO
EXAMPLE = os.path.join(REPO, "examples", "docker")
CRUDDUR_RUN = os.path.join(REPO, "scripts", "cruddur-run")
# Dockerfile reference: every instruction there is.
DOCKER_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD",
                       "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD",
                       "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
# A token the checks must never print whole (32 hex, like Rollbar's).
TOKEN = "0123456789abcdef0123456789abcdef"
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def run(argv, env=None, timeout_s=60, **kw):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s,
                          **kw)


def no_asan():
    if harness.ASAN:
        raise harness.Skip("runs an installed copy of the library through cruddur-run, "
                           "outside the harness's ASan preload (the runtime must load first)")


def base_env(**extra):
    env = harness.clean_env()
    for k in [k for k in env if k.startswith(("AWS_", "ROLLBAR_", "HONEYCOMB_"))]:
        del env[k]
    env["CRUDDUR_LIB"] = harness.LIB
    env.update({k: str(v) for k, v in extra.items()})
    return env


def strip_asan(v):
    """v without the ASan runtime harness adds in `make test-asan` (for
    "preload=..." lines too)."""
    f = getattr(harness, "asan_strip", None)
    if not f:
        return v
    if v.startswith("preload="):
        return "preload=" + f(v[8:])
    return f(v)


def need_shim():
    if not harness.SHIM:
        raise harness.Skip("needs the library (not --no-shim)")


def cruddur_lines(text):
    return [line for line in text.splitlines() if line.startswith("cruddur:")]


def install(stage, prefix="/usr/local", action="install"):
    """make install/uninstall into stage with the library under test, never
    rebuilding it (-o: the library counts as up to date)."""
    build = os.path.dirname(harness.LIB)
    if os.path.dirname(build) == REPO:
        build = os.path.basename(build)
    lib = os.path.join(build, "libcruddur.so")
    r = run(["make", "-s", "-o", lib, "BUILD=" + build, "DESTDIR=" + stage, "PREFIX=" + prefix,
             action], cwd=REPO, timeout_s=120)
    assert r.returncode == 0, "make %s: %s %s" % (action, r.stdout[-500:], r.stderr[-1500:])
    return stage + prefix


def tree(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


# ------------------------------------------------------------------ install

@timeout(120)
def test_make_install_uninstall_destdir():
    """make install lays out lib, bin and docs under DESTDIR/PREFIX; the
    installed cruddur-run finds the installed library on its own (no
    checkout needed) and honours CRUDDUR_LIB; make uninstall removes
    exactly what install added."""
    no_asan()
    harness.need_lib()
    with Ctx("test_make_install_uninstall_destdir", receiver=False, shim=False) as ctx:
        stage = ctx.mkdir("stage")
        # Something of someone else's in a directory install also uses.
        os.makedirs(os.path.join(stage, "usr/local/lib"))
        with open(os.path.join(stage, "usr/local/lib/other.so"), "w") as f:
            f.write("not ours")
        before = tree(stage)
        root = install(stage)
        errs = []
        want = {"lib/libcruddur.so": 0o755, "bin/cruddur-run": 0o755,
                "share/doc/cruddur/README.md": 0o644,
                "share/doc/cruddur/examples/docker/Dockerfile": 0o644,
                "share/doc/cruddur/examples/docker/docker-compose.yml": 0o644,
                "share/doc/cruddur/examples/docker/README.md": 0o644,
                "share/doc/cruddur/examples/docker/app/app.py": None}
        if os.path.exists(os.path.join(REPO, "scripts", "cruddur-view")):
            want["bin/cruddur-view"] = 0o755
        for rel, mode in want.items():
            p = os.path.join(root, rel)
            if not os.path.isfile(p):
                errs.append("%s not installed" % rel)
            elif mode is not None and os.stat(p).st_mode & 0o777 != mode:
                errs.append("%s mode %o, want %o" % (rel, os.stat(p).st_mode & 0o777, mode))
        with open(harness.LIB, "rb") as a, open(os.path.join(root, "lib/libcruddur.so"), "rb") as b:
            if a.read() != b.read():
                errs.append("installed library differs from %s" % harness.LIB)

        # The installed wrapper, with no CRUDDUR_LIB: ../lib beside it.
        run_bin = os.path.join(root, "bin", "cruddur-run")
        env = base_env()
        del env["CRUDDUR_LIB"]
        r = run([run_bin, "sh", "-c", 'echo "$LD_PRELOAD"'], env)
        if strip_asan(r.stdout.strip()) != os.path.join(root, "lib", "libcruddur.so"):
            errs.append("installed cruddur-run preloads %r, want the installed library (%s)"
                        % (r.stdout.strip(), r.stderr[-300:]))
        r = run([run_bin, "sh", "-c", 'echo "$LD_PRELOAD"'], base_env())
        if strip_asan(r.stdout.strip()) != harness.LIB:
            errs.append("CRUDDUR_LIB not honoured: %r" % r.stdout.strip())
        r = run([run_bin, "--check"], env)
        if r.returncode != 0 or "library: " + os.path.join(root, "lib", "libcruddur.so") not in r.stdout:
            errs.append("installed cruddur-run --check: rc %d: %s" % (r.returncode, r.stdout[-800:]))

        install(stage, action="uninstall")
        after = tree(stage)
        if after != before:
            errs.append("uninstall left %s, removed %s" % (sorted(after - before)[:10],
                                                           sorted(before - after)[:10]))
        if errs:
            raise AssertionError(harness.summarize(errs))


@timeout(120)
def test_example_app_spans_under_installed_cruddur_run():
    """The example backend (no instrumentation code), run from its
    installed copy by the installed cruddur-run, produces one SERVER span
    per request, a 500 marked as an error; the app maps the installed
    library."""
    no_asan()
    harness.need_lib()
    need_shim()
    with Ctx("test_example_app_spans_under_installed_cruddur_run", shim=False) as ctx:
        root = install(ctx.mkdir("stage"))
        app = os.path.join(root, "share/doc/cruddur/examples/docker/app/app.py")
        with open(app) as f:
            src = f.read()
        for mod in ("opentelemetry", "rollbar", "aws_xray_sdk", "watchtower", "cruddur"):
            assert not re.search(r"^\s*(import|from)\s+%s" % mod, src, re.M), \
                "the example app imports %s" % mod
        port = harness.free_port()
        env = ctx.env(shim=False, service="backend-flask", extra={"PORT": port})
        env.pop("CRUDDUR_LIB", None)
        p = ctx.start([os.path.join(root, "bin", "cruddur-run"), harness.PYTHON, app], env=env,
                      name="cruddur-run app.py")
        harness.wait_port(port, 15, p)
        kids = harness.child_pids(p.pid)
        with open("/proc/%d/maps" % kids[0]) as f:
            maps = f.read()
        assert os.path.join(root, "lib", "libcruddur.so") in maps, "the app does not map the library"
        with Conn(port) as c:
            codes = [c.request("GET", path).resp.status for path in
                     ("/api/activities/home", "/api/health-check", "/api/boom")]
        assert codes == [200, 200, 500], codes
        spans = ctx.receiver.wait_for_spans(3, timeout=15)
        got = sorted((s["attributes"].get("url.path"), s["attributes"].get("http.response.status_code"))
                     for s in spans)
        assert got == [("/api/activities/home", 200), ("/api/boom", 500),
                       ("/api/health-check", 200)], got
        for s in spans:
            assert s["resource"].get("service.name") == "backend-flask", s["resource"]
        boom = [s for s in spans if s["attributes"].get("url.path") == "/api/boom"][0]
        assert boom["attributes"].get("error.type") == "500", boom["attributes"]
        # docker stop: SIGTERM through the wrapper, a clean exit
        os.kill(p.pid, signal.SIGTERM)
        rc = p.wait(15)
        assert rc == 0, "app exit after SIGTERM: %s" % rc


# ------------------------------------------------------------------ Docker example

def parse_dockerfile(path):
    """[(INSTRUCTION, args)] with continuation lines joined, comments and
    parser directives dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if cur and s.lstrip().startswith("#"):
                continue  # comment inside a continued instruction
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            word, _, rest = cur.strip().partition(" ")
            out.append((word, rest.strip()))
            cur = ""
    assert not cur, "Dockerfile ends inside a continued line"
    return out


def stages(instrs):
    st = []
    for ins, args in instrs:
        if ins.upper() == "FROM":
            parts = args.split()
            st.append({"image": parts[0], "name": parts[2] if len(parts) == 3 and
                       parts[1].upper() == "AS" else None, "instrs": []})
        else:
            assert st, "%s before FROM" % ins
            st[-1]["instrs"].append((ins.upper(), args))
    return st


def copy_args(args):
    flags = {}
    words = args.split()
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        flags[k] = v
    return flags, words[:-1], words[-1]


@timeout(240)
def test_dockerfile_valid_and_build_stage_makes_the_library():
    """The Dockerfile parses: known instructions, a debian:12 build stage
    that runs make, an app stage that copies the library and cruddur-run
    from it, context sources that exist, ENTRYPOINT ["cruddur-run"] in exec
    form and a CMD whose script is copied. Then the build stage is replayed
    without Docker: only the files it COPYs, `make` in them, and the
    library it builds is the one the app stage copies."""
    errs = []
    instrs = parse_dockerfile(os.path.join(EXAMPLE, "Dockerfile"))
    for ins, args in instrs:
        if ins.upper() not in DOCKER_INSTRUCTIONS or ins != ins.upper():
            errs.append("unknown or lowercase instruction %s" % ins)
        if not args:
            errs.append("%s without arguments" % ins)
    st = stages(instrs)
    assert len(st) == 2, "want 2 stages, got %d" % len(st)
    build, app = st
    if not re.match(r"^debian:12(\.|$)", build["image"]) or build["name"] != "build":
        errs.append("build stage: FROM %s AS %s" % (build["image"], build["name"]))
    if not app["image"].startswith("debian:12"):
        errs.append("app stage FROM %s: want a Debian 12 image (the library's glibc)" % app["image"])
    workdir = [a for i, a in build["instrs"] if i == "WORKDIR"]
    runs = [a for i, a in build["instrs"] if i == "RUN"]
    if not any(re.search(r"(^|&&\s*|;\s*)make(\s|$)", r) for r in runs):
        errs.append("the build stage does not run make")
    built = {}  # path in the build stage -> repo source
    for ins, args in build["instrs"]:
        if ins in ("COPY", "ADD"):
            flags, srcs, dst = copy_args(args)
            for s in srcs:
                if not os.path.exists(os.path.join(REPO, s)):
                    errs.append("build stage: COPY source %s missing from the context" % s)
                d = dst if dst.startswith("/") else os.path.join(workdir[0], dst)
                built[os.path.normpath(os.path.join(d, os.path.basename(s.rstrip("/")))
                                       if dst.endswith("/") and not s.endswith("/") else d)] = s
    from_build, entry, cmd, app_copies = [], None, None, []
    for ins, args in app["instrs"]:
        if ins in ("COPY", "ADD"):
            flags, srcs, dst = copy_args(args)
            if flags.get("from") == "build":
                from_build += [(s, dst) for s in srcs]
            elif "from" in flags:
                errs.append("COPY --from=%s: no such stage" % flags["from"])
            else:
                for s in srcs:
                    if not os.path.exists(os.path.join(REPO, s)):
                        errs.append("app stage: COPY source %s missing from the context" % s)
                    app_copies.append((s, dst))
        elif ins in ("ENTRYPOINT", "CMD"):
            try:
                v = json.loads(args)
                assert isinstance(v, list) and v and all(isinstance(x, str) for x in v)
            except (ValueError, AssertionError):
                errs.append("%s %s: not in exec form (a JSON array of strings)" % (ins, args))
                continue
            if ins == "ENTRYPOINT":
                entry = v
            else:
                cmd = v
    if entry != ["cruddur-run"] and (not entry or os.path.basename(entry[0]) != "cruddur-run"):
        errs.append("ENTRYPOINT %s: want cruddur-run" % entry)
    dsts = {os.path.basename(s): d for s, d in from_build}
    if dsts.get("libcruddur.so") not in ("/usr/local/lib/libcruddur.so", "/usr/local/lib/"):
        errs.append("app stage: libcruddur.so copied to %s" % dsts.get("libcruddur.so"))
    if dsts.get("cruddur-run") not in ("/usr/local/bin/cruddur-run", "/usr/local/bin/"):
        errs.append("app stage: cruddur-run copied to %s (want /usr/local/bin, on PATH, "
                    "with ../lib the library)" % dsts.get("cruddur-run"))
    for s, _ in from_build:
        if s.endswith("libcruddur.so"):
            if s != os.path.join(workdir[0], "build", "libcruddur.so"):
                errs.append("COPY --from=build %s: make in %s builds build/libcruddur.so"
                            % (s, workdir[0]))
        elif s not in built:
            errs.append("COPY --from=build %s: the build stage has no such file" % s)
    if not cmd or not any(os.path.exists(os.path.join(REPO, s.rstrip("/"), os.path.basename(c)))
                          for s, _ in app_copies for c in cmd[1:]):
        errs.append("CMD %s: its script is not among the app stage's COPYs %s" % (cmd, app_copies))
    if errs:
        raise AssertionError(harness.summarize(errs))

    # Replay the build stage's COPYs and make.
    with Ctx("test_dockerfile_build_stage", receiver=False, shim=False) as ctx:
        src = ctx.mkdir("src")
        for dst, s in built.items():
            rel = os.path.relpath(dst, workdir[0])
            target = os.path.join(src, rel)
            if os.path.isdir(os.path.join(REPO, s)):
                shutil.copytree(os.path.join(REPO, s), target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(os.path.join(REPO, s), target)
        # A fresh make, as in the image: not the BUILD/SAN_FLAGS of a make
        # that may be running this suite (make exports them in MAKEFLAGS).
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "BUILD", "SAN_FLAGS")}
        r = run(["make", "-j2"], cwd=src, timeout_s=200, env=env)
        assert r.returncode == 0, "make in the build stage's files: %s" % r.stderr[-2000:]
        lib = os.path.join(src, "build", "libcruddur.so")
        assert os.path.isfile(lib), "make did not build build/libcruddur.so"
        r = run(["nm", "-D", "--defined-only", lib])
        assert re.search(r" T accept$", r.stdout, re.M), "the built library exports no accept"


def library_env_names():
    """Every environment variable name the library (C sources) and
    cruddur-run mention: upper-case string literals with an underscore."""
    names = set()
    lit = re.compile(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"')
    for d in ("preload", "export", "hooks"):
        for n in os.listdir(os.path.join(REPO, d)):
            if n.endswith(".c"):
                with open(os.path.join(REPO, d, n)) as f:
                    names.update(lit.findall(f.read()))
    with open(CRUDDUR_RUN) as f:
        names.update(re.findall(r'environ(?:\.get)?\(?\[?"([A-Z][A-Z0-9_]+)"', f.read()))
    return names


@timeout(60)
def test_compose_file_wiring_and_env_names():
    """docker-compose.yml parses; the backend is built from the example
    Dockerfile and sets only variables cruddur reads (checked against the
    sources), with every secret taken from the environment; X-Ray points at
    the daemon service; and cruddur-run --check, given the backend's
    environment (secrets filled in), finds nothing wrong and reports the
    four back ends."""
    import yaml  # python3-yaml (scripts/install-deps.sh)
    with open(os.path.join(EXAMPLE, "docker-compose.yml")) as f:
        doc = yaml.safe_load(f)
    errs = []
    svcs = doc.get("services") or {}
    assert set(svcs) == {"backend-flask", "xray-daemon"}, sorted(svcs)
    be, xd = svcs["backend-flask"], svcs["xray-daemon"]
    ctx_dir = os.path.normpath(os.path.join(EXAMPLE, be["build"]["context"]))
    if os.path.normpath(os.path.join(ctx_dir, be["build"]["dockerfile"])) != \
            os.path.join(EXAMPLE, "Dockerfile"):
        errs.append("backend build: %s" % be["build"])
    env = be.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    known = library_env_names()
    unknown = sorted(k for k in env if k not in known)
    if unknown:
        errs.append("backend sets variables cruddur never reads: %s" % unknown)
    need = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_SERVICE_NAME",
            "AWS_XRAY_DAEMON_ADDRESS", "ROLLBAR_ACCESS_TOKEN", "AWS_REGION", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CRUDDUR_CLOUDWATCH_LOG_GROUP"}
    if need - set(env):
        errs.append("backend lacks %s" % sorted(need - set(env)))
    for k in ("ROLLBAR_ACCESS_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AWS_REGION", "OTEL_EXPORTER_OTLP_HEADERS"):
        if not re.search(r"\$\{[A-Z_]+(:-)?\}", str(env.get(k, ""))):
            errs.append("%s=%r: not taken from the environment" % (k, env.get(k)))
    host, _, port = str(env.get("AWS_XRAY_DAEMON_ADDRESS", "")).partition(":")
    if host != "xray-daemon" or " -b xray-daemon:%s" % port not in " " + " ".join(xd.get("command", [])):
        errs.append("X-Ray: backend sends to %s:%s, daemon runs %s" % (host, port, xd.get("command")))
    if not any(str(p).endswith("%s/udp" % port) for p in xd.get("ports", [])):
        errs.append("daemon ports %s: no %s/udp" % (xd.get("ports"), port))
    if "xray-daemon" not in (be.get("depends_on") or []):
        errs.append("backend does not depend on xray-daemon")

    # The backend's environment through the real check, compose-style
    # ${VAR} substitution with made-up secrets.
    fill = {"HONEYCOMB_API_KEY": "hcaik_" + TOKEN, "ROLLBAR_ACCESS_TOKEN": TOKEN,
            "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_SESSION_TOKEN": ""}
    sub = {k: re.sub(r"\$\{([A-Z_]+)(?::-[^}]*)?\}", lambda m: fill.get(m.group(1), ""), str(v))
           for k, v in env.items()}
    r = run([CRUDDUR_RUN, "--check"], base_env(**sub))
    out = r.stdout
    if r.returncode != 0 or "result: OK" not in out:
        errs.append("--check with the compose environment: rc %d\n%s" % (r.returncode, out))
    for want in ("otlp: http/protobuf to https://api.honeycomb.io/v1/traces",
                 "xray: segments to udp xray-daemon:2000", "rollbar: items to",
                 "cloudwatch: group cruddur", "region us-east-1"):
        if want not in out:
            errs.append("--check output lacks %r" % want)
    for secret in (TOKEN, AWS_SECRET, AWS_KEY_ID):
        if secret in out or secret in r.stderr:
            errs.append("--check printed a secret")
    if errs:
        raise AssertionError(harness.summarize(errs))


# ------------------------------------------------------------------ detection

PRINT_PRELOAD = r"""
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
	const char *p = getenv("LD_PRELOAD");
	printf("preload=%s\n", p ? p : "");
	return 0;
}
"""


def build_targets(d):
    """Real binaries of every kind cruddur-run must recognise."""
    src = os.path.join(d, "pp.c")
    with open(src, "w") as f:
        f.write(PRINT_PRELOAD)

    def cc(out, *flags):
        r = run(["gcc", "-O1", "-o", os.path.join(d, out), src] + list(flags))
        assert r.returncode == 0, "gcc %s: %s" % (flags, r.stderr)
        return os.path.join(d, out)

    t = {"plain": cc("plain"), "static": cc("static", "-static"),
         "musl": cc("musl", "-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1")}
    note = os.path.join(d, "note")
    with open(note, "wb") as f:
        f.write(b"\x04\x00\x00\x00\x10\x00\x00\x00\x04\x00\x00\x00Go\x00\x00" + b"x" * 16)
    t["go"] = os.path.join(d, "golike")
    r = run(["objcopy", "--add-section", ".note.go.buildid=" + note, t["plain"], t["go"]])
    assert r.returncode == 0, r.stderr
    for name, owner, mode in (("suid", ("nobody", None), 0o4755), ("sgid", (None, "nogroup"), 0o2755),
                              ("suid_self", (None, None), 0o4755)):
        p = os.path.join(d, name)
        shutil.copy(t["plain"], p)
        if owner != (None, None):
            shutil.chown(p, *owner)
        os.chmod(p, mode)
        t[name] = p
    t["script"] = os.path.join(d, "script.sh")
    with open(t["script"], "w") as f:
        f.write("#!%s\n" % t["static"])
    t["envscript"] = os.path.join(d, "envscript")
    with open(t["envscript"], "w") as f:
        f.write("#!/usr/bin/env -S static --flag\n")
    for k in ("script", "envscript"):
        os.chmod(t[k], 0o755)
    return t


@timeout(120)
def test_cruddur_run_detects_programs_it_cannot_preload_into():
    """Static, musl, Go and setuid/setgid programs (real binaries; #!
    scripts followed to their interpreter, through PATH for env) run
    untouched, without the library in LD_PRELOAD (even when the caller put
    it there), after exactly one `cruddur:` line saying why; a plain
    glibc program, and a setuid program of the caller's own uid (no
    secure mode), get the library."""
    harness.need_lib()
    if os.geteuid() != 0:
        raise harness.Skip("needs root to make setuid/setgid binaries of another owner")
    with Ctx("test_cruddur_run_detects", receiver=False, shim=False) as ctx:
        t = build_targets(ctx.tmp)
        env = base_env(PATH=ctx.tmp + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
                       OTEL_TRACES_EXPORTER="none", LD_PRELOAD=harness.LIB)
        errs = []
        cases = [("static", "statically linked"), ("go", "Go program"), ("suid", "setuid"),
                 ("sgid", "setgid"), ("script", "statically linked"),
                 ("envscript", "statically linked"), ("musl", "musl")]
        for name, why in cases:
            r = run([CRUDDUR_RUN, t[name]], env)
            lines = cruddur_lines(r.stderr)
            if len(lines) != 1 or why not in lines[0] or "not instrumenting" not in lines[0]:
                errs.append("%s: stderr %r" % (name, r.stderr[-400:]))
            if name == "musl":
                # no musl loader here: exec fails, as it would without us
                if r.returncode != 127:
                    errs.append("musl: rc %d" % r.returncode)
                continue
            if r.returncode != 0 or strip_asan(r.stdout.strip()) != "preload=":
                errs.append("%s: rc %d, %r (want the library out of LD_PRELOAD)"
                            % (name, r.returncode, r.stdout.strip()))
        # By name through PATH, too.
        r = run([CRUDDUR_RUN, "static"], env)
        if strip_asan(r.stdout.strip()) != "preload=" or len(cruddur_lines(r.stderr)) != 1:
            errs.append("static via PATH: %r %r" % (r.stdout, r.stderr[-300:]))
        for name in ("plain", "suid_self"):
            r = run([CRUDDUR_RUN, t[name]], dict(env, LD_PRELOAD=""))
            if strip_asan(r.stdout.strip()) != "preload=" + harness.LIB or cruddur_lines(r.stderr):
                errs.append("%s: %r %r (want the library, silently)" % (name, r.stdout, r.stderr))
        if errs:
            raise AssertionError(harness.summarize(errs))


# ------------------------------------------------------------------ --check

@timeout(120)
def test_cruddur_run_check_good_and_bad_configs():
    """--check prints what the library itself parsed (exporters, where
    they send, sampling), exits 0 for a good configuration and 1 with the
    reason for each bad one, whatever CRUDDUR_LOG says; secrets show as
    set or their last 4 characters only; a target that cannot be
    instrumented is a problem."""
    harness.need_lib()
    need_shim()
    errs = []
    good = dict(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/",
                OTEL_EXPORTER_OTLP_HEADERS="x-honeycomb-team=" + TOKEN,
                OTEL_EXPORTER_OTLP_PROTOCOL="http/json", OTEL_SERVICE_NAME="backend-flask",
                OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.25",
                AWS_XRAY_DAEMON_ADDRESS="xray-daemon:2000", ROLLBAR_ACCESS_TOKEN=TOKEN,
                ROLLBAR_ENVIRONMENT="staging", CRUDDUR_CLOUDWATCH_LOG_GROUP="/cruddur/backend",
                AWS_DEFAULT_REGION="eu-west-1", AWS_ACCESS_KEY_ID=AWS_KEY_ID,
                AWS_SECRET_ACCESS_KEY=AWS_SECRET, AWS_SESSION_TOKEN="session" + TOKEN,
                OTEL_TRACES_EXPORTER="otlp,console")
    r = run([CRUDDUR_RUN, "--check", harness.PYTHON], base_env(**good))
    out = r.stdout
    if r.returncode != 0 or not out.rstrip().endswith("result: OK"):
        errs.append("good config: rc %d\n%s%s" % (r.returncode, out, r.stderr))
    for want in ("service.name backend-flask",
                 "exporters: otlp xray rollbar cloudwatch console",
                 "otlp: http/json to http://collector:4318/v1/traces",
                 "x-honeycomb-team set (..." + TOKEN[-4:] + ")",
                 "xray: segments to udp xray-daemon:2000",
                 "rollbar: items to https://api.rollbar.com/api/1/item/, token set (..." + TOKEN[-4:],
                 "environment staging",
                 "cloudwatch: group /cruddur/backend", "region eu-west-1",
                 "access key set (..." + AWS_KEY_ID[-4:] + ")", "secret key set",
                 "session token set", "sampling: parentbased_traceidratio, ratio 0.25",
                 "target: %s: instrumentable" % harness.PYTHON):
        if want not in out:
            errs.append("good config: no %r in\n%s" % (want, out))
    for secret in (TOKEN, AWS_SECRET, AWS_KEY_ID, "session" + TOKEN):
        if secret in out or secret in r.stderr:
            errs.append("a secret was printed")
    # The embedded default.
    r = run([CRUDDUR_RUN, "--check"], base_env())
    if r.returncode != 0 or "file: OTLP/JSON lines to /tmp/cruddur-traces.jsonl (the embedded default" \
            not in r.stdout:
        errs.append("default config: rc %d\n%s" % (r.returncode, r.stdout))

    bad = [
        ({"CRUDDUR_CLOUDWATCH_LOG_GROUP": "g", "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
          "AWS_SECRET_ACCESS_KEY": AWS_SECRET}, "neither AWS_REGION nor AWS_DEFAULT_REGION",
         "cloudwatch: off"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "not an http:// or https:// URL",
         "otlp: off"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "not a ratio", "sampling: traceidratio, ratio 1"),
        ({"AWS_XRAY_DAEMON_ADDRESS": "xray-daemon", "CRUDDUR_LOG": "off"},
         "AWS_XRAY_DAEMON_ADDRESS", "xray: off"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE", "queue 2048"),
        ({"ROLLBAR_ACCESS_TOKEN": TOKEN, "ROLLBAR_ENDPOINT": "api.rollbar.com"},
         "ROLLBAR_ENDPOINT", "rollbar: off"),
        ({"CRUDDUR_LIB": "/nonexistent/libcruddur.so"}, "not found", "library: /nonexistent"),
    ]
    for extra, why, shown in bad:
        r = run([CRUDDUR_RUN, "--check"], base_env(**extra))
        problems = [line for line in r.stdout.splitlines() if line.startswith("problem: ")]
        if r.returncode != 1 or not any(why in p for p in problems) or shown not in r.stdout:
            errs.append("%s: rc %d, want 1 and a problem with %r and %r:\n%s%s"
                        % (extra, r.returncode, why, shown, r.stdout, r.stderr[-300:]))
    # A target the library cannot work in.
    r = run([CRUDDUR_RUN, "--check", "/nonexistent/prog"], base_env())
    if r.returncode != 1 or "NOT FOUND" not in r.stdout:
        errs.append("missing target: rc %d\n%s" % (r.returncode, r.stdout))
    with Ctx("test_cruddur_run_check_static", receiver=False, shim=False) as ctx:
        static = os.path.join(ctx.tmp, "static")
        src = os.path.join(ctx.tmp, "s.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        assert run(["gcc", "-static", "-o", static, src]).returncode == 0
        r = run([CRUDDUR_RUN, "--check", static], base_env())
        if r.returncode != 1 or "NOT instrumentable: it is statically linked" not in r.stdout:
            errs.append("static target: rc %d\n%s" % (r.returncode, r.stdout))
    if errs:
        raise AssertionError(harness.summarize(errs))


# ------------------------------------------------------------------ PID 1

PID1_APP = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
for i in range(3):
    if os.fork() == 0:
        if os.fork() == 0:
            time.sleep(0.1)
            os._exit(0)
        os._exit(0)
    os.wait()  # the grandchild is now an orphan: PID 1's to reap
time.sleep(1.0)
zombies = []
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            with open("/proc/%s/stat" % p) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    zombies.append(p)
        except OSError:
            pass
print("pid %d ppid %d zombies %d" % (os.getpid(), os.getppid(), len(zombies)), flush=True)
time.sleep(30)
"""


@timeout(90)
def test_installed_cruddur_run_as_pid1_in_a_pid_namespace():
    """The installed cruddur-run as PID 1 of a new PID namespace (what a
    container gives it): the app is its child, orphans that end are reaped
    (no zombie in the namespace), SIGTERM sent to PID 1 reaches the app, and
    the exit status is the app's (its code, or 128 + the signal)."""
    no_asan()
    harness.need_lib()
    if not shutil.which("unshare") or os.geteuid() != 0:
        raise harness.Skip("needs root and unshare")
    with Ctx("test_pid1", receiver=False, shim=False) as ctx:
        root = install(ctx.mkdir("stage"))
        wrapper = os.path.join(root, "bin", "cruddur-run")
        env = base_env(OTEL_TRACES_EXPORTER="none")
        del env["CRUDDUR_LIB"]
        errs = []
        p = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", wrapper,
                              harness.PYTHON, "-c", PID1_APP], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline().strip()
            m = re.match(r"^pid (\d+) ppid (\d+) zombies (\d+)$", line)
            if not m or m.group(2) != "1" or m.group(3) != "0":
                errs.append("in the namespace: %r (want ppid 1, no zombies)" % line)
            init = harness.child_pids(p.pid)
            if len(init) != 1:
                errs.append("unshare's children: %s" % init)
            else:
                with open("/proc/%d/status" % init[0]) as f:
                    nspid = [x for x in f.read().splitlines() if x.startswith("NSpid:")]
                if not nspid or nspid[0].split()[-1] != "1":
                    errs.append("cruddur-run is not PID 1 in the namespace: %s" % nspid)
                os.kill(init[0], signal.SIGTERM)
            rc = p.wait(20)
            if rc != 7:
                errs.append("SIGTERM to PID 1: exit %s, want the app's 7 (%s)" % (rc, p.stderr.read()[-300:]))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        # Killed by a signal: 128 + the signal.
        p = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", wrapper, "sleep", "30"],
                             env=env)
        try:
            deadline = time.monotonic() + 10
            init = []
            while time.monotonic() < deadline and not (init and harness.child_pids(init[0])):
                init = harness.child_pids(p.pid)
                time.sleep(0.05)
            if init:
                os.kill(init[0], signal.SIGTERM)
            rc = p.wait(20)
            if rc != 128 + signal.SIGTERM:
                errs.append("sleep killed by SIGTERM: exit %s, want 143" % rc)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        if errs:
            raise AssertionError(harness.summarize(errs))
