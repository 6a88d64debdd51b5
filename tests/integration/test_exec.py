"""Integration tests: exec* under the shim.

The exec hooks must pass arguments and environment through unchanged for
every variant, and flush queued spans (bounded) before the image is
replaced, even with a long OTEL_BSP_SCHEDULE_DELAY.
"""

import os
import subprocess

import harness
from harness import Conn, Ctx, Req, timeout

EXECER = os.path.join(harness.BUILD, "servers", "execer")

# Serves one request, then replaces itself with /bin/sleep (no exit path:
# only the exec flush can send the span).
EXEC_SERVER = r"""
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
        self.wfile.flush()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.handle_request()
s.server_close()
os.execv("/bin/sleep", ["sleep", "30"])
"""


@timeout(60)
def test_exec_variants_pass_through():
    """Every exec* variant runs the target with the same argv and env."""
    with Ctx("test_exec_variants_pass_through", receiver=False) as ctx:
        for m in ("l", "lp", "le", "v", "vp", "ve", "vpe"):
            env = ctx.env({"EXECER": "inherited"})
            out = subprocess.run([EXECER, m], env=env, capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, (m, out.stderr)
            lines = out.stdout.splitlines()
            want = "EXECER=ok" if m in ("le", "ve", "vpe") else "EXECER=inherited"
            assert want in lines, (m, lines)
            if m not in ("le", "ve", "vpe") and ctx.shim:
                assert any(l.startswith("LD_PRELOAD=") for l in lines), (m, "env not inherited")


@timeout(60)
def test_exec_flushes_queued_spans():
    """A span queued before exec reaches the receiver although the batch
    delay is a minute and the process never exits normally."""
    with Ctx("test_exec_flushes_queued_spans") as ctx:
        path = ctx.path("srv.py")
        with open(path, "w") as f:
            f.write(EXEC_SERVER)
        pf = ctx.path("srv.port")
        p = ctx.start([harness.PYTHON, path, pf],
                      extra_env={"OTEL_BSP_SCHEDULE_DELAY": "60000"}, name="exec-server")
        port = harness.wait_portfile(pf, 15, p)
        with Conn(port) as c:
            ex = c.request(Req("GET", "/before-exec", version="1.0"))
        assert ex.resp.status == 200
        if not ctx.shim:
            ctx.expect_no_spans()
            return
        spans = ctx.receiver.wait_for_spans(1, 10)
        assert len(spans) == 1, spans
        assert spans[0]["attributes"]["url.path"] == "/before-exec"
